//! How a poller finds what changed: a netlink dump of every socket, or the BPF iterator
//! that fingerprints sockets in the kernel and reports only new and changed ones.
//! See `docs/internals/bpf/design.md`.

use std::time::Duration;

/// The poll mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PollMode {
    /// One `inet_diag` dump of every socket per poll (works everywhere).
    #[default]
    Netlink,
    /// The `iter/tcp` BPF program reports changed sockets; only those are fetched, with
    /// exact `inet_diag` requests. Fails with `ERR_UNSUPPORTED` where it cannot run.
    Bpf,
    /// BPF where the kernel and privileges allow it, netlink otherwise (one warning says
    /// why); also polls with netlink while most sockets change every poll, where the BPF
    /// mode stops paying off.
    Auto,
}

impl PollMode {
    /// Parses `"netlink"`, `"bpf"` or `"auto"`.
    ///
    /// # Errors
    /// The text, when it is none of them.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "netlink" => Ok(Self::Netlink),
            "bpf" => Ok(Self::Bpf),
            "auto" => Ok(Self::Auto),
            other => Err(format!(
                "unknown poll mode {other:?} (netlink, bpf or auto)"
            )),
        }
    }

    /// The mode's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Netlink => "netlink",
            Self::Bpf => "bpf",
            Self::Auto => "auto",
        }
    }
}

/// In BPF mode, a sweep (two walks that report every socket, so the tracker can close
/// connections whose destroy event was lost) starts this often, and after any lost
/// destroy event. Between sweeps, unchanged sockets are not reported at all.
pub const BPF_SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// In BPF event mode (tracepoints mark changed sockets; destroy events report closes),
/// a full walk is only a safety net: it runs this often (the sweep's two walks, which
/// also fetch whatever the events missed), at start-up and after the dirty set
/// overflowed. Chosen from the measured cost (docs/BENCHMARKS.md): two walks of 100k
/// sockets cost ~0.4 s of CPU, about 2% of one core amortized over 20 s.
pub const BPF_RESYNC_INTERVAL: Duration = Duration::from_secs(20);
/// `auto`: share of the walked sockets reported changed above which polls go back to
/// netlink dumps. Measured break-even (docs/BENCHMARKS.md, "BPF poll mode (issue 16)",
/// Linux 6.18, 100k sockets): the walk with its fingerprint costs 1.9 µs per socket, about
/// a netlink poll's 1.9 µs, and each changed socket adds 4.9 µs of exact fetch against
/// 0.9 µs of encoding in a dump: BPF stops paying at about 0.4% changed per poll.
pub const AUTO_TO_NETLINK_SHARE: f64 = 0.005;
/// `auto`: share of changed sockets in a netlink poll below which polls return to BPF
/// (below [`AUTO_TO_NETLINK_SHARE`], so that the mode does not flap).
pub const AUTO_TO_BPF_SHARE: f64 = 0.002;
/// `auto` in event mode: share of the tracked sockets fetched in a poll above which polls
/// go back to netlink dumps. Measured (docs/BENCHMARKS.md, "BPF poll mode (issue 16)",
/// Linux 6.18, 100k sockets): an event poll costs ~1 ms plus 7-9 µs per fetched socket
/// against ~1.9 µs per socket for a dump: 0.28× the drain at 6% fetched, break-even near
/// 20%; the switch leaves a margin for the fetch's higher cost per socket at low counts.
pub const AUTO_EVENTS_TO_NETLINK_SHARE: f64 = 0.15;
/// `auto` in event mode: share of changed sockets in a netlink poll below which polls
/// return to BPF.
pub const AUTO_EVENTS_TO_BPF_SHARE: f64 = 0.05;
