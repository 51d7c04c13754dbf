//! The fast path against the general one: same payload and time whenever the fast path
//! accepts a line, and acceptance of every well-formed fixture line.

use std::io::Read as _;

use base64::Engine as _;
use tcpinfo_core::GO_ZERO_TIME;

use super::record_line;
use crate::json::{scan_line, Scanned};
use crate::payload::append_payload;
use crate::time::DayCache;

/// What the general path makes of a record line after `prefix` bytes of the payload
/// region: payload and time, or `None`.
fn general_at(line: &[u8], prefix: usize) -> Option<(Vec<u8>, i64)> {
    let mut s = Scanned::default();
    scan_line(line, &mut s).ok()?;
    let raw = s.raw_idm?;
    let mut out = vec![0xA5; prefix];
    append_payload(&mut out, line, &s, raw).ok()?;
    Some((
        out[prefix..].to_vec(),
        s.stamp.map_or(GO_ZERO_TIME, |t| t.nanos),
    ))
}

fn general(line: &[u8]) -> Option<(Vec<u8>, i64)> {
    general_at(line, 0)
}

/// The fast path's result after `prefix` bytes of the payload region, checking that a
/// refusal leaves the region as it was.
fn fast_at(line: &[u8], days: &mut DayCache, prefix: usize) -> Option<(Vec<u8>, i64)> {
    let mut out = vec![0xA5; prefix];
    let r = record_line(line, &mut out, days);
    if let Some(t) = r {
        assert_eq!(&out[..prefix], vec![0xA5; prefix]);
        Some((out[prefix..].to_vec(), t))
    } else {
        assert_eq!(out, vec![0xA5; prefix], "{}", String::from_utf8_lossy(line));
        None
    }
}

/// A payload region holds whole records (multiples of 4 bytes) before a JSON line's, but
/// a raw netlink message of another source may have left it unaligned: both are compared.
fn fast(line: &[u8], days: &mut DayCache) -> Option<(Vec<u8>, i64)> {
    let unaligned = fast_at(line, days, 6);
    assert_eq!(
        unaligned,
        unaligned.as_ref().and_then(|_| general_at(line, 6)),
        "{}",
        String::from_utf8_lossy(line)
    );
    fast_at(line, days, 4)
}

/// Whether the fast path can run here (without AVX2 it always refuses).
fn have_fast() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A fast result must be the general one; returns whether the fast path accepted.
fn check(line: &[u8], days: &mut DayCache) -> bool {
    let f = fast(line, days);
    if let Some(f) = &f {
        assert_eq!(
            Some(f),
            general(line).as_ref(),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
    f.is_some()
}

/// The data lines of every JSONL fixture (what its frames hold, an unfinished one cut).
fn fixture_lines() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tcpinfo-core/tests/fixtures/mlab");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.zst"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 5, "{names:?}");
    let mut lines = Vec::new();
    for p in names {
        let file = std::fs::File::open(&p).expect("open");
        let mut text = Vec::new();
        // An unfinished last frame ends in an error after what it could decode.
        let _ = zstd::stream::read::Decoder::new(file)
            .expect("zstd")
            .read_to_end(&mut text);
        let text_lines: Vec<&[u8]> = text.split(|&c| c == b'\n').collect();
        // The last piece may be a cut line.
        for l in &text_lines[..text_lines.len() - 1] {
            if l.windows(8).any(|w| w == b"\"RawIDM\"") {
                lines.push(l.to_vec());
            }
        }
    }
    lines
}

#[test]
fn every_fixture_line_is_taken_and_decodes_as_the_general_path() {
    let lines = fixture_lines();
    assert!(lines.len() > 1000, "{}", lines.len());
    let mut days = DayCache::default();
    let taken = lines.iter().filter(|l| check(l, &mut days)).count();
    if have_fast() {
        assert_eq!(taken, lines.len());
    }
}

/// Every one-byte change (to bytes that matter to the grammar, base64 and padding) and
/// every cut of some fixture lines: accepted only with the general path's result.
#[test]
fn changed_and_cut_lines_agree_with_the_general_path() {
    let lines = fixture_lines();
    let mut days = DayCache::default();
    let mut accepted_changes = 0;
    for line in lines.iter().step_by(97).take(12) {
        for at in 0..line.len() {
            assert!(!check(&line[..at], &mut days) || at == line.len());
            for c in [
                b'"', b'\\', b'=', b'A', b'/', b'+', b'!', b' ', b'n', b',', b']', 0x80,
            ] {
                let mut l = line.clone();
                l[at] = c;
                accepted_changes += usize::from(check(&l, &mut days));
            }
            let mut l = line.clone();
            l.insert(at, b'=');
            check(&l, &mut days);
        }
    }
    if have_fast() {
        assert!(accepted_changes > 1000, "{accepted_changes}");
    }
}

/// A line whose one attribute is `text` (quotes included in `text`).
fn line_with(text: &[u8]) -> Vec<u8> {
    let idm = base64::engine::general_purpose::STANDARD.encode([7u8; 72]);
    let mut l =
        format!(r#"{{"Timestamp":"2019-07-01T00:00:12.092Z","RawIDM":"{idm}","Attributes":[null,"#)
            .into_bytes();
    l.extend_from_slice(text);
    l.extend_from_slice(b"]}");
    l
}

/// Every string of up to 6 characters over an alphabet with padding, a byte outside the
/// alphabet, a quote, a backslash and values with none, some (`E`) or all (`/`) of the low
/// bits set that padding must leave zero.
#[test]
fn short_strings_agree_with_the_general_path() {
    let chars = b"AQE/=!\"\\";
    let mut days = DayCache::default();
    let mut text = Vec::new();
    let mut accepted = 0;
    for len in 0..=6u32 {
        for mut k in 0..chars.len().pow(len) {
            text.clear();
            text.push(b'"');
            for _ in 0..len {
                text.push(chars[k % chars.len()]);
                k /= chars.len();
            }
            text.push(b'"');
            let line = line_with(&text);
            let ok = check(&line, &mut days);
            accepted += usize::from(ok);
            // Without escapes, what the general path takes the fast one takes too.
            if have_fast() && !text.contains(&b'\\') {
                assert_eq!(
                    ok,
                    general(&line).is_some(),
                    "{}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
    }
    if have_fast() {
        assert!(accepted > 2000, "{accepted}");
    }
}

/// Long random strings (0..400 bytes, padded and not, past several 32-character steps)
/// with one character replaced at each position by a bad one, a quote, a backslash or `=`;
/// and every byte value at every position of a 32-character step.
#[test]
fn long_strings_and_every_byte_agree_with_the_general_path() {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut days = DayCache::default();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for len in 0..400 {
        let bytes = crate::payload::tests::random_bytes(&mut x, len);
        for text in [
            engine.encode(&bytes),
            engine.encode(&bytes).replace('=', ""),
        ] {
            let quoted = format!("\"{text}\"").into_bytes();
            let ok = check(&line_with(&quoted), &mut days);
            assert_eq!(ok, have_fast(), "{text}");
            if len % 7 != 0 {
                continue;
            }
            for at in 1..quoted.len() - 1 {
                for c in [b'-', b'"', b'\\', b'=', 0] {
                    let mut q = quoted.clone();
                    q[at] = c;
                    check(&line_with(&q), &mut days);
                }
            }
        }
    }
    let base = format!("\"{}\"", engine.encode([0x5Au8; 48])).into_bytes();
    for at in 1..base.len() - 1 {
        for c in 0..=255u8 {
            let mut q = base.clone();
            q[at] = c;
            check(&line_with(&q), &mut days);
        }
    }
}
