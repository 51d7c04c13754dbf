//! `NativePoller`: a running poller thread, read one batch at a time.

use std::sync::Arc;

use napi::bindgen_prelude::BigInt;
use napi_derive::napi;
use tcpinfo_core::{BatchReceiver, PollBatch, PollerThread, RecordsPool};
use tokio::sync::Mutex;

use crate::native_error::to_napi;
use crate::native_options::{to_config, NativePollerOptions};
use crate::native_records::PooledBuffer;

/// A soft error of one poll.
#[napi(object)]
pub struct NativeWarning {
    /// Stable code, e.g. `ERR_DUMP_INTERRUPTED`.
    pub code: String,
    /// One-line explanation.
    pub message: String,
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
    /// Soft errors.
    pub warnings: Vec<NativeWarning>,
    /// Counters, in the order of `NATIVE_STATS_FIELDS` in `src/native.ts`.
    pub stats: Vec<f64>,
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
        let s = b.stats;
        #[expect(clippy::cast_precision_loss, reason = "counters stay far below 2^53")]
        let stats = vec![
            s.dump_nanos as f64,
            f64::from(s.recv_calls),
            s.bytes as f64,
            f64::from(s.messages),
            f64::from(s.malformed),
            f64::from(s.destroy_events),
            f64::from(s.destroy_overruns),
            f64::from(s.late_destroy_events),
            f64::from(s.dropped_closes),
            f64::from(s.skipped_polls),
            f64::from(s.tracked),
            s.tracker_bytes as f64,
            f64::from(s.reused_buffers),
        ];
        Self {
            seq: i64::try_from(b.seq).unwrap_or(i64::MAX),
            timestamp_ns: BigInt::from(b.timestamp_nanos),
            sockets_seen: b.sockets_seen,
            opened: b.opened,
            changed: b.changed,
            closed: b.closed,
            complete: b.complete,
            warnings: b
                .warnings
                .into_iter()
                .map(|w| NativeWarning {
                    code: w.code.into(),
                    message: w.message,
                })
                .collect(),
            stats,
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
        Ok(rx.recv().await.map(|b| NativeBatch::new(b, Some(pool))))
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
            napi::Error::from_reason(format!("[ERR_INTERNAL] snapshot task failed: {e}"))
        })?;
    batch
        .map(|b| NativeBatch::new(b, None))
        .map_err(|e| to_napi(&e))
}
