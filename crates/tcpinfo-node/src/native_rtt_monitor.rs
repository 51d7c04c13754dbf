//! `NativeRttMonitor`: the collector's passive RTT monitor (`tcpinfo_rtt::Monitor`), a
//! live ring on its own thread whose tables are read on demand: per-connection lookups
//! keyed by `inet_diag_msg` ids, histograms by remote prefix, counters.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Mutex, PoisonError};

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use tcpinfo_rtt::monitor::RTT_BUCKETS_NS;
use tcpinfo_rtt::{peer_flow, FlowKey, Monitor};

use crate::native_error::{config, rtt_to_napi};
use crate::native_rtt_monitor_options::{to_monitor_config, NativeRttMonitorOptions};

/// Bytes of one lookup key: the head of an `inet_diag_msg` (family … `id.idiag_dst`).
const ID_LEN: usize = 40;
/// Bytes of one lookup answer: samples, min ns, max ns (u64 LE each).
const ANSWER_LEN: usize = 24;

/// The histograms: one row per prefix, then the `other` row.
#[napi(object, object_from_js = false)]
pub struct NativeRttHistograms {
    /// Bucket upper bounds, nanoseconds (a `+Inf` bucket follows).
    pub bounds_ns: Vec<f64>,
    /// Row labels (`10.0.1.0/24`, `2001:db8:aa::/48`); the `other` row is not named.
    pub prefixes: Vec<String>,
    /// Per row (prefixes, then other): the non-cumulative bucket counts, sum (ns), count.
    pub rows: Vec<f64>,
}

/// A running monitor.
#[napi]
pub struct NativeRttMonitor {
    inner: Mutex<Option<Monitor>>,
}

/// The peer flow of one `inet_diag_msg` id; `None` for a family other than 2 and 10.
fn key_of(id: &[u8]) -> Option<FlowKey> {
    let port = |at: usize| u16::from_be_bytes([id[at], id[at + 1]]);
    let addr = |at: usize| -> Option<IpAddr> {
        match id[0] {
            2 => Some(IpAddr::V4(Ipv4Addr::new(
                id[at],
                id[at + 1],
                id[at + 2],
                id[at + 3],
            ))),
            10 => <[u8; 16]>::try_from(&id[at..at + 16])
                .ok()
                .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
            _ => None,
        }
    };
    Some(peer_flow(addr(8)?, port(4), addr(24)?, port(6)))
}

#[expect(clippy::cast_precision_loss, reason = "counters stay far below 2^53")]
fn f(v: u64) -> f64 {
    v as f64
}

#[napi]
impl NativeRttMonitor {
    /// Opens the ring and starts the thread. Throws `ERR_CONFIG`, `ERR_PERMISSION` (no
    /// `CAP_NET_RAW`), `ERR_NETNS` or `ERR_SOCKET`.
    #[napi(constructor, catch_unwind)]
    pub fn new(options: NativeRttMonitorOptions) -> napi::Result<Self> {
        let c = to_monitor_config(options)?;
        let m = Monitor::start(c).map_err(|e| rtt_to_napi(&e))?;
        Ok(Self {
            inner: Mutex::new(Some(m)),
        })
    }

    /// For each 40-byte `inet_diag_msg` head in `ids` (a local socket), the passive RTT
    /// toward its peer: 24 bytes each (samples, min ns, max ns as u64 LE; zeros when the
    /// capture has no sample of it). The connections are then forgotten by the capture
    /// (the collector looks each one up once, when it closed).
    #[napi]
    pub fn lookup(&self, ids: &[u8]) -> napi::Result<Buffer> {
        if !ids.len().is_multiple_of(ID_LEN) {
            return Err(config(&format!(
                "lookup ids must be {ID_LEN}-byte records, got {} bytes",
                ids.len()
            )));
        }
        let keys: Vec<Option<FlowKey>> = ids.chunks_exact(ID_LEN).map(key_of).collect();
        let wanted: Vec<FlowKey> = keys.iter().flatten().copied().collect();
        let g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let found = g
            .as_ref()
            .map(|m| m.lookup(&wanted, true))
            .unwrap_or_default();
        let mut found = found.into_iter();
        let mut out = Vec::with_capacity(keys.len() * ANSWER_LEN);
        for k in &keys {
            let r = if k.is_some() {
                found.next().flatten()
            } else {
                None
            };
            let (count, min, max) = r.unwrap_or_default();
            for v in [count, min, max] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        Ok(out.into())
    }

    /// The histograms now (a copy).
    #[napi]
    pub fn histograms(&self) -> NativeRttHistograms {
        let g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut h = NativeRttHistograms {
            bounds_ns: RTT_BUCKETS_NS.iter().map(|&b| f(b)).collect(),
            prefixes: Vec::new(),
            rows: Vec::new(),
        };
        if let Some(m) = g.as_ref() {
            m.with_histograms(|p| {
                for (name, row) in p
                    .rows
                    .iter()
                    .chain(std::iter::once(&(String::new(), p.other.clone())))
                {
                    if !name.is_empty() {
                        h.prefixes.push(name.clone());
                    }
                    h.rows.extend(row.buckets.iter().map(|&c| f(c)));
                    h.rows.push(f(row.sum_ns));
                    h.rows.push(f(row.count));
                }
            });
        }
        h
    }

    /// Counters, in the order of `RTT_MONITOR_STATS_FIELDS` in `src/native.ts`.
    #[napi]
    pub fn stats(&self) -> Vec<f64> {
        let guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(s) = guard.as_ref().map(Monitor::stats) else {
            return Vec::new();
        };
        let (parse, matching, ring) = (s.parse, s.matching, s.ring);
        [
            parse.frames,
            parse.truncated,
            parse.malformed,
            matching.segments,
            matching.samples,
            matching.flows_full,
            matching.tsvals_full,
            matching.flows,
            ring.packets,
            ring.drops,
            s.local_samples,
            s.prefix_overflow,
        ]
        .into_iter()
        .map(f)
        .collect()
    }

    /// Stops the capture thread and waits for it. Idempotent.
    #[napi]
    pub fn close(&self) {
        let m = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(m);
    }
}
