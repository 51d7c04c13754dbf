//! The public handle of the archive writer: `write` (one call per poll, never blocks),
//! `rotate`, `flush`, `stats`, `take_events` and `close`.
//!
//! Backpressure (the queue in front of the writer thread is bounded in batches and
//! bytes): `write` returns whether there is still room. A caller that gets `false`
//! waits ([`ArchiveWriter::wait_for_room`]) before pulling the next poll, so the poller's
//! own queue fills and it skips polls, folding their changes into the next one, keeping
//! closes pending. A batch that arrives anyway while the queue is over its limits is not
//! queued whole: its closed records are (a close is never dropped), the others are
//! dropped and counted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tcpinfo_core::{RecordIter, RecordKind, Records, FLAG_HAS_RECORD, INDEX_ENTRY_LEN};

use crate::anonymize::{local_interface_addrs, Anonymizer};
use crate::config::WriterConfig;
use crate::error::{Error, Result};
use crate::key::{validate_tags, Tags};
use crate::path::{connection_of_uuid, scan_existing};
use crate::queue::{Msg, Queue};
use crate::stats::{Counters, ErrorEvent, Events, WriterStats};
use crate::worker::Worker;

/// The records of one poll, as the poller encodes them (see
/// `docs/internals/poll/batch-format.md`): the index and the lines regions. Payloads are
/// not needed: the lines carry everything archived.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    /// One 32-byte entry per record.
    pub index: Vec<u8>,
    /// `ArchivalRecord` lines, back to back.
    pub lines: Vec<u8>,
    /// The UUID tag of each namespace of the poll's namespace table (index entry offset
    /// 20), as the core makes them (`NamespaceInfo::uuid_tag`): `""` for the host. Empty:
    /// every record is the host's.
    pub uuid_tags: Vec<Box<str>>,
}

impl WriteBatch {
    /// A batch made of copies of a poll's index and lines.
    pub fn from_records(r: &Records) -> Self {
        Self {
            index: r.index.clone(),
            lines: r.lines.clone(),
            uuid_tags: Vec::new(),
        }
    }

    /// Bytes counted against the queue limit.
    pub fn len_bytes(&self) -> usize {
        self.index.len() + self.lines.len()
    }

    /// Only the closed records (with their lines), and how many others were left out.
    fn closes_only(&self) -> (WriteBatch, u64) {
        let mut out = WriteBatch {
            uuid_tags: self.uuid_tags.clone(),
            ..WriteBatch::default()
        };
        let mut left = 0;
        for (i, rec) in RecordIter::new(&self.index, &[], &self.lines).enumerate() {
            if rec.kind != RecordKind::Closed as u8 {
                left += u64::from(rec.flags & FLAG_HAS_RECORD != 0);
                continue;
            }
            let mut e = [0u8; INDEX_ENTRY_LEN];
            e.copy_from_slice(&self.index[i * INDEX_ENTRY_LEN..(i + 1) * INDEX_ENTRY_LEN]);
            let off = u32::try_from(out.lines.len()).unwrap_or(u32::MAX);
            e[12..16].copy_from_slice(&off.to_le_bytes());
            out.lines.extend_from_slice(rec.line);
            out.index.extend_from_slice(&e);
        }
        (out, left)
    }
}

/// Which files to finish now (a later record continues in the next sequence file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotate {
    /// Every open file created at least this long ago (`Duration::ZERO`: all).
    OlderThan(Duration),
    /// The open files of these connections, by UUID (UUIDs of another prefix are ignored).
    Uuids(Vec<String>),
}

/// Writes M-Lab tcp-info archive files on its own thread. See the module docs.
pub struct ArchiveWriter {
    queue: Arc<Queue>,
    counters: Arc<Counters>,
    events: Arc<Events>,
    thread: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
    prefix: String,
}

impl ArchiveWriter {
    /// Validates `cfg`, looks for existing files of this prefix (to continue their
    /// sequences) and starts the writer thread. An output directory that cannot be
    /// created is not an error here: it is counted when the first file is created, and
    /// retried with each later one.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad option, [`Error::Thread`] if the thread cannot start.
    pub fn new(cfg: &WriterConfig) -> Result<Self> {
        cfg.validate()?;
        let keep = cfg
            .anonymize_keep
            .clone()
            .unwrap_or_else(local_interface_addrs);
        let anon = Anonymizer::new(cfg.anonymize, &keep);
        let mut tags = Tags::new();
        let existing = scan_existing(&cfg.output_dir, &cfg.uuid_prefix, &mut tags);
        let counters = Arc::new(Counters::default());
        let events = Arc::new(Events::new(cfg.error_report_interval));
        let worker = Worker::new(cfg, anon, tags, existing, counters.clone(), events.clone())
            .map_err(|e| Error::Thread(format!("zstd compressor: {e}")))?;
        let queue = Arc::new(Queue::new(cfg.queue_depth, cfg.max_queued_bytes));
        let q = queue.clone();
        let thread = std::thread::Builder::new()
            .name("tcpinfo-archive".into())
            .spawn(move || worker.run(&q))
            .map_err(|e| Error::Thread(e.to_string()))?;
        Ok(Self {
            queue,
            counters,
            events,
            thread: Mutex::new(Some(thread)),
            closed: AtomicBool::new(false),
            prefix: cfg.uuid_prefix.clone(),
        })
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let alive = self
            .thread
            .lock()
            .is_ok_and(|t| t.as_ref().is_some_and(|t| !t.is_finished()));
        if alive {
            Ok(())
        } else {
            Err(Error::Thread("the writer thread stopped".into()))
        }
    }

    /// Queues one poll's records; never blocks. Returns whether the queue takes another
    /// batch: on `false`, wait ([`Self::wait_for_room`]) before the next poll. A caller
    /// that does never loses a record (the queue is bounded by `max_queued_bytes` plus one
    /// batch); one that writes anyway has the non-close records of that batch dropped.
    ///
    /// # Errors
    /// [`Error::Closed`] after [`Self::close`]; [`Error::Thread`] if the thread died;
    /// [`Error::Config`] for a namespace tag that is not one.
    pub fn write(&self, batch: WriteBatch) -> Result<bool> {
        self.check_open()?;
        validate_tags(&batch.uuid_tags)?;
        if batch.index.is_empty() {
            return Ok(self.queue.accepts());
        }
        let bytes = batch.len_bytes();
        if self.queue.accepts() {
            self.queue.push(Msg::Batch(batch), bytes);
            Counters::add(&self.counters.batches_accepted, 1);
        } else {
            let (closes, dropped) = batch.closes_only();
            Counters::add(&self.counters.batches_over_limit, 1);
            Counters::add(&self.counters.records_dropped, dropped);
            if !closes.index.is_empty() {
                let b = closes.len_bytes();
                self.queue.push(Msg::Batch(closes), b);
            }
        }
        Ok(self.queue.accepts())
    }

    /// Waits until the queue is at most half full, or `timeout`; returns whether it is.
    pub fn wait_for_room(&self, timeout: Duration) -> bool {
        self.queue.wait_for_room(timeout)
    }

    /// Finishes files (see [`Rotate`]) after the batches already queued.
    ///
    /// # Errors
    /// As [`Self::write`].
    pub fn rotate(&self, r: Rotate) -> Result<()> {
        self.check_open()?;
        self.queue.push(Msg::Rotate(r), 0);
        Ok(())
    }

    /// Flushes every file after the batches already queued, waiting `timeout` at most.
    ///
    /// # Errors
    /// As [`Self::write`]; [`Error::Timeout`] if the flush did not finish in time.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.check_open()?;
        let (tx, rx) = mpsc::sync_channel(1);
        self.queue.push(Msg::Flush(tx), 0);
        rx.recv_timeout(timeout).map_err(|_| Error::Timeout {
            unfinished: self.counters.open_files.load(Ordering::Relaxed),
        })
    }

    /// Whether `uuid` is one of this writer's UUIDs (its prefix; any namespace).
    pub fn owns(&self, uuid: &str) -> bool {
        connection_of_uuid(&self.prefix, uuid).is_some()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> WriterStats {
        let (items, bytes) = self.queue.depth();
        self.counters.snapshot(items, bytes)
    }

    /// The error events since the last call (at most one per cause per report interval).
    pub fn take_events(&self) -> Vec<ErrorEvent> {
        self.events.take()
    }

    /// Writes everything queued, finishes every file (complete frames, `zstd -t` passes)
    /// and stops the thread, within `deadline`. Idempotent.
    ///
    /// # Errors
    /// [`Error::Timeout`] when files were still being finished at the deadline (they
    /// hold every frame written before it).
    pub fn close(&self, deadline: Duration) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let Some(thread) = self.thread.lock().ok().and_then(|mut t| t.take()) else {
            return Ok(());
        };
        let end = Instant::now() + deadline;
        let (tx, rx) = mpsc::sync_channel(1);
        self.queue.push(Msg::Close(end, tx), 0);
        match rx.recv_timeout(deadline + CLOSE_ANSWER_SLACK) {
            Ok(0) => thread
                .join()
                .map_err(|_| Error::Thread("the writer thread panicked".into())),
            Ok(unfinished) => Err(Error::Timeout { unfinished }),
            Err(_) => Err(Error::Timeout {
                unfinished: self.counters.open_files.load(Ordering::Relaxed),
            }),
        }
    }
}

/// How much longer than its deadline `close` waits for the thread's answer (the thread
/// checks the deadline between files, so it answers a little after it).
const CLOSE_ANSWER_SLACK: Duration = Duration::from_millis(50);

/// Dropping the writer closes it with [`DROP_CLOSE_DEADLINE`].
pub const DROP_CLOSE_DEADLINE: Duration = Duration::from_secs(2);

impl Drop for ArchiveWriter {
    fn drop(&mut self) {
        // Nowhere to report from a drop; the counters already say what was dropped.
        let _ignored = self.close(DROP_CLOSE_DEADLINE);
    }
}
