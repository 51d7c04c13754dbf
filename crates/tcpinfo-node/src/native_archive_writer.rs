//! `NativeArchiveWriter`: the archive writer of `tcpinfo-archive`, fed one poll at a time.
//! Conversions and lifecycle only; compression and file I/O run on the writer's thread.

use std::sync::Arc;
use std::time::Duration;

use napi_derive::napi;
use tcpinfo_archive::{ArchiveWriter, Rotate, WriteBatch};

use crate::native_archive_options::{archive_error, to_writer_config, NativeArchiveWriterOptions};
use crate::native_archive_stats::{NativeArchiveErrorEvent, NativeArchiveStats};

/// An archive writer running on its own thread.
#[napi]
pub struct NativeArchiveWriter {
    inner: Arc<ArchiveWriter>,
}

fn millis(ms: f64) -> Duration {
    Duration::from_secs_f64((ms / 1000.0).clamp(0.0, 1e9))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> napi::Result<T> {
    napi::bindgen_prelude::spawn_blocking(f)
        .await
        .map_err(|e| napi::Error::from_reason(format!("[ERR_INTERNAL] archive task failed: {e}")))
}

#[napi]
impl NativeArchiveWriter {
    /// Starts the writer thread. Throws `ERR_CONFIG` for a bad option.
    #[napi(constructor, catch_unwind)]
    pub fn new(options: NativeArchiveWriterOptions) -> napi::Result<Self> {
        let cfg = to_writer_config(options)?;
        let inner = ArchiveWriter::new(&cfg).map_err(|e| archive_error(&e))?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Queues one poll (its index and lines regions, copied once, and the UUID tag of each
    /// namespace of its namespace table: `Batch.namespaces[i].uuidTag`). Never blocks.
    /// Returns whether there is room for the next poll; on `false`, await `waitForRoom`.
    #[napi(catch_unwind)]
    pub fn write(
        &self,
        index: &[u8],
        lines: &[u8],
        uuid_tags: Option<Vec<String>>,
    ) -> napi::Result<bool> {
        let batch = WriteBatch {
            index: index.to_vec(),
            lines: lines.to_vec(),
            uuid_tags: uuid_tags
                .unwrap_or_default()
                .into_iter()
                .map(String::into_boxed_str)
                .collect(),
        };
        self.inner.write(batch).map_err(|e| archive_error(&e))
    }

    /// Resolves once the queue is at most half full (`true`) or after `timeoutMs` (`false`).
    #[napi(catch_unwind)]
    pub async fn wait_for_room(&self, timeout_ms: f64) -> napi::Result<bool> {
        let w = Arc::clone(&self.inner);
        blocking(move || w.wait_for_room(millis(timeout_ms))).await
    }

    /// Finishes every open file created at least `ageMs` ago (after the queued polls).
    #[napi(catch_unwind)]
    pub fn rotate_older_than(&self, age_ms: f64) -> napi::Result<()> {
        self.inner
            .rotate(Rotate::OlderThan(millis(age_ms)))
            .map_err(|e| archive_error(&e))
    }

    /// Finishes the open files of these UUIDs; returns how many UUIDs were this writer's.
    #[napi(catch_unwind)]
    pub fn rotate_uuids(&self, uuids: Vec<String>) -> napi::Result<u32> {
        let ours: Vec<String> = uuids.into_iter().filter(|u| self.inner.owns(u)).collect();
        let n = u32::try_from(ours.len()).unwrap_or(u32::MAX);
        self.inner
            .rotate(Rotate::Uuids(ours))
            .map_err(|e| archive_error(&e))?;
        Ok(n)
    }

    /// Flushes every file after the queued polls; rejects with `ERR_ARCHIVE_TIMEOUT`.
    #[napi(catch_unwind)]
    pub async fn flush(&self, timeout_ms: f64) -> napi::Result<()> {
        let w = Arc::clone(&self.inner);
        blocking(move || w.flush(millis(timeout_ms)))
            .await?
            .map_err(|e| archive_error(&e))
    }

    /// The counters.
    #[napi]
    pub fn stats(&self) -> NativeArchiveStats {
        self.inner.stats().into()
    }

    /// File-system errors to log since the last call (one per cause per minute).
    #[napi]
    pub fn take_events(&self) -> Vec<NativeArchiveErrorEvent> {
        self.inner
            .take_events()
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// Writes what is queued and finishes every file within `deadlineMs`; idempotent.
    /// Rejects with `ERR_ARCHIVE_TIMEOUT` when files were still being finished.
    #[napi(catch_unwind)]
    pub async fn close(&self, deadline_ms: f64) -> napi::Result<()> {
        let w = Arc::clone(&self.inner);
        blocking(move || w.close(millis(deadline_ms)))
            .await?
            .map_err(|e| archive_error(&e))
    }
}
