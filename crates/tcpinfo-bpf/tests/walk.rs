//! The program against the live kernel: new sockets are reported once, unchanged ones
//! not again, a changed one again, and an `emit_all` walk reports every socket.

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};

use tcpinfo_bpf::{ChangeIter, Entry, IterConfig};

fn cookies(it: &mut ChangeIter, emit_all: bool) -> (Vec<(u64, u16, u16)>, Vec<u64>) {
    let mut changed = Vec::new();
    let mut seen = Vec::new();
    let stats = it
        .walk(emit_all, |e| match e {
            Entry::Changed(id) => changed.push((id.cookie, id.sport, id.dport)),
            Entry::Seen { cookie, .. } => seen.push(cookie),
            _ => {}
        })
        .expect("walk");
    assert!(stats.complete, "{stats:?}");
    (changed, seen)
}

#[test]
fn only_new_and_changed_sockets_are_reported() {
    let mut it = ChangeIter::load(IterConfig {
        states: 0xF37,
        ipv4: true,
        ipv6: true,
        fp_flags: 0,
        events: false,
        dirty_capacity: 0,
    })
    .expect("load (run as root on Linux >= 5.9 with BTF)");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let (mut server, _) = listener.accept().expect("accept");
    let cport = client.local_addr().unwrap().port();
    let (first, _) = cookies(&mut it, false);
    let ours = |v: &[(u64, u16, u16)]| {
        v.iter()
            .filter(|(_, s, _)| *s == port || *s == cport)
            .count()
    };
    assert_eq!(
        ours(&first),
        3,
        "listener, client and server are new: {first:?}"
    );
    // Let the handshake's last effects settle, then nothing of ours changes.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let _ = cookies(&mut it, false);
    let (quiet, _) = cookies(&mut it, false);
    assert_eq!(ours(&quiet), 0, "{quiet:?}");
    client.write_all(b"hello").unwrap();
    let mut b = [0u8; 5];
    std::io::Read::read_exact(&mut server, &mut b).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let (after, _) = cookies(&mut it, false);
    assert_eq!(
        ours(&after),
        2,
        "both ends of the connection changed: {after:?}"
    );
    let (_, seen) = cookies(&mut it, true);
    let all: Vec<u64> = first
        .iter()
        .filter(|(_, s, d)| *s == port || *s == cport || *d == port)
        .map(|c| c.0)
        .collect();
    for c in all {
        assert!(
            seen.contains(&c),
            "emit_all reports unchanged socket {c:#x}"
        );
    }
}

fn dirty(it: &mut ChangeIter, ports: &[u16]) -> Vec<(u64, u16, u16, u8, bool)> {
    let mut out = Vec::new();
    it.drain_dirty(|e| {
        if let Entry::Dirty { id, mini } = e {
            if ports.contains(&id.sport) || ports.contains(&id.dport) {
                out.push((id.cookie, id.sport, id.dport, id.state, mini));
            }
        }
    })
    .expect("drain");
    out
}

/// Event mode: a connect, accept, data and close mark the sockets involved, each once
/// per drain, with the tuple an exact request needs; an idle socket is not marked.
#[test]
fn events_mark_the_sockets_that_change() {
    let mut it = ChangeIter::load(IterConfig {
        states: 0xFFF,
        ipv4: true,
        ipv6: true,
        fp_flags: 0,
        events: true,
        dirty_capacity: 0,
    })
    .expect("load with events (root, BTF, fexit)");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let (mut server, _) = listener.accept().expect("accept");
    let cport = client.local_addr().unwrap().port();
    std::thread::sleep(std::time::Duration::from_millis(60));
    let first = dirty(&mut it, &[port, cport]);
    let mut c: Vec<_> = first.iter().map(|d| (d.1, d.2)).collect();
    c.sort_unstable();
    c.dedup();
    assert_eq!(c.len(), first.len(), "one entry per socket: {first:?}");
    assert!(c.contains(&(cport, port)), "client marked: {first:?}");
    assert!(c.contains(&(port, cport)), "server marked: {first:?}");
    assert!(
        c.contains(&(port, 0)),
        "listener (accept queue) marked: {first:?}"
    );
    let quiet = dirty(&mut it, &[port, cport]);
    assert!(quiet.is_empty(), "nothing happened since: {quiet:?}");
    client.write_all(b"hello").unwrap();
    let mut b = [0u8; 5];
    std::io::Read::read_exact(&mut server, &mut b).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(60));
    let data = dirty(&mut it, &[port, cport]);
    assert_eq!(data.len(), 2, "both ends: {data:?}");
    drop(client);
    std::thread::sleep(std::time::Duration::from_millis(60));
    let closed = dirty(&mut it, &[port, cport]);
    assert!(
        closed.iter().any(|d| (d.1, d.2) == (cport, port)),
        "the closed client, with its tuple (its timewait socket has the same): {closed:?}"
    );
    assert_eq!(it.event_counters().expect("counters").overflows, 0);
}

/// A dirty set smaller than the sockets changing in one poll: the kernel refuses the
/// marks beyond it and counts them (the poller then walks).
#[test]
fn a_full_dirty_set_counts_overflows() {
    let mut it = ChangeIter::load(IterConfig {
        states: 0xFFF,
        ipv4: true,
        ipv6: true,
        fp_flags: 0,
        events: true,
        dirty_capacity: 4,
    })
    .expect("load with events");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let conns: Vec<_> = (0..8)
        .map(|_| {
            let c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            (c, listener.accept().unwrap().0)
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(60));
    let counters = it.event_counters().expect("counters");
    assert!(counters.overflows > 0, "{counters:?}");
    let mut n = 0;
    it.drain_dirty(|_| n += 1).expect("drain");
    assert!(n <= 4, "at most the capacity: {n}");
    drop(conns);
}
