//! Replays the inputs of the archive writer's fuzz target through the check the target
//! runs (`tests/fuzz_checks/`, shared with `fuzz/fuzz_targets/`): committed crashing inputs,
//! seeds and pseudo-random inputs (`fuzz/replay.rs`). See docs/RELIABILITY.md#fuzzing.
mod fuzz_checks;
#[path = "../../../fuzz/replay.rs"]
mod replay;

use replay::replay_all;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
use fuzz_checks::{replay, writer_config};

#[test]
fn writer_config_inputs() {
    replay_all(ROOT, "writer_config", &|b| {
        replay(b, |i: fuzz_checks::WriterInput| writer_config(&i));
    });
}
