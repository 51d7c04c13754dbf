//! The live ring against the real kernel (needs root): a fresh network namespace, TCP
//! ping-pong on its loopback over IPv4 and IPv6, captured with the `TPACKET_V3` ring.
//! Every round trip gives samples in both directions; the ring counts what it passed
//! and drops nothing; an unknown interface is a clear `ERR_CONFIG`.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use tcpinfo_rtt::record::SAMPLE_RECORD_LEN;
use tcpinfo_rtt::{RingConfig, RttSession, SessionConfig, Source};

struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Self {
        let name = format!("rtt-rs-{tag}-{}", std::process::id());
        run(&["ip", "netns", "add", &name]);
        run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Self(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let ok = Command::new("ip")
            .args(["netns", "del", &self.0])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok || std::thread::panicking(), "ip netns del {}", self.0);
    }
}

fn run(args: &[&str]) {
    let st = Command::new(args[0])
        .args(&args[1..])
        .status()
        .expect("spawn");
    assert!(st.success(), "{args:?} failed");
}

/// Runs `f` on a thread inside the namespace (sockets made there stay there).
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        tcpinfo_rtt::ring::enter_netns(&ns).unwrap();
        f()
    })
    .join()
    .unwrap()
}

fn ping_pong(addr: &'static str, rounds: usize) {
    let l = TcpListener::bind(addr).unwrap();
    let port = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut b = [0u8; 100];
        for _ in 0..rounds {
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
        }
    });
    let mut c = TcpStream::connect(port).unwrap();
    c.set_nodelay(true).unwrap();
    let mut b = [7u8; 100];
    for _ in 0..rounds {
        c.write_all(&b).unwrap();
        c.read_exact(&mut b).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    server.join().unwrap();
}

#[test]
fn loopback_ping_pong_gives_samples_both_ways() {
    let ns = Netns::new("lo");
    let mut cfg = SessionConfig::new(Source::Live {
        ring: RingConfig {
            interface: Some("lo".into()),
            ..RingConfig::default()
        },
        netns: Some(ns.0.clone()),
    });
    cfg.batch_interval = Duration::from_millis(20);
    let (session, mut rx) = RttSession::start(cfg).unwrap();
    in_netns(&ns.0, || {
        ping_pong("127.0.0.1:0", 40);
        ping_pong("[::1]:0", 40);
    });
    std::thread::sleep(Duration::from_millis(100));
    session.stop();
    let mut samples = Vec::new();
    let mut last = None;
    while let Some(b) = rx.blocking_recv() {
        let b = b.unwrap();
        samples.extend(
            b.samples
                .chunks(SAMPLE_RECORD_LEN)
                .map(|r| (r[36], u16::from_le_bytes([r[32], r[33]]))),
        );
        if b.last {
            last = Some(b.stats);
        }
    }
    let st = last.expect("a last batch");
    let v4 = samples.iter().filter(|s| s.0 == 4).count();
    let v6 = samples.iter().filter(|s| s.0 == 6).count();
    // Each round trip stores new TSvals at least every millisecond tick (2 ms sleeps).
    assert!(v4 >= 40 && v6 >= 40, "v4 {v4} v6 {v6} {st:?}");
    assert!(
        st.ring.packets >= st.parse.frames && st.parse.frames > 0,
        "{st:?}"
    );
    assert_eq!(
        (
            st.ring.drops,
            st.parse.truncated,
            st.parse.malformed,
            st.parse.not_tcp
        ),
        (0, 0, 0, 0),
        "{st:?}"
    );
    assert_eq!(st.matching.samples, samples.len() as u64);
    drop(session);
}

#[test]
fn unknown_interface_is_a_config_error() {
    let cfg = SessionConfig::new(Source::Live {
        ring: RingConfig {
            interface: Some("no-such-if0".into()),
            ..RingConfig::default()
        },
        netns: None,
    });
    let e = RttSession::start(cfg).err().unwrap();
    assert_eq!(e.code(), "ERR_CONFIG");
    assert!(e.to_string().contains("no-such-if0"));
    let cfg = SessionConfig::new(Source::Live {
        ring: RingConfig::default(),
        netns: Some("rtt-no-such-ns".into()),
    });
    assert_eq!(RttSession::start(cfg).err().unwrap().code(), "ERR_NETNS");
}
