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
    }
}

fn syn(flow: FlowKey, tsval: u32) -> Segment {
    Segment {
        flow,
        ts: Some(Timestamps { tsval, tsecr: 0 }),
        syn: true,
        ack: false,
    }
}

#[test]
fn handshake_and_data_give_samples_both_ways() {
    for v6 in [false, true] {
        let c = key(v6);
        let s = c.reverse();
        let mut m = Matcher::new(MatcherConfig::default());
        assert!(m.process(&syn(c, 100), 0).is_none());
        // SYN-ACK echoes the SYN's TSval: the server side's RTT (capture point <-> server).
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
        // ACK echoes the SYN-ACK: the client side's RTT.
        let r = m.process(&seg(c, 101, 5000), 10 * MS + 50_000).unwrap();
        assert_eq!((r.flow, r.rtt_ns), (c, 50_000));
        // Data, then its ACK.
        assert!(m.process(&seg(c, 105, 5000), 20 * MS).is_none());
        let r = m.process(&seg(s, 5010, 105), 32 * MS).unwrap();
        assert_eq!(r.rtt_ns, 12 * MS as u64);
        assert_eq!(m.flow_rtt(&s).unwrap().min_ns, 10 * MS as u64);
        assert_eq!(m.flow_rtt(&s).unwrap().count, 2);
        assert_eq!(m.stats().samples, 3);
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
fn unidirectional_flows_keep_only_their_first_tsval() {
    let c = key(false);
    let mut m = Matcher::new(MatcherConfig::default());
    for i in 1..=10 {
        m.process(&seg(c, i, 99), i64::from(i) * MS);
    }
    let st = m.stats();
    assert_eq!((st.unidirectional, st.tsvals, st.flows), (9, 0, 1));
    // When the reverse shows up, the first TSval becomes matchable.
    let r = m.process(&seg(c.reverse(), 500, 1), 20 * MS).unwrap();
    assert_eq!(r.rtt_ns, 19 * MS as u64);
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
    assert!(m.stats().tsvals_expired >= 2);
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
    m.process(&syn(c, 1), 10 * MS);
    assert!(m.process(&seg(s, 1, 1), 5 * MS).is_none());
    assert_eq!(m.stats().negative_rtt, 1);
}

#[test]
fn summaries_report_flows_with_new_samples_once() {
    let c = key(false);
    let s = c.reverse();
    let mut m = Matcher::new(MatcherConfig::default());
    m.process(&syn(c, 1), 0);
    m.process(&seg(s, 1, 1), 3 * MS);
    let mut seen = Vec::new();
    m.take_summaries(|k, sum| seen.push((*k, *sum)));
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].0, seen[0].1.count, seen[0].1.min_ns),
        (s, 1, 3 * MS as u64)
    );
    seen.clear();
    m.take_summaries(|k, sum| seen.push((*k, *sum)));
    assert!(seen.is_empty());
}
