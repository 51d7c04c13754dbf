//! TSval/TSecr matching (Kathie Nichols' pping, with the refinements documented in
//! `docs/internals/rtt/design.md`): the first time a flow direction shows a TSval is
//! remembered; the first later packet of the reverse direction that echoes it as TSecr
//! gives one RTT sample (capture point → the echoing host → capture point), and the
//! entry is then spent.
//!
//! Bounded: at most `max_flows` flow directions and `max_tsvals` remembered TSvals
//! (each refusal counted); TSvals older than `tsval_max_age` and flows idle for
//! `flow_max_idle` are swept, on packet time (so files and live captures age alike).

use std::time::Duration;

use hashbrown::HashMap;
use rustc_hash::FxBuildHasher;

use crate::packet::{FlowKey, Segment};
use crate::summary::{FlowRtt, Summary};

/// Default bound on tracked flow directions (pping's `maxFlows`).
pub const DEFAULT_MAX_FLOWS: usize = 10_000;
/// Default bound on remembered TSvals over all flows.
pub const DEFAULT_MAX_TSVALS: usize = 200_000;
/// Default age after which an unmatched TSval is forgotten (pping's `tsvalMaxAge`, 10 s).
pub const DEFAULT_TSVAL_MAX_AGE: Duration = Duration::from_secs(10);
/// Default idle time after which a flow is forgotten (pping's `flowMaxIdle`, 300 s).
pub const DEFAULT_FLOW_MAX_IDLE: Duration = Duration::from_secs(300);
/// How often (in packet time) the tables are swept.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Matching limits.
#[derive(Clone, Debug)]
pub struct MatcherConfig {
    /// Most flow directions tracked at once; a new flow beyond it is ignored and counted.
    pub max_flows: usize,
    /// Most TSvals remembered at once; a TSval beyond it is not stored and counted.
    pub max_tsvals: usize,
    /// Unmatched (or spent) TSvals are forgotten after this long.
    pub tsval_max_age: Duration,
    /// Flows are forgotten after this long without a packet.
    pub flow_max_idle: Duration,
    /// Per-flow rate limit: a new TSval is stored at most once per this interval
    /// (zero: every new TSval; eBPF pping's `--rate-limit`).
    pub min_tsval_interval: Duration,
    /// Sweep period, in packet time.
    pub sweep_interval: Duration,
}

impl Default for MatcherConfig {
    fn default() -> Self {
        Self {
            max_flows: DEFAULT_MAX_FLOWS,
            max_tsvals: DEFAULT_MAX_TSVALS,
            tsval_max_age: DEFAULT_TSVAL_MAX_AGE,
            flow_max_idle: DEFAULT_FLOW_MAX_IDLE,
            min_tsval_interval: Duration::ZERO,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
        }
    }
}

/// One RTT sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Direction of the echoing packet: the sample is the round trip from the capture
    /// point to `flow.src` and back.
    pub flow: FlowKey,
    /// Capture time of the echoing packet, unix nanoseconds.
    pub t_ns: i64,
    /// Round-trip time, nanoseconds.
    pub rtt_ns: u64,
    /// The echoed value (the TSval matched).
    pub tsecr: u32,
}

/// Matching counters (all monotonic except `flows` and `tsvals`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MatchStats {
    /// TCP segments seen.
    pub segments: u64,
    /// Segments without the timestamp option.
    pub no_timestamp: u64,
    /// Segments with TSval 0, or TSecr 0 outside a SYN (pping ignores them).
    pub zero_timestamp: u64,
    /// New flows ignored because `max_flows` was reached.
    pub flows_full: u64,
    /// TSvals not stored because the reverse direction was not seen yet (pping's rule:
    /// a SYN's TSval is never stored, so the handshake gives no sample on the opener's
    /// side; the opener's kernel `tcpi_min_rtt` leaves the handshake out too).
    pub unidirectional: u64,
    /// Segments repeating the newest TSval of their flow (not stored again).
    pub tsval_repeats: u64,
    /// Segments with a TSval older than the flow's newest (reordering, old retransmits).
    pub stale_tsvals: u64,
    /// New TSvals skipped by the per-flow rate limit.
    pub rate_limited: u64,
    /// TSvals stored.
    pub tsvals_stored: u64,
    /// TSvals not stored because `max_tsvals` was reached.
    pub tsvals_full: u64,
    /// Samples produced.
    pub samples: u64,
    /// Matches dropped because the echo's capture time was before the TSval's.
    pub negative_rtt: u64,
    /// TSvals forgotten by age.
    pub tsvals_expired: u64,
    /// Flows forgotten by idleness.
    pub flows_expired: u64,
    /// Flow directions tracked now.
    pub flows: u64,
    /// TSvals remembered now.
    pub tsvals: u64,
}

/// State of one flow direction.
#[derive(Debug)]
struct Flow {
    id: u64,
    /// Id of the reverse direction once seen (0: not seen).
    rev_id: u64,
    last_seen_ns: i64,
    newest_tsval: Option<u32>,
    /// End of the highest sequence sent so far (new data vs. retransmission).
    snd_max: Option<u32>,
    last_stored_ns: i64,
    rtt: FlowRtt,
}

#[derive(Debug)]
struct TsEntry {
    /// When the TSval was first seen.
    t_ns: i64,
    /// The last segment with this TSval that sent new data: its time and end sequence.
    /// An echo whose ACK covers that data was sent after the data arrived, so timing it
    /// from there is still never an underestimate, and tighter (see design.md).
    last_data: Option<(i64, u32)>,
    used: bool,
}

/// The TSval/TSecr matcher. Feed it segments in capture-time order.
#[derive(Debug)]
pub struct Matcher {
    config: MatcherConfig,
    flows: HashMap<FlowKey, Flow, FxBuildHasher>,
    tsvals: HashMap<(u64, u32), TsEntry, FxBuildHasher>,
    next_id: u64,
    next_sweep_ns: Option<i64>,
    stats: MatchStats,
}

/// RFC 7323 §5.2 / RFC 1982 serial-number order: `a` is after `b` modulo 2^32.
#[inline]
pub fn ts_after(a: u32, b: u32) -> bool {
    #[expect(clippy::cast_possible_wrap, reason = "serial-number arithmetic")]
    let d = a.wrapping_sub(b) as i32;
    d > 0
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl Matcher {
    /// A matcher with the given limits.
    pub fn new(config: MatcherConfig) -> Self {
        Self {
            config,
            flows: HashMap::default(),
            tsvals: HashMap::default(),
            next_id: 1,
            next_sweep_ns: None,
            stats: MatchStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> MatchStats {
        MatchStats {
            flows: self.flows.len() as u64,
            tsvals: self.tsvals.len() as u64,
            ..self.stats
        }
    }

    /// The RTT statistics of a flow direction (samples where `flow.src` echoed), if tracked.
    ///
    /// For a local socket `src:sport → dst:dport`, the passive RTT toward its peer is
    /// `flow_rtt(&FlowKey::new(dst, dport, src, sport))`.
    pub fn flow_rtt(&self, flow: &FlowKey) -> Option<&FlowRtt> {
        self.flows.get(flow).map(|f| &f.rtt)
    }

    /// Calls `f` with each flow that has new samples since the last call, and its
    /// cumulative summary.
    pub fn take_summaries(&mut self, mut f: impl FnMut(&FlowKey, &Summary)) {
        for (k, fl) in &mut self.flows {
            if fl.rtt.count > fl.rtt.reported {
                fl.rtt.reported = fl.rtt.count;
                if let Some(s) = fl.rtt.summary() {
                    f(k, &s);
                }
            }
        }
    }

    /// Processes one segment captured at `t_ns` (unix nanoseconds).
    #[inline]
    pub fn process(&mut self, seg: &Segment, t_ns: i64) -> Option<Sample> {
        self.stats.segments += 1;
        self.advance(t_ns);
        let Some(ts) = seg.ts else {
            self.stats.no_timestamp += 1;
            return None;
        };
        // pping: TSecr 0 is valid only on a SYN (nothing to echo yet).
        let pure_syn = seg.syn && !seg.ack;
        if ts.tsval == 0 || (ts.tsecr == 0 && !pure_syn) {
            self.stats.zero_timestamp += 1;
            return None;
        }
        if !self.flows.contains_key(&seg.flow) && !self.new_flow(&seg.flow, t_ns) {
            return None;
        }
        let flow = self.flows.get_mut(&seg.flow)?;
        flow.last_seen_ns = t_ns;
        let (id, rev_id) = (flow.id, flow.rev_id);
        // Does the segment send new data (not a retransmission, not a pure ACK)?
        let end = seg.seq.wrapping_add(seg.seq_len);
        let new_data = seg.seq_len > 0 && flow.snd_max.is_none_or(|m| ts_after(end, m));
        if new_data {
            flow.snd_max = Some(end);
        }
        let last_data = new_data.then_some((t_ns, end));
        // Remember the TSval if it is new for this direction.
        match flow.newest_tsval {
            Some(n) if n == ts.tsval => {
                self.stats.tsval_repeats += 1;
                if let (Some(d), Some(e)) = (last_data, self.tsvals.get_mut(&(id, ts.tsval))) {
                    e.last_data = Some(d);
                }
            }
            Some(n) if !ts_after(ts.tsval, n) => self.stats.stale_tsvals += 1,
            _ => {
                flow.newest_tsval = Some(ts.tsval);
                if t_ns.saturating_sub(flow.last_stored_ns) < nanos(self.config.min_tsval_interval)
                {
                    self.stats.rate_limited += 1;
                } else if rev_id == 0 {
                    // pping: TSvals are stored only once both directions were seen.
                    self.stats.unidirectional += 1;
                } else if self.tsvals.len() >= self.config.max_tsvals {
                    self.stats.tsvals_full += 1;
                } else {
                    flow.last_stored_ns = t_ns;
                    self.stats.tsvals_stored += 1;
                    self.tsvals.entry((id, ts.tsval)).or_insert(TsEntry {
                        t_ns,
                        last_data,
                        used: false,
                    });
                }
            }
        }
        // Match the echo against the reverse direction's TSvals.
        if !seg.ack || rev_id == 0 {
            return None;
        }
        let entry = self.tsvals.get_mut(&(rev_id, ts.tsecr))?;
        if entry.used {
            return None;
        }
        entry.used = true;
        let sent = match entry.last_data {
            Some((t, end)) if !ts_after(end, seg.ack_no) => t,
            _ => entry.t_ns,
        };
        let Ok(rtt_ns) = u64::try_from(t_ns - sent) else {
            self.stats.negative_rtt += 1;
            return None;
        };
        self.stats.samples += 1;
        if let Some(f) = self.flows.get_mut(&seg.flow) {
            f.rtt.add(rtt_ns);
        }
        Some(Sample {
            flow: seg.flow,
            t_ns,
            rtt_ns,
            tsecr: ts.tsecr,
        })
    }

    /// Creates a flow direction's state, linked to its reverse; false when full.
    fn new_flow(&mut self, key: &FlowKey, t_ns: i64) -> bool {
        if self.flows.len() >= self.config.max_flows {
            self.stats.flows_full += 1;
            return false;
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut rev_id = 0;
        if let Some(rev) = self.flows.get_mut(&key.reverse()) {
            rev.rev_id = id;
            rev_id = rev.id;
        }
        self.flows.insert(
            *key,
            Flow {
                id,
                rev_id,
                last_seen_ns: t_ns,
                newest_tsval: None,
                snd_max: None,
                last_stored_ns: i64::MIN,
                rtt: FlowRtt::default(),
            },
        );
        true
    }

    /// Advances packet time: sweeps aged TSvals and idle flows when a sweep is due.
    /// Live captures call it on idle ticks too.
    pub fn advance(&mut self, now_ns: i64) {
        let due = *self.next_sweep_ns.get_or_insert(now_ns);
        if now_ns < due {
            return;
        }
        self.next_sweep_ns = Some(now_ns.saturating_add(nanos(self.config.sweep_interval)));
        let max_age = nanos(self.config.tsval_max_age);
        let before = self.tsvals.len();
        self.tsvals
            .retain(|_, e| now_ns.saturating_sub(e.t_ns) <= max_age);
        self.stats.tsvals_expired += (before - self.tsvals.len()) as u64;
        let idle = nanos(self.config.flow_max_idle);
        let before = self.flows.len();
        self.flows
            .retain(|_, f| now_ns.saturating_sub(f.last_seen_ns) <= idle);
        self.stats.flows_expired += (before - self.flows.len()) as u64;
    }
}
