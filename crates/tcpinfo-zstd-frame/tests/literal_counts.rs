//! The constant literal counts (src/counts.rs) are those of the fixture lines' literals
//! with the current match finder; on a mismatch this prints the table to paste.

mod common;

use std::path::PathBuf;

use common::fixture_lines;
use tcpinfo_zstd_frame::FrameEncoder;

#[test]
fn literal_counts_match_the_fixtures() {
    let mut enc = FrameEncoder::new();
    let mut counts = [0u64; 256];
    for line in fixture_lines() {
        enc.count_literals(&line, &mut counts);
    }
    let total: u64 = counts.iter().sum();
    assert!(
        counts[128..].iter().all(|&c| c == 0),
        "fixture literals above 127"
    );
    let scaled: Vec<u64> = counts[..128]
        .iter()
        .map(|&c| {
            if c == 0 {
                0
            } else {
                (c * 60_000 / total).max(1)
            }
        })
        .collect();
    let mut text = String::from("pub(crate) const LITERAL_COUNTS: [u16; 128] = [\n");
    for row in scaled.chunks(16) {
        let row: Vec<String> = row.iter().map(u64::to_string).collect();
        text.push_str("    ");
        text.push_str(&row.join(", "));
        text.push_str(",\n");
    }
    text.push_str("];\n");
    let file =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/counts.rs"))
            .expect("counts.rs");
    // The numbers of the array (rustfmt lays it out its own way).
    let array = file
        .split_once("LITERAL_COUNTS: [u16; 128] = [")
        .and_then(|(_, rest)| rest.split_once("];"))
        .expect("the LITERAL_COUNTS array")
        .0;
    let in_file: Vec<u64> = array
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().expect("a number"))
        .collect();
    assert!(
        in_file == scaled,
        "src/counts.rs is stale; its table is now:\n{text}"
    );
}
