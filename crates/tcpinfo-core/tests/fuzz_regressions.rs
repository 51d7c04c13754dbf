//! Replays the inputs of the core's fuzz targets through the same checks the targets run
//! (`tests/fuzz_checks/`): every crashing input the fuzzer ever found
//! (`tests/fuzz_regressions/<target>/`), the seed corpus (`fuzz/seeds/<target>/`), and a
//! few hundred pseudo-random inputs per target. See docs/RELIABILITY.md#fuzzing.

mod fuzz_checks;

use std::path::Path;

use fuzz_checks::{filter, netlink, poller_config, replay, tcp_info};

/// Every input file of `target`: committed crashes, then seeds.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in [
        root.join("tests/fuzz_regressions").join(target),
        root.join("../../fuzz/seeds").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries.map(|e| e.expect("dir entry").path()).collect();
        files.sort();
        for f in files {
            let bytes = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            out.push((f.display().to_string(), bytes));
        }
    }
    out
}

/// Deterministic pseudo-random inputs (xorshift), of 0 to `max_len` bytes.
fn random_inputs(count: usize, max_len: usize) -> Vec<Vec<u8>> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..count)
        .map(|_| {
            let len = usize::try_from(next()).expect("64-bit") % (max_len + 1);
            (0..len).map(|_| next().to_le_bytes()[0]).collect()
        })
        .collect()
}

fn replay_all<T: for<'a> arbitrary::Arbitrary<'a>>(target: &str, check: fn(T)) {
    for (name, bytes) in inputs(target) {
        let ok = std::panic::catch_unwind(|| replay(&bytes, check)).is_ok();
        assert!(ok, "{name} fails the check of target {target}");
    }
    for bytes in random_inputs(300, 2048) {
        let ok = std::panic::catch_unwind(|| replay(&bytes, check)).is_ok();
        // The input, to be committed under tests/fuzz_regressions/<target>/.
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert!(ok, "target {target} fails on the pseudo-random input {hex}");
    }
}

#[test]
fn netlink_inputs() {
    replay_all("netlink", netlink);
}

#[test]
fn tcp_info_inputs() {
    replay_all("tcp_info", tcp_info);
}

#[test]
fn filter_inputs() {
    replay_all("filter", filter::filter);
}

#[test]
fn poller_config_inputs() {
    replay_all("poller_config", poller_config);
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
