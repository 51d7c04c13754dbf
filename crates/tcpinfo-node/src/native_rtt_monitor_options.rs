//! `NativeRttMonitorOptions`: the options of the collector's passive RTT monitor,
//! converted to a `tcpinfo_rtt::MonitorConfig` (defaults are the crate's).

use napi_derive::napi;
use tcpinfo_rtt::{MonitorConfig, RingConfig};

use crate::native_error::config;

/// Options of `new NativeRttMonitor()`.
#[napi(object)]
pub struct NativeRttMonitorOptions {
    /// Interface to capture on; `"any"` for all.
    pub interface: String,
    /// Network namespace to capture in (name under /run/netns, or a path).
    pub netns: Option<String>,
    /// Most prefixes with a histogram row of their own (default 256).
    pub max_prefixes: Option<u32>,
    /// IPv4 prefix length of the rows (default 24).
    pub v4_prefix: Option<u32>,
    /// IPv6 prefix length of the rows (default 48).
    pub v6_prefix: Option<u32>,
    /// Most flow directions tracked (default 10000).
    pub max_flows: Option<u32>,
}

fn prefix_len(v: Option<u32>, max: u8, default: u8, name: &str) -> napi::Result<u8> {
    match v {
        None => Ok(default),
        Some(n) if (1..=u32::from(max)).contains(&n) => Ok(u8::try_from(n).unwrap_or(max)),
        Some(n) => Err(config(&format!("{name} must be 1 to {max} (got {n})"))),
    }
}

/// Validates and converts the options.
pub fn to_monitor_config(options: NativeRttMonitorOptions) -> napi::Result<MonitorConfig> {
    let ring = RingConfig {
        interface: (options.interface != "any").then_some(options.interface),
        ..RingConfig::default()
    };
    let mut c = MonitorConfig::new(ring);
    c.netns = options.netns;
    c.max_prefixes = options.max_prefixes.map_or(c.max_prefixes, |v| v as usize);
    c.v4_prefix = prefix_len(options.v4_prefix, 32, c.v4_prefix, "v4Prefix")?;
    c.v6_prefix = prefix_len(options.v6_prefix, 128, c.v6_prefix, "v6Prefix")?;
    c.matcher.max_flows = options
        .max_flows
        .map_or(c.matcher.max_flows, |v| v as usize);
    Ok(c)
}
