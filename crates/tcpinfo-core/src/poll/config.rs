//! Configuration of a poller, with M-Lab's defaults.

use std::path::PathBuf;
use std::time::Duration;

pub use super::accounting::MAX_METRIC_PORTS;
use crate::diff::fingerprint::ChangeRule;
use crate::filter::Filter;
use crate::netlink::destroy::DEFAULT_EVENT_RCVBUF_BYTES;
use crate::netlink::dump::DEFAULT_RECV_BUFFER_BYTES;
use crate::parse::diag_msg::{AF_INET, AF_INET6};
use crate::parse::tcp_info::AccEcnLayout;
use crate::poll::mode::PollMode;

/// Poll interval (M-Lab's default).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// `idiag_states`: every state except SYN_RECV, TIME_WAIT and CLOSE (M-Lab's 0xF37).
pub const DEFAULT_STATES: u32 = 0xF37;
/// `idiag_ext`: every requestable attribute (M-Lab's 0xFF).
pub const DEFAULT_EXT: u8 = 0xFF;
/// Batches queued for a consumer before the poller skips polls (it never drops a batch:
/// a skipped poll folds its changes into the next one).
pub const DEFAULT_QUEUE_DEPTH: usize = 8;
/// Bytes of records that may wait for a consumer before the poller skips polls. One
/// batch may exceed it (a first poll of 100k sockets frames ~125 MiB); the next poll
/// then waits until the consumer has taken it.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 64 * 1024 * 1024;
/// How long a connection must be missing from complete dumps (and at least two polls)
/// before the sweep closes it without a destroy event. Destroy events normally arrive
/// within a few ms, but a kernel workqueue delivers them, and on a loaded host they came
/// more than 100 ms late (the old default lost 2–10 of ~3,000 connections' final counters
/// in soak runs, 249 of ~2,600 at 1 ms polls: docs/RELIABILITY.md). Waiting keeps them;
/// it delays only the closes whose event never comes (lost to `ENOBUFS`).
pub const DEFAULT_CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Close events kept while polls are skipped; beyond this they are dropped and counted.
pub const DEFAULT_MAX_PENDING_CLOSES: usize = 100_000;

/// Longest poll interval accepted: one day.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(86_400);
/// Most batches that may wait for a consumer (the queue's slots are allocated up front).
pub const MAX_QUEUE_DEPTH: usize = 1024;
/// Smallest `max_queued_bytes` accepted (the public options ask for 64 KiB at least;
/// the core only needs a non-zero budget).
pub const MIN_MAX_QUEUED_BYTES: usize = 1;
/// Largest `max_queued_bytes` accepted: 64 GiB (a bound, never allocated up front).
pub const MAX_MAX_QUEUED_BYTES: usize = 64 << 30;
/// Most close events kept while polls are skipped.
pub const MAX_MAX_PENDING_CLOSES: usize = 10_000_000;
/// Largest receive buffer of a netlink socket: 64 MiB (allocated up front).
pub const MAX_RECV_BUFFER_BYTES: usize = 64 << 20;
/// Records bytes of one batch before a poll is split into parts: 4 MiB (~3k sockets).
/// About three parts are alive while a large poll streams through a consumer that
/// releases them, so this sets the first poll's peak (docs/BENCHMARKS.md, memory at 100k).
pub const DEFAULT_MAX_BATCH_BYTES: usize = 4 << 20;
/// Smallest CPU budget accepted: 0.1% of a core.
pub const MIN_MAX_CPU: f64 = 0.001;
/// Highest `idiag_states` bit: `TCP_BOUND_INACTIVE` (13).
pub const ALL_STATES: u32 = (1 << 14) - 1;

/// Everything a poller needs to know.
#[derive(Debug, Clone)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent switches of a configuration, each documented"
)]
pub struct PollerConfig {
    /// Time between polls.
    pub interval: Duration,
    /// Families to dump, `AF_INET` (2) and/or `AF_INET6` (10).
    pub families: Vec<u8>,
    /// `idiag_states` bitmask.
    pub states: u32,
    /// `idiag_ext` bitmask.
    pub ext: u8,
    /// Which sockets are reported.
    pub filter: Filter,
    /// What counts as a change.
    pub change_rule: ChangeRule,
    /// Subscribe to the destroy multicast groups for final counters of closed sockets.
    pub destroy_events: bool,
    /// Network namespace to watch (a path like `/var/run/netns/NAME`); `None` = current.
    pub netns: Option<PathBuf>,
    /// Watch every network namespace of the host (then `netns` must be `None`).
    pub all_namespaces: bool,
    /// Bytes of records beyond which a poll is delivered in several batches (parts sharing
    /// its `seq`) as it goes, so that a first poll of 100k+ sockets is never held whole.
    pub max_batch_bytes: usize,
    /// CPU budget of the poller thread, as a fraction of one core: the interval is
    /// stretched (never shortened) so that polling stays within it. `None`: no budget.
    pub max_cpu: Option<f64>,
    /// User-space receive buffer of the dump socket, bytes.
    pub recv_buffer_bytes: usize,
    /// Kernel receive buffer of the destroy-event socket, bytes.
    pub event_rcvbuf_bytes: usize,
    /// Batches that may wait for the consumer.
    pub queue_depth: usize,
    /// Bytes of queued records beyond which polls are skipped.
    pub max_queued_bytes: usize,
    /// Close events kept while polls are skipped.
    pub max_pending_closes: usize,
    /// Layout of the last 4 bytes of a 280-byte `tcp_info`.
    pub accecn_layout: AccEcnLayout,
    /// Minimum time missing before the sweep closes a connection.
    pub close_grace: Duration,
    /// When both families are watched, dump them in one legacy `AF_UNSPEC` request (one
    /// walk of the kernel's socket tables instead of two).
    pub single_dump: bool,
    /// Push the filter's exclusions into the kernel as an `INET_DIAG_REQ_BYTECODE` program,
    /// so excluded sockets are not even filled in. The filter still runs in user space.
    pub kernel_filter: bool,
    /// Report sockets that closed without ever being connected (a destroy event of a
    /// socket no poll saw, with no peer: unspecified destination address and port 0).
    /// Off by default: such sockets (a failed `connect()` that never left SYN-SENT is
    /// not one of them; a bound-then-closed socket is) are not connections.
    pub report_unconnected: bool,
    /// How changes are found: netlink dumps, the BPF iterator, or BPF where possible.
    pub mode: PollMode,
    /// Account the bytes each reported connection moved since its previous report
    /// (`PollStats::bytes_sent`/`bytes_received`, for metrics; `poll/accounting.rs`).
    /// Costs one 32-byte entry per tracked connection. Off by default.
    pub count_bytes: bool,
    /// Local ports with per-port accounting (`PollBatch::port_stats`), at most
    /// [`MAX_METRIC_PORTS`], each once, none 0. Implies byte accounting.
    pub metric_ports: Vec<u16>,
}

impl Default for PollerConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_POLL_INTERVAL,
            families: vec![AF_INET, AF_INET6],
            states: DEFAULT_STATES,
            ext: DEFAULT_EXT,
            filter: Filter::default(),
            change_rule: ChangeRule::default(),
            destroy_events: true,
            netns: None,
            all_namespaces: false,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            max_cpu: None,
            recv_buffer_bytes: DEFAULT_RECV_BUFFER_BYTES,
            event_rcvbuf_bytes: DEFAULT_EVENT_RCVBUF_BYTES,
            queue_depth: DEFAULT_QUEUE_DEPTH,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            max_pending_closes: DEFAULT_MAX_PENDING_CLOSES,
            accecn_layout: AccEcnLayout::running_kernel(),
            close_grace: DEFAULT_CLOSE_GRACE,
            single_dump: true,
            kernel_filter: true,
            report_unconnected: false,
            mode: PollMode::Netlink,
            count_bytes: false,
            metric_ports: Vec::new(),
        }
    }
}

impl PollerConfig {
    /// Checks values that the kernel or the poller cannot work with.
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming the bad value.
    /// This is the invariant guard below every front end (the TS schema checks options
    /// first, with the public names): every bound that sizes an allocation is here.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: &str| Err(crate::Error::Config(m.to_owned()));
        if self.interval.is_zero() || self.interval > MAX_POLL_INTERVAL {
            return bad("interval must be positive and at most one day");
        }
        if self.families.is_empty()
            || self
                .families
                .iter()
                .any(|f| *f != AF_INET && *f != AF_INET6)
        {
            return bad("families must be a non-empty list of AF_INET (2) and AF_INET6 (10)");
        }
        if self.states == 0 {
            return bad("states must select at least one TCP state");
        }
        if self.states & !ALL_STATES != 0 {
            return bad("states has bits above TCP_BOUND_INACTIVE (13)");
        }
        if self.all_namespaces && self.netns.is_some() {
            return bad("netns is either a namespace path or every namespace, not both");
        }
        if self
            .max_cpu
            .is_some_and(|c| !(MIN_MAX_CPU..=1.0).contains(&c))
        {
            return bad("max cpu must be a fraction of one core from 0.001 to 1");
        }
        if self.max_batch_bytes < 4096 {
            return bad("max batch bytes must be at least 4096");
        }
        if self.queue_depth == 0 || self.queue_depth > MAX_QUEUE_DEPTH {
            return bad("queue depth must be from 1 to 1024");
        }
        if !(MIN_MAX_QUEUED_BYTES..=MAX_MAX_QUEUED_BYTES).contains(&self.max_queued_bytes) {
            return bad("max queued bytes must be from 1 byte to 64 GiB");
        }
        if self.max_pending_closes > MAX_MAX_PENDING_CLOSES {
            return bad("max pending closes must be at most 10 million");
        }
        if self.recv_buffer_bytes == 0
            || self.recv_buffer_bytes > MAX_RECV_BUFFER_BYTES
            || self.event_rcvbuf_bytes > MAX_RECV_BUFFER_BYTES
        {
            return bad("netlink buffer sizes must be from 1 byte to 64 MiB");
        }
        if self.metric_ports.len() > MAX_METRIC_PORTS
            || self.metric_ports.contains(&0)
            || (1..self.metric_ports.len())
                .any(|i| self.metric_ports[..i].contains(&self.metric_ports[i]))
        {
            return bad("metric ports must be at most 64 distinct ports from 1 to 65535");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values that would size an allocation beyond any reason are refused, not tried.
    #[test]
    fn validate_bounds_every_allocation_sized_from_configuration() {
        assert!(PollerConfig::default().validate().is_ok());
        let cases: [fn(&mut PollerConfig); 14] = [
            |c| c.metric_ports = (1..=65).collect(),
            |c| c.metric_ports = vec![0],
            |c| c.metric_ports = vec![80, 443, 80],
            |c| c.queue_depth = usize::MAX,
            |c| c.queue_depth = 0,
            |c| c.max_queued_bytes = usize::MAX,
            |c| c.max_queued_bytes = 0,
            |c| c.interval = Duration::MAX,
            |c| c.recv_buffer_bytes = usize::MAX,
            |c| c.max_pending_closes = usize::MAX,
            |c| c.states = u32::MAX,
            |c| c.max_cpu = Some(0.0),
            |c| c.max_cpu = Some(f64::NAN),
            |c| {
                c.all_namespaces = true;
                c.netns = Some("/run/netns/x".into());
            },
        ];
        for (i, f) in cases.iter().enumerate() {
            let mut c = PollerConfig::default();
            f(&mut c);
            assert!(
                matches!(c.validate(), Err(crate::Error::Config(_))),
                "case {i}"
            );
        }
    }
}
