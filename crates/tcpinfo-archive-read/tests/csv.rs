//! `csv::write_rows` reproduces M-Lab csvtool's output byte for byte on every fixture
//! (golden files in `tests/fixtures/csvtool/`, made by csvtool v1.9.0), apart from
//! csvtool's extra row for each header line.

mod common;

use std::path::Path;

use common::{decode_one, read_fixture};
use tcpinfo_archive_read::csv::{column_index, write_header, write_rows, COLUMNS};

fn golden(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/csvtool")
        .join(format!("{name}.csv.zst"));
    let bytes = zstd::decode_all(&std::fs::read(&p).expect("golden")[..]).expect("zstd");
    String::from_utf8(bytes).expect("utf-8")
}

fn our_csv(name: &str, cols: &[usize]) -> String {
    let d = decode_one(name, &read_fixture(name), true);
    assert!(d.errors.is_empty());
    let mut out = Vec::new();
    write_header(&mut out, cols);
    let mut rows = 0;
    for b in &d.batches {
        rows += write_rows(
            &mut out,
            &b.records.index,
            &b.records.payloads,
            &b.records.lines,
            cols,
        );
    }
    assert_eq!(rows, d.records.len());
    String::from_utf8(out).expect("utf-8")
}

fn all_columns() -> Vec<usize> {
    (0..COLUMNS.len()).collect()
}

#[test]
fn matches_csvtool_on_every_archive() {
    for (name, header) in [
        ("archiveRecords.jsonl.zst", false),
        (
            "finwait2-sample_1554836592_unsafe_000000000135A272.00000.jsonl.zst",
            true,
        ),
        (
            "ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst",
            true,
        ),
        (
            "ndt-jdczh_1553815964_00000000000003E8.00183.jsonl.zst",
            true,
        ),
        (
            "ndt-jdczh_1553815964_00000000000003E8.00185.jsonl.zst",
            true,
        ),
    ] {
        let theirs = golden(name);
        let mut want: Vec<&str> = theirs.lines().collect();
        if header {
            // csvtool's row for the metadata line: zero time, no IDM.
            assert!(
                want[1].starts_with("2009-05-29T23:59:59Z,0,0,,,"),
                "{name}: {}",
                want[1]
            );
            want.remove(1);
        }
        let ours = our_csv(name, &all_columns());
        let got: Vec<&str> = ours.lines().collect();
        assert_eq!(got.len(), want.len(), "{name}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{name} row {i}");
        }
    }
}

#[test]
fn raw_netlink_dump_gives_the_rows_of_its_archive() {
    let a = our_csv("testdata.zst", &all_columns());
    let b = our_csv("archiveRecords.jsonl.zst", &all_columns());
    assert_eq!(a, b);
    assert_eq!(a.lines().count(), 421);
}

#[test]
fn column_selection() {
    let cols: Vec<usize> = ["IDM.SockID.Cookie", "TCP.BytesAcked", "Timestamp"]
        .iter()
        .map(|c| column_index(c).expect(c))
        .collect();
    let csv = our_csv(
        "ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst",
        &cols,
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "IDM.SockID.Cookie,TCP.BytesAcked,Timestamp");
    assert_eq!(lines[891], "62D84,3938159,2019-07-01T00:00:22.752Z");
    assert_eq!(COLUMNS.len(), 105);
    assert!(column_index("nope").is_none());
}

#[test]
fn every_fixture_gives_the_header_and_one_row_per_record() {
    let header = golden("archiveRecords.jsonl.zst")
        .lines()
        .next()
        .expect("header")
        .to_owned();
    for name in common::fixtures() {
        let csv = our_csv(&name, &all_columns());
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some(header.as_str()), "{name}");
        let records = decode_one(&name, &read_fixture(&name), true).records.len();
        assert_eq!(lines.count(), records, "{name}");
    }
}
