//! One archive file: its name, its not-yet-written lines, and the flush that turns them
//! into one complete zstd frame.
//!
//! The file is created (`O_CREAT|O_EXCL`: never truncating or overwriting anything) only
//! when its first frame is written, so an archive file on disk always holds at least one
//! complete frame: `zstd -dc` and `zstd -t` succeed on every file at any moment. A frame
//! is written with `pwrite` at the end of the last good frame; if the write fails part
//! way (disk full), the file is cut back to that length (or, if it held nothing yet,
//! removed: it is ours and empty) and the lines stay pending for the next try.
//!
//! A file's pending lines are in its own buffer, or, while they are one line and the file
//! holds no buffer (most files, when changes are spread out), in the writer's shared
//! arena of pending lines (a span of it): no allocation and no free per flush for such
//! files, and their lines lie side by side. The arena is emptied after every flush of all
//! files; a span that must outlive it (a failed write) is first copied to the file's own
//! buffer (`spill`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::frame::FrameCompressor;
use crate::path::{file_path, MAX_SEQUENCE};

/// Pending bytes of one file that trigger a flush before the interval ends.
pub(crate) const FLUSH_AT_BYTES: usize = 1 << 20;
/// Pending buffer capacity kept after a flush of a busy file; a larger one is freed.
const KEEP_CAPACITY: usize = 16 << 10;
/// Records a flush must have held for the file to keep its buffer: a file written about
/// once per flush (most of them, when changes are spread out) frees it, so its ~1 KiB
/// is not held for ever by each of up to `max_open_files` open files.
const KEEP_AFTER_RECORDS: u64 = 2;

/// An archive file of one connection.
pub(crate) struct ArchiveFile {
    /// `None` until the first frame is written.
    file: Option<File>,
    pub path: PathBuf,
    dir: PathBuf,
    uuid: Box<str>,
    seq: u32,
    start: Box<[u8]>,
    /// Bytes of complete frames in the file.
    good_len: u64,
    /// Lines (the header first, until the first frame) not yet written, unless they are
    /// in the arena (`span_len > 0`; then this is empty).
    pending: Vec<u8>,
    /// Where the pending line is in the arena (when `span_len > 0`).
    span_start: u32,
    span_len: u32,
    /// Record lines in `pending` (the header is not a record).
    pub pending_records: u64,
    /// When the file was started (rotation age counts from here).
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
    /// A file `<dir>/<uuid>.<seq>.jsonl.zst` with its header pending; nothing is created yet.
    pub fn new(dir: &Path, uuid: &str, seq: u32, start: &[u8], now: Instant) -> Self {
        let mut f = Self {
            file: None,
            path: file_path(dir, uuid, seq),
            dir: dir.to_owned(),
            uuid: uuid.into(),
            seq,
            start: start.into(),
            good_len: 0,
            pending: Vec::new(),
            span_start: 0,
            span_len: 0,
            pending_records: 0,
            opened: now,
            last_write: now,
        };
        write_header(&mut f.pending, uuid, seq, start);
        f
    }

    /// Creates the file at the first free sequence number from `seq` on; a taken name
    /// (another writer, a file the start-up scan missed) moves to the next number and
    /// rewrites the pending header.
    fn create(&mut self) -> io::Result<&File> {
        if self.file.is_none() {
            let mut made_dir = false;
            loop {
                let opened = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .custom_flags(libc::O_CLOEXEC)
                    .open(&self.path);
                match opened {
                    Ok(f) => {
                        self.file = Some(f);
                        break;
                    }
                    Err(e)
                        if e.kind() == io::ErrorKind::AlreadyExists && self.seq < MAX_SEQUENCE =>
                    {
                        self.renumber(self.seq + 1);
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound && !made_dir => {
                        // The date directory went away: make it again, once.
                        std::fs::create_dir_all(&self.dir)?;
                        made_dir = true;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        self.file
            .as_ref()
            .ok_or_else(|| io::Error::other("archive file not created"))
    }

    /// Bytes of pending lines (the header included).
    pub fn pending_len(&self) -> usize {
        self.pending.len() + self.span_len as usize
    }

    /// The pending lines, from the file's buffer or from `arena`.
    pub fn pending_in<'a>(&'a self, arena: &'a [u8]) -> &'a [u8] {
        if self.span_len == 0 {
            &self.pending
        } else {
            let at = self.span_start as usize;
            &arena[at..at + self.span_len as usize]
        }
    }

    /// Appends one line to the pending lines: to the shared `arena` if it is the only one
    /// and the file holds no buffer, else to the file's buffer (the arena's line moved
    /// there first).
    pub fn append(&mut self, arena: &mut Vec<u8>, line: &[u8]) {
        if self.span_len == 0 && self.pending.capacity() == 0 {
            let start = u32::try_from(arena.len());
            let len = u32::try_from(line.len());
            if let (Ok(start), Ok(len)) = (start, len) {
                if len > 0 && start.checked_add(len).is_some() {
                    arena.extend_from_slice(line);
                    self.span_start = start;
                    self.span_len = len;
                    return;
                }
            }
        }
        self.spill(arena);
        self.pending.extend_from_slice(line);
    }

    /// Moves a pending line out of the arena into the file's own buffer (before the arena
    /// is emptied, or before another line joins it).
    pub fn spill(&mut self, arena: &[u8]) {
        if self.span_len > 0 {
            let at = self.span_start as usize;
            self.pending
                .extend_from_slice(&arena[at..at + self.span_len as usize]);
            self.span_len = 0;
        }
    }

    /// Whether a pending line is in the arena.
    pub fn in_arena(&self) -> bool {
        self.span_len > 0
    }

    /// Takes the pending lines out (the record count is the caller's to reset).
    pub fn take_pending(&mut self, arena: &[u8]) -> Vec<u8> {
        self.spill(arena);
        std::mem::take(&mut self.pending)
    }

    /// Forgets the pending lines (and frees their buffer).
    pub fn clear_pending(&mut self) {
        self.pending = Vec::new();
        self.span_len = 0;
        self.pending_records = 0;
    }

    /// The directory the file is (or will be) in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the file was created and has since been unlinked (its directory deleted
    /// under the writer): frames written to it would reach no one.
    pub fn unlinked(&self) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        self.file
            .as_ref()
            .is_some_and(|f| f.metadata().is_ok_and(|m| m.nlink() == 0))
    }

    fn renumber(&mut self, seq: u32) {
        let mut header = Vec::new();
        write_header(&mut header, &self.uuid, self.seq, &self.start);
        let old_len = header.len();
        header.clear();
        write_header(&mut header, &self.uuid, seq, &self.start);
        self.pending.splice(..old_len, header);
        self.seq = seq;
        self.path = file_path(&self.dir, &self.uuid, seq);
    }

    /// Compresses the pending lines into one frame and appends it (creating the file on
    /// the first frame). On error the file holds only complete frames (or does not
    /// exist) and the lines stay pending. Errors name the operation (`create`, `write`).
    pub fn flush(
        &mut self,
        cctx: &mut FrameCompressor,
        scratch: &mut Vec<u8>,
        arena: &[u8],
    ) -> Result<Flushed, (&'static str, io::Error)> {
        if self.pending_len() == 0 {
            return Ok(Flushed {
                compressed: 0,
                uncompressed: 0,
                records: 0,
            });
        }
        if self.file.is_none() {
            // The header is in the file's buffer until the first frame: keep the lines
            // together (a line alone in the arena never waits for a file's creation).
            self.spill(arena);
        }
        // Created first: taking the next free name may renumber the pending header.
        self.create().map_err(|e| ("create", e))?;
        cctx.compress(self.pending_in(arena), scratch)
            .map_err(|e| ("compress", e))?;
        let good_len = self.good_len;
        let file = self.create().map_err(|e| ("create", e))?;
        if let Err(e) = file.write_all_at(scratch, good_len) {
            if good_len == 0 {
                // Nothing of ours in it: remove it rather than leave a file zstd rejects.
                // If that fails, the next try writes the frame from offset 0 all the same.
                if std::fs::remove_file(&self.path).is_ok() {
                    self.file = None;
                }
            }
            // Best effort: if even the cut fails, the next successful write overwrites
            // the partial frame from `good_len` on, which fixes the file just the same.
            else if let Some(f) = &self.file {
                let _best_effort = f.set_len(good_len);
            }
            return Err(("write", e));
        }
        self.good_len += scratch.len() as u64;
        let done = Flushed {
            compressed: scratch.len() as u64,
            uncompressed: self.pending_len() as u64,
            records: self.pending_records,
        };
        self.span_len = 0;
        self.pending.clear();
        if self.pending.capacity() > KEEP_CAPACITY || done.records < KEEP_AFTER_RECORDS {
            self.pending = Vec::new();
        }
        self.pending_records = 0;
        Ok(done)
    }
}

/// M-Lab's header line: `{"Timestamp":"0001-01-01T00:00:00Z","Metadata":{"UUID":…,
/// "Sequence":N,"StartTime":…}}`. The UUID is validated (no character needing JSON
/// escaping) and the start time is the connection's first record's `Timestamp`, verbatim.
pub(crate) fn write_header(out: &mut Vec<u8>, uuid: &str, seq: u32, start: &[u8]) {
    out.extend_from_slice(br#"{"Timestamp":"0001-01-01T00:00:00Z","Metadata":{"UUID":""#);
    out.extend_from_slice(uuid.as_bytes());
    out.extend_from_slice(br#"","Sequence":"#);
    out.extend_from_slice(seq.to_string().as_bytes());
    out.extend_from_slice(br#","StartTime":""#);
    out.extend_from_slice(start);
    out.extend_from_slice(b"\"}}\n");
}
