//! The result of one poll. Its records are kept in three regions, each crossing to JS as
//! one `Buffer` without a copy (one boundary crossing per poll, not per socket):
//!
//! - `index`: one [`INDEX_ENTRY_LEN`]-byte entry per record, little-endian:
//!   `kind u8 | flags u8 | family u8 | state u8 | payload_off u32 | payload_len u32 |
//!   line_off u32 | line_len u32 | netns u32 | cookie u64`, where `netns` indexes the
//!   batch's namespace table ([`PollBatch::namespaces`]);
//! - `payloads`: the netlink payloads (`inet_diag_msg` + attributes), back to back;
//! - `lines`: the `ArchivalRecord` JSON lines (each with its `\n`), back to back: the
//!   batch's JSONL as it is.
//!
//! Why three regions and not one framed stream: a consumer walking the records reads
//! only the small, contiguous index (320 KiB for 10k records) instead of a header every
//! 1.3 KiB of a 13 MiB buffer, and the whole batch's JSONL is one slice.
//! Specified in `docs/internals/poll/batch-format.md`.

use crate::encode::archival::write_record_line;
use crate::parse::attrs::Attrs;
use crate::parse::diag_msg::InetDiagMsg;

/// Size of one index entry.
pub const INDEX_ENTRY_LEN: usize = 32;
/// Offset of the `netns` field (a `u32` position in the batch's namespace table) in an
/// index entry.
pub const INDEX_NETNS_OFFSET: usize = 20;

/// Why a record is in the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    /// First time seen.
    Opened = 0,
    /// Fingerprint changed.
    Changed = 1,
    /// Gone: destroy event (with final `tcp_info`) or missing from two complete polls.
    Closed = 2,
}

/// Record flag: the record carries the netlink payload and the JSON line.
pub const FLAG_HAS_RECORD: u8 = 1;
/// Record flag: reported by a destroy event (the payload holds the final counters).
pub const FLAG_FROM_DESTROY_EVENT: u8 = 2;
/// Record flag: closed without ever being seen in a dump (lived less than one poll).
pub const FLAG_UNSEEN: u8 = 4;

/// What went wrong in a poll that still returned everything it could.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningCode {
    /// A netlink socket call failed during a dump or while draining destroy events.
    Socket,
    /// The kernel answered a dump request with an error.
    Kernel,
    /// A reply could not be parsed; it was skipped.
    Malformed,
    /// A dump was interrupted (`NLM_F_DUMP_INTR`) too often; that family is incomplete.
    DumpInterrupted,
    /// The kernel dropped destroy events (`ENOBUFS`); the sweep closes those connections.
    EventsLost,
    /// The kernel rejected the socket filter program; filtering runs in user space only.
    FilterRejected,
    /// Anything else (a bug).
    Internal,
    /// `auto` poll mode fell back to netlink: the message says what BPF lacks here.
    Unsupported,
}

/// Every [`WarningCode`], in declaration order (tested against the TypeScript union).
pub const WARNING_CODES: [WarningCode; 8] = [
    WarningCode::Socket,
    WarningCode::Kernel,
    WarningCode::Malformed,
    WarningCode::DumpInterrupted,
    WarningCode::EventsLost,
    WarningCode::FilterRejected,
    WarningCode::Internal,
    WarningCode::Unsupported,
];

impl WarningCode {
    /// The stable string code, e.g. `ERR_DUMP_INTERRUPTED`.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningCode::Socket => "ERR_SOCKET",
            WarningCode::Kernel => "ERR_KERNEL",
            WarningCode::Malformed => "ERR_MALFORMED",
            WarningCode::DumpInterrupted => "ERR_DUMP_INTERRUPTED",
            WarningCode::EventsLost => "ERR_EVENTS_LOST",
            WarningCode::FilterRejected => "ERR_FILTER_REJECTED",
            WarningCode::Internal => "ERR_INTERNAL",
            WarningCode::Unsupported => "ERR_UNSUPPORTED",
        }
    }

    /// The warning for an error met during a poll.
    pub fn of(e: &crate::Error) -> Self {
        match e {
            crate::Error::Socket { .. } => WarningCode::Socket,
            crate::Error::Kernel { .. } => WarningCode::Kernel,
            crate::Error::Malformed { .. } => WarningCode::Malformed,
            crate::Error::DumpInterrupted { .. } => WarningCode::DumpInterrupted,
            crate::Error::Unsupported(_) => WarningCode::Unsupported,
            _ => WarningCode::Internal,
        }
    }
}

/// A soft error of one poll: the poll still returned everything it could.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// What went wrong.
    pub code: WarningCode,
    /// One-line explanation.
    pub message: String,
}

/// Counters of one poll.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollStats {
    /// Wall time of the dumps, nanoseconds.
    pub dump_nanos: u64,
    /// `recvmsg` calls of the dumps.
    pub recv_calls: u32,
    /// Bytes received by the dumps.
    pub bytes: u64,
    /// Netlink messages in the dumps: after the kernel-side filter, before the user-space one.
    pub messages: u32,
    /// Messages or datagrams that were malformed and skipped.
    pub malformed: u32,
    /// Destroy events received.
    pub destroy_events: u32,
    /// Kernel event-buffer overruns (`ENOBUFS`): close events were lost.
    pub destroy_overruns: u32,
    /// Destroy events that arrived after their connection was already reported closed.
    pub late_destroy_events: u32,
    /// Close events dropped because too many were pending while polls were skipped.
    pub dropped_closes: u32,
    /// Polls skipped before this one because the consumer was behind.
    pub skipped_polls: u32,
    /// Connections tracked after this poll.
    pub tracked: u32,
    /// Heap bytes of the connection tracker after this poll.
    pub tracker_bytes: u64,
    /// Of this batch's three buffers, how many were reused from the records pool (returned
    /// by the consumer) rather than allocated.
    pub reused_buffers: u32,
    /// Network namespaces polled (1 unless every namespace is watched).
    pub namespaces: u32,
    /// CPU time of the poller thread during this poll (`CLOCK_THREAD_CPUTIME_ID`), ns.
    pub cpu_nanos: u64,
    /// Interval the poller waits before the next poll, ns: the configured interval, or
    /// longer to keep within the CPU budget (`max_cpu`).
    pub effective_interval_nanos: u64,
    /// Polls, this one included, that took longer than the configured interval (xtcp's
    /// `long_poll`), since the start.
    pub long_polls: u32,
    /// Flow opens reported by this poll: records of kind `Opened`, and closes of
    /// connections no poll saw (`FLAG_UNSEEN`). See `poll/accounting.rs`.
    pub flow_opens: u32,
    /// Flow closes reported by this poll: records of kind `Closed`.
    pub flow_closes: u32,
    /// Bytes acknowledged by peers since each reported connection's previous report
    /// (`tcpi_bytes_acked` deltas, final counters of closes included); 0 unless
    /// `count_bytes` or metric ports are configured.
    pub bytes_sent: u64,
    /// Bytes received likewise (`tcpi_bytes_received` deltas).
    pub bytes_received: u64,
    /// Reports whose byte counters were below the connection's previous ones (counted 0).
    pub counters_backwards: u32,
}

/// Per-port accounting of one poll, for one configured metrics port (deltas).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PortStats {
    /// The local port.
    pub port: u16,
    /// Connections on it reported opened by this poll.
    pub opened: u32,
    /// Connections on it reported closed by this poll.
    pub closed: u32,
    /// Bytes acknowledged by peers on its connections (deltas, as `PollStats::bytes_sent`).
    pub bytes_sent: u64,
    /// Bytes received on its connections (deltas).
    pub bytes_received: u64,
}

/// A network namespace in a batch's namespace table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceInfo {
    /// Inode of the namespace (`readlink /proc/PID/ns/net` shows `net:[INODE]`).
    pub inode: u64,
    /// Best-effort name: the `/run/netns` name, else a container id from a member
    /// process's cgroup path, else `None`.
    pub name: Option<String>,
    /// The namespace tcpinfo itself runs in (or the one given by `netns`): its UUIDs keep
    /// M-Lab's format.
    pub host: bool,
    /// What the UUIDs of this namespace's connections carry between the prefix and the
    /// cookie (`<prefix>_<tag>_<COOKIE>`); empty for the host namespace. See
    /// [`crate::netns::uuid_tag`].
    pub uuid_tag: String,
}

/// The records of one poll, in three regions (see the module docs).
#[derive(Debug, Default, Clone)]
pub struct Records {
    /// One [`INDEX_ENTRY_LEN`]-byte entry per record.
    pub index: Vec<u8>,
    /// Netlink payloads, back to back.
    pub payloads: Vec<u8>,
    /// `ArchivalRecord` lines, back to back.
    pub lines: Vec<u8>,
}

impl Records {
    /// Whether there is no record.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Bytes used by the three regions.
    pub fn len_bytes(&self) -> usize {
        self.index.len() + self.payloads.len() + self.lines.len()
    }

    /// Iterates over the records.
    pub fn iter(&self) -> RecordIter<'_> {
        RecordIter::new(&self.index, &self.payloads, &self.lines)
    }
}

impl<'a> IntoIterator for &'a Records {
    type Item = RecordView<'a>;
    type IntoIter = RecordIter<'a>;

    fn into_iter(self) -> RecordIter<'a> {
        self.iter()
    }
}

/// Everything one poll reports.
#[derive(Debug, Default, Clone)]
pub struct PollBatch {
    /// Poll sequence number, from 1.
    pub seq: u64,
    /// Start of the poll, unix nanoseconds.
    pub timestamp_nanos: i64,
    /// Sockets seen in the dumps that passed the filter.
    pub sockets_seen: u32,
    /// Records of kind `Opened`.
    pub opened: u32,
    /// Records of kind `Changed`.
    pub changed: u32,
    /// Records of kind `Closed`.
    pub closed: u32,
    /// Whether every family was dumped completely (no failure, no `NLM_F_DUMP_INTR`).
    pub complete: bool,
    /// Soft errors.
    pub warnings: Vec<Warning>,
    /// Counters.
    pub stats: PollStats,
    /// The reported connections.
    pub records: Records,
    /// The network namespaces that records point into (by the index's `netns` field).
    pub namespaces: Vec<NamespaceInfo>,
    /// Table position of the namespace whose records are being pushed.
    pub(crate) ns_index: u32,
    /// Position of this batch among the parts of its poll, from 0 (a poll whose records
    /// exceed `max_batch_bytes` is delivered in several batches sharing `seq`).
    pub part: u32,
    /// More parts of this poll follow; the last part carries the closes, `complete`,
    /// `sockets_seen`, the warnings and the stats.
    pub more: bool,
    /// Per-port accounting, one entry per configured metrics port in configured order
    /// (empty when none is configured or nothing happened on them); with the stats.
    pub port_stats: Vec<PortStats>,
}

impl PollBatch {
    /// Moves the records gathered so far (with their counts) into a part of their own,
    /// leaving this batch empty of records to go on with the same poll.
    pub(crate) fn take_part(&mut self) -> PollBatch {
        let part = PollBatch {
            seq: self.seq,
            timestamp_nanos: self.timestamp_nanos,
            opened: std::mem::take(&mut self.opened),
            changed: std::mem::take(&mut self.changed),
            closed: std::mem::take(&mut self.closed),
            // Positions stay valid: a batch's table is only ever appended to.
            namespaces: self.namespaces.clone(),
            records: std::mem::take(&mut self.records),
            part: self.part,
            more: true,
            ..PollBatch::default()
        };
        self.part += 1;
        part
    }

    /// Makes `info`'s namespace the one of the records pushed next (adding it to the table
    /// if it is not there yet); returns its table position.
    pub(crate) fn enter_namespace(&mut self, info: &NamespaceInfo) -> u32 {
        let pos = self
            .namespaces
            .iter()
            .position(|n| n.inode == info.inode)
            .unwrap_or_else(|| {
                self.namespaces.push(info.clone());
                self.namespaces.len() - 1
            });
        self.ns_index = u32::try_from(pos).unwrap_or(u32::MAX);
        self.ns_index
    }

    /// Appends a record with its payload and `ArchivalRecord` line.
    pub(crate) fn push_record(
        &mut self,
        kind: RecordKind,
        flags: u8,
        line_nanos: i64,
        payload: &[u8],
        msg: InetDiagMsg<'_>,
        attrs: &Attrs<'_>,
    ) {
        let r = &mut self.records;
        let payload_off = r.payloads.len();
        r.payloads.extend_from_slice(payload);
        let line_off = r.lines.len();
        write_record_line(&mut r.lines, line_nanos, &msg, attrs);
        let entry = IndexEntry {
            kind: kind as u8,
            flags: flags | FLAG_HAS_RECORD,
            family: msg.family(),
            state: msg.state(),
            payload: (payload_off, payload.len()),
            line: (line_off, r.lines.len() - line_off),
            netns: self.ns_index,
            cookie: msg.cookie(),
        };
        entry.write(&mut r.index);
        self.count(kind);
    }

    /// Appends a record without payload (a connection that vanished without an event).
    pub(crate) fn push_bare(&mut self, kind: RecordKind, family: u8, cookie: u64) {
        let entry = IndexEntry {
            kind: kind as u8,
            flags: 0,
            family,
            state: 0,
            payload: (self.records.payloads.len(), 0),
            line: (self.records.lines.len(), 0),
            netns: self.ns_index,
            cookie,
        };
        entry.write(&mut self.records.index);
        self.count(kind);
    }

    fn count(&mut self, kind: RecordKind) {
        match kind {
            RecordKind::Opened => self.opened += 1,
            RecordKind::Changed => self.changed += 1,
            RecordKind::Closed => self.closed += 1,
        }
    }

    /// Iterates over the records.
    pub fn iter(&self) -> RecordIter<'_> {
        self.records.iter()
    }
}

impl<'a> IntoIterator for &'a PollBatch {
    type Item = RecordView<'a>;
    type IntoIter = RecordIter<'a>;

    fn into_iter(self) -> RecordIter<'a> {
        self.iter()
    }
}

/// One index entry, before encoding. Offsets and lengths are `(offset, length)` in bytes.
struct IndexEntry {
    kind: u8,
    flags: u8,
    family: u8,
    state: u8,
    payload: (usize, usize),
    line: (usize, usize),
    netns: u32,
    cookie: u64,
}

impl IndexEntry {
    fn write(&self, index: &mut Vec<u8>) {
        let mut e = [0u8; INDEX_ENTRY_LEN];
        e[..4].copy_from_slice(&[self.kind, self.flags, self.family, self.state]);
        put_u32(&mut e, 4, self.payload.0);
        put_u32(&mut e, 8, self.payload.1);
        put_u32(&mut e, 12, self.line.0);
        put_u32(&mut e, 16, self.line.1);
        e[INDEX_NETNS_OFFSET..INDEX_NETNS_OFFSET + 4].copy_from_slice(&self.netns.to_le_bytes());
        e[24..].copy_from_slice(&self.cookie.to_le_bytes());
        index.extend_from_slice(&e);
    }
}

/// Offsets saturate at `u32::MAX`: a region of 4 GiB is far beyond any queue bound, and a
/// saturated offset fails the reader's bounds check instead of pointing elsewhere.
fn put_u32(buf: &mut [u8], off: usize, v: usize) {
    let v = u32::try_from(v).unwrap_or(u32::MAX);
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn get_u32(buf: &[u8], off: usize) -> usize {
    u32::from_le_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]) as usize
}

/// One record, borrowed from a batch.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    /// Why it is reported.
    pub kind: u8,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Address family.
    pub family: u8,
    /// TCP state (0 when unknown).
    pub state: u8,
    /// Socket cookie.
    pub cookie: u64,
    /// Position of the record's network namespace in the batch's namespace table.
    pub netns: u32,
    /// Netlink payload (`inet_diag_msg` + attributes); empty without `FLAG_HAS_RECORD`.
    pub payload: &'a [u8],
    /// `ArchivalRecord` line with `\n`; empty without `FLAG_HAS_RECORD`.
    pub line: &'a [u8],
}

/// Iterator over the records of a batch's three regions.
pub struct RecordIter<'a> {
    index: &'a [u8],
    payloads: &'a [u8],
    lines: &'a [u8],
}

impl<'a> RecordIter<'a> {
    /// Iterates over the records indexed by `index`. A payload or line outside its region
    /// (only possible for regions that did not come from the same batch) reads as empty;
    /// a trailing partial index entry is ignored.
    pub fn new(index: &'a [u8], payloads: &'a [u8], lines: &'a [u8]) -> Self {
        Self {
            index,
            payloads,
            lines,
        }
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = RecordView<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let e = self.index.get(..INDEX_ENTRY_LEN)?;
        self.index = &self.index[INDEX_ENTRY_LEN..];
        let region = |buf: &'a [u8], off: usize| {
            let (start, len) = (get_u32(e, off), get_u32(e, off + 4));
            buf.get(start..start.saturating_add(len)).unwrap_or(&[])
        };
        let mut cookie = [0u8; 8];
        cookie.copy_from_slice(&e[24..32]);
        Some(RecordView {
            kind: e[0],
            flags: e[1],
            family: e[2],
            state: e[3],
            cookie: u64::from_le_bytes(cookie),
            netns: u32::try_from(get_u32(e, INDEX_NETNS_OFFSET)).unwrap_or(u32::MAX),
            payload: region(self.payloads, 4),
            line: region(self.lines, 12),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.index.len() / INDEX_ENTRY_LEN;
        (n, Some(n))
    }
}
