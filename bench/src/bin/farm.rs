//! `farm`: holds N loopback TCP connections, changes a fraction of them every interval, churns
//! some, and stops by itself. See `tcpinfo_bench::farm` for the design.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tcpinfo_bench::cli::{self, Flags};
use tcpinfo_bench::farm::{self, supervisor, worker, FarmConfig, WorkerConfig};

const USAGE: &str = "\
usage: farm --connections N [--procs P] [--change-fraction p] [--interval-ms 10]
            [--churn R] [--duration-s 60] [--setup-timeout-s 300] [--listen-port 20000]
            [--net-octet 127] [--ready-file PATH] [--churn-log PATH]

Opens N loopback TCP connections (2N sockets: both ends are held) over P worker processes
(default: the fewest with at most 4,400 connections each), prints `ready N` when all are up,
then every interval writes 8 bytes on a fraction p of them (the peer reads them) and closes and
reopens R connections per second. Stops after --duration-s (counted from ready), on SIGINT or
SIGTERM, and prints `done {json}`. --churn-log writes every closed socket with its final
tcpi_bytes_acked/tcpi_bytes_received as JSON. --net-octet A puts every address in A.0.0.0/8
(listeners on A.0.0.1): for A other than 127, first `ip route add local A.0.0.0/8 dev lo`.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if cli::wants_help(&args) {
        return finish(writeln!(io::stdout(), "{USAGE}").map_err(|e| e.to_string()));
    }
    finish(run(args))
}

fn run(args: Vec<String>) -> Result<(), String> {
    // Hidden mode: the supervisor re-executes this binary as `farm --worker INDEX ...`.
    let is_worker = args.iter().any(|a| a == "--worker");
    let mut flags = Flags::parse(args)?;
    let mut out = io::stdout().lock();
    if is_worker {
        let wcfg = WorkerConfig::from_flags(&mut flags)?;
        flags.finish()?;
        return worker::run(&wcfg, &mut out).map_err(|e| format!("worker {}: {e}", wcfg.index));
    }
    let cfg = parse(&mut flags)?;
    flags.finish()?;
    let summary = supervisor::run(&cfg, &mut out).map_err(|e| e.to_string())?;
    if !summary.ok() {
        return Err(format!(
            "farm failed (stop reason {}, failed workers {})",
            summary.stop_reason, summary.failed_workers
        ));
    }
    Ok(())
}

fn parse(flags: &mut Flags) -> Result<FarmConfig, String> {
    let cfg = FarmConfig {
        connections: flags.require("connections")?,
        procs: flags.take_opt("procs")?,
        change_fraction: flags.take("change-fraction", 0.0)?,
        interval: Duration::from_millis(flags.take("interval-ms", farm::DEFAULT_INTERVAL_MS)?),
        churn_per_s: flags.take("churn", 0.0)?,
        duration: Duration::from_secs(flags.take("duration-s", farm::DEFAULT_DURATION_S)?),
        setup_timeout: Duration::from_secs(
            flags.take("setup-timeout-s", farm::DEFAULT_SETUP_TIMEOUT_S)?,
        ),
        listen_port: flags.take("listen-port", farm::DEFAULT_LISTEN_PORT)?,
        net_octet: flags.take("net-octet", 127)?,
        ready_file: flags.take_opt::<PathBuf>("ready-file")?,
        churn_log: flags.take_opt::<PathBuf>("churn-log")?,
    };
    if !(0.0..=1.0).contains(&cfg.change_fraction) {
        return Err("--change-fraction must be within 0..=1".into());
    }
    if !(cfg.churn_per_s >= 0.0 && cfg.churn_per_s.is_finite()) || cfg.interval.is_zero() {
        return Err("--churn must be >= 0 and --interval-ms > 0".into());
    }
    Ok(cfg)
}

fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Ignored: if stderr is gone there is nowhere left to report to.
            let _ignored = writeln!(io::stderr(), "farm: {e}");
            ExitCode::FAILURE
        }
    }
}
