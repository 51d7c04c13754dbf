//! Conversions of the archive writer: options in, counters and error events out.

use std::net::IpAddr;
use std::time::Duration;

use napi_derive::napi;
use tcpinfo_archive::{AnonymizeMethod, ErrorCause, ErrorEvent, WriterConfig, WriterStats};

/// Options of `NativeArchiveWriter`; absent values take the `DEFAULT_*` of
/// `tcpinfo-archive`.
#[napi(object)]
#[derive(Default)]
pub struct NativeArchiveWriterOptions {
    /// Root directory of the archive.
    pub output_dir: String,
    /// UUID prefix (`<prefix>_<cookie %016X>`).
    pub uuid_prefix: String,
    /// Milliseconds between flushes (default 1000).
    pub flush_interval_ms: Option<u32>,
    /// Files open at once (default 16384, at most the fd limit minus 512).
    pub max_open_files: Option<u32>,
    /// Milliseconds without a record after which a file is finished (default 120000).
    pub idle_close_ms: Option<u32>,
    /// Batches queued in front of the writer thread (default 64).
    pub queue_depth: Option<u32>,
    /// Bytes queued in front of the writer thread (default 64 MiB).
    pub max_queued_bytes: Option<f64>,
    /// zstd level (default 1).
    pub level: Option<i32>,
    /// `none` (default) or `netblock`.
    pub anonymize: Option<String>,
    /// Addresses never anonymized (default: the local interfaces' addresses).
    pub anonymize_keep: Option<Vec<String>>,
}

/// An archive error to a JS error whose reason starts with the stable code.
pub fn archive_error(e: &tcpinfo_archive::Error) -> napi::Error {
    napi::Error::from_reason(format!("[{}] {e}", e.code()))
}

fn bad(msg: String) -> napi::Error {
    archive_error(&tcpinfo_archive::Error::Config(msg))
}

/// Options to the writer's config.
pub fn to_writer_config(o: NativeArchiveWriterOptions) -> napi::Result<WriterConfig> {
    let mut c = WriterConfig::new(o.output_dir, o.uuid_prefix);
    let ms = |v: u32| Duration::from_millis(u64::from(v));
    if let Some(v) = o.flush_interval_ms {
        c.flush_interval = ms(v);
    }
    if let Some(v) = o.idle_close_ms {
        c.idle_close = ms(v);
    }
    if let Some(v) = o.max_open_files {
        c.max_open_files = v as usize;
    }
    if let Some(v) = o.queue_depth {
        c.queue_depth = v as usize;
    }
    if let Some(v) = o.max_queued_bytes {
        if !(v.is_finite() && v >= 1.0 && v <= 2f64.powi(40)) {
            return Err(bad(format!("maxQueuedBytes: expected 1..2^40, got {v}")));
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "range checked above"
        )]
        {
            c.max_queued_bytes = v as usize;
        }
    }
    if let Some(v) = o.level {
        c.level = v;
    }
    if let Some(a) = o.anonymize {
        c.anonymize = AnonymizeMethod::parse(&a).map_err(|e| archive_error(&e))?;
    }
    if let Some(keep) = o.anonymize_keep {
        let ips = keep
            .iter()
            .map(|s| {
                s.parse::<IpAddr>()
                    .map_err(|_| bad(format!("anonymizeKeep: not an IP address: {s:?}")))
            })
            .collect::<napi::Result<Vec<_>>>()?;
        c.anonymize_keep = Some(ips);
    }
    Ok(c)
}

/// Counters of the writer (see `WriterStats` in `tcpinfo-archive`).
#[napi(object)]
pub struct NativeArchiveStats {
    /// Files created.
    pub files_opened: f64,
    /// Files finished (complete frames only).
    pub files_closed: f64,
    /// Files open now.
    pub open_files: f64,
    /// zstd frames written (one per file per flush with data).
    pub frames_written: f64,
    /// Compressed bytes written.
    pub bytes_compressed: f64,
    /// Uncompressed bytes (headers and lines) written.
    pub bytes_uncompressed: f64,
    /// Record lines written.
    pub records_written: f64,
    /// Record lines dropped (over the queue limit, failed writes beyond the pending cap,
    /// close deadline, not anonymizable); never a close unless the disk refused it.
    pub records_dropped: f64,
    /// Polls accepted by `write`.
    pub batches_accepted: f64,
    /// Polls that arrived over the queue limits (only their closes were kept).
    pub batches_over_limit: f64,
    /// Polls queued.
    pub queue_depth: f64,
    /// Bytes queued.
    pub queued_bytes: f64,
    /// Uncompressed bytes waiting for the next flush.
    pub pending_bytes: f64,
    /// Connections the writer remembers.
    pub connections: f64,
    /// Write errors by cause name (`no_space`, `quota`, `permission`, `read_only`,
    /// `too_many_files`, `exists`, `other`).
    pub write_errors: std::collections::HashMap<String, f64>,
}

#[expect(clippy::cast_precision_loss, reason = "counters stay far below 2^53")]
impl From<WriterStats> for NativeArchiveStats {
    fn from(s: WriterStats) -> Self {
        Self {
            files_opened: s.files_opened as f64,
            files_closed: s.files_closed as f64,
            open_files: s.open_files as f64,
            frames_written: s.frames_written as f64,
            bytes_compressed: s.bytes_compressed as f64,
            bytes_uncompressed: s.bytes_uncompressed as f64,
            records_written: s.records_written as f64,
            records_dropped: s.records_dropped as f64,
            batches_accepted: s.batches_accepted as f64,
            batches_over_limit: s.batches_over_limit as f64,
            queue_depth: s.queue_depth as f64,
            queued_bytes: s.queued_bytes as f64,
            pending_bytes: s.pending_bytes as f64,
            connections: s.connections as f64,
            write_errors: ErrorCause::ALL
                .iter()
                .map(|c| (c.name().to_owned(), s.errors(*c) as f64))
                .collect(),
        }
    }
}

/// One file-system error to log, standing for `count` errors of its cause.
#[napi(object)]
pub struct NativeArchiveErrorEvent {
    /// `no_space`, `quota`, `permission`, `read_only`, `too_many_files`, `exists`, `other`.
    pub cause: String,
    /// `mkdir`, `create` or `write`.
    pub op: String,
    /// The file or directory.
    pub path: String,
    /// The OS error text.
    pub message: String,
    /// Errors of this cause since the previous event of the cause.
    pub count: f64,
}

#[expect(clippy::cast_precision_loss, reason = "counts stay far below 2^53")]
impl From<ErrorEvent> for NativeArchiveErrorEvent {
    fn from(e: ErrorEvent) -> Self {
        Self {
            cause: e.cause.name().to_owned(),
            op: e.op.to_owned(),
            path: e.path,
            message: e.message,
            count: e.count as f64,
        }
    }
}
