//! The BPF event mode when its dirty set overflows (root, BTF): the kernel counts the
//! refused marks, the next poll is a primed dump (counted in the poll stats), and no
//! change is lost — every new connection is reported opened, as netlink mode reports it.
//! Its own test binary: it shrinks the dirty set with `TCPINFO_BPF_DIRTY_CAPACITY`, read
//! when a poller opens.

use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use tcpinfo_core::parse::diag_msg::parse_diag;
use tcpinfo_core::{PollBatch, PollMode, Poller, PollerConfig, RecordKind};

fn opened(batch: &PollBatch, port: u16) -> BTreeSet<u64> {
    batch
        .iter()
        .filter(|r| r.kind == RecordKind::Opened as u8 && !r.payload.is_empty())
        .filter(|r| {
            parse_diag(r.payload).is_ok_and(|(m, _)| m.sport() == port || m.dport() == port)
        })
        .map(|r| r.cookie)
        .collect()
}

#[test]
fn an_overflowing_dirty_set_makes_a_primed_dump_and_loses_nothing() {
    // SAFETY: set before any thread of this test binary reads the environment.
    unsafe { std::env::set_var("TCPINFO_BPF_DIRTY_CAPACITY", "8") };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let mut nl = Poller::new(PollerConfig::default()).expect("netlink poller");
    let mut bpf = Poller::new(PollerConfig {
        mode: PollMode::Bpf,
        ..Default::default()
    })
    .expect("bpf poller");
    let _ = (nl.poll(), bpf.poll());
    std::thread::sleep(Duration::from_millis(50));
    let _ = (nl.poll(), bpf.poll());
    assert!(
        bpf.bpf_stats()
            .is_some_and(|s| s.events && s.overflows == 0),
        "{:?}",
        bpf.bpf_stats()
    );
    // 20 connections (40 sockets + the listener) marked between two polls: more than 8.
    let conns: Vec<_> = (0..20)
        .map(|_| {
            let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            (c, listener.accept().unwrap().0)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(80));
    let a = nl.poll();
    let b = bpf.poll();
    let st = bpf.bpf_stats().expect("stats");
    assert!(
        st.overflows > 0 && st.resync && !st.walked_poll,
        "a primed dump: {st:?}"
    );
    let (on, ob) = (opened(&a, port), opened(&b, port));
    assert_eq!(on.len(), 40, "netlink: both ends of 20 connections");
    assert_eq!(on, ob, "BPF reports the same connections opened");
    // Quiet again: event polls resume.
    std::thread::sleep(Duration::from_millis(50));
    let _ = bpf.poll();
    assert!(
        bpf.bpf_stats().is_some_and(|s| s.events && !s.resync),
        "{:?}",
        bpf.bpf_stats()
    );
    drop(conns);
}
