//! Compatibility with M-Lab tcp-info v1.9, proven on its real captures in `tests/fixtures/mlab/`.
//!
//! - `testdata.zst` (420 raw netlink messages) parses with `NlMsgIter` + `parse_diag`, each
//!   message carries a 168-byte `INET_DIAG_INFO`, and decodes with `decode_connection`.
//! - Encoding those messages with `write_record_line(.., GO_ZERO_TIME, ..)` reproduces M-Lab's
//!   `archiveRecords.jsonl.zst` byte for byte, line by line, in order.
//! - Every `ArchivalRecord` line of every `*.jsonl.zst` archive survives the round trip
//!   JSON → netlink payload → `write_record_line` byte for byte (the whole line where the
//!   timestamp is UTC, from `"RawIDM"` on where M-Lab wrote a local zone), and every header line
//!   equals `write_header_line` for the same UUID, Sequence and StartTime.
//! - Decoded values match what was read by hand from the bytes (KERNEL-UAPI.md §1.1 offsets).

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value as Json;
use tcpinfo_core::parse::attrs::{INET_DIAG_CONG, INET_DIAG_INFO};
use tcpinfo_core::parse::diag_msg::{parse_diag, INET_DIAG_MSG_LEN};
use tcpinfo_core::parse::nlmsg::{NlMsgIter, SOCK_DIAG_BY_FAMILY};
use tcpinfo_core::parse::tcp_info::AccEcnLayout;
use tcpinfo_core::{decode_connection, write_header_line, write_record_line, Value, GO_ZERO_TIME};

/// Messages in `testdata.zst` (and lines in `archiveRecords.jsonl.zst`).
const TESTDATA_MESSAGES: usize = 420;
/// `tcp_info` length of the 4.10–4.17 kernel that produced `testdata.zst`.
const TESTDATA_TCP_INFO_LEN: usize = 168;
/// The layout does not matter below 280 bytes; any will do.
const LAYOUT: AccEcnLayout = AccEcnLayout::U16Pair;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mlab")
}

fn read_zst(name: &str) -> Vec<u8> {
    let path = fixture_dir().join(name);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    zstd::decode_all(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `*.jsonl.zst` archive in the fixture directory, sorted by name.
fn archives() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("fixture dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".jsonl.zst"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 5,
        "expected the five M-Lab archives, found {names:?}"
    );
    names
}

/// The `SOCK_DIAG_BY_FAMILY` payloads of `testdata.zst`, in order.
fn testdata_payloads(raw: &[u8]) -> Vec<&[u8]> {
    NlMsgIter::new(raw)
        .enumerate()
        .map(|(i, m)| {
            let m = m.unwrap_or_else(|e| panic!("message {i}: {e}"));
            assert_eq!(m.msg_type, SOCK_DIAG_BY_FAMILY, "message {i}");
            m.payload
        })
        .collect()
}

fn lines(text: &[u8]) -> Vec<&[u8]> {
    assert_eq!(text.last(), Some(&b'\n'), "archives end with a newline");
    text[..text.len() - 1].split(|b| *b == b'\n').collect()
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses Go's RFC 3339 output (`2019-08-26T19:55:42.754686952-04:00`, `...Z`) into unix
/// nanoseconds; Go's zero time becomes [`GO_ZERO_TIME`]. Returns the nanos and whether the
/// text was in UTC (`Z`).
fn parse_rfc3339(s: &str) -> (i64, bool) {
    if s == "0001-01-01T00:00:00Z" {
        return (GO_ZERO_TIME, true);
    }
    let num = |r: std::ops::Range<usize>| {
        s[r].parse::<i64>()
            .unwrap_or_else(|_| panic!("bad time {s}"))
    };
    let days = days_from_civil(num(0..4), num(5..7), num(8..10));
    let mut secs = days * 86_400 + num(11..13) * 3600 + num(14..16) * 60 + num(17..19);
    let mut rest = &s[19..];
    let mut nanos = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        let padded = format!("{:0<9}", &frac[..digits]);
        nanos = padded.parse::<i64>().expect("fraction");
        rest = &frac[digits..];
    }
    let utc = rest == "Z";
    if !utc {
        let sign = if rest.starts_with('-') { -1 } else { 1 };
        let off = rest[1..3].parse::<i64>().expect("zone hours") * 3600
            + rest[4..6].parse::<i64>().expect("zone minutes") * 60;
        secs -= sign * off;
    }
    (secs * 1_000_000_000 + nanos, utc)
}

/// Rebuilds the netlink payload (`inet_diag_msg` + rtattrs, 4-byte aligned) of one record.
fn payload_from_record(rec: &Json) -> Vec<u8> {
    let mut payload = STANDARD
        .decode(rec["RawIDM"].as_str().expect("RawIDM"))
        .expect("RawIDM base64");
    assert_eq!(payload.len(), INET_DIAG_MSG_LEN);
    if let Some(attrs) = rec.get("Attributes").and_then(Json::as_array) {
        for (ty, a) in attrs.iter().enumerate() {
            let Some(b64) = a.as_str() else {
                assert!(a.is_null(), "attribute {ty} is neither a string nor null");
                continue;
            };
            let data = STANDARD.decode(b64).expect("attribute base64");
            let len = u16::try_from(4 + data.len()).expect("attribute length");
            payload.extend_from_slice(&len.to_ne_bytes());
            payload.extend_from_slice(&u16::try_from(ty).expect("type").to_ne_bytes());
            payload.extend_from_slice(&data);
            payload.resize(payload.len().next_multiple_of(4), 0);
        }
    }
    payload
}

fn field<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, name| match v {
        Value::Obj(fields) => {
            &fields
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("no field {name} in {v:?}"))
                .1
        }
        other => panic!("{name}: not an object: {other:?}"),
    })
}

fn has_field(v: &Value, name: &str) -> bool {
    matches!(v, Value::Obj(fields) if fields.iter().any(|(n, _)| *n == name))
}

#[test]
fn testdata_parses_and_decodes() {
    let raw = read_zst("testdata.zst");
    let payloads = testdata_payloads(&raw);
    assert_eq!(payloads.len(), TESTDATA_MESSAGES);
    for (i, p) in payloads.iter().enumerate() {
        let (msg, attrs) = parse_diag(p).unwrap_or_else(|e| panic!("message {i}: {e}"));
        assert!(
            msg.family() == 2 || msg.family() == 10,
            "message {i}: family {}",
            msg.family()
        );
        assert_eq!(attrs.dropped(), 0, "message {i}");
        let info = attrs
            .get(INET_DIAG_INFO)
            .unwrap_or_else(|| panic!("message {i}: no INET_DIAG_INFO"));
        assert_eq!(info.len(), TESTDATA_TCP_INFO_LEN, "message {i}");
        let v = decode_connection(p, LAYOUT).unwrap_or_else(|e| panic!("message {i}: {e}"));
        let tcp = field(&v, &["tcpInfo"]);
        // A 168-byte tcp_info ends with deliveryRate (4.9) and has the app-limited bit, no busyTime.
        assert!(
            has_field(tcp, "deliveryRate") && has_field(tcp, "deliveryRateAppLimited"),
            "message {i}"
        );
        assert!(
            !has_field(tcp, "busyTime") && !has_field(tcp, "fastopenClientFail"),
            "message {i}"
        );
        assert_eq!(field(&v, &["id", "cookie"]), &Value::U64(msg.cookie()));
        assert!(
            !has_field(&v, "otherAttributes"),
            "message {i}: every attribute type is known"
        );
    }
}

#[test]
fn testdata_encodes_to_archive_records_byte_for_byte() {
    let raw = read_zst("testdata.zst");
    let expected = read_zst("archiveRecords.jsonl.zst");
    let expected = lines(&expected);
    let payloads = testdata_payloads(&raw);
    assert_eq!(expected.len(), payloads.len());
    let mut all = Vec::new();
    for (i, (p, want)) in payloads.iter().zip(&expected).enumerate() {
        let (msg, attrs) = parse_diag(p).expect("parse");
        let mut out = Vec::new();
        write_record_line(&mut out, GO_ZERO_TIME, &msg, &attrs);
        assert_eq!(out.pop(), Some(b'\n'));
        assert!(
            out == *want,
            "line {i} differs:\n ours:  {}\n mlab:  {}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(want)
        );
        all.extend_from_slice(&out);
        all.push(b'\n');
    }
    // And therefore the whole file.
    assert_eq!(all, read_zst("archiveRecords.jsonl.zst"));
}

#[test]
fn every_archive_line_round_trips() {
    for name in archives() {
        let text = read_zst(&name);
        let mut records = 0;
        let mut headers = 0;
        for (i, line) in lines(&text).into_iter().enumerate() {
            let ctx = format!("{name} line {}", i + 1);
            let rec: Json = serde_json::from_slice(line).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let (ts, ts_utc) = parse_rfc3339(rec["Timestamp"].as_str().expect("Timestamp"));
            if let Some(meta) = rec.get("Metadata") {
                headers += 1;
                assert_eq!(i, 0, "{ctx}: the header is the first line");
                assert_eq!(ts, GO_ZERO_TIME, "{ctx}");
                let uuid = meta["UUID"].as_str().expect("UUID");
                let seq = meta["Sequence"].as_u64().expect("Sequence");
                let (start, start_utc) =
                    parse_rfc3339(meta["StartTime"].as_str().expect("StartTime"));
                let mut out = Vec::new();
                write_header_line(&mut out, uuid, seq, start);
                assert_eq!(out.pop(), Some(b'\n'));
                if start_utc {
                    assert_eq!(
                        String::from_utf8_lossy(&out),
                        String::from_utf8_lossy(line),
                        "{ctx}"
                    );
                } else {
                    // Same JSON apart from the zone: we always write UTC.
                    let ours: Json = serde_json::from_slice(&out).expect("our header is JSON");
                    assert_eq!(ours["Metadata"]["UUID"], meta["UUID"], "{ctx}");
                    assert_eq!(ours["Metadata"]["Sequence"], meta["Sequence"], "{ctx}");
                    let ours_start = ours["Metadata"]["StartTime"].as_str().expect("StartTime");
                    assert_eq!(parse_rfc3339(ours_start), (start, true), "{ctx}");
                }
                continue;
            }
            records += 1;
            let payload = payload_from_record(&rec);
            let (msg, attrs) = parse_diag(&payload).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            decode_connection(&payload, LAYOUT).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let mut out = Vec::new();
            write_record_line(&mut out, ts, &msg, &attrs);
            assert_eq!(out.pop(), Some(b'\n'));
            let ours = String::from_utf8(out).expect("utf-8");
            let theirs = std::str::from_utf8(line).expect("utf-8");
            if ts_utc {
                assert_eq!(ours, theirs, "{ctx}");
            } else {
                let tail = |s: &str| s[s.find(r#""RawIDM""#).expect("RawIDM key")..].to_owned();
                assert_eq!(tail(&ours), tail(theirs), "{ctx}");
            }
        }
        assert!(records > 0, "{name}: no records");
        assert_eq!(
            headers,
            usize::from(!name.starts_with("archiveRecords")),
            "{name}: header lines"
        );
    }
}

#[test]
fn archive_record_counts_match_source_md() {
    let count = |name: &str| lines(&read_zst(name)).len();
    assert_eq!(count("archiveRecords.jsonl.zst"), 420);
    assert_eq!(
        count("ndt-jdczh_1553815964_00000000000003E8.00183.jsonl.zst"),
        151
    );
    assert_eq!(
        count("ndt-jdczh_1553815964_00000000000003E8.00185.jsonl.zst"),
        151
    );
    assert_eq!(
        count("ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst"),
        892
    );
    assert_eq!(
        count("finwait2-sample_1554836592_unsafe_000000000135A272.00000.jsonl.zst"),
        63
    );
}

/// Values read by hand from `zstd -dc testdata.zst | xxd`. The first message starts at byte 0:
/// nlmsghdr (16 B), inet_diag_msg at 16, attributes at 88; INET_DIAG_INFO's rtattr is at 0xAC,
/// so tcp_info byte k is at file offset 0xB0 + k.
#[test]
fn testdata_first_message_values_by_hand() {
    let raw = read_zst("testdata.zst");
    let payloads = testdata_payloads(&raw);
    let p = payloads[0];
    let (msg, attrs) = parse_diag(p).expect("parse");
    // inet_diag_msg: 0a 01 00 00 | 93 04 13 aa | 2620:0:1003:415:b33e:9d6a:81bf:87a1 | 2607:f8b0:400d:c0a::81
    assert_eq!(
        (msg.family(), msg.state(), msg.timer(), msg.retrans()),
        (10, 1, 0, 0)
    );
    assert_eq!((msg.sport(), msg.dport()), (0x9304, 0x13AA)); // 37636 → 5034
    assert_eq!(msg.src().to_string(), "2620:0:1003:415:b33e:9d6a:81bf:87a1");
    assert_eq!(msg.dst().to_string(), "2607:f8b0:400d:c0a::81");
    assert_eq!(msg.cookie(), 0x5A38); // bytes 44..52: 38 5a 00 00 00 00 00 00
    assert_eq!(msg.inode(), 0x0132_E8DC); // bytes 68..72: dc e8 32 01
    assert_eq!(attrs.get(INET_DIAG_CONG), Some(&b"cubic\0"[..]));

    let v = decode_connection(p, LAYOUT).expect("decode");
    assert_eq!(field(&v, &["stateName"]), &Value::Str("ESTAB".into()));
    assert_eq!(field(&v, &["congestion"]), &Value::Str("cubic".into()));
    assert_eq!(field(&v, &["id", "srcPort"]), &Value::U32(37636));
    assert_eq!(field(&v, &["id", "dstPort"]), &Value::U32(5034));
    let tcp = |name: &str| field(&v, &["tcpInfo", name]).clone();
    // b0: 01 00 00 00 00 07 78 01 — ESTABLISHED, options TS|SACK|WSCALE, wscale snd 8 rcv 7, app-limited.
    assert_eq!(tcp("state"), Value::U32(1));
    assert_eq!(tcp("options"), Value::U32(7));
    assert_eq!(tcp("sndWscale"), Value::U32(8));
    assert_eq!(tcp("rcvWscale"), Value::U32(7));
    assert_eq!(tcp("deliveryRateAppLimited"), Value::Bool(true));
    assert_eq!(tcp("rto"), Value::U32(216_000)); // b8: c0 4b 03 00
    assert_eq!(tcp("ato"), Value::U32(40_000)); // bc: 40 9c 00 00
    assert_eq!(tcp("sndMss"), Value::U32(1348)); // c0: 44 05 00 00
    assert_eq!(tcp("rcvMss"), Value::U32(1208)); // c4: b8 04 00 00
    assert_eq!(tcp("pmtu"), Value::U32(1500)); // ec: dc 05 00 00
    assert_eq!(tcp("rtt"), Value::U32(13_917)); // f4: 5d 36 00 00
    assert_eq!(tcp("sndSsthresh"), Value::U32(0x7FFF_FFFF)); // fc: ff ff ff 7f (infinite)
    assert_eq!(tcp("sndCwnd"), Value::U32(10)); // 100: 0a 00 00 00
    assert_eq!(tcp("maxPacingRate"), Value::U64(u64::MAX)); // 120: ff × 8
    assert_eq!(tcp("bytesAcked"), Value::U64(149_580)); // 128: 4c 48 02 00 …
    assert_eq!(tcp("bytesReceived"), Value::U64(110_590)); // 130: fe af 01 00 …
    assert_eq!(tcp("segsOut"), Value::U32(3985)); // 138: 91 0f 00 00
    assert_eq!(tcp("segsIn"), Value::U32(3984)); // 13c: 90 0f 00 00
    assert_eq!(tcp("minRtt"), Value::U32(13_880)); // 144: 38 36 00 00
    assert_eq!(tcp("deliveryRate"), Value::U64(563_741)); // 150: 1d 9a 08 00 …
}

#[test]
fn testdata_other_messages_values() {
    let raw = read_zst("testdata.zst");
    let payloads = testdata_payloads(&raw);
    // The second message starts at byte 356 (0x164): a connection to 2600:1901:0:94b6:: port 443.
    let v = decode_connection(payloads[1], LAYOUT).expect("decode");
    assert_eq!(
        field(&v, &["id", "dstIp"]),
        &Value::Str("2600:1901:0:94b6::".into())
    );
    assert_eq!(field(&v, &["id", "dstPort"]), &Value::U32(443));
    assert_eq!(field(&v, &["id", "cookie"]), &Value::U64(0x5BE0));
    assert_eq!(field(&v, &["tcpInfo", "rtt"]), &Value::U32(1109));
    assert_eq!(field(&v, &["tcpInfo", "bytesAcked"]), &Value::U64(12_798));
    assert_eq!(
        field(&v, &["tcpInfo", "bytesReceived"]),
        &Value::U64(78_492)
    );
    // The last one is IPv4 (no INET_DIAG_TCLASS then) to a NetBIOS session port.
    let last = payloads[TESTDATA_MESSAGES - 1];
    let v = decode_connection(last, LAYOUT).expect("decode");
    assert_eq!(field(&v, &["id", "family"]), &Value::U32(2));
    assert_eq!(
        field(&v, &["id", "srcIp"]),
        &Value::Str("100.101.230.131".into())
    );
    assert_eq!(
        field(&v, &["id", "dstIp"]),
        &Value::Str("100.101.231.59".into())
    );
    assert_eq!(field(&v, &["id", "dstPort"]), &Value::U32(139));
    assert!(has_field(&v, "tos") && !has_field(&v, "tclass"));
    assert_eq!(field(&v, &["tcpInfo", "sndMss"]), &Value::U32(1448));
    assert_eq!(field(&v, &["tcpInfo", "sndWscale"]), &Value::U32(7));
    assert_eq!(field(&v, &["tcpInfo", "rtt"]), &Value::U32(590));
    assert_eq!(field(&v, &["tcpInfo", "rttvar"]), &Value::U32(435));
}

#[test]
fn ndt_archive_values() {
    let text = read_zst("ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst");
    let all = lines(&text);
    let decode = |i: usize| {
        let rec: Json = serde_json::from_slice(all[i]).expect("json");
        decode_connection(&payload_from_record(&rec), LAYOUT).expect("decode")
    };
    // First record: the connection just opened (224-byte tcp_info, Linux 4.19–5.3).
    let first = decode(1);
    assert_eq!(
        field(&first, &["id", "srcIp"]),
        &Value::Str("::ffff:63.243.240.101".into()),
        "v4-mapped, as sent"
    );
    assert_eq!(field(&first, &["id", "srcPort"]), &Value::U32(33475));
    assert_eq!(
        field(&first, &["id", "cookie"]),
        &Value::U64(0x62D84),
        "the cookie in the file name"
    );
    assert_eq!(field(&first, &["congestion"]), &Value::Str("cubic".into()));
    assert_eq!(field(&first, &["tcpInfo", "bytesAcked"]), &Value::U64(0));
    assert_eq!(field(&first, &["tcpInfo", "rtt"]), &Value::U32(172_227));
    assert!(!has_field(
        field(&first, &["tcpInfo"]),
        "fastopenClientFail"
    ));
    assert!(
        !has_field(field(&first, &["tcpInfo"]), "sndWnd"),
        "224 bytes end before tcpi_rcv_ooopack"
    );
    assert!(has_field(field(&first, &["tcpInfo"]), "reordSeen"));
    // Last record: CLOSE_WAIT after a ~3.9 MB download.
    let last = decode(891);
    assert_eq!(
        field(&last, &["stateName"]),
        &Value::Str("CLOSE-WAIT".into())
    );
    assert_eq!(
        field(&last, &["tcpInfo", "bytesAcked"]),
        &Value::U64(3_938_159)
    );
    assert_eq!(
        field(&last, &["tcpInfo", "bytesSent"]),
        &Value::U64(3_939_771)
    );
    assert_eq!(field(&last, &["tcpInfo", "sndCwnd"]), &Value::U32(41));
    assert_eq!(field(&last, &["tcpInfo", "minRtt"]), &Value::U32(9508));
}

#[test]
fn finwait2_record_without_attributes() {
    let text = read_zst("finwait2-sample_1554836592_unsafe_000000000135A272.00000.jsonl.zst");
    let all = lines(&text);
    let last: Json = serde_json::from_slice(all[all.len() - 1]).expect("json");
    // M-Lab writes `"Attributes":[null]` for a message without any attribute.
    assert_eq!(last["Attributes"], serde_json::json!([null]));
    let payload = payload_from_record(&last);
    assert_eq!(payload.len(), INET_DIAG_MSG_LEN);
    let (msg, attrs) = parse_diag(&payload).expect("parse");
    assert_eq!(attrs.max_type(), None);
    let mut out = Vec::new();
    write_record_line(&mut out, 0, &msg, &attrs);
    assert!(
        out.ends_with(b"\",\"Attributes\":[null]}\n"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let v = decode_connection(&payload, LAYOUT).expect("decode");
    assert_eq!(field(&v, &["stateName"]), &Value::Str("FIN-WAIT-2".into()));
    assert!(
        !has_field(&v, "tcpInfo"),
        "no INET_DIAG_INFO: no made-up tcp_info"
    );
}
