//! `NativePoller`: a running poller thread, read one batch at a time.

use std::sync::Arc;

use napi::bindgen_prelude::BigInt;
use napi_derive::napi;
use tcpinfo_core::{BatchReceiver, PollBatch, PollerThread, RecordsPool};
use tokio::sync::Mutex;

use crate::native_error::to_napi;
use crate::native_namespace::NativeNamespace;
use crate::native_options::{to_config, NativePollerOptions};
use crate::native_port_stats::NativePortStats;
use crate::native_records::PooledBuffer;

/// A soft error of one poll.
#[napi(object)]
pub struct NativeWarning {
    /// Stable code, one of `WARNING_CODES` (`ERR_DUMP_INTERRUPTED`, …).
    #[napi(
        ts_type = "'ERR_SOCKET' | 'ERR_KERNEL' | 'ERR_MALFORMED' | 'ERR_DUMP_INTERRUPTED' | 'ERR_EVENTS_LOST' | 'ERR_FILTER_REJECTED' | 'ERR_INTERNAL'"
    )]
    pub code: String,
    /// One-line explanation.
    pub message: String,
}

/// Counters of one poll (`PollStats` of the core; byte and time counts as JS numbers,
/// exact below 2^53).
#[napi(object)]
pub struct NativePollStats {
    /// Wall time of the dumps, nanoseconds.
    pub dump_nanos: f64,
    /// `recvmsg` calls of the dumps.
    pub recv_calls: u32,
    /// Bytes received by the dumps.
    pub bytes: f64,
    /// Netlink messages in the dumps.
    pub messages: u32,
    /// Messages or datagrams that were malformed and skipped.
    pub malformed: u32,
    /// Destroy events received.
    pub destroy_events: u32,
    /// Kernel event-buffer overruns (`ENOBUFS`).
    pub destroy_overruns: u32,
    /// Destroy events that came after their connection was closed by the sweep.
    pub late_destroy_events: u32,
    /// Close events dropped while polls were skipped.
    pub dropped_closes: u32,
    /// Polls skipped before this one because the consumer was behind.
    pub skipped_polls: u32,
    /// Connections tracked after this poll.
    pub tracked: u32,
    /// Heap bytes of the connection tracker.
    pub tracker_bytes: f64,
    /// Of this batch's three buffers, how many were reused from the records pool.
    pub reused_buffers: u32,
    /// Network namespaces polled.
    pub namespaces: u32,
    /// CPU time of the poller thread for this poll, nanoseconds.
    pub cpu_nanos: f64,
    /// Interval before the next poll (stretched by `maxCpu`), nanoseconds.
    pub effective_interval_nanos: f64,
    /// Polls so far that took longer than the configured interval.
    pub long_polls: u32,
    /// Flow opens reported by this poll (opened records and unseen closes).
    pub flow_opens: u32,
    /// Flow closes reported by this poll.
    pub flow_closes: u32,
    /// Bytes acknowledged by peers since each reported connection's previous report
    /// (0 unless `countBytes` or `metricPorts`).
    pub bytes_sent: f64,
    /// Bytes received since each reported connection's previous report.
    pub bytes_received: f64,
    /// Reports whose byte counters went backwards (counted 0).
    pub counters_backwards: u32,
}

impl From<tcpinfo_core::PollStats> for NativePollStats {
    #[expect(clippy::cast_precision_loss, reason = "counters stay far below 2^53")]
    fn from(s: tcpinfo_core::PollStats) -> Self {
        Self {
            dump_nanos: s.dump_nanos as f64,
            recv_calls: s.recv_calls,
            bytes: s.bytes as f64,
            messages: s.messages,
            malformed: s.malformed,
            destroy_events: s.destroy_events,
            destroy_overruns: s.destroy_overruns,
            late_destroy_events: s.late_destroy_events,
            dropped_closes: s.dropped_closes,
            skipped_polls: s.skipped_polls,
            tracked: s.tracked,
            tracker_bytes: s.tracker_bytes as f64,
            reused_buffers: s.reused_buffers,
            namespaces: s.namespaces,
            cpu_nanos: s.cpu_nanos as f64,
            effective_interval_nanos: s.effective_interval_nanos as f64,
            long_polls: s.long_polls,
            flow_opens: s.flow_opens,
            flow_closes: s.flow_closes,
            bytes_sent: s.bytes_sent as f64,
            bytes_received: s.bytes_received as f64,
            counters_backwards: s.counters_backwards,
        }
    }
}

/// One poll: metadata plus the records in three `Buffer`s (see batch-format.md).
#[napi(object, object_from_js = false)]
pub struct NativeBatch {
    /// Poll sequence number.
    pub seq: i64,
    /// Start of the poll, unix nanoseconds.
    pub timestamp_ns: BigInt,
    /// Sockets seen that passed the filter.
    pub sockets_seen: u32,
    /// Opened records.
    pub opened: u32,
    /// Changed records.
    pub changed: u32,
    /// Closed records.
    pub closed: u32,
    /// Whether every family was dumped completely.
    pub complete: bool,
    /// Position among the parts of this poll (a large poll comes in parts sharing `seq`).
    pub part: u32,
    /// More parts of this poll follow.
    pub more: bool,
    /// Soft errors.
    pub warnings: Vec<NativeWarning>,
    /// Counters.
    pub stats: NativePollStats,
    /// The network namespaces the records point into (index entry offset 20).
    pub namespaces: Vec<NativeNamespace>,
    /// Per-port accounting: one entry per `metricPorts` port, or empty.
    pub port_stats: Vec<NativePortStats>,
    /// One 32-byte entry per record. Each region's memory returns to the poller's pool
    /// when V8 collects its `Buffer`.
    #[napi(ts_type = "Buffer")]
    pub index: PooledBuffer,
    /// Netlink payloads, back to back.
    #[napi(ts_type = "Buffer")]
    pub payloads: PooledBuffer,
    /// `ArchivalRecord` lines, back to back (the batch's JSONL).
    #[napi(ts_type = "Buffer")]
    pub lines: PooledBuffer,
}

impl NativeBatch {
    /// Converts a batch; `pool` gets the records buffer back once JS is done with it.
    fn new(b: PollBatch, pool: Option<Arc<RecordsPool>>) -> Self {
        Self {
            seq: i64::try_from(b.seq).unwrap_or(i64::MAX),
            timestamp_ns: BigInt::from(b.timestamp_nanos),
            sockets_seen: b.sockets_seen,
            opened: b.opened,
            changed: b.changed,
            closed: b.closed,
            complete: b.complete,
            part: b.part,
            more: b.more,
            warnings: b
                .warnings
                .into_iter()
                .map(|w| NativeWarning {
                    code: w.code.as_str().into(),
                    message: w.message,
                })
                .collect(),
            stats: b.stats.into(),
            namespaces: b
                .namespaces
                .into_iter()
                .map(NativeNamespace::from)
                .collect(),
            port_stats: b
                .port_stats
                .into_iter()
                .map(NativePortStats::from)
                .collect(),
            index: PooledBuffer::new(b.records.index, pool.clone()),
            payloads: PooledBuffer::new(b.records.payloads, pool.clone()),
            lines: PooledBuffer::new(b.records.lines, pool),
        }
    }
}

/// A poller running on its own OS thread.
///
/// Both methods take `&self`: `close()` may run while a `next()` is pending (an abort),
/// so the thread handle sits behind its own lock instead of needing `&mut self`.
#[napi]
pub struct NativePoller {
    thread: std::sync::Mutex<Option<PollerThread>>,
    rx: Arc<Mutex<BatchReceiver>>,
}

#[napi]
impl NativePoller {
    /// Starts polling. Throws `ERR_CONFIG`, `ERR_SOCKET` or `ERR_NETNS`.
    #[napi(constructor, catch_unwind)]
    pub fn new(options: Option<NativePollerOptions>) -> napi::Result<Self> {
        let config = to_config(options.unwrap_or_default())?;
        let (thread, rx) = PollerThread::spawn(config).map_err(|e| to_napi(&e))?;
        Ok(Self {
            thread: std::sync::Mutex::new(Some(thread)),
            rx: Arc::new(Mutex::new(rx)),
        })
    }

    /// The next batch, or `null` once closed. The TS wrapper keeps one call in flight.
    #[napi(catch_unwind)]
    pub async fn next(&self) -> napi::Result<Option<NativeBatch>> {
        let rx = Arc::clone(&self.rx);
        let mut rx = rx.lock().await;
        let pool = Arc::clone(rx.records_pool());
        let batch = rx.recv().await.map_err(|e| to_napi(&e))?;
        Ok(batch.map(|b| NativeBatch::new(b, Some(pool))))
    }

    /// Stops the thread and closes the netlink sockets. Idempotent.
    #[napi]
    pub fn close(&self) {
        // A poisoned lock only means a panic elsewhere; the handle inside is still valid.
        let taken = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(mut t) = taken {
            t.stop();
        }
    }
}

/// One snapshot of all current sockets (every record is `opened`).
#[napi(catch_unwind)]
pub async fn native_snapshot(options: Option<NativePollerOptions>) -> napi::Result<NativeBatch> {
    let config = to_config(options.unwrap_or_default())?;
    // The snapshot blocks (its own thread dumps and is joined): keep it off the async workers.
    let batch = napi::bindgen_prelude::spawn_blocking(move || tcpinfo_core::snapshot(config))
        .await
        .map_err(|e| {
            to_napi(&tcpinfo_core::Error::Internal(format!(
                "snapshot task failed: {e}"
            )))
        })?;
    batch
        .map(|b| NativeBatch::new(b, None))
        .map_err(|e| to_napi(&e))
}
