//! Every network namespace from one poller, against the real kernel (root needed):
//! namespaces made here, named (`ip netns add`) and anonymous (`unshare -n` holding a
//! process), each with a connection made inside it (the test thread enters the namespace
//! to create the sockets, which stay in it).
//!
//! - All are watched, and each connection carries its own namespace (inode and name), even
//!   when two namespaces use the same port.
//! - A namespace created mid-run is picked up by the next poll.
//! - A connection closed inside a namespace arrives closed with its final counters.
//! - A namespace deleted mid-run (its processes gone, then `ip netns del`) is dropped
//!   cleanly: its connections closed, no warning, and it leaves the namespace table.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tcpinfo_core::netns::{current, enter};
use tcpinfo_core::parse::diag_msg::parse_diag;
use tcpinfo_core::{MultiPoller, PollBatch, PollerConfig, RecordKind, FLAG_FROM_DESTROY_EVENT};

/// One port for every namespace's listener: namespaces have their own port spaces.
const PORT: u16 = 47_613;
const BYTES: usize = 50_000;
const PATIENCE: Duration = Duration::from_secs(5);

fn sh(args: &[&str]) {
    let ok = Command::new(args[0])
        .args(&args[1..])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{args:?} failed");
}

/// A named namespace, deleted on drop.
struct Named(String);

impl Named {
    fn new(tag: &str) -> Self {
        let name = format!("scale-{}-{tag}", std::process::id());
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Self(name)
    }
    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        Command::new("ip")
            .args(["netns", "del", &self.0])
            .status()
            .ok();
    }
}

/// An anonymous namespace held by a `sleep` in it, killed on drop.
struct Anonymous(Child);

impl Anonymous {
    fn new() -> Self {
        let child = Command::new("unshare")
            .args([
                "-n",
                "sh",
                "-c",
                "ip link set lo up && echo up && exec sleep 60",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare");
        let mut me = Self(child);
        let mut line = [0u8; 3];
        me.0.stdout
            .as_mut()
            .expect("stdout")
            .read_exact(&mut line)
            .expect("lo up");
        me
    }
    fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.0.id())
    }
}

impl Drop for Anonymous {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// A connection inside a namespace: both ends, made on a thread that entered it.
struct Conn {
    client: TcpStream,
    server: TcpStream,
    _listener: TcpListener,
}

fn connect_in(path: &str) -> (Conn, u64) {
    let path = path.to_owned();
    std::thread::spawn(move || {
        let ns = File::open(&path).expect("open namespace");
        enter(&ns).expect("setns");
        let listener = TcpListener::bind(("127.0.0.1", PORT)).expect("bind");
        let mut client = TcpStream::connect(("127.0.0.1", PORT)).expect("connect");
        let (mut server, _) = listener.accept().expect("accept");
        client.write_all(&vec![7u8; BYTES]).expect("write");
        let mut got = vec![0u8; BYTES];
        server.read_exact(&mut got).expect("read");
        let inode = ns.metadata().expect("stat").ino();
        (
            Conn {
                client,
                server,
                _listener: listener,
            },
            inode,
        )
    })
    .join()
    .expect("thread")
}

/// Our test connections seen in `batch`: (kind, flags, namespace inode, namespace name,
/// bytes in the payload's tcp_info `bytes_acked` if any) of records on `PORT`.
fn ours(batch: &PollBatch) -> Vec<(u8, u8, u64, Option<String>, bool)> {
    batch
        .iter()
        .filter_map(|r| {
            let ns = &batch.namespaces[r.netns as usize];
            let (msg, attrs) = parse_diag(r.payload).ok()?;
            (msg.sport() == PORT || msg.dport() == PORT).then(|| {
                let has_info = attrs.get(2).is_some_and(|i| i.len() >= 104);
                (r.kind, r.flags, ns.inode, ns.name.clone(), has_info)
            })
        })
        .collect()
}

/// Polls until `want` holds for the records gathered, or panics after `PATIENCE`.
fn poll_until(
    m: &mut MultiPoller,
    what: &str,
    mut want: impl FnMut(&[(u8, u8, u64, Option<String>, bool)], &PollBatch) -> bool,
) {
    let mut seen = Vec::new();
    let until = Instant::now() + PATIENCE;
    loop {
        let b = m.poll().expect("poll");
        assert!(b.warnings.is_empty(), "no warning: {:?}", b.warnings);
        seen.extend(ours(&b));
        if want(&seen, &b) {
            return;
        }
        assert!(Instant::now() < until, "{what}: {seen:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn every_namespace_is_watched_with_its_identity_and_its_lifecycle() {
    let a = Named::new("a");
    let b = Anonymous::new();
    let (conn_a, ino_a) = connect_in(&a.path());
    let (conn_b, ino_b) = connect_in(&b.path());
    assert_ne!(ino_a, ino_b);
    let mut m = MultiPoller::new(PollerConfig::default()).expect("needs root");
    let (_, own) = current().expect("own namespace");

    let first = m.poll().expect("poll");
    let host = first.namespaces.iter().find(|n| n.host).expect("host");
    assert_eq!(host.inode, own);
    let seen = ours(&first);
    // Each namespace: two sockets (client and server ends) plus the listener.
    for (ino, name) in [(ino_a, Some(a.0.clone())), (ino_b, None)] {
        let here: Vec<_> = seen.iter().filter(|r| r.2 == ino).collect();
        assert_eq!(here.len(), 3, "namespace {ino}: {seen:?}");
        assert!(here
            .iter()
            .all(|r| r.0 == RecordKind::Opened as u8 && r.3 == name));
    }

    // A namespace made mid-run is picked up by the next poll.
    let c = Named::new("c");
    let (_conn_c, ino_c) = connect_in(&c.path());
    poll_until(&mut m, "namespace c picked up", |s, _| {
        s.iter()
            .filter(|r| r.2 == ino_c && r.0 == RecordKind::Opened as u8)
            .count()
            == 3
    });

    // Closes inside the anonymous namespace (both ends and the listener) arrive with
    // their final counters.
    drop(conn_b);
    poll_until(&mut m, "closes in b with final counters", |s, _| {
        s.iter()
            .filter(|r| {
                r.2 == ino_b
                    && r.0 == RecordKind::Closed as u8
                    && r.1 & FLAG_FROM_DESTROY_EVENT != 0
                    && r.4
            })
            .count()
            == 3
    });

    // Namespace a deleted mid-run: its connections close, it leaves the table.
    let Conn {
        client,
        server,
        _listener: listener,
    } = conn_a;
    drop((client, server));
    drop(a);
    let mut closes_a = 0;
    poll_until(&mut m, "namespace a dropped", |s, b| {
        closes_a = s
            .iter()
            .filter(|r| r.2 == ino_a && r.0 == RecordKind::Closed as u8)
            .count();
        closes_a >= 2 && !m_has(b, ino_a)
    });
    drop(listener);
    // The listener closed after the namespace was retired: it was closed then (no payload).
    let after = m.poll().expect("poll");
    assert!(!m_has(&after, ino_a));
    assert!(after.namespaces.iter().any(|n| n.inode == ino_c));
    drop(b);
    drop(c);
}

fn m_has(b: &PollBatch, ino: u64) -> bool {
    b.namespaces.iter().any(|n| n.inode == ino)
}
