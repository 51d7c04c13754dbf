//! A scanner for one `ArchivalRecord` JSON line (M-Lab tcp-info v1.9 `netlink.ArchivalRecord`):
//! `{"Timestamp":T,"RawIDM":B64,"Attributes":[null,B64,…]}` or a header line
//! `{"Timestamp":T,"Metadata":{"UUID":U,"Sequence":N,"StartTime":T}}`.
//!
//! Hand-written instead of `serde_json`: it borrows the base64 text from the line (no
//! allocation per record on the hot path), accepts keys in any order and whitespace
//! anywhere, skips unknown keys of any shape (nesting bounded), and reports the byte
//! column of the first problem. Strings with escapes (never written by Go for base64,
//! but valid JSON) are unescaped into a scratch buffer.

use crate::time::{parse_rfc3339, Stamp};

/// Deepest nesting of skipped values.
const MAX_DEPTH: usize = 32;

/// Where a string's bytes are: in the line, or in [`Scanned::unescaped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    /// `line[start..end]`.
    Line(usize, usize),
    /// `unescaped[start..end]`.
    Owned(usize, usize),
}

/// The metadata of a header line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// `Metadata.UUID`.
    pub uuid: Option<String>,
    /// `Metadata.Sequence`.
    pub sequence: Option<u64>,
    /// `Metadata.StartTime`, unix nanoseconds.
    pub start_time: Option<i64>,
}

/// What one line holds. Reused between lines to keep the hot path free of allocations.
#[derive(Debug, Default)]
pub struct Scanned {
    /// `Timestamp` (Go's zero time when absent).
    pub stamp: Option<Stamp>,
    /// `RawIDM` base64 text, if present and not null.
    pub raw_idm: Option<Text>,
    /// `Attributes[i]`: base64 text or `None` for `null`.
    pub attributes: Vec<Option<Text>>,
    /// Whether an `Attributes` key was present.
    pub has_attributes: bool,
    /// `Metadata`, if present.
    pub metadata: Option<Metadata>,
    /// Unescaped strings.
    pub unescaped: Vec<u8>,
}

impl Scanned {
    fn clear(&mut self) {
        self.stamp = None;
        self.raw_idm = None;
        self.attributes.clear();
        self.has_attributes = false;
        self.metadata = None;
        self.unescaped.clear();
    }

    /// The bytes of `t`.
    pub fn text<'a>(&'a self, line: &'a [u8], t: Text) -> &'a [u8] {
        match t {
            Text::Line(s, e) => &line[s..e],
            Text::Owned(s, e) => &self.unescaped[s..e],
        }
    }
}

/// A scan failure: what, and at which byte of the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    /// Byte offset within the line.
    pub at: usize,
    /// What was expected or wrong.
    pub what: &'static str,
}

type Res<T> = Result<T, ScanError>;

struct Cur<'a, 's> {
    b: &'a [u8],
    i: usize,
    out: &'s mut Scanned,
}

impl Cur<'_, '_> {
    fn err<T>(&self, what: &'static str) -> Res<T> {
        Err(ScanError { at: self.i, what })
    }

    fn ws(&mut self) {
        while let Some(c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
                break;
            }
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8, what: &'static str) -> Res<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            self.err(what)
        }
    }

    fn lit(&mut self, word: &[u8]) -> Res<()> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            self.err("invalid literal")
        }
    }

    /// A string; the cursor is on its opening quote.
    fn string(&mut self) -> Res<Text> {
        self.eat(b'"', "expected a string")?;
        let start = self.i;
        let rest = &self.b[start..];
        // Raw control characters are not rejected here (lenient); base64 decoding rejects
        // them anyway.
        let Some(n) = string_end(rest) else {
            return self.err("unterminated string");
        };
        self.i = start + n;
        if rest[n] == b'"' {
            self.i += 1;
            Ok(Text::Line(start, start + n))
        } else {
            self.escaped_string(start)
        }
    }

    fn escaped_string(&mut self, start: usize) -> Res<Text> {
        let o = self.out.unescaped.len();
        self.out.unescaped.extend_from_slice(&self.b[start..self.i]);
        loop {
            let Some(&c) = self.b.get(self.i) else {
                return self.err("unterminated string");
            };
            self.i += 1;
            match c {
                b'"' => return Ok(Text::Owned(o, self.out.unescaped.len())),
                b'\\' => {
                    let Some(&e) = self.b.get(self.i) else {
                        return self.err("unterminated escape");
                    };
                    self.i += 1;
                    let ch = match e {
                        b'"' | b'\\' | b'/' => e,
                        b'b' => 8,
                        b'f' => 12,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let code = self.hex4()?;
                            let ch = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
                            let mut buf = [0u8; 4];
                            self.out
                                .unescaped
                                .extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                            continue;
                        }
                        _ => return self.err("invalid escape"),
                    };
                    self.out.unescaped.push(ch);
                }
                c if c < 0x20 => return self.err("control character in string"),
                c => self.out.unescaped.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Res<u32> {
        let Some(h) = self.b.get(self.i..self.i + 4) else {
            return self.err("short \\u escape");
        };
        let Some(v) = std::str::from_utf8(h)
            .ok()
            .and_then(|s| u32::from_str_radix(s, 16).ok())
        else {
            return self.err("invalid \\u escape");
        };
        self.i += 4;
        Ok(v)
    }

    fn number(&mut self) -> Res<(usize, usize)> {
        self.ws();
        let start = self.i;
        while self
            .b
            .get(self.i)
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
        {
            self.i += 1;
        }
        if self.i == start {
            return self.err("expected a value");
        }
        Ok((start, self.i))
    }

    fn skip_value(&mut self, depth: usize) -> Res<()> {
        if depth > MAX_DEPTH {
            return self.err("nested too deeply");
        }
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'n') => self.lit(b"null"),
            Some(b't') => self.lit(b"true"),
            Some(b'f') => self.lit(b"false"),
            Some(b'[') => {
                self.i += 1;
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return self.err("expected , or ] in array"),
                    }
                }
            }
            Some(b'{') => self.object(|c, _| c.skip_value(depth + 1)),
            _ => self.number().map(drop),
        }
    }

    /// An object; `field` is called with the cursor on each value and the key text.
    fn object(&mut self, mut field: impl FnMut(&mut Self, Text) -> Res<()>) -> Res<()> {
        self.eat(b'{', "expected an object")?;
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            let key = self.string()?;
            self.eat(b':', "expected :")?;
            field(self, key)?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return self.err("expected , or } in object"),
            }
        }
    }

    fn key(&self, key: Text) -> &[u8] {
        match key {
            Text::Line(s, e) => &self.b[s..e],
            Text::Owned(s, e) => &self.out.unescaped[s..e],
        }
    }

    fn stamp(&mut self) -> Res<Stamp> {
        let at = self.i;
        let t = self.string()?;
        let bytes = match t {
            Text::Line(s, e) => &self.b[s..e],
            Text::Owned(s, e) => &self.out.unescaped[s..e],
        };
        parse_rfc3339(bytes).ok_or(ScanError {
            at,
            what: "invalid RFC 3339 time",
        })
    }

    fn nullable_string(&mut self) -> Res<Option<Text>> {
        if self.peek() == Some(b'n') {
            self.lit(b"null")?;
            return Ok(None);
        }
        self.string().map(Some)
    }

    fn attributes(&mut self) -> Res<()> {
        self.out.has_attributes = true;
        if self.peek() == Some(b'n') {
            return self.lit(b"null");
        }
        self.eat(b'[', "Attributes: expected an array")?;
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            let v = self.nullable_string()?;
            self.out.attributes.push(v);
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return self.err("Attributes: expected , or ]"),
            }
        }
    }

    fn metadata(&mut self) -> Res<Metadata> {
        let mut m = Metadata::default();
        if self.peek() == Some(b'n') {
            self.lit(b"null")?;
            return Ok(m);
        }
        self.object(|c, key| {
            match c.key(key) {
                b"UUID" => {
                    let t = c.string()?;
                    let bytes = match t {
                        Text::Line(s, e) => &c.b[s..e],
                        Text::Owned(s, e) => &c.out.unescaped[s..e],
                    };
                    m.uuid = Some(String::from_utf8_lossy(bytes).into_owned());
                }
                b"Sequence" => {
                    let at = c.i;
                    let (s, e) = c.number()?;
                    let n = std::str::from_utf8(&c.b[s..e])
                        .ok()
                        .and_then(|t| t.parse().ok());
                    m.sequence = Some(n.ok_or(ScanError {
                        at,
                        what: "Sequence: not an unsigned integer",
                    })?);
                }
                b"StartTime" => m.start_time = Some(c.stamp()?.nanos),
                _ => c.skip_value(1)?,
            }
            Ok(())
        })?;
        Ok(m)
    }
}

/// The position of the first `"` or `\\` in `b`: where a string's plain part ends.
///
/// Strings are most of a line (base64), a dozen per line, most of them 4..48 bytes long:
/// a call to `memchr2` per string cost more in dispatch and set-up than the search
/// (a fifth of the reader's time, perf in docs/BENCHMARKS.md, session 6). On x86-64,
/// SSE2 (part of the x86-64 baseline) compares 16 bytes per step, inline; the last 0..15
/// bytes one by one. Elsewhere, `memchr2`.
#[inline]
fn string_end(b: &[u8]) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        // SAFETY: `string_end_sse2` needs SSE2, which every x86-64 CPU has and this build
        // targets (`target_feature = "sse2"` above); it has no other precondition.
        unsafe { string_end_sse2(b) }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        memchr::memchr2(b'"', b'\\', b)
    }
}

/// [`string_end`] with SSE2: no `unsafe` inside (the 16-byte load is built from two
/// 8-byte words, which compiles to one unaligned load).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn string_end_sse2(b: &[u8]) -> Option<usize> {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_set_epi64x,
    };
    #[expect(clippy::cast_possible_wrap, reason = "ASCII bytes as i8 lanes")]
    let (quote, backslash) = (_mm_set1_epi8(b'"' as i8), _mm_set1_epi8(b'\\' as i8));
    let word = |c: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        i64::from_le_bytes(w)
    };
    let mut chunks = b.chunks_exact(16);
    let mut at = 0;
    for c in &mut chunks {
        let v = _mm_set_epi64x(word(&c[8..]), word(&c[..8]));
        let hits = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
        let mask = _mm_movemask_epi8(hits);
        if mask != 0 {
            return Some(at + mask.trailing_zeros() as usize);
        }
        at += 16;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == b'"' || c == b'\\')
        .map(|i| at + i)
}

/// Scans one line (without its `\n`) into `out`.
///
/// # Errors
/// A [`ScanError`] with the byte offset of the first problem.
pub fn scan_line(line: &[u8], out: &mut Scanned) -> Result<(), ScanError> {
    out.clear();
    let mut c = Cur { b: line, i: 0, out };
    c.object(|c, key| {
        match c.key(key) {
            b"Timestamp" => c.out.stamp = Some(c.stamp()?),
            b"RawIDM" => c.out.raw_idm = c.nullable_string()?,
            b"Attributes" => c.attributes()?,
            b"Metadata" => c.out.metadata = Some(c.metadata()?),
            _ => c.skip_value(1)?,
        }
        Ok(())
    })?;
    if c.peek().is_some() {
        return c.err("trailing characters after the object");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_line() {
        let line = br#"{"Timestamp":"2019-07-01T00:00:12.092Z","RawIDM":"CgEB","Attributes":[null,"AAA=",null,"a\/b"]}"#;
        let mut s = Scanned::default();
        scan_line(line, &mut s).expect("scan");
        assert_eq!(s.stamp.expect("stamp").nanos, 1_561_939_212_092_000_000);
        assert_eq!(s.text(line, s.raw_idm.expect("raw")), b"CgEB");
        assert_eq!(s.attributes.len(), 4);
        assert!(s.attributes[0].is_none());
        assert_eq!(s.text(line, s.attributes[1].expect("a1")), b"AAA=");
        assert_eq!(s.text(line, s.attributes[3].expect("a3")), b"a/b");
    }

    #[test]
    fn header_line_any_order_unknown_keys() {
        let line = br#" { "Metadata" : {"StartTime":"2019-06-05T16:20:27.383Z","X":[1,{"y":null}],"UUID":"ndt-7hhhv_1559749627_0000000000062D84","Sequence":0}, "Timestamp":"0001-01-01T00:00:00Z" , "Extra": true } "#;
        let mut s = Scanned::default();
        scan_line(line, &mut s).expect("scan");
        let m = s.metadata.expect("meta");
        assert_eq!(
            m.uuid.as_deref(),
            Some("ndt-7hhhv_1559749627_0000000000062D84")
        );
        assert_eq!(m.sequence, Some(0));
        assert!(m.start_time.is_some());
        assert!(s.raw_idm.is_none());
    }

    /// The inline search agrees with `memchr2` at every length and position around the
    /// 16-byte steps, and escapes inside base64-looking strings still unescape.
    #[test]
    fn string_end_agrees_with_memchr2() {
        for len in 0..70 {
            let mut b = vec![b'A'; len];
            assert_eq!(string_end(&b), None);
            for at in 0..len {
                for (c, other) in [(b'"', b'\\'), (b'\\', b'"')] {
                    b[at] = c;
                    if at + 3 < len {
                        b[at + 3] = other;
                    }
                    assert_eq!(
                        string_end(&b),
                        memchr::memchr2(b'"', b'\\', &b),
                        "{len} {at}"
                    );
                    b.fill(b'A');
                }
            }
        }
        let line = br#"{"RawIDM":"CgEB","Attributes":[null,"AAAAAAAAAAAAAAAAAAAAAAAAAAAA\u0041AA=",null,"QUJD\/A=="]}"#;
        let mut s = Scanned::default();
        scan_line(line, &mut s).expect("scan");
        assert_eq!(
            s.text(line, s.attributes[1].expect("a1")),
            b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
        );
        assert_eq!(s.text(line, s.attributes[3].expect("a3")), b"QUJD/A==");
    }

    #[test]
    fn every_prefix_and_garbage_fails_cleanly() {
        let line = br#"{"Timestamp":"2019-07-01T00:00:12.092Z","RawIDM":"CgEB","Attributes":[null,"AAA="]}"#;
        let mut s = Scanned::default();
        for n in 0..line.len() {
            let e = scan_line(&line[..n], &mut s).expect_err("prefix must fail");
            assert!(e.at <= n, "{e:?} at prefix {n}");
        }
        for bad in [
            &b"[]"[..],
            b"{\"a\":}",
            b"{\"Timestamp\":1}",
            b"{}x",
            b"\x00\xff",
            &[b'['; 100],
        ] {
            assert!(scan_line(bad, &mut s).is_err());
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(40), "]".repeat(40));
        assert!(scan_line(deep.as_bytes(), &mut s).is_err());
    }
}
