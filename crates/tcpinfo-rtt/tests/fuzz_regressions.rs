//! Replays the inputs of the passive-RTT fuzz targets through the checks the targets run
//! (`tests/fuzz_checks/`, shared with `fuzz/fuzz_targets/`): committed crashing inputs,
//! seeds and pseudo-random inputs (`fuzz/replay.rs`). See docs/RELIABILITY.md#fuzzing.
mod fuzz_checks;
#[path = "../../../fuzz/replay.rs"]
mod replay;

use std::path::Path;

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

/// Found by `rtt_capture_file`: a pcapng block declaring a length below 12 (here a Process
/// Information Block of length 6) made pcap-parser 0.17 subtract past zero: a panic with
/// overflow checks, and without them an error blaming a 4 GiB block (`BufferTooSmall`).
/// It is now an `ERR_CAPTURE_FILE` naming the bad length, before pcap-parser sees it.
#[test]
fn pcapng_block_shorter_than_its_framing_is_a_corrupt_file() {
    let input = std::fs::read(
        Path::new(ROOT)
            .join("tests/fuzz_regressions/rtt_capture_file/pcapng-block-length-below-12.bin"),
    )
    .expect("committed input");
    let err = tcpinfo_rtt::pcap::read(&input[..], "r", |_| {}).expect_err("corrupt");
    assert_eq!(err.code(), "ERR_CAPTURE_FILE");
    assert!(
        err.to_string().contains("block length 6, below 12"),
        "{err}"
    );
}
