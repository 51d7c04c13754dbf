//! Rebuilds a record's netlink payload (`inet_diag_msg` + rtattrs, as the kernel sent it)
//! from an `ArchivalRecord`'s base64 `RawIDM` and `Attributes`, straight into the batch's
//! payload region. Each attribute gets its 4-byte rtattr header (`rta_len` = 4 + payload,
//! `rta_type` = its index, host order) and is padded to 4 bytes, so `parse_diag` reads it
//! back exactly as a live reply.

use tcpinfo_core::parse::attrs::RTA_HDR_LEN;
use tcpinfo_core::parse::diag_msg::INET_DIAG_MSG_LEN;

use crate::json::{Scanned, Text};

/// Why a payload could not be rebuilt.
pub type PayloadError = &'static str;

/// Decodes standard base64 (padding optional) onto the end of `out`; returns the bytes
/// written, or `None` (and `out` unchanged) for a character outside the alphabet or an
/// impossible length.
///
/// `base64-simd` (AVX2/SSSE3 chosen at run time): the strings are short (8..400
/// characters, several per record) but decoding was a third of the reader's time with a
/// scalar table decoder.
pub fn decode_base64(out: &mut Vec<u8>, text: &[u8]) -> Option<usize> {
    let engine = if text.len() % 4 == 0 {
        &base64_simd::STANDARD
    } else {
        &base64_simd::STANDARD_NO_PAD
    };
    let len = engine.decoded_length(text).ok()?;
    let start = out.len();
    out.reserve(len);
    let spare = &mut out.spare_capacity_mut()[..len];
    let n = engine
        .decode(text, base64_simd::Out::from_uninit_slice(spare))
        .ok()?
        .len();
    // SAFETY: `decode` initialised the first `n` bytes of the spare capacity.
    unsafe { out.set_len(start + n) };
    Some(n)
}

fn decode_into(out: &mut Vec<u8>, text: &[u8]) -> Result<usize, ()> {
    decode_base64(out, text).ok_or(())
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
    let n = decode_into(out, s.text(line, raw_idm)).map_err(|()| "RawIDM: invalid base64")?;
    if n != INET_DIAG_MSG_LEN {
        return Err("RawIDM: not a 72-byte inet_diag_msg");
    }
    for (ty, attr) in s.attributes.iter().enumerate() {
        let Some(text) = attr else { continue };
        let ty = u16::try_from(ty).map_err(|_| "Attributes: more than 65536 slots")?;
        let hdr = out.len();
        out.extend_from_slice(&[0; RTA_HDR_LEN]);
        let n = decode_into(out, s.text(line, *text)).map_err(|()| "Attributes: invalid base64")?;
        let len = u16::try_from(RTA_HDR_LEN + n)
            .map_err(|_| "Attributes: longer than an rtattr can be")?;
        out[hdr..hdr + 2].copy_from_slice(&len.to_ne_bytes());
        out[hdr + 2..hdr + 4].copy_from_slice(&ty.to_ne_bytes());
        out.resize(out.len().next_multiple_of(4), 0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::decode_base64;
    use base64::Engine as _;

    #[test]
    fn agrees_with_the_base64_crate() {
        let engine = base64::engine::general_purpose::STANDARD;
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x.to_le_bytes()[0]
                })
                .collect();
            let text = engine.encode(&bytes);
            let mut out = vec![7];
            assert_eq!(decode_base64(&mut out, text.as_bytes()), Some(len));
            assert_eq!(&out[1..], &bytes[..]);
            let unpadded = text.trim_end_matches('=');
            let mut out = Vec::new();
            assert_eq!(decode_base64(&mut out, unpadded.as_bytes()), Some(len));
            assert_eq!(out, bytes);
        }
        for bad in ["A", "AB=C", "AB!D", "ABCDE", "====", "AB\nC"] {
            let mut out = vec![1, 2];
            assert_eq!(decode_base64(&mut out, bad.as_bytes()), None, "{bad}");
            assert_eq!(out, [1, 2]);
        }
    }
}
