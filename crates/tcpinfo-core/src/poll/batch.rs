//! The result of one poll, framed into one byte buffer so that it crosses to JS as a
//! single `Buffer` (one boundary crossing per poll, not per socket).
//!
//! Record framing (little-endian), repeated: a 24-byte header
//! `kind u8 | flags u8 | family u8 | state u8 | raw_len u32 | line_len u32 | reserved u32 | cookie u64`
//! then `raw_len` bytes of the netlink payload (`inet_diag_msg` + attributes) and
//! `line_len` bytes of the `ArchivalRecord` JSON line (with its `\n`).
//! Specified in `docs/internals/poll/batch-format.md`.

use crate::encode::archival::write_record_line;
use crate::parse::attrs::Attrs;
use crate::parse::diag_msg::InetDiagMsg;

/// Size of one record header in the framed buffer.
pub const RECORD_HEADER_LEN: usize = 24;

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

/// A soft error of one poll: the poll still returned everything it could.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Stable code, as in [`crate::Error::code`].
    pub code: &'static str,
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
    /// Netlink messages in the dumps (before filtering).
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
    /// The framed records.
    pub records: Vec<u8>,
}

impl PollBatch {
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
        let start = self.records.len();
        self.push_header(
            kind,
            flags | FLAG_HAS_RECORD,
            msg.family(),
            msg.state(),
            msg.cookie(),
        );
        self.records.extend_from_slice(payload);
        let line_start = self.records.len();
        write_record_line(&mut self.records, line_nanos, &msg, attrs);
        let line_len = self.records.len() - line_start;
        set_u32(&mut self.records, start + 4, payload.len());
        set_u32(&mut self.records, start + 8, line_len);
    }

    /// Appends a record without payload (a connection that vanished without an event).
    pub(crate) fn push_bare(&mut self, kind: RecordKind, family: u8, cookie: u64) {
        self.push_header(kind, 0, family, 0, cookie);
    }

    pub(crate) fn count(&mut self, kind: RecordKind) {
        match kind {
            RecordKind::Opened => self.opened += 1,
            RecordKind::Changed => self.changed += 1,
            RecordKind::Closed => self.closed += 1,
        }
    }

    fn push_header(&mut self, kind: RecordKind, flags: u8, family: u8, state: u8, cookie: u64) {
        self.count(kind);
        self.records
            .extend_from_slice(&[kind as u8, flags, family, state]);
        self.records.extend_from_slice(&[0; 12]);
        self.records.extend_from_slice(&cookie.to_le_bytes());
    }

    /// Iterates over the framed records.
    pub fn iter(&self) -> RecordIter<'_> {
        RecordIter { buf: &self.records }
    }
}

impl<'a> IntoIterator for &'a PollBatch {
    type Item = RecordView<'a>;
    type IntoIter = RecordIter<'a>;

    fn into_iter(self) -> RecordIter<'a> {
        self.iter()
    }
}

fn set_u32(buf: &mut [u8], off: usize, v: usize) {
    let v = u32::try_from(v).unwrap_or(u32::MAX);
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// One framed record, borrowed from a batch.
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
    /// Netlink payload (`inet_diag_msg` + attributes); empty without `FLAG_HAS_RECORD`.
    pub payload: &'a [u8],
    /// `ArchivalRecord` line with `\n`; empty without `FLAG_HAS_RECORD`.
    pub line: &'a [u8],
}

/// Iterator over framed records (see the module docs for the layout).
pub struct RecordIter<'a> {
    buf: &'a [u8],
}

impl<'a> RecordIter<'a> {
    /// Iterates over the records framed in `buf` (a batch's `records`). Stops at the first
    /// truncated record.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = RecordView<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let h = self.buf.get(..RECORD_HEADER_LEN)?;
        let raw_len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let line_len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        let mut cookie = [0u8; 8];
        cookie.copy_from_slice(&h[16..24]);
        let body = self
            .buf
            .get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + raw_len + line_len)?;
        let view = RecordView {
            kind: h[0],
            flags: h[1],
            family: h[2],
            state: h[3],
            cookie: u64::from_le_bytes(cookie),
            payload: &body[..raw_len],
            line: &body[raw_len..],
        };
        self.buf = &self.buf[RECORD_HEADER_LEN + raw_len + line_len..];
        Some(view)
    }
}
