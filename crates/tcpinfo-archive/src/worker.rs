//! The writer thread: turns queued batches into per-connection files, flushes one zstd
//! frame per file per interval with one shared compressor, finishes idle, rotated and
//! closed connections' files, and counts everything.
//!
//! See docs/internals/archive/design.md for why a frame per flush.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};
use tcpinfo_core::{RecordIter, RecordKind, FLAG_HAS_RECORD};

use crate::anonymize::Anonymizer;
use crate::config::WriterConfig;
use crate::error::ErrorCause;
use crate::file::{ArchiveFile, FLUSH_AT_BYTES};
use crate::frame::FrameCompressor;
use crate::key::{ConnKey, Tags};
use crate::path::{connection_of_uuid, date_of_rfc3339, uuid_in};
use crate::queue::{Msg, Queue};
use crate::series::{clamp_to_nofile, flush_file, line_timestamp, new_conn, open_file, Conn};
use crate::stats::{Counters, Events};
use crate::writer::{Rotate, WriteBatch};

/// At the open-file cap, this fraction (1/n) of the open files is finished at once.
const EVICT_FRACTION: usize = 16;
/// Files finished since the last heap trim that make the next tick trim it.
const TRIM_AFTER_FILES: u64 = 1024;
/// Arena capacity kept however little the last flushes used (bytes).
const ARENA_KEEP: usize = 256 << 10;
/// Ticks between sweeps of forgotten connections.
const FORGET_SWEEP_TICKS: u32 = 60;
/// Next sequence numbers kept for forgotten connections (and found on disk at start);
/// beyond it a forgotten connection's next file still never overwrites (`O_EXCL`) but may
/// reuse a sequence number that exists under another date.
const MAX_REMEMBERED_SEQUENCES: usize = 1 << 20;

/// The state of the writer thread (owned by it; the handle only sees the counters).
pub(crate) struct Worker {
    output: PathBuf,
    prefix: String,
    flush_interval: Duration,
    idle_close: Duration,
    forget_after: Duration,
    max_open: usize,
    max_pending: usize,
    early_flush: usize,
    conns: FxHashMap<ConnKey, Conn>,
    open: FxHashSet<ConnKey>,
    /// Finished files whose last frame could not be written yet (disk full): they keep
    /// their descriptor and pending lines and are retried every tick, so a closed
    /// connection's final record survives a full disk. Bounded by `max_pending`.
    finishing: VecDeque<Box<ArchiveFile>>,
    existing: FxHashMap<ConnKey, u32>,
    /// The namespace tags of the connections' UUIDs, interned.
    tags: Tags,
    /// This batch's namespace table as tag ids (reused between batches).
    batch_ns: Vec<u32>,
    known_dirs: FxHashSet<PathBuf>,
    /// Inode of each directory holding open files, as of the last tick: a directory gone
    /// or replaced since makes its files checked for deletion (`reopen_unlinked`).
    dir_inodes: FxHashMap<PathBuf, u64>,
    cctx: FrameCompressor,
    scratch: Vec<u8>,
    /// Pending lines of files that hold one line and no buffer (see `file.rs`): emptied
    /// after every flush of all files, so it holds at most what was appended since the
    /// last one (bounded by `early_flush`, as `pending_total`).
    arena: Vec<u8>,
    /// The arena's largest length since the last tick (its capacity is cut down to it).
    arena_peak: usize,
    line_buf: Vec<u8>,
    keys: Vec<ConnKey>,
    anon: Anonymizer,
    pending_total: usize,
    /// An early flush left most bytes pending (writes failing): no more until the tick.
    early_flush_stuck: bool,
    /// `files_closed` at the last heap trim.
    closed_at_trim: u64,
    ticks: u32,
    /// Time of the message being handled (one clock read per batch, not per record).
    now: Instant,
    counters: Arc<Counters>,
    events: Arc<Events>,
}

impl Worker {
    pub fn new(
        cfg: &WriterConfig,
        anon: Anonymizer,
        tags: Tags,
        existing: FxHashMap<ConnKey, u32>,
        counters: Arc<Counters>,
        events: Arc<Events>,
    ) -> io::Result<Self> {
        let cctx = FrameCompressor::new(cfg.level)?;
        Ok(Self {
            output: cfg.output_dir.clone(),
            prefix: cfg.uuid_prefix.clone(),
            flush_interval: cfg.flush_interval,
            idle_close: cfg.idle_close,
            forget_after: cfg.forget_after,
            max_open: clamp_to_nofile(cfg.max_open_files),
            max_pending: cfg.max_pending_bytes,
            early_flush: cfg.early_flush_bytes,
            conns: FxHashMap::default(),
            open: FxHashSet::default(),
            finishing: VecDeque::new(),
            existing,
            tags,
            batch_ns: Vec::new(),
            known_dirs: FxHashSet::default(),
            dir_inodes: FxHashMap::default(),
            cctx,
            scratch: Vec::new(),
            arena: Vec::new(),
            arena_peak: 0,
            line_buf: Vec::new(),
            keys: Vec::new(),
            anon,
            pending_total: 0,
            early_flush_stuck: false,
            closed_at_trim: 0,
            ticks: 0,
            now: Instant::now(),
            counters,
            events,
        })
    }

    /// Runs until a `Close` message; answers it with the number of unfinished files.
    pub fn run(mut self, queue: &Queue) {
        let mut next_tick = Instant::now() + self.flush_interval;
        loop {
            match queue.pop_until(next_tick) {
                Some(Msg::Batch(b)) => self.on_batch(&b),
                Some(Msg::Rotate(r)) => self.on_rotate(&r),
                Some(Msg::Flush(ack)) => {
                    self.flush_all();
                    // The asker may have given up waiting; nothing to do then.
                    let _gone = ack.send(());
                }
                Some(Msg::Close(deadline, ack)) => {
                    let unfinished = self.finish_all(deadline);
                    let _gone = ack.send(unfinished);
                    return;
                }
                None => {}
            }
            let now = Instant::now();
            if now >= next_tick {
                self.tick(now);
                next_tick = now + self.flush_interval;
            }
        }
    }

    fn on_batch(&mut self, b: &WriteBatch) {
        self.now = Instant::now();
        let mut batch_ns = std::mem::take(&mut self.batch_ns);
        batch_ns.clear();
        batch_ns.extend(b.uuid_tags.iter().map(|t| self.tags.id(t)));
        for rec in RecordIter::new(&b.index, &[], &b.lines) {
            let key = ConnKey {
                ns: batch_ns.get(rec.netns as usize).copied().unwrap_or(0),
                cookie: rec.cookie,
            };
            if rec.flags & FLAG_HAS_RECORD != 0 && !rec.line.is_empty() {
                self.append(key, rec.line);
                if (self.pending_total > self.early_flush || self.arena.len() > self.early_flush)
                    && !self.early_flush_stuck
                {
                    self.flush_all();
                    self.early_flush_stuck = self.pending_total > self.early_flush / 2;
                }
            }
            if rec.kind == RecordKind::Closed as u8 {
                self.finish(key);
                if self.conns.remove(&key).is_some() {
                    self.counters
                        .connections
                        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        self.batch_ns = batch_ns;
    }

    fn append(&mut self, key: ConnKey, line: &[u8]) {
        if !self.anon.is_active() {
            self.append_line(key, line);
            return;
        }
        let mut buf = std::mem::take(&mut self.line_buf);
        buf.clear();
        if self.anon.anonymize_line(line, &mut buf) {
            self.append_line(key, &buf);
        } else {
            Counters::add(&self.counters.records_dropped, 1);
        }
        self.line_buf = buf;
    }

    /// Appends one record line to the connection's open file, opening one if needed.
    fn append_line(&mut self, key: ConnKey, line: &[u8]) {
        let now = self.now;
        // The common case, a connection with an open file: one lookup.
        if let Some(file) = self.conns.get_mut(&key).and_then(|c| {
            c.last_seen = now;
            c.file.as_mut()
        }) {
            file.append(&mut self.arena, line);
            file.pending_records += 1;
            file.last_write = now;
            self.pending_total += line.len();
            if file.pending_len() >= FLUSH_AT_BYTES {
                self.flush_one(key);
            }
            return;
        }
        if !self.conns.contains_key(&key) {
            let seq = self.existing.remove(&key).unwrap_or(0);
            let mut start = line_timestamp(line).to_vec();
            if date_of_rfc3339(&start).is_none() {
                // Not one of the poller's lines: start now.
                start.clear();
                tcpinfo_core::write_rfc3339(&mut start, tcpinfo_core::unix_nanos());
            }
            self.conns.insert(key, new_conn(seq, &start, now));
            Counters::add(&self.counters.connections, 1);
        }
        if self.open.len() >= self.max_open {
            self.evict_least_recent();
        }
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        let id = uuid_in(&self.prefix, self.tags.name(key.ns), key.cookie);
        let (file, failed) = open_file(&self.output, &id, conn, &mut self.known_dirs, now);
        self.pending_total += file.pending_len();
        conn.file = Some(file);
        self.open.insert(key);
        Counters::add(&self.counters.files_opened, 1);
        Counters::add(&self.counters.open_files, 1);
        if let Some((op, path, e)) = failed {
            self.count_error(op, &path, &e);
        }
        self.append_line(key, line);
    }

    /// Finishes the open file that was written least recently (the open-file cap).
    ///
    /// Finishes the least recently written 1/16 of the open files at once (one selection
    /// pass over the open files), so a burst of new connections at the cap costs O(1) per
    /// file rather than a scan each.
    fn evict_least_recent(&mut self) {
        let mut by_age: Vec<(Instant, ConnKey)> = self
            .open
            .iter()
            .filter_map(|c| Some((self.conns.get(c)?.file.as_ref()?.last_write, *c)))
            .collect();
        let k = (by_age.len() / EVICT_FRACTION).max(1).min(by_age.len());
        if k == 0 {
            return;
        }
        by_age.select_nth_unstable(k - 1);
        for &(_, c) in &by_age[..k] {
            self.finish(c);
        }
    }

    /// Flushes one connection's pending lines as a frame; on failure they stay pending.
    fn flush_one(&mut self, key: ConnKey) -> bool {
        let Self {
            conns,
            cctx,
            scratch,
            counters,
            events,
            pending_total,
            arena,
            ..
        } = self;
        let Some(file) = conns.get_mut(&key).and_then(|c| c.file.as_mut()) else {
            return true;
        };
        flush_file(cctx, scratch, counters, events, pending_total, file, arena)
    }

    /// Finishes a connection's open file, if any: its last frame, then `close`. If the
    /// frame cannot be written, the file waits in `finishing` and is retried every tick.
    fn finish(&mut self, key: ConnKey) {
        let Some(file) = self.conns.get_mut(&key).and_then(|c| c.file.take()) else {
            return;
        };
        self.open.remove(&key);
        self.flush_and_close(file);
    }

    /// Writes a finished file's last frame and closes it; if the frame cannot be written,
    /// the file waits in `finishing`.
    fn flush_and_close(&mut self, mut file: Box<ArchiveFile>) {
        let Self {
            cctx,
            scratch,
            counters,
            events,
            pending_total,
            arena,
            ..
        } = self;
        if flush_file(
            cctx,
            scratch,
            counters,
            events,
            pending_total,
            &mut file,
            arena,
        ) {
            self.close_file(file);
        } else {
            // It waits past the arena's next emptying.
            file.spill(arena);
            self.finishing.push_back(file);
        }
    }

    /// Closes a finished file (one never written was never created).
    fn close_file(&self, file: Box<ArchiveFile>) {
        drop(file);
        Counters::add(&self.counters.files_closed, 1);
        self.counters
            .open_files
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Gives up a finishing file's pending lines (counted as dropped) and closes it.
    fn give_up(&mut self, mut file: Box<ArchiveFile>) {
        discard_pending(&mut self.pending_total, &self.counters, &mut file);
        self.close_file(file);
    }

    /// Tries the finishing files again; returns how many are still waiting.
    fn retry_finishing(&mut self) -> usize {
        for file in std::mem::take(&mut self.finishing) {
            self.flush_and_close(file);
        }
        self.finishing.len()
    }

    /// Gives up a file's pending lines (counted as dropped).
    fn drop_pending(&mut self, key: ConnKey) {
        let Some(file) = self.conns.get_mut(&key).and_then(|c| c.file.as_mut()) else {
            return;
        };
        discard_pending(&mut self.pending_total, &self.counters, file);
    }

    /// Flushes every open file. The files are taken in the order of the connection map's
    /// memory (one pass, no lookup per file) and each file's struct and pending line are
    /// fetched into the cache a few files ahead: with thousands of files written once per
    /// flush, those cache misses were most of the writer's time outside the compressor.
    fn flush_all(&mut self) {
        let Self {
            conns,
            cctx,
            scratch,
            counters,
            events,
            pending_total,
            arena,
            ..
        } = self;
        let mut files: Vec<&mut ArchiveFile> = conns
            .values_mut()
            .filter_map(|c| c.file.as_deref_mut())
            .collect();
        for i in 0..files.len() {
            if let Some(f) = files.get(i + 4) {
                prefetch(std::ptr::from_ref::<ArchiveFile>(f));
            }
            if let Some(f) = files.get(i + 2) {
                prefetch(f.pending_in(arena).as_ptr());
            }
            let f = &mut *files[i];
            if f.pending_len() > 0
                && !flush_file(cctx, scratch, counters, events, pending_total, f, arena)
            {
                // Lines that could not be written wait in their file's buffer.
                f.spill(arena);
            }
        }
        drop(files);
        self.empty_arena();
        self.publish_gauges();
    }

    /// Empties the arena (no file has a line in it after a flush of all files).
    fn empty_arena(&mut self) {
        debug_assert!(self
            .conns
            .values()
            .all(|c| c.file.as_ref().is_none_or(|f| !f.in_arena())));
        self.arena_peak = self.arena_peak.max(self.arena.len());
        self.arena.clear();
    }

    fn tick(&mut self, now: Instant) {
        self.reopen_unlinked();
        self.flush_all();
        // The arena keeps the capacity the last interval needed, not a burst's.
        let keep = self.arena_peak.max(ARENA_KEEP);
        if self.arena.capacity() > 2 * keep {
            self.arena.shrink_to(keep);
        }
        self.arena_peak = 0;
        self.early_flush_stuck = false;
        self.retry_finishing();
        // Idle files are finished: an idle connection holds no file and no buffer. (One
        // pass over the map; a connection's `last_seen` is its open file's last write.)
        let mut keys = std::mem::take(&mut self.keys);
        keys.clear();
        keys.extend(
            self.conns
                .iter()
                .filter(|(_, c)| {
                    c.file.is_some() && now.duration_since(c.last_seen) >= self.idle_close
                })
                .map(|(k, _)| *k),
        );
        for &c in &keys {
            self.finish(c);
        }
        self.keys = keys;
        // Writes keep failing: give up the oldest finished files' lines first.
        let over = self.pending_total > self.max_pending;
        while (over && self.pending_total > self.max_pending / 2)
            || self.finishing.len() > self.max_open
        {
            let Some(file) = self.finishing.pop_front() else {
                break;
            };
            self.give_up(file);
        }
        if self.pending_total > self.max_pending {
            // Still too much: give up open files' lines rather than grow.
            let mut keys = std::mem::take(&mut self.keys);
            keys.clear();
            keys.extend(self.open.iter().copied());
            for &c in &keys {
                if self.pending_total <= self.max_pending / 2 {
                    break;
                }
                self.drop_pending(c);
            }
            self.keys = keys;
        }
        self.ticks += 1;
        // After a burst of files (the first poll, churn past the open-file cap) only: a
        // trim costs a walk of the heap and the page faults of memory used again.
        let closed = self
            .counters
            .files_closed
            .load(std::sync::atomic::Ordering::Relaxed);
        if closed - self.closed_at_trim >= TRIM_AFTER_FILES {
            self.closed_at_trim = closed;
            trim_heap();
        }
        if self.ticks % FORGET_SWEEP_TICKS == 0 {
            let before = self.conns.len();
            let forget = self.forget_after;
            let existing = &mut self.existing;
            self.conns.retain(|key, c| {
                let keep = c.file.is_some() || now.duration_since(c.last_seen) < forget;
                if !keep && existing.len() < MAX_REMEMBERED_SEQUENCES {
                    // Its series goes on at the right number if it ever writes again (a
                    // close this writer never saw): 12 bytes instead of the whole entry.
                    existing.insert(*key, c.next_seq);
                }
                keep
            });
            let gone = (before - self.conns.len()) as u64;
            self.counters
                .connections
                .fetch_sub(gone, std::sync::atomic::Ordering::Relaxed);
        }
        self.publish_gauges();
    }

    /// Open files whose directory was deleted (or replaced) since the last tick, and that
    /// are indeed unlinked, are closed and their connections continue in a new sequence
    /// file (the directory is made again), carrying the lines not yet written. One `stat`
    /// per directory of open files per tick; an `fstat` per file only of such directories.
    fn reopen_unlinked(&mut self) {
        use std::os::unix::fs::MetadataExt as _;
        let mut changed: Vec<PathBuf> = Vec::new();
        let mut seen: FxHashMap<PathBuf, u64> = FxHashMap::default();
        // One pass over the map; most files share their date directory, so the one just
        // seen is compared first (bytes, not path components) before any hashing.
        let mut last: &[u8] = &[];
        for f in self.conns.values().filter_map(|c| c.file.as_deref()) {
            let dir = f.dir();
            if dir.as_os_str().as_encoded_bytes() == last {
                continue;
            }
            last = dir.as_os_str().as_encoded_bytes();
            if seen.contains_key(dir) || changed.iter().any(|d| d == dir) {
                continue;
            }
            match std::fs::metadata(dir) {
                Ok(m) => {
                    if self.dir_inodes.get(dir).is_some_and(|&ino| ino != m.ino()) {
                        changed.push(dir.to_owned());
                    }
                    seen.insert(dir.to_owned(), m.ino());
                }
                Err(_) => changed.push(dir.to_owned()),
            }
        }
        self.dir_inodes = seen;
        if changed.is_empty() {
            return;
        }
        self.known_dirs.clear();
        let mut keys = std::mem::take(&mut self.keys);
        keys.clear();
        keys.extend(self.open.iter().copied().filter(|c| {
            self.conns
                .get(c)
                .and_then(|c| c.file.as_ref())
                .is_some_and(|f| changed.iter().any(|d| d == f.dir()) && f.unlinked())
        }));
        for &c in &keys {
            self.reopen(c);
        }
        self.keys = keys;
    }

    /// Closes a connection's unlinked file and moves its pending lines to a new one.
    fn reopen(&mut self, key: ConnKey) {
        let Some(mut file) = self.conns.get_mut(&key).and_then(|c| c.file.take()) else {
            return;
        };
        self.open.remove(&key);
        let lines = file.take_pending(&self.arena);
        let records = std::mem::replace(&mut file.pending_records, 0);
        self.pending_total -= lines.len();
        let err = io::Error::new(
            io::ErrorKind::NotFound,
            "the file was deleted under the writer; its connection continues in a new sequence file",
        );
        self.count_error("deleted", &file.path, &err);
        self.close_file(file);
        if records > 0 {
            self.append_line(key, &lines);
            if let Some(f) = self.conns.get_mut(&key).and_then(|c| c.file.as_mut()) {
                f.pending_records += records - 1;
            }
        }
    }

    fn on_rotate(&mut self, r: &Rotate) {
        let now = Instant::now();
        let mut keys = std::mem::take(&mut self.keys);
        keys.clear();
        match r {
            Rotate::OlderThan(age) => keys.extend(self.open.iter().copied().filter(|c| {
                self.conns
                    .get(c)
                    .and_then(|c| c.file.as_ref())
                    .is_some_and(|f| now.duration_since(f.opened) >= *age)
            })),
            Rotate::Uuids(list) => {
                let (prefix, tags) = (&self.prefix, &self.tags);
                keys.extend(list.iter().filter_map(|u| {
                    let (tag, cookie) = connection_of_uuid(prefix, u)?;
                    Some(ConnKey {
                        ns: tags.find(tag)?,
                        cookie,
                    })
                }));
            }
        }
        for &c in &keys {
            self.finish(c);
        }
        self.keys = keys;
        self.publish_gauges();
    }

    /// Finishes every file, giving up on flushing once `deadline` passes (those files
    /// keep every complete frame). Returns how many were given up.
    fn finish_all(&mut self, deadline: Instant) -> u64 {
        let keys: Vec<ConnKey> = self.open.iter().copied().collect();
        let mut unfinished = 0;
        for c in keys {
            if Instant::now() >= deadline {
                self.drop_pending(c);
                unfinished += 1;
            }
            self.finish(c);
        }
        if Instant::now() < deadline {
            self.retry_finishing();
        }
        for file in std::mem::take(&mut self.finishing) {
            unfinished += 1;
            self.give_up(file);
        }
        self.publish_gauges();
        unfinished
    }

    fn publish_gauges(&self) {
        self.counters.pending_bytes.store(
            self.pending_total as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    fn count_error(&self, op: &'static str, path: &Path, e: &io::Error) {
        let cause = ErrorCause::of(e);
        Counters::add(&self.counters.errors[cause as usize], 1);
        self.events.record(cause, op, &path.to_string_lossy(), e);
    }
}

/// Asks the CPU to fetch the cache line at `p` (a hint: no effect on what the program does).
#[inline]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and reads nothing the program sees, whatever `p` is.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Drops a file's pending lines, counted as dropped records.
fn discard_pending(pending_total: &mut usize, counters: &Counters, file: &mut ArchiveFile) {
    *pending_total -= file.pending_len();
    Counters::add(&counters.records_dropped, file.pending_records);
    file.clear_pending();
}

/// Gives the heap's free memory back to the kernel. Files come and go by the thousand
/// (each with its path, buffers and map entry), and glibc keeps what they freed resident
/// in its arenas: in the 100k-connection benchmark the collector's RSS at the end of the
/// run fell from 92–102 MB to 75–77 MB with it (docs/BENCHMARKS.md, session 6).
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and madvises glibc's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
