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

/// Standard base64 alphabet value of each byte, shifted into place for character `k` of
/// a quad (`T[k][c] = value << (18 - 6k)`); bit 31 marks bytes outside the alphabet.
const TABLES: [[u32; 256]; 4] = {
    let mut t = [[1u32 << 31; 256]; 4];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        let c = alphabet[i] as usize;
        #[expect(clippy::cast_possible_truncation, reason = "i < 64")]
        let v = i as u32;
        t[0][c] = v << 18;
        t[1][c] = v << 12;
        t[2][c] = v << 6;
        t[3][c] = v;
        i += 1;
    }
    t
};
const BAD: u32 = 1 << 31;

#[inline]
fn quad(q: &[u8]) -> u32 {
    TABLES[0][q[0] as usize]
        | TABLES[1][q[1] as usize]
        | TABLES[2][q[2] as usize]
        | TABLES[3][q[3] as usize]
}

/// Decodes standard base64 (padding optional) onto the end of `out`; returns the bytes
/// written, or `None` (and `out` unchanged) for a character outside the alphabet or an
/// impossible length.
///
/// Hand-written rather than the `base64` crate: the strings are short (8..400 characters,
/// several per record) and decoding was a third of the reader's time. Pre-shifted lookup
/// tables, two quads per step written as one 8-byte store (6 bytes used; the buffer has 2
/// bytes of slack, trimmed at the end).
pub fn decode_base64(out: &mut Vec<u8>, text: &[u8]) -> Option<usize> {
    let body = match text {
        [rest @ .., b'=', b'='] | [rest @ .., b'='] if text.len() % 4 == 0 => rest,
        _ => text,
    };
    let (full, tail) = body.split_at(body.len() / 4 * 4);
    let tail_bytes = match tail.len() {
        0 => 0,
        2 => 1,
        3 => 2,
        _ => return None,
    };
    let start = out.len();
    let len = full.len() / 4 * 3 + tail_bytes;
    out.resize(start + len + 2, 0);
    let dst = &mut out[start..];
    let mut bad = 0u32;
    let mut at = 0;
    let pairs = full.chunks_exact(8);
    let single = pairs.remainder();
    for q in pairs {
        let (a, b) = (quad(&q[..4]), quad(&q[4..]));
        bad |= a | b;
        let x = u64::from(a) << 40 | u64::from(b) << 16;
        if let Some(d) = dst.get_mut(at..at + 8) {
            d.copy_from_slice(&x.to_be_bytes());
        }
        at += 6;
    }
    let mut last = |v: u32, bytes: usize| {
        bad |= v;
        if let Some(d) = dst.get_mut(at..at + bytes) {
            d.copy_from_slice(&v.to_be_bytes()[1..=bytes]);
        }
        at += bytes;
    };
    if single.len() == 4 {
        last(quad(single), 3);
    }
    if tail_bytes > 0 {
        let v = tail
            .iter()
            .enumerate()
            .fold(0, |v, (k, c)| v | TABLES[k][*c as usize]);
        last(v, tail_bytes);
    }
    if bad & BAD != 0 {
        out.truncate(start);
        return None;
    }
    out.truncate(start + len);
    Some(len)
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
