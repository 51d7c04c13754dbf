//! `tcpinfo-rtt`: passive TCP round-trip times from packets, as Kathie Nichols' pping
//! measures them: the time from a packet carrying a TSval to the first packet of the
//! reverse direction echoing it as TSecr (RFC 7323 timestamps).
//!
//! Sources: a live `AF_PACKET` `TPACKET_V3` ring ([`ring`], raw `libc`, no libpcap) or a
//! pcap/pcapng file ([`pcap`]). Frames are parsed by [`packet`], matched by [`Matcher`],
//! summarised per flow by [`FlowRtt`]; [`RttSession`] runs a source on its own thread
//! and hands out batches. Rules and their sources: `docs/internals/rtt/design.md`.
#![deny(missing_docs)]

mod error;
mod matcher;
pub mod monitor;
pub mod packet;
pub mod pcap;
pub mod record;
pub mod ring;
mod session;
mod summary;

pub use error::{Error, Result};
pub use matcher::{
    ts_after, MatchStats, Matcher, MatcherConfig, Sample, DEFAULT_FLOW_MAX_IDLE, DEFAULT_MAX_FLOWS,
    DEFAULT_MAX_TSVALS, DEFAULT_MAX_TSVALS_PER_FLOW, DEFAULT_SWEEP_INTERVAL, DEFAULT_TSVAL_MAX_AGE,
};
pub use monitor::{peer_flow, Monitor, MonitorConfig, MonitorStats};
pub use packet::{parse, FlowKey, LinkType, ParseStats, Segment, Skip, Timestamps};
pub use pcap::{read_file, FileStats, Frame};
pub use ring::{Ring, RingConfig, RingStats};
pub use session::{
    RttBatch, RttReceiver, RttSession, RttStats, SessionConfig, Source, DEFAULT_BATCH_INTERVAL,
    DEFAULT_MAX_BATCH_SAMPLES, DEFAULT_QUEUE_DEPTH,
};
pub use summary::{FlowRtt, Summary};

/// Reads a whole capture file synchronously: every sample, the matcher (for per-flow
/// summaries) and the counters.
///
/// # Errors
/// As [`read_file`].
pub fn analyze_file(
    path: &std::path::Path,
    config: MatcherConfig,
) -> Result<(Vec<Sample>, Matcher, ParseStats, FileStats)> {
    let mut m = Matcher::new(config);
    let mut ps = ParseStats::default();
    let mut samples = Vec::new();
    let fs = read_file(path, |f| {
        if let Some(seg) = ps.parse(f.link, f.data) {
            if let Some(s) = m.process(&seg, f.t_ns) {
                samples.push(s);
            }
        }
    })?;
    Ok((samples, m, ps, fs))
}
