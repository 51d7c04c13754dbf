//! One poll: dump every family, parse, filter, fingerprint, diff, encode; then drain the
//! destroy events and sweep the connections that vanished.

use std::collections::{HashSet, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::batch::{
    NamespaceInfo, PollBatch, RecordKind, Warning, WarningCode, FLAG_FROM_DESTROY_EVENT,
    FLAG_UNSEEN,
};
use super::bpf_source::{BpfPollStats, BpfSource, Plan};
use super::config::PollerConfig;
use super::ingest::Ingest;
use super::mode::PollMode;
use super::records_pool::RecordsPool;
use crate::diff::tracker::Vanished;
use crate::error::{Error, Result};
use crate::netlink::bytecode::exclusion_program;
use crate::netlink::destroy::{DestroySubscription, DrainStats};
use crate::netlink::dump::{DumpEnd, DumpSocket, DumpStats};
use crate::netlink::request::{DumpSpec, AF_UNSPEC};
use crate::netns::discover::RUN_NETNS;
use crate::parse::diag_msg::{parse_diag, InetDiagMsg};
use crate::parse::diag_msg::{AF_INET, AF_INET6};

/// `1 << TCP_ESTABLISHED`: unseen closes are reported only when connections are watched.
const TCPF_ESTABLISHED: u32 = 1 << 1;
/// Cookies remembered after a fallback close, to recognise a destroy event that comes late.
const RECENTLY_VANISHED_CAPACITY: usize = 4096;
/// Pooled buffers up to this size are never trimmed: keeping them costs little.
const MIN_POOLED_CAPACITY: usize = 256 << 10;
/// Offset of `idiag_uid` in `struct inet_diag_msg` (include/uapi/linux/inet_diag.h).
const IDIAG_UID_OFFSET: usize = 64;
/// Offset of `idiag_inode` in `struct inet_diag_msg`.
const IDIAG_INODE_OFFSET: usize = 68;
/// Nanoseconds per millisecond: record timestamps are truncated to ms like M-Lab's.
const NANOS_PER_MILLI: i64 = 1_000_000;

/// A poller: sockets, tracker and encoder state, driven one poll at a time.
pub struct Poller {
    config: PollerConfig,
    /// The dumps of one poll: each family, or `AF_UNSPEC` for both in one walk.
    dumps: Vec<u8>,
    dump: DumpSocket,
    /// The filter as a kernel bytecode program; empty when nothing is pushed down.
    bytecode: Vec<u8>,
    events: Option<DestroySubscription>,
    ingest: Ingest,
    /// The namespace this poller's sockets belong to, as its records name it.
    ns_info: NamespaceInfo,
    /// Records buffers, sequence numbers and timestamps of the batches.
    source: BatchSource,
    /// Close records gathered while polls were skipped (a batch of their own).
    pending: PollBatch,
    recently_vanished: VecDeque<u64>,
    recently_vanished_set: HashSet<u64>,
    vanished: Vec<Vanished>,
    /// A destroy event's payload with the owner patched in (reused, not reallocated).
    patched: Vec<u8>,
    /// Where parts of a large poll go as soon as they hold this many bytes of records.
    part_sink: Option<(usize, PartSink)>,
    /// The BPF poll mode's walk and fetch (`mode` bpf, or auto where it can run).
    bpf: Option<BpfSource>,
    /// Why `auto` polls with netlink, for the first batch's warnings.
    fallback: Option<Warning>,
    /// Cookies of this poll's destroy events and sweep closes, for the BPF mode to forget.
    closed_cookies: Vec<u64>,
}

/// Receives the parts of a poll whose records outgrow `max_batch_bytes`, while the poll
/// goes on (the poller thread queues them for the consumer, waiting for room).
pub type PartSink = Arc<dyn Fn(PollBatch) + Send + Sync>;

/// Where a poller's batches come from: their records buffers (pooled), sequence numbers
/// and timestamps. One per poller thread, whether it polls one namespace or all of them.
pub(crate) struct BatchSource {
    seq: u64,
    /// Where each poll's records buffer comes from, and consumers may return it.
    pub(crate) records_pool: Arc<RecordsPool>,
    /// Capacities to ask for, `[index, payloads, lines]`: about the last batch's sizes, so
    /// a steady batch is written without growing its buffers.
    records_hint: [usize; 3],
}

impl BatchSource {
    pub(crate) fn new(config: &PollerConfig) -> Self {
        // Buffers of three regions for a full queue plus the batch being filled and one in
        // the consumer's hands. Bytes: V8 frees a batch's buffers only at its next scavenge,
        // about ten 10k-socket batches later, and returns them all at once; the pool keeps
        // twice the queue's budget so that such a wave is reused rather than freed.
        Self {
            seq: 0,
            records_pool: Arc::new(RecordsPool::new(
                3 * (config.queue_depth + 2),
                config.max_queued_bytes.saturating_mul(2),
            )),
            records_hint: [0; 3],
        }
    }

    /// Starts `batch` (the pending closes, if any): records buffers, sequence number and
    /// timestamp. Returns the records' line timestamp (truncated to ms).
    pub(crate) fn start(&mut self, batch: &mut PollBatch) -> i64 {
        if batch.records.is_empty() {
            // Pooled buffers far bigger than any region needs now go back to the allocator
            // (else they would keep circulating): after a first poll of 100k sockets
            // (~125 MiB) they are freed within ~10 polls.
            let biggest = self.records_hint.iter().copied().max().unwrap_or(0);
            self.records_pool
                .trim(biggest.saturating_mul(4).max(MIN_POOLED_CAPACITY));
            let (records, reused) = self.records_pool.take_records(self.records_hint);
            batch.records = records;
            batch.stats.reused_buffers = reused;
        }
        self.seq += 1;
        batch.seq = self.seq;
        batch.timestamp_nanos = unix_nanos();
        batch.timestamp_nanos - batch.timestamp_nanos.rem_euclid(NANOS_PER_MILLI)
    }

    /// Next poll's capacities: this batch's sizes, or half the previous hint if that is
    /// more. Every buffer of this batch holds at least that much (it held this batch, or
    /// was taken for the previous hint), so a buffer given back always fits the next
    /// poll; halving lets a burst's big buffers go within a few polls (the pool frees
    /// what exceeds 4× the biggest hint).
    pub(crate) fn finish(&mut self, batch: &PollBatch) {
        let r = &batch.records;
        let sizes = [r.index.len(), r.payloads.len(), r.lines.len()];
        for (hint, n) in self.records_hint.iter_mut().zip(sizes) {
            *hint = n.max(*hint / 2);
        }
    }
}

impl Poller {
    /// Opens the sockets in the current network namespace.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid configuration, [`Error::Socket`] when a netlink
    /// socket cannot be opened or the destroy groups cannot be joined.
    pub fn new(config: PollerConfig) -> Result<Self> {
        config.validate()?;
        let ingest = Ingest::new(&config)?;
        let dump = DumpSocket::open(config.recv_buffer_bytes)?;
        let events = if config.destroy_events {
            Some(DestroySubscription::open(
                &config.families,
                config.event_rcvbuf_bytes,
                config.recv_buffer_bytes,
            )?)
        } else {
            None
        };
        let both = config.families.contains(&AF_INET) && config.families.contains(&AF_INET6);
        let dumps = if config.single_dump && both {
            vec![AF_UNSPEC]
        } else {
            config.families.clone()
        };
        let (_, inode) = crate::netns::current()?;
        let ns_info = NamespaceInfo {
            inode,
            name: config
                .netns
                .as_deref()
                .filter(|p| {
                    p.parent() == Some(Path::new(RUN_NETNS))
                        || p.parent() == Some(Path::new("/var/run/netns"))
                })
                .and_then(|p| p.file_name()?.to_str().map(str::to_owned)),
            host: true,
            uuid_tag: String::new(),
        };
        let source = BatchSource::new(&config);
        let (bpf, fallback) = match config.mode {
            PollMode::Netlink => (None, None),
            PollMode::Bpf => (Some(BpfSource::open(&config)?), None),
            PollMode::Auto => match BpfSource::open(&config) {
                Ok(b) => (Some(b), None),
                Err(e) => (
                    None,
                    Some(Warning {
                        code: WarningCode::Unsupported,
                        message: format!("poll mode auto uses netlink: {e}"),
                    }),
                ),
            },
        };
        let bytecode = if config.kernel_filter {
            exclusion_program(&config.filter).unwrap_or_default()
        } else {
            Vec::new()
        };
        Ok(Self {
            dumps,
            bytecode,
            ns_info,
            source,
            config,
            dump,
            events,
            ingest,
            pending: PollBatch::default(),
            recently_vanished: VecDeque::new(),
            recently_vanished_set: HashSet::new(),
            vanished: Vec::new(),
            patched: Vec::new(),
            part_sink: None,
            bpf,
            fallback,
            closed_cookies: Vec::new(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &PollerConfig {
        &self.config
    }

    /// The pool this poller takes its records buffers from. Consumers done with a batch
    /// may give its `records` back with [`RecordsPool::recycle_records`]; that keeps the
    /// steady state free of allocation and page faults.
    pub fn records_pool(&self) -> Arc<RecordsPool> {
        Arc::clone(&self.source.records_pool)
    }

    /// What the BPF poll mode did in the last poll; `None` in netlink mode (or `auto`
    /// that fell back).
    pub fn bpf_stats(&self) -> Option<BpfPollStats> {
        self.bpf.as_ref().map(BpfSource::last)
    }

    /// The namespace this poller watches, as its records name it.
    pub fn namespace(&self) -> &NamespaceInfo {
        &self.ns_info
    }

    /// Delivers a poll's records in parts of about `max_bytes` to `sink` as they are
    /// dumped, instead of holding them all until the poll ends (bounded memory for a
    /// first poll of 100k+ sockets). `poll()` then returns the last part.
    pub fn set_part_sink(&mut self, max_bytes: usize, sink: PartSink) {
        self.part_sink = Some((max_bytes.max(1), sink));
    }

    /// Takes records buffers from `pool` (the multi-namespace driver's, which its
    /// consumer recycles into) instead of this poller's own.
    pub(crate) fn share_records_pool(&mut self, pool: Arc<RecordsPool>) {
        self.source.records_pool = pool;
    }

    pub(crate) fn set_namespace(&mut self, info: NamespaceInfo) {
        self.ns_info = info;
    }

    /// Runs one poll and returns what changed since the previous one.
    pub fn poll(&mut self) -> PollBatch {
        let mut batch = std::mem::take(&mut self.pending);
        let line_nanos = self.source.start(&mut batch);
        let now = batch.timestamp_nanos;
        batch.complete = self.poll_into(&mut batch, line_nanos, now);
        batch.stats.namespaces = 1;
        batch.stats.tracked = u32::try_from(self.ingest.tracked()).unwrap_or(u32::MAX);
        batch.stats.tracker_bytes = self.ingest.tracker_bytes() as u64;
        self.source.finish(&batch);
        batch
    }

    /// Polls this poller's namespace into `batch` (records of this namespace, dump time and
    /// counters added); returns whether every family was dumped completely.
    pub(crate) fn poll_into(
        &mut self,
        batch: &mut PollBatch,
        line_nanos: i64,
        now_nanos: i64,
    ) -> bool {
        batch.enter_namespace(&self.ns_info);
        self.ingest.begin_poll(now_nanos);
        let started = Instant::now();
        let mut complete = Vec::with_capacity(self.config.families.len());
        batch.warnings.extend(self.fallback.take());
        // The BPF mode walks instead of dumping (poll/bpf_source.rs); `complete` then
        // lists the families only on its sweep walks, the only ones that see everything.
        let mut walked = None;
        match self.bpf.as_mut().map(BpfSource::plan) {
            Some(Plan::Walk) => walked = Some(self.walk(batch, line_nanos, &mut complete)),
            plan => {
                if let (Some(Plan::Dump { prime: true }), Some(b)) = (plan, self.bpf.as_mut()) {
                    b.prime(batch);
                }
                for i in 0..self.dumps.len() {
                    let family = self.dumps[i];
                    if self.dump_family(family, line_nanos, batch) {
                        if family == AF_UNSPEC {
                            complete.extend_from_slice(&self.config.families);
                        } else {
                            complete.push(family);
                        }
                    }
                }
                if let Some(b) = self.bpf.as_mut() {
                    b.after_dump(batch);
                }
            }
        }
        batch.stats.dump_nanos += u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.drain_events_into(batch, line_nanos);
        if batch.stats.destroy_overruns > 0 {
            if let Some(b) = self.bpf.as_mut() {
                b.request_sweep();
            }
        }
        self.sweep(&complete, batch);
        walked.unwrap_or(complete.len() == self.config.families.len())
    }

    /// A BPF walk and the fetches of what it reported; returns whether it completed.
    fn walk(&mut self, batch: &mut PollBatch, line_nanos: i64, complete: &mut Vec<u8>) -> bool {
        let Self {
            bpf,
            ingest,
            part_sink,
            ..
        } = self;
        let Some(bpf) = bpf.as_mut() else {
            return false;
        };
        let (ok, swept) = bpf.walk_into(ingest, batch, line_nanos, |batch| {
            if let Some((max, sink)) = part_sink {
                if batch.records.len_bytes() >= *max {
                    sink(batch.take_part());
                }
            }
        });
        if swept {
            complete.extend_from_slice(&self.config.families);
        }
        ok
    }

    /// Ends this namespace (it is gone): its pending destroy events are reported with
    /// their final counters, every other connection it still tracks as closed (no
    /// counters), and the poller is dropped after this.
    pub(crate) fn retire_into(&mut self, batch: &mut PollBatch, line_nanos: i64) {
        batch.enter_namespace(&self.ns_info);
        self.drain_events_into(batch, line_nanos);
        self.vanished.clear();
        self.ingest.tracker.drain_all(&mut self.vanished);
        for v in &self.vanished {
            batch.push_bare(RecordKind::Closed, v.family, v.cookie);
            self.ingest.accounting.on_vanished(v.cookie, batch);
        }
    }

    /// Connections tracked.
    pub(crate) fn tracked(&self) -> usize {
        self.ingest.tracked()
    }

    /// Heap bytes of the tracker.
    pub(crate) fn tracker_bytes(&self) -> usize {
        self.ingest.tracker_bytes()
    }

    /// Drains destroy events without polling, while the consumer is behind, so the
    /// kernel's event buffer does not overflow. Their close records go into the next poll.
    pub fn drain_events_only(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        pending.stats.skipped_polls += 1;
        let now = unix_nanos();
        pending.enter_namespace(&self.ns_info);
        self.drain_events_into(&mut pending, now - now.rem_euclid(NANOS_PER_MILLI));
        self.pending = pending;
    }

    fn dump_family(&mut self, family: u8, line_nanos: i64, batch: &mut PollBatch) -> bool {
        let spec = DumpSpec {
            family,
            states: self.config.states,
            ext: self.config.ext,
        };
        let mut stats = DumpStats::default();
        let mut first_error: Option<Error> = None;
        let mut result =
            self.dump_with_filter(spec, line_nanos, batch, &mut stats, &mut first_error);
        if matches!(
            result,
            Err(Error::Kernel {
                errno: libc::EINVAL,
                ..
            })
        ) && !self.bytecode.is_empty()
            && stats.messages == 0
        {
            // The kernel audits the program before dumping anything: a kernel that rejects
            // it gets user-space filtering only, from now on, and this dump is redone.
            self.bytecode.clear();
            batch.warnings.push(Warning {
                code: WarningCode::FilterRejected,
                message: "the kernel rejected the socket filter program (EINVAL); filtering in user space only".into(),
            });
            result = self.dump_with_filter(spec, line_nanos, batch, &mut stats, &mut first_error);
        }
        batch.stats.recv_calls += stats.recv_calls;
        batch.stats.bytes += stats.bytes;
        batch.stats.messages += stats.messages;
        batch.stats.malformed += stats.malformed;
        // A reply that could not be parsed is a socket we did not see: this family's
        // absences prove nothing this poll, so nothing of it is swept.
        let parsed_all = first_error.is_none() && stats.malformed == 0;
        if let Some(e) = first_error {
            warn(batch, &e, family);
        }
        match result {
            Ok(DumpEnd::Done) => parsed_all,
            Ok(DumpEnd::Interrupted) => {
                warn(batch, &Error::DumpInterrupted { family }, family);
                false
            }
            Err(e) => {
                warn(batch, &e, family);
                false
            }
        }
    }

    /// One dump with the kernel-side filter, every reply ingested into `batch`.
    fn dump_with_filter(
        &mut self,
        spec: DumpSpec,
        line_nanos: i64,
        batch: &mut PollBatch,
        stats: &mut DumpStats,
        first_error: &mut Option<Error>,
    ) -> Result<DumpEnd> {
        let Self {
            dump,
            ingest,
            bytecode,
            part_sink,
            source,
            ..
        } = self;
        dump.dump(spec, bytecode, stats, |payload| {
            if let Err(e) = ingest.on_reply(payload, line_nanos, batch) {
                batch.stats.malformed += 1;
                first_error.get_or_insert(e);
            }
            if let Some((max, sink)) = part_sink {
                if batch.records.len_bytes() >= *max {
                    let r = &batch.records;
                    let sizes = [r.index.len(), r.payloads.len(), r.lines.len()];
                    sink(batch.take_part());
                    // The next part fills buffers the consumer gave back (the sink waited
                    // for it to take the previous parts), not fresh ones grown by doubling:
                    // a 100k first poll then cycles ~3 parts' memory instead of 8.
                    let (records, reused) = source.records_pool.take_records(sizes);
                    batch.records = records;
                    batch.stats.reused_buffers += reused;
                }
            }
        })
    }

    pub(crate) fn drain_events_into(&mut self, batch: &mut PollBatch, line_nanos: i64) {
        let Some(events) = self.events.as_mut() else {
            return;
        };
        let mut stats = DrainStats::default();
        let watches_connections = self.config.states & TCPF_ESTABLISHED != 0;
        let report_unconnected = self.config.report_unconnected;
        let max_pending = self.config.max_pending_closes;
        let Ingest {
            tracker,
            filter,
            accounting,
            ..
        } = &mut self.ingest;
        let recent_set = &mut self.recently_vanished_set;
        let patched = &mut self.patched;
        let closed_cookies = &mut self.closed_cookies;
        let bpf = self.bpf.is_some();
        let mut malformed = 0;
        let result = events.drain(&mut stats, |payload| {
            let Ok((msg, _)) = parse_diag(payload) else {
                malformed += 1;
                return;
            };
            let cookie = msg.cookie();
            if bpf {
                closed_cookies.push(cookie);
            }
            let (flags, owner) = if let Some(owner) = tracker.remove(cookie) {
                (FLAG_FROM_DESTROY_EVENT, Some(owner))
            } else if recent_set.remove(&cookie) {
                batch.stats.late_destroy_events += 1;
                return;
            } else if watches_connections
                && filter.accepts(&msg)
                && (report_unconnected || !never_connected(msg))
            {
                (FLAG_FROM_DESTROY_EVENT | FLAG_UNSEEN, None)
            } else {
                return;
            };
            if batch.closed as usize >= max_pending && batch.stats.skipped_polls > 0 {
                batch.stats.dropped_closes += 1;
                return;
            }
            // The destroy message reports uid and inode as 0; the dumps knew them.
            let payload = match owner {
                Some(o) if msg.uid() != o.uid || msg.inode() != o.inode => {
                    patched.clear();
                    patched.extend_from_slice(payload);
                    patched[IDIAG_UID_OFFSET..IDIAG_UID_OFFSET + 4]
                        .copy_from_slice(&o.uid.to_ne_bytes());
                    patched[IDIAG_INODE_OFFSET..IDIAG_INODE_OFFSET + 4]
                        .copy_from_slice(&o.inode.to_ne_bytes());
                    patched.as_slice()
                }
                _ => payload,
            };
            if let Ok((msg, attrs)) = parse_diag(payload) {
                batch.push_record(RecordKind::Closed, flags, line_nanos, payload, msg, &attrs);
                accounting.on_record(RecordKind::Closed, flags, &msg, &attrs, batch);
            }
        });
        batch.stats.destroy_events += stats.events;
        batch.stats.destroy_overruns += stats.overruns;
        batch.stats.malformed += stats.malformed + malformed;
        if stats.overruns > 0 {
            batch.warnings.push(Warning {
                code: WarningCode::EventsLost,
                message: format!(
                    "the kernel dropped destroy events {} time(s) (ENOBUFS); affected connections are closed by the poll sweep without final counters",
                    stats.overruns
                ),
            });
        }
        if let Err(e) = result {
            batch.warnings.push(Warning {
                code: WarningCode::of(&e),
                message: e.to_string(),
            });
        }
        if let Some(b) = self.bpf.as_mut() {
            b.forget(&self.closed_cookies, batch);
            self.closed_cookies.clear();
        }
    }

    fn sweep(&mut self, complete: &[u8], batch: &mut PollBatch) {
        self.vanished.clear();
        self.ingest.sweep(complete, &mut self.vanished);
        if let Some(b) = self.bpf.as_mut() {
            self.closed_cookies.clear();
            self.closed_cookies
                .extend(self.vanished.iter().map(|v| v.cookie));
            b.forget(&self.closed_cookies, batch);
            self.closed_cookies.clear();
        }
        for v in &self.vanished {
            batch.push_bare(RecordKind::Closed, v.family, v.cookie);
            self.ingest.accounting.on_vanished(v.cookie, batch);
            if self.recently_vanished.len() == RECENTLY_VANISHED_CAPACITY {
                if let Some(old) = self.recently_vanished.pop_front() {
                    self.recently_vanished_set.remove(&old);
                }
            }
            self.recently_vanished.push_back(v.cookie);
            self.recently_vanished_set.insert(v.cookie);
        }
    }
}

fn warn(batch: &mut PollBatch, e: &Error, family: u8) {
    batch.warnings.push(Warning {
        code: WarningCode::of(e),
        message: format!("AF {family}: {e}"),
    });
}

/// A socket that never had a peer: unspecified destination address and port 0 (bound
/// or created, then closed; a `connect()` sets the peer before the first SYN leaves).
fn never_connected(msg: InetDiagMsg<'_>) -> bool {
    msg.dport() == 0 && msg.dst().is_unspecified()
}

/// Current time in unix nanoseconds.
pub fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel that rejects the filter program (here: an op code no kernel knows) costs
    /// one warning, not the poll: the dump is redone without it, and later polls stay
    /// without it.
    #[test]
    fn a_rejected_filter_program_falls_back_to_user_space() {
        let _listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut poller = Poller::new(PollerConfig::default()).expect("poller");
        poller.bytecode = vec![99, 4, 8, 0];
        let batch = poller.poll();
        assert!(batch.complete, "{:?}", batch.warnings);
        assert_eq!(batch.warnings.len(), 1, "{:?}", batch.warnings);
        assert!(batch.warnings[0].message.contains("filter program"));
        assert!(batch.opened > 0, "the redone dump reported the sockets");
        assert!(poller.bytecode.is_empty());
        let next = poller.poll();
        assert!(next.warnings.is_empty() && next.complete);
    }

    /// A poll larger than the part size arrives in parts sharing its `seq`, numbered from
    /// 0, all but the last marked `more`; together they hold what one batch would.
    #[test]
    fn a_large_poll_is_delivered_in_parts() {
        let _listeners: Vec<_> = (0..60)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let whole: HashSet<u64> = Poller::new(PollerConfig::default())
            .expect("poller")
            .poll()
            .iter()
            .map(|r| r.cookie)
            .collect();
        let parts = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut poller = Poller::new(PollerConfig::default()).expect("poller");
        let sink = Arc::clone(&parts);
        poller.set_part_sink(8192, Arc::new(move |b| sink.lock().expect("lock").push(b)));
        let last = poller.poll();
        let mut parts = std::mem::take(&mut *parts.lock().expect("lock"));
        assert!(parts.len() >= 2, "{} parts", parts.len());
        assert!(!last.more && last.part == u32::try_from(parts.len()).expect("few"));
        parts.push(last);
        let mut seen = HashSet::new();
        for (i, p) in parts.iter().enumerate() {
            assert_eq!(p.seq, 1);
            assert_eq!(p.part as usize, i);
            assert_eq!(p.more, i + 1 < parts.len());
            // Closes of sockets other tests drop meanwhile may ride along.
            assert_eq!((p.opened + p.changed + p.closed) as usize, p.iter().count());
            assert!(p.iter().all(|r| (r.netns as usize) < p.namespaces.len()));
            seen.extend(p.iter().map(|r| r.cookie));
        }
        // Both polls saw at least our 60 listeners; sockets of other work may come and go.
        let ours = |set: &HashSet<u64>| set.len() >= 60;
        assert!(ours(&seen) && ours(&whole));
        let common = seen.intersection(&whole).count();
        assert!(common >= 60, "{common} in common");
    }
}
