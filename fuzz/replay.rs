//! Replays fuzz inputs in a crate's normal `cargo test` (included by path from each crate's
//! `tests/fuzz_regressions.rs`): the committed crashing inputs of a target
//! (`crates/<crate>/tests/fuzz_regressions/<target>/`), its seed corpus
//! (`fuzz/seeds/<target>/`) and a few hundred deterministic pseudo-random inputs, each
//! through the same check the fuzz target runs. A failure names the file, or prints the
//! pseudo-random input in hex to commit as a regression. See docs/RELIABILITY.md#fuzzing.

use std::fmt::Write as _;
use std::path::Path;

/// Pseudo-random inputs per target.
const RANDOM_INPUTS: usize = 300;
/// Longest pseudo-random input, bytes.
const RANDOM_MAX_LEN: usize = 2048;

/// Runs `check` on every input of `target` (see the module docs); `crate_root` is the
/// crate's `CARGO_MANIFEST_DIR`.
pub fn replay_all(
    crate_root: &str,
    target: &str,
    check: &(dyn Fn(&[u8]) + std::panic::RefUnwindSafe),
) {
    let root = Path::new(crate_root);
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
            let ok = std::panic::catch_unwind(|| check(&bytes)).is_ok();
            assert!(ok, "{} fails the check of target {target}", f.display());
        }
    }
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..RANDOM_INPUTS {
        let len = usize::try_from(next()).expect("64-bit") % (RANDOM_MAX_LEN + 1);
        let bytes: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
        let ok = std::panic::catch_unwind(|| check(&bytes)).is_ok();
        let hex = bytes.iter().fold(String::new(), |mut s, b| {
            write!(s, "{b:02x}").expect("writing to a String");
            s
        });
        assert!(ok, "target {target} fails on the pseudo-random input {hex}");
    }
}
