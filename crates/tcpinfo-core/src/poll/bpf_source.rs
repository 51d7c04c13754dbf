//! The BPF poll mode's side of a poll: walk the `iter/tcp` program's report of new and
//! changed sockets (`tcpinfo-bpf`), fetch each one's record with an exact `inet_diag`
//! request, and hand the records to the same [`Ingest`] a dump feeds, so records, diff
//! and batches are the netlink mode's. See `docs/internals/bpf/design.md`.
//!
//! The poller asks [`BpfSource::plan`] what to do each poll:
//! - the first poll (and the first after `auto` returns from netlink) is a **primed
//!   dump**: one walk stores every socket's fingerprint in the kernel, then the usual
//!   dump fills the tracker. A change after the walk is reported by the next walk, a
//!   change between walk and dump is in the dump and the next walk's report of it
//!   compares equal in the tracker: nothing is lost, nothing doubled.
//! - then **walks**: only reported sockets are fetched. Unchanged sockets are not
//!   reported, so the tracker's sweep only runs on **sweep walks** (every socket
//!   reported), two of them at least `close_grace` apart, every
//!   [`BPF_SWEEP_INTERVAL`] and after lost destroy events.
//! - `auto` goes back to dumps while most sockets change (share above
//!   [`AUTO_TO_NETLINK_SHARE`]; in event mode, of the tracked sockets fetched, above
//!   [`AUTO_EVENTS_TO_NETLINK_SHARE`]) and returns below [`AUTO_TO_BPF_SHARE`]
//!   ([`AUTO_EVENTS_TO_BPF_SHARE`]).
//! - event mode: tracepoints mark changed sockets in the kernel; a poll drains them and
//!   fetches only those (plus last poll's late marks and the sockets with data in
//!   flight), and walks only at start-up, after an overflow of the dirty set and every
//!   [`BPF_RESYNC_INTERVAL`].

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tcpinfo_bpf::{BpfError, ChangeIter, Entry, IterConfig, SocketId};

use super::batch::{PollBatch, Warning, WarningCode};
use super::config::PollerConfig;
use super::ingest::Ingest;
use super::mode::{
    PollMode, AUTO_EVENTS_TO_BPF_SHARE, AUTO_EVENTS_TO_NETLINK_SHARE, AUTO_TO_BPF_SHARE,
    AUTO_TO_NETLINK_SHARE, BPF_RESYNC_INTERVAL, BPF_SWEEP_INTERVAL,
};
use crate::diff::fingerprint::DEFAULT_IGNORED_FIELDS;
use crate::error::{Error, Result};
use crate::netlink::exact::{ExactId, ExactSocket, FetchStats};
use crate::parse::attrs::INET_DIAG_INFO;
use crate::parse::diag_msg::parse_diag;
use crate::parse::diag_msg::{InetDiagMsg, AF_INET, AF_INET6};

/// `TCP_FIN_WAIT2` / `TCP_TIME_WAIT`: a timewait minisocket's substates.
const TW_STATES: [u8; 2] = [5, 6];

/// What the BPF side did in the last poll (for benchmarks and diagnostics).
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent facts of one poll, each documented"
)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BpfPollStats {
    /// The last poll walked (false: it dumped, e.g. the primed first poll).
    pub walked_poll: bool,
    /// It was a sweep walk (every socket reported).
    pub sweep: bool,
    /// Sockets the program looked at (after the state and family masks).
    pub walked: u64,
    /// Records it emitted (changed sockets and minisockets).
    pub emitted: u64,
    /// Exact requests sent, and records they returned.
    pub requests: u32,
    /// See [`BpfPollStats::requests`].
    pub fetched: u32,
    /// Requests for sockets gone in between (`ENOENT`/`ESTALE`).
    pub gone: u32,
    /// Requests to retry next poll (their replies were dropped).
    pub unanswered: u32,
    /// Event mode: this poll drained the dirty set instead of walking every socket.
    pub events: bool,
    /// Event mode: sockets drained from the dirty set this poll.
    pub dirty: u32,
    /// Event mode: sockets fetched again because the last one was marked before its
    /// change completed (`echo`) or they have data in flight or queued (`sticky`).
    pub echo: u32,
    /// See [`BpfPollStats::echo`].
    pub sticky: u32,
    /// Event mode: marks the kernel refused since the last poll because the dirty set
    /// was full; this poll then was a primed dump (a resync).
    pub overflows: u64,
    /// Event mode: this poll walked every socket (start-up, overflow, periodic resync).
    pub resync: bool,
}

/// What the poller does this poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// A netlink dump; with `prime`, after a walk that stores every fingerprint.
    Dump {
        /// Walk first so that the following walks report changes since this poll.
        prime: bool,
    },
    /// A walk and exact fetches of what it reported.
    Walk,
}

/// The BPF side of a poller.
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent facts of the mode's state, each documented"
)]
pub(crate) struct BpfSource {
    iter: ChangeIter,
    fetch: ExactSocket,
    ext: u8,
    auto: bool,
    skip_untracked_timewait: bool,
    close_grace: Duration,
    /// The kernel holds fingerprints matching the tracker (a primed dump happened).
    primed: bool,
    /// `auto` polls with dumps for now.
    on_netlink: bool,
    next_sweep: Instant,
    /// A sweep's second walk is due at this time.
    second_sweep: Option<Instant>,
    ids: Vec<ExactId>,
    retry: Vec<ExactId>,
    last: BpfPollStats,
    /// Event mode (the tracepoint programs are attached).
    events: bool,
    /// Event mode: overflow counter at the last primed walk.
    overflows_seen: u64,
    /// Event mode: overflows found by [`BpfSource::plan`], reported by the primed dump.
    overflow_pending: u64,
    /// Event mode: ids drained last poll, fetched once more this poll.
    echo: Vec<ExactId>,
    /// Event mode: sockets with data in flight or queued (their busy/limited times grow
    /// with the clock, without events): fetched every poll while so.
    sticky: HashMap<u64, ExactId>,
    /// Cookies queued this poll (each socket fetched once).
    queued: HashSet<u64>,
    /// `idiag_states` of the dumps: an exact request ignores it (a marked socket may
    /// have moved on, e.g. to TIME_WAIT), so replies are filtered as a dump would be.
    states: u32,
}

impl std::fmt::Debug for BpfSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BpfSource")
            .field("primed", &self.primed)
            .field("on_netlink", &self.on_netlink)
            .finish_non_exhaustive()
    }
}

/// Maps the BPF crate's errors onto the core's.
pub(crate) fn bpf_error(e: BpfError) -> Error {
    match e {
        BpfError::Unsupported(what) => Error::Unsupported(what),
        BpfError::Io { op, source } => Error::Socket { op, source },
        BpfError::Malformed(_) => Error::malformed("BPF iterator output", 0),
    }
}

impl BpfSource {
    /// Loads the program for `config` (in the current network namespace's thread).
    ///
    /// # Errors
    /// [`Error::Unsupported`] naming what is missing; [`Error::Socket`] when the exact
    /// request socket cannot be opened.
    pub(crate) fn open(config: &PollerConfig) -> Result<Self> {
        let rule = &config.change_rule;
        let counts_elapsed = !DEFAULT_IGNORED_FIELDS
            .iter()
            .all(|f| rule.ignore_tcp_info_fields.iter().any(|g| g == f));
        let fp_flags = if rule.state_only {
            tcpinfo_bpf::FP_STATE_ONLY
        } else {
            (if rule.include_memory {
                tcpinfo_bpf::FP_MEMORY
            } else {
                0
            }) | (if counts_elapsed {
                tcpinfo_bpf::FP_ELAPSED
            } else {
                0
            })
        };
        // Events cannot see memory (freed on transmit completion) or the clock (elapsed
        // times): those change rules walk every poll.
        // `TCPINFO_BPF_EVENTS=0` keeps the walk-every-poll mode (benchmarks, diagnosis).
        let want_events = fp_flags & (tcpinfo_bpf::FP_MEMORY | tcpinfo_bpf::FP_ELAPSED) == 0
            && std::env::var_os("TCPINFO_BPF_EVENTS").is_none_or(|v| v != "0");
        let cfg = IterConfig {
            states: config.states,
            ipv4: config.families.contains(&AF_INET),
            ipv6: config.families.contains(&AF_INET6),
            fp_flags,
            events: want_events,
            // `TCPINFO_BPF_DIRTY_CAPACITY`: a smaller dirty set (tests of the overflow path)
            dirty_capacity: std::env::var("TCPINFO_BPF_DIRTY_CAPACITY")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        };
        let iter = match ChangeIter::load(cfg) {
            Err(BpfError::Unsupported(_)) if want_events => ChangeIter::load(IterConfig {
                events: false,
                ..cfg
            }),
            other => other,
        }
        .map_err(bpf_error)?;
        let events = iter.config().events;
        Ok(Self {
            iter,
            fetch: ExactSocket::open()?,
            ext: config.ext,
            auto: config.mode == PollMode::Auto,
            skip_untracked_timewait: config.destroy_events
                && config.ext & (1 << (INET_DIAG_INFO - 1)) != 0,
            close_grace: config.close_grace,
            primed: false,
            on_netlink: false,
            next_sweep: Instant::now() + BPF_SWEEP_INTERVAL,
            second_sweep: None,
            ids: Vec::new(),
            retry: Vec::new(),
            last: BpfPollStats::default(),
            events,
            overflows_seen: 0,
            overflow_pending: 0,
            echo: Vec::new(),
            sticky: HashMap::new(),
            queued: HashSet::new(),
            states: config.states,
        })
    }

    /// Between sweeps (and resyncs): with events and destroy events, a full walk is
    /// only a safety net ([`BPF_RESYNC_INTERVAL`]); otherwise [`BPF_SWEEP_INTERVAL`].
    fn sweep_interval(&self) -> Duration {
        if self.events && self.skip_untracked_timewait {
            BPF_RESYNC_INTERVAL
        } else {
            BPF_SWEEP_INTERVAL
        }
    }

    /// Queues `id` for a fetch unless queued already this poll.
    fn queue(queued: &mut HashSet<u64>, ids: &mut Vec<ExactId>, id: ExactId) -> bool {
        if queued.insert(exact_cookie(&id)) {
            ids.push(id);
            true
        } else {
            false
        }
    }

    /// Event mode: the dirty set, last poll's marks again, and the sticky sockets.
    fn drain_events(&mut self, batch: &mut PollBatch, st: &mut BpfPollStats) {
        let Self {
            iter,
            ids,
            queued,
            echo,
            sticky,
            ..
        } = self;
        let mut drained = Vec::new();
        if let Err(e) = iter.drain_dirty(|e| {
            if let Entry::Dirty { id, .. } = e {
                drained.push((exact(&id), id.marked_us));
            }
        }) {
            warn(batch, &bpf_error(e));
        }
        let now_us = monotonic_us();
        st.dirty = u32::try_from(drained.len()).unwrap_or(u32::MAX);
        for (id, _) in &drained {
            Self::queue(queued, ids, *id);
        }
        for id in echo.drain(..) {
            st.echo += u32::from(Self::queue(queued, ids, id));
        }
        for id in sticky.values() {
            st.sticky += u32::from(Self::queue(queued, ids, *id));
        }
        // Marked just before this drain: maybe by a tracepoint that fires before its
        // change (tcp_probe, inet_sock_set_state, sys_enter), still under way while this
        // poll's fetch reads the fields inet_diag takes before the socket lock.
        echo.extend(
            drained
                .iter()
                .filter(|(_, at)| now_us.wrapping_sub(*at) < ECHO_WINDOW_US)
                .map(|(id, _)| *id),
        );
    }

    /// What the last poll did.
    pub(crate) fn last(&self) -> BpfPollStats {
        self.last
    }

    /// What to do this poll. In event mode, marks the kernel refused since the last poll
    /// (a full dirty set) make it a primed dump: ~2× the drain, against a walk and one
    /// exact fetch per socket changed since the last walk (up to every socket).
    pub(crate) fn plan(&mut self) -> Plan {
        if self.on_netlink || !self.primed {
            return Plan::Dump {
                prime: !self.on_netlink,
            };
        }
        if self.events {
            let now = self
                .iter
                .event_counters()
                .map_or(self.overflows_seen, |c| c.overflows);
            if now > self.overflows_seen {
                self.overflow_pending = now - self.overflows_seen;
                self.primed = false;
                return Plan::Dump { prime: true };
            }
        }
        Plan::Walk
    }

    /// Forgets the kernel-side fingerprints of closed sockets.
    pub(crate) fn forget(&mut self, cookies: &[u64], batch: &mut PollBatch) {
        for c in cookies {
            self.sticky.remove(c);
        }
        if let Err(e) = self.iter.forget(cookies) {
            warn(batch, &bpf_error(e));
        }
    }

    /// Starts a sweep at the next walk (destroy events were lost).
    pub(crate) fn request_sweep(&mut self) {
        self.next_sweep = Instant::now();
    }

    /// The walk of a primed dump: stores every socket's fingerprint, reports nothing.
    pub(crate) fn prime(&mut self, batch: &mut PollBatch) {
        let overflows = std::mem::take(&mut self.overflow_pending);
        self.last = BpfPollStats {
            events: self.events,
            overflows,
            resync: overflows > 0,
            ..BpfPollStats::default()
        };
        // Event mode: marks before the dump that follows are covered by it (a refusal
        // after the counter is read is seen by the next poll).
        if self.events {
            self.overflows_seen = self
                .iter
                .event_counters()
                .map_or(self.overflows_seen, |c| c.overflows);
            if let Err(e) = self.iter.drain_dirty(|_| {}) {
                warn(batch, &bpf_error(e));
            }
            self.echo.clear();
        }
        self.sticky.clear();
        let sticky = &mut self.sticky;
        match self.iter.walk(false, |e| {
            // sockets with a running chrono: fetched every poll until quiet
            if let Entry::Changed(id) = e {
                if id.sticky {
                    sticky.insert(id.cookie, exact(&id));
                }
            }
        }) {
            Ok(s) if s.complete => {
                self.primed = true;
                self.retry.clear();
                self.next_sweep = Instant::now() + self.sweep_interval();
                self.second_sweep = None;
            }
            Ok(_) => warn(batch, &Error::malformed("BPF walk without its end", 0)),
            Err(e) => warn(batch, &bpf_error(e)),
        }
    }

    /// `auto`: after a netlink poll, whether few enough sockets changed to walk again.
    pub(crate) fn after_dump(&mut self, batch: &PollBatch) {
        self.last.walked_poll = false;
        if self.auto && self.on_netlink {
            let seen = f64::from(batch.sockets_seen.max(1));
            let back = if self.events {
                AUTO_EVENTS_TO_BPF_SHARE
            } else {
                AUTO_TO_BPF_SHARE
            };
            if f64::from(batch.opened + batch.changed) / seen < back {
                self.on_netlink = false;
                self.primed = false; // the next poll is a primed dump
            }
        }
    }

    /// Walks, fetches what changed into `ingest`/`batch`. Returns `(complete, swept)`:
    /// whether every change was seen, and whether this was a sweep walk (the tracker
    /// may sweep the families then).
    #[expect(
        clippy::too_many_lines,
        reason = "one poll's sequence: events, walk, fetch, auto, sweep bookkeeping"
    )]
    pub(crate) fn walk_into(
        &mut self,
        ingest: &mut Ingest,
        batch: &mut PollBatch,
        line_nanos: i64,
        mut after_reply: impl FnMut(&mut PollBatch),
    ) -> (bool, bool) {
        let now = Instant::now();
        let emit_all = self
            .second_sweep
            .map_or(now >= self.next_sweep, |t| now >= t);
        let mut st = BpfPollStats::default();
        self.ids.clear();
        self.queued.clear();
        let retry = std::mem::take(&mut self.retry);
        for id in retry {
            Self::queue(&mut self.queued, &mut self.ids, id);
        }
        let mut do_walk = true;
        if self.events {
            st.events = true;
            self.drain_events(batch, &mut st);
            do_walk = emit_all;
        }
        st.resync = self.events && do_walk;
        let stats = if do_walk {
            let Self {
                iter,
                ids,
                queued,
                sticky,
                skip_untracked_timewait,
                ..
            } = self;
            iter.walk(emit_all, |e| match e {
                Entry::Changed(id) => {
                    if emit_all {
                        // Seen, even if its fetch fails (a SO_REUSEPORT listener).
                        ingest.tracker.touch(id.cookie);
                    }
                    if id.sticky {
                        sticky.insert(id.cookie, exact(&id));
                    }
                    if !queued.contains(&id.cookie) {
                        push_accepted(ingest, ids, queued, &id);
                    }
                }
                Entry::Seen { cookie, .. } => ingest.tracker.touch(cookie),
                Entry::Mini(id) => {
                    let tw = TW_STATES.contains(&id.state);
                    if !(queued.contains(&id.cookie)
                        || tw && *skip_untracked_timewait && !ingest.tracker.contains(id.cookie))
                    {
                        push_accepted(ingest, ids, queued, &id);
                    }
                }
                Entry::End { .. } | Entry::Dirty { .. } => {}
            })
        } else {
            Ok(tcpinfo_bpf::WalkStats {
                complete: true,
                emitted: self.ids.len() as u64,
                walked: ingest.tracked() as u64,
                ..Default::default()
            })
        };
        let result = stats;
        let stats = match result {
            Ok(s) => s,
            Err(e) => {
                warn(batch, &bpf_error(e));
                self.retry.append(&mut self.ids);
                return (false, false);
            }
        };
        batch.stats.bytes += stats.bytes;
        batch.stats.recv_calls += stats.reads;
        let mut fs = FetchStats::default();
        let (ext, fetch, ids, retry) = (self.ext, &mut self.fetch, &self.ids, &mut self.retry);
        let (events, sticky_set, dump_states) = (self.events, &mut self.sticky, self.states);
        let fetched = fetch.fetch(ids, ext, &mut fs, retry, |payload| {
            if payload.len() > 1 && dump_states & (1u32 << (payload[1] & 31)) == 0 {
                return; // a state the dump would not list
            }
            if events {
                update_sticky(sticky_set, payload);
            }
            if ingest.on_reply(payload, line_nanos, batch).is_err() {
                batch.stats.malformed += 1;
            }
            after_reply(batch);
        });
        batch.stats.messages += fs.records;
        batch.stats.recv_calls += fs.syscalls;
        batch.stats.bytes += fs.bytes;
        if let Err(e) = fetched {
            warn(batch, &e);
        }
        if self.auto && stats.walked > 0 {
            #[expect(clippy::cast_precision_loss, reason = "a share; precision irrelevant")]
            let share = stats.emitted as f64 / stats.walked as f64;
            let limit = if self.events {
                AUTO_EVENTS_TO_NETLINK_SHARE
            } else {
                AUTO_TO_NETLINK_SHARE
            };
            if share > limit {
                self.on_netlink = true;
            }
        }
        let swept = emit_all && do_walk && stats.complete;
        self.last = BpfPollStats {
            walked_poll: true,
            sweep: swept,
            walked: stats.walked,
            emitted: stats.emitted,
            requests: fs.requests,
            fetched: fs.records,
            gone: fs.gone,
            unanswered: fs.unanswered,
            ..st
        };
        if swept {
            if self.second_sweep.take().is_none() {
                self.second_sweep = Some(now + self.close_grace);
            } else {
                self.next_sweep = now + self.sweep_interval();
            }
        }
        (stats.complete, swept)
    }
}

/// Queues `id` for a fetch if the filter accepts it (judged on its id and state alone).
fn push_accepted(
    ingest: &Ingest,
    ids: &mut Vec<ExactId>,
    queued: &mut HashSet<u64>,
    id: &SocketId,
) {
    let e = exact(id);
    let m = e.as_msg();
    if InetDiagMsg::new(&m).is_ok_and(|msg| ingest.filter.accepts(&msg)) {
        queued.insert(id.cookie);
        ids.push(e);
    }
}

/// The exact request for a socket the program reported.
fn exact(id: &SocketId) -> ExactId {
    ExactId::new(
        id.family, id.state, id.sport, id.dport, &id.src, &id.dst, id.ifindex, id.cookie,
    )
}

/// The cookie in an exact request's `inet_diag_sockid` (`idiag_cookie[0]` low half).
fn exact_cookie(e: &ExactId) -> u64 {
    let lo = u32::from_ne_bytes([e.id[40], e.id[41], e.id[42], e.id[43]]);
    let hi = u32::from_ne_bytes([e.id[44], e.id[45], e.id[46], e.id[47]]);
    u64::from(hi) << 32 | u64::from(lo)
}

/// Marks younger than this at the drain are fetched again at the next poll (10 ms, plus
/// the mark time's staleness of up to one jiffy: repeats within a jiffy are skipped).
const ECHO_WINDOW_US: u32 = 15_000;

/// `CLOCK_MONOTONIC` in µs, low 32 bits (the clock of `bpf_ktime_get_ns`).
fn monotonic_us() -> u32 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the kernel to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "the low 32 bits of a µs clock, compared with wrapping arithmetic"
    )]
    let us = (ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000) as u32;
    us
}

/// `tcp_info` offsets of the fields that say whether a socket's record grows with the
/// clock between events: `tcpi_ca_state`, `tcpi_unacked`, `tcpi_notsent_bytes`.
const TCPI_CA_STATE: usize = 1;
/// See [`TCPI_CA_STATE`].
const TCPI_UNACKED: usize = 24;
/// See [`TCPI_CA_STATE`].
const TCPI_NOTSENT: usize = 144;

/// Event mode: a socket with data in flight or queued has a running chrono (its
/// busy/rwnd/sndbuf-limited times grow every jiffy, `tcp_chrono_stop` runs only once
/// both queues are empty), and one out of the Open congestion state may be in an RTO
/// recovery (`total_rto_time` grows): such sockets are fetched every poll, as a dump
/// would see them change; the others only when an event marks them.
fn update_sticky(sticky: &mut HashMap<u64, ExactId>, payload: &[u8]) {
    let Ok((msg, attrs)) = parse_diag(payload) else {
        return;
    };
    let Some(info) = attrs.get(INET_DIAG_INFO) else {
        sticky.remove(&msg.cookie());
        return;
    };
    let u32_at = |at: usize| {
        info.get(at..at + 4)
            .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    // A listener's unacked is its accept queue: accept() marks it.
    let listen = msg.state() == 10;
    let busy = !listen
        && (u32_at(TCPI_UNACKED) > 0
            || u32_at(TCPI_NOTSENT) > 0
            || info.get(TCPI_CA_STATE).is_some_and(|c| *c != 0));
    if busy {
        let mut id = ExactId::new(msg.family(), msg.state(), 0, 0, &[0; 16], &[0; 16], 0, 0);
        id.id.copy_from_slice(&msg.bytes()[4..52]);
        sticky.insert(msg.cookie(), id);
    } else {
        sticky.remove(&msg.cookie());
    }
}

fn warn(batch: &mut PollBatch, e: &Error) {
    batch.warnings.push(Warning {
        code: WarningCode::of(e),
        message: format!("BPF poll: {e}"),
    });
}
