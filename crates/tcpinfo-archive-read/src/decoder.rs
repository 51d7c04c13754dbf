//! The streaming archive decoder: stored bytes in (any chunking), batches of records out.
//!
//! Per source: stored bytes → (zstd frames, detected by magic, or plain) → text → (JSONL
//! lines, or raw netlink messages, detected by the first byte) → records in an
//! [`ArchiveBatch`]. Input is pushed with [`ArchiveDecoder::feed`] and decoded lazily by
//! [`ArchiveDecoder::next_batch`], so memory stays bounded by one input chunk, one
//! decompression chunk and one batch, however large the source. Design and error model:
//! `docs/internals/archive/design.md`.

use std::sync::Arc;
use tcpinfo_core::parse::diag_msg::{parse_diag, InetDiagMsg, INET_DIAG_MSG_LEN};
use tcpinfo_core::parse::nlmsg::{NLMSG_DONE, NLMSG_HDR_LEN, SOCK_DIAG_BY_FAMILY};

use tcpinfo_core::{write_record_line, RecordKind, RecordsPool, GO_ZERO_TIME, INDEX_ENTRY_LEN};
use zstd::stream::raw::{Decoder as ZstdDecoder, Operation as _};

use crate::batch::{ArchiveBatch, NewRecord, Segment};
use crate::error::{ArchiveError, ErrorKind};
use crate::json::{scan_line, Scanned};
use crate::payload::append_payload;

/// Records per batch, by default.
pub const DEFAULT_MAX_BATCH_RECORDS: usize = 8192;
/// Bytes (payloads + lines) per batch, by default: 8 MiB.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 8 << 20;
/// Longest accepted line or netlink message, by default: 1 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;
/// Errors listed per batch (more are only counted), by default.
pub const DEFAULT_MAX_ERRORS_PER_BATCH: usize = 64;
/// Decompressed bytes produced per step: 256 KiB.
const TEXT_CHUNK: usize = 256 << 10;
/// `TCPDIAG_GETSOCK`, the legacy dump's reply type.
const TCPDIAG_GETSOCK: u16 = 18;
/// zstd frame magic, little-endian `0xFD2FB528`.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Bounds and error policy of a decoder.
#[derive(Debug, Clone, Copy)]
pub struct ReaderOptions {
    /// Records per batch.
    pub max_batch_records: usize,
    /// Payload + line bytes per batch.
    pub max_batch_bytes: usize,
    /// Longest line (or netlink message) accepted; longer ones are an error.
    pub max_line_bytes: usize,
    /// Errors listed per batch; the rest are counted in `stats.errors`.
    pub max_errors_per_batch: usize,
    /// Stop everything at the first error (`onError: 'throw'`); otherwise bad records are
    /// skipped and counted, and a source whose byte stream is damaged ends there.
    pub stop_on_error: bool,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        Self {
            max_batch_records: DEFAULT_MAX_BATCH_RECORDS,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_errors_per_batch: DEFAULT_MAX_ERRORS_PER_BATCH,
            stop_on_error: true,
        }
    }
}

enum Compression {
    Unknown,
    Plain,
    Zstd(Box<ZstdDecoder<'static>>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Content {
    Unknown,
    Jsonl,
    Netlink,
}

/// One source being read.
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent flags of one stream's state machine"
)]
struct Source {
    segment: Segment,
    /// Position of `segment` in the pending batch's list, once a record used it.
    segment_in_batch: Option<usize>,
    /// The next data record of the segment is its first.
    first_record: bool,
    compression: Compression,
    content: Content,
    input: Vec<u8>,
    input_pos: usize,
    /// Stored bytes consumed before `input[input_pos]`.
    consumed: u64,
    /// Stored offset where the current zstd frame starts; whether one is open.
    frame_start: u64,
    in_frame: bool,
    /// Decompressed text: `text[text_pos..text_end]` is pending; the rest is room that is
    /// written into directly (kept initialised, so it is zeroed only when it grows).
    text: Vec<u8>,
    text_end: usize,
    text_pos: usize,
    /// Decompressed offset of `text[0]`.
    text_offset: u64,
    line_no: u64,
    skipping_long_line: bool,
    ended: bool,
    finished: bool,
}

impl Source {
    fn new(name: String) -> Self {
        Self {
            segment: Segment {
                source: name,
                ..Segment::default()
            },
            segment_in_batch: None,
            first_record: true,
            compression: Compression::Unknown,
            content: Content::Unknown,
            input: Vec::new(),
            input_pos: 0,
            consumed: 0,
            frame_start: 0,
            in_frame: false,
            text: Vec::new(),
            text_end: 0,
            text_pos: 0,
            text_offset: 0,
            line_no: 0,
            skipping_long_line: false,
            ended: false,
            finished: false,
        }
    }
}

/// Decodes archive sources, one after the other, into batches.
pub struct ArchiveDecoder {
    opts: ReaderOptions,
    /// Where batch buffers come from and go back to (see [`Self::with_pool`]).
    pool: Option<Arc<RecordsPool>>,
    source: Option<Source>,
    batch: ArchiveBatch,
    scanned: Scanned,
    stopped: bool,
}

enum Step {
    /// The batch is full (or reading stopped): hand it out.
    Yield,
    /// More text is needed.
    NeedMore,
}

impl ArchiveDecoder {
    /// A decoder with the given bounds and policy.
    pub fn new(opts: ReaderOptions) -> Self {
        Self {
            opts,
            pool: None,
            source: None,
            batch: ArchiveBatch::default(),
            scanned: Scanned::default(),
            stopped: false,
        }
    }

    /// Takes batch buffers from `pool` (and a consumer gives them back there), so a long read
    /// neither reallocates nor faults in fresh pages for every batch.
    #[must_use]
    pub fn with_pool(mut self, pool: Arc<RecordsPool>) -> Self {
        self.pool = Some(pool);
        self.batch = self.fresh_batch();
        self
    }

    /// Gives a consumed batch's buffers back to the pool (if any).
    pub fn recycle(&self, batch: ArchiveBatch) {
        if let Some(pool) = &self.pool {
            pool.recycle_records(batch.records);
            pool.recycle(batch.times);
        }
    }

    fn fresh_batch(&self) -> ArchiveBatch {
        let Some(pool) = &self.pool else {
            return ArchiveBatch::default();
        };
        let (n, bytes) = (self.opts.max_batch_records, self.opts.max_batch_bytes);
        let (records, _) = pool.take_records([n * INDEX_ENTRY_LEN, bytes * 2 / 5, bytes * 3 / 5]);
        ArchiveBatch {
            records,
            times: pool.take(n * 8),
            ..ArchiveBatch::default()
        }
    }

    /// Starts a new source named `name`; a source still open is ended first (its
    /// unfinished tail, if any, reported when decoded).
    pub fn begin(&mut self, name: impl Into<String>) {
        if let Some(s) = self.source.as_mut() {
            s.ended = true;
            self.drain_source();
        }
        self.source = Some(Source::new(name.into()));
    }

    /// Appends stored bytes of the current source. Ignored after a stop or with no source.
    pub fn feed(&mut self, chunk: &[u8]) {
        let Some(s) = self.source.as_mut() else {
            return;
        };
        if self.stopped || s.finished {
            return;
        }
        if s.input_pos > 0 {
            s.input.drain(..s.input_pos);
            s.input_pos = 0;
        }
        s.input.extend_from_slice(chunk);
    }

    /// Marks the end of the current source's input.
    pub fn end(&mut self) {
        if let Some(s) = self.source.as_mut() {
            s.ended = true;
        }
    }

    /// Whether reading stopped at an error (`stop_on_error`).
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Decodes what it can and returns a batch when one is full, when reading stopped at an
    /// error, or — with `flush` — whatever is pending once the input is used up. `None`
    /// means more input (or a flush) is needed.
    pub fn next_batch(&mut self, flush: bool) -> Option<ArchiveBatch> {
        let full = self.drain_source();
        if full || ((self.stopped || flush) && !self.batch.is_empty()) {
            return Some(self.take_batch());
        }
        None
    }

    fn take_batch(&mut self) -> ArchiveBatch {
        if let Some(s) = self.source.as_mut() {
            s.segment_in_batch = None;
        }
        let fresh = self.fresh_batch();
        std::mem::replace(&mut self.batch, fresh)
    }

    fn full(&self) -> bool {
        self.batch.len() >= self.opts.max_batch_records
            || self.batch.records.payloads.len() + self.batch.records.lines.len()
                >= self.opts.max_batch_bytes
    }

    /// Decodes until the batch is full (true) or the input is used up (false).
    fn drain_source(&mut self) -> bool {
        loop {
            if self.stopped {
                return false;
            }
            if self.full() {
                return true;
            }
            let Some(s) = self.source.as_ref() else {
                return false;
            };
            if s.finished {
                return false;
            }
            if let Step::Yield = self.process_text() {
                continue;
            }
            if !self.fill_text() {
                let ended = self.source.as_ref().is_some_and(|s| s.ended);
                if ended {
                    self.finish_source();
                }
                return self.full();
            }
        }
    }

    /// Moves stored input into `text` (decompressing). False when no progress is possible.
    fn fill_text(&mut self) -> bool {
        let Some(s) = self.source.as_mut() else {
            return false;
        };
        if s.finished {
            return false;
        }
        if s.text_pos > 0 {
            s.text.copy_within(s.text_pos..s.text_end, 0);
            s.text_end -= s.text_pos;
            s.text_offset += s.text_pos as u64;
            s.text_pos = 0;
        }
        if s.text.len() - s.text_end < TEXT_CHUNK {
            s.text.resize(s.text_end + TEXT_CHUNK, 0);
        }
        let avail = &s.input[s.input_pos..];
        if let Compression::Unknown = s.compression {
            if avail.len() < ZSTD_MAGIC.len() && !s.ended {
                return false;
            }
            let skippable =
                avail.len() >= 4 && avail[0] & 0xF0 == 0x50 && avail[1..4] == [0x2A, 0x4D, 0x18];
            s.compression = if avail.starts_with(&ZSTD_MAGIC) || skippable {
                match ZstdDecoder::new() {
                    Ok(z) => Compression::Zstd(Box::new(z)),
                    Err(e) => {
                        self.fail(
                            ErrorKind::Compression,
                            None,
                            0,
                            true,
                            format!("cannot start a zstd decoder: {e}"),
                        );
                        return false;
                    }
                }
            } else {
                Compression::Plain
            };
        }
        if avail.is_empty() {
            return false;
        }
        match &mut s.compression {
            Compression::Plain | Compression::Unknown => {
                let n = avail.len().min(s.text.len() - s.text_end);
                s.text[s.text_end..s.text_end + n].copy_from_slice(&avail[..n]);
                s.text_end += n;
                s.input_pos += n;
                s.consumed += n as u64;
                self.batch.stats.bytes_in += n as u64;
                true
            }
            Compression::Zstd(z) => {
                let r = z.run_on_buffers(avail, &mut s.text[s.text_end..]);
                match r {
                    Ok(st) => {
                        s.text_end += st.bytes_written;
                        s.input_pos += st.bytes_read;
                        s.consumed += st.bytes_read as u64;
                        self.batch.stats.bytes_in += st.bytes_read as u64;
                        if st.bytes_read > 0 || st.bytes_written > 0 {
                            if st.remaining == 0 {
                                s.in_frame = false;
                                s.frame_start = s.consumed;
                            } else {
                                s.in_frame = true;
                            }
                        }
                        st.bytes_read > 0 || st.bytes_written > 0
                    }
                    Err(e) => {
                        let (at, msg) = (
                            s.frame_start,
                            format!("the zstd frame starting here is corrupt: {e}"),
                        );
                        self.fail(ErrorKind::Compression, None, at, true, msg);
                        false
                    }
                }
            }
        }
    }

    /// The end of a source's input: report an unfinished frame or line, then close it.
    fn finish_source(&mut self) {
        let Some(s) = self.source.as_mut() else {
            return;
        };
        if s.finished {
            return;
        }
        let tail = s.text_end - s.text_pos;
        if s.in_frame {
            let (at, msg) = (
                s.frame_start,
                format!("input ends inside the zstd frame starting here (a writer still open or crashed, or a cut file); {tail} bytes of an unfinished line dropped"),
            );
            self.fail(ErrorKind::Truncated, None, at, true, msg);
        } else if tail > 0 && !s.skipping_long_line {
            match s.content {
                Content::Jsonl => {
                    // A last line without '\n' is still a line.
                    let line = s.text[s.text_pos..s.text_end].to_vec();
                    let (no, off) = (s.line_no + 1, s.text_offset + s.text_pos as u64);
                    s.line_no = no;
                    s.text_pos = s.text_end;
                    self.line(&line, no, off);
                }
                Content::Netlink => {
                    let (no, off) = (s.line_no + 1, s.text_offset + s.text_pos as u64);
                    self.fail(
                        ErrorKind::Netlink,
                        Some(no),
                        off,
                        false,
                        format!("{tail} trailing bytes are not a whole netlink message"),
                    );
                }
                Content::Unknown => {
                    let first = s.text[s.text_pos..s.text_end]
                        .iter()
                        .any(|c| !c.is_ascii_whitespace());
                    if first {
                        let off = s.text_offset + s.text_pos as u64;
                        self.fail(
                            ErrorKind::Foreign,
                            None,
                            off,
                            false,
                            "neither ArchivalRecord JSON lines nor a netlink dump".into(),
                        );
                    }
                }
            }
        }
        if let Some(s) = self.source.as_mut() {
            s.finished = true;
            s.input = Vec::new();
            s.input_pos = 0;
            s.text = Vec::new();
            s.text_pos = 0;
            s.text_end = 0;
            self.batch.stats.sources_done += 1;
        }
    }

    /// Processes complete lines or messages in `text`.
    fn process_text(&mut self) -> Step {
        loop {
            if self.stopped || self.full() {
                return Step::Yield;
            }
            let Some(s) = self.source.as_mut() else {
                return Step::NeedMore;
            };
            if s.finished {
                return Step::NeedMore;
            }
            match s.content {
                Content::Unknown => {
                    let rest = &s.text[s.text_pos..s.text_end];
                    let Some(first) = rest.iter().position(|c| !c.is_ascii_whitespace()) else {
                        return Step::NeedMore;
                    };
                    if rest[first] == b'{' {
                        s.content = Content::Jsonl;
                    } else if rest.len() >= NLMSG_HDR_LEN {
                        if looks_like_nlmsg(rest) {
                            s.content = Content::Netlink;
                        } else {
                            let off = s.text_offset + (s.text_pos + first) as u64;
                            self.fail(
                                ErrorKind::Foreign,
                                None,
                                off,
                                false,
                                "neither ArchivalRecord JSON lines nor a netlink dump".into(),
                            );
                            return Step::Yield;
                        }
                    } else {
                        return Step::NeedMore;
                    }
                }
                Content::Jsonl => {
                    if let Step::NeedMore = self.next_line() {
                        return Step::NeedMore;
                    }
                }
                Content::Netlink => {
                    if let Step::NeedMore = self.next_message() {
                        return Step::NeedMore;
                    }
                }
            }
        }
    }

    fn next_line(&mut self) -> Step {
        let max_line = self.opts.max_line_bytes;
        let Some(s) = self.source.as_mut() else {
            return Step::NeedMore;
        };
        let rest = &s.text[s.text_pos..s.text_end];
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            if rest.len() > max_line {
                let (no, off) = (s.line_no + 1, s.text_offset + s.text_pos as u64);
                s.line_no = no;
                let skipping = s.skipping_long_line;
                s.skipping_long_line = true;
                s.text_pos = s.text_end;
                if !skipping {
                    self.record_error(
                        ErrorKind::LineTooLong,
                        no,
                        off,
                        format!("line longer than {max_line} bytes"),
                    );
                }
            }
            return Step::NeedMore;
        };
        let start = s.text_pos;
        s.text_pos += nl + 1;
        if s.skipping_long_line {
            s.skipping_long_line = false;
            return Step::Yield;
        }
        s.line_no += 1;
        let (no, off) = (s.line_no, s.text_offset + start as u64);
        let mut end = start + nl;
        if end > start && s.text[end - 1] == b'\r' {
            end -= 1;
        }
        if nl + 1 > max_line {
            self.record_error(
                ErrorKind::LineTooLong,
                no,
                off,
                format!("line longer than {max_line} bytes"),
            );
            return Step::Yield;
        }
        // Lines are moved out of `text` to free the borrow; swap in a scratch buffer.
        let text = std::mem::take(&mut s.text);
        self.line(&text[start..end], no, off);
        if let Some(s) = self.source.as_mut() {
            s.text = text;
        }
        Step::Yield
    }

    fn next_message(&mut self) -> Step {
        let max = self.opts.max_line_bytes;
        let Some(s) = self.source.as_mut() else {
            return Step::NeedMore;
        };
        let rest = &s.text[s.text_pos..s.text_end];
        if rest.len() < NLMSG_HDR_LEN {
            return Step::NeedMore;
        }
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let ty = u16::from_ne_bytes([rest[4], rest[5]]);
        let (no, off) = (s.line_no + 1, s.text_offset + s.text_pos as u64);
        if !(NLMSG_HDR_LEN..=max).contains(&len) {
            self.fail(
                ErrorKind::Netlink,
                Some(no),
                off,
                false,
                format!("netlink message length {len} is impossible"),
            );
            return Step::Yield;
        }
        if rest.len() < len {
            return Step::NeedMore;
        }
        let start = s.text_pos;
        s.text_pos += len;
        s.line_no = no;
        match ty {
            NLMSG_DONE => Step::Yield,
            SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK => {
                let text = std::mem::take(&mut s.text);
                self.netlink_record(&text[start + NLMSG_HDR_LEN..start + len], no, off);
                if let Some(s) = self.source.as_mut() {
                    s.text = text;
                }
                Step::Yield
            }
            _ => {
                self.record_error(
                    ErrorKind::Netlink,
                    no,
                    off,
                    format!("netlink message type {ty} is not an inet_diag reply"),
                );
                Step::Yield
            }
        }
    }

    /// One JSONL line (without `\n`): a header, a record, or an error.
    fn line(&mut self, line: &[u8], no: u64, off: u64) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.batch.stats.lines += 1;
        if let Err(e) = scan_line(line, &mut self.scanned) {
            self.record_error(
                ErrorKind::Json,
                no,
                off + e.at as u64,
                format!("not an ArchivalRecord: {}", e.what),
            );
            return;
        }
        let Some(s) = self.source.as_mut() else {
            return;
        };
        let header = self.scanned.metadata.take().map(|m| {
            s.segment = Segment {
                source: s.segment.source.clone(),
                uuid: m.uuid,
                sequence: m.sequence,
                start_time: m.start_time,
            };
            s.segment_in_batch = None;
            s.first_record = true;
        });
        if header.is_some() {
            self.batch.stats.headers += 1;
        }
        let Some(raw_idm) = self.scanned.raw_idm else {
            if header.is_none() {
                self.record_error(
                    ErrorKind::Record,
                    no,
                    off,
                    "record has neither Metadata nor RawIDM".into(),
                );
            }
            return;
        };
        let payload_start = self.batch.records.payloads.len();
        if let Err(what) = append_payload(
            &mut self.batch.records.payloads,
            line,
            &self.scanned,
            raw_idm,
        ) {
            self.record_error(ErrorKind::Record, no, off, what.into());
            return;
        }
        let nanos = self.scanned.stamp.map_or(GO_ZERO_TIME, |t| t.nanos);
        let line_start = self.batch.records.lines.len();
        self.batch.records.lines.extend_from_slice(line);
        self.batch.records.lines.push(b'\n');
        self.commit(payload_start, line_start, nanos);
    }

    /// One raw netlink reply payload.
    fn netlink_record(&mut self, payload: &[u8], no: u64, off: u64) {
        self.batch.stats.lines += 1;
        let Ok((msg, attrs)) = parse_diag(payload) else {
            self.record_error(
                ErrorKind::Record,
                no,
                off,
                "malformed inet_diag reply".into(),
            );
            return;
        };
        let rec = &mut self.batch.records;
        let payload_start = rec.payloads.len();
        rec.payloads.extend_from_slice(payload);
        let line_start = rec.lines.len();
        write_record_line(&mut rec.lines, GO_ZERO_TIME, &msg, &attrs);
        self.commit(payload_start, line_start, GO_ZERO_TIME);
    }

    fn commit(&mut self, payload_start: usize, line_start: usize, nanos: i64) {
        let Some(s) = self.source.as_mut() else {
            return;
        };
        let segment = if let Some(i) = s.segment_in_batch {
            i
        } else {
            self.batch.segments.push(s.segment.clone());
            let i = self.batch.segments.len() - 1;
            s.segment_in_batch = Some(i);
            i
        };
        let kind = if s.first_record && s.segment.sequence == Some(0) {
            RecordKind::Opened
        } else {
            RecordKind::Changed
        };
        s.first_record = false;
        let idm = &self.batch.records.payloads[payload_start..payload_start + INET_DIAG_MSG_LEN];
        let (family, state, cookie) = match InetDiagMsg::new(idm) {
            Ok(m) => (m.family(), m.state(), m.cookie()),
            Err(_) => (0, 0, 0),
        };
        self.batch.commit_record(&NewRecord {
            kind,
            family,
            state,
            cookie,
            nanos,
            segment,
            payload_start,
            line_start,
        });
    }

    /// A bad record: listed, counted, skipped (or everything stops).
    fn record_error(&mut self, kind: ErrorKind, line: u64, off: u64, message: String) {
        self.push_error(kind, Some(line), off, false, message);
        if !self.opts.stop_on_error {
            self.batch.stats.skipped += 1;
        }
    }

    /// A damaged byte stream: the rest of the source is unreadable.
    fn fail(
        &mut self,
        kind: ErrorKind,
        line: Option<u64>,
        off: u64,
        compressed: bool,
        message: String,
    ) {
        self.push_error(kind, line, off, compressed, message);
        if let Some(s) = self.source.as_mut() {
            s.finished = true;
            s.input = Vec::new();
            s.input_pos = 0;
            s.text = Vec::new();
            s.text_pos = 0;
            s.text_end = 0;
            self.batch.stats.sources_done += 1;
        }
    }

    fn push_error(
        &mut self,
        kind: ErrorKind,
        line: Option<u64>,
        byte_offset: u64,
        compressed_offset: bool,
        message: String,
    ) {
        let source = self
            .source
            .as_ref()
            .map(|s| s.segment.source.clone())
            .unwrap_or_default();
        self.batch.stats.errors += 1;
        if self.batch.errors.len() < self.opts.max_errors_per_batch {
            self.batch.errors.push(ArchiveError {
                kind,
                source,
                line,
                byte_offset,
                compressed_offset,
                message,
            });
        }
        if self.opts.stop_on_error {
            self.stopped = true;
        }
    }
}

/// Whether `b` starts with a plausible `nlmsghdr` of an `inet_diag` reply.
fn looks_like_nlmsg(b: &[u8]) -> bool {
    let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let ty = u16::from_ne_bytes([b[4], b[5]]);
    (ty == SOCK_DIAG_BY_FAMILY || ty == TCPDIAG_GETSOCK) && len >= NLMSG_HDR_LEN + INET_DIAG_MSG_LEN
}
