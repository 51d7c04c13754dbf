//! `NativeArchiveReader`: archive bytes in, batches of records out (see
//! `tcpinfo-archive-read`); conversions only.

use std::sync::Arc;

use napi::bindgen_prelude::BigInt;
use napi_derive::napi;
use tcpinfo_archive_read::{ArchiveBatch, ArchiveDecoder, ReaderOptions};
use tcpinfo_core::RecordsPool;

use crate::native_records::PooledBuffer;

/// Buffers kept for reuse: four regions of a few batches in flight.
const POOL_BUFFERS: usize = 16;
/// Bytes kept for reuse: 128 MiB.
const POOL_BYTES: usize = 128 << 20;

/// Reader bounds and error policy; every field optional (defaults of `ReaderOptions`).
#[napi(object)]
#[derive(Default)]
pub struct NativeArchiveReaderOptions {
    /// Records per batch (default 8192).
    pub max_batch_records: Option<u32>,
    /// Payload + line bytes per batch (default 8 MiB).
    pub max_batch_bytes: Option<u32>,
    /// Longest accepted line (default 1 MiB).
    pub max_line_bytes: Option<u32>,
    /// Stop at the first error (default true); false skips bad records and counts them.
    pub stop_on_error: Option<bool>,
}

/// The source of a run of records (file and header metadata).
#[napi(object)]
pub struct NativeArchiveSegment {
    /// File path or `-`.
    pub source: String,
    /// `Metadata.UUID`.
    pub uuid: Option<String>,
    /// `Metadata.Sequence`.
    pub sequence: Option<f64>,
    /// `Metadata.StartTime`, unix ns.
    pub start_time_ns: Option<BigInt>,
}

/// One reading error.
#[napi(object)]
pub struct NativeArchiveError {
    /// Always `ERR_ARCHIVE`.
    pub code: String,
    /// `truncated`, `compression`, `json`, `record`, `line-too-long`, `netlink`, `foreign`.
    pub kind: String,
    /// File path or `-`.
    pub source: String,
    /// 1-based line (or netlink message) number, when known.
    pub line: Option<f64>,
    /// Byte offset (decompressed for line errors, stored for compression errors).
    pub byte_offset: f64,
    /// Whether `byteOffset` counts stored (compressed) bytes.
    pub compressed_offset: bool,
    /// One-line explanation.
    pub message: String,
}

/// Records of one or more sources in the poller's batch layout, plus times and sources.
#[napi(object, object_from_js = false)]
pub struct NativeArchiveBatch {
    /// 32-byte index entries (bytes 20..24: segment). Each region's memory returns to the
    /// reader's pool when V8 collects its `Buffer`.
    #[napi(ts_type = "Buffer")]
    pub index: PooledBuffer,
    /// Netlink payloads.
    #[napi(ts_type = "Buffer")]
    pub payloads: PooledBuffer,
    /// ArchivalRecord lines.
    #[napi(ts_type = "Buffer")]
    pub lines: PooledBuffer,
    /// One little-endian i64 per record: unix ns (`-2^63` when none).
    #[napi(ts_type = "Buffer")]
    pub times: PooledBuffer,
    /// Sources of the records.
    pub segments: Vec<NativeArchiveSegment>,
    /// Errors met.
    pub errors: Vec<NativeArchiveError>,
    /// lines, headers, records, errors, skipped, bytesIn, bytesText, sourcesDone.
    pub stats: Vec<f64>,
}

#[expect(
    clippy::cast_precision_loss,
    reason = "counters and offsets stay below 2^53"
)]
fn convert(b: ArchiveBatch, pool: &Arc<RecordsPool>) -> NativeArchiveBatch {
    let s = b.stats;
    let pooled = |v: Vec<u8>| PooledBuffer::new(v, Some(Arc::clone(pool)));
    NativeArchiveBatch {
        index: pooled(b.records.index),
        payloads: pooled(b.records.payloads),
        lines: pooled(b.records.lines),
        times: pooled(b.times),
        segments: b
            .segments
            .into_iter()
            .map(|g| NativeArchiveSegment {
                source: g.source,
                uuid: g.uuid,
                sequence: g.sequence.map(|v| v as f64),
                start_time_ns: g.start_time.map(BigInt::from),
            })
            .collect(),
        errors: b
            .errors
            .into_iter()
            .map(|e| NativeArchiveError {
                code: e.code().into(),
                kind: e.kind.name().into(),
                line: e.line.map(|v| v as f64),
                byte_offset: e.byte_offset as f64,
                compressed_offset: e.compressed_offset,
                message: e.to_string(),
                source: e.source,
            })
            .collect(),
        stats: [
            s.lines,
            s.headers,
            s.records,
            s.errors,
            s.skipped,
            s.bytes_in,
            s.bytes_text,
            s.sources_done,
        ]
        .map(|v| v as f64)
        .to_vec(),
    }
}

/// A streaming archive decoder. Feed each source's bytes between `begin()` and `end()`;
/// `next()` returns a batch when one is ready.
#[napi]
pub struct NativeArchiveReader {
    inner: ArchiveDecoder,
    pool: Arc<RecordsPool>,
}

#[napi]
impl NativeArchiveReader {
    /// A reader with the given bounds and policy.
    #[napi(constructor)]
    pub fn new(options: Option<NativeArchiveReaderOptions>) -> Self {
        let o = options.unwrap_or_default();
        let d = ReaderOptions::default();
        let size = |v: Option<u32>, def: usize| v.map_or(def, |v| (v as usize).max(1));
        let pool = Arc::new(RecordsPool::new(POOL_BUFFERS, POOL_BYTES));
        Self {
            pool: Arc::clone(&pool),
            inner: ArchiveDecoder::new(ReaderOptions {
                max_batch_records: size(o.max_batch_records, d.max_batch_records),
                max_batch_bytes: size(o.max_batch_bytes, d.max_batch_bytes),
                max_line_bytes: size(o.max_line_bytes, d.max_line_bytes),
                stop_on_error: o.stop_on_error.unwrap_or(true),
                ..d
            })
            .with_pool(pool),
        }
    }

    /// Starts the next source.
    #[napi]
    #[expect(
        clippy::needless_pass_by_value,
        reason = "napi hands over owned JS strings"
    )]
    pub fn begin(&mut self, name: String) {
        self.inner.begin(&name);
    }

    /// Appends stored bytes of the current source (copied; the chunk may be reused).
    #[napi]
    pub fn feed(&mut self, chunk: &[u8]) {
        self.inner.feed(chunk);
    }

    /// Ends the current source.
    #[napi]
    pub fn end(&mut self) {
        self.inner.end();
    }

    /// The next batch if one is full (or, with `flush`, whatever is pending); else `null`.
    #[napi(catch_unwind)]
    pub fn next(&mut self, flush: bool) -> Option<NativeArchiveBatch> {
        self.inner.next_batch(flush).map(|b| convert(b, &self.pool))
    }
}
