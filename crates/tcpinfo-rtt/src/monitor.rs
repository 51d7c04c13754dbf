//! The collector's passive RTT monitor (`tcpinfo collect --passive-rtt IF`): a live ring
//! read on its own thread, matched as [`crate::Matcher`] does, feeding two bounded tables
//! that the collector reads when it wants, never the other way round:
//!
//! - per flow direction, the matcher's [`FlowRtt`] (count, min, max): the collector looks
//!   up its own connections when they close ([`Monitor::lookup`]);
//! - per remote prefix (/24 for IPv4, /48 for IPv6 by default), a fixed-bucket histogram
//!   of the samples, at most `max_prefixes` rows; samples of prefixes beyond the bound go
//!   to one `other` row and are counted. Samples echoed by one of the capturing
//!   namespace's own addresses time the local stack, not a path: counted, not binned.
//!
//! The polling thread never waits for the capture: they share nothing. The capture
//! thread holds the tables' lock for slices of 1024 packets (not per packet, not a whole
//! lap of the ring), and readers hold it only to copy what they asked for.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hashbrown::HashMap;
use rustc_hash::FxBuildHasher;

use crate::error::{Error, Result};
use crate::matcher::{MatchStats, Matcher, MatcherConfig};
use crate::packet::{FlowKey, LinkType, ParseStats};
use crate::ring::{enter_netns, Ring, RingConfig, RingStats};
use crate::summary::FlowRtt;

/// Upper bounds of the histogram buckets, nanoseconds (a last `+Inf` bucket follows).
pub const RTT_BUCKETS_NS: [u64; 16] = [
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    10_000_000_000,
];
/// Default most prefixes with a histogram row of their own.
pub const DEFAULT_MAX_PREFIXES: usize = 256;
/// How often the thread refreshes ring counters, ages the tables and re-reads the
/// namespace's addresses.
const HOUSEKEEPING: Duration = Duration::from_secs(1);
const LOCALS_EVERY: Duration = Duration::from_secs(10);
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
/// Packets processed per hold of the tables' lock.
const LOCK_SLICE: u32 = 1024;

/// Monitor settings.
#[derive(Clone, Debug)]
pub struct MonitorConfig {
    /// The ring (interface, sizes).
    pub ring: RingConfig,
    /// Network namespace to capture in (name under `/run/netns`, or a path).
    pub netns: Option<String>,
    /// Matching limits.
    pub matcher: MatcherConfig,
    /// Most prefixes with a row of their own.
    pub max_prefixes: usize,
    /// Prefix length of IPv4 rows.
    pub v4_prefix: u8,
    /// Prefix length of IPv6 rows.
    pub v6_prefix: u8,
}

impl MonitorConfig {
    /// Defaults for a ring config.
    pub fn new(ring: RingConfig) -> Self {
        Self {
            ring,
            netns: None,
            matcher: MatcherConfig::default(),
            max_prefixes: DEFAULT_MAX_PREFIXES,
            v4_prefix: 24,
            v6_prefix: 48,
        }
    }
}

/// One histogram row: bucket counts (the last is `+Inf`), sum and count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistogramRow {
    /// Non-cumulative counts per bucket of [`RTT_BUCKETS_NS`], then `+Inf`.
    pub buckets: [u64; RTT_BUCKETS_NS.len() + 1],
    /// Sum of the samples, nanoseconds (saturating).
    pub sum_ns: u64,
    /// Samples.
    pub count: u64,
}

impl HistogramRow {
    fn observe(&mut self, rtt_ns: u64) {
        let b = RTT_BUCKETS_NS.partition_point(|&le| le < rtt_ns);
        self.buckets[b] += 1;
        self.sum_ns = self.sum_ns.saturating_add(rtt_ns);
        self.count += 1;
    }
}

/// Histograms by remote prefix, bounded.
#[derive(Debug)]
pub struct PrefixHistograms {
    max: usize,
    v4_prefix: u8,
    v6_prefix: u8,
    index: HashMap<([u8; 16], bool), usize, FxBuildHasher>,
    /// Rows in first-seen order: the prefix (`a.b.c.0/24`, `x:y:z::/48`) and its row.
    pub rows: Vec<(String, HistogramRow)>,
    /// Samples of prefixes beyond the bound.
    pub other: HistogramRow,
}

fn mask(mut b: [u8; 16], bits: u8) -> [u8; 16] {
    for (i, byte) in b.iter_mut().enumerate() {
        let keep = usize::from(bits).saturating_sub(i * 8).min(8);
        *byte &= if keep == 0 { 0 } else { 0xff << (8 - keep) };
    }
    b
}

impl PrefixHistograms {
    fn new(max: usize, v4_prefix: u8, v6_prefix: u8) -> Self {
        Self {
            max,
            v4_prefix: v4_prefix.min(32),
            v6_prefix: v6_prefix.min(128),
            index: HashMap::default(),
            rows: Vec::new(),
            other: HistogramRow::default(),
        }
    }

    /// Adds a sample of the round trip to `host` (the echoing source).
    fn observe(&mut self, host: &[u8; 16], v6: bool, rtt_ns: u64) {
        let key = (
            mask(*host, if v6 { self.v6_prefix } else { self.v4_prefix }),
            v6,
        );
        let row = match self.index.get(&key) {
            Some(&i) => &mut self.rows[i].1,
            None if self.rows.len() < self.max => {
                let len = if v6 { self.v6_prefix } else { self.v4_prefix };
                let ip = FlowKey {
                    src: key.0,
                    dst: key.0,
                    sport: 0,
                    dport: 0,
                    v6,
                }
                .src_ip();
                let i = self.rows.len();
                self.index.insert(key, i);
                self.rows
                    .push((format!("{ip}/{len}"), HistogramRow::default()));
                &mut self.rows[i].1
            }
            None => &mut self.other,
        };
        row.observe(rtt_ns);
    }
}

/// Counters of a monitor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonitorStats {
    /// Frame parsing.
    pub parse: ParseStats,
    /// Matching.
    pub matching: MatchStats,
    /// The ring (refreshed every second).
    pub ring: RingStats,
    /// Samples echoed by a local address (the stack's own delay): not in the histograms.
    pub local_samples: u64,
    /// Samples in the `other` row (their prefix found the table full).
    pub prefix_overflow: u64,
}

struct Tables {
    matcher: Matcher,
    hist: PrefixHistograms,
    parse: ParseStats,
    ring: RingStats,
    local_samples: u64,
    locals: HashSet<[u8; 16]>,
}

/// A running monitor. Dropping it stops the thread and waits for it.
pub struct Monitor {
    tables: Arc<Mutex<Tables>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

fn lock(t: &Mutex<Tables>) -> MutexGuard<'_, Tables> {
    // A panic on the capture thread leaves consistent counters; keep serving them.
    t.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Monitor {
    /// Opens the ring (in the namespace) on a new thread; returns once it is open.
    ///
    /// # Errors
    /// As [`Ring::open`] and [`enter_netns`]; [`Error::Config`] for `max_prefixes` 0.
    pub fn start(config: MonitorConfig) -> Result<Self> {
        if config.max_prefixes == 0 {
            return Err(Error::Config("max_prefixes must be at least 1".into()));
        }
        let tables = Arc::new(Mutex::new(Tables {
            matcher: Matcher::new(config.matcher.clone()),
            hist: PrefixHistograms::new(config.max_prefixes, config.v4_prefix, config.v6_prefix),
            parse: ParseStats::default(),
            ring: RingStats::default(),
            local_samples: 0,
            locals: HashSet::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std_mpsc::sync_channel::<Result<()>>(1);
        let (t2, s2) = (Arc::clone(&tables), Arc::clone(&stop));
        let handle = std::thread::Builder::new()
            .name("tcpinfo-rtt-monitor".into())
            .spawn(move || {
                let opened = config
                    .netns
                    .as_deref()
                    .map_or(Ok(()), enter_netns)
                    .and_then(|()| Ring::open(&config.ring));
                match opened {
                    Ok(mut ring) => {
                        ready_tx.send(Ok(())).ok();
                        run(&mut ring, &t2, &s2);
                    }
                    Err(e) => {
                        ready_tx.send(Err(e)).ok();
                    }
                }
            })
            .map_err(|e| Error::Socket {
                op: "spawn capture thread",
                source: e,
            })?;
        let mut m = Self {
            tables,
            stop,
            handle: Some(handle),
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(m),
            Ok(Err(e)) => {
                m.join();
                Err(e)
            }
            Err(_) => {
                m.join();
                Err(Error::Closed)
            }
        }
    }

    /// For each flow direction, its RTT statistics if tracked: samples, min and max ns.
    /// With `forget`, both directions of each connection are then dropped from the tables
    /// (the collector asks once a connection closed: their slots serve new connections
    /// instead of waiting out the idle time).
    pub fn lookup(&self, flows: &[FlowKey], forget: bool) -> Vec<Option<(u64, u64, u64)>> {
        let mut t = lock(&self.tables);
        flows
            .iter()
            .map(|k| {
                let r = t
                    .matcher
                    .flow_rtt(k)
                    .filter(|r: &&FlowRtt| r.count > 0)
                    .map(|r| (r.count, r.min_ns, r.max_ns));
                if forget {
                    t.matcher.remove(k);
                    t.matcher.remove(&k.reverse());
                }
                r
            })
            .collect()
    }

    /// Calls `f` with the histograms (under the lock: copy what is needed).
    pub fn with_histograms<R>(&self, f: impl FnOnce(&PrefixHistograms) -> R) -> R {
        f(&lock(&self.tables).hist)
    }

    /// Counters now.
    pub fn stats(&self) -> MonitorStats {
        let t = lock(&self.tables);
        MonitorStats {
            parse: t.parse,
            matching: t.matcher.stats(),
            ring: t.ring,
            local_samples: t.local_samples,
            prefix_overflow: t.hist.other.count,
        }
    }

    /// Stops the thread and waits for it. Idempotent.
    pub fn close(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.join();
    }

    fn join(&mut self) {
        if let Some(h) = self.handle.take() {
            // A panic was reported by the hook; nothing else to do.
            h.join().ok();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.close();
    }
}

fn unix_now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn run(ring: &mut Ring, tables: &Mutex<Tables>, stop: &AtomicBool) {
    let mut housekeeping = Instant::now();
    let mut locals_read = Instant::now();
    lock(tables).locals = local_addresses();
    while !stop.load(Ordering::Acquire) {
        let mut guard: Option<MutexGuard<'_, Tables>> = None;
        let mut held = 0u32;
        let r = ring.next_packets(POLL_TIMEOUT, |t_ns, data| {
            // Readers wait at most one slice of packets (~80 µs), not a lap of the ring.
            held += 1;
            if held % LOCK_SLICE == 0 {
                guard = None;
            }
            let t = guard.get_or_insert_with(|| lock(tables));
            let Some(seg) = t.parse.parse(Some(LinkType::RawIp), data) else {
                return;
            };
            if let Some(s) = t.matcher.process(&seg, t_ns) {
                if t.locals.contains(&s.flow.src) {
                    t.local_samples += 1;
                } else {
                    t.hist.observe(&s.flow.src, s.flow.v6, s.rtt_ns);
                }
            }
        });
        drop(guard);
        if r.is_err() {
            // The socket failed (interface gone): counters stay readable, capture ends.
            return;
        }
        if housekeeping.elapsed() >= HOUSEKEEPING {
            housekeeping = Instant::now();
            let stats = ring.stats().ok();
            let locals = if locals_read.elapsed() >= LOCALS_EVERY {
                locals_read = Instant::now();
                Some(local_addresses())
            } else {
                None
            };
            let mut t = lock(tables);
            if let Some(s) = stats {
                t.ring = s;
            }
            if let Some(l) = locals {
                t.locals = l;
            }
            t.matcher.advance(unix_now_ns());
        }
    }
    if let Ok(s) = ring.stats() {
        lock(tables).ring = s;
    }
}

/// The addresses of this thread's network namespace, as [`FlowKey`] stores them (IPv4 in
/// the first 4 bytes).
fn local_addresses() -> HashSet<[u8; 16]> {
    tcpinfo_core::netns::addrs::interface_addrs()
        .into_iter()
        .map(|a| {
            let mut b = [0u8; 16];
            match a {
                IpAddr::V4(v4) => b[..4].copy_from_slice(&v4.octets()),
                IpAddr::V6(v6) => b.copy_from_slice(&v6.octets()),
            }
            b
        })
        .collect()
}

/// The flow direction whose samples time a local socket's path to its peer: the peer's
/// echoes (`remote → local`). IPv4-mapped IPv6 addresses (a dual-stack socket's IPv4
/// peers) become IPv4, as their packets are.
pub fn peer_flow(local: IpAddr, local_port: u16, remote: IpAddr, remote_port: u16) -> FlowKey {
    let unmap = |a: IpAddr| match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        IpAddr::V4(_) => a,
    };
    FlowKey::new(unmap(remote), remote_port, unmap(local), local_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_bounded_and_masked() {
        let mut h = PrefixHistograms::new(2, 24, 48);
        let v4 = |a: [u8; 4]| {
            let mut b = [0; 16];
            b[..4].copy_from_slice(&a);
            b
        };
        h.observe(&v4([10, 0, 1, 7]), false, 1_500_000);
        h.observe(&v4([10, 0, 1, 200]), false, 60_000);
        let v6: [u8; 16] = "2001:db8:aa:bb::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        h.observe(&v6, true, 20_000_000_000);
        h.observe(&v4([10, 0, 2, 1]), false, 1);
        assert_eq!(h.rows.len(), 2);
        assert_eq!(h.rows[0].0, "10.0.1.0/24");
        assert_eq!(h.rows[1].0, "2001:db8:aa::/48");
        assert_eq!(h.rows[0].1.count, 2);
        assert_eq!(h.rows[0].1.sum_ns, 1_560_000);
        // 60 µs: the (50, 100] µs bucket; 1.5 ms: (1, 2.5] ms.
        assert_eq!(h.rows[0].1.buckets[1], 1);
        assert_eq!(h.rows[0].1.buckets[5], 1);
        assert_eq!(h.rows[1].1.buckets[RTT_BUCKETS_NS.len()], 1);
        assert_eq!(h.other.count, 1);
        assert_eq!(h.other.buckets[0], 1);
    }

    #[test]
    fn peer_flow_unmaps_v4() {
        let k = peer_flow(
            "::ffff:10.0.0.1".parse().unwrap(),
            80,
            "::ffff:10.0.0.2".parse().unwrap(),
            5000,
        );
        assert_eq!(k.src_ip(), "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!((k.sport, k.dport, k.v6), (5000, 80, false));
    }

    #[test]
    fn mask_keeps_the_prefix() {
        let b = mask([0xff; 16], 20);
        assert_eq!(&b[..4], &[0xff, 0xff, 0xf0, 0]);
        assert_eq!(mask([0xff; 16], 128), [0xff; 16]);
    }
}
