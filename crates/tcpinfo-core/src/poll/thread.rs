//! The dedicated OS thread that owns a [`Poller`] and polls at a fixed interval.
//!
//! Never a JS, libuv or tokio worker: `setns(2)` is per thread and the dump's `recv`
//! blocks. Batches go to the consumer through a bounded queue; when it is full the thread
//! skips polls (their changes fold into the next poll, nothing is lost) but keeps draining
//! destroy events so the kernel does not drop them.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::mpsc;

use super::batch::PollBatch;
use super::config::PollerConfig;
use super::poller::Poller;
use super::records_pool::RecordsPool;
use crate::error::{Error, Result};

/// Receives the batches of a [`PollerThread`]. `None` from `recv` means the thread ended.
///
/// The queue is bounded twice: by batch count (`queue_depth`) and by the bytes of the
/// queued batches' records (`max_queued_bytes`); while either is full the thread skips
/// polls (their changes fold into the next one) instead of growing memory.
pub struct BatchReceiver {
    rx: mpsc::Receiver<PollBatch>,
    queued_bytes: Arc<AtomicUsize>,
    records_pool: Arc<RecordsPool>,
}

impl BatchReceiver {
    /// Waits for the next batch.
    pub async fn recv(&mut self) -> Option<PollBatch> {
        let b = self.rx.recv().await;
        self.taken(b)
    }

    /// Waits for the next batch, blocking the thread (not for async contexts).
    pub fn blocking_recv(&mut self) -> Option<PollBatch> {
        let b = self.rx.blocking_recv();
        self.taken(b)
    }

    /// Where a consumer done with a batch gives its `records` back for reuse
    /// ([`Poller::records_pool`]).
    pub fn records_pool(&self) -> &Arc<RecordsPool> {
        &self.records_pool
    }

    /// Bytes of records queued and not yet received.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Acquire)
    }

    fn taken(&self, b: Option<PollBatch>) -> Option<PollBatch> {
        if let Some(b) = &b {
            self.queued_bytes
                .fetch_sub(b.records.len_bytes(), Ordering::AcqRel);
        }
        b
    }
}

/// Handle of a running poller thread. Dropping it stops the thread and closes its sockets.
pub struct PollerThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl PollerThread {
    /// Starts polling on a new thread (entering `config.netns` first, if set).
    ///
    /// # Errors
    /// Whatever [`Poller::new`] or entering the namespace fails with; the thread is gone then.
    pub fn spawn(config: PollerConfig) -> Result<(Self, BatchReceiver)> {
        config.validate()?;
        let (tx, rx) = mpsc::channel(config.queue_depth);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let queue = Queue {
            tx,
            bytes: Arc::clone(&queued_bytes),
            max_bytes: config.max_queued_bytes,
        };
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<Arc<RecordsPool>>>(1);
        let stop = Arc::new(AtomicBool::new(false));
        let stop_thread = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("tcpinfo-poller".into())
            .spawn(move || {
                let poller =
                    enter_netns(config.netns.as_deref()).and_then(|()| Poller::new(config));
                match poller {
                    Ok(p) => {
                        // The receiver waits for this message; if it is gone, so is the caller.
                        if ready_tx.send(Ok(p.records_pool())).is_ok() {
                            run(p, &queue, &stop_thread);
                        }
                    }
                    Err(e) => {
                        // Same: nobody to tell if the caller has gone.
                        ready_tx.send(Err(e)).ok();
                    }
                }
            })
            .map_err(|e| Error::socket("spawn poller thread", e))?;
        let ready = ready_rx.recv().map_err(|_| Error::Closed)?;
        let thread = Self {
            stop,
            handle: Some(handle),
        };
        ready.map(|records_pool| {
            let rx = BatchReceiver {
                rx,
                queued_bytes,
                records_pool,
            };
            (thread, rx)
        })
    }

    /// Stops the thread and waits for it (at most one poll). Idempotent.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            // A panic in the poller thread has already been reported by the panic hook.
            h.join().ok();
        }
    }
}

impl Drop for PollerThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The sending side: the channel plus the byte count shared with [`BatchReceiver`].
struct Queue {
    tx: mpsc::Sender<PollBatch>,
    bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

impl Queue {
    fn full(&self) -> bool {
        self.tx.capacity() == 0 || self.bytes.load(Ordering::Acquire) >= self.max_bytes
    }

    /// Queues `b`; false when the receiver is gone.
    fn send(&self, b: PollBatch) -> bool {
        let len = b.records.len_bytes();
        self.bytes.fetch_add(len, Ordering::AcqRel);
        if self.tx.try_send(b).is_err() {
            self.bytes.fetch_sub(len, Ordering::AcqRel);
            return false;
        }
        true
    }
}

fn run(mut poller: Poller, queue: &Queue, stop: &AtomicBool) {
    let interval = poller.config().interval;
    let mut next = Instant::now();
    while !stop.load(Ordering::Acquire) {
        if queue.tx.is_closed() {
            return;
        }
        if queue.full() {
            poller.drain_events_only();
        } else if !queue.send(poller.poll()) {
            return;
        }
        next += interval;
        let now = Instant::now();
        if next < now {
            // Missed ticks are not made up: polling resumes on the next interval boundary.
            let behind = now - next;
            let missed = behind.as_nanos() / interval.as_nanos().max(1) + 1;
            next += interval * u32::try_from(missed).unwrap_or(u32::MAX);
        }
        while !stop.load(Ordering::Acquire) {
            let now = Instant::now();
            if now >= next {
                break;
            }
            std::thread::park_timeout(next - now);
        }
    }
}

fn enter_netns(path: Option<&Path>) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    let netns_err = |source| Error::Netns {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(netns_err)?;
    // SAFETY: setns on a valid fd only changes this thread's network namespace.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(netns_err(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Takes one snapshot of every current socket (all reported as opened), on a short-lived
/// thread so that entering `config.netns` never affects the caller's thread.
///
/// # Errors
/// As [`PollerThread::spawn`].
pub fn snapshot(mut config: PollerConfig) -> Result<PollBatch> {
    config.destroy_events = false;
    config.validate()?;
    std::thread::Builder::new()
        .name("tcpinfo-snapshot".into())
        .spawn(move || {
            enter_netns(config.netns.as_deref())?;
            Poller::new(config).map(|mut p| p.poll())
        })
        .map_err(|e| Error::socket("spawn snapshot thread", e))?
        .join()
        .map_err(|_| Error::Closed)?
}
