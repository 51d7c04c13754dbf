//! The BPF poll mode against the live kernel (root, Linux >= 5.9 with BTF), next to a
//! netlink poller on the same sockets (issue #16):
//!
//! - over many polls of a changing farm (opens, closes, traffic on some connections,
//!   idle ones, both families) both modes report the same connections opened, changed
//!   and closed, with byte-identical records (the `tcpi_last_*` elapsed times and
//!   `idiag_expires`, which move with the clock between two reads, masked);
//! - a change of each attribute source user space can set (TOS, TCLASS, congestion
//!   control, mark, priority, shutdown, socket options) and of the counters is seen;
//! - without destroy events, the sweep walks close a connection.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use tcpinfo_core::parse::diag_msg::parse_diag;
use tcpinfo_core::{PollBatch, PollMode, Poller, PollerConfig, RecordKind};

#[path = "support/clock_mask.rs"]
mod clock_mask;
use clock_mask::masked;

/// Time for loopback ACKs (the delayed-ACK timer is 40 ms) and destroy events to settle.
const SETTLE: Duration = Duration::from_millis(60);

fn config(mode: PollMode) -> PollerConfig {
    PollerConfig {
        mode,
        ..Default::default()
    }
}

/// The records of `batch` that belong to sockets on `ports`: (kind, cookie) → payload.
fn ours(
    batch: &PollBatch,
    ports: &BTreeSet<u16>,
    known: &mut BTreeSet<u64>,
) -> BTreeMap<(u8, u64), Vec<u8>> {
    let mut out = BTreeMap::new();
    for r in batch {
        let mine = if r.payload.is_empty() {
            known.contains(&r.cookie)
        } else {
            let (msg, _) = parse_diag(r.payload).expect("parse");
            ports.contains(&msg.sport()) || ports.contains(&msg.dport())
        };
        if mine {
            known.insert(r.cookie);
            out.insert((r.kind, r.cookie), masked(r.payload));
        }
    }
    out
}

/// Where two payloads differ: (attribute type, offset in its payload).
fn diff_at(a: &[u8], b: &[u8]) -> Vec<(u16, usize)> {
    let mut out = Vec::new();
    let mut at = 72;
    for i in 0..a.len().min(b.len()).min(72) {
        if a[i] != b[i] {
            out.push((0, i));
        }
    }
    while at + 4 <= a.len().min(b.len()) {
        let len = usize::from(u16::from_ne_bytes([a[at], a[at + 1]]));
        let ty = u16::from_ne_bytes([a[at + 2], a[at + 3]]);
        if len < 4 || at + len > a.len().min(b.len()) {
            break;
        }
        for i in 4..len {
            if a[at + i] != b[at + i] {
                out.push((ty, i - 4));
            }
        }
        at += (len + 3) & !3;
    }
    out
}

struct Farm {
    listeners: Vec<TcpListener>,
    conns: Vec<(TcpStream, TcpStream)>,
    ports: BTreeSet<u16>,
}

impl Farm {
    fn new() -> Self {
        let listeners: Vec<_> = ["127.0.0.1:0", "[::1]:0"]
            .iter()
            .map(|a| TcpListener::bind(a).expect("bind"))
            .collect();
        let ports = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        Self {
            listeners,
            conns: Vec::new(),
            ports,
        }
    }

    fn open(&mut self, n: usize) {
        for i in 0..n {
            let l = &self.listeners[i % self.listeners.len()];
            let c = TcpStream::connect(l.local_addr().unwrap()).expect("connect");
            let (s, _) = l.accept().expect("accept");
            c.set_nodelay(true).unwrap();
            s.set_nodelay(true).unwrap();
            self.conns.push((c, s));
        }
    }

    fn traffic(&mut self, which: impl Iterator<Item = usize>) {
        let mut buf = [0u8; 1000];
        for i in which {
            if let Some((c, s)) = self.conns.get_mut(i) {
                c.write_all(&buf).unwrap();
                s.read_exact(&mut buf).unwrap();
            }
        }
    }
}

fn poll_pair(nl: &mut Poller, bpf: &mut Poller, bpf_first: bool) -> (PollBatch, PollBatch) {
    if bpf_first {
        let b = bpf.poll();
        (nl.poll(), b)
    } else {
        let n = nl.poll();
        (n, bpf.poll())
    }
}

/// Both modes, many polls of a changing farm: same opened/changed/closed, same bytes.
#[test]
fn bpf_and_netlink_modes_report_the_same_records() {
    let mut farm = Farm::new();
    farm.open(30);
    let mut nl = Poller::new(config(PollMode::Netlink)).expect("netlink poller");
    let mut bpf = Poller::new(config(PollMode::Bpf)).expect("bpf poller (root, BTF)");
    let (mut known_nl, mut known_bpf) = (BTreeSet::new(), BTreeSet::new());
    let mut counts = [0usize; 4];
    let (mut fetched, mut dumped) = (0u64, 0u64);
    let mut event_polls = 0;
    for round in 0..24 {
        match round % 4 {
            1 => farm.open(3),
            2 => {
                let n = farm.conns.len();
                farm.conns.drain(n / 2..n / 2 + 2);
            }
            _ => {}
        }
        let n = farm.conns.len();
        farm.traffic((0..n).filter(|i| (i + round) % 7 == 0));
        std::thread::sleep(SETTLE);
        let (a, b) = poll_pair(&mut nl, &mut bpf, round % 2 == 1);
        assert!(b.complete, "round {round}: {:?}", b.warnings);
        if bpf.bpf_stats().is_some_and(|s| s.events && !s.resync) {
            event_polls += 1;
        }
        if round > 0 {
            fetched += u64::from(b.stats.messages);
            dumped += u64::from(a.stats.messages);
        }
        let ra = ours(&a, &farm.ports, &mut known_nl);
        let rb = ours(&b, &farm.ports, &mut known_bpf);
        let ka: Vec<_> = ra.keys().collect();
        let kb: Vec<_> = rb.keys().collect();
        assert_eq!(ka, kb, "round {round}: (kind, cookie) of netlink vs bpf");
        for (k, p) in &ra {
            assert_eq!(
                p,
                &rb[k],
                "round {round}: record {k:?} differs at {:?}",
                diff_at(p, &rb[k])
            );
            counts[usize::from(k.0).min(3)] += 1;
        }
    }
    let opened = counts[RecordKind::Opened as usize];
    let changed = counts[RecordKind::Changed as usize];
    let closed = counts[RecordKind::Closed as usize];
    assert!(opened >= 30 + 2 * 18 + 2, "opened {opened}");
    assert!(changed >= 24, "changed {changed}");
    assert!(closed >= 2 * 6 * 2, "closed {closed}");
    assert!(
        fetched * 4 < dumped,
        "BPF fetched {fetched} records, netlink dumped {dumped}"
    );
    // The event path (tracepoints, dirty set) did the polls, not walks: the first poll
    // primes, and a resync's two walks may fall into the run.
    assert!(event_polls >= 20, "event polls {event_polls} of 24");
}

type Mutation = (&'static str, usize, Box<dyn Fn(&mut Farm)>);

fn setsockopt_int(fd: i32, level: i32, name: i32, v: i32) {
    // SAFETY: passes a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const v).cast(),
            u32::try_from(std::mem::size_of::<i32>()).unwrap(),
        )
    };
    assert_eq!(
        rc,
        0,
        "setsockopt {level}/{name}: {}",
        std::io::Error::last_os_error()
    );
}

/// Each attribute source that user space can set, and the counters: BPF mode reports
/// the change, with the record netlink mode reports.
#[test]
#[expect(clippy::too_many_lines, reason = "one table of mutations")]
fn a_change_in_each_counted_source_is_seen() {
    let mut farm = Farm::new();
    farm.open(2); // [0] IPv4, [1] IPv6
    let mut nl = Poller::new(config(PollMode::Netlink)).expect("netlink poller");
    let mut bpf = Poller::new(config(PollMode::Bpf)).expect("bpf poller");
    std::thread::sleep(SETTLE);
    let _ = poll_pair(&mut nl, &mut bpf, false);
    let cc = |s: &TcpStream, name: &[u8]| {
        // SAFETY: `name` is a live buffer of its length.
        let rc = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_CONGESTION,
                name.as_ptr().cast(),
                u32::try_from(name.len()).unwrap(),
            )
        };
        assert_eq!(rc, 0, "TCP_CONGESTION");
    };
    let mutations: Vec<Mutation> = vec![
        (
            "IP_TOS (INET_DIAG_TOS)",
            0,
            Box::new(|f| {
                setsockopt_int(
                    f.conns[0].0.as_raw_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_TOS,
                    0x10,
                );
            }),
        ),
        (
            "IPV6_TCLASS (INET_DIAG_TCLASS)",
            1,
            Box::new(|f| {
                setsockopt_int(
                    f.conns[1].0.as_raw_fd(),
                    libc::IPPROTO_IPV6,
                    libc::IPV6_TCLASS,
                    0x20,
                );
            }),
        ),
        (
            "TCP_CONGESTION reno (INET_DIAG_CONG)",
            0,
            Box::new(move |f| cc(&f.conns[0].0, b"reno")),
        ),
        (
            "SO_MARK (INET_DIAG_MARK)",
            0,
            Box::new(|f| {
                setsockopt_int(f.conns[0].0.as_raw_fd(), libc::SOL_SOCKET, libc::SO_MARK, 7);
            }),
        ),
        (
            "SO_PRIORITY (INET_DIAG_CLASS_ID)",
            0,
            Box::new(|f| {
                setsockopt_int(
                    f.conns[0].0.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_PRIORITY,
                    3,
                );
            }),
        ),
        (
            "IP_FREEBIND (INET_DIAG_SOCKOPT)",
            0,
            Box::new(|f| {
                setsockopt_int(
                    f.conns[0].0.as_raw_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_FREEBIND,
                    1,
                );
            }),
        ),
        (
            "data (tcp_info counters)",
            0,
            Box::new(|f| f.traffic(std::iter::once(0))),
        ),
        (
            "shutdown SHUT_RD (INET_DIAG_SHUTDOWN)",
            0,
            Box::new(|f| f.conns[0].0.shutdown(std::net::Shutdown::Read).unwrap()),
        ),
    ];
    for (what, conn, mutate) in &mutations {
        let local: SocketAddr = farm.conns[*conn].0.local_addr().unwrap();
        mutate(&mut farm);
        std::thread::sleep(SETTLE);
        let (a, b) = poll_pair(&mut nl, &mut bpf, false);
        let pick = |batch: &PollBatch| {
            batch
                .iter()
                .filter(|r| r.kind == RecordKind::Changed as u8 && !r.payload.is_empty())
                .find(|r| parse_diag(r.payload).is_ok_and(|(m, _)| m.sport() == local.port()))
                .map(|r| masked(r.payload))
        };
        let (ra, rb) = (pick(&a), pick(&b));
        assert!(ra.is_some(), "{what}: netlink mode reports the change");
        assert_eq!(
            ra,
            rb,
            "{what}: BPF mode reports it, with the same record; {:?}",
            diff_at(
                ra.as_deref().unwrap_or_default(),
                rb.as_deref().unwrap_or_default()
            )
        );
    }
}

/// Without destroy events, only the sweep walks can close: a closed connection is
/// reported within two sweep walks.
#[test]
fn sweep_walks_close_connections_without_destroy_events() {
    let mut farm = Farm::new();
    farm.open(2);
    let mut bpf = Poller::new(PollerConfig {
        destroy_events: false,
        ..config(PollMode::Bpf)
    })
    .expect("bpf poller");
    let mut known = BTreeSet::new();
    let first = ours(&bpf.poll(), &farm.ports, &mut known);
    let cookies: BTreeSet<u64> = first.keys().map(|k| k.1).collect();
    assert!(cookies.len() >= 4, "{first:?}");
    farm.conns.clear();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut closed = BTreeSet::new();
    while closed.len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        let b = bpf.poll();
        for r in &b {
            if r.kind == RecordKind::Closed as u8 && cookies.contains(&r.cookie) {
                closed.insert(r.cookie);
            }
        }
    }
    assert_eq!(
        closed.len(),
        4,
        "both ends of both connections closed by the sweep"
    );
}

/// `auto` polls with netlink dumps while many sockets change (BPF stops paying off), and
/// walks again once they are quiet.
#[test]
fn auto_switches_to_netlink_while_most_sockets_change_and_back() {
    let mut farm = Farm::new();
    farm.open(100);
    let mut auto = Poller::new(config(PollMode::Auto)).expect("auto poller (root, BTF)");
    let _ = auto.poll(); // primed dump
    std::thread::sleep(SETTLE);
    let _ = auto.poll();
    assert!(
        auto.bpf_stats().is_some_and(|s| s.walked_poll),
        "quiet: walks"
    );
    let n = farm.conns.len();
    farm.traffic(0..n);
    std::thread::sleep(SETTLE);
    let _ = auto.poll(); // the walk sees every connection changed
    let _ = auto.poll();
    assert!(
        auto.bpf_stats().is_some_and(|s| !s.walked_poll),
        "busy: netlink dumps"
    );
    let back = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        let _ = auto.poll();
        auto.bpf_stats().is_some_and(|s| s.walked_poll)
    });
    assert!(back, "quiet again: walks again");
}
