//! `NativeRttOptions`: the options of a passive RTT capture, converted to a
//! `tcpinfo_rtt::SessionConfig` (defaults are the crate's `DEFAULT_*` constants).

use std::time::Duration;

use napi_derive::napi;
use tcpinfo_rtt::{RingConfig, SessionConfig, Source};

use crate::native_error::config;

/// Options of `new NativeRtt()`. Exactly one of `interface` and `pcap`.
#[napi(object)]
#[derive(Default)]
pub struct NativeRttOptions {
    /// Live capture on this interface; `"any"` for all interfaces.
    pub interface: Option<String>,
    /// Read this pcap/pcapng file.
    pub pcap: Option<String>,
    /// Live capture inside this network namespace (name under /run/netns, or a path).
    pub netns: Option<String>,
    /// Bytes kept per packet from the IP header on (default 128).
    pub snaplen: Option<u32>,
    /// Ring block size in bytes (default 1 MiB).
    pub ring_block_bytes: Option<u32>,
    /// Ring blocks (default 8).
    pub ring_blocks: Option<u32>,
    /// Most flow directions tracked (default 10000).
    pub max_flows: Option<u32>,
    /// Most TSvals remembered (default 200000).
    pub max_tsvals: Option<u32>,
    /// Unmatched TSvals forgotten after this many ms (default 10000).
    pub tsval_max_age_ms: Option<f64>,
    /// Idle flows forgotten after this many ms (default 300000).
    pub flow_max_idle_ms: Option<f64>,
    /// Per-flow rate limit of stored TSvals, ms (default 0: off).
    pub min_tsval_interval_ms: Option<f64>,
    /// Summaries of flows with new samples every this many ms (default: only at the end).
    pub summary_interval_ms: Option<f64>,
    /// Most samples per batch (default 4096).
    pub max_batch_samples: Option<u32>,
    /// Live: longest a sample waits for its batch, ms (default 100).
    pub batch_interval_ms: Option<f64>,
}

fn ms(v: Option<f64>, name: &str) -> napi::Result<Option<Duration>> {
    v.map(|x| {
        Duration::try_from_secs_f64(x / 1000.0).map_err(|_| {
            config(&format!(
                "{name} must be a finite number of milliseconds >= 0 (got {x})"
            ))
        })
    })
    .transpose()
}

/// Validates and converts the options.
pub fn to_session_config(o: NativeRttOptions) -> napi::Result<SessionConfig> {
    let source = match (o.interface, o.pcap) {
        (Some(i), None) => {
            let mut ring = RingConfig {
                interface: (i != "any").then_some(i),
                ..RingConfig::default()
            };
            ring.snaplen = o.snaplen.unwrap_or(ring.snaplen);
            ring.block_bytes = o.ring_block_bytes.unwrap_or(ring.block_bytes);
            ring.blocks = o.ring_blocks.unwrap_or(ring.blocks);
            Source::Live {
                ring,
                netns: o.netns,
            }
        }
        (None, Some(p)) => Source::File(p.into()),
        _ => return Err(config("give exactly one of interface and pcap")),
    };
    let mut c = SessionConfig::new(source);
    let m = &mut c.matcher;
    m.max_flows = o.max_flows.map_or(m.max_flows, |v| v as usize);
    m.max_tsvals = o.max_tsvals.map_or(m.max_tsvals, |v| v as usize);
    m.tsval_max_age = ms(o.tsval_max_age_ms, "tsvalMaxAgeMs")?.unwrap_or(m.tsval_max_age);
    m.flow_max_idle = ms(o.flow_max_idle_ms, "flowMaxIdleMs")?.unwrap_or(m.flow_max_idle);
    m.min_tsval_interval = ms(o.min_tsval_interval_ms, "minTsvalIntervalMs")?.unwrap_or_default();
    c.summary_interval = ms(o.summary_interval_ms, "summaryIntervalMs")?;
    c.max_batch_samples = o
        .max_batch_samples
        .map_or(c.max_batch_samples, |v| v as usize);
    c.batch_interval = ms(o.batch_interval_ms, "batchIntervalMs")?.unwrap_or(c.batch_interval);
    Ok(c)
}
