//! `NativeRtt`: a passive RTT capture (live ring or capture file) on its own thread,
//! read one batch at a time; each batch crosses as two `Buffer`s of fixed-size records
//! (layout: `tcpinfo_rtt::record`, decoded by `src/rtt/records.ts`).

use std::sync::Arc;

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use tcpinfo_rtt::{RttBatch, RttReceiver, RttSession, RttStats};
use tokio::sync::Mutex;

use crate::native_error::rtt_to_napi;
use crate::native_rtt_options::{to_session_config, NativeRttOptions};

/// One batch of samples.
#[napi(object, object_from_js = false)]
pub struct NativeRttBatch {
    /// 64-byte sample records back to back.
    pub samples: Buffer,
    /// 80-byte per-flow summary records (flows with new samples), back to back.
    pub summaries: Buffer,
    /// Counters, in the order of `RTT_STATS_FIELDS` in `src/native.ts`.
    pub stats: Vec<f64>,
    /// Whether this is the last batch (end of file, or closed).
    pub last: bool,
}

#[expect(clippy::cast_precision_loss, reason = "counters stay far below 2^53")]
fn stats(all: &RttStats) -> Vec<f64> {
    let (p, m, r, f) = (all.parse, all.matching, all.ring, all.file);
    [
        p.frames,
        p.tcp,
        p.truncated,
        p.malformed,
        p.not_ip,
        p.not_tcp,
        p.fragments,
        p.unsupported_link,
        m.segments,
        m.no_timestamp,
        m.zero_timestamp,
        m.flows_full,
        m.unidirectional,
        m.tsval_repeats,
        m.stale_tsvals,
        m.rate_limited,
        m.tsvals_stored,
        m.tsvals_full,
        m.samples,
        m.negative_rtt,
        m.tsvals_expired,
        m.flows_expired,
        m.flows,
        m.tsvals,
        r.packets,
        r.drops,
        r.freezes,
        f.records,
        f.other_blocks,
        f.truncated_blocks,
        all.dropped_samples,
    ]
    .iter()
    .map(|&v| v as f64)
    .collect()
}

impl From<RttBatch> for NativeRttBatch {
    fn from(b: RttBatch) -> Self {
        Self {
            stats: stats(&b.stats),
            samples: b.samples.into(),
            summaries: b.summaries.into(),
            last: b.last,
        }
    }
}

/// A running capture.
#[napi]
pub struct NativeRtt {
    // Field order is drop order: the receiver goes first, so a thread blocked on the
    // full queue wakes up before the session's drop joins it.
    rx: Arc<Mutex<RttReceiver>>,
    session: std::sync::Mutex<Option<RttSession>>,
}

#[napi]
impl NativeRtt {
    /// Opens the source and starts the thread. Throws `ERR_CONFIG`, `ERR_PERMISSION`
    /// (no `CAP_NET_RAW`), `ERR_NETNS`, `ERR_SOCKET` or `ERR_IO`.
    #[napi(constructor, catch_unwind)]
    pub fn new(options: NativeRttOptions) -> napi::Result<Self> {
        let config = to_session_config(options)?;
        let (session, rx) = RttSession::start(config).map_err(|e| rtt_to_napi(&e))?;
        Ok(Self {
            session: std::sync::Mutex::new(Some(session)),
            rx: Arc::new(Mutex::new(rx)),
        })
    }

    /// The next batch, or `null` after the last. The TS wrapper keeps one call in flight.
    /// Rejects with `ERR_CAPTURE_FILE` when a file turns out corrupt.
    #[napi(catch_unwind)]
    pub async fn next(&self) -> napi::Result<Option<NativeRttBatch>> {
        let rx = Arc::clone(&self.rx);
        let mut rx = rx.lock().await;
        match rx.recv().await {
            None => Ok(None),
            Some(Ok(b)) => Ok(Some(b.into())),
            Some(Err(e)) => Err(rtt_to_napi(&e)),
        }
    }

    /// Stops the capture: the thread sends a last batch and ends. Idempotent.
    #[napi]
    pub fn close(&self) {
        // A poisoned lock only means a panic elsewhere; the session inside is still valid.
        let s = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = s.as_ref() {
            s.stop();
        }
    }
}
