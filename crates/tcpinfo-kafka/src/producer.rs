//! The public handle: [`KafkaProducer::offer`] (one call per poll, never blocks),
//! [`KafkaProducer::stats`], [`KafkaProducer::close`]. The work happens on the
//! `tcpinfo-kafka` thread ([`crate::worker`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use crate::config::ProducerConfig;
use crate::error::{Error, Result};
use crate::message::PollInput;
use crate::stats::{Counters, ProducerStats};
use crate::worker::{CloseReport, Cmd, Worker};

/// Dropping the producer closes it with this deadline.
pub const DROP_CLOSE_DEADLINE: Duration = Duration::from_secs(2);
/// How much longer than its deadline `close` waits for the thread's answer.
const CLOSE_ANSWER_SLACK: Duration = Duration::from_millis(200);

/// A Kafka producer on its own thread. See the crate docs.
pub struct KafkaProducer {
    tx: UnboundedSender<Cmd>,
    counters: Arc<Counters>,
    intake_polls: u64,
    intake_bytes: u64,
    thread: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
    report: Mutex<Option<CloseReport>>,
}

impl KafkaProducer {
    /// Validates `cfg` and starts the producer thread. It connects in the background:
    /// an unreachable broker is not an error here (records wait in the buffer, counted).
    ///
    /// # Errors
    /// [`Error::Config`] for a bad option; [`Error::Thread`] if the thread cannot start.
    pub fn new(cfg: ProducerConfig) -> Result<Self> {
        cfg.validate()?;
        let tls = cfg
            .tls
            .as_ref()
            .map(crate::tls::client_config)
            .transpose()?;
        let intake_polls = cfg.intake_polls as u64;
        let intake_bytes = cfg.buffer_bytes as u64;
        let counters = Arc::new(Counters::default());
        let (tx, rx) = unbounded_channel();
        let worker = Worker::new(Arc::new(cfg), tls, Arc::clone(&counters));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Thread(format!("tokio runtime: {e}")))?;
        let thread = std::thread::Builder::new()
            .name("tcpinfo-kafka".into())
            .spawn(move || {
                // Records are built and dropped by the hundred thousand per second here:
                // mimalloc's small-block paths, not glibc's (crate `tcpinfo-alloc`).
                tcpinfo_alloc::use_mimalloc_on_this_thread();
                rt.block_on(worker.run(rx));
            })
            .map_err(|e| Error::Thread(e.to_string()))?;
        Ok(Self {
            tx,
            counters,
            intake_polls,
            intake_bytes,
            thread: Mutex::new(Some(thread)),
            closed: AtomicBool::new(false),
            report: Mutex::new(None),
        })
    }

    /// Hands over one poll (never blocks). Returns whether it was taken: a poll that finds
    /// the producer thread behind by more than its intake bounds (polls, or the buffer's
    /// bytes) is dropped whole, its records counted as dropped.
    ///
    /// # Errors
    /// [`Error::Closed`] after [`Self::close`]; [`Error::Thread`] if the thread died.
    pub fn offer(&self, poll: PollInput) -> Result<bool> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let bytes = poll.len_bytes() as u64;
        let c = &self.counters;
        let (polls, queued) = (
            c.intake_polls.load(Ordering::Relaxed),
            c.intake_bytes.load(Ordering::Relaxed),
        );
        if polls >= self.intake_polls || (polls > 0 && queued + bytes > self.intake_bytes) {
            let records = tcpinfo_core::RecordIter::new(&poll.index, &[], &[])
                .filter(|r| r.flags & tcpinfo_core::FLAG_HAS_RECORD != 0)
                .count() as u64;
            Counters::add(&c.dropped, records);
            return Ok(false);
        }
        Counters::add(&c.intake_polls, 1);
        Counters::add(&c.intake_bytes, bytes);
        if self.tx.send(Cmd::Poll(poll)).is_err() {
            return Err(Error::Thread("the producer thread stopped".into()));
        }
        Ok(true)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ProducerStats {
        self.counters.snapshot()
    }

    /// The latest delivery or connection error since the last call, if any.
    pub fn take_error(&self) -> Option<String> {
        self.counters
            .last_error
            .lock()
            .ok()
            .and_then(|mut e| e.take())
    }

    /// Sends what is queued, waiting `deadline` at most, then stops the thread. What could
    /// not be delivered is in the report (and counted as undelivered). Idempotent: later
    /// calls return the first report.
    ///
    /// # Errors
    /// [`Error::Thread`] if the thread died or did not answer.
    pub fn close(&self, deadline: Duration) -> Result<CloseReport> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return self
                .report
                .lock()
                .ok()
                .and_then(|r| *r)
                .ok_or(Error::Closed);
        }
        let (reply, answer) = mpsc::sync_channel(1);
        let at = Instant::now() + deadline;
        if let Ok(mut c) = self.counters.close_at.lock() {
            *c = Some(at);
        }
        let sent = self.tx.send(Cmd::Close {
            deadline: at,
            reply,
        });
        if sent.is_err() {
            return Err(Error::Thread("the producer thread stopped".into()));
        }
        let report = answer
            .recv_timeout(deadline + CLOSE_ANSWER_SLACK)
            .map_err(|_| Error::Thread("the producer thread did not answer".into()))?;
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            t.join()
                .map_err(|_| Error::Thread("the producer thread panicked".into()))?;
        }
        if let Ok(mut r) = self.report.lock() {
            *r = Some(report);
        }
        Ok(report)
    }
}

impl Drop for KafkaProducer {
    fn drop(&mut self) {
        // Nowhere to report from a drop; the counters already say what was not delivered.
        let _ignored = self.close(DROP_CLOSE_DEADLINE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A poll of `n` records (kind `changed`, one short line each).
    fn poll(n: usize) -> PollInput {
        let mut p = PollInput::default();
        for i in 0..n {
            let line = format!("{{\"n\":{i}}}\n");
            let mut e = [0u8; tcpinfo_core::INDEX_ENTRY_LEN];
            e[0] = 1;
            e[1] = tcpinfo_core::FLAG_HAS_RECORD;
            e[12..16].copy_from_slice(&u32::try_from(p.lines.len()).unwrap().to_le_bytes());
            e[16..20].copy_from_slice(&u32::try_from(line.len()).unwrap().to_le_bytes());
            e[24..32].copy_from_slice(&(i as u64).to_le_bytes());
            p.index.extend_from_slice(&e);
            p.lines.extend_from_slice(line.as_bytes());
        }
        p
    }

    #[test]
    fn no_broker_close_meets_its_deadline_and_reports_every_record() {
        // Port 1 on loopback: connection refused at once, every time.
        let mut cfg = ProducerConfig::new(vec!["127.0.0.1:1".into()], "t", "p");
        cfg.sample = crate::Sample::Every(2);
        let p = KafkaProducer::new(cfg).unwrap();
        assert!(p.offer(poll(30)).unwrap());
        assert!(p.offer(poll(30)).unwrap(), "the second poll is sampled out");
        assert!(p.offer(poll(12)).unwrap());
        let t0 = Instant::now();
        let r = p.close(Duration::from_millis(300)).unwrap();
        assert!(
            t0.elapsed() < Duration::from_millis(900),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!((r.delivered, r.dropped, r.undelivered), (0, 0, 42));
        let s = p.stats();
        assert_eq!((s.queued, s.sampled_out, s.polls), (42, 30, 3));
        assert_eq!(s.buffered_records, 0);
        assert!(matches!(p.offer(poll(1)), Err(Error::Closed)));
        assert_eq!(p.close(Duration::ZERO).unwrap(), r, "idempotent");
    }

    #[test]
    fn a_tiny_buffer_drops_the_oldest_and_counts_them() {
        let mut cfg = ProducerConfig::new(vec!["127.0.0.1:1".into()], "t", "p");
        cfg.buffer_bytes = crate::MIN_BUFFER_BYTES;
        let p = KafkaProducer::new(cfg).unwrap();
        let mut refused = 0;
        for _ in 0..10 {
            // 25 or 26 bytes per message (key `p_%016X`, value `{"n":N}`): 100 fit in 4 KiB,
            // 1000 do not. A poll finding the
            // previous one still waiting over the byte bound is refused whole, counted.
            while !p.offer(poll(100)).unwrap() {
                refused += 100;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let r = p.close(Duration::from_millis(200)).unwrap();
        let s = p.stats();
        assert_eq!(s.queued, 1000);
        assert!(s.dropped > refused, "oldest messages dropped too: {s:?}");
        assert!(
            s.buffered_bytes == 0 && r.undelivered <= 4096 / 25,
            "within the bound: {r:?}"
        );
        assert_eq!(r.dropped + r.undelivered, 1000 + refused, "{r:?}");
    }
}
