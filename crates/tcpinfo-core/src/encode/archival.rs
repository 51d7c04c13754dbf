//! M-Lab `ArchivalRecord` JSON lines (tcp-info v1.9 `netlink.ArchivalRecord`):
//! `{"Timestamp":T,"RawIDM":B64,"Attributes":[null,B64,…]}\n`.
//!
//! `Attributes[i]` is the standard-base64 payload of attribute type `i` (no rtattr
//! header) or `null`; the array is as long as the largest type present + 1 (at least 1:
//! `[null]` without attributes), like Go's `json.Marshal` of M-Lab's `[][]byte`. An
//! attribute present with an empty payload (`INET_DIAG_PAD`) encodes as `""`, as Go does
//! for a non-nil empty slice.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::rfc3339::write_rfc3339;
use crate::parse::attrs::Attrs;
use crate::parse::diag_msg::InetDiagMsg;

/// The first line of every archive file (M-Lab's zero `Timestamp` and `Metadata`).
///
/// `start_nanos` is the connection's first-seen time in unix nanoseconds.
pub fn write_header_line(out: &mut Vec<u8>, uuid: &str, sequence: u64, start_nanos: i64) {
    out.extend_from_slice(br#"{"Timestamp":""#);
    write_rfc3339(out, super::rfc3339::GO_ZERO_TIME);
    out.extend_from_slice(br#"","Metadata":{"UUID":""#);
    write_json_string_body(out, uuid);
    out.extend_from_slice(br#"","Sequence":"#);
    out.extend_from_slice(sequence.to_string().as_bytes());
    out.extend_from_slice(br#","StartTime":""#);
    write_rfc3339(out, start_nanos);
    out.extend_from_slice(b"\"}}\n");
}

/// Appends one `ArchivalRecord` line (with its trailing `\n`) to `out`.
pub fn write_record_line(
    out: &mut Vec<u8>,
    unix_nanos: i64,
    msg: &InetDiagMsg<'_>,
    attrs: &Attrs<'_>,
) {
    out.extend_from_slice(br#"{"Timestamp":""#);
    write_rfc3339(out, unix_nanos);
    out.extend_from_slice(br#"","RawIDM":""#);
    push_b64(out, msg.bytes());
    out.push(b'"');
    // M-Lab allocates `maxAttrType + 1` slots with `maxAttrType` starting at 0, so a message
    // without any attribute (a FIN_WAIT2 timewait socket) is written `"Attributes":[null]`.
    let max = attrs.max_type().unwrap_or(0);
    out.extend_from_slice(br#","Attributes":["#);
    for ty in 0..=max {
        if ty > 0 {
            out.push(b',');
        }
        match attrs.get(ty) {
            Some(payload) => {
                out.push(b'"');
                push_b64(out, payload);
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
    }
    out.push(b']');
    out.extend_from_slice(b"}\n");
}

fn push_b64(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    out.resize(start + bytes.len().div_ceil(3) * 4, 0);
    let written = STANDARD
        .encode_slice(bytes, &mut out[start..])
        .unwrap_or_default();
    out.truncate(start + written);
}

fn write_json_string_body(out: &mut Vec<u8>, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
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
