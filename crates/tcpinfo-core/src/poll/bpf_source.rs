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
//!   [`AUTO_TO_NETLINK_SHARE`]) and returns below [`AUTO_TO_BPF_SHARE`].

use std::time::{Duration, Instant};

use tcpinfo_bpf::{BpfError, ChangeIter, Entry, IterConfig, SocketId};

use super::batch::{PollBatch, Warning, WarningCode};
use super::config::PollerConfig;
use super::ingest::Ingest;
use super::mode::{PollMode, AUTO_TO_BPF_SHARE, AUTO_TO_NETLINK_SHARE, BPF_SWEEP_INTERVAL};
use crate::diff::fingerprint::DEFAULT_IGNORED_FIELDS;
use crate::error::{Error, Result};
use crate::netlink::exact::{ExactId, ExactSocket, FetchStats};
use crate::parse::attrs::INET_DIAG_INFO;
use crate::parse::diag_msg::{InetDiagMsg, AF_INET, AF_INET6};

/// `TCP_FIN_WAIT2` / `TCP_TIME_WAIT`: a timewait minisocket's substates.
const TW_STATES: [u8; 2] = [5, 6];

/// What the BPF side did in the last poll (for benchmarks and diagnostics).
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
        let iter = ChangeIter::load(IterConfig {
            states: config.states,
            ipv4: config.families.contains(&AF_INET),
            ipv6: config.families.contains(&AF_INET6),
            fp_flags,
        })
        .map_err(bpf_error)?;
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
        })
    }

    /// What the last poll did.
    pub(crate) fn last(&self) -> BpfPollStats {
        self.last
    }

    /// What to do this poll.
    pub(crate) fn plan(&self) -> Plan {
        if self.on_netlink || !self.primed {
            Plan::Dump {
                prime: !self.on_netlink,
            }
        } else {
            Plan::Walk
        }
    }

    /// Forgets the kernel-side fingerprints of closed sockets.
    pub(crate) fn forget(&mut self, cookies: &[u64], batch: &mut PollBatch) {
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
        self.last = BpfPollStats::default();
        match self.iter.walk(false, |_| {}) {
            Ok(s) if s.complete => {
                self.primed = true;
                self.retry.clear();
                self.next_sweep = Instant::now() + BPF_SWEEP_INTERVAL;
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
            if f64::from(batch.opened + batch.changed) / seen < AUTO_TO_BPF_SHARE {
                self.on_netlink = false;
                self.primed = false; // the next poll is a primed dump
            }
        }
    }

    /// Walks, fetches what changed into `ingest`/`batch`. Returns `(complete, swept)`:
    /// whether every change was seen, and whether this was a sweep walk (the tracker
    /// may sweep the families then).
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
        let Self {
            iter,
            ids,
            retry,
            skip_untracked_timewait,
            ..
        } = self;
        ids.clear();
        ids.append(retry);
        let result = iter.walk(emit_all, |e| match e {
            Entry::Changed(id) => {
                if emit_all {
                    // Seen, even if its fetch fails (a SO_REUSEPORT listener).
                    ingest.tracker.touch(id.cookie);
                }
                push_accepted(ingest, ids, &id);
            }
            Entry::Seen { cookie, .. } => ingest.tracker.touch(cookie),
            Entry::Mini(id) => {
                let tw = TW_STATES.contains(&id.state);
                if !(tw && *skip_untracked_timewait && !ingest.tracker.contains(id.cookie)) {
                    push_accepted(ingest, ids, &id);
                }
            }
            Entry::End { .. } => {}
        });
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
        let fetched = fetch.fetch(ids, ext, &mut fs, retry, |payload| {
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
            if share > AUTO_TO_NETLINK_SHARE {
                self.on_netlink = true;
            }
        }
        let swept = emit_all && stats.complete;
        self.last = BpfPollStats {
            walked_poll: true,
            sweep: swept,
            walked: stats.walked,
            emitted: stats.emitted,
            requests: fs.requests,
            fetched: fs.records,
            gone: fs.gone,
            unanswered: fs.unanswered,
        };
        if swept {
            if self.second_sweep.take().is_none() {
                self.second_sweep = Some(now + self.close_grace);
            } else {
                self.next_sweep = now + BPF_SWEEP_INTERVAL;
            }
        }
        (stats.complete, swept)
    }
}

/// Queues `id` for a fetch if the filter accepts it (judged on its id and state alone).
fn push_accepted(ingest: &Ingest, ids: &mut Vec<ExactId>, id: &SocketId) {
    let e = ExactId::new(
        id.family, id.state, id.sport, id.dport, &id.src, &id.dst, id.ifindex, id.cookie,
    );
    let m = e.as_msg();
    if InetDiagMsg::new(&m).is_ok_and(|msg| ingest.filter.accepts(&msg)) {
        ids.push(e);
    }
}

fn warn(batch: &mut PollBatch, e: &Error) {
    batch.warnings.push(Warning {
        code: WarningCode::of(e),
        message: format!("BPF poll: {e}"),
    });
}
