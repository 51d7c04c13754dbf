//! The streaming archive decoder: stored bytes in (any chunking), batches of records out.
//!
//! Per source: stored bytes → (zstd frames, detected by magic, or plain) → text → (JSONL
//! lines, or raw netlink messages, detected by the first byte) → records in an
//! [`ArchiveBatch`]. Input is pushed with [`ArchiveDecoder::feed`] and decoded lazily by
//! [`ArchiveDecoder::next_batch`], so memory stays bounded by one input chunk, one
//! decompression chunk and one batch, however large the source. Design and error model:
//! `docs/internals/archive/design.md`.

use std::sync::Arc;

use tcpinfo_core::{RecordsPool, INDEX_ENTRY_LEN};
use zstd::stream::raw::Decoder as ZstdDecoder;

use crate::batch::{ArchiveBatch, Segment};
use crate::error::{ArchiveError, ErrorKind};
use crate::json::Scanned;
use crate::time::DayCache;

mod stream;
mod text;

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
    /// The last `Timestamp` date of the fast path (`fast_line`).
    days: DayCache,
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
            days: DayCache::default(),
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
