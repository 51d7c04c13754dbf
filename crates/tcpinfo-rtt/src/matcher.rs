//! TSval/TSecr matching (Kathie Nichols' pping, with the refinements documented in
//! `docs/internals/rtt/design.md`): the first time a flow direction shows a TSval is
//! remembered; the first later packet of the reverse direction that echoes it as TSecr
//! gives one RTT sample (capture point → the echoing host → capture point), and the
//! entry is then spent.
//!
//! Layout: flows live in a slab (`Vec`) indexed through one hash map, and each flow
//! direction links to its reverse by slab index, so a packet costs one hash lookup. A
//! flow's remembered TSvals form a deque in increasing TSval order (only newer TSvals
//! are stored), so an echo of `x` also drops the older TSvals it passed over: the peer's
//! echoes only move forward (RFC 7323 `TS.Recent`), those will never be echoed.
//!
//! Bounded: at most `max_flows` flow directions, `max_tsvals` remembered TSvals in all
//! and `max_tsvals_per_flow` per flow (each refusal counted); TSvals older than
//! `tsval_max_age` and flows idle for `flow_max_idle` are swept, on packet time (so
//! files and live captures age alike).

use std::collections::VecDeque;
use std::time::Duration;

use hashbrown::HashMap;
use rustc_hash::FxBuildHasher;

use crate::packet::{FlowKey, Segment};
use crate::summary::{FlowRtt, Summary};

/// Default bound on tracked flow directions (pping's `maxFlows`).
pub const DEFAULT_MAX_FLOWS: usize = 10_000;
/// Default bound on remembered TSvals over all flows.
pub const DEFAULT_MAX_TSVALS: usize = 200_000;
/// Default bound on remembered TSvals per flow direction (with a 1 ms TSval clock: a
/// round trip of up to 256 ms when every tick is stored).
pub const DEFAULT_MAX_TSVALS_PER_FLOW: usize = 256;
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
    /// Most TSvals remembered per flow direction; beyond it the oldest is dropped and counted.
    pub max_tsvals_per_flow: usize,
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
            max_tsvals_per_flow: DEFAULT_MAX_TSVALS_PER_FLOW,
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
    /// TSvals not stored because the reverse direction was not seen yet (pping's rule;
    /// a SYN's TSval is stored all the same, so the handshake is timed).
    pub unidirectional: u64,
    /// Segments repeating the newest TSval of their flow (not stored again).
    pub tsval_repeats: u64,
    /// Segments with a TSval older than the flow's newest (reordering, old retransmits).
    pub stale_tsvals: u64,
    /// New TSvals skipped by the per-flow rate limit.
    pub rate_limited: u64,
    /// TSvals stored.
    pub tsvals_stored: u64,
    /// TSvals not stored because `max_tsvals` was reached, or dropped unmatched because
    /// their flow held `max_tsvals_per_flow`.
    pub tsvals_full: u64,
    /// Stored TSvals dropped because a later one of the flow was echoed first.
    pub tsvals_passed: u64,
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

/// One remembered TSval.
#[derive(Debug, Clone, Copy)]
struct TsEntry {
    tsval: u32,
    /// When the TSval was first seen.
    t_ns: i64,
    /// The last segment with this TSval that sent new data: its time and end sequence.
    /// An echo whose ACK covers that data was sent after the data arrived, so timing it
    /// from there is still never an underestimate, and tighter (see design.md).
    last_data: Option<(i64, u32)>,
}

/// No reverse direction (slab index sentinel).
const NONE: u32 = u32::MAX;

/// State of one flow direction.
#[derive(Debug)]
struct Flow {
    key: FlowKey,
    /// Slab index of the reverse direction, or [`NONE`].
    rev: u32,
    last_seen_ns: i64,
    newest_tsval: Option<u32>,
    /// End of the highest sequence sent so far (new data vs. retransmission).
    snd_max: Option<u32>,
    last_stored_ns: i64,
    /// Remembered TSvals, oldest first.
    tsvals: VecDeque<TsEntry>,
    rtt: FlowRtt,
}

/// The TSval/TSecr matcher. Feed it segments in capture-time order.
#[derive(Debug)]
pub struct Matcher {
    config: MatcherConfig,
    index: HashMap<FlowKey, u32, FxBuildHasher>,
    slab: Vec<Flow>,
    free: Vec<u32>,
    tsvals: usize,
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

fn idx(i: u32) -> usize {
    i as usize
}

impl Matcher {
    /// A matcher with the given limits.
    pub fn new(config: MatcherConfig) -> Self {
        Self {
            config,
            index: HashMap::default(),
            slab: Vec::new(),
            free: Vec::new(),
            tsvals: 0,
            next_sweep_ns: None,
            stats: MatchStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> MatchStats {
        MatchStats {
            flows: self.index.len() as u64,
            tsvals: self.tsvals as u64,
            ..self.stats
        }
    }

    /// The RTT statistics of a flow direction (samples where `flow.src` echoed), if tracked.
    ///
    /// For a local socket `src:sport → dst:dport`, the passive RTT toward its peer is
    /// `flow_rtt(&FlowKey::new(dst, dport, src, sport))`.
    pub fn flow_rtt(&self, flow: &FlowKey) -> Option<&FlowRtt> {
        self.index.get(flow).map(|&i| &self.slab[idx(i)].rtt)
    }

    /// Forgets a flow direction (its TSvals and statistics), e.g. once its connection
    /// closed and was reported; returns whether it was tracked. Its reverse stays, unlinked.
    pub fn remove(&mut self, flow: &FlowKey) -> bool {
        let Some(i) = self.index.remove(flow) else {
            return false;
        };
        let f = &mut self.slab[idx(i)];
        self.tsvals -= f.tsvals.len();
        f.tsvals = VecDeque::new();
        f.rtt = FlowRtt::default();
        let rev = std::mem::replace(&mut f.rev, NONE);
        if rev != NONE {
            self.slab[idx(rev)].rev = NONE;
        }
        self.free.push(i);
        true
    }

    /// Calls `f` with each flow that has new samples since the last call, and its
    /// cumulative summary.
    pub fn take_summaries(&mut self, mut f: impl FnMut(&FlowKey, &Summary)) {
        for &i in self.index.values() {
            let fl = &mut self.slab[idx(i)];
            if fl.rtt.count > fl.rtt.reported {
                fl.rtt.reported = fl.rtt.count;
                if let Some(s) = fl.rtt.summary() {
                    f(&fl.key, &s);
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
        let fi = match self.index.get(&seg.flow) {
            Some(&i) => i,
            None => self.new_flow(&seg.flow, t_ns)?,
        };
        self.store(fi, seg, ts.tsval, t_ns);
        let rev = self.slab[idx(fi)].rev;
        if !seg.ack || rev == NONE {
            return None;
        }
        let rtt_ns = self.echo(rev, ts.tsecr, seg.ack_no, t_ns)?;
        self.stats.samples += 1;
        self.slab[idx(fi)].rtt.add(rtt_ns);
        Some(Sample {
            flow: seg.flow,
            t_ns,
            rtt_ns,
            tsecr: ts.tsecr,
        })
    }

    /// Remembers the segment's TSval if it is new for its direction.
    #[inline]
    fn store(&mut self, fi: u32, seg: &Segment, tsval: u32, t_ns: i64) {
        let min_interval = nanos(self.config.min_tsval_interval);
        let (per_flow, total_max) = (self.config.max_tsvals_per_flow, self.config.max_tsvals);
        let flow = &mut self.slab[idx(fi)];
        flow.last_seen_ns = t_ns;
        // Does the segment send new data (not a retransmission, not a pure ACK)?
        let end = seg.seq.wrapping_add(seg.seq_len);
        let new_data = seg.seq_len > 0 && flow.snd_max.is_none_or(|m| ts_after(end, m));
        if new_data {
            flow.snd_max = Some(end);
        }
        match flow.newest_tsval {
            Some(n) if n == tsval => {
                self.stats.tsval_repeats += 1;
                if new_data {
                    if let Some(e) = flow.tsvals.back_mut().filter(|e| e.tsval == tsval) {
                        e.last_data = Some((t_ns, end));
                    }
                }
            }
            Some(n) if !ts_after(tsval, n) => self.stats.stale_tsvals += 1,
            _ => {
                flow.newest_tsval = Some(tsval);
                if t_ns.saturating_sub(flow.last_stored_ns) < min_interval {
                    self.stats.rate_limited += 1;
                } else if flow.rev == NONE && !seg.syn {
                    // pping: TSvals are stored only once both directions were seen; a
                    // SYN's is the exception (its SYN-ACK shows the reverse direction),
                    // since the opener's kernel counts the handshake in tcpi_min_rtt.
                    self.stats.unidirectional += 1;
                } else if self.tsvals >= total_max && flow.tsvals.is_empty() {
                    self.stats.tsvals_full += 1;
                } else {
                    if flow.tsvals.len() >= per_flow || self.tsvals >= total_max {
                        // Make room: the oldest TSval of this flow is the least likely echoed.
                        flow.tsvals.pop_front();
                        self.tsvals -= 1;
                        self.stats.tsvals_full += 1;
                    }
                    flow.last_stored_ns = t_ns;
                    self.stats.tsvals_stored += 1;
                    self.tsvals += 1;
                    flow.tsvals.push_back(TsEntry {
                        tsval,
                        t_ns,
                        last_data: new_data.then_some((t_ns, end)),
                    });
                }
            }
        }
    }

    /// Matches an echo of `tsecr` against the TSvals of flow `ri` (the reverse
    /// direction): the RTT if it was remembered and not used yet.
    #[inline]
    fn echo(&mut self, ri: u32, tsecr: u32, ack_no: u32, t_ns: i64) -> Option<u64> {
        let q = &mut self.slab[idx(ri)].tsvals;
        while let Some(front) = q.front() {
            if front.tsval == tsecr {
                let e = q.pop_front()?;
                self.tsvals -= 1;
                let sent = match e.last_data {
                    Some((t, end)) if !ts_after(end, ack_no) => t,
                    _ => e.t_ns,
                };
                return if let Ok(rtt) = u64::try_from(t_ns - sent) {
                    Some(rtt)
                } else {
                    self.stats.negative_rtt += 1;
                    None
                };
            }
            if !ts_after(tsecr, front.tsval) {
                // Older than anything remembered: used already, or never stored.
                return None;
            }
            // The peer echoed a later TSval first: this one will never be echoed.
            q.pop_front();
            self.tsvals -= 1;
            self.stats.tsvals_passed += 1;
        }
        None
    }

    /// Creates a flow direction's state, linked to its reverse; `None` when full.
    fn new_flow(&mut self, key: &FlowKey, t_ns: i64) -> Option<u32> {
        if self.index.len() >= self.config.max_flows {
            self.stats.flows_full += 1;
            return None;
        }
        let rev = self.index.get(&key.reverse()).copied().unwrap_or(NONE);
        let flow = Flow {
            key: *key,
            rev,
            last_seen_ns: t_ns,
            newest_tsval: None,
            snd_max: None,
            last_stored_ns: i64::MIN,
            tsvals: VecDeque::new(),
            rtt: FlowRtt::default(),
        };
        let i = if let Some(i) = self.free.pop() {
            self.slab[idx(i)] = flow;
            i
        } else {
            self.slab.push(flow);
            u32::try_from(self.slab.len() - 1).ok()?
        };
        if rev != NONE {
            self.slab[idx(rev)].rev = i;
        }
        self.index.insert(*key, i);
        Some(i)
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
        let idle = nanos(self.config.flow_max_idle);
        let (slab, free, stats) = (&mut self.slab, &mut self.free, &mut self.stats);
        let mut tsvals = self.tsvals;
        self.index.retain(|_, &mut i| {
            let f = &mut slab[idx(i)];
            while f
                .tsvals
                .front()
                .is_some_and(|e| now_ns.saturating_sub(e.t_ns) > max_age)
            {
                f.tsvals.pop_front();
                tsvals -= 1;
                stats.tsvals_expired += 1;
            }
            if now_ns.saturating_sub(f.last_seen_ns) <= idle {
                return true;
            }
            tsvals -= f.tsvals.len();
            stats.tsvals_expired += f.tsvals.len() as u64;
            f.tsvals = VecDeque::new();
            let rev = f.rev;
            if rev != NONE {
                slab[idx(rev)].rev = NONE;
            }
            free.push(i);
            stats.flows_expired += 1;
            false
        });
        self.tsvals = tsvals;
    }
}
