//! RFC 3339 timestamps as Go's `time.Time` reads and writes them: `2019-07-01T00:00:12.092Z`,
//! `2019-08-26T19:55:42.754686952-04:00`. Parsing keeps the zone offset, because M-Lab's
//! csvtool prints each time in the zone it was written in.

use tcpinfo_core::{civil_from_days, write_rfc3339_body, GO_ZERO_TIME};

const NANOS_PER_SEC: i64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;
/// Go's zero time as text.
const GO_ZERO_TEXT: &[u8] = b"0001-01-01T00:00:00Z";

/// A point in time with the zone offset it was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Unix nanoseconds; [`GO_ZERO_TIME`] for Go's zero time.
    pub nanos: i64,
    /// Offset of the written zone from UTC, seconds (0 for `Z`).
    pub offset_secs: i32,
}

impl Stamp {
    /// Go's zero time (`0001-01-01T00:00:00Z`), which records without a time carry.
    pub const ZERO: Stamp = Stamp {
        nanos: GO_ZERO_TIME,
        offset_secs: 0,
    };
}

fn digits(s: &[u8], at: usize, n: usize) -> Option<i64> {
    let part = s.get(at..at + n)?;
    part.iter().try_fold(0i64, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`. Go's zero time parses to
/// [`Stamp::ZERO`]; other times outside the i64-nanosecond range (years 1678..2262) and
/// malformed text give `None`.
pub fn parse_rfc3339(text: &[u8]) -> Option<Stamp> {
    parse_rfc3339_cached(text, &mut DayCache::default())
}

/// The last date and minute parsed (`YYYY-MM-DDTHH:MM`, checked) and its seconds since
/// 1970: the records of one archive file share a date and come tens of milliseconds
/// apart, so [`parse_rfc3339_cached`] mostly compares 16 bytes instead of parsing and
/// converting them.
#[derive(Debug, Default, Clone, Copy)]
pub struct DayCache {
    /// Whether `minute` holds a checked date and time.
    valid: bool,
    /// The text up to the minute.
    minute: [u8; 16],
    /// Seconds from 1970-01-01T00:00Z to `minute` (in the text's own zone).
    secs: i64,
}

/// [`parse_rfc3339`], with the seconds up to the minute from `cache` when the text's
/// date, hour and minute are the cached ones (and the cache updated otherwise). Same
/// result for every input.
pub fn parse_rfc3339_cached(text: &[u8], cache: &mut DayCache) -> Option<Stamp> {
    let s = text;
    if s == GO_ZERO_TEXT {
        return Some(Stamp::ZERO);
    }
    let sep = |at: usize, c: u8| s.get(at) == Some(&c);
    if !sep(16, b':') {
        return None;
    }
    let minute_secs = if cache.valid && s[..16] == cache.minute {
        cache.secs
    } else {
        if !(sep(4, b'-') && sep(7, b'-') && (sep(10, b'T') || sep(10, b't')) && sep(13, b':')) {
            return None;
        }
        let (year, month, day) = (digits(s, 0, 4)?, digits(s, 5, 2)?, digits(s, 8, 2)?);
        let (hour, minute) = (digits(s, 11, 2)?, digits(s, 14, 2)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
            return None;
        }
        let secs = days_from_civil(year, month, day) * SECS_PER_DAY + hour * 3600 + minute * 60;
        cache.minute.copy_from_slice(&s[..16]);
        cache.secs = secs;
        cache.valid = true;
        secs
    };
    let second = digits(s, 17, 2)?;
    if second > 60 {
        return None;
    }
    let mut at = 19;
    let mut frac = 0i64;
    if s.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while s.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 9 {
                frac = frac * 10 + i64::from(s[at] - b'0');
            }
            at += 1;
        }
        let n = at - start;
        if n == 0 {
            return None;
        }
        for _ in n..9 {
            frac *= 10;
        }
    }
    let offset_secs = match s.get(at..)? {
        b"Z" | b"z" => 0,
        z if z.len() == 6 && (z[0] == b'+' || z[0] == b'-') && z[3] == b':' => {
            let v = digits(z, 1, 2)? * 3600 + digits(z, 4, 2)? * 60;
            i32::try_from(if z[0] == b'-' { -v } else { v }).ok()?
        }
        _ => return None,
    };
    let secs = minute_secs + second - i64::from(offset_secs);
    let nanos = secs.checked_mul(NANOS_PER_SEC)?.checked_add(frac)?;
    (nanos != GO_ZERO_TIME).then_some(Stamp { nanos, offset_secs })
}

/// Appends `stamp` as Go's `time.RFC3339Nano` in its own zone (fraction trimmed, `Z` for
/// offset 0). Go's zero time is written as M-Lab's csvtool shows it, `2009-05-29T23:59:59Z`
/// (its `snapshot.Reader` replaces a zero time with that date).
pub fn write_csvtool_time(out: &mut Vec<u8>, stamp: Stamp) {
    if stamp.nanos == GO_ZERO_TIME {
        out.extend_from_slice(b"2009-05-29T23:59:59Z");
        return;
    }
    write_rfc3339_body(
        out,
        stamp.nanos + i64::from(stamp.offset_secs) * NANOS_PER_SEC,
    );
    if stamp.offset_secs == 0 {
        out.push(b'Z');
    } else {
        let off = i64::from(stamp.offset_secs);
        out.push(if off < 0 { b'-' } else { b'+' });
        push_num(out, off.abs() / 3600, 2);
        out.push(b':');
        push_num(out, off.abs() / 60 % 60, 2);
    }
}

/// Appends unix nanoseconds as JS `Date.toISOString()` does (`2019-07-01T00:00:12.092Z`,
/// always three decimals, UTC); Go's zero time as `0001-01-01T00:00:00.000Z`.
pub fn write_iso_millis(out: &mut Vec<u8>, nanos: i64) {
    if nanos == GO_ZERO_TIME {
        out.extend_from_slice(b"0001-01-01T00:00:00.000Z");
        return;
    }
    let ms = nanos.div_euclid(1_000_000);
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
    let sod = secs.rem_euclid(SECS_PER_DAY);
    for (i, (v, w)) in [
        (y, 4),
        (m, 2),
        (d, 2),
        (sod / 3600, 2),
        (sod / 60 % 60, 2),
        (sod % 60, 2),
        (ms.rem_euclid(1000), 3),
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            out.push([b'-', b'-', b'T', b':', b':', b'.'][i - 1]);
        }
        push_num(out, v, w);
    }
    out.push(b'Z');
}

fn push_num(out: &mut Vec<u8>, v: i64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        let digit = u8::try_from(n % 10).unwrap_or_default();
        buf[i] = b'0' + digit;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = buf.len() - i;
    out.extend(std::iter::repeat_n(b'0', width.saturating_sub(len)));
    out.extend_from_slice(&buf[i..]);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: &str) -> String {
        let stamp = parse_rfc3339(s.as_bytes()).expect(s);
        let mut out = Vec::new();
        write_csvtool_time(&mut out, stamp);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn go_formats_round_trip() {
        for s in [
            "2019-07-01T00:00:12.092Z",
            "2019-08-26T19:55:42.754686952-04:00",
            "2019-04-02T14:12:37Z",
            "1970-01-01T00:00:00.000000001+05:30",
        ] {
            assert_eq!(round_trip(s), s);
        }
        assert_eq!(
            round_trip("2019-07-01T00:00:12.0920Z"),
            "2019-07-01T00:00:12.092Z"
        );
        assert_eq!(
            round_trip("2019-07-01T00:00:12+00:00"),
            "2019-07-01T00:00:12Z"
        );
        assert_eq!(round_trip("0001-01-01T00:00:00Z"), "2009-05-29T23:59:59Z");
    }

    #[test]
    fn iso_millis_as_js() {
        let mut out = Vec::new();
        write_iso_millis(&mut out, 1_561_939_212_092_999_999);
        assert_eq!(out, b"2019-07-01T00:00:12.092Z");
        out.clear();
        write_iso_millis(&mut out, GO_ZERO_TIME);
        assert_eq!(out, b"0001-01-01T00:00:00.000Z");
    }

    #[test]
    fn offsets_convert_to_utc_nanos() {
        let a = parse_rfc3339(b"2019-08-26T19:55:42.5-04:00").expect("a");
        let b = parse_rfc3339(b"2019-08-26T23:55:42.5Z").expect("b");
        assert_eq!(a.nanos, b.nanos);
        assert_eq!(a.offset_secs, -4 * 3600);
        assert_eq!(b.nanos, 1_566_863_742_500_000_000);
    }

    #[test]
    fn garbage_is_rejected_without_panic() {
        let good = b"2019-08-26T19:55:42.754686952-04:00";
        for n in 0..good.len() {
            assert!(parse_rfc3339(&good[..n]).is_none(), "prefix {n}");
        }
        for s in [
            "2019-13-01T00:00:00Z",
            "2019-01-01T00:00:00",
            "2019-01-01T00:00:00.Z",
            "x019-01-01T00:00:00Z",
            "0001-01-01T00:00:01Z",
        ] {
            assert!(parse_rfc3339(s.as_bytes()).is_none(), "{s}");
        }
    }

    /// One cache kept across many texts (valid, with one byte changed, cut) gives what
    /// the uncached parse gives: a date and minute are served from the cache only when
    /// they are the checked ones.
    #[test]
    fn cached_dates_parse_as_uncached() {
        let mut cache = DayCache::default();
        let base = [
            &b"2019-07-01T00:00:12.092Z"[..],
            b"2019-07-01T23:59:60.999999999-04:00",
            b"2019-07-02T00:00:00Z",
            b"2019-07-02T00:00:59.5Z",
            b"2019-07-02T00:01:00Z",
            b"0001-01-01T00:00:00Z",
            b"1970-01-01T00:00:00.000000001+05:30",
        ];
        for text in base {
            for at in 0..text.len() {
                for c in [b'0', b'9', b'-', b'T', b':', b'x', 0, 0xFF] {
                    for t in [text.to_vec(), {
                        let mut t = text.to_vec();
                        t[at] = c;
                        t
                    }] {
                        for cut in [t.len(), at, 10, 11] {
                            let t = &t[..cut.min(t.len())];
                            assert_eq!(
                                parse_rfc3339_cached(t, &mut cache),
                                parse_rfc3339(t),
                                "{}",
                                String::from_utf8_lossy(t)
                            );
                        }
                    }
                }
            }
        }
    }
}
