//! Flow-event counts, byte deltas and per-port accounting for metrics, done on the poller
//! thread as records are reported, so a metrics consumer reads a few numbers per poll
//! instead of walking every record on its own (JS) thread.
//!
//! - Flow events: an open is a record of kind `Opened`, or a close of a connection no poll
//!   saw (`FLAG_UNSEEN`); a close is a record of kind `Closed`. Always counted (two adds).
//! - Bytes (when [`PollerConfig::count_bytes`] is set or ports are configured): for each
//!   reported record with a `tcp_info` of at least 136 bytes, the growth of
//!   `tcpi_bytes_acked` (sent) and `tcpi_bytes_received` since the connection's previous
//!   report, including the final counters of a close, so summed deltas never go backwards.
//!   Connections present at the first poll start from their counters then; a connection
//!   first seen later counts from zero. A counter that went down counts 0 and is counted
//!   in [`PollStats::counters_backwards`](super::batch::PollStats::counters_backwards).
//!   Memory: one 32-byte entry per tracked connection (a `hashbrown` map keyed by cookie),
//!   only when accounting is on.
//! - Ports: for each of at most [`MAX_METRIC_PORTS`] local ports configured once, the
//!   connections opened minus closed and the bytes of those connections, as deltas in
//!   [`PollBatch::port_stats`] (one entry per configured port, in configured order).
//!
//! Every figure is a per-poll delta added into the batch, so the parts of a poll, the
//! closes gathered while polls were skipped, and the pollers of several namespaces all add
//! up without special cases.

use hashbrown::HashMap;
use rustc_hash::FxBuildHasher;

use super::batch::{PollBatch, PortStats, RecordKind, FLAG_UNSEEN};
use crate::parse::attrs::{Attrs, INET_DIAG_INFO};
use crate::parse::diag_msg::InetDiagMsg;
use crate::parse::read_u64;

/// Most local ports with per-port accounting (a metric label per port: never unbounded).
pub const MAX_METRIC_PORTS: usize = 64;
/// Offset of `tcpi_bytes_acked` in `struct tcp_info` (Linux 4.1+).
const TCPI_BYTES_ACKED: usize = 120;
/// Offset of `tcpi_bytes_received` in `struct tcp_info` (Linux 4.1+).
const TCPI_BYTES_RECEIVED: usize = 128;
/// Port slot of a connection on no configured port.
const NO_PORT: u8 = u8::MAX;

/// What is remembered of one connection between its reports.
#[derive(Debug, Clone, Copy)]
struct Prev {
    acked: u64,
    received: u64,
    /// Whether `acked` and `received` hold counters (the record had a long enough `tcp_info`).
    known: bool,
    /// Position of its local port in the configured table, or [`NO_PORT`].
    port: u8,
}

/// The accounting state of one poller (see the module docs).
#[derive(Debug, Default)]
pub struct Accounting {
    /// Bytes are accounted (`count_bytes`, or ports configured).
    bytes: bool,
    ports: Vec<u16>,
    prev: HashMap<u64, Prev, FxBuildHasher>,
    /// Polls begun; records of the first poll only set the baseline.
    polls: u64,
}

impl Accounting {
    /// Accounting for `count_bytes` and the configured `ports` (at most
    /// [`MAX_METRIC_PORTS`], checked by `PollerConfig::validate`).
    pub fn new(count_bytes: bool, ports: &[u16]) -> Self {
        Self {
            bytes: count_bytes || !ports.is_empty(),
            ports: ports.iter().copied().take(MAX_METRIC_PORTS).collect(),
            prev: HashMap::default(),
            polls: 0,
        }
    }

    /// Starts a poll.
    pub fn begin_poll(&mut self) {
        self.polls = self.polls.saturating_add(1);
    }

    /// Connections remembered.
    pub fn len(&self) -> usize {
        self.prev.len()
    }

    /// Whether no connection is remembered.
    pub fn is_empty(&self) -> bool {
        self.prev.is_empty()
    }

    /// Heap bytes of the per-connection map.
    pub fn heap_bytes(&self) -> usize {
        self.prev.capacity() * (std::mem::size_of::<(u64, Prev)>() + 1)
    }

    /// Accounts a record just pushed into `batch` with its payload.
    pub fn on_record(
        &mut self,
        kind: RecordKind,
        flags: u8,
        msg: &InetDiagMsg<'_>,
        attrs: &Attrs<'_>,
        batch: &mut PollBatch,
    ) {
        count_event(kind, flags, batch);
        if !self.bytes {
            return;
        }
        let cookie = msg.cookie();
        let counters = attrs.get(INET_DIAG_INFO).and_then(|info| {
            Some((
                read_u64(info, TCPI_BYTES_ACKED)?,
                read_u64(info, TCPI_BYTES_RECEIVED)?,
            ))
        });
        let before = if kind == RecordKind::Closed {
            self.prev.remove(&cookie)
        } else {
            self.prev.get(&cookie).copied()
        };
        let port = match before {
            Some(p) => p.port,
            // A connection's port is decided when it is first reported (an unseen close
            // is both its open and its close).
            None if kind == RecordKind::Opened || flags & FLAG_UNSEEN != 0 => {
                self.port_slot(msg.sport())
            }
            None => NO_PORT,
        };
        let (mut sent, mut received) = (0, 0);
        if let Some((acked, recv)) = counters {
            match before {
                Some(b) if b.known => {
                    if acked < b.acked || recv < b.received {
                        batch.stats.counters_backwards += 1;
                    }
                    sent = acked.saturating_sub(b.acked);
                    received = recv.saturating_sub(b.received);
                }
                _ if self.polls <= 1 => {}
                _ => (sent, received) = (acked, recv),
            }
        }
        if kind != RecordKind::Closed {
            let (acked, recv) = counters.unwrap_or((0, 0));
            let known = counters.is_some();
            let entry = self.prev.entry(cookie).or_insert(Prev {
                acked,
                received: recv,
                known,
                port,
            });
            if known {
                (entry.acked, entry.received, entry.known) = (acked, recv, true);
            }
        }
        batch.stats.bytes_sent += sent;
        batch.stats.bytes_received += received;
        if port != NO_PORT {
            let s = self.port_stats(batch, port);
            s.bytes_sent += sent;
            s.bytes_received += received;
            if kind == RecordKind::Opened || flags & FLAG_UNSEEN != 0 {
                s.opened += 1;
            }
            if kind == RecordKind::Closed {
                s.closed += 1;
            }
        }
    }

    /// Accounts a close without counters (found by the sweep, or its namespace is gone).
    pub fn on_vanished(&mut self, cookie: u64, batch: &mut PollBatch) {
        count_event(RecordKind::Closed, 0, batch);
        if let Some(p) = self.prev.remove(&cookie) {
            if p.port != NO_PORT {
                self.port_stats(batch, p.port).closed += 1;
            }
        }
    }

    fn port_slot(&self, port: u16) -> u8 {
        self.ports
            .iter()
            .position(|p| *p == port)
            .and_then(|i| u8::try_from(i).ok())
            .unwrap_or(NO_PORT)
    }

    /// The batch's entry of port slot `slot`, the table made on first use.
    fn port_stats<'b>(&self, batch: &'b mut PollBatch, slot: u8) -> &'b mut PortStats {
        if batch.port_stats.len() != self.ports.len() {
            batch.port_stats = self
                .ports
                .iter()
                .map(|&port| PortStats {
                    port,
                    ..PortStats::default()
                })
                .collect();
        }
        &mut batch.port_stats[usize::from(slot)]
    }
}

fn count_event(kind: RecordKind, flags: u8, batch: &mut PollBatch) {
    if kind == RecordKind::Opened || flags & FLAG_UNSEEN != 0 {
        batch.stats.flow_opens += 1;
    }
    if kind == RecordKind::Closed {
        batch.stats.flow_closes += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::diag_msg::parse_diag;

    /// A reply payload: a 72-byte `inet_diag_msg` (IPv4, `sport`, `cookie`) and an
    /// `INET_DIAG_INFO` attribute of 136 bytes with the two byte counters.
    fn payload(sport: u16, cookie: u64, acked: u64, received: u64) -> Vec<u8> {
        let mut p = vec![0u8; 72];
        p[0] = 2; // AF_INET
        p[1] = 1; // ESTABLISHED
        p[4..6].copy_from_slice(&sport.to_be_bytes());
        p[44..52].copy_from_slice(&cookie.to_ne_bytes());
        let len: u16 = 4 + 136;
        p.extend_from_slice(&len.to_ne_bytes());
        p.extend_from_slice(&INET_DIAG_INFO.to_ne_bytes());
        let mut info = vec![0u8; 136];
        info[TCPI_BYTES_ACKED..TCPI_BYTES_ACKED + 8].copy_from_slice(&acked.to_ne_bytes());
        info[TCPI_BYTES_RECEIVED..TCPI_BYTES_RECEIVED + 8].copy_from_slice(&received.to_ne_bytes());
        p.extend_from_slice(&info);
        p
    }

    fn record(a: &mut Accounting, b: &mut PollBatch, kind: RecordKind, flags: u8, p: &[u8]) {
        let (msg, attrs) = parse_diag(p).expect("payload");
        a.on_record(kind, flags, &msg, &attrs, b);
    }

    /// Deltas from each connection's previous report, the final counters of a close
    /// included; the first poll sets the baseline; ports follow their connections.
    #[test]
    fn deltas_add_up_to_the_bytes_moved_after_the_first_poll() {
        let mut a = Accounting::new(true, &[80, 443]);
        let mut b = PollBatch::default();
        a.begin_poll();
        record(
            &mut a,
            &mut b,
            RecordKind::Opened,
            0,
            &payload(80, 1, 1000, 50),
        );
        assert_eq!((b.stats.bytes_sent, b.stats.bytes_received), (0, 0));
        assert_eq!(b.stats.flow_opens, 1);
        assert_eq!(b.port_stats[0].opened, 1);
        a.begin_poll();
        let mut b = PollBatch::default();
        record(
            &mut a,
            &mut b,
            RecordKind::Changed,
            0,
            &payload(80, 1, 1500, 60),
        );
        record(
            &mut a,
            &mut b,
            RecordKind::Opened,
            0,
            &payload(443, 2, 700, 7),
        );
        record(
            &mut a,
            &mut b,
            RecordKind::Closed,
            FLAG_UNSEEN,
            &payload(22, 3, 9, 1),
        );
        assert_eq!(
            (b.stats.bytes_sent, b.stats.bytes_received),
            (500 + 700 + 9, 10 + 7 + 1)
        );
        assert_eq!((b.stats.flow_opens, b.stats.flow_closes), (2, 1));
        assert_eq!(b.port_stats[0].bytes_sent, 500);
        assert_eq!(b.port_stats[1].bytes_sent, 700);
        a.begin_poll();
        let mut b = PollBatch::default();
        record(
            &mut a,
            &mut b,
            RecordKind::Closed,
            0,
            &payload(80, 1, 1400, 80),
        );
        a.on_vanished(2, &mut b);
        assert_eq!(b.stats.counters_backwards, 1);
        assert_eq!((b.stats.bytes_sent, b.stats.bytes_received), (0, 20));
        assert_eq!((b.port_stats[0].closed, b.port_stats[1].closed), (1, 1));
        assert_eq!(b.stats.flow_closes, 2);
        assert!(a.is_empty(), "closed connections are forgotten");
    }

    /// Without `count_bytes` and ports nothing is remembered; flow events still count.
    #[test]
    fn off_by_default_but_flow_events() {
        let mut a = Accounting::new(false, &[]);
        let mut b = PollBatch::default();
        a.begin_poll();
        a.begin_poll();
        record(
            &mut a,
            &mut b,
            RecordKind::Opened,
            0,
            &payload(80, 1, 1000, 50),
        );
        assert_eq!((b.stats.flow_opens, b.stats.bytes_sent, a.len()), (1, 0, 0));
        assert!(b.port_stats.is_empty());
    }
}
