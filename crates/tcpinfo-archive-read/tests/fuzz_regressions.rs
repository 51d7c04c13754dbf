//! Replays the inputs of the archive reader's fuzz targets through the same checks the targets run
//! (`tests/fuzz_checks/`): every crashing input the fuzzer ever found
//! (`tests/fuzz_regressions/<target>/`), the seed corpus (`fuzz/seeds/<target>/`), and a
//! few hundred pseudo-random inputs per target. See docs/RELIABILITY.md#fuzzing.

mod fuzz_checks;

use std::path::Path;

use fuzz_checks::{archive_read, archive_zstd, replay};

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
fn archive_read_inputs() {
    replay_all("archive_read", archive_read);
}

#[test]
fn archive_zstd_inputs() {
    replay_all("archive_zstd", archive_zstd);
}
