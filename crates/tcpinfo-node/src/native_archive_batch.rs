//! The objects a `NativeArchiveReader` hands to JS: a batch of records (four pooled
//! `Buffer`s, sources, errors, counters) or a chunk of CSV rows; conversions only.

use std::sync::Arc;

use napi::bindgen_prelude::BigInt;
use napi_derive::napi;
use tcpinfo_archive_read::{ArchiveBatch, ArchiveError, ReadStats};
use tcpinfo_core::RecordsPool;

use crate::native_records::PooledBuffer;

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

/// A chunk of text rows made from one batch (`NativeArchiveReader.nextCsv`/`nextJson`),
/// with the batch's errors and counters.
#[napi(object, object_from_js = false)]
pub struct NativeArchiveRows {
    /// The rows, each with its `\n`; the memory returns to the reader's pool when V8
    /// collects the `Buffer`.
    #[napi(ts_type = "Buffer")]
    pub text: PooledBuffer,
    /// Rows written.
    pub rows: u32,
    /// Errors met.
    pub errors: Vec<NativeArchiveError>,
    /// As `NativeArchiveBatch.stats`.
    pub stats: Vec<f64>,
}

#[expect(
    clippy::cast_precision_loss,
    reason = "counters and offsets stay below 2^53"
)]
fn error(e: ArchiveError) -> NativeArchiveError {
    NativeArchiveError {
        code: e.code().into(),
        kind: e.kind.name().into(),
        line: e.line.map(|v| v as f64),
        byte_offset: e.byte_offset as f64,
        compressed_offset: e.compressed_offset,
        message: e.to_string(),
        source: e.source,
    }
}

#[expect(clippy::cast_precision_loss, reason = "counters stay below 2^53")]
fn stats(s: ReadStats) -> Vec<f64> {
    [
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
    .to_vec()
}

/// Takes a batch's errors and counters out for JS.
pub fn errors_and_stats(b: &mut ArchiveBatch) -> (Vec<NativeArchiveError>, Vec<f64>) {
    (
        std::mem::take(&mut b.errors)
            .into_iter()
            .map(error)
            .collect(),
        stats(b.stats),
    )
}

/// A batch for JS; `pool` gets its buffers back once V8 is done with them.
#[expect(
    clippy::cast_precision_loss,
    reason = "sequence numbers stay below 2^53"
)]
pub fn convert(mut b: ArchiveBatch, pool: &Arc<RecordsPool>) -> NativeArchiveBatch {
    let (errors, stats) = errors_and_stats(&mut b);
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
        errors,
        stats,
    }
}
