//! The dedicated OS thread that owns a [`Poller`] and polls at a fixed interval.
//!
//! Never a JS, libuv or tokio worker: `setns(2)` is per thread and the dump's `recv`
//! blocks. Batches go to the consumer through a bounded queue; when it is full the thread
//! skips polls (their changes fold into the next poll, nothing is lost) but keeps draining
//! destroy events so the kernel does not drop them.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::mpsc;

use super::batch::PollBatch;
use super::budget::{thread_cpu_nanos, Budget};
use super::config::PollerConfig;
use super::multi::MultiPoller;
use super::poller::{PartSink, Poller};
use super::records_pool::RecordsPool;
use crate::error::{Error, Result};

/// Why a poller thread died, set by the thread before its queue closes.
type DeathNote = Arc<Mutex<Option<String>>>;

/// Receives the batches of a [`PollerThread`]. `Ok(None)` from `recv` means the thread was
/// stopped; an end nobody asked for (a panic) is [`Error::Internal`], never a clean end.
///
/// The queue is bounded twice: by batch count (`queue_depth`) and by the bytes of the
/// queued batches' records (`max_queued_bytes`); while either is full the thread skips
/// polls (their changes fold into the next one) instead of growing memory.
pub struct BatchReceiver {
    rx: mpsc::Receiver<PollBatch>,
    queued_bytes: Arc<AtomicUsize>,
    records_pool: Arc<RecordsPool>,
    stop: Arc<AtomicBool>,
    death: DeathNote,
}

impl BatchReceiver {
    /// Waits for the next batch; `Ok(None)` once the thread was stopped.
    ///
    /// # Errors
    /// [`Error::Internal`] when the thread ended without being stopped (it panicked).
    pub async fn recv(&mut self) -> Result<Option<PollBatch>> {
        match self.rx.recv().await {
            Some(b) => Ok(Some(self.taken(b))),
            None => self.ended(),
        }
    }

    /// Waits for the next batch, blocking the thread (not for async contexts).
    ///
    /// # Errors
    /// As [`BatchReceiver::recv`].
    pub fn blocking_recv(&mut self) -> Result<Option<PollBatch>> {
        match self.rx.blocking_recv() {
            Some(b) => Ok(Some(self.taken(b))),
            None => self.ended(),
        }
    }

    fn ended(&self) -> Result<Option<PollBatch>> {
        let note = self
            .death
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match note {
            Some(why) => Err(Error::Internal(why)),
            None if self.stop.load(Ordering::Acquire) => Ok(None),
            None => Err(Error::Internal(
                "the poller thread ended unexpectedly".into(),
            )),
        }
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

    fn taken(&self, b: PollBatch) -> PollBatch {
        self.queued_bytes
            .fetch_sub(b.records.len_bytes(), Ordering::AcqRel);
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
        let death: DeathNote = Arc::default();
        let death_thread = Arc::clone(&death);
        let handle = std::thread::Builder::new()
            .name("tcpinfo-poller".into())
            .spawn(move || {
                guarded(&death_thread, || {
                    let budget = Budget::new(config.interval, config.max_cpu);
                    let max_batch = config.max_batch_bytes;
                    let poller = Driver::open(config).map(|mut p| {
                        p.set_part_sink(
                            max_batch,
                            part_sink(queue.clone(), Arc::clone(&stop_thread), max_batch),
                        );
                        p
                    });
                    match poller {
                        Ok(p) => {
                            // The receiver waits for this message; if it is gone, so is the caller.
                            if ready_tx.send(Ok(p.records_pool())).is_ok() {
                                run(p, &queue, &stop_thread, budget);
                            }
                        }
                        Err(e) => {
                            // Same: nobody to tell if the caller has gone.
                            ready_tx.send(Err(e)).ok();
                        }
                    }
                });
                // `queue` is dropped here, after the death note: the receiver sees both.
                drop(queue);
            })
            .map_err(|e| Error::thread("spawn poller thread", e))?;
        let ready = ready_rx.recv().map_err(|_| {
            let why = death
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .unwrap_or_else(|| "the poller thread ended before it started".into());
            Error::Internal(why)
        })?;
        let thread = Self {
            stop,
            handle: Some(handle),
        };
        ready.map(|records_pool| {
            let rx = BatchReceiver {
                rx,
                queued_bytes,
                records_pool,
                stop: Arc::clone(&thread.stop),
                death,
            };
            (thread, rx)
        })
    }

    /// Stops the thread and waits for it (at most one poll). Idempotent.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            // The thread catches its own panics (see `guarded`): join cannot fail.
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
#[derive(Clone)]
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

/// What a poller thread drives: one namespace, or every one.
enum Driver {
    One(Box<Poller>),
    All(Box<MultiPoller>),
}

impl Driver {
    /// Opens the sockets (entering `config.netns` first, if set).
    fn open(config: PollerConfig) -> Result<Self> {
        if config.all_namespaces {
            return MultiPoller::new(config).map(|m| Driver::All(Box::new(m)));
        }
        enter_netns(config.netns.as_deref())?;
        Poller::new(config).map(|p| Driver::One(Box::new(p)))
    }

    fn records_pool(&self) -> Arc<RecordsPool> {
        match self {
            Driver::One(p) => p.records_pool(),
            Driver::All(m) => m.records_pool(),
        }
    }

    fn poll(&mut self) -> Result<PollBatch> {
        match self {
            Driver::One(p) => Ok(p.poll()),
            Driver::All(m) => m.poll(),
        }
    }

    fn set_part_sink(&mut self, max_bytes: usize, sink: PartSink) {
        match self {
            Driver::One(p) => p.set_part_sink(max_bytes, sink),
            Driver::All(m) => m.set_part_sink(max_bytes, sink),
        }
    }

    fn drain_events_only(&mut self) {
        match self {
            Driver::One(p) => p.drain_events_only(),
            Driver::All(m) => m.drain_events_only(),
        }
    }
}

/// Queues the parts of a large poll as they fill, each once the consumer has taken the
/// previous ones (the dump waits meanwhile): at most about two parts exist on the Rust
/// side, whatever the queue's byte budget. A stop or a gone receiver drops the part.
fn part_sink(queue: Queue, stop: Arc<AtomicBool>, max_batch: usize) -> PartSink {
    Arc::new(move |part: PollBatch| {
        while queue.full() || queue.bytes.load(Ordering::Acquire) >= max_batch {
            if stop.load(Ordering::Acquire) || queue.tx.is_closed() {
                return;
            }
            std::thread::park_timeout(std::time::Duration::from_millis(1));
        }
        queue.send(part);
    })
}

fn run(mut poller: Driver, queue: &Queue, stop: &AtomicBool, mut budget: Budget) {
    let mut next = Instant::now();
    while !stop.load(Ordering::Acquire) {
        if queue.tx.is_closed() {
            return;
        }
        let started = Instant::now();
        let cpu_before = thread_cpu_nanos();
        let mut batch = None;
        if queue.full() {
            poller.drain_events_only();
        } else {
            // A poller that cannot return to its own namespace cannot go on: its death
            // note reaches the consumer as the error.
            batch = Some(poller.poll().unwrap_or_else(|e| panic!("{e}")));
        }
        let cpu = thread_cpu_nanos().saturating_sub(cpu_before);
        let interval = budget.after_poll(cpu, started.elapsed());
        if let Some(mut b) = batch {
            b.stats.cpu_nanos = cpu;
            b.stats.effective_interval_nanos =
                u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
            b.stats.long_polls = budget.long_polls();
            // Parts of this poll may have taken the free slots: wait for one.
            while queue.tx.capacity() == 0 {
                if stop.load(Ordering::Acquire) || queue.tx.is_closed() {
                    return;
                }
                std::thread::park_timeout(std::time::Duration::from_millis(1));
            }
            if !queue.send(b) {
                return;
            }
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

/// Runs `body`, turning a panic into a death note for the receiver (the panic hook has
/// already printed it).
fn guarded(death: &Mutex<Option<String>>, body: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(body)) {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        *death.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(format!("the poller thread panicked: {what}"));
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
        .spawn(move || Driver::open(config)?.poll())
        .map_err(|e| Error::thread("spawn snapshot thread", e))?
        .join()
        .map_err(|_| Error::Internal("the snapshot thread panicked".into()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver(death: DeathNote, stopped: bool) -> (mpsc::Sender<PollBatch>, BatchReceiver) {
        let (tx, rx) = mpsc::channel(1);
        let rx = BatchReceiver {
            rx,
            queued_bytes: Arc::default(),
            records_pool: Arc::new(RecordsPool::new(1, 1)),
            stop: Arc::new(AtomicBool::new(stopped)),
            death,
        };
        (tx, rx)
    }

    /// A panic in the thread reaches the consumer as `ERR_INTERNAL`, not as the end.
    #[test]
    fn a_panicking_thread_is_an_internal_error_not_an_end() {
        let death: DeathNote = Arc::default();
        let (tx, mut rx) = receiver(Arc::clone(&death), false);
        std::thread::spawn(move || {
            guarded(&death, || panic!("boom"));
            drop(tx);
        })
        .join()
        .expect("guarded catches the panic");
        let err = rx.blocking_recv().expect_err("not a clean end");
        assert_eq!(err.code(), "ERR_INTERNAL");
        assert!(err.to_string().contains("boom"), "{err}");
    }

    #[test]
    fn an_unexplained_end_is_an_internal_error_and_a_stop_is_the_end() {
        let (tx, mut rx) = receiver(Arc::default(), false);
        drop(tx);
        assert_eq!(
            rx.blocking_recv().expect_err("unexpected").code(),
            "ERR_INTERNAL"
        );
        let (tx, mut rx) = receiver(Arc::default(), true);
        drop(tx);
        assert!(rx.blocking_recv().expect("clean end").is_none());
    }
}
