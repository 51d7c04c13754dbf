//! A capture session: one dedicated OS thread reads a source (live ring or file),
//! parses and matches every packet, and sends batches of encoded samples (and,
//! periodically, per-flow summaries) through a bounded queue.
//!
//! Backpressure: a file is read no faster than batches are taken (the thread blocks
//! on the full queue); a live capture never blocks the ring: when the queue is full
//! the batch's samples are dropped and counted (`dropped_samples`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::matcher::{MatchStats, Matcher, MatcherConfig, Sample};
use crate::packet::{LinkType, ParseStats};
use crate::pcap::{read_file, FileStats};
use crate::record::{put_sample, put_summary, SAMPLE_RECORD_LEN};
use crate::ring::{enter_netns, Ring, RingConfig, RingStats};

/// Default most samples in one batch.
pub const DEFAULT_MAX_BATCH_SAMPLES: usize = 4096;
/// Default longest a live sample waits before its batch is sent.
pub const DEFAULT_BATCH_INTERVAL: Duration = Duration::from_millis(100);
/// Default depth of the batch queue, in batches.
pub const DEFAULT_QUEUE_DEPTH: usize = 16;
/// How long a live capture waits in `poll` before checking for a stop request.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// Where packets come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Live capture, optionally inside a network namespace (name under `/run/netns` or path).
    Live {
        /// Ring settings (interface, snap length, sizes).
        ring: RingConfig,
        /// Network namespace to capture in.
        netns: Option<String>,
    },
    /// A pcap or pcapng file.
    File(PathBuf),
}

/// Session settings.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The packet source.
    pub source: Source,
    /// Matching limits.
    pub matcher: MatcherConfig,
    /// Most samples per batch.
    pub max_batch_samples: usize,
    /// Live: longest a sample waits before its batch is sent.
    pub batch_interval: Duration,
    /// Summaries of flows with new samples every this long (packet time for files,
    /// wall time live); `None`: only at the end. The last batch always has them.
    pub summary_interval: Option<Duration>,
    /// Batches queued before backpressure (files) or drops (live).
    pub queue_depth: usize,
}

impl SessionConfig {
    /// Defaults for `source`.
    pub fn new(source: Source) -> Self {
        Self {
            source,
            matcher: MatcherConfig::default(),
            max_batch_samples: DEFAULT_MAX_BATCH_SAMPLES,
            batch_interval: DEFAULT_BATCH_INTERVAL,
            summary_interval: None,
            queue_depth: DEFAULT_QUEUE_DEPTH,
        }
    }
}

/// All counters of a session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RttStats {
    /// Frame parsing.
    pub parse: ParseStats,
    /// Matching.
    pub matching: MatchStats,
    /// Live ring (zero for files).
    pub ring: RingStats,
    /// File reading (zero live).
    pub file: FileStats,
    /// Live samples dropped because the batch queue was full.
    pub dropped_samples: u64,
}

/// One batch.
#[derive(Debug, Default)]
pub struct RttBatch {
    /// Sample records back to back ([`crate::record`]).
    pub samples: Vec<u8>,
    /// Summary records back to back, for flows with new samples.
    pub summaries: Vec<u8>,
    /// Counters at the time of the batch (cumulative).
    pub stats: RttStats,
    /// Whether this is the session's last batch (end of file, or stopped).
    pub last: bool,
}

impl RttBatch {
    /// Number of sample records.
    pub fn sample_count(&self) -> usize {
        self.samples.len() / SAMPLE_RECORD_LEN
    }
}

/// The receiving end of a session.
pub struct RttReceiver {
    rx: mpsc::Receiver<Result<RttBatch>>,
}

impl RttReceiver {
    /// The next batch; `None` after the last one.
    pub async fn recv(&mut self) -> Option<Result<RttBatch>> {
        self.rx.recv().await
    }

    /// As [`RttReceiver::recv`], blocking (not for async contexts).
    pub fn blocking_recv(&mut self) -> Option<Result<RttBatch>> {
        self.rx.blocking_recv()
    }
}

/// A running session thread. Dropping it stops the thread and waits for it.
pub struct RttSession {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl RttSession {
    /// Starts the thread; returns once the source is open.
    ///
    /// # Errors
    /// Opening the source failed: [`Error::Permission`], [`Error::Config`],
    /// [`Error::Netns`], [`Error::Socket`], [`Error::Io`].
    pub fn start(config: SessionConfig) -> Result<(Self, RttReceiver)> {
        if config.max_batch_samples == 0 || config.queue_depth == 0 {
            return Err(Error::Config(
                "max_batch_samples and queue_depth must be at least 1".into(),
            ));
        }
        let (tx, rx) = mpsc::channel(config.queue_depth);
        let (ready_tx, ready_rx) = std_mpsc::sync_channel::<Result<()>>(1);
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("tcpinfo-rtt".into())
            .spawn(move || run(&config, &tx, &ready_tx, &stop2))
            .map_err(|e| Error::Socket {
                op: "spawn capture thread",
                source: e,
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok((
                Self {
                    stop,
                    handle: Some(handle),
                },
                RttReceiver { rx },
            )),
            Ok(Err(e)) => {
                join(handle);
                Err(e)
            }
            Err(_) => {
                join(handle);
                Err(Error::Closed)
            }
        }
    }

    /// Asks the thread to stop; it sends a last batch and ends.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn join(h: JoinHandle<()>) {
    if h.join().is_err() {
        // The thread panicked; the panic hook has said so. Nothing else to do.
    }
}

impl Drop for RttSession {
    fn drop(&mut self) {
        self.stop();
        if let Some(h) = self.handle.take() {
            join(h);
        }
    }
}

/// Accumulates samples into batches.
struct Batcher<'a> {
    tx: &'a mpsc::Sender<Result<RttBatch>>,
    stop: &'a AtomicBool,
    cur: RttBatch,
    max_samples: usize,
    live: bool,
    dropped: u64,
    closed: bool,
}

impl Batcher<'_> {
    fn push(&mut self, s: &Sample) {
        put_sample(&mut self.cur.samples, s);
    }

    fn full(&self) -> bool {
        self.cur.sample_count() >= self.max_samples
    }

    fn send(
        &mut self,
        m: &mut Matcher,
        parse: ParseStats,
        ring: RingStats,
        file: FileStats,
        summaries: bool,
        last: bool,
    ) {
        if summaries || last {
            let out = &mut self.cur.summaries;
            m.take_summaries(|k, s| put_summary(out, k, s));
        }
        let mut b = std::mem::take(&mut self.cur);
        b.stats = RttStats {
            parse,
            matching: m.stats(),
            ring,
            file,
            dropped_samples: self.dropped,
        };
        b.last = last;
        // Never block a live ring, nor a stopped session (its consumer may be gone).
        if (self.live && !last) || self.stop.load(Ordering::Acquire) {
            match self.tx.try_send(Ok(b)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(Ok(b))) => {
                    self.dropped += b.sample_count() as u64;
                }
                Err(_) => self.closed = true,
            }
        } else if self.tx.blocking_send(Ok(b)).is_err() {
            self.closed = true;
        }
    }
}

fn run(
    config: &SessionConfig,
    tx: &mpsc::Sender<Result<RttBatch>>,
    ready: &std_mpsc::SyncSender<Result<()>>,
    stop: &AtomicBool,
) {
    let mut matcher = Matcher::new(config.matcher.clone());
    let mut parse = ParseStats::default();
    let mut batcher = Batcher {
        tx,
        stop,
        cur: RttBatch::default(),
        max_samples: config.max_batch_samples,
        live: matches!(config.source, Source::Live { .. }),
        dropped: 0,
        closed: false,
    };
    match &config.source {
        Source::File(path) => {
            if let Err(e) = std::fs::metadata(path).map_err(|source| Error::Io {
                path: path.display().to_string(),
                source,
            }) {
                tell(ready.send(Err(e)));
                return;
            }
            tell(ready.send(Ok(())));
            let interval = config
                .summary_interval
                .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
            let mut next_summary: Option<i64> = None;
            let r = read_file(path, |frame| {
                if batcher.closed || stop.load(Ordering::Relaxed) {
                    return;
                }
                let Some(seg) = parse.parse(frame.link, frame.data) else {
                    return;
                };
                if let Some(s) = matcher.process(&seg, frame.t_ns) {
                    batcher.push(&s);
                }
                let due = interval.is_some_and(|iv| {
                    let n = *next_summary.get_or_insert(frame.t_ns.saturating_add(iv));
                    frame.t_ns >= n
                });
                if due {
                    next_summary = Some(frame.t_ns.saturating_add(interval.unwrap_or(0)));
                }
                if batcher.full() || due {
                    batcher.send(
                        &mut matcher,
                        parse,
                        RingStats::default(),
                        FileStats::default(),
                        due,
                        false,
                    );
                }
            });
            match r {
                Ok(file) => {
                    batcher.send(&mut matcher, parse, RingStats::default(), file, true, true);
                }
                Err(e) => {
                    tell(tx.blocking_send(Err(e)));
                }
            }
        }
        Source::Live { ring, netns } => {
            let opened = netns
                .as_deref()
                .map_or(Ok(()), enter_netns)
                .and_then(|()| Ring::open(ring));
            let mut ring = match opened {
                Ok(r) => r,
                Err(e) => {
                    tell(ready.send(Err(e)));
                    return;
                }
            };
            tell(ready.send(Ok(())));
            live_loop(
                &mut ring,
                config,
                &mut matcher,
                &mut parse,
                &mut batcher,
                stop,
            );
        }
    }
}

/// Sends on a channel whose receiver may be gone (the session was dropped): then there
/// is nobody left to tell, which is not an error.
fn tell<E>(r: std::result::Result<(), E>) {
    r.ok();
}

fn unix_now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn live_loop(
    ring: &mut Ring,
    config: &SessionConfig,
    matcher: &mut Matcher,
    parse: &mut ParseStats,
    batcher: &mut Batcher<'_>,
    stop: &AtomicBool,
) {
    let mut last_batch = Instant::now();
    let mut last_summary = Instant::now();
    let heartbeat = Duration::from_secs(1);
    let mut ring_stats = RingStats::default();
    // After a stop request, one more wait of a block timeout: the kernel then retires
    // the partly filled block, so the packets of the last moments are not lost.
    let final_wait = match &config.source {
        Source::Live { ring, .. } => ring.block_timeout + Duration::from_millis(10),
        Source::File(_) => Duration::ZERO,
    };
    let mut stopping = false;
    while !stopping && !batcher.closed {
        stopping = stop.load(Ordering::Acquire);
        let timeout = if stopping { final_wait } else { POLL_TIMEOUT };
        let r = ring.next_packets(timeout, |t_ns, data| {
            let Some(seg) = parse.parse(Some(LinkType::RawIp), data) else {
                return;
            };
            if let Some(s) = matcher.process(&seg, t_ns) {
                batcher.push(&s);
            }
        });
        if let Err(e) = r {
            tell(batcher.tx.blocking_send(Err(e)));
            return;
        }
        matcher.advance(unix_now_ns());
        let summaries = config
            .summary_interval
            .is_some_and(|iv| last_summary.elapsed() >= iv);
        let since = last_batch.elapsed();
        if batcher.full()
            || summaries
            || (since >= config.batch_interval && !batcher.cur.samples.is_empty())
            || since >= heartbeat
        {
            ring_stats = ring.stats().unwrap_or(ring_stats);
            batcher.send(
                matcher,
                *parse,
                ring_stats,
                FileStats::default(),
                summaries,
                false,
            );
            last_batch = Instant::now();
            if summaries {
                last_summary = last_batch;
            }
        }
    }
    ring_stats = ring.stats().unwrap_or(ring_stats);
    batcher.send(
        matcher,
        *parse,
        ring_stats,
        FileStats::default(),
        true,
        true,
    );
}
