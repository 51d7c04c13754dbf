//! Replays the inputs of the passive-RTT fuzz targets through the checks the targets run
//! (`tests/fuzz_checks/`, shared with `fuzz/fuzz_targets/`): committed crashing inputs,
//! seeds and pseudo-random inputs (`fuzz/replay.rs`). See docs/RELIABILITY.md#fuzzing.
mod fuzz_checks;
#[path = "../../../fuzz/replay.rs"]
mod replay;

use replay::replay_all;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
use fuzz_checks::{capture_file, parse_frame};

#[test]
fn rtt_parse_inputs() {
    replay_all(ROOT, "rtt_parse", &|b| parse_frame(b));
}

#[test]
fn rtt_capture_file_inputs() {
    replay_all(ROOT, "rtt_capture_file", &|b| capture_file(b));
}
