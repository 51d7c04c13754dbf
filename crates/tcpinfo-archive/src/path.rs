//! File names of the archive, `<output>/YYYY/MM/DD/<UUID>.<%05d seq>.jsonl.zst`, and the
//! guards that keep every path inside the output directory.
//!
//! A UUID is `<prefix>_<cookie %016X>`, or `<prefix>_<tag>_<cookie %016X>` for a
//! connection outside the host namespace (`crate::key`). The prefix is the only free text
//! that reaches a path, so it is checked once, at configuration: ASCII letters, digits,
//! `.`, `_`, `-` and `:` only, not starting with `.`, no `..`, at most [`MAX_PREFIX_LEN`]
//! bytes; tags are checked with each batch (`key::valid_tag`). No `/`, NUL or control
//! byte can get through, so no file name can leave its date directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::key::{ConnKey, Tags};

/// Longest accepted UUID prefix, in bytes (a file name must stay under 255 bytes).
pub const MAX_PREFIX_LEN: usize = 200;
/// File name suffix of every archive file.
pub const FILE_SUFFIX: &str = ".jsonl.zst";
/// Highest sequence number tried when looking for a free one.
pub const MAX_SEQUENCE: u32 = 99_999_999;

/// Checks a UUID prefix (see the module docs).
///
/// # Errors
/// [`Error::Config`] naming the offending byte or rule.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    let bad = |why: String| Err(Error::Config(format!("uuidPrefix {prefix:?}: {why}")));
    if prefix.is_empty() {
        return bad("empty".into());
    }
    if prefix.len() > MAX_PREFIX_LEN {
        return bad(format!("longer than {MAX_PREFIX_LEN} bytes"));
    }
    if prefix.starts_with('.') {
        return bad("starts with '.'".into());
    }
    if prefix.contains("..") {
        return bad("contains \"..\"".into());
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')))
    {
        return bad(format!(
            "{c:?} is not allowed (letters, digits, '.', '_', '-', ':' only)"
        ));
    }
    Ok(())
}

/// The UUID of a host-namespace connection: `<prefix>_<cookie as %016X>` (M-Lab
/// `uuid.FromCookie`).
pub fn uuid(prefix: &str, cookie: u64) -> String {
    uuid_in(prefix, "", cookie)
}

/// The UUID of a connection in the namespace tagged `tag` (`""`: the host).
pub fn uuid_in(prefix: &str, tag: &str, cookie: u64) -> String {
    if tag.is_empty() {
        format!("{prefix}_{cookie:016X}")
    } else {
        format!("{prefix}_{tag}_{cookie:016X}")
    }
}

/// `(namespace tag, cookie)` of a UUID with this prefix (tag `""` for the host);
/// `None` if it is not one of ours.
pub fn connection_of_uuid<'a>(prefix: &str, uuid: &'a str) -> Option<(&'a str, u64)> {
    let rest = uuid.strip_prefix(prefix)?.strip_prefix('_')?;
    let (tag, hex) = rest.rsplit_once('_').unwrap_or(("", rest));
    if !(hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())) {
        return None;
    }
    if tag.is_empty() && rest.contains('_') || !crate::key::valid_tag(tag) {
        return None;
    }
    Some((tag, u64::from_str_radix(hex, 16).ok()?))
}

/// `YYYY/MM/DD` of a UTC civil date.
pub fn date_dir(date: (i64, u32, u32)) -> String {
    format!("{:04}/{:02}/{:02}", date.0, date.1, date.2)
}

/// The UTC civil date of unix seconds (H. Hinnant's `civil_from_days`).
pub fn civil_date(unix_secs: i64) -> (i64, u32, u32) {
    let z = unix_secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// The date of an RFC 3339 timestamp's first ten bytes (`YYYY-MM-DD`), if well formed.
pub fn date_of_rfc3339(ts: &[u8]) -> Option<(i64, u32, u32)> {
    let s = std::str::from_utf8(ts.get(..10)?).ok()?;
    let (y, rest) = s.split_once('-')?;
    let (m, d) = rest.split_once('-')?;
    Some((y.parse().ok()?, m.parse().ok()?, d.parse().ok()?))
}

/// `<dir>/<uuid>.<seq %05d>.jsonl.zst`.
pub fn file_path(dir: &Path, uuid: &str, seq: u32) -> PathBuf {
    let mut name = String::with_capacity(uuid.len() + 16);
    // Writing to a String cannot fail.
    let _infallible = write!(name, "{uuid}.{seq:05}{FILE_SUFFIX}");
    dir.join(name)
}

/// Next free sequence number per connection for the files of `prefix` already under
/// `output` (`YYYY/MM/DD/<UUID>.<seq>.jsonl.zst`), so that a restart continues each
/// series instead of overwriting it. Unreadable directories are skipped.
pub(crate) fn scan_existing(
    output: &Path,
    prefix: &str,
    tags: &mut Tags,
) -> FxHashMap<ConnKey, u32> {
    let mut next = FxHashMap::default();
    let subdirs = |p: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(p)
            .map(|rd| {
                rd.filter_map(std::result::Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    };
    for y in subdirs(output) {
        for m in subdirs(&y) {
            for d in subdirs(&m) {
                let Ok(rd) = std::fs::read_dir(&d) else {
                    continue;
                };
                for e in rd.filter_map(std::result::Result::ok) {
                    if let Some((tag, cookie, seq)) =
                        parse_file_name(&e.file_name().to_string_lossy(), prefix)
                    {
                        let key = ConnKey {
                            ns: tags.id(tag),
                            cookie,
                        };
                        let n = next.entry(key).or_insert(0);
                        *n = (*n).max(seq.saturating_add(1));
                    }
                }
            }
        }
    }
    next
}

/// `(namespace tag, cookie, seq)` of `<UUID>.<seq>.jsonl.zst` for a UUID of `prefix`.
pub fn parse_file_name<'a>(name: &'a str, prefix: &str) -> Option<(&'a str, u64, u32)> {
    let stem = name.strip_suffix(FILE_SUFFIX)?;
    let (uuid, seq) = stem.rsplit_once('.')?;
    let (tag, cookie) = connection_of_uuid(prefix, uuid)?;
    (!seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()))
        .then(|| seq.parse().ok())
        .flatten()
        .map(|s| (tag, cookie, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_that_could_leave_the_directory_are_rejected() {
        for bad in [
            "",
            "..",
            "a/b",
            "/abs",
            "../up",
            "a..b",
            ".hidden",
            "a\0b",
            "a\nb",
            "a b",
            "a\\b",
            "ü",
            &"x".repeat(201),
        ] {
            let e = validate_prefix(bad).expect_err(bad);
            assert_eq!(e.code(), "ERR_CONFIG");
        }
        for good in [
            "ndt-7hhhv_1559749627",
            "gfr14.nyc.corp.google.com_1554836592_unsafe",
            "host:1",
        ] {
            validate_prefix(good).expect(good);
        }
    }

    #[test]
    fn file_names_round_trip() {
        let p = file_path(
            Path::new("/o/2019/07/01"),
            &uuid("ndt-7hhhv_1559749627", 0x62D84),
            7,
        );
        assert_eq!(
            p,
            Path::new("/o/2019/07/01/ndt-7hhhv_1559749627_0000000000062D84.00007.jsonl.zst")
        );
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            parse_file_name(name, "ndt-7hhhv_1559749627"),
            Some(("", 0x62D84, 7))
        );
        let tagged = file_path(Path::new("/o"), &uuid_in("p_1", "ns4026532000.17", 255), 0);
        let name = tagged.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, "p_1_ns4026532000.17_00000000000000FF.00000.jsonl.zst");
        assert_eq!(
            parse_file_name(name, "p_1"),
            Some(("ns4026532000.17", 255, 0))
        );
        assert_eq!(
            parse_file_name(name, "p"),
            None,
            "'1_ns…' is no tag of prefix p"
        );
        assert_eq!(
            connection_of_uuid("p_1", "p_1_ns4026532000.17_00000000000000FF"),
            Some(("ns4026532000.17", 255))
        );
        assert_eq!(parse_file_name(name, "other"), None);
        assert_eq!(parse_file_name("x_0000000000062D84.00007.jsonl", "x"), None);
        assert_eq!(
            connection_of_uuid("p", "p_00000000000000ff"),
            Some(("", 255))
        );
        assert_eq!(connection_of_uuid("p", "p_ff"), None);
        assert_eq!(connection_of_uuid("p", "p__00000000000000ff"), None);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(1_561_939_212), (2019, 7, 1));
        assert_eq!(civil_date(951_782_400), (2000, 2, 29));
        assert_eq!(
            date_of_rfc3339(b"2019-07-01T00:00:12.092Z"),
            Some((2019, 7, 1))
        );
        assert_eq!(date_dir((2019, 7, 1)), "2019/07/01");
    }
}
