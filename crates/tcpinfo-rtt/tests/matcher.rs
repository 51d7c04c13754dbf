//! TSval/TSecr matching rules (pping, RFC 7323): scripted segment sequences.
use std::net::IpAddr;
use std::time::Duration;

use tcpinfo_rtt::{ts_after, FlowKey, Matcher, MatcherConfig, Segment, Timestamps};

const MS: i64 = 1_000_000;

fn key(v6: bool) -> FlowKey {
    let (a, b): (IpAddr, IpAddr) = if v6 {
        ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap())
    } else {
        ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap())
    };
    FlowKey::new(a, 40000, b, 80)
}

fn seg(flow: FlowKey, tsval: u32, tsecr: u32) -> Segment {
    Segment {
        flow,
        ts: Some(Timestamps { tsval, tsecr }),
        syn: false,
        ack: true,
        seq: 0,
        ack_no: 0,
        seq_len: 0,
    }
}

fn syn(flow: FlowKey, tsval: u32) -> Segment {
    Segment {
        ts: Some(Timestamps { tsval, tsecr: 0 }),
        syn: true,
        ack: false,
        seq_len: 1,
        ..seg(flow, 0, 0)
    }
}

/// A segment sending `len` bytes from `seq`, acknowledging `ack_no`.
fn data(flow: FlowKey, tsval: u32, tsecr: u32, seq: u32, len: u32, ack_no: u32) -> Segment {
    Segment {
        seq,
        seq_len: len,
        ack_no,
        ..seg(flow, tsval, tsecr)
    }
}

#[test]
fn an_echo_covering_later_new_data_is_timed_from_that_data() {
    let c = key(false);
    let s = c.reverse();
    let mut m = Matcher::new(MatcherConfig::default());
    m.process(&data(c, 1, 7, 1000, 0, 500), 0);
    m.process(&data(s, 7, 1, 500, 0, 1000), MS);
    // A pure ACK, then data in the same TSval tick (the request of a request/response).
    m.process(&data(c, 2, 7, 1000, 0, 500), 10 * MS);
    m.process(&data(c, 2, 7, 1000, 100, 500), 10 * MS + 600_000);
    // The reply acknowledges the data: timed from the data, not from the pure ACK.
    let r = m.process(&data(s, 8, 2, 500, 100, 1100), 20 * MS).unwrap();
    assert_eq!(r.rtt_ns, 9_400_000);
    // An echo that does not cover the later data is timed from the first packet.
    m.process(&data(c, 3, 8, 1100, 0, 600), 30 * MS);
    m.process(&data(c, 3, 8, 1100, 100, 600), 30 * MS + 500_000);
    let r = m.process(&data(s, 9, 3, 600, 0, 1100), 40 * MS).unwrap();
    assert_eq!(r.rtt_ns, 10_000_000);
    // A retransmission (old sequence) in the tick does not move the time: a spurious
    // retransmit of data the peer already has must not shorten the sample.
    m.process(&data(c, 4, 9, 1200, 0, 600), 50 * MS);
    m.process(&data(c, 4, 9, 1100, 100, 600), 50 * MS + 700_000);
    let r = m.process(&data(s, 10, 4, 600, 0, 1200), 60 * MS).unwrap();
    assert_eq!(r.rtt_ns, 10_000_000);
}

#[test]
fn handshake_and_data_give_samples_both_ways() {
    for v6 in [false, true] {
        let c = key(v6);
        let s = c.reverse();
        let mut m = Matcher::new(MatcherConfig::default());
        assert!(m.process(&syn(c, 100), 0).is_none());
        // The SYN-ACK echoes the SYN's TSval: the server side's RTT (capture point <-> server).
        let r = m
            .process(
                &Segment {
                    syn: true,
                    ..seg(s, 5000, 100)
                },
                10 * MS,
            )
            .unwrap();
        assert_eq!((r.flow, r.rtt_ns, r.tsecr), (s, 10 * MS as u64, 100));
        // The ACK echoes the SYN-ACK: the client side's RTT (capture point <-> client).
        let r = m.process(&seg(c, 101, 5000), 10 * MS + 50_000).unwrap();
        assert_eq!((r.flow, r.rtt_ns, r.tsecr), (c, 50_000, 5000));
        // Data, then its ACK: the server side's RTT.
        assert!(m.process(&seg(c, 105, 5000), 20 * MS).is_none());
        let r = m.process(&seg(s, 5010, 105), 32 * MS).unwrap();
        assert_eq!((r.flow, r.rtt_ns), (s, 12 * MS as u64));
        assert!(m.process(&seg(c, 106, 5010), 33 * MS).is_some());
        assert!(m.process(&seg(s, 5011, 106), 43 * MS).is_some());
        assert_eq!(m.flow_rtt(&s).unwrap().min_ns, 10 * MS as u64);
        assert_eq!(m.flow_rtt(&s).unwrap().count, 3);
        assert_eq!(m.stats().samples, 5);
        assert_eq!(m.stats().unidirectional, 0);
    }
}

#[test]
fn each_tsval_is_used_once_and_repeats_are_not_stored() {
    let c = key(false);
    let s = c.reverse();
    let mut m = Matcher::new(MatcherConfig::default());
    m.process(&syn(c, 1), 0);
    m.process(&seg(s, 10, 1), MS);
    // Three segments with the same TSval: only the first time is remembered.
    m.process(&seg(c, 2, 10), 2 * MS);
    m.process(&seg(c, 2, 10), 3 * MS);
    m.process(&seg(c, 2, 10), 4 * MS);
    assert_eq!(m.stats().tsval_repeats, 2);
    let r = m.process(&seg(s, 11, 2), 7 * MS).unwrap();
    assert_eq!(
        r.rtt_ns,
        5 * MS as u64,
        "measured from the first packet with the TSval"
    );
    // A second echo of the same TSval (delayed ACKs, dup ACKs) gives nothing.
    assert!(m.process(&seg(s, 12, 2), 8 * MS).is_none());
    assert!(m.process(&seg(s, 12, 2), 9 * MS).is_none());
}

#[test]
fn older_tsvals_are_not_stored_so_a_late_echo_cannot_underestimate() {
    let c = key(false);
    let s = c.reverse();
    let mut m = Matcher::new(MatcherConfig::default());
    m.process(&syn(c, 10), 0);
    m.process(&seg(s, 100, 10), MS);
    m.process(&seg(c, 20, 100), 2 * MS);
    // A reordered/old segment with TSval 15 arrives late: not stored.
    m.process(&seg(c, 15, 100), 30 * MS);
    assert_eq!(m.stats().stale_tsvals, 1);
    // The peer's dup ACK echoing 15 (sent long ago) must not give a 1 ms sample.
    assert!(m.process(&seg(s, 101, 15), 31 * MS).is_none());
}

#[test]
fn wrap_around_rfc7323() {
    assert!(ts_after(5, u32::MAX - 5));
    assert!(!ts_after(u32::MAX - 5, 5));
    assert!(ts_after(1 << 31, 1) && !ts_after(1, 1 << 31) || ts_after(1, 1 << 31));
    let c = key(false);
    let s = c.reverse();
    let mut m = Matcher::new(MatcherConfig::default());
    m.process(&syn(c, u32::MAX - 1), 0);
    m.process(&seg(s, 7, u32::MAX - 1), MS);
    // The client's clock wraps: 3 is after u32::MAX - 1 and is stored.
    m.process(&seg(c, 3, 7), 2 * MS);
    let r = m.process(&seg(s, 8, 3), 4 * MS).unwrap();
    assert_eq!(r.rtt_ns, 2 * MS as u64);
    assert_eq!(m.stats().stale_tsvals, 0);
}

#[test]
fn pping_ignores_zero_timestamps_and_missing_options() {
    let c = key(false);
    let mut m = Matcher::new(MatcherConfig::default());
    m.process(&seg(c, 0, 5), 0);
    m.process(&seg(c, 5, 0), 0);
    m.process(
        &Segment {
            ts: None,
            ..seg(c, 1, 1)
        },
        0,
    );
    let st = m.stats();
    assert_eq!((st.zero_timestamp, st.no_timestamp, st.flows), (2, 1, 0));
}

#[test]
fn unidirectional_flows_store_nothing() {
    let c = key(false);
    let mut m = Matcher::new(MatcherConfig::default());
    for i in 1..=10 {
        m.process(&seg(c, i, 99), i64::from(i) * MS);
    }
    let st = m.stats();
    assert_eq!((st.unidirectional, st.tsvals, st.flows), (10, 0, 1));
    // Once the reverse shows up, its own TSvals are stored and the next ones of c too.
    assert!(m.process(&seg(c.reverse(), 500, 10), 20 * MS).is_none());
    assert!(m.process(&seg(c, 11, 500), 21 * MS).is_some());
    assert!(m.process(&seg(c.reverse(), 501, 11), 25 * MS).is_some());
}

#[test]
fn tables_are_bounded_and_count_refusals() {
    let mut m = Matcher::new(MatcherConfig {
        max_flows: 4,
        max_tsvals: 3,
        ..MatcherConfig::default()
    });
    let a: IpAddr = "10.0.0.1".parse().unwrap();
    let b: IpAddr = "10.0.0.2".parse().unwrap();
    for port in 0..10u16 {
        m.process(&syn(FlowKey::new(a, port, b, 80), 1), 0);
    }
    assert_eq!(m.stats().flows, 4);
    assert_eq!(m.stats().flows_full, 6);
    let mut m = Matcher::new(MatcherConfig {
        max_tsvals: 3,
        ..MatcherConfig::default()
    });
    let c = key(false);
    m.process(&syn(c, 1), 0);
    m.process(&seg(c.reverse(), 1, 1), 0);
    for i in 2..10 {
        m.process(&seg(c, i, 1), 0);
    }
    assert_eq!(m.stats().tsvals, 3);
    assert!(m.stats().tsvals_full >= 5);
}

#[test]
fn aging_forgets_old_tsvals_and_idle_flows() {
    let cfg = MatcherConfig {
        tsval_max_age: Duration::from_secs(10),
        flow_max_idle: Duration::from_secs(30),
        ..MatcherConfig::default()
    };
    let c = key(false);
    let s = c.reverse();
    let mut m = Matcher::new(cfg);
    m.process(&syn(c, 1), 0);
    m.process(&seg(s, 1, 1), MS);
    m.process(&seg(c, 2, 1), 2 * MS);
    m.advance(11_000 * MS);
    assert_eq!(m.stats().tsvals, 0);
    assert_eq!(m.stats().tsvals_expired, 1, "the one TSval left unmatched");
    // The TSval is gone: a very late echo gives nothing.
    assert!(m.process(&seg(s, 2, 2), 11_001 * MS).is_none());
    m.advance(50_000 * MS);
    assert_eq!(m.stats().flows, 0);
    assert_eq!(m.stats().flows_expired, 2);
}

#[test]
fn rate_limit_spaces_stored_tsvals() {
    let c = key(false);
    let s = c.reverse();
    let mut m = Matcher::new(MatcherConfig {
        min_tsval_interval: Duration::from_millis(10),
        ..MatcherConfig::default()
    });
    m.process(&syn(c, 1), 0);
    m.process(&seg(s, 1, 1), MS);
    for i in 2..=20u32 {
        m.process(&seg(c, i, 1), i64::from(i) * MS);
    }
    // Stored at 2 ms and 12 ms only (plus the SYN's).
    assert_eq!(m.stats().rate_limited, 17);
}

#[test]
fn negative_rtt_is_dropped_and_counted() {
    let c = key(false);
    let s = c.reverse();
    let mut m = Matcher::new(MatcherConfig::default());
    m.process(&seg(c, 1, 7), 0);
    m.process(&seg(s, 7, 1), MS);
    m.process(&seg(c, 2, 7), 10 * MS);
    assert!(m.process(&seg(s, 8, 2), 5 * MS).is_none());
    assert_eq!(m.stats().negative_rtt, 1);
}

#[test]
fn summaries_report_flows_with_new_samples_once() {
    let c = key(false);
    let s = c.reverse();
    let mut m = Matcher::new(MatcherConfig::default());
    m.process(&seg(c, 1, 7), 0);
    m.process(&seg(s, 7, 1), MS);
    m.process(&seg(c, 2, 7), 2 * MS);
    m.process(&seg(s, 8, 2), 5 * MS);
    let mut seen = Vec::new();
    m.take_summaries(|k, sum| seen.push((*k, *sum)));
    seen.sort_by_key(|x| x.0);
    assert_eq!(seen.len(), 2);
    let server = seen.iter().find(|x| x.0 == s).unwrap();
    assert_eq!((server.1.count, server.1.min_ns), (1, 3 * MS as u64));
    seen.clear();
    m.take_summaries(|k, sum| seen.push((*k, *sum)));
    assert!(seen.is_empty());
}

#[test]
fn an_echo_drops_the_older_tsvals_it_passed_and_tables_stay_small() {
    let c = key(false);
    let s = c.reverse();
    let mut m = Matcher::new(MatcherConfig {
        max_tsvals_per_flow: 8,
        ..MatcherConfig::default()
    });
    m.process(&seg(c, 1, 7), 0);
    m.process(&seg(s, 7, 1), MS);
    // Ten new TSvals from c; s echoes only the 5th: the four before it are never echoed.
    for i in 2..12 {
        m.process(&seg(c, i, 7), i64::from(i) * MS);
    }
    assert_eq!(
        m.stats().tsvals_full,
        2,
        "8 per flow: the two oldest made room"
    );
    assert!(m.process(&seg(s, 8, 6), 20 * MS).is_some());
    let st = m.stats();
    assert_eq!(
        (st.tsvals_passed, st.tsvals),
        (2, 6),
        "c: 7..=11 left; s: its 8"
    );
    // An echo of an older TSval (a reordered ACK) gives nothing.
    assert!(m.process(&seg(s, 9, 5), 21 * MS).is_none());
}

#[test]
fn removed_flows_free_their_slots_and_tsvals() {
    let c = key(false);
    let s = c.reverse();
    let mut m = Matcher::new(MatcherConfig {
        max_flows: 2,
        ..MatcherConfig::default()
    });
    assert!(m.process(&syn(c, 100), 0).is_none());
    let syn_ack = Segment {
        syn: true,
        ..seg(s, 5000, 100)
    };
    assert!(m.process(&syn_ack, 10 * MS).is_some());
    assert!(m.process(&seg(c, 101, 5000), 11 * MS).is_some());
    assert!(m.process(&seg(c, 102, 5000), 12 * MS).is_none());
    assert_eq!((m.stats().flows, m.stats().tsvals), (2, 2));
    // The table is full: another connection is refused.
    let other = FlowKey::new(
        "10.0.0.9".parse().unwrap(),
        1,
        "10.0.0.2".parse().unwrap(),
        80,
    );
    assert!(m.process(&syn(other, 1), 13 * MS).is_none());
    assert_eq!(m.stats().flows_full, 1);
    // Forgetting both directions frees the slots and their TSvals.
    assert!(m.remove(&s));
    assert!(m.remove(&c));
    assert!(!m.remove(&c));
    assert_eq!((m.stats().flows, m.stats().tsvals), (0, 0));
    assert!(m.flow_rtt(&s).is_none());
    assert!(m.process(&syn(other, 1), 14 * MS).is_none());
    assert!(m.process(&seg(other.reverse(), 7, 1), 15 * MS).is_some());
    assert_eq!(m.flow_rtt(&other.reverse()).unwrap().min_ns, MS as u64);
    // A reused slot starts clean: the old connection's samples are not the new one's.
    assert_eq!(m.flow_rtt(&other.reverse()).unwrap().count, 1);
}
