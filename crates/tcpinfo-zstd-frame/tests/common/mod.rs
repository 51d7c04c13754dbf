//! The fixture lines every test and the bench encode: each line of M-Lab's archives in
//! `crates/tcpinfo-core/tests/fixtures/mlab/`, files in name order.

use std::path::PathBuf;

/// Every line (with its `\n`) of every fixture archive, in file-name order.
pub fn fixture_lines() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tcpinfo-core/tests/fixtures/mlab");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.zst"))
        .collect();
    names.sort();
    assert!(names.len() >= 4, "fixtures in {}", dir.display());
    let mut lines = Vec::new();
    for p in names {
        let data = zstd::decode_all(std::fs::File::open(&p).expect("open")).expect("decode");
        lines.extend(data.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec));
    }
    lines
}
