//! The bounded buffer of messages waiting for the broker: one FIFO lane per partition
//! (one produce request in flight per lane, so a connection's records keep their order),
//! bounded in bytes of keys and values across all lanes. When a new message does not fit,
//! the oldest queued message of any lane is dropped first (counted).
//!
//! A lane's in-flight request is a prefix of the lane; its messages stay in the lane until
//! the broker acknowledges them, so a failed request is retried from the same records.
//! Dropping an in-flight message removes it from the buffer at once (the bound holds);
//! whether it counts as dropped or delivered is known when its request ends.
//!
//! Before the topic's partition count is known, messages wait in a holding lane, and are
//! spread over the lanes (in arrival order) once it is.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rskafka::chrono::{TimeZone, Utc};
use rskafka::record::Record;

use crate::message::{partition_of, Msg};

#[derive(Debug, Default)]
struct Lane {
    q: VecDeque<Msg>,
    bytes: usize,
    /// Messages at the head that belong to the request in flight.
    inflight: usize,
    /// Messages of the request in flight that were dropped from the buffer meanwhile.
    evicted: u64,
}

/// See the module docs.
#[derive(Debug)]
pub struct Buffer {
    limit: usize,
    holding: Lane,
    lanes: Vec<Lane>,
    bytes: usize,
    records: usize,
}

impl Buffer {
    /// An empty buffer bounded to `limit` bytes of keys and values.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            holding: Lane::default(),
            lanes: Vec::new(),
            bytes: 0,
            records: 0,
        }
    }

    /// Bytes of keys and values queued (in-flight ones included).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Messages queued (in-flight ones included).
    pub fn len(&self) -> usize {
        self.records
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Lanes (the topic's partitions; 0 while unknown).
    pub fn partitions(&self) -> usize {
        self.lanes.len()
    }

    /// Queues `m`, first dropping the oldest messages while it would not fit (a message
    /// larger than the bound fits only into an empty buffer). Returns the messages
    /// dropped now (not counting in-flight ones, see [`Self::ack`] and [`Self::fail`]).
    pub fn push(&mut self, m: Msg) -> u64 {
        let mut dropped = 0;
        while self.records > 0 && self.bytes + m.size() > self.limit {
            dropped += self.evict_oldest();
        }
        self.bytes += m.size();
        self.records += 1;
        let lane = if self.lanes.is_empty() {
            &mut self.holding
        } else {
            let n = self.lanes.len();
            &mut self.lanes[partition_of(m.hash, n)]
        };
        lane.bytes += m.size();
        lane.q.push_back(m);
        dropped
    }

    /// Drops the oldest message; 1 if that counts as a drop now, 0 if it was in flight.
    fn evict_oldest(&mut self) -> u64 {
        let lane = std::iter::once(&mut self.holding)
            .chain(self.lanes.iter_mut())
            .filter(|l| !l.q.is_empty())
            .min_by_key(|l| l.q.front().map_or(u64::MAX, |m| m.order));
        let Some(lane) = lane else { return 0 };
        let Some(m) = lane.q.pop_front() else {
            return 0;
        };
        lane.bytes -= m.size();
        self.bytes -= m.size();
        self.records -= 1;
        if lane.inflight > 0 {
            lane.inflight -= 1;
            lane.evicted += 1;
            0
        } else {
            1
        }
    }

    /// Spreads the messages over `n` lanes (the topic's partitions), keeping arrival order
    /// within each. Call only with nothing in flight.
    pub fn set_partitions(&mut self, n: usize) {
        let n = n.max(1);
        if n == self.lanes.len() {
            return;
        }
        let mut all: Vec<Msg> = std::mem::take(&mut self.holding.q).into();
        for l in self.lanes.drain(..) {
            all.extend(l.q);
        }
        all.sort_by_key(|m| m.order);
        self.holding = Lane::default();
        self.lanes = (0..n).map(|_| Lane::default()).collect();
        for m in all {
            let lane = &mut self.lanes[partition_of(m.hash, n)];
            lane.bytes += m.size();
            lane.q.push_back(m);
        }
    }

    /// When lane `i`'s oldest queued message has waited the linger (`None`: nothing to
    /// send, or a request in flight).
    pub fn due(&self, i: usize, linger: Duration) -> Option<Instant> {
        let l = self.lanes.get(i)?;
        if l.inflight > 0 || l.evicted > 0 {
            return None;
        }
        l.q.front().map(|m| m.queued_at + linger)
    }

    /// Whether lane `i` has a full batch queued.
    pub fn full(&self, i: usize, batch_bytes: usize) -> bool {
        self.lanes
            .get(i)
            .is_some_and(|l| l.inflight == 0 && l.evicted == 0 && l.bytes >= batch_bytes)
    }

    /// The next request of lane `i`: copies of its oldest messages, up to `max_bytes` of
    /// keys and values (at least one message), now in flight. Empty when the lane is
    /// empty or busy.
    pub fn take(&mut self, i: usize, max_bytes: usize, host: &str) -> Vec<Record> {
        let Some(l) = self.lanes.get_mut(i) else {
            return Vec::new();
        };
        if l.inflight > 0 || l.evicted > 0 {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut bytes = 0;
        for m in &l.q {
            let size = m.size() + m.netns.len() + host.len() + RECORD_OVERHEAD;
            if !out.is_empty() && bytes + size > max_bytes {
                break;
            }
            bytes += size;
            out.push(record_of(m, host));
        }
        l.inflight = out.len();
        out
    }

    /// Lane `i`'s request was acknowledged: its messages leave. Returns how many were
    /// delivered (those dropped from the buffer while in flight included).
    pub fn ack(&mut self, i: usize) -> u64 {
        let Some(l) = self.lanes.get_mut(i) else {
            return 0;
        };
        let mut delivered = l.evicted;
        for _ in 0..l.inflight {
            if let Some(m) = l.q.pop_front() {
                l.bytes -= m.size();
                self.bytes -= m.size();
                self.records -= 1;
                delivered += 1;
            }
        }
        l.inflight = 0;
        l.evicted = 0;
        delivered
    }

    /// Lane `i`'s request failed: its messages stay for the retry. Returns how many of
    /// them had been dropped from the buffer meanwhile (now lost).
    pub fn fail(&mut self, i: usize) -> u64 {
        let Some(l) = self.lanes.get_mut(i) else {
            return 0;
        };
        let lost = l.evicted;
        l.inflight = 0;
        l.evicted = 0;
        lost
    }

    /// Drops lane `i`'s oldest message (one the broker refuses whatever the batch size);
    /// returns 1 if there was one. Call only with nothing in flight on the lane.
    pub fn drop_head(&mut self, i: usize) -> u64 {
        let Some(l) = self.lanes.get_mut(i) else {
            return 0;
        };
        let Some(m) = l.q.pop_front() else { return 0 };
        l.bytes -= m.size();
        self.bytes -= m.size();
        self.records -= 1;
        1
    }

    /// Whether a request is in flight on lane `i`.
    pub fn busy(&self, i: usize) -> bool {
        self.lanes
            .get(i)
            .is_some_and(|l| l.inflight > 0 || l.evicted > 0)
    }

    /// Gives up on everything (close past its deadline): returns the messages still
    /// queued and those dropped while in flight, and empties the buffer.
    pub fn abandon(&mut self) -> (u64, u64) {
        let evicted = self.lanes.iter().map(|l| l.evicted).sum();
        let left = self.records as u64;
        self.holding = Lane::default();
        for l in &mut self.lanes {
            *l = Lane::default();
        }
        self.bytes = 0;
        self.records = 0;
        (left, evicted)
    }
}

/// Bytes a record takes in a request beyond its key, value and header values: header
/// names, varint lengths, deltas (an estimate on the safe side).
const RECORD_OVERHEAD: usize = 32;

fn record_of(m: &Msg, host: &str) -> Record {
    // Inserted in key order (cheaper than `BTreeMap::from`, which sorts a temporary array).
    let mut headers = BTreeMap::new();
    headers.insert("host".to_owned(), host.as_bytes().to_vec());
    headers.insert("kind".to_owned(), m.kind.as_bytes().to_vec());
    headers.insert("netns".to_owned(), m.netns.as_bytes().to_vec());
    Record {
        key: Some(m.key.clone()),
        value: Some(m.value.clone()),
        headers,
        timestamp: Utc
            .timestamp_millis_opt(m.timestamp_ms)
            .single()
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::message::murmur2;

    fn msg(order: u64, key: &str, value_len: usize) -> Msg {
        Msg {
            order,
            hash: murmur2(key.as_bytes()),
            key: key.as_bytes().to_vec(),
            value: vec![b'x'; value_len],
            kind: "changed",
            netns: Arc::from(""),
            timestamp_ms: 0,
            queued_at: Instant::now(),
        }
    }

    #[test]
    fn oldest_dropped_first_and_bound_holds() {
        let mut b = Buffer::new(1000);
        b.set_partitions(4);
        let mut dropped = 0;
        for i in 0..100 {
            dropped += b.push(msg(i, &format!("k{i}"), 96));
            assert!(b.bytes() <= 1000);
        }
        assert_eq!(b.len(), 10);
        assert_eq!(dropped, 90);
        // The survivors are the 10 newest.
        let mut orders: Vec<u64> = (0..4)
            .flat_map(|i| b.take(i, usize::MAX, "h").into_iter().map(|r| r.key))
            .map(|k| String::from_utf8(k.unwrap()).unwrap()[1..].parse().unwrap())
            .collect();
        orders.sort_unstable();
        assert_eq!(orders, (90..100).collect::<Vec<_>>());
    }

    #[test]
    fn a_connection_stays_in_one_lane_in_order() {
        let mut b = Buffer::new(1 << 20);
        for i in 0..50 {
            b.push(msg(i, &format!("c{}", i % 5), 10));
        }
        b.set_partitions(3);
        for lane in 0..3 {
            let recs = b.take(lane, usize::MAX, "h");
            for r in &recs {
                let k = r.key.clone().unwrap();
                assert_eq!(partition_of(murmur2(&k), 3), lane);
            }
            assert_eq!(b.ack(lane), recs.len() as u64);
        }
        assert!(b.is_empty());
        assert_eq!(b.bytes(), 0);
    }

    #[test]
    fn in_flight_drops_count_when_the_request_ends() {
        let mut b = Buffer::new(300);
        b.set_partitions(1);
        for i in 0..3 {
            b.push(msg(i, "k", 98));
        }
        let sent = b.take(0, usize::MAX, "h");
        assert_eq!(sent.len(), 3);
        assert!(b.busy(0));
        // Two new messages push two in-flight ones out: not counted yet.
        assert_eq!(b.push(msg(3, "k", 98)) + b.push(msg(4, "k", 98)), 0);
        assert!(b.bytes() <= 300);
        // The request fails: those two are lost; the third is retried first.
        assert_eq!(b.fail(0), 2);
        let retry = b.take(0, usize::MAX, "h");
        assert_eq!(retry.len(), 3);
        assert_eq!(b.ack(0), 3);
        assert!(b.is_empty());
        // Acknowledged after an eviction: the evicted ones were delivered.
        for i in 5..8 {
            b.push(msg(i, "k", 98));
        }
        let _ = b.take(0, usize::MAX, "h");
        assert_eq!(b.push(msg(8, "k", 98)), 0);
        assert_eq!(b.ack(0), 3);
        assert_eq!(b.len(), 1);
        assert_eq!(b.abandon(), (1, 0));
    }

    #[test]
    fn take_respects_the_batch_size_and_headers() {
        let mut b = Buffer::new(1 << 20);
        b.set_partitions(1);
        for i in 0..10 {
            b.push(msg(i, "k", 99));
        }
        let r = b.take(0, 2 * (100 + 5 + RECORD_OVERHEAD), "host1");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].headers["host"], b"host1");
        assert_eq!(r[0].headers["kind"], b"changed");
        assert!(
            b.take(0, 250, "h").is_empty(),
            "one request in flight per lane"
        );
        assert!(!b.full(0, 0) && b.due(0, Duration::ZERO).is_none());
    }
}
