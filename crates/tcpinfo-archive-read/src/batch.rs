//! A batch of archived records in the poller's batch layout (`tcpinfo_core::Records`:
//! index, payloads, lines; `docs/internals/poll/batch-format.md`), so one reader — core's
//! `RecordIter` in Rust, `Connection` in TS — serves live and archived records alike.
//!
//! What archives add is carried beside the three regions (`docs/internals/archive/design.md`):
//! - `times`: one little-endian i64 per record, the record's `Timestamp` in unix nanoseconds
//!   (`GO_ZERO_TIME` = `i64::MIN` when the record has none, as raw netlink dumps);
//! - `segments`: the sources (file and header metadata) the records came from; the index
//!   entry's reserved u32 (bytes 20..24) holds the record's position in this list.

use tcpinfo_core::{RecordKind, Records, FLAG_HAS_RECORD, INDEX_ENTRY_LEN};

use crate::error::ArchiveError;

/// The source of a run of records: a file (or stream) and the header metadata in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Segment {
    /// Source name (path, or `-` for standard input).
    pub source: String,
    /// `Metadata.UUID` of the header line, if the source had one.
    pub uuid: Option<String>,
    /// `Metadata.Sequence`.
    pub sequence: Option<u64>,
    /// `Metadata.StartTime`, unix nanoseconds.
    pub start_time: Option<i64>,
}

/// Counters of a batch (since the previous batch).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadStats {
    /// Non-empty lines (or netlink messages) read.
    pub lines: u64,
    /// Header (metadata) lines.
    pub headers: u64,
    /// Data records decoded.
    pub records: u64,
    /// Errors (all of them, also those beyond the batch's error list).
    pub errors: u64,
    /// Records skipped because they were bad (skip mode).
    pub skipped: u64,
    /// Input bytes consumed, as stored (compressed).
    pub bytes_in: u64,
    /// Decompressed bytes consumed.
    pub bytes_text: u64,
    /// Sources finished.
    pub sources_done: u64,
}

/// Records of one or more sources, with their timestamps and sources.
#[derive(Debug, Default, Clone)]
pub struct ArchiveBatch {
    /// Index, payloads and lines, as a poll's batch.
    pub records: Records,
    /// One little-endian i64 per record: `Timestamp`, unix nanoseconds.
    pub times: Vec<u8>,
    /// Sources of the records; index entry bytes 20..24 point here.
    pub segments: Vec<Segment>,
    /// Errors met while reading (at most `ReaderOptions::max_errors_per_batch`).
    pub errors: Vec<ArchiveError>,
    /// Counters.
    pub stats: ReadStats,
}

/// Bytes 20..24 of an index entry: the segment of an archived record.
pub const SEGMENT_FIELD_OFFSET: usize = 20;

impl ArchiveBatch {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.index.len() / INDEX_ENTRY_LEN
    }

    /// Whether there are no records and no errors.
    pub fn is_empty(&self) -> bool {
        self.records.index.is_empty() && self.errors.is_empty()
    }

    /// Bytes held by the regions.
    pub fn len_bytes(&self) -> usize {
        self.records.len_bytes() + self.times.len()
    }

    /// The timestamp of record `i` (unix nanoseconds, `i64::MIN` if none).
    pub fn time(&self, i: usize) -> Option<i64> {
        let b = self.times.get(i * 8..i * 8 + 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(i64::from_le_bytes(a))
    }

    /// The segment index of record `i`.
    pub fn segment_of(&self, i: usize) -> Option<usize> {
        let off = i * INDEX_ENTRY_LEN + SEGMENT_FIELD_OFFSET;
        let b = self.records.index.get(off..off + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    /// Appends a record whose payload and line are already at the ends of their regions
    /// (from `payload_start` and `line_start` on).
    pub(crate) fn commit_record(&mut self, r: &NewRecord) {
        let rec = &mut self.records;
        let mut e = [0u8; INDEX_ENTRY_LEN];
        e[..4].copy_from_slice(&[r.kind as u8, FLAG_HAS_RECORD, r.family, r.state]);
        put_u32(&mut e, 4, r.payload_start);
        put_u32(&mut e, 8, rec.payloads.len() - r.payload_start);
        put_u32(&mut e, 12, r.line_start);
        put_u32(&mut e, 16, rec.lines.len() - r.line_start);
        put_u32(&mut e, SEGMENT_FIELD_OFFSET, r.segment);
        e[24..].copy_from_slice(&r.cookie.to_le_bytes());
        rec.index.extend_from_slice(&e);
        self.times.extend_from_slice(&r.nanos.to_le_bytes());
        self.stats.records += 1;
    }
}

/// What the index entry of a new record says.
pub(crate) struct NewRecord {
    pub kind: RecordKind,
    pub family: u8,
    pub state: u8,
    pub cookie: u64,
    pub nanos: i64,
    pub segment: usize,
    pub payload_start: usize,
    pub line_start: usize,
}

/// Offsets saturate at `u32::MAX` (a batch is bounded far below 4 GiB).
fn put_u32(buf: &mut [u8], off: usize, v: usize) {
    let v = u32::try_from(v).unwrap_or(u32::MAX);
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
