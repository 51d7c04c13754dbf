//! The producer's counters, shared between the caller's thread and the producer thread
//! (relaxed atomics: each is read alone, at scrape time).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Live counters. Totals only grow; gauges (`buffered_*`, `intake_*`, `partitions`,
/// `failing_since_ms`) are set as things change.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub polls: AtomicU64,
    pub queued: AtomicU64,
    pub delivered: AtomicU64,
    pub delivered_bytes: AtomicU64,
    pub dropped: AtomicU64,
    pub sampled_out: AtomicU64,
    pub requests: AtomicU64,
    pub send_errors: AtomicU64,
    pub connect_errors: AtomicU64,
    pub undelivered: AtomicU64,
    pub buffered_records: AtomicU64,
    pub buffered_bytes: AtomicU64,
    pub intake_polls: AtomicU64,
    pub intake_bytes: AtomicU64,
    pub partitions: AtomicU64,
    pub failing_since_ms: AtomicU64,
    pub last_error: Mutex<Option<String>>,
    /// The close deadline, once `close` was called: polls still waiting past it are given
    /// up without being made into messages.
    pub close_at: Mutex<Option<std::time::Instant>>,
}

impl Counters {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sub(c: &AtomicU64, n: u64) {
        c.fetch_sub(n, Ordering::Relaxed);
    }

    pub fn set(c: &AtomicU64, n: u64) {
        c.store(n, Ordering::Relaxed);
    }

    /// Remembers the latest delivery error (for the caller's log).
    pub fn error(&self, m: String) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(m);
        }
    }

    /// Whether `close` was called and its deadline has passed.
    pub fn past_close_deadline(&self) -> bool {
        self.close_at
            .lock()
            .ok()
            .and_then(|d| *d)
            .is_some_and(|d| std::time::Instant::now() >= d)
    }

    pub fn snapshot(&self) -> ProducerStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ProducerStats {
            polls: g(&self.polls),
            queued: g(&self.queued),
            delivered: g(&self.delivered),
            delivered_bytes: g(&self.delivered_bytes),
            dropped: g(&self.dropped),
            sampled_out: g(&self.sampled_out),
            requests: g(&self.requests),
            send_errors: g(&self.send_errors),
            connect_errors: g(&self.connect_errors),
            undelivered: g(&self.undelivered),
            buffered_records: g(&self.buffered_records),
            buffered_bytes: g(&self.buffered_bytes),
            intake_polls: g(&self.intake_polls),
            intake_bytes: g(&self.intake_bytes),
            partitions: g(&self.partitions),
            failing_since_ms: g(&self.failing_since_ms),
        }
    }
}

/// A snapshot of the producer's counters. Records are messages (one per exported record).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStats {
    /// Polls offered and taken by the producer thread.
    pub polls: u64,
    /// Records made into messages and queued for the broker.
    pub queued: u64,
    /// Records the broker acknowledged (`acks=all`).
    pub delivered: u64,
    /// Bytes of keys and values acknowledged.
    pub delivered_bytes: u64,
    /// Records dropped: oldest first when the buffer was full, or whole polls when the
    /// producer thread was behind by more than its intake bound.
    pub dropped: u64,
    /// Records left out by sampling.
    pub sampled_out: u64,
    /// Produce requests sent.
    pub requests: u64,
    /// Produce requests that failed (each retried after a backoff).
    pub send_errors: u64,
    /// Connection attempts that failed (each retried after a backoff).
    pub connect_errors: u64,
    /// Records still queued when `close` gave up at its deadline.
    pub undelivered: u64,
    /// Records in the buffer now (in-flight ones included).
    pub buffered_records: u64,
    /// Bytes of keys and values in the buffer now (bounded by `buffer_bytes`).
    pub buffered_bytes: u64,
    /// Polls copied and waiting for the producer thread now.
    pub intake_polls: u64,
    /// Bytes of those polls.
    pub intake_bytes: u64,
    /// Partitions of the topic (0 until the first connection).
    pub partitions: u64,
    /// Unix ms of the first failure since the last success (0: healthy).
    pub failing_since_ms: u64,
}
