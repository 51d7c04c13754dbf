//! Counters and error events of the archive writer, from Rust to JS.

use napi_derive::napi;
use tcpinfo_archive::{ErrorCause, ErrorEvent, WriterStats};

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
