//! The check run by the archive writer's fuzz target (`fuzz/fuzz_targets/writer_config.rs`,
//! which includes this file by path) and by `tests/fuzz_regressions.rs`, which replays every
//! committed input through it. See docs/RELIABILITY.md#fuzzing.

use std::path::{Component, Path};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use tcpinfo_archive::{
    file_path, parse_file_name, uuid, validate_prefix, AnonymizeMethod, WriterConfig,
    MAX_PREFIX_LEN,
};

/// Runs `check` on `bytes` the way `libfuzzer_sys::fuzz_target!` does for a typed input.
pub fn replay<T: for<'a> Arbitrary<'a>>(bytes: &[u8], check: fn(T)) {
    if bytes.len() < T::size_hint(0).0 {
        return;
    }
    if let Ok(input) = T::arbitrary_take_rest(Unstructured::new(bytes)) {
        check(input);
    }
}

/// Every option of the writer, and a file name found on disk.
#[derive(Debug, Arbitrary)]
pub struct WriterInput {
    output: String,
    prefix: String,
    flush_interval_ms: u64,
    max_open_files: usize,
    idle_close_ms: u64,
    queue_depth: usize,
    max_queued_bytes: usize,
    max_pending_bytes: usize,
    level: i32,
    anonymize: String,
    cookie: u64,
    seq: u32,
    /// A name in the output directory, as `scan_existing` reads it back after a restart.
    found: String,
}

/// Fuzz target `writer_config`: `validate` accepts only what the writer can use, a valid
/// UUID prefix can never steer a file outside its directory, and file names read back
/// from disk parse to what was written (and anything else parses without panicking).
pub fn writer_config(input: &WriterInput) {
    let mut c = WriterConfig::new(&input.output, &input.prefix);
    c.flush_interval = Duration::from_millis(input.flush_interval_ms);
    c.max_open_files = input.max_open_files;
    c.idle_close = Duration::from_millis(input.idle_close_ms);
    c.queue_depth = input.queue_depth;
    c.max_queued_bytes = input.max_queued_bytes;
    c.max_pending_bytes = input.max_pending_bytes;
    c.level = input.level;
    match AnonymizeMethod::parse(&input.anonymize) {
        Ok(m) => {
            assert!(input.anonymize == "none" || input.anonymize == "netblock");
            c.anonymize = m;
        }
        Err(e) => assert!(matches!(e, tcpinfo_archive::Error::Config(_))),
    }
    if c.validate().is_ok() {
        assert!(!c.flush_interval.is_zero() && !c.idle_close.is_zero());
        assert!(c.max_open_files > 0 && c.queue_depth > 0);
        assert!(c.max_queued_bytes > 0 && c.max_pending_bytes > 0);
        assert!((-7..=22).contains(&c.level));
        assert!(!input.output.is_empty() && !input.output.contains('\0'));
        assert!(validate_prefix(&input.prefix).is_ok());
    }
    let prefix_ok = validate_prefix(&input.prefix).is_ok();
    if prefix_ok {
        check_names(&input.prefix, input.cookie, input.seq);
    }
    if let Some((tag, cookie, seq)) = parse_file_name(&input.found, &input.prefix) {
        assert!(input.found.starts_with(&input.prefix));
        assert!(tcpinfo_archive::valid_tag(tag), "{tag:?}");
        let _ = (cookie, seq);
    }
}

/// The file of `(cookie, seq)` is one plain component inside the directory, and its name
/// parses back.
fn check_names(prefix: &str, cookie: u64, seq: u32) {
    assert!(prefix.len() <= MAX_PREFIX_LEN);
    let dir = Path::new("/var/spool/tcpinfo/2026/11/29");
    let id = uuid(prefix, cookie);
    let path = file_path(dir, &id, seq);
    assert_eq!(path.parent(), Some(dir), "{}", path.display());
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a UTF-8 name");
    let parts: Vec<Component<'_>> = Path::new(name).components().collect();
    assert!(
        matches!(parts[..], [Component::Normal(_)]),
        "{name:?} is one plain name"
    );
    assert!(!name.starts_with('.') && name.len() < 255, "{name:?}");
    assert_eq!(
        parse_file_name(name, prefix),
        Some(("", cookie, seq)),
        "{name:?}"
    );
}
