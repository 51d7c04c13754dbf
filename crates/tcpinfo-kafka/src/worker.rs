//! The producer thread's loop (a single-threaded tokio runtime, as rskafka needs one):
//! takes the polls, makes their messages into the [`Buffer`], connects (with backoff),
//! and keeps one produce request in flight per partition: a partition's batch goes when it
//! holds `batch_bytes` or its oldest message has waited `linger`. A failed request is
//! retried from the same messages after a per-partition backoff (doubling from
//! `backoff_min` to `backoff_max`); rskafka reconnects to the partition's leader by
//! itself. Closing sends everything at once and gives up at the deadline, reporting what
//! was not delivered.

use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rskafka::client::partition::{
    Compression as RsCompression, PartitionClient, UnknownTopicHandling,
};
use rskafka::client::{ClientBuilder, Credentials, SaslConfig};
use rskafka::BackoffConfig;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, timeout};

use crate::buffer::Buffer;
use crate::config::{Compression, ProducerConfig, SaslMechanism};
use crate::message::{MessageBuilder, Msg, PollInput};
use crate::stats::Counters;

/// What the handle sends to the thread.
pub(crate) enum Cmd {
    /// One poll (its bytes are counted in the intake gauges until taken).
    Poll(PollInput),
    /// Deliver what is queued until `deadline`, answer, stop.
    Close {
        deadline: Instant,
        reply: SyncSender<CloseReport>,
    },
}

/// What `close` achieved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CloseReport {
    /// Records delivered over the producer's life.
    pub delivered: u64,
    /// Records dropped over the producer's life (buffer full, intake full).
    pub dropped: u64,
    /// Records still queued at the deadline, given up (0: everything was delivered).
    pub undelivered: u64,
}

enum Done {
    Connected(Result<Vec<Arc<PartitionClient>>, String>),
    Produced {
        lane: usize,
        records: usize,
        bytes: usize,
        result: Result<(), Failure>,
    },
}

enum Failure {
    /// The broker refused the record batch as too large.
    TooLarge(String),
    Other(String),
}

enum Conn {
    Down {
        retry_at: Instant,
        backoff: Duration,
    },
    Connecting,
    Up(Vec<Arc<PartitionClient>>),
}

#[derive(Clone, Copy)]
struct LaneRetry {
    at: Option<Instant>,
    backoff: Duration,
    /// Request size limit: `batch_bytes`, halved after each "too large" refusal.
    max_bytes: usize,
}

pub(crate) struct Worker {
    cfg: Arc<ProducerConfig>,
    tls: Option<Arc<rustls::ClientConfig>>,
    builder: MessageBuilder,
    buf: Buffer,
    counters: Arc<Counters>,
    scratch: Vec<Msg>,
    conn: Conn,
    retry: Vec<LaneRetry>,
    tasks: JoinSet<Done>,
    sending: usize,
}

/// How long the loop sleeps when nothing is due (it wakes on any command anyway).
const IDLE_WAKE: Duration = Duration::from_secs(3600);

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Worker {
    pub fn new(
        cfg: Arc<ProducerConfig>,
        tls: Option<Arc<rustls::ClientConfig>>,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            builder: MessageBuilder::new(&cfg),
            buf: Buffer::new(cfg.buffer_bytes),
            tls,
            counters,
            scratch: Vec::new(),
            conn: Conn::Down {
                retry_at: Instant::now(),
                backoff: cfg.backoff_min,
            },
            retry: Vec::new(),
            tasks: JoinSet::new(),
            sending: 0,
            cfg,
        }
    }

    /// Runs until closed (or every handle is gone).
    pub async fn run(mut self, mut rx: UnboundedReceiver<Cmd>) {
        let mut closing: Option<(Instant, Option<SyncSender<CloseReport>>)> = None;
        loop {
            let now = Instant::now();
            self.start_work(now, closing.is_some());
            if let Some((deadline, _)) = &closing {
                if (self.buf.is_empty() && self.sending == 0) || now >= *deadline {
                    break;
                }
            }
            let wake = self.next_wake(now, closing.as_ref().map(|c| c.0));
            tokio::select! {
                cmd = rx.recv(), if closing.is_none() => match cmd {
                    Some(Cmd::Poll(p)) => self.ingest(&p),
                    Some(Cmd::Close { deadline, reply }) => closing = Some((deadline, Some(reply))),
                    None => closing = Some((Instant::now() + crate::producer::DROP_CLOSE_DEADLINE, None)),
                },
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    if let Ok(done) = done {
                        self.finished(done);
                    }
                }
                () = sleep_until(wake.into()) => {}
            }
        }
        let (left, evicted) = self.buf.abandon();
        Counters::add(&self.counters.undelivered, left);
        Counters::add(&self.counters.dropped, evicted);
        self.gauges();
        self.tasks.abort_all();
        let now = self.counters.snapshot();
        let report = CloseReport {
            delivered: now.delivered,
            dropped: now.dropped,
            undelivered: now.undelivered,
        };
        if let Some((_, Some(reply))) = closing {
            // The caller may have stopped waiting (its own deadline); nothing to do then.
            let _ignored = reply.try_send(report);
        }
    }

    fn ingest(&mut self, p: &PollInput) {
        Counters::sub(&self.counters.intake_polls, 1);
        Counters::sub(&self.counters.intake_bytes, p.len_bytes() as u64);
        Counters::add(&self.counters.polls, 1);
        if self.counters.past_close_deadline() {
            // A backlog met by the close deadline: given up without making messages.
            let left = tcpinfo_core::RecordIter::new(&p.index, &[], &[])
                .filter(|r| r.flags & tcpinfo_core::FLAG_HAS_RECORD != 0)
                .count() as u64;
            Counters::add(&self.counters.undelivered, left);
            return;
        }
        let mut out = std::mem::take(&mut self.scratch);
        let built = self.builder.build(p, Instant::now(), &mut out);
        Counters::add(&self.counters.queued, built.messages);
        Counters::add(&self.counters.sampled_out, built.sampled_out);
        let mut dropped = 0;
        for m in out.drain(..) {
            dropped += self.buf.push(m);
        }
        self.scratch = out;
        Counters::add(&self.counters.dropped, dropped);
        self.gauges();
    }

    fn gauges(&self) {
        Counters::set(&self.counters.buffered_records, self.buf.len() as u64);
        Counters::set(&self.counters.buffered_bytes, self.buf.bytes() as u64);
    }

    /// Starts a connection attempt or the produce requests that are due.
    fn start_work(&mut self, now: Instant, closing: bool) {
        match &self.conn {
            Conn::Down { retry_at, .. } if *retry_at <= now && !self.buf.is_empty() => {
                self.conn = Conn::Connecting;
                let cfg = Arc::clone(&self.cfg);
                let tls = self.tls.clone();
                self.tasks.spawn(async move {
                    let limit = cfg.request_timeout * 2;
                    let r = match timeout(limit, connect(&cfg, tls)).await {
                        Ok(r) => r,
                        Err(_) => Err(format!("connecting took over {limit:?}")),
                    };
                    Done::Connected(r)
                });
            }
            Conn::Up(parts) => {
                let parts = parts.clone();
                for (i, part) in parts.iter().enumerate() {
                    if self.buf.busy(i) || self.retry[i].at.is_some_and(|t| t > now) {
                        continue;
                    }
                    let due = self.buf.due(i, self.cfg.linger).is_some_and(|t| t <= now);
                    if !(closing && self.buf.due(i, Duration::ZERO).is_some()
                        || due
                        || self.buf.full(i, self.cfg.batch_bytes))
                    {
                        continue;
                    }
                    let records = self.buf.take(i, self.retry[i].max_bytes, &self.cfg.host);
                    if records.is_empty() {
                        continue;
                    }
                    let n = records.len();
                    let bytes = records
                        .iter()
                        .map(rskafka::record::Record::approximate_size)
                        .sum();
                    let client = Arc::clone(part);
                    let compression = rs_compression(self.cfg.compression);
                    let limit = self.cfg.request_timeout + Duration::from_secs(1);
                    self.sending += 1;
                    Counters::add(&self.counters.requests, 1);
                    self.tasks.spawn(async move {
                        let result = match timeout(limit, client.produce(records, compression))
                            .await
                        {
                            Ok(Ok(_offsets)) => Ok(()),
                            Ok(Err(e)) => Err(failure(&e)),
                            Err(_) => Err(Failure::Other(format!("no answer within {limit:?}"))),
                        };
                        Done::Produced {
                            lane: i,
                            records: n,
                            bytes,
                            result,
                        }
                    });
                }
            }
            _ => {}
        }
    }

    fn finished(&mut self, done: Done) {
        match done {
            Done::Connected(Ok(parts)) => {
                // Nothing is in flight while connecting, so the lanes can be re-spread.
                self.buf.set_partitions(parts.len());
                Counters::set(&self.counters.partitions, parts.len() as u64);
                self.retry = vec![
                    LaneRetry {
                        at: None,
                        backoff: self.cfg.backoff_min,
                        max_bytes: self.cfg.batch_bytes,
                    };
                    parts.len()
                ];
                self.conn = Conn::Up(parts);
            }
            Done::Connected(Err(e)) => {
                Counters::add(&self.counters.connect_errors, 1);
                self.failing(format!("connect: {e}"));
                let backoff = match &self.conn {
                    Conn::Down { backoff, .. } => *backoff,
                    _ => self.cfg.backoff_min,
                };
                self.conn = Conn::Down {
                    retry_at: Instant::now() + backoff,
                    backoff: (backoff * 2).min(self.cfg.backoff_max),
                };
            }
            Done::Produced {
                lane,
                records,
                bytes,
                result,
            } => {
                self.sending -= 1;
                match result {
                    Ok(()) => {
                        let n = self.buf.ack(lane);
                        Counters::add(&self.counters.delivered, n);
                        Counters::add(&self.counters.delivered_bytes, bytes as u64);
                        Counters::set(&self.counters.failing_since_ms, 0);
                        let r = &mut self.retry[lane];
                        r.at = None;
                        r.backoff = self.cfg.backoff_min;
                    }
                    Err(Failure::TooLarge(e)) => {
                        // Split: retry at once with half the size; a single record the
                        // broker refuses can never be delivered, so it is dropped.
                        Counters::add(&self.counters.dropped, self.buf.fail(lane));
                        Counters::add(&self.counters.send_errors, 1);
                        self.failing(format!("produce to partition {lane}: {e}"));
                        let r = &mut self.retry[lane];
                        if records <= 1 {
                            Counters::add(&self.counters.dropped, self.buf.drop_head(lane));
                        } else {
                            r.max_bytes = (bytes / 2).max(1);
                        }
                    }
                    Err(Failure::Other(e)) => {
                        Counters::add(&self.counters.dropped, self.buf.fail(lane));
                        Counters::add(&self.counters.send_errors, 1);
                        self.failing(format!("produce to partition {lane}: {e}"));
                        let r = &mut self.retry[lane];
                        r.at = Some(Instant::now() + r.backoff);
                        r.backoff = (r.backoff * 2).min(self.cfg.backoff_max);
                    }
                }
                self.gauges();
            }
        }
    }

    fn failing(&self, m: String) {
        let _prev = self.counters.failing_since_ms.compare_exchange(
            0,
            unix_ms(),
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
        );
        self.counters.error(m);
    }

    /// The next time something becomes due: a linger, a retry, a reconnect, the deadline.
    fn next_wake(&self, now: Instant, deadline: Option<Instant>) -> Instant {
        let mut wake = now + IDLE_WAKE;
        if let Some(d) = deadline {
            wake = wake.min(d);
        }
        match &self.conn {
            Conn::Down { retry_at, .. } if !self.buf.is_empty() => wake = wake.min(*retry_at),
            Conn::Up(parts) => {
                let linger = if deadline.is_some() {
                    Duration::ZERO
                } else {
                    self.cfg.linger
                };
                for i in 0..parts.len() {
                    if let Some(due) = self.buf.due(i, linger) {
                        let at = self.retry[i].at.map_or(due, |r| r.max(due));
                        wake = wake.min(at);
                    }
                }
            }
            _ => {}
        }
        wake.max(now)
    }
}

fn failure(e: &rskafka::client::error::Error) -> Failure {
    use rskafka::client::error::{Error as E, ProtocolError as P};
    match e {
        E::ServerError {
            protocol_error: P::MessageTooLarge | P::RecordListTooLarge,
            ..
        } => Failure::TooLarge(e.to_string()),
        _ => Failure::Other(e.to_string()),
    }
}

fn rs_compression(c: Compression) -> RsCompression {
    match c {
        Compression::None => RsCompression::NoCompression,
        Compression::Gzip => RsCompression::Gzip,
        Compression::Lz4 => RsCompression::Lz4,
        Compression::Zstd => RsCompression::Zstd,
    }
}

/// Partitions of the topic (0: the broker does not know it).
async fn partitions_of(client: &rskafka::client::Client, topic: &str) -> Result<usize, String> {
    let topics = client.list_topics().await.map_err(|e| e.to_string())?;
    Ok(topics
        .iter()
        .find(|t| t.name == topic)
        .map_or(0, |t| t.partitions.len()))
}

/// Connects, finds the topic's partitions (asking for the topic by name first when the
/// broker does not list it, which lets a broker with `auto.create.topics.enable` create
/// it), and opens one client per partition (each on its partition's leader).
async fn connect(
    cfg: &ProducerConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Vec<Arc<PartitionClient>>, String> {
    let mut b = ClientBuilder::new(cfg.brokers.clone())
        .client_id(cfg.client_id.as_str())
        .backoff_config(BackoffConfig {
            init_backoff: cfg.backoff_min,
            max_backoff: cfg.backoff_max,
            base: 2.0,
            deadline: Some(cfg.request_timeout),
        });
    if let Some(tls) = tls {
        b = b.tls_config(tls);
    }
    if let Some(s) = &cfg.sasl {
        let c = Credentials::new(s.username.clone(), s.password.clone());
        b = b.sasl_config(match s.mechanism {
            SaslMechanism::Plain => SaslConfig::Plain(c),
            SaslMechanism::ScramSha256 => SaslConfig::ScramSha256(c),
            SaslMechanism::ScramSha512 => SaslConfig::ScramSha512(c),
        });
    }
    let client = b.build().await.map_err(|e| e.to_string())?;
    let mut n = partitions_of(&client, &cfg.topic).await?;
    if n == 0 {
        let _asked = client
            .partition_client(cfg.topic.as_str(), 0, UnknownTopicHandling::Error)
            .await;
        n = partitions_of(&client, &cfg.topic).await?;
    }
    if n == 0 {
        return Err(format!(
            "topic {} does not exist and the broker did not create it",
            cfg.topic
        ));
    }
    let mut parts = Vec::with_capacity(n);
    for p in 0..n {
        let p = i32::try_from(p).map_err(|e| e.to_string())?;
        let c = client
            .partition_client(cfg.topic.as_str(), p, UnknownTopicHandling::Retry)
            .await
            .map_err(|e| e.to_string())?;
        parts.push(Arc::new(c));
    }
    Ok(parts)
}
