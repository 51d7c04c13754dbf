//! Replays the inputs of the archive reader's fuzz targets through the checks the targets
//! run (`tests/fuzz_checks/`, shared with `fuzz/fuzz_targets/`): committed crashing inputs,
//! seeds and pseudo-random inputs (`fuzz/replay.rs`). See docs/RELIABILITY.md#fuzzing.
mod fuzz_checks;
#[path = "../../../fuzz/replay.rs"]
mod replay;

use replay::replay_all;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
use fuzz_checks::{archive_read, archive_zstd, replay};

#[test]
fn archive_read_inputs() {
    replay_all(ROOT, "archive_read", &|b| {
        replay(b, |i: fuzz_checks::StoredInput| archive_read(&i));
    });
}

#[test]
fn archive_zstd_inputs() {
    replay_all(ROOT, "archive_zstd", &|b| {
        replay(b, |i: fuzz_checks::ArchiveInput| archive_zstd(&i));
    });
}
