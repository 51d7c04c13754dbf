//! One open archive file: created with `O_EXCL` (never truncating or overwriting),
//! its not-yet-flushed lines, and the flush that turns them into one complete zstd frame.
//!
//! A flush writes the frame with `pwrite` at the end of the last good frame. If the
//! write fails part-way (disk full), the file is cut back to that length, so it stays a
//! sequence of complete frames, and the lines stay pending for the next try.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use zstd::bulk::Compressor;

/// Pending bytes of one file that trigger a flush before the interval ends.
pub(crate) const FLUSH_AT_BYTES: usize = 1 << 20;
/// Pending buffer capacity kept after a flush; a larger one is freed, so an idle open
/// file holds no buffer.
const KEEP_CAPACITY: usize = 16 << 10;

/// An open archive file.
pub(crate) struct ArchiveFile {
    file: File,
    pub path: PathBuf,
    /// Bytes of complete frames in the file.
    good_len: u64,
    /// Lines (header included) not yet written.
    pub pending: Vec<u8>,
    /// Record lines in `pending` (the header is not a record).
    pub pending_records: u64,
    /// When the file was created (rotation age counts from here).
    pub opened: Instant,
    /// When a line was last appended.
    pub last_write: Instant,
}

/// What one successful flush wrote.
pub(crate) struct Flushed {
    pub compressed: u64,
    pub uncompressed: u64,
    pub records: u64,
}

impl ArchiveFile {
    /// Creates `path`, failing with `EEXIST` if it exists.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)?;
        let now = Instant::now();
        Ok(Self {
            file,
            path: path.to_owned(),
            good_len: 0,
            pending: Vec::new(),
            pending_records: 0,
            opened: now,
            last_write: now,
        })
    }

    /// Compresses the pending lines into one frame and appends it. On error the file is
    /// cut back to its last complete frame and the lines stay pending.
    pub fn flush(
        &mut self,
        cctx: &mut Compressor<'_>,
        scratch: &mut Vec<u8>,
    ) -> io::Result<Flushed> {
        if self.pending.is_empty() {
            return Ok(Flushed {
                compressed: 0,
                uncompressed: 0,
                records: 0,
            });
        }
        scratch.clear();
        scratch.reserve(zstd::zstd_safe::compress_bound(self.pending.len()));
        cctx.compress_to_buffer(&self.pending, scratch)?;
        if let Err(e) = self.file.write_all_at(scratch, self.good_len) {
            // Best effort: if even the cut fails, the next successful write overwrites
            // the partial frame from `good_len` on, which fixes the file just the same.
            let _best_effort = self.file.set_len(self.good_len);
            return Err(e);
        }
        self.good_len += scratch.len() as u64;
        let done = Flushed {
            compressed: scratch.len() as u64,
            uncompressed: self.pending.len() as u64,
            records: self.pending_records,
        };
        self.pending.clear();
        if self.pending.capacity() > KEEP_CAPACITY {
            self.pending = Vec::new();
        }
        self.pending_records = 0;
        Ok(done)
    }

    /// Bytes of complete frames written so far.
    pub fn written(&self) -> u64 {
        self.good_len
    }
}
