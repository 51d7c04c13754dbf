//! `NativePortStats`: the per-port accounting of one poll (`PortStats` of the core).

use napi_derive::napi;

/// Per-port accounting of one poll for one configured metrics port: deltas since the
/// previous poll (bytes as JS numbers, exact below 2^53).
#[napi(object)]
pub struct NativePortStats {
    /// The local port.
    pub port: u32,
    /// Connections on it reported opened by this poll.
    pub opened: u32,
    /// Connections on it reported closed by this poll.
    pub closed: u32,
    /// Bytes acknowledged by peers on its connections since their previous reports.
    pub bytes_sent: f64,
    /// Bytes received on its connections since their previous reports.
    pub bytes_received: f64,
}

impl From<tcpinfo_core::PortStats> for NativePortStats {
    #[expect(clippy::cast_precision_loss, reason = "counters stay far below 2^53")]
    fn from(s: tcpinfo_core::PortStats) -> Self {
        Self {
            port: s.port.into(),
            opened: s.opened,
            closed: s.closed,
            bytes_sent: s.bytes_sent as f64,
            bytes_received: s.bytes_received as f64,
        }
    }
}
