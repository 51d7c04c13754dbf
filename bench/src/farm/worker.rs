//! A farm worker process: opens its share of connections, then changes and churns them every
//! interval until its stdin reaches EOF.
//!
//! Single-threaded: one epoll set holds every socket (reads of the bytes the peer wrote) and
//! stdin, the control pipe. After `ready` the worker idles until the supervisor writes `go`
//! (every worker is ready), so the workload runs exactly between the farm's `ready` and its
//! stop; then the change and churn steps run between `epoll_wait` calls on an interval clock,
//! until stdin reaches EOF.
//!
//! Churn closes a connection gracefully so its final counters are exact: both ends
//! `shutdown(SHUT_WR)`, and the pair is closed once both have reached `TCP_CLOSE`, i.e. data
//! and FINs are acknowledged and `tcpi_bytes_acked`/`tcpi_bytes_received` can no longer move
//! (a FIN counts one byte in both). `TCP_INFO` is read then, just before `close()`, so it
//! equals the `tcp_info` the kernel's destroy notification carries.

use std::io::{self, ErrorKind, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::conn::{self, Closed, Pair, TCP_CLOSE};
use super::events::{drain, epoll_ctl, epoll_wait, read_control, stdin_closed};
use super::{WorkerConfig, CHANGE_PAYLOAD};
use crate::sys::{cvt, raise_nofile};

/// epoll tag of stdin, the control pipe (socket tags are `slot << 1 | side`).
const CONTROL_TAG: u64 = u64::MAX;
/// How long a churned pair may take to reach `TCP_CLOSE` before it is closed anyway
/// (and logged with `"settled":false`).
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Check stdin for a stop request every this many connections during setup.
const SETUP_STOP_CHECK: u64 = 512;
/// Errors a worker explains on stderr; later ones are only counted.
const ERRORS_EXPLAINED: u64 = 5;
/// Events fetched per `epoll_wait`.
const EPOLL_BATCH: usize = 1024;

/// Counters a worker reports in its `done` line.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    writes: u64,
    bytes_read: u64,
    churned: u64,
    errors: u64,
}

/// Runs a worker until stdin reaches EOF or its lifetime ends; protocol lines go to `out`.
///
/// # Errors
/// Setup fails (listener, epoll, a connection), or writing to `out` fails.
pub fn run(cfg: &WorkerConfig, out: &mut impl Write) -> io::Result<()> {
    let started = Instant::now();
    // SAFETY: plain prctl/signal calls. SIGKILL on parent death: nothing is left behind even
    // if the supervisor is killed. SIGINT ignored: a terminal ^C reaches the whole process
    // group, and it is the supervisor's job to stop workers in order (so they write their log).
    unsafe {
        cvt(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    raise_nofile()?;
    let mut farm = Farm::new(cfg)?;
    epoll_ctl(
        &farm.epoll,
        libc::EPOLL_CTL_ADD,
        libc::STDIN_FILENO,
        CONTROL_TAG,
    )
    .map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("watch stdin (must be the supervisor's pipe): {e}"),
        )
    })?;
    if farm.open_all(cfg.connections)? {
        writeln!(out, "ready {}", cfg.connections)?;
        out.flush()?;
        farm.serve(cfg.interval, started + cfg.lifetime)?;
    }
    farm.finish_closing(true);
    farm.reset_all();
    for closed in &farm.closed {
        writeln!(out, "closed {}", closed.to_json())?;
    }
    let s = farm.stats;
    writeln!(
        out,
        "done writes={} bytes_read={} churned={} errors={}",
        s.writes, s.bytes_read, s.churned, s.errors
    )?;
    out.flush()
}

/// The state of one worker.
struct Farm {
    index: u32,
    /// First octet of the client addresses.
    net_octet: u8,
    listener: TcpListener,
    server_addr: SocketAddrV4,
    epoll: OwnedFd,
    pairs: Vec<Pair>,
    /// Connections opened so far (picks the next client address).
    serial: u64,
    change_fraction: f64,
    change_budget: f64,
    change_cursor: usize,
    churn_per_tick: f64,
    churn_budget: f64,
    churn_cursor: usize,
    /// Churned pairs waiting for both ends to reach `TCP_CLOSE`.
    closing: Vec<(Pair, Instant)>,
    closed: Vec<Closed>,
    stats: Stats,
}

impl Farm {
    fn new(cfg: &WorkerConfig) -> io::Result<Self> {
        let server_addr = SocketAddrV4::new(Ipv4Addr::new(cfg.net_octet, 0, 0, 1), cfg.listen_port);
        let listener = TcpListener::bind(server_addr)
            .map_err(|e| io::Error::new(e.kind(), format!("listen on {server_addr}: {e}")))?;
        // SAFETY: plain epoll_create1 call.
        let epfd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `epfd` is a fresh descriptor that nothing else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(epfd) };
        let capacity = usize::try_from(cfg.connections).unwrap_or(0);
        Ok(Self {
            index: cfg.index,
            net_octet: cfg.net_octet,
            listener,
            server_addr,
            epoll,
            pairs: Vec::with_capacity(capacity),
            serial: 0,
            change_fraction: cfg.change_fraction,
            change_budget: 0.0,
            change_cursor: 0,
            churn_per_tick: cfg.churn_per_s * cfg.interval.as_secs_f64(),
            churn_budget: 0.0,
            churn_cursor: 0,
            closing: Vec::new(),
            closed: Vec::new(),
            stats: Stats::default(),
        })
    }

    /// Opens `count` connections; false if the supervisor said stop meanwhile.
    fn open_all(&mut self, count: u64) -> io::Result<bool> {
        for _ in 0..count {
            if self.serial.is_multiple_of(SETUP_STOP_CHECK) && stdin_closed()? {
                return Ok(false);
            }
            let pair = self.open_pair()?;
            self.pairs.push(pair);
            self.watch(self.pairs.len() - 1)?;
        }
        Ok(true)
    }

    /// The event loop: reads what peers wrote, and after "go" runs a [`Farm::tick`] every
    /// `interval`, until stdin reaches EOF or `deadline` passes.
    fn serve(&mut self, interval: Duration, deadline: Instant) -> io::Result<()> {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EPOLL_BATCH];
        let mut next_tick = Instant::now() + interval;
        let mut tick: u64 = 0;
        let mut active = false;
        while Instant::now() < deadline {
            let wait_ms = next_tick
                .saturating_duration_since(Instant::now())
                .as_micros()
                .div_ceil(1000);
            let n = epoll_wait(
                &self.epoll,
                &mut events,
                i32::try_from(wait_ms).unwrap_or(i32::MAX),
            )?;
            for ev in &events[..n] {
                if ev.u64 != CONTROL_TAG {
                    self.read_ready(ev.u64);
                } else if read_control() {
                    // Any byte is the supervisor's "go": every worker is ready.
                    active = true;
                    next_tick = Instant::now() + interval;
                } else {
                    return Ok(()); // EOF: stop.
                }
            }
            if active && Instant::now() >= next_tick {
                self.tick(tick);
                tick += 1;
                // After a stall, skip the missed ticks instead of bursting to catch up.
                next_tick = (next_tick + interval).max(Instant::now());
            }
        }
        Ok(())
    }

    /// Arms every live connection to be reset when the process exits.
    ///
    /// A graceful close would leave one `TIME_WAIT` entry per connection for 60 s, and every
    /// inet_diag dump walks them even when it does not ask for that state: 100k leftover
    /// entries made a 2,000-socket dump ten times slower, spoiling the next run's numbers.
    fn reset_all(&mut self) {
        let mut failed = None;
        for pair in &self.pairs {
            for end in [&pair.client, &pair.server] {
                if let Err(e) = conn::reset_on_close(end) {
                    failed = Some(e);
                }
            }
        }
        if let Some(e) = failed {
            self.error("stop: set SO_LINGER", &e);
        }
    }

    /// Counts an error, and explains the first few on stderr (more would flood it).
    fn error(&mut self, what: &str, err: &io::Error) {
        self.stats.errors += 1;
        if self.stats.errors <= ERRORS_EXPLAINED {
            // Ignored: if stderr is gone there is nowhere left to report to.
            let _ignored = writeln!(io::stderr(), "farm worker {}: {what}: {err}", self.index);
        }
    }

    fn open_pair(&mut self) -> io::Result<Pair> {
        let src = conn::client_ip(self.net_octet, self.index, self.serial);
        self.serial += 1;
        Pair::open(&self.listener, self.server_addr, src)
    }

    /// Adds both ends of `pairs[slot]` to the epoll set.
    fn watch(&self, slot: usize) -> io::Result<()> {
        let pair = &self.pairs[slot];
        let tag = (slot as u64) << 1;
        epoll_ctl(
            &self.epoll,
            libc::EPOLL_CTL_ADD,
            pair.client.as_raw_fd(),
            tag,
        )?;
        epoll_ctl(
            &self.epoll,
            libc::EPOLL_CTL_ADD,
            pair.server.as_raw_fd(),
            tag | 1,
        )
    }

    /// Drains whatever the peer wrote on the socket tagged `tag`.
    fn read_ready(&mut self, tag: u64) {
        let Some(pair) = usize::try_from(tag >> 1)
            .ok()
            .and_then(|slot| self.pairs.get(slot))
        else {
            return self.error("epoll", &io::Error::other(format!("unknown tag {tag}")));
        };
        let end = if tag & 1 == 0 {
            &pair.client
        } else {
            &pair.server
        };
        let fd = end.as_raw_fd();
        let failure = match drain(end) {
            Ok((n, eof)) => {
                self.stats.bytes_read += n;
                eof.then(|| io::Error::from(ErrorKind::UnexpectedEof))
            }
            Err(e) => Some(e),
        };
        if let Some(e) = failure {
            // EOF or an error on a live connection is unexpected. Stop watching it so the
            // level-triggered epoll does not spin on it.
            let _ignored = epoll_ctl(&self.epoll, libc::EPOLL_CTL_DEL, fd, 0);
            self.error("read", &e);
        }
    }

    /// One interval step: write on a fraction of the connections, churn some, settle closes.
    fn tick(&mut self, tick: u64) {
        if self.pairs.is_empty() {
            return;
        }
        self.change_budget += self.change_fraction * as_f64(self.pairs.len());
        while self.change_budget >= 1.0 {
            self.change_budget -= 1.0;
            let slot = self.change_cursor;
            self.change_cursor = (slot + 1) % self.pairs.len();
            let pair = &self.pairs[slot];
            // Alternate the direction so both ends see bytes_acked and bytes_received move.
            let end = if (tick + slot as u64).is_multiple_of(2) {
                &pair.client
            } else {
                &pair.server
            };
            match (&*end).write(CHANGE_PAYLOAD) {
                Ok(n) if n == CHANGE_PAYLOAD.len() => self.stats.writes += 1,
                Ok(n) => self.error(
                    "change",
                    &io::Error::other(format!("short write of {n} bytes")),
                ),
                Err(e) => self.error("change", &e),
            }
        }
        self.churn_budget += self.churn_per_tick;
        while self.churn_budget >= 1.0 {
            self.churn_budget -= 1.0;
            let slot = self.churn_cursor;
            self.churn_cursor = (slot + 1) % self.pairs.len();
            self.churn(slot);
        }
        self.finish_closing(false);
    }

    /// Replaces `pairs[slot]` with a new connection and starts closing the old one.
    fn churn(&mut self, slot: usize) {
        let fresh = match self.open_pair() {
            Ok(pair) => pair,
            Err(e) => return self.error("churn: open a new connection", &e),
        };
        let old = std::mem::replace(&mut self.pairs[slot], fresh);
        for end in [&old.client, &old.server] {
            let _ignored = epoll_ctl(&self.epoll, libc::EPOLL_CTL_DEL, end.as_raw_fd(), 0);
        }
        if let Err(e) = self.watch(slot) {
            self.error("churn: watch the new connection", &e);
        }
        for end in [&old.client, &old.server] {
            // Read what is pending so the close is a clean FIN exchange, then half-close.
            if let Err(e) = drain(end).and_then(|_| end.shutdown(std::net::Shutdown::Write)) {
                self.error("churn: shut down", &e);
            }
        }
        self.stats.churned += 1;
        self.closing.push((old, Instant::now()));
        // On loopback the FIN exchange usually completes inside the shutdown calls.
        self.finish_closing(false);
    }

    /// Logs and closes the churned pairs whose ends both reached `TCP_CLOSE`, those past
    /// [`CLOSE_GRACE`], and with `all`, every one (waiting up to the grace for them to settle).
    fn finish_closing(&mut self, all: bool) {
        let deadline = Instant::now() + CLOSE_GRACE;
        loop {
            let mut i = 0;
            while i < self.closing.len() {
                let (pair, since) = &self.closing[i];
                let infos = (conn::tcp_info(&pair.client), conn::tcp_info(&pair.server));
                let settled = matches!(&infos, (Ok(c), Ok(s)) if c.state == TCP_CLOSE && s.state == TCP_CLOSE);
                if settled || since.elapsed() >= CLOSE_GRACE || (all && Instant::now() >= deadline)
                {
                    let (pair, _) = self.closing.swap_remove(i);
                    self.log_close(&pair, infos, settled);
                } else {
                    i += 1;
                }
            }
            if !all || self.closing.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn log_close(
        &mut self,
        pair: &Pair,
        infos: (io::Result<conn::TcpInfo>, io::Result<conn::TcpInfo>),
        settled: bool,
    ) {
        let closed_at_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let ends = [
            (
                "client",
                &pair.client,
                pair.client_addr,
                pair.server_addr,
                infos.0,
            ),
            (
                "server",
                &pair.server,
                pair.server_addr,
                pair.client_addr,
                infos.1,
            ),
        ];
        for (side, end, local, remote, info) in ends {
            match info.and_then(|info| Ok((info, conn::cookie(end)?))) {
                Ok((info, cookie)) => {
                    self.closed.push(Closed {
                        cookie,
                        side,
                        local,
                        remote,
                        info,
                        settled,
                        closed_at_ns,
                    });
                }
                Err(e) => self.error("churn: read TCP_INFO/SO_COOKIE", &e),
            }
        }
        // The pair's fds close when the caller drops it.
    }
}

#[expect(
    clippy::cast_precision_loss,
    reason = "connection counts stay far below 2^52"
)]
fn as_f64(n: usize) -> f64 {
    n as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    #[test]
    fn churn_logs_settled_counters() {
        let cfg = WorkerConfig {
            index: 9,
            connections: 0,
            listen_port: 0,
            net_octet: 127,
            change_fraction: 0.0,
            interval: Duration::from_millis(10),
            churn_per_s: 0.0,
            lifetime: Duration::from_secs(1),
        };
        let mut farm = Farm::new(&cfg).unwrap();
        let SocketAddr::V4(addr) = farm.listener.local_addr().unwrap() else {
            panic!()
        };
        farm.server_addr = addr;
        let pair = farm.open_pair().unwrap();
        farm.pairs.push(pair);
        farm.watch(0).unwrap();
        (&farm.pairs[0].client).write_all(b"12345").unwrap();
        let client = farm.pairs[0].client_addr;
        farm.churn(0);
        farm.finish_closing(true);
        assert_eq!(farm.closed.len(), 2);
        let c = farm.closed.iter().find(|c| c.side == "client").unwrap();
        assert_eq!(c.local, client);
        assert!(c.settled);
        let srv = farm.closed.iter().find(|c| c.side == "server").unwrap();
        assert_eq!(
            (c.cookie != srv.cookie, c.remote, srv.local),
            (true, srv.local, c.remote)
        );
        // Linux 6.x: the client's SYN and FIN are acked as one byte each beside the five data
        // bytes; each side's received FIN counts one byte in bytes_received.
        let counters = |c: &Closed| (c.info.bytes_acked, c.info.bytes_received);
        assert_eq!(counters(c), (Some(7), Some(1)), "client {}", c.to_json());
        assert_eq!(
            counters(srv),
            (Some(1), Some(6)),
            "server {}",
            srv.to_json()
        );
    }
}
