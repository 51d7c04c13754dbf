//! Counters of the writer (shared atomics, read at any time) and the rate-limited error
//! events that the caller logs: at most one event per [`ErrorCause`] per report interval,
//! carrying how many errors of that cause it stands for.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::ErrorCause;

/// Live counters, written by the writer thread and the producer.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub files_opened: AtomicU64,
    pub files_closed: AtomicU64,
    pub frames_written: AtomicU64,
    pub bytes_compressed: AtomicU64,
    pub bytes_uncompressed: AtomicU64,
    pub records_written: AtomicU64,
    pub records_dropped: AtomicU64,
    pub batches_accepted: AtomicU64,
    pub batches_over_limit: AtomicU64,
    pub open_files: AtomicU64,
    pub connections: AtomicU64,
    pub pending_bytes: AtomicU64,
    pub errors: [AtomicU64; ErrorCause::COUNT],
}

impl Counters {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }
}

/// A snapshot of the writer's counters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriterStats {
    /// Archive files created.
    pub files_opened: u64,
    /// Archive files finished (every frame complete).
    pub files_closed: u64,
    /// Files open now.
    pub open_files: u64,
    /// zstd frames written (one per file per flush with data).
    pub frames_written: u64,
    /// Compressed bytes that reached files.
    pub bytes_compressed: u64,
    /// Uncompressed bytes (header and record lines) that reached files.
    pub bytes_uncompressed: u64,
    /// Record lines that reached files.
    pub records_written: u64,
    /// Record lines that never will: dropped over the queue limit (never a close), while
    /// writes failed beyond `maxPendingBytes`, at close after the deadline, or not
    /// anonymizable.
    pub records_dropped: u64,
    /// Batches accepted by `write`.
    pub batches_accepted: u64,
    /// Batches that arrived over the queue limits (only their closes were queued).
    pub batches_over_limit: u64,
    /// Batches queued for the writer thread.
    pub queue_depth: u64,
    /// Bytes of the queued batches.
    pub queued_bytes: u64,
    /// Uncompressed bytes waiting for the next flush.
    pub pending_bytes: u64,
    /// Connections the writer knows (open file or next sequence number).
    pub connections: u64,
    /// File-system errors by [`ErrorCause`], indexed by its code.
    pub write_errors: [u64; ErrorCause::COUNT],
}

impl WriterStats {
    /// Errors of one cause.
    pub fn errors(&self, cause: ErrorCause) -> u64 {
        self.write_errors[cause as usize]
    }
}

impl Counters {
    pub(crate) fn snapshot(&self, queue_depth: u64, queued_bytes: u64) -> WriterStats {
        let l = |c: &AtomicU64| c.load(Relaxed);
        WriterStats {
            files_opened: l(&self.files_opened),
            files_closed: l(&self.files_closed),
            open_files: l(&self.open_files),
            frames_written: l(&self.frames_written),
            bytes_compressed: l(&self.bytes_compressed),
            bytes_uncompressed: l(&self.bytes_uncompressed),
            records_written: l(&self.records_written),
            records_dropped: l(&self.records_dropped),
            batches_accepted: l(&self.batches_accepted),
            batches_over_limit: l(&self.batches_over_limit),
            queue_depth,
            queued_bytes,
            pending_bytes: l(&self.pending_bytes),
            connections: l(&self.connections),
            write_errors: std::array::from_fn(|i| l(&self.errors[i])),
        }
    }
}

/// One file-system error to log, standing for `count` errors of its cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorEvent {
    /// Why it failed.
    pub cause: ErrorCause,
    /// What was being done: `mkdir`, `create`, `write`.
    pub op: &'static str,
    /// The file or directory.
    pub path: String,
    /// The OS error text.
    pub message: String,
    /// Errors of this cause since the previous event of the same cause (this one included).
    pub count: u64,
}

/// Rate limiter and mailbox of [`ErrorEvent`]s.
#[derive(Debug)]
pub(crate) struct Events {
    interval: Duration,
    inner: Mutex<EventsInner>,
}

#[derive(Debug, Default)]
struct EventsInner {
    last: [Option<Instant>; ErrorCause::COUNT],
    suppressed: [u64; ErrorCause::COUNT],
    ready: Vec<ErrorEvent>,
}

/// Events kept until taken; more are counted only.
const MAX_READY_EVENTS: usize = 64;

impl Events {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            inner: Mutex::new(EventsInner::default()),
        }
    }

    /// Records one error; makes an event if its cause has not reported within the interval.
    pub fn record(&self, cause: ErrorCause, op: &'static str, path: &str, err: &std::io::Error) {
        let Ok(mut g) = self.inner.lock() else { return };
        let i = cause as usize;
        g.suppressed[i] += 1;
        let now = Instant::now();
        if g.last[i].is_some_and(|t| now.duration_since(t) < self.interval)
            || g.ready.len() >= MAX_READY_EVENTS
        {
            return;
        }
        g.last[i] = Some(now);
        let count = std::mem::take(&mut g.suppressed[i]);
        g.ready.push(ErrorEvent {
            cause,
            op,
            path: path.to_owned(),
            message: err.to_string(),
            count,
        });
    }

    pub fn take(&self) -> Vec<ErrorEvent> {
        self.inner
            .lock()
            .map(|mut g| std::mem::take(&mut g.ready))
            .unwrap_or_default()
    }
}
