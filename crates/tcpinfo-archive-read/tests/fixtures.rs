//! Every M-Lab fixture reads back completely: record counts, timestamps, metadata, the
//! rebuilt netlink payloads (which re-encode to the very lines of the file), the busy NDT
//! download's 891 records with monotone byte counters, and the raw netlink dump.

mod common;

use common::{decode, decode_one, fixtures, read_fixture};
use tcpinfo_archive_read::ReaderOptions;
use tcpinfo_core::parse::attrs::INET_DIAG_INFO;
use tcpinfo_core::parse::diag_msg::parse_diag;
use tcpinfo_core::parse::tcp_info::{AccEcnLayout, TcpInfo};
use tcpinfo_core::{write_record_line, GO_ZERO_TIME};

const NDT: &str = "ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst";

/// (fixture, data records, has a header line)
const EXPECTED: &[(&str, usize, bool)] = &[
    ("archiveRecords.jsonl.zst", 420, false),
    (
        "finwait2-sample_1554836592_unsafe_000000000135A272.00000.jsonl.zst",
        62,
        true,
    ),
    (NDT, 891, true),
    (
        "ndt-jdczh_1553815964_00000000000003E8.00183.jsonl.zst",
        150,
        true,
    ),
    (
        "ndt-jdczh_1553815964_00000000000003E8.00185.jsonl.zst",
        150,
        true,
    ),
    ("testdata.zst", 420, false),
];

#[test]
fn every_fixture_decodes_completely() {
    assert_eq!(fixtures().len(), EXPECTED.len());
    for (name, count, header) in EXPECTED {
        let d = decode_one(name, &read_fixture(name), true);
        assert!(d.errors.is_empty(), "{name}: {:?}", d.errors);
        assert_eq!(d.records.len(), *count, "{name}");
        for (i, r) in d.records.iter().enumerate() {
            let (msg, _) = parse_diag(&r.payload).unwrap_or_else(|e| panic!("{name} #{i}: {e}"));
            assert_eq!(
                (msg.family(), msg.state(), msg.cookie()),
                (r.family, r.state, r.cookie)
            );
            assert_eq!(r.segment.uuid.is_some(), *header, "{name}");
            assert_eq!(r.segment.source, *name);
        }
        if *header {
            let cookie = name
                .split('.')
                .next()
                .and_then(|s| s.rsplit('_').next())
                .expect("cookie");
            let uuid = d.records[0].segment.uuid.clone().expect("uuid");
            assert!(
                uuid.ends_with(&format!("_{cookie}")),
                "{name}: UUID {uuid} of the header"
            );
            let opened = d.records.iter().filter(|r| r.kind == 0).count();
            let seq0 = d.records[0].segment.sequence == Some(0);
            assert_eq!(
                opened,
                usize::from(seq0),
                "{name}: the first record of sequence 0 is 'opened'"
            );
        }
    }
}

#[test]
fn payloads_re_encode_to_the_archived_lines() {
    for (name, _, _) in EXPECTED.iter().filter(|e| e.0 != "testdata.zst") {
        let d = decode_one(name, &read_fixture(name), true);
        for r in &d.records {
            let (msg, attrs) = parse_diag(&r.payload).expect("parse");
            let mut ours = Vec::new();
            write_record_line(&mut ours, r.time, &msg, &attrs);
            let tail = |s: &[u8]| {
                s[s.windows(8)
                    .position(|w| w == b"\"RawIDM\"")
                    .expect("RawIDM")..]
                    .to_vec()
            };
            assert_eq!(tail(&ours), tail(&r.line), "{name}");
        }
    }
}

#[test]
fn raw_netlink_dump_equals_its_archive() {
    let raw = decode_one("testdata.zst", &read_fixture("testdata.zst"), true);
    let json = decode_one(
        "archiveRecords.jsonl.zst",
        &read_fixture("archiveRecords.jsonl.zst"),
        true,
    );
    assert_eq!(raw.records.len(), 420);
    for (a, b) in raw.records.iter().zip(&json.records) {
        // The kernel's attribute order differs from the archive's type order; same content.
        let ((ma, aa), (mb, ab)) = (
            parse_diag(&a.payload).expect("a"),
            parse_diag(&b.payload).expect("b"),
        );
        assert_eq!(ma.bytes(), mb.bytes());
        for ty in 0..48 {
            assert_eq!(aa.get(ty), ab.get(ty), "attribute {ty}");
        }
        assert_eq!(a.line, b.line, "the generated line is M-Lab's");
        assert_eq!((a.time, b.time), (GO_ZERO_TIME, GO_ZERO_TIME));
    }
}

#[test]
fn busy_ndt_download_has_891_records_and_monotone_counters() {
    let d = decode_one(NDT, &read_fixture(NDT), true);
    assert_eq!(d.records.len(), 891);
    let (mut sent, mut received, mut time) = (0u64, 0u64, i64::MIN);
    for r in &d.records {
        let (_, attrs) = parse_diag(&r.payload).expect("parse");
        let info = TcpInfo::new(
            attrs.get(INET_DIAG_INFO).expect("tcp_info"),
            AccEcnLayout::U16Pair,
        );
        assert_eq!(info.bytes().len(), 224);
        let (s, rcv) = (
            info.bytes_sent().expect("bytesSent"),
            info.bytes_received().expect("bytesReceived"),
        );
        assert!(
            s >= sent && rcv >= received,
            "counters went back: {s} < {sent} or {rcv} < {received}"
        );
        assert!(r.time >= time, "timestamps in order");
        (sent, received, time) = (s, rcv, r.time);
    }
    assert_eq!((sent, received), (3_939_771, 1245));
    // 2019-07-01T00:00:12.092Z .. 2019-07-01T00:00:22.752Z
    assert_eq!(d.records[0].time, 1_561_939_212_092_000_000);
    assert_eq!(d.records[890].time, 1_561_939_222_752_000_000);
}

#[test]
fn local_time_zone_timestamps_convert_to_utc() {
    let name = "finwait2-sample_1554836592_unsafe_000000000135A272.00000.jsonl.zst";
    let d = decode_one(name, &read_fixture(name), true);
    // First record: 2019-08-26T19:55:42.754686952-04:00 = 23:55:42.754686952Z.
    assert_eq!(d.records[0].time, 1_566_863_742_754_686_952);
    let last = d.records.last().expect("last");
    let (_, attrs) = parse_diag(&last.payload).expect("parse");
    assert!(
        attrs.get(INET_DIAG_INFO).is_none(),
        "the FIN_WAIT2 record has no tcp_info"
    );
}

#[test]
fn chunking_does_not_change_anything() {
    let all: Vec<(String, Vec<u8>)> = fixtures()
        .into_iter()
        .map(|n| {
            let b = read_fixture(&n);
            (n, b)
        })
        .collect();
    let sources: Vec<(&str, &[u8])> = all
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let whole = decode(&sources, ReaderOptions::default(), usize::MAX);
    for chunk in [1, 7, 4096] {
        let small = ReaderOptions {
            max_batch_records: 100,
            ..ReaderOptions::default()
        };
        let d = decode(&sources, small, chunk);
        assert_eq!(d.records, whole.records, "chunk {chunk}");
        assert!(d.errors.is_empty());
        assert!(d.batches.iter().all(|b| b.len() <= 100));
    }
    assert_eq!(whole.records.len(), 420 + 62 + 891 + 150 + 150 + 420);
    // Batches span files: few batches for many small sources.
    assert_eq!(whole.batches.len(), 1);
}

#[test]
fn plain_jsonl_and_crlf_and_missing_final_newline() {
    let name = "ndt-jdczh_1553815964_00000000000003E8.00183.jsonl.zst";
    let text = zstd::decode_all(&read_fixture(name)[..]).expect("zstd");
    let plain = decode_one("plain.jsonl", &text, true);
    assert_eq!(plain.records.len(), 150);
    let mut crlf: Vec<u8> = text
        .split(|c| *c == b'\n')
        .flat_map(|l| [l, b"\r\n"].concat())
        .collect();
    crlf.truncate(crlf.len() - 4); // drop the last empty line's CRLF and the final CRLF
    let d = decode_one("crlf.jsonl", &crlf, true);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    assert_eq!(d.records.len(), 150);
    assert_eq!(d.records[5].line, plain.records[5].line);
}

#[test]
fn multi_frame_files_and_concatenated_files() {
    let name = "ndt-jdczh_1553815964_00000000000003E8.00183.jsonl.zst";
    let text = zstd::decode_all(&read_fixture(name)[..]).expect("zstd");
    // One frame per 10 lines, as a collector flushing every interval writes.
    let mut multi = Vec::new();
    let lines: Vec<&[u8]> = text.split_inclusive(|c| *c == b'\n').collect();
    for group in lines.chunks(10) {
        multi.extend(zstd::encode_all(&group.concat()[..], 3).expect("zstd"));
    }
    let d = decode_one("multi.jsonl.zst", &multi, true);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    assert_eq!(d.records.len(), 150);
    // `cat a b`: the second header starts a second segment.
    let other = read_fixture("ndt-jdczh_1553815964_00000000000003E8.00185.jsonl.zst");
    let both = [multi.clone(), other].concat();
    let d = decode_one("cat.jsonl.zst", &both, true);
    assert_eq!(d.records.len(), 300);
    assert_eq!(d.records[0].segment.sequence, Some(183));
    assert_eq!(d.records[299].segment.sequence, Some(185));
}
