//! `NativePollerOptions` (plain JS object) to `PollerConfig`: conversions only.
//!
//! The TypeScript schema (`src/config/`) has already checked every option with its public
//! name; what reaches here is converted without panicking whatever the value (a NaN, a
//! negative or huge number saturates or fails the conversion), and the core's
//! `validate()` guards the invariants.

use std::path::PathBuf;
use std::time::Duration;

use napi_derive::napi;
use tcpinfo_core::{ChangeRule, Cidr, Filter, PollMode, PollerConfig};

use crate::native_error::config;

/// Options of a poller; every field is optional and defaults as in `PollerConfig`.
#[napi(object)]
#[derive(Default)]
pub struct NativePollerOptions {
    /// Poll interval in milliseconds (default 10).
    pub interval_ms: Option<f64>,
    /// Address families: 2 (`AF_INET`) and/or 10 (`AF_INET6`).
    pub families: Option<Vec<u32>>,
    /// `idiag_states` bitmask (default 0xF37).
    pub states: Option<u32>,
    /// `idiag_ext` bitmask (default 0xFF).
    pub ext: Option<u32>,
    /// Exclude loopback/link-local/multicast/unspecified addresses.
    pub exclude_local: Option<bool>,
    /// Exclude these local ports.
    pub exclude_src_ports: Option<Vec<u32>>,
    /// Exclude these remote networks (CIDR or address).
    pub exclude_dst: Option<Vec<String>>,
    /// `tcp_info` fields (camelCase) whose changes do not count.
    pub ignore_tcp_info_fields: Option<Vec<String>>,
    /// Whether memory attributes count as a change.
    pub include_memory: Option<bool>,
    /// Only state changes count.
    pub state_only: Option<bool>,
    /// Subscribe to destroy events (default true).
    pub destroy_events: Option<bool>,
    /// Report sockets closed without ever having a peer (default false).
    pub report_unconnected: Option<bool>,
    /// Network namespace path to watch, or `'all'` for every namespace of the host.
    pub netns: Option<String>,
    /// CPU budget of the poller thread, a fraction of one core (stretches the interval).
    pub max_cpu: Option<f64>,
    /// Batches waiting for the consumer before polls are skipped.
    pub queue_depth: Option<u32>,
    /// Bytes of queued records beyond which polls are skipped.
    pub max_queued_bytes: Option<f64>,
    /// Kernel receive buffer of the destroy-event socket, bytes (default 8 MiB).
    pub event_rcvbuf_bytes: Option<u32>,
    /// Poll mode: `netlink` (default), `bpf` or `auto`.
    pub mode: Option<String>,
    /// Account bytes moved per poll (`stats.bytesSent`/`bytesReceived`), default false.
    pub count_bytes: Option<bool>,
    /// Local ports with per-port accounting (at most 64).
    pub metric_ports: Option<Vec<u32>>,
}

/// Builds a validated core configuration.
pub fn to_config(o: NativePollerOptions) -> napi::Result<PollerConfig> {
    let mut c = PollerConfig::default();
    if let Some(ms) = o.interval_ms {
        c.interval = Duration::try_from_secs_f64(ms / 1000.0)
            .map_err(|_| config("intervalMs must be a finite positive number"))?;
    }
    if let Some(f) = o.families {
        c.families = f
            .into_iter()
            .map(|v| u8::try_from(v).unwrap_or(0))
            .collect();
    }
    c.states = o.states.unwrap_or(c.states);
    if let Some(ext) = o.ext {
        c.ext = u8::try_from(ext).map_err(|_| config("ext must fit in 8 bits"))?;
    }
    c.filter = Filter {
        exclude_local: o.exclude_local.unwrap_or(false),
        exclude_src_ports: ports(o.exclude_src_ports.unwrap_or_default())?,
        exclude_dst: o
            .exclude_dst
            .unwrap_or_default()
            .iter()
            .map(|s| Cidr::parse(s).map_err(|e| config(&e)))
            .collect::<napi::Result<_>>()?,
    };
    let mut rule = ChangeRule::default();
    if let Some(fields) = o.ignore_tcp_info_fields {
        rule.ignore_tcp_info_fields = fields;
    }
    rule.include_memory = o.include_memory.unwrap_or(false);
    rule.state_only = o.state_only.unwrap_or(false);
    c.change_rule = rule;
    c.destroy_events = o.destroy_events.unwrap_or(true);
    c.report_unconnected = o.report_unconnected.unwrap_or(false);
    match o.netns.as_deref() {
        Some("all") => c.all_namespaces = true,
        other => c.netns = other.map(PathBuf::from),
    }
    c.max_cpu = o.max_cpu;
    if let Some(d) = o.queue_depth {
        c.queue_depth = usize::try_from(d).unwrap_or(usize::MAX);
    }
    if let Some(b) = o.max_queued_bytes {
        // `as` saturates (NaN to 0): validate() then refuses what is out of bounds.
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "saturating conversion; bounds are checked by validate()"
        )]
        let bytes = b as usize;
        c.max_queued_bytes = bytes;
    }
    if let Some(b) = o.event_rcvbuf_bytes {
        c.event_rcvbuf_bytes = usize::try_from(b).unwrap_or(usize::MAX);
    }
    if let Some(m) = o.mode.as_deref() {
        c.mode = PollMode::parse(m).map_err(|e| config(&e))?;
    }
    c.count_bytes = o.count_bytes.unwrap_or(false);
    c.metric_ports = ports(o.metric_ports.unwrap_or_default())?;
    c.validate().map_err(|e| crate::native_error::to_napi(&e))?;
    Ok(c)
}

fn ports(v: Vec<u32>) -> napi::Result<Vec<u16>> {
    v.into_iter()
        .map(|p| u16::try_from(p).map_err(|_| config(&format!("port out of range: {p}"))))
        .collect()
}
