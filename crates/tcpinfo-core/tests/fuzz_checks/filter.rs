//! Check of the fuzz target `filter`: CIDR parsing, the exclusion filter and its
//! `INET_DIAG_REQ_BYTECODE` program, with the kernel as the oracle.
//!
//! The check runs in a private network namespace of its own thread (root only; without it
//! only the user-space properties are checked) holding a fixed set of sockets: listeners
//! and connections over IPv4, IPv6 and v4-mapped IPv6, on fixed ports (the ephemeral range
//! is narrowed to one port per connect, so a replay sees the same sockets). For every
//! fuzzed filter, the kernel must accept the compiled program, never drop a socket that the
//! user-space filter reports, and drop every socket it does not report whenever all the
//! rules could be pushed down.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};

use arbitrary::Arbitrary;
use tcpinfo_core::parse::diag_msg::InetDiagMsg;
use tcpinfo_core::{
    exclusion_program, Cidr, DumpSocket, DumpSpec, DumpStats, Filter, DEFAULT_RECV_BUFFER_BYTES,
    DEFAULT_STATES,
};

/// Addresses of the fixed sockets (and a few others): what fuzzed networks are built around.
const ADDRS: [&str; 10] = [
    "127.0.0.1",
    "198.51.100.7",
    "::1",
    "2001:db8::7",
    "::ffff:127.0.0.1",
    "0.0.0.0",
    "::",
    "fe80::1",
    "224.0.0.1",
    "10.1.2.3",
];
/// Local ports of the fixed sockets (and their connections' ephemeral ports).
const PORTS: [u16; 8] = [22, 80, 443, 8080, 50000, 40000, 40001, 40002];

/// A fuzzed filter.
#[derive(Debug, Arbitrary)]
pub struct FilterInput {
    /// `exclude_local`.
    pub exclude_local: bool,
    /// `exclude_src_ports`.
    pub ports: Vec<Port>,
    /// `exclude_dst`, as text given to `Cidr::parse`.
    pub nets: Vec<Net>,
    /// Which dump: 0 legacy `AF_UNSPEC`, 1 `AF_INET`, 2 `AF_INET6`.
    pub dump: u8,
}

/// A port to exclude.
#[derive(Debug, Arbitrary)]
pub enum Port {
    /// One of the fixed sockets' ports.
    Used(u8),
    /// Any.
    Any(u16),
}

/// A network to exclude.
#[derive(Debug, Arbitrary)]
pub enum Net {
    /// Any text.
    Text(String),
    /// One of [`ADDRS`] with a prefix length (possibly too long).
    Known(u8, u8),
    /// Any IPv4 network.
    V4([u8; 4], u8),
    /// Any IPv6 network.
    V6([u8; 16], u8),
}

impl Net {
    fn text(&self) -> String {
        match self {
            Net::Text(s) => s.clone(),
            Net::Known(i, p) => format!("{}/{p}", ADDRS[usize::from(*i) % ADDRS.len()]),
            Net::V4(a, p) => format!("{}/{p}", Ipv4Addr::from(*a)),
            Net::V6(a, p) => format!("{}/{p}", Ipv6Addr::from(*a)),
        }
    }
}

/// Fuzz target `filter`.
pub fn filter(input: &FilterInput) {
    let mut nets = Vec::new();
    for n in &input.nets {
        if let Some(c) = check_cidr(&n.text()) {
            nets.push(c);
        }
    }
    let filter = Filter {
        exclude_local: input.exclude_local,
        exclude_src_ports: input
            .ports
            .iter()
            .map(|p| match p {
                Port::Used(i) => PORTS[usize::from(*i) % PORTS.len()],
                Port::Any(p) => *p,
            })
            .collect(),
        exclude_dst: nets,
    };
    let prog = exclusion_program(&filter).unwrap_or_default();
    assert!(prog.len() % 4 == 0);
    let family = [0, 2, 10][usize::from(input.dump % 3)];
    WORLD.with(|w| {
        if let Some(w) = w.borrow_mut().as_mut() {
            w.check(&filter, &prog, family);
        }
    });
}

/// `Cidr::parse` never panics; what it accepts is a network that contains its own
/// address and prints back to itself.
fn check_cidr(text: &str) -> Option<Cidr> {
    let c = Cidr::parse(text).ok()?;
    let max = if c.addr().is_ipv4() { 32 } else { 128 };
    assert!(c.prefix() <= max, "{text:?}");
    assert!(c.contains(c.addr()), "{text:?}");
    let again = Cidr::parse(&format!("{}/{}", c.addr(), c.prefix())).expect("reparses");
    assert_eq!(again, c, "{text:?}");
    Some(c)
}

/// Whether the compiler pushes every rule of `filter` down: all but IPv6 networks over
/// v4-mapped space (the kernel would match v4-mapped peers that user space keeps), and
/// all only while the program fits.
fn fully_pushed_down(filter: &Filter, prog: &[u8]) -> bool {
    let over_v4_mapped = filter.exclude_dst.iter().any(|c| match c.addr() {
        IpAddr::V6(a) => {
            let bits = u32::from(c.prefix()).min(96);
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            (u128::from(a) ^ (0xFFFF << 32)) & mask == 0
        }
        IpAddr::V4(_) => false,
    });
    let rules = filter.exclude_src_ports.len() + filter.exclude_dst.len();
    !over_v4_mapped && (!prog.is_empty() || (rules == 0 && !filter.exclude_local))
}

/// Connects to `to`, retrying while the namespace's new routes are not there yet: the
/// local route of an IPv6 address just added to `lo` can lag the `ip` command
/// (`ENETUNREACH` seen once in a few hundred namespaces).
fn connect(to: &str) -> TcpStream {
    let mut tries = 0;
    loop {
        match TcpStream::connect(to) {
            Ok(s) => return s,
            Err(e) if tries < 100 && e.kind() == std::io::ErrorKind::NetworkUnreachable => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("{to}: {e}"),
        }
    }
}

thread_local! {
    static WORLD: std::cell::RefCell<Option<World>> = std::cell::RefCell::new(World::new());
}

/// The private namespace, its sockets and a dump socket in it.
struct World {
    dump: DumpSocket,
    /// The unfiltered dump of each family (the sockets are fixed), taken once.
    unfiltered: std::collections::HashMap<u8, Vec<Vec<u8>>>,
    _sockets: (Vec<TcpListener>, Vec<TcpStream>),
}

impl World {
    fn new() -> Option<Self> {
        // SAFETY: unshare(2) with a constant flag; it only changes this thread's namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return None;
        }
        let ip = |args: &[&str]| {
            let ok = std::process::Command::new("ip")
                .args(args)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "ip {args:?}");
        };
        ip(&["link", "set", "lo", "up"]);
        ip(&["addr", "add", "198.51.100.7/32", "dev", "lo"]);
        ip(&["-6", "addr", "add", "2001:db8::7/128", "dev", "lo", "nodad"]);
        let listen = |a: &str| TcpListener::bind(a.parse::<SocketAddr>().expect("addr")).expect(a);
        let listeners = vec![
            listen("127.0.0.1:22"),
            listen("198.51.100.7:80"),
            listen("[::1]:443"),
            listen("[2001:db8::7]:8080"),
            listen("[::]:50000"),
        ];
        let mut streams = Vec::new();
        for (i, to) in [
            "198.51.100.7:80",
            "[2001:db8::7]:8080",
            "[::ffff:127.0.0.1]:50000",
        ]
        .iter()
        .enumerate()
        {
            let port = 40000 + i;
            std::fs::write(
                "/proc/sys/net/ipv4/ip_local_port_range",
                format!("{port} {port}"),
            )
            .expect("ip_local_port_range");
            streams.push(connect(to));
        }
        for l in &listeners {
            l.set_nonblocking(true).expect("nonblocking");
            while let Ok((s, _)) = l.accept() {
                streams.push(s);
            }
        }
        assert_eq!(streams.len(), 6, "three connections, both ends");
        Some(Self {
            dump: DumpSocket::open(DEFAULT_RECV_BUFFER_BYTES).expect("dump socket"),
            unfiltered: std::collections::HashMap::new(),
            _sockets: (listeners, streams),
        })
    }

    /// Dumps the namespace's sockets of `family` (0: both), through `prog` if not empty.
    fn sockets(&mut self, family: u8, prog: &[u8]) -> Vec<Vec<u8>> {
        let spec = DumpSpec {
            family,
            states: DEFAULT_STATES,
            ext: 0,
        };
        let mut out = Vec::new();
        let mut stats = DumpStats::default();
        let end = self
            .dump
            .dump(spec, prog, &mut stats, |p| out.push(p.to_vec()));
        if let Err(e) = end {
            panic!("the kernel refused the program {prog:02x?}: {e}");
        }
        out
    }

    fn check(&mut self, filter: &Filter, prog: &[u8], family: u8) {
        let all = if let Some(all) = self.unfiltered.get(&family) {
            all.clone()
        } else {
            let all = self.sockets(family, &[]);
            self.unfiltered.insert(family, all.clone());
            all
        };
        assert!(all.len() >= 4, "the namespace's sockets are dumped");
        // Replies of one socket differ between dumps only in timers and queues: compare
        // by cookie.
        let cookie = |p: &Vec<u8>| InetDiagMsg::new(p).expect("a kernel reply").cookie();
        let kept: HashSet<u64> = self.sockets(family, prog).iter().map(cookie).collect();
        let exact = fully_pushed_down(filter, prog);
        for payload in &all {
            let msg = InetDiagMsg::new(payload).expect("a kernel reply");
            let (accepted, in_dump) = (filter.accepts(&msg), kept.contains(&msg.cookie()));
            let socket = format!(
                "{}:{} -> {}:{}",
                msg.src(),
                msg.sport(),
                msg.dst(),
                msg.dport()
            );
            // The kernel never drops a socket that user space reports (it would be lost).
            assert!(
                in_dump || !accepted,
                "the kernel dropped {socket}: {filter:?}"
            );
            // With every rule pushed down, it drops what user space drops.
            assert!(
                !exact || accepted || !in_dump,
                "the kernel kept {socket}: {filter:?}"
            );
        }
    }
}
