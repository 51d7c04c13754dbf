//! The BPF poll mode's event path against the live kernel (root, BTF, tp_btf): a
//! connection that changes through one kind of event only is reported, in the poll a
//! netlink poller reports it, with its changes:
//!
//! - only receiving (the application does not read: no syscall on that socket);
//! - only a state change seen from the peer (shutdown of the other end);
//! - only timer-driven retransmissions (a `tbf`-limited veth drops the data; nothing
//!   comes back, the RTO timer retransmits with growing backoff);
//!
//! and the polls between two resyncs drain the dirty set rather than walk.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::process::Command;
use std::time::Duration;

use tcpinfo_core::parse::attrs::INET_DIAG_INFO;
use tcpinfo_core::parse::diag_msg::parse_diag;
use tcpinfo_core::{PollBatch, PollMode, Poller, PollerConfig, RecordKind};

#[path = "support/clock_mask.rs"]
mod clock_mask;
use clock_mask::masked;

const SETTLE: Duration = Duration::from_millis(80);
/// `tcpi_total_retrans`, `tcpi_backoff`: offsets in `tcp_info`.
const TOTAL_RETRANS: usize = 100;
const BACKOFF: usize = 4;

fn poller(mode: PollMode) -> Poller {
    Poller::new(PollerConfig {
        mode,
        ..Default::default()
    })
    .expect("poller (root, BTF)")
}

/// The Changed record of the socket bound to `local` in `batch`, if any (clock-moving
/// fields masked).
fn changed(batch: &PollBatch, local: SocketAddr) -> Option<Vec<u8>> {
    batch
        .iter()
        .filter(|r| r.kind == RecordKind::Changed as u8 && !r.payload.is_empty())
        .find(|r| {
            parse_diag(r.payload)
                .is_ok_and(|(m, _)| m.sport() == local.port() && m.src() == local.ip())
        })
        .map(|r| masked(r.payload))
}

fn info_u32(payload: &[u8], at: usize) -> u32 {
    let (_, attrs) = parse_diag(payload).expect("parse");
    let info = attrs.get(INET_DIAG_INFO).expect("tcp_info");
    u32::from_ne_bytes(info[at..at + 4].try_into().unwrap())
}

fn pair() -> (TcpListener, TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let c = TcpStream::connect(l.local_addr().unwrap()).expect("connect");
    let (s, _) = l.accept().expect("accept");
    (l, c, s)
}

/// Polls both (netlink first, then BPF) after `settle`; asserts the BPF poll drained
/// events (no walk) and returns the records of `local` in each.
fn both(
    nl: &mut Poller,
    bpf: &mut Poller,
    local: SocketAddr,
) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    std::thread::sleep(SETTLE);
    let a = nl.poll();
    let b = bpf.poll();
    let st = bpf.bpf_stats().expect("bpf stats");
    assert!(st.events && !st.resync, "an event poll: {st:?}");
    (changed(&a, local), changed(&b, local))
}

#[test]
fn a_socket_that_only_receives_is_reported() {
    let (_l, mut c, s) = pair();
    let local = s.local_addr().unwrap();
    let (mut nl, mut bpf) = (poller(PollMode::Netlink), poller(PollMode::Bpf));
    let _ = (nl.poll(), bpf.poll());
    let _ = both(&mut nl, &mut bpf, local);
    for round in 0..3 {
        // The server never reads: its socket changes by receive processing alone.
        c.write_all(&[7u8; 3000]).unwrap();
        let (a, b) = both(&mut nl, &mut bpf, local);
        assert!(a.is_some(), "round {round}: netlink reports the receiver");
        assert_eq!(a, b, "round {round}: BPF reports it with the same record");
    }
    drop(s);
}

#[test]
fn a_state_change_of_the_peer_is_reported() {
    let (_l, c, mut s) = pair();
    let local = s.local_addr().unwrap();
    let (mut nl, mut bpf) = (poller(PollMode::Netlink), poller(PollMode::Bpf));
    let _ = (nl.poll(), bpf.poll());
    let _ = both(&mut nl, &mut bpf, local);
    // The client half-closes: the server socket goes to CLOSE_WAIT on the FIN.
    c.shutdown(Shutdown::Write).unwrap();
    let (a, b) = both(&mut nl, &mut bpf, local);
    let a = a.expect("netlink reports the server's CLOSE_WAIT");
    assert_eq!(a[1], 8, "CLOSE_WAIT");
    assert_eq!(Some(a), b, "BPF reports it, same record");
    let mut buf = [0u8; 1];
    assert_eq!(s.read(&mut buf).unwrap(), 0);
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tc(args: &[&str]) {
    let out = Command::new("tc").args(args).output().expect("tc");
    assert!(
        out.status.success(),
        "tc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Netns(String);
impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn enter(ns: &str) {
    let f = std::fs::File::open(format!("/run/netns/{ns}")).expect("netns file");
    // SAFETY: setns on this thread with a namespace fd that stays open for the call.
    assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
}

/// A sender whose data a `tbf` qdisc mostly drops: nothing is acknowledged, the RTO
/// timer retransmits with growing backoff. Both modes report the sender changed on every
/// poll, and BPF mode's records show the retransmissions and backoff growing.
#[test]
fn timer_driven_retransmissions_are_reported() {
    let id = std::process::id();
    let (ns_a, ns_b) = (format!("bpf2-rtx-{id}-a"), format!("bpf2-rtx-{id}-b"));
    ip(&["netns", "add", &ns_a]);
    let _ga = Netns(ns_a.clone());
    ip(&["netns", "add", &ns_b]);
    let _gb = Netns(ns_b.clone());
    ip(&[
        "-n", &ns_a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", &ns_b,
    ]);
    ip(&["-n", &ns_a, "addr", "add", "10.231.0.1/24", "dev", "va"]);
    ip(&["-n", &ns_b, "addr", "add", "10.231.0.2/24", "dev", "vb"]);
    for (ns, dev) in [(&ns_a, "va"), (&ns_b, "vb"), (&ns_a, "lo"), (&ns_b, "lo")] {
        ip(&["-n", ns, "link", "set", dev, "up"]);
    }
    let b2 = ns_b.clone();
    let listener = std::thread::spawn(move || {
        enter(&b2);
        TcpListener::bind("10.231.0.2:0").expect("bind in b")
    })
    .join()
    .unwrap();
    let server = listener.local_addr().unwrap();
    let a2 = ns_a.clone();
    let result = std::thread::spawn(move || {
        enter(&a2);
        let mut sender = TcpStream::connect(server).expect("connect across the veth");
        let (_s, _) = listener.accept().expect("accept");
        let local = sender.local_addr().unwrap();
        let (mut nl, mut bpf) = (poller(PollMode::Netlink), poller(PollMode::Bpf));
        let _ = (nl.poll(), bpf.poll());
        let _ = both(&mut nl, &mut bpf, local);
        // From now on the qdisc passes almost nothing: a 8 kbit/s bucket, 2 kB queue.
        tc(&[
            "-n", &a2, "qdisc", "add", "dev", "va", "root", "tbf", "rate", "8kbit", "burst",
            "1600", "limit", "2000",
        ]);
        sender.set_nonblocking(true).unwrap();
        let _ = sender.write(&vec![1u8; 60_000]);
        let mut seen = Vec::new();
        for round in 0..6 {
            std::thread::sleep(Duration::from_millis(300));
            let (x, y) = both(&mut nl, &mut bpf, local);
            assert!(x.is_some(), "round {round}: netlink reports the sender");
            let y = y.unwrap_or_else(|| panic!("round {round}: BPF reports the sender"));
            let (_, attrs) = parse_diag(&y).expect("parse");
            let backoff = attrs.get(INET_DIAG_INFO).expect("tcp_info")[BACKOFF];
            seen.push((info_u32(&y, TOTAL_RETRANS), backoff));
        }
        seen
    })
    .join();
    let seen = result.expect("the namespace thread");
    let first = seen.first().unwrap().0;
    let last = seen.last().unwrap().0;
    assert!(
        last > first,
        "retransmissions seen growing in BPF records: {seen:?}"
    );
}
