//! The fast path for a record line in the form every writer uses (M-Lab's collector and
//! ours): `{"Timestamp":"T","RawIDM":"B64","Attributes":[null,"B64",…]}` with no spaces,
//! escapes or other keys. One pass over the line: each base64 string is decoded straight
//! into the payload region while its end is found (AVX2, 32 characters per step: the
//! closing `"` or the padding is simply the first byte outside the alphabet), instead of
//! a JSON scan that finds the strings and a second pass that decodes them; the date of
//! the `Timestamp` comes from a one-entry cache (all records of a file share a date).
//!
//! It accepts only lines the general path ([`crate::json::scan_line`] +
//! [`crate::payload::append_payload`]) accepts, with the same payload bytes and time:
//! anything else (other shapes, escapes, bad base64 or padding, a `RawIDM` that is not 72
//! bytes, a CPU without AVX2) returns `None` with the payload region unchanged, and the
//! caller takes the general path, which reports the error exactly as before. Tested
//! against the general path on every fixture line, every one-byte change and cut of a
//! line, and every short string (`tests` below).

use crate::time::DayCache;

/// Decodes a record `line` (without `\n`) in the common form: its netlink payload
/// (`inet_diag_msg` + rtattrs, as [`crate::payload::append_payload`] builds it) appended to
/// `out`, and its `Timestamp` in unix nanoseconds returned. `None` (and `out` unchanged)
/// when the line is not in that form or not valid: the caller then takes the general path.
pub(crate) fn record_line(line: &[u8], out: &mut Vec<u8>, days: &mut DayCache) -> Option<i64> {
    #[cfg(target_arch = "x86_64")]
    {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return None;
        }
        let start = out.len();
        // SAFETY: the CPU has AVX2 (checked just above), the only precondition.
        let r = unsafe { avx2::record_line(line, out, days) };
        if r.is_none() {
            out.truncate(start);
        }
        r
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (line, out, days);
        None
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi8, _mm256_and_si256, _mm256_cmpeq_epi8, _mm256_loadu_si256,
        _mm256_madd_epi16, _mm256_maddubs_epi16, _mm256_movemask_epi8, _mm256_permutevar8x32_epi32,
        _mm256_set1_epi32, _mm256_set1_epi8, _mm256_set_epi64x, _mm256_setr_epi32,
        _mm256_setzero_si256, _mm256_shuffle_epi8, _mm256_srli_epi32, _mm256_storeu_si256,
    };

    use tcpinfo_core::parse::attrs::RTA_HDR_LEN;
    use tcpinfo_core::parse::diag_msg::INET_DIAG_MSG_LEN;

    use crate::payload::DECODE_TABLE;
    use crate::time::{parse_rfc3339_cached, DayCache};

    /// [`super::record_line`]; `out` may hold a partial payload when it returns `None`.
    #[target_feature(enable = "avx2")]
    pub(super) fn record_line(line: &[u8], out: &mut Vec<u8>, days: &mut DayCache) -> Option<i64> {
        let mut at = expect(line, 0, br#"{"Timestamp":""#)?;
        let q = line[at..].iter().position(|&c| c == b'"')?;
        let stamp = parse_rfc3339_cached(&line[at..at + q], days)?;
        at = expect(line, at + q + 1, br#","RawIDM":""#)?;
        let idm = out.len();
        at = string(line, at, out, None)?;
        if out.len() - idm != INET_DIAG_MSG_LEN {
            return None;
        }
        at = expect(line, at, br#","Attributes":["#)?;
        if line.get(at) == Some(&b']') {
            at += 1;
        } else {
            let mut ty = 0usize;
            loop {
                if line.get(at) == Some(&b'"') {
                    at = string(line, at + 1, out, Some(u16::try_from(ty).ok()?))?;
                } else {
                    at = expect(line, at, b"null")?;
                }
                ty += 1;
                match line.get(at) {
                    Some(b',') => at += 1,
                    Some(b']') => {
                        at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        (line.get(at..) == Some(b"}")).then_some(stamp.nanos)
    }

    /// The position after `word` if `line[at..]` starts with it.
    fn expect(line: &[u8], at: usize, word: &[u8]) -> Option<usize> {
        line.get(at..)?.starts_with(word).then_some(at + word.len())
    }

    /// Decodes the base64 string whose first character is `line[at]` onto `out` and returns
    /// the position after its closing quote. Accepts exactly what
    /// [`crate::payload::decode_base64`] accepts (padding only to a multiple of 4, zero
    /// unused bits); `None` (and `out` unchanged) for anything else, escapes included.
    /// With `ty`, the string is attribute `ty`: its rtattr header (length, type) goes
    /// before it and zeros pad it to 4 bytes, as [`crate::payload::append_payload`] does.
    #[target_feature(enable = "avx2")]
    pub(super) fn string(
        line: &[u8],
        mut at: usize,
        out: &mut Vec<u8>,
        ty: Option<u16>,
    ) -> Option<usize> {
        let rest = line.len().checked_sub(at)?;
        // Room for the header, the bytes of the string's longest run of whole 32-character
        // steps (24 each), one more 32-byte store (of which up to 21 bytes are kept), and
        // the last 0..2 bytes with zeros up to 8: every write below stays within it.
        out.reserve(rest / 4 * 3 + 40);
        let base = out.len();
        let dst = out.as_mut_ptr();
        let mut n = if ty.is_some() { RTA_HDR_LEN } else { 0 };
        let valid = loop {
            let (packed, valid) = if let Some(c) = line.get(at..at + 32) {
                // SAFETY: reads the 32 bytes of `c`.
                chunk(unsafe { _mm256_loadu_si256(c.as_ptr().cast()) })
            } else {
                let mut buf = [0u8; 32];
                buf[..line.len() - at].copy_from_slice(&line[at..]);
                // SAFETY: reads the 32 bytes of `buf`.
                chunk(unsafe { _mm256_loadu_si256(buf.as_ptr().cast()) })
            };
            // SAFETY: within the room reserved above (`n` grows by 24 per 32 characters
            // of `rest`); written, not read.
            unsafe { _mm256_storeu_si256(dst.add(base + n).cast(), packed) };
            if valid < 32 {
                n += valid / 4 * 3;
                at += valid;
                break valid;
            }
            // Constant steps: the next load does not wait for this step's mask.
            n += 24;
            at += 32;
        };
        // The last 0..3 characters, then the padding and the closing quote.
        let extra = &line[at - valid % 4..at];
        let pad = match line.get(at) {
            Some(b'"') => 0,
            Some(b'=') if line.get(at + 1) == Some(&b'=') => 2,
            Some(b'=') => 1,
            _ => return None,
        };
        if line.get(at + pad) != Some(&b'"') || (pad > 0 && extra.len() + pad != 4) {
            return None;
        }
        let d = |i: usize| DECODE_TABLE[usize::from(extra[i])];
        let (tail, len) = match extra.len() {
            0 => ([0; 2], 0),
            2 if d(1).trailing_zeros() >= 4 => ([d(0) << 2 | d(1) >> 4, 0], 1),
            3 if d(2).trailing_zeros() >= 2 => ([d(0) << 2 | d(1) >> 4, d(1) << 4 | d(2) >> 2], 2),
            _ => return None,
        };
        // SAFETY: within the reserved room; `[base, base + n)` is written, so the new
        // length covers written bytes only.
        unsafe {
            dst.add(base + n)
                .cast::<[u8; 8]>()
                .write_unaligned([tail[0], tail[1], 0, 0, 0, 0, 0, 0]);
            n += len;
            if let Some(ty) = ty {
                let l = u16::try_from(n).ok()?.to_ne_bytes();
                let t = ty.to_ne_bytes();
                dst.add(base)
                    .cast::<[u8; 4]>()
                    .write_unaligned([l[0], l[1], t[0], t[1]]);
                // Padded as `append_payload` pads: to the region's 4-byte boundary.
                n = (base + n).next_multiple_of(4) - base;
            }
            out.set_len(base + n);
        }
        Some(at + pad + 1)
    }

    /// Decodes 32 base64 characters: the 24 bytes of their 8 quads in the low 24 bytes
    /// (bytes of quads at or after a character outside the alphabet are garbage), and the
    /// number of characters before the first one outside the alphabet (32 when none).
    /// W. Muła and D. Lemire, "Faster Base64 Encoding and Decoding Using AVX2 Instructions"
    /// (ACM TOW 2018): the alphabet check by nibble lookups, the value by a per-range
    /// offset, the packing by multiply-adds.
    #[target_feature(enable = "avx2")]
    #[inline]
    #[expect(clippy::cast_possible_wrap, reason = "byte constants as i8 lanes")]
    fn chunk(v: __m256i) -> (__m256i, usize) {
        let hi = _mm256_and_si256(_mm256_srli_epi32(v, 4), _mm256_set1_epi8(0x0F));
        let lo = _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
        // A character is outside the alphabet when the bit sets of its low and high nibble
        // meet (bytes >= 0x80 have high nibbles 8..15, whose set meets every low one).
        let lo_bits = lanes(0x1A1B_1B1B_1A13_1111, 0x1111_1111_1111_1115);
        let hi_bits = lanes(0x1010_1010_1010_1010, 0x0804_0804_0201_1010);
        let bad = _mm256_and_si256(
            _mm256_shuffle_epi8(lo_bits, lo),
            _mm256_shuffle_epi8(hi_bits, hi),
        );
        #[expect(clippy::cast_sign_loss, reason = "a 32-bit lane mask")]
        let good = _mm256_movemask_epi8(_mm256_cmpeq_epi8(bad, _mm256_setzero_si256())) as u32;
        // Value = character + offset by high nibble ('/' has its own: index 1 = 2 - 1):
        // 0, 16, 19, 4, -65, -65, -71, -71.
        let offsets = lanes(0, 0xB9B9_BFBF_0413_1000_u64 as i64);
        let slash = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(0x2F));
        let values = _mm256_add_epi8(v, _mm256_shuffle_epi8(offsets, _mm256_add_epi8(slash, hi)));
        // 4 x 6 bits -> 24 bits per 32-bit lane, then the 3 bytes of each in order.
        let pairs = _mm256_maddubs_epi16(values, _mm256_set1_epi32(0x0140_0140));
        let quads = _mm256_madd_epi16(pairs, _mm256_set1_epi32(0x0001_1000));
        let order = lanes(0x8080_8080_0C0D_0E08_u64 as i64, 0x090A_0405_0600_0102);
        let packed = _mm256_permutevar8x32_epi32(
            _mm256_shuffle_epi8(quads, order),
            _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7),
        );
        (packed, (!good).trailing_zeros() as usize)
    }

    /// The 16 bytes `lo` (bytes 0..8, little-endian) and `hi` (8..16) in both lanes.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn lanes(hi: i64, lo: i64) -> __m256i {
        _mm256_set_epi64x(hi, lo, hi, lo)
    }
}

#[cfg(test)]
mod tests;
