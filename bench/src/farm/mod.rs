//! The socket farm: N loopback TCP connections with a steady rate of changes and churn.
//!
//! It is the workload of the collector benchmarks: a known number of sockets, a known fraction
//! changing per interval, and a log of every connection it closed with its final counters.
//!
//! Process layout: the `farm` process is the [`supervisor`]. It re-executes its own binary P
//! times with a hidden `--worker` flag; each [`worker`] holds **both ends** of its connections
//! (client and accepted server socket), so one connection costs two fds in one process and
//! shows up as two ESTABLISHED sockets in a dump. The per-process open-file hard limit of the
//! bench machine is 20,000 and cannot be raised; a worker keeps at most
//! [`MAX_PAIRS_PER_WORKER`] connections (8,800 fds), which leaves room for the listener, epoll
//! and pipes and stays well under the limit even if churn briefly holds extra closing pairs.
//!
//! Addresses: worker `w` listens on `127.0.0.1:(BASE + w)`, and binds each client socket to its
//! own source address in `127.0.0.0/8` (see [`conn::client_ip`]) with `IP_BIND_ADDRESS_NO_PORT`,
//! so the 28k-port ephemeral range is per source address and never runs out. All of `127/8` is
//! local on `lo`, which also holds in a fresh network namespace once the harness brings `lo` up.
//!
//! Protocol between the two: a worker writes `ready <n>` on its stdout when its connections are
//! up; the supervisor writes `go` on every worker's stdin once all are ready, and workers only
//! change and churn connections after it. A worker stops when its stdin reaches EOF (the
//! supervisor closes the pipe, or dies). Connections still open at the stop are reset, not
//! closed gracefully, so a run leaves no `TIME_WAIT` entries behind to slow the next run's
//! dumps; only the churned ones (closed gracefully, for exact final counters) leave them. It then
//! writes one `closed <json>` line per socket it closed (see [`conn::Closed`]) and a final
//! `done <key=value ...>` line. Workers also set `PR_SET_PDEATHSIG` so a killed supervisor
//! leaves nothing behind.

pub mod config;
pub mod conn;
mod events;
pub mod supervisor;
pub mod worker;

pub use config::{FarmConfig, WorkerConfig};

/// Most connections (client/server pairs, two fds each) one worker process holds.
pub const MAX_PAIRS_PER_WORKER: u64 = 4_400;
/// Default first listen port; below the default ephemeral range (32768-60999).
pub const DEFAULT_LISTEN_PORT: u16 = 20_000;
/// Default time between two change/churn steps, in milliseconds.
pub const DEFAULT_INTERVAL_MS: u64 = 10;
/// Default run time after `ready`, in seconds.
pub const DEFAULT_DURATION_S: u64 = 60;
/// Default limit on the time to open all connections, in seconds.
pub const DEFAULT_SETUP_TIMEOUT_S: u64 = 300;
/// Bytes written on a connection to change it (the peer reads them).
pub const CHANGE_PAYLOAD: &[u8] = b"tcpinfo!";
