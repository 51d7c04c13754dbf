//! Rebuilds a record's netlink payload (`inet_diag_msg` + rtattrs, as the kernel sent it)
//! from an `ArchivalRecord`'s base64 `RawIDM` and `Attributes`, straight into the batch's
//! payload region. Each attribute gets its 4-byte rtattr header (`rta_len` = 4 + payload,
//! `rta_type` = its index, host order) and is padded to 4 bytes, so `parse_diag` reads it
//! back exactly as a live reply.

use base64::alphabet::STANDARD;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use tcpinfo_core::parse::attrs::RTA_HDR_LEN;
use tcpinfo_core::parse::diag_msg::INET_DIAG_MSG_LEN;

use crate::json::{Scanned, Text};

/// Standard base64; padding optional (Go writes it, other writers may not).
const B64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a payload could not be rebuilt.
pub type PayloadError = &'static str;

fn decode_into(out: &mut Vec<u8>, text: &[u8]) -> Result<usize, PayloadError> {
    let start = out.len();
    out.resize(start + text.len().div_ceil(4) * 3, 0);
    if let Ok(n) = B64.decode_slice(text, &mut out[start..]) {
        out.truncate(start + n);
        Ok(n)
    } else {
        out.truncate(start);
        Err("invalid base64")
    }
}

/// Appends the payload of the scanned record `s` (of `line`) to `out`. On error `out` is
/// left as it was.
///
/// # Errors
/// What was wrong: bad base64, a `RawIDM` that is not 72 bytes, an attribute too long
/// for an rtattr, or too many attribute slots.
pub fn append_payload(
    out: &mut Vec<u8>,
    line: &[u8],
    s: &Scanned,
    raw_idm: Text,
) -> Result<(), PayloadError> {
    let start = out.len();
    let r = build(out, line, s, raw_idm);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

fn build(out: &mut Vec<u8>, line: &[u8], s: &Scanned, raw_idm: Text) -> Result<(), PayloadError> {
    let n = decode_into(out, s.text(line, raw_idm)).map_err(|_| "RawIDM: invalid base64")?;
    if n != INET_DIAG_MSG_LEN {
        return Err("RawIDM: not a 72-byte inet_diag_msg");
    }
    for (ty, attr) in s.attributes.iter().enumerate() {
        let Some(text) = attr else { continue };
        let ty = u16::try_from(ty).map_err(|_| "Attributes: more than 65536 slots")?;
        let hdr = out.len();
        out.extend_from_slice(&[0; RTA_HDR_LEN]);
        let n = decode_into(out, s.text(line, *text)).map_err(|_| "Attributes: invalid base64")?;
        let len = u16::try_from(RTA_HDR_LEN + n)
            .map_err(|_| "Attributes: longer than an rtattr can be")?;
        out[hdr..hdr + 2].copy_from_slice(&len.to_ne_bytes());
        out[hdr + 2..hdr + 4].copy_from_slice(&ty.to_ne_bytes());
        out.resize(out.len().next_multiple_of(4), 0);
    }
    Ok(())
}
