//! Counters and the close report of the Kafka producer, from Rust to JS.

use napi_derive::napi;
use tcpinfo_kafka::{CloseReport, ProducerStats};

/// Counters of the producer (see `ProducerStats` in `tcpinfo-kafka`); records are messages.
#[napi(object)]
pub struct NativeKafkaStats {
    /// Polls taken by the producer thread.
    pub polls: f64,
    /// Records made into messages and queued.
    pub queued: f64,
    /// Records the broker acknowledged.
    pub delivered: f64,
    /// Bytes of keys and values acknowledged.
    pub delivered_bytes: f64,
    /// Records dropped (buffer full: oldest first; intake full: whole polls).
    pub dropped: f64,
    /// Records left out by sampling.
    pub sampled_out: f64,
    /// Produce requests sent.
    pub requests: f64,
    /// Produce requests that failed (retried).
    pub send_errors: f64,
    /// Connection attempts that failed (retried).
    pub connect_errors: f64,
    /// Records given up at the close deadline.
    pub undelivered: f64,
    /// Records in the buffer now.
    pub buffered_records: f64,
    /// Bytes of keys and values in the buffer now.
    pub buffered_bytes: f64,
    /// Polls waiting for the producer thread now.
    pub intake_polls: f64,
    /// Bytes of those polls.
    pub intake_bytes: f64,
    /// Partitions of the topic (0 before the first connection).
    pub partitions: f64,
    /// Unix ms of the first failure since the last success (0: healthy).
    pub failing_since_ms: f64,
}

#[expect(clippy::cast_precision_loss, reason = "counters stay far below 2^53")]
impl From<ProducerStats> for NativeKafkaStats {
    fn from(s: ProducerStats) -> Self {
        Self {
            polls: s.polls as f64,
            queued: s.queued as f64,
            delivered: s.delivered as f64,
            delivered_bytes: s.delivered_bytes as f64,
            dropped: s.dropped as f64,
            sampled_out: s.sampled_out as f64,
            requests: s.requests as f64,
            send_errors: s.send_errors as f64,
            connect_errors: s.connect_errors as f64,
            undelivered: s.undelivered as f64,
            buffered_records: s.buffered_records as f64,
            buffered_bytes: s.buffered_bytes as f64,
            intake_polls: s.intake_polls as f64,
            intake_bytes: s.intake_bytes as f64,
            partitions: s.partitions as f64,
            failing_since_ms: s.failing_since_ms as f64,
        }
    }
}

/// What `close` achieved.
#[napi(object)]
pub struct NativeKafkaCloseReport {
    /// Records delivered over the producer's life.
    pub delivered: f64,
    /// Records dropped over the producer's life.
    pub dropped: f64,
    /// Records given up at the deadline (0: everything queued was delivered).
    pub undelivered: f64,
}

#[expect(clippy::cast_precision_loss, reason = "counters stay far below 2^53")]
impl From<CloseReport> for NativeKafkaCloseReport {
    fn from(r: CloseReport) -> Self {
        Self {
            delivered: r.delivered as f64,
            dropped: r.dropped as f64,
            undelivered: r.undelivered as f64,
        }
    }
}
