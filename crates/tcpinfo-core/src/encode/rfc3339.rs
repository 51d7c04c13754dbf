//! RFC 3339 timestamps exactly as Go's `time.Time.MarshalJSON` writes them in UTC:
//! `2019-04-02T14:12:37.511Z` — fraction with trailing zeros trimmed, none when zero.
//!
//! Hand-written (30 lines) instead of pulling `chrono`/`time`: it runs once per encoded
//! record on the hot path and must match Go's trimming rule byte for byte.

/// Nanoseconds per second.
const NANOS_PER_SEC: i64 = 1_000_000_000;
/// Seconds per day.
const SECS_PER_DAY: i64 = 86_400;

/// Go's zero `time.Time` (`0001-01-01T00:00:00Z`), which does not fit in i64 nanoseconds.
/// Passing this value writes the zero time, as M-Lab's header lines and
/// `archiveRecords` fixtures carry it.
pub const GO_ZERO_TIME: i64 = i64::MIN;

/// Appends the RFC 3339 form of `unix_nanos` (UTC) to `out`, without quotes.
pub fn write_rfc3339(out: &mut Vec<u8>, unix_nanos: i64) {
    if unix_nanos == GO_ZERO_TIME {
        out.extend_from_slice(b"0001-01-01T00:00:00Z");
        return;
    }
    write_rfc3339_body(out, unix_nanos);
    out.push(b'Z');
}

/// Appends `YYYY-MM-DDTHH:MM:SS[.fraction]` of `nanos` (unix ns, shifted to the wanted
/// zone by the caller), fraction trimmed as Go does, with no zone designator: the part
/// shared by [`write_rfc3339`] and readers that print times in their original zone.
pub fn write_rfc3339_body(out: &mut Vec<u8>, unix_nanos: i64) {
    let secs = unix_nanos.div_euclid(NANOS_PER_SEC);
    let nanos = unix_nanos.rem_euclid(NANOS_PER_SEC);
    let days = secs.div_euclid(SECS_PER_DAY);
    let sod = secs.rem_euclid(SECS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    push_num(out, y, 4);
    out.push(b'-');
    push_num(out, m, 2);
    out.push(b'-');
    push_num(out, d, 2);
    out.push(b'T');
    push_num(out, sod / 3600, 2);
    out.push(b':');
    push_num(out, sod / 60 % 60, 2);
    out.push(b':');
    push_num(out, sod % 60, 2);
    if nanos != 0 {
        let mut digits = 9;
        let mut frac = nanos;
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        out.push(b'.');
        push_num(out, frac, digits);
    }
}

fn push_num(out: &mut Vec<u8>, v: i64, width: usize) {
    let s = v.to_string();
    out.extend(std::iter::repeat_n(b'0', width.saturating_sub(s.len())));
    out.extend_from_slice(s.as_bytes());
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::write_rfc3339;

    fn fmt(ns: i64) -> String {
        let mut v = Vec::new();
        write_rfc3339(&mut v, ns);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn matches_go_marshal() {
        assert_eq!(fmt(0), "1970-01-01T00:00:00Z");
        assert_eq!(fmt(1_554_210_757_511_000_000), "2019-04-02T13:12:37.511Z");
        assert_eq!(
            fmt(1_566_863_742_754_686_952),
            "2019-08-26T23:55:42.754686952Z"
        );
        assert_eq!(fmt(951_782_400_100_000_000), "2000-02-29T00:00:00.1Z");
        assert_eq!(fmt(super::GO_ZERO_TIME), "0001-01-01T00:00:00Z");
    }
}
