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
    if text.len() <= SHORT_BASE64 {
        return decode_short(out, text);
    }
    decode_simd(out, text)
}

/// Strings up to this long are decoded by [`decode_short`]: most of a record's strings
/// (5 of its 8 in M-Lab's busy NDT archive: 4..24 characters), where `base64-simd` spends
/// more in dispatch, length checks and its own scalar tail than in decoding (perf, session
/// 6 in docs/BENCHMARKS.md).
const SHORT_BASE64: usize = 32;

/// For each byte: its 6-bit value in the standard alphabet, or 0xFF.
pub(crate) const DECODE_TABLE: [u8; 256] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut t = [0xFF; 256];
    let mut i = 0;
    #[expect(clippy::cast_possible_truncation, reason = "i < 64")]
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// [`decode_base64`] for short strings, scalar and inline, accepting exactly what
/// `base64-simd` accepts: up to two `=` when the length is a multiple of 4, none
/// otherwise; the unused low bits of the last character zero.
fn decode_short(out: &mut Vec<u8>, text: &[u8]) -> Option<usize> {
    let len = text.len();
    let pad = match text {
        [.., b'=', b'='] if len % 4 == 0 => 2,
        [.., b'='] if len % 4 == 0 => 1,
        _ => 0,
    };
    let body = &text[..len - pad];
    let quads = body.chunks_exact(4);
    let extra = quads.remainder();
    if extra.len() == 1 {
        return None;
    }
    let start = out.len();
    out.reserve(body.len() / 4 * 3 + 2);
    let mut bad = 0u8;
    for q in quads {
        let v = q.iter().fold(0u32, |acc, &c| {
            let d = DECODE_TABLE[usize::from(c)];
            bad |= d;
            acc << 6 | u32::from(d)
        });
        out.extend_from_slice(&v.to_be_bytes()[1..]);
    }
    let d: [u8; 3] = {
        let mut d = [0u8; 3];
        for (x, &c) in d.iter_mut().zip(extra) {
            *x = DECODE_TABLE[usize::from(c)];
            bad |= *x;
        }
        d
    };
    match extra.len() {
        2 => {
            bad |= if d[1].trailing_zeros() >= 4 { 0 } else { 0xFF };
            out.push(d[0] << 2 | d[1] >> 4);
        }
        3 => {
            bad |= if d[2].trailing_zeros() >= 2 { 0 } else { 0xFF };
            out.extend_from_slice(&[d[0] << 2 | d[1] >> 4, d[1] << 4 | d[2] >> 2]);
        }
        _ => {}
    }
    // A byte outside the alphabet decodes to 0xFF: all six value bits are below 0x40.
    if bad & 0x80 != 0 {
        out.truncate(start);
        return None;
    }
    Some(out.len() - start)
}

/// [`decode_base64`] for long strings.
fn decode_simd(out: &mut Vec<u8>, text: &[u8]) -> Option<usize> {
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
pub(crate) mod tests {
    use super::decode_base64;
    use base64::Engine as _;

    /// `len` pseudo-random bytes from the xorshift state `x` (seeded tests, no dependency).
    pub(crate) fn random_bytes(x: &mut u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *x ^= *x << 13;
                *x ^= *x >> 7;
                *x ^= *x << 17;
                x.to_le_bytes()[0]
            })
            .collect()
    }

    #[test]
    fn agrees_with_the_base64_crate() {
        let engine = base64::engine::general_purpose::STANDARD;
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for len in 0..300 {
            let bytes = random_bytes(&mut x, len);
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

    /// The short-string decoder accepts, rejects and decodes exactly as `base64-simd`
    /// (which decodes the long ones): every string of up to 6 characters over an alphabet
    /// with padding, a character outside the alphabet and values with low bits set.
    #[test]
    fn short_strings_decode_as_base64_simd_does() {
        let chars = b"AQBg/w=!";
        let mut text = Vec::new();
        for len in 0..=6u32 {
            for mut k in 0..chars.len().pow(len) {
                text.clear();
                for _ in 0..len {
                    text.push(chars[k % chars.len()]);
                    k /= chars.len();
                }
                let (mut short, mut simd) = (vec![9], vec![9]);
                let a = super::decode_short(&mut short, &text);
                let b = super::decode_simd(&mut simd, &text);
                assert_eq!(
                    (a, &short),
                    (b, &simd),
                    "{}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
        // Longer strings around the switch-over, valid and with one bad byte.
        let engine = base64::engine::general_purpose::STANDARD;
        for len in 0..40usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11).to_le_bytes()[0]).collect();
            let text = engine.encode(&bytes).into_bytes();
            for bad_at in [None, Some(0), Some(text.len() / 2)] {
                let mut t = text.clone();
                if let Some(i) = bad_at.filter(|&i| i < t.len()) {
                    t[i] = b'-';
                }
                let (mut short, mut simd) = (Vec::new(), Vec::new());
                let a = super::decode_short(&mut short, &t);
                let b = super::decode_simd(&mut simd, &t);
                assert_eq!((a, &short), (b, &simd), "{}", String::from_utf8_lossy(&t));
            }
        }
    }
}
