//! The `farm` process: starts the workers, announces `ready N`, stops them after the run, and
//! writes the churn log.
//!
//! It stops on `--duration-s` after ready, on SIGINT/SIGTERM, on a setup timeout, or when a
//! worker exits early. Stopping closes the workers' stdin pipes, collects their `closed` and
//! `done` lines for a grace period, then SIGKILLs whatever is left.

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use super::{FarmConfig, WorkerConfig};
use crate::sys::{self, cvt, kernel_release, raise_nofile};

/// How long stopped workers get to write their logs and exit before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// Upper bound on one wait for worker output, so signals and deadlines are noticed.
const POLL_SLICE_MS: i32 = 100;
/// Extra lifetime workers get beyond setup + run, as a safety net if this process hangs.
const WORKER_LIFETIME_SLACK: Duration = Duration::from_mins(1);

/// One started worker and what it has said so far.
struct Worker {
    child: Child,
    stdout: Option<ChildStdout>,
    partial: Vec<u8>,
    ready: bool,
    done: Option<String>,
}

/// Totals of a farm run, printed as the final `done {...}` line.
#[derive(Debug, Default)]
pub struct Summary {
    /// Time from start until all connections were up, if they came up.
    pub setup: Option<Duration>,
    /// Time from ready until the stop began.
    pub ran: Duration,
    /// Sum of the workers' `done` counters (`writes`, `bytes_read`, `churned`, `errors`).
    pub counters: [u64; 4],
    /// Workers that ended without a `done` line, or with a failure status.
    pub failed_workers: u32,
    /// Why the run stopped.
    pub stop_reason: &'static str,
}

const COUNTER_NAMES: [&str; 4] = ["writes", "bytes_read", "churned", "errors"];

impl Summary {
    /// True if every worker came up and ended cleanly.
    pub fn ok(&self) -> bool {
        self.setup.is_some() && self.failed_workers == 0
    }

    fn to_json(&self, connections: u64, procs: u32, closed: usize) -> String {
        let mut s = format!(
            "{{\"connections\":{connections},\"procs\":{procs},\"setup_ms\":{},\"run_ms\":{},\"stop_reason\":\"{}\",\"failed_workers\":{},\"closed_logged\":{closed}",
            self.setup.map_or("null".to_owned(), |d| d.as_millis().to_string()),
            self.ran.as_millis(),
            self.stop_reason,
            self.failed_workers,
        );
        for (name, value) in COUNTER_NAMES.iter().zip(self.counters) {
            s.push_str(",\"");
            s.push_str(name);
            s.push_str("\":");
            s.push_str(&value.to_string());
        }
        s.push('}');
        s
    }
}

/// Runs the whole farm; writes `ready N` and the final `done {json}` line to `out`.
///
/// # Errors
/// Bad settings, a worker that cannot be started, or output that cannot be written.
pub fn run(cfg: &FarmConfig, out: &mut impl Write) -> io::Result<Summary> {
    let procs = cfg.worker_count().map_err(io::Error::other)?;
    raise_nofile()?;
    sys::install_stop_handler()?;
    if let Some(path) = &cfg.ready_file {
        // A stale file from an earlier run must not read as this run being ready.
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    let started = Instant::now();
    let mut workers = spawn_workers(cfg, procs)?;
    let mut closed: Vec<String> = Vec::new();
    let mut summary = Summary::default();
    let mut ready_at: Option<Instant> = None;

    summary.stop_reason = loop {
        if sys::stop_requested() {
            break "signal";
        }
        match ready_at {
            None if started.elapsed() >= cfg.setup_timeout => break "setup_timeout",
            Some(at) if at.elapsed() >= cfg.duration => break "duration",
            _ => {}
        }
        if read_some(&mut workers, &mut closed)? {
            break "worker_exited";
        }
        if ready_at.is_none() && workers.iter().all(|w| w.ready) {
            ready_at = Some(Instant::now());
            summary.setup = Some(started.elapsed());
            // A worker that cannot take "go" has died.
            let all_went = workers.iter_mut().all(|w| {
                w.child
                    .stdin
                    .as_mut()
                    .is_some_and(|stdin| stdin.write_all(b"go\n").is_ok())
            });
            if !all_went {
                break "worker_exited";
            }
            announce_ready(cfg, out)?;
        }
    };
    summary.ran = ready_at.map_or(Duration::ZERO, |at| at.elapsed());

    // Closing stdin is the stop signal; then collect the churn logs.
    for w in &mut workers {
        drop(w.child.stdin.take());
    }
    let stop_deadline = Instant::now() + STOP_GRACE;
    while workers.iter().any(|w| w.stdout.is_some()) && Instant::now() < stop_deadline {
        read_some(&mut workers, &mut closed)?;
    }
    for w in &mut workers {
        if w.stdout.is_some() {
            // Ignored: it may have exited between the check and the kill; wait() tells.
            let _ignored = w.child.kill();
        }
        let status = w.child.wait()?;
        match (&w.done, status.success()) {
            (Some(done), true) => add_counters(&mut summary.counters, done),
            _ => summary.failed_workers += 1,
        }
    }
    if let Some(path) = &cfg.churn_log {
        write_churn_log(path, cfg, &closed)?;
    }
    writeln!(
        out,
        "done {}",
        summary.to_json(cfg.connections, procs, closed.len())
    )?;
    out.flush()?;
    Ok(summary)
}

fn spawn_workers(cfg: &FarmConfig, procs: u32) -> io::Result<Vec<Worker>> {
    let exe = std::env::current_exe()?;
    let per = cfg.connections / u64::from(procs);
    let extra = cfg.connections % u64::from(procs);
    let mut workers = Vec::new();
    for index in 0..procs {
        let connections = per + u64::from(u64::from(index) < extra);
        let port_offset = u16::try_from(index).map_err(io::Error::other)?;
        let wcfg = WorkerConfig {
            index,
            connections,
            listen_port: cfg
                .listen_port
                .checked_add(port_offset)
                .ok_or_else(|| io::Error::other("listen port overflow"))?,
            net_octet: cfg.net_octet,
            change_fraction: cfg.change_fraction,
            interval: cfg.interval,
            churn_per_s: share(cfg.churn_per_s, connections, cfg.connections),
            lifetime: cfg.setup_timeout + cfg.duration + WORKER_LIFETIME_SLACK,
        };
        let mut child = Command::new(&exe)
            .args(wcfg.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take();
        workers.push(Worker {
            child,
            stdout,
            partial: Vec::new(),
            ready: false,
            done: None,
        });
    }
    Ok(workers)
}

/// The part of the farm-wide `rate` that falls on a worker with `mine` of `all` connections.
#[expect(
    clippy::cast_precision_loss,
    reason = "connection counts stay far below 2^52"
)]
fn share(rate: f64, mine: u64, all: u64) -> f64 {
    if all == 0 {
        0.0
    } else {
        rate * mine as f64 / all as f64
    }
}

/// Waits up to [`POLL_SLICE_MS`] for worker output and handles complete lines. Returns true if
/// a worker's output ended (it exited).
fn read_some(workers: &mut [Worker], closed: &mut Vec<String>) -> io::Result<bool> {
    let mut fds: Vec<libc::pollfd> = workers
        .iter()
        .map(|w| libc::pollfd {
            fd: w.stdout.as_ref().map_or(-1, AsRawFd::as_raw_fd),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let nfds = libc::nfds_t::try_from(fds.len()).map_err(io::Error::other)?;
    // SAFETY: `fds` holds `nfds` valid pollfds (negative fds are ignored by poll).
    let ret = unsafe { libc::poll(fds.as_mut_ptr(), nfds, POLL_SLICE_MS) };
    if let Err(e) = cvt(ret) {
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    let mut ended = false;
    let mut buf = vec![0u8; 64 * 1024];
    for (w, pfd) in workers.iter_mut().zip(&fds) {
        let Some(stdout) = w.stdout.as_mut().filter(|_| pfd.revents != 0) else {
            continue;
        };
        let n = match stdout.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            w.stdout = None;
            ended = true;
            continue;
        }
        w.partial.extend_from_slice(&buf[..n]);
        while let Some(pos) = w.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = w.partial.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line[..pos]);
            if line.starts_with("ready ") {
                w.ready = true;
            } else if let Some(json) = line.strip_prefix("closed ") {
                closed.push(json.to_owned());
            } else if let Some(done) = line.strip_prefix("done ") {
                w.done = Some(done.to_owned());
            }
        }
    }
    Ok(ended)
}

/// Writes `ready N` to `out` and, atomically (temp file + rename), to `--ready-file`.
fn announce_ready(cfg: &FarmConfig, out: &mut impl Write) -> io::Result<()> {
    let line = format!("ready {}\n", cfg.connections);
    out.write_all(line.as_bytes())?;
    out.flush()?;
    if let Some(path) = &cfg.ready_file {
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, &line)?;
        fs::rename(&tmp, path)?;
    }
    Ok(())
}

fn add_counters(counters: &mut [u64; 4], done: &str) {
    for pair in done.split_whitespace() {
        if let Some((name, value)) = pair.split_once('=') {
            if let (Some(i), Ok(v)) = (
                COUNTER_NAMES.iter().position(|n| *n == name),
                value.parse::<u64>(),
            ) {
                counters[i] += v;
            }
        }
    }
}

/// `{"kernel":..,"connections":N,"churn_per_s":R,"closed":[{...},\n...]}`, one closed socket
/// per line (see [`super::conn::Closed::to_json`]).
fn write_churn_log(path: &Path, cfg: &FarmConfig, closed: &[String]) -> io::Result<()> {
    let mut f = io::BufWriter::new(fs::File::create(path)?);
    write!(
        f,
        "{{\"kernel\":\"{}\",\"connections\":{},\"churn_per_s\":{},\"closed\":[",
        kernel_release(),
        cfg.connections,
        cfg.churn_per_s
    )?;
    for (i, json) in closed.iter().enumerate() {
        f.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        f.write_all(json.as_bytes())?;
    }
    f.write_all(b"\n]}\n")?;
    f.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up() {
        let mut c = [0; 4];
        add_counters(&mut c, "writes=3 bytes_read=24 churned=1 errors=0");
        add_counters(&mut c, "writes=2 bytes_read=16 churned=0 errors=1 other=9");
        assert_eq!(c, [5, 40, 1, 1]);
    }

    #[test]
    fn churn_is_shared_by_connections() {
        assert!((share(100.0, 250, 1000) - 25.0).abs() < 1e-9);
        assert!(share(100.0, 0, 0).abs() < 1e-9);
    }
}
