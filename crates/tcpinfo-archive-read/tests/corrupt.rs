//! Corrupt, truncated and foreign input: the valid prefix comes back, then exactly one
//! error naming the source and where (stop mode); skip mode goes on and counts. Nothing
//! panics or hangs.

mod common;

use common::{decode, decode_one, fixtures, read_fixture, Rec};
use tcpinfo_archive_read::{ErrorKind, ReaderOptions};

fn assert_prefix(name: &str, got: &[Rec], full: &[Rec]) {
    assert!(
        got.len() <= full.len(),
        "{name}: more records than the intact file"
    );
    for (i, (g, f)) in got.iter().zip(full).enumerate() {
        assert_eq!(
            g.line, f.line,
            "{name}: record {i} is not the intact file's"
        );
    }
}

#[test]
fn truncated_at_many_offsets_gives_the_prefix_and_one_error() {
    for name in fixtures() {
        let bytes = read_fixture(&name);
        let full = decode_one(&name, &bytes, true).records;
        let n = bytes.len();
        for cut in [
            1,
            3,
            5,
            17,
            100,
            n / 10,
            n / 3,
            n / 2,
            n * 9 / 10,
            n - 2,
            n - 1,
        ] {
            let d = decode_one(&name, &bytes[..cut], true);
            assert_eq!(d.errors.len(), 1, "{name} cut at {cut}: {:?}", d.errors);
            let e = &d.errors[0];
            assert_eq!(e.source, name);
            assert!(
                matches!(
                    e.kind,
                    ErrorKind::Truncated | ErrorKind::Foreign | ErrorKind::Netlink
                ),
                "{name} cut at {cut}: {e}"
            );
            assert!(e.byte_offset <= cut as u64, "{name} cut at {cut}: {e}");
            assert_prefix(&name, &d.records, &full);
            // The busy download has many 128 KiB blocks: a cut keeps every whole block.
            // (archiveRecords' single frame yields nothing before its end, as `zstd -dc` shows.)
            if name.starts_with("ndt-7hhhv") && cut >= n / 2 {
                // `head -c 31559 | zstd -dc | wc -l` gives 224 whole lines (header included).
                assert!(
                    d.records.len() >= 223,
                    "{name} cut at {cut}: the prefix is kept ({})",
                    d.records.len()
                );
            }
        }
    }
}

#[test]
fn truncated_plain_jsonl_loses_only_the_cut_line() {
    let name = "ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst";
    let text = zstd::decode_all(&read_fixture(name)[..]).expect("zstd");
    let full = decode_one("x.jsonl", &text, true).records;
    let cut = text.len() / 2;
    let d = decode_one("x.jsonl", &text[..cut], true);
    let whole_lines = text[..cut].split(|c| *c == b'\n').count() - 2; // minus the header and the cut line
    assert_eq!(d.records.len(), whole_lines);
    assert_eq!(d.errors.len(), 1);
    assert_eq!(d.errors[0].kind, ErrorKind::Json);
    assert_eq!(d.errors[0].line, Some(whole_lines as u64 + 2));
    assert_prefix(name, &d.records, &full);
}

#[test]
fn flipped_bytes_give_the_prefix_and_one_error() {
    for name in fixtures() {
        let bytes = read_fixture(&name);
        let full = decode_one(&name, &bytes, true).records;
        for at in [bytes.len() / 4, bytes.len() / 2, bytes.len() - 6] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x5A;
            bad[at + 1] ^= 0xFF;
            let d = decode_one(&name, &bad, true);
            // zstd frames carry a checksum: damage is found, at the latest at the frame's end.
            assert_eq!(d.errors.len(), 1, "{name} flipped at {at}: {:?}", d.errors);
            assert!(d.errors[0].to_string().starts_with(&name));
            assert_prefix(&name, &d.records, &full);
        }
    }
}

#[test]
fn foreign_files_are_one_clear_error() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x06\0\0\0";
    let text = b"hello, this is not an archive\nsecond line\n";
    let elf = [
        0x7F, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0x3E, 0,
    ];
    for (name, bytes) in [
        ("a.png", &png[..]),
        ("a.txt", &text[..]),
        ("a.elf", &elf[..]),
        ("tiny", &b"x"[..]),
    ] {
        let d = decode_one(name, bytes, true);
        assert!(d.records.is_empty(), "{name}");
        assert_eq!(d.errors.len(), 1, "{name}: {:?}", d.errors);
        assert_eq!(d.errors[0].kind, ErrorKind::Foreign, "{name}");
        assert_eq!(d.errors[0].source, name);
    }
    let empty = decode_one("empty", b"", true);
    assert!(empty.records.is_empty() && empty.errors.is_empty());
    // JSON that is not an ArchivalRecord.
    let d = decode_one("j.jsonl", b"{\"a\":1}\n[1,2]\n", true);
    assert_eq!((d.records.len(), d.errors.len()), (0, 1));
    assert_eq!(d.errors[0].line, Some(1));
}

#[test]
fn skip_mode_skips_bad_lines_and_counts_them() {
    let name = "ndt-jdczh_1553815964_00000000000003E8.00183.jsonl.zst";
    let text = zstd::decode_all(&read_fixture(name)[..]).expect("zstd");
    let mut lines: Vec<Vec<u8>> = text
        .split_inclusive(|c| *c == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    lines[10] = b"{\"Timestamp\":\"2019-01-01T00:00:00Z\",\"RawIDM\":\"!!!\"}\n".to_vec();
    lines[20] = b"garbage\n".to_vec();
    lines[30] = b"{\"Timestamp\":\"2019-01-01T00:00:00Z\",\"RawIDM\":\"AAAA\"}\n".to_vec();
    let bad = lines.concat();
    let d = decode(
        &[("bad.jsonl", &bad)],
        ReaderOptions {
            stop_on_error: false,
            ..ReaderOptions::default()
        },
        4096,
    );
    assert_eq!(d.records.len(), 147);
    assert_eq!(
        d.errors.iter().map(|e| e.line).collect::<Vec<_>>(),
        [Some(11), Some(21), Some(31)]
    );
    let skipped: u64 = d.batches.iter().map(|b| b.stats.skipped).sum();
    assert_eq!(skipped, 3);
    // Stop mode: the ten records before line 11, then the error.
    let d = decode_one("bad.jsonl", &bad, true);
    assert_eq!((d.records.len(), d.errors.len()), (9, 1));
    // A damaged source ends; the next source is still read in skip mode.
    let good = read_fixture(name);
    let cut = &good[..good.len() / 2];
    let d = decode(
        &[("cut.zst", cut), ("good.zst", &good)],
        ReaderOptions {
            stop_on_error: false,
            ..ReaderOptions::default()
        },
        1 << 16,
    );
    assert_eq!(d.errors.len(), 1);
    assert_eq!(d.errors[0].source, "cut.zst");
    assert!(
        d.records
            .iter()
            .filter(|r| r.segment.source == "good.zst")
            .count()
            == 150
    );
}

#[test]
fn overlong_lines_are_bounded() {
    let mut big = vec![b'{'; 3 << 20];
    big.push(b'\n');
    let name = "ndt-jdczh_1553815964_00000000000003E8.00183.jsonl.zst";
    let text = zstd::decode_all(&read_fixture(name)[..]).expect("zstd");
    let input = [text.clone(), big, text].concat();
    let d = decode(
        &[("big.jsonl", &input)],
        ReaderOptions {
            stop_on_error: false,
            ..ReaderOptions::default()
        },
        1 << 16,
    );
    assert_eq!(d.errors.len(), 1, "{:?}", d.errors);
    assert_eq!(d.errors[0].kind, ErrorKind::LineTooLong);
    assert_eq!(d.records.len(), 300);
}

#[test]
fn garbage_fuzz_never_panics() {
    // Deterministic xorshift garbage, alone and appended to a valid prefix.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let base = read_fixture("testdata.zst");
    let text = zstd::decode_all(&base[..]).expect("zstd");
    for round in 0..200 {
        let n = usize::try_from(rnd() % 4096).expect("small");
        let junk: Vec<u8> = (0..n).map(|_| rnd().to_le_bytes()[0]).collect();
        let cut = usize::try_from(rnd()).expect("usize") % text.len();
        for input in [
            junk.clone(),
            [&text[..cut], &junk[..]].concat(),
            [&b"{\"Timestamp\":"[..], &junk[..]].concat(),
        ] {
            let d = decode_one("fuzz", &input, round % 2 == 0);
            assert!(d.errors.len() <= input.len() + 1);
        }
    }
}

/// Base64 written differently in the JSON (escaped characters, no padding, whitespace around
/// values) decodes to the same payload, and bad base64 in a short or long string of
/// `RawIDM` or `Attributes` is the same clear error, whichever decoder (inline for short
/// strings, SIMD for long ones) met it.
#[test]
fn base64_spellings_and_bad_base64() {
    let name = "ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst";
    let text = zstd::decode_all(&read_fixture(name)[..]).expect("zstd");
    let line = text
        .split(|c| *c == b'\n')
        .find(|l| l.windows(8).any(|w| w == b"RawIDM\":"))
        .expect("a record line")
        .to_vec();
    let original = decode_one("a.jsonl", &line, true);
    assert_eq!(original.records.len(), 1);
    let s = String::from_utf8(line.clone()).expect("utf8");
    // Every '/' escaped, every 'A' after the first 200 bytes as \u0041, padding dropped.
    let (head, tail) = s.split_at(200);
    let respelled = format!(
        "{}{}",
        head.replace('/', "\\/"),
        tail.replace('A', "\\u0041").replace("==\"", "\"")
    )
    .replace(',', " ,\t")
    .replace("\":", "\" : ");
    let d = decode_one("b.jsonl", respelled.as_bytes(), true);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    assert_eq!(d.records[0].payload, original.records[0].payload);
    // Bad base64: a character outside the alphabet in RawIDM (96 characters), in a long
    // attribute (tcp_info) and in a short one ("AA==" → "A!=="), and a 5-character one.
    let raw_idm = s.find("\"RawIDM\":\"").expect("RawIDM") + 20;
    let long_attr = s.find("\"AQAAAA").expect("tcp_info attribute") + 100;
    let short_attr = s.rfind("\"AA==\"").expect("short attribute") + 2;
    for (at, what) in [
        (raw_idm, "RawIDM: invalid base64"),
        (long_attr, "Attributes: invalid base64"),
        (short_attr, "Attributes: invalid base64"),
    ] {
        let mut bad = line.clone();
        bad[at] = b'!';
        let d = decode_one("bad.jsonl", &bad, true);
        assert_eq!((d.records.len(), d.errors.len()), (0, 1), "{what}");
        assert_eq!(d.errors[0].kind, ErrorKind::Record);
        assert!(
            d.errors[0].message.contains(what),
            "{}",
            d.errors[0].message
        );
    }
    let five = s.replacen("\"AA==\"", "\"AAAAA\"", 1);
    let d = decode_one("five.jsonl", five.as_bytes(), true);
    assert!(d.errors[0].message.contains("Attributes: invalid base64"));
}
