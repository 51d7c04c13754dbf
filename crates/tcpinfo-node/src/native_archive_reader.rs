//! `NativeArchiveReader`: archive bytes in, batches of records out (see
//! `tcpinfo-archive-read`); conversions only.

use std::sync::Arc;

use napi_derive::napi;
use tcpinfo_archive_read::{csv, json_out, ArchiveBatch, ArchiveDecoder, ReaderOptions};
use tcpinfo_core::parse::tcp_info::AccEcnLayout;
use tcpinfo_core::RecordsPool;

use crate::native_archive_batch::{
    convert, errors_and_stats, NativeArchiveBatch, NativeArchiveRows,
};
use crate::native_records::PooledBuffer;

/// Buffers kept for reuse: the four regions of up to 16 batches.
///
/// Batches that reach JS come back only when V8 collects their `Buffer`s (it collects on
/// external memory growth, about every 64 MiB) and Node then releases them in an immediate
/// callback (`readArchive()` gives the event loop a turn per batch for that). A pool
/// smaller than such a wave frees most of it, and the next batches are written into fresh
/// pages: page faults and zeroing were a fifth of `readArchive()`'s CPU (perf,
/// docs/BENCHMARKS.md). Kept whole, the wave is reused; the memory is what the wave pinned
/// anyway. `nextCsv`/`nextJson` recycle at once and never fill it.
const POOL_BUFFERS: usize = 64;
/// Bytes kept for reuse: 128 MiB (V8 collects external memory every ~64 MiB of growth: a
/// wave of about eight 8 MiB batches, see [`POOL_BUFFERS`]).
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
    pub fn begin(&mut self, name: String) {
        self.inner.begin(name);
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

    /// Like `next()`, but the batch is turned into CSV rows (column indexes as
    /// `nativeCsvHeader`) here and its buffers reused at once: only the rows cross to JS,
    /// so memory stays bounded by a few batches whatever V8's collection pace.
    #[napi(catch_unwind)]
    pub fn next_csv(&mut self, flush: bool, columns: Vec<u32>) -> Option<NativeArchiveRows> {
        let cols: Vec<usize> = columns.into_iter().map(|c| c as usize).collect();
        self.rows(flush, |out, b| {
            let r = &b.records;
            csv::write_rows(out, &r.index, &r.payloads, &r.lines, &cols)
        })
    }

    /// Like `nextCsv()`, with decoded JSON lines (`tcpinfo csv --json`).
    #[napi(catch_unwind)]
    pub fn next_json(&mut self, flush: bool) -> Option<NativeArchiveRows> {
        let layout = AccEcnLayout::running_kernel();
        self.rows(flush, |out, b| json_out::write_json_rows(out, b, layout))
    }

    fn rows(
        &mut self,
        flush: bool,
        write: impl FnOnce(&mut Vec<u8>, &ArchiveBatch) -> usize,
    ) -> Option<NativeArchiveRows> {
        let mut b = self.inner.next_batch(flush)?;
        let mut out = self.pool.take(b.records.lines.len());
        let rows = write(&mut out, &b);
        let (errors, stats) = errors_and_stats(&mut b);
        self.inner.recycle(b);
        Some(NativeArchiveRows {
            text: PooledBuffer::new(out, Some(Arc::clone(&self.pool))),
            rows: u32::try_from(rows).unwrap_or(u32::MAX),
            errors,
            stats,
        })
    }
}
