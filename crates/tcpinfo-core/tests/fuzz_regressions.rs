//! Replays the inputs of the core's fuzz targets through the checks the targets run
//! (`tests/fuzz_checks/`, shared with `fuzz/fuzz_targets/`): committed crashing inputs,
//! seeds and pseudo-random inputs (`fuzz/replay.rs`). See docs/RELIABILITY.md#fuzzing.
mod fuzz_checks;
#[path = "../../../fuzz/replay.rs"]
mod replay;

use replay::replay_all;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
use fuzz_checks::{filter, netlink, poller_config, replay, tcp_info};

#[test]
fn netlink_inputs() {
    replay_all(ROOT, "netlink", &|b| {
        replay(b, |i: fuzz_checks::Datagram| netlink(&i));
    });
}

#[test]
fn tcp_info_inputs() {
    replay_all(ROOT, "tcp_info", &|b| {
        replay(b, |i: fuzz_checks::TcpInfoInput| tcp_info(&i));
    });
}

#[test]
fn filter_inputs() {
    replay_all(ROOT, "filter", &|b| {
        replay(b, |i: filter::FilterInput| filter::filter(&i));
    });
}

#[test]
fn poller_config_inputs() {
    replay_all(ROOT, "poller_config", &|b| replay(b, poller_config));
}

/// Found while writing the `netlink` target (the input is past its 8 KiB `-max_len`, so the
/// fuzzer could not reach it): 65,536 attributes that cannot be indexed (type 48 and up, or
/// past the first 64 KiB of a message) overflowed the u16 `dropped` count, a panic with
/// overflow checks. A raw netlink dump read by the archive reader may hold such a message.
#[test]
fn attrs_dropped_count_saturates() {
    let mut payload = vec![0u8; 72];
    for _ in 0..70_000 {
        payload.extend_from_slice(&4u16.to_ne_bytes());
        payload.extend_from_slice(&100u16.to_ne_bytes());
    }
    let attrs = tcpinfo_core::parse::attrs::Attrs::parse(&payload, 72).expect("well-formed");
    assert_eq!(attrs.dropped(), u16::MAX);
    assert_eq!(attrs.max_type(), None);
}
