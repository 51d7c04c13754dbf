//! Options of the archive writer, with their `DEFAULT_*` values and validation.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::path::validate_prefix;

/// Data reaches the file at least this often (M-Lab has no such bound; `--flush-interval`).
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Files open at once; beyond it the least recently written files are finished. Clamped
/// to the process's `RLIMIT_NOFILE` soft limit minus 512. The connections that change
/// within `idle_close` should fit: past the cap, each eviction means a new sequence file.
pub const DEFAULT_MAX_OPEN_FILES: usize = 16384;
/// A file not written for this long is finished (a later record starts a new sequence).
pub const DEFAULT_IDLE_CLOSE: Duration = Duration::from_secs(120);
/// Batches queued in front of the writer thread.
pub const DEFAULT_QUEUE_DEPTH: usize = 64;
/// Bytes of batches queued in front of the writer thread past which it takes no more:
/// 8 MiB, one part of a large poll (the queue holds at most this plus one batch). More
/// only raises the collector's memory at 100k sockets, where the writer is the slower
/// side; when it is full the caller waits and the poller skips and folds polls, losing
/// nothing.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 8 << 20;
/// Uncompressed bytes waiting for the next flush, over all files; beyond it (only when
/// writes keep failing) the oldest pending records are dropped and counted.
pub const DEFAULT_MAX_PENDING_BYTES: usize = 64 << 20;
/// Pending bytes over all files past which every file is flushed at once, before the
/// interval ends: a burst (the first poll at 100k sockets reports every connection as
/// opened, ~130 MB of lines) would otherwise wait in memory for the next flush, up to
/// ~1.3 KiB for each of up to `max_open_files` files. Data only reaches the disk sooner.
pub const DEFAULT_EARLY_FLUSH_BYTES: usize = 8 << 20;
/// zstd level: 1 is as small as M-Lab's level 3 on these lines at 60% of its CPU
/// (docs/internals/archive/design.md).
pub const DEFAULT_LEVEL: i32 = 1;
/// At most one error event per cause per this interval (the rest are counted).
pub const DEFAULT_ERROR_REPORT_INTERVAL: Duration = Duration::from_secs(60);
/// A connection without an open file and without a record for this long is forgotten
/// (its next record, if any, continues at the next free sequence number on disk).
pub const DEFAULT_FORGET_AFTER: Duration = Duration::from_secs(3600);

/// How IP addresses in archived `RawIDM` bytes are anonymized (M-Lab `-anonymize.ip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnonymizeMethod {
    /// Addresses are archived as they are.
    #[default]
    None,
    /// IPv4 (and v4-mapped IPv6) to the /24, IPv6 to the /48; local interface addresses
    /// untouched.
    Netblock,
}

impl AnonymizeMethod {
    /// Parses `none` or `netblock`.
    ///
    /// # Errors
    /// [`Error::Config`] for any other value.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Self::None),
            "netblock" => Ok(Self::Netblock),
            _ => Err(Error::Config(format!(
                "anonymize: expected \"none\" or \"netblock\", got {s:?}"
            ))),
        }
    }
}

/// Everything the writer needs; build with [`WriterConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Root of the archive: files go to `<output_dir>/YYYY/MM/DD/`.
    pub output_dir: PathBuf,
    /// UUID prefix (`<prefix>_<cookie %016X>`); see [`crate::validate_prefix`].
    pub uuid_prefix: String,
    /// See [`DEFAULT_FLUSH_INTERVAL`].
    pub flush_interval: Duration,
    /// See [`DEFAULT_MAX_OPEN_FILES`].
    pub max_open_files: usize,
    /// See [`DEFAULT_IDLE_CLOSE`].
    pub idle_close: Duration,
    /// See [`DEFAULT_QUEUE_DEPTH`].
    pub queue_depth: usize,
    /// See [`DEFAULT_MAX_QUEUED_BYTES`].
    pub max_queued_bytes: usize,
    /// See [`DEFAULT_MAX_PENDING_BYTES`].
    pub max_pending_bytes: usize,
    /// See [`DEFAULT_EARLY_FLUSH_BYTES`].
    pub early_flush_bytes: usize,
    /// See [`DEFAULT_LEVEL`]; zstd accepts -7..=22.
    pub level: i32,
    /// See [`AnonymizeMethod`].
    pub anonymize: AnonymizeMethod,
    /// Addresses never anonymized; `None`: the addresses of the local interfaces at start
    /// (as M-Lab).
    pub anonymize_keep: Option<Vec<IpAddr>>,
    /// See [`DEFAULT_ERROR_REPORT_INTERVAL`].
    pub error_report_interval: Duration,
    /// See [`DEFAULT_FORGET_AFTER`].
    pub forget_after: Duration,
}

impl WriterConfig {
    /// Defaults for everything but the output directory and the UUID prefix.
    pub fn new(output_dir: impl Into<PathBuf>, uuid_prefix: impl Into<String>) -> Self {
        Self {
            output_dir: output_dir.into(),
            uuid_prefix: uuid_prefix.into(),
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            max_open_files: DEFAULT_MAX_OPEN_FILES,
            idle_close: DEFAULT_IDLE_CLOSE,
            queue_depth: DEFAULT_QUEUE_DEPTH,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
            early_flush_bytes: DEFAULT_EARLY_FLUSH_BYTES,
            level: DEFAULT_LEVEL,
            anonymize: AnonymizeMethod::None,
            anonymize_keep: None,
            error_report_interval: DEFAULT_ERROR_REPORT_INTERVAL,
            forget_after: DEFAULT_FORGET_AFTER,
        }
    }

    /// Checks every value; the message names the option.
    ///
    /// # Errors
    /// [`Error::Config`] for the first invalid value.
    pub fn validate(&self) -> Result<()> {
        validate_prefix(&self.uuid_prefix)?;
        if self.output_dir.as_os_str().is_empty() {
            return Err(Error::Config("output: empty path".into()));
        }
        if self.output_dir.as_os_str().as_encoded_bytes().contains(&0) {
            return Err(Error::Config("output: path contains a NUL byte".into()));
        }
        let positive = [
            ("flushInterval", self.flush_interval.is_zero()),
            ("idleClose", self.idle_close.is_zero()),
            ("maxOpenFiles", self.max_open_files == 0),
            ("queueDepth", self.queue_depth == 0),
            ("maxQueuedBytes", self.max_queued_bytes == 0),
            ("maxPendingBytes", self.max_pending_bytes == 0),
            ("earlyFlushBytes", self.early_flush_bytes == 0),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, bad)| *bad) {
            return Err(Error::Config(format!("{name}: must be greater than 0")));
        }
        if !(-7..=22).contains(&self.level) {
            return Err(Error::Config(format!(
                "level: zstd levels are -7..=22, got {}",
                self.level
            )));
        }
        Ok(())
    }
}
