//! Decoded JSON lines (`tcpinfo csv --json`), one per record, written in Rust per batch:
//! `{"timestamp":…,"uuid":…,"sequence":…,"source":…,<every decoded field>}`. The fields are
//! `tcpinfo_core::decode_connection`'s, as `Connection.decoded` has them; 64-bit counters are
//! decimal strings and raw bytes base64, as `watch --json` prints them
//! (`src/cli/format/json.ts`). Building the same objects in JS costs ~75 µs per record
//! (`nativeDecodeRecords`); this costs a few.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use tcpinfo_core::parse::tcp_info::AccEcnLayout;
use tcpinfo_core::{decode_connection, RecordIter, Value, GO_ZERO_TIME};

use crate::batch::{ArchiveBatch, Segment};
use crate::time::write_iso_millis;

/// The file name of `source` without M-Lab's `.NNNNN.jsonl[.zst]` or `.zst` ending: what
/// names the connections of a file without a header line (`<stem>_<cookie %016X>`), as
/// `ArchiveBatch.recordUuid` in `src/archive/archive-batch.ts` does.
pub fn file_stem(source: &str) -> &str {
    let name = source.rsplit('/').next().unwrap_or(source);
    let base = name
        .strip_suffix(".jsonl.zst")
        .or_else(|| name.strip_suffix(".jsonl"))
        .map(|b| {
            match b
                .len()
                .checked_sub(6)
                .and_then(|i| b.get(i..).map(|t| (i, t)))
            {
                Some((i, t))
                    if t.starts_with('.') && t[1..].bytes().all(|c| c.is_ascii_digit()) =>
                {
                    &b[..i]
                }
                _ => b,
            }
        });
    base.or_else(|| name.strip_suffix(".zst")).unwrap_or(name)
}

/// The UUID of a record of `segment` with `cookie`: the header's, else `<stem>_<cookie>`.
pub fn record_uuid(segment: &Segment, cookie: u64) -> String {
    match &segment.uuid {
        Some(u) => u.clone(),
        None => format!("{}_{cookie:016X}", file_stem(&segment.source)),
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    string_body(out, s);
    out.push(b'"');
}

fn string_body(out: &mut Vec<u8>, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U32(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::U64(n) => string(out, &n.to_string()),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Str(s) => string(out, s),
        Value::Bytes(b) => string(out, &STANDARD.encode(b)),
        Value::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                value(out, item);
            }
            out.push(b']');
        }
        Value::Obj(fields) => {
            out.push(b'{');
            fields_of(out, fields);
            out.push(b'}');
        }
    }
}

fn fields_of(out: &mut Vec<u8>, fields: &[(&'static str, Value)]) {
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, k);
        out.push(b':');
        value(out, v);
    }
}

/// Appends `s` as a JSON string (quoted, escaped).
pub fn write_json_string(out: &mut Vec<u8>, s: &str) {
    string(out, s);
}

/// Appends `fields` as flat JSON members, each as `,"key":value`: nested objects are
/// joined with `_` under `prefix` (`tcpInfo.bytesAcked` → `tcpInfo_bytesAcked`), lists and
/// scalars as [`write_json_rows`] writes them (64-bit counters as decimal strings, bytes
/// base64). The Kafka sink's `decoded` value (`tcpinfo-kafka`) is made of these.
pub fn write_flat_fields(out: &mut Vec<u8>, prefix: &str, fields: &[(&'static str, Value)]) {
    for (k, v) in fields {
        if let Value::Obj(inner) = v {
            if prefix.is_empty() {
                write_flat_fields(out, k, inner);
            } else {
                write_flat_fields(out, &format!("{prefix}_{k}"), inner);
            }
            continue;
        }
        out.extend_from_slice(b",\"");
        if !prefix.is_empty() {
            string_body(out, prefix);
            out.push(b'_');
        }
        string_body(out, k);
        out.extend_from_slice(b"\":");
        value(out, v);
    }
}

/// Appends one JSON line per record of `batch`; returns the lines written.
pub fn write_json_rows(out: &mut Vec<u8>, batch: &ArchiveBatch, layout: AccEcnLayout) -> usize {
    let r = &batch.records;
    let mut n = 0;
    for (i, rec) in RecordIter::new(&r.index, &r.payloads, &r.lines).enumerate() {
        let seg = batch.segment_of(i).and_then(|s| batch.segments.get(s));
        out.extend_from_slice(b"{\"timestamp\":\"");
        write_iso_millis(out, batch.time(i).unwrap_or(GO_ZERO_TIME));
        out.extend_from_slice(b"\",\"uuid\":");
        let default = Segment::default();
        let seg = seg.unwrap_or(&default);
        string(out, &record_uuid(seg, rec.cookie));
        if let Some(s) = seg.sequence {
            out.extend_from_slice(format!(",\"sequence\":{s}").as_bytes());
        }
        out.extend_from_slice(b",\"source\":");
        string(out, &seg.source);
        match decode_connection(rec.payload, layout) {
            Ok(Value::Obj(fields)) if !fields.is_empty() => {
                out.push(b',');
                fields_of(out, &fields);
            }
            _ => out.extend_from_slice(
                format!(",\"family\":{},\"state\":{}", rec.family, rec.state).as_bytes(),
            ),
        }
        out.extend_from_slice(b"}\n");
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::file_stem;

    #[test]
    fn stems_as_the_ts_side() {
        assert_eq!(
            file_stem("/a/b/ndt-x_1_00000000000003E8.00183.jsonl.zst"),
            "ndt-x_1_00000000000003E8"
        );
        assert_eq!(file_stem("archiveRecords.jsonl.zst"), "archiveRecords");
        assert_eq!(file_stem("testdata.zst"), "testdata");
        assert_eq!(file_stem("x.jsonl"), "x");
        assert_eq!(file_stem("x.12.jsonl"), "x.12");
        assert_eq!(file_stem("-"), "-");
        assert_eq!(file_stem("stream"), "stream");
    }
}
