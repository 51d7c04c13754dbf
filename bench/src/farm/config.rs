//! Settings of a farm run and of one worker (which travel on the worker's command line).

use std::path::PathBuf;
use std::time::Duration;

use super::MAX_PAIRS_PER_WORKER;
use crate::cli::Flags;

/// Settings of a whole farm run (the `farm` command line).
#[derive(Debug, Clone)]
pub struct FarmConfig {
    /// Connections to hold (each is two sockets: client and server end).
    pub connections: u64,
    /// Worker processes; `None` picks the fewest that respect [`MAX_PAIRS_PER_WORKER`].
    pub procs: Option<u32>,
    /// Fraction (0..=1) of connections written to per interval.
    pub change_fraction: f64,
    /// Time between change/churn steps.
    pub interval: Duration,
    /// Connections closed and reopened per second, over the whole farm.
    pub churn_per_s: f64,
    /// Run time after all connections are up.
    pub duration: Duration,
    /// Limit on the time to open all connections.
    pub setup_timeout: Duration,
    /// Listen port of worker 0; worker `w` listens on `listen_port + w`.
    pub listen_port: u16,
    /// First octet of every address (127: loopback; another, e.g. 10, needs
    /// `ip route add local 10.0.0.0/8 dev lo`, so that M-Lab's tcp-info, which always skips
    /// loopback, archives the farm's connections).
    pub net_octet: u8,
    /// File that receives `ready N` too.
    pub ready_file: Option<PathBuf>,
    /// JSON file that receives the closed connections and their final counters.
    pub churn_log: Option<PathBuf>,
}

impl FarmConfig {
    /// Number of workers to start, checked against the per-worker limit.
    ///
    /// # Errors
    /// `procs` is 0 or too small for the connection count.
    pub fn worker_count(&self) -> Result<u32, String> {
        let needed = self.connections.div_ceil(MAX_PAIRS_PER_WORKER).max(1);
        let procs = self.procs.map_or(needed, u64::from);
        if procs == 0 || procs < needed {
            return Err(format!(
                "--procs {procs} is too few for {} connections: each worker holds at most {MAX_PAIRS_PER_WORKER}, so at least {needed} are needed",
                self.connections
            ));
        }
        u32::try_from(procs).map_err(|e| e.to_string())
    }
}

/// Settings of one worker, passed on its command line by the supervisor.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    /// Worker number, from 0.
    pub index: u32,
    /// Connections this worker holds.
    pub connections: u64,
    /// Port its listener binds on `net_octet.0.0.1`.
    pub listen_port: u16,
    /// First octet of its listen and client addresses.
    pub net_octet: u8,
    /// Fraction of its connections written to per interval.
    pub change_fraction: f64,
    /// Time between change/churn steps.
    pub interval: Duration,
    /// Connections it churns per second.
    pub churn_per_s: f64,
    /// Hard bound on its lifetime, in case the stop signal never comes.
    pub lifetime: Duration,
}

impl WorkerConfig {
    /// Command-line arguments that [`WorkerConfig::from_flags`] reads back.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            "--worker".into(),
            self.index.to_string(),
            "--connections".into(),
            self.connections.to_string(),
            "--listen-port".into(),
            self.listen_port.to_string(),
            "--net-octet".into(),
            self.net_octet.to_string(),
            "--change-fraction".into(),
            self.change_fraction.to_string(),
            "--interval-us".into(),
            self.interval.as_micros().to_string(),
            "--churn".into(),
            self.churn_per_s.to_string(),
            "--lifetime-s".into(),
            self.lifetime.as_secs().to_string(),
        ]
    }

    /// Reads the arguments written by [`WorkerConfig::to_args`].
    ///
    /// # Errors
    /// A missing or malformed flag.
    pub fn from_flags(flags: &mut Flags) -> Result<Self, String> {
        let cfg = Self {
            index: flags.require("worker")?,
            connections: flags.require("connections")?,
            listen_port: flags.require("listen-port")?,
            net_octet: flags.require("net-octet")?,
            change_fraction: flags.require("change-fraction")?,
            interval: Duration::from_micros(flags.require("interval-us")?),
            churn_per_s: flags.require("churn")?,
            lifetime: Duration::from_secs(flags.require("lifetime-s")?),
        };
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip() {
        let cfg = WorkerConfig {
            index: 3,
            connections: 4400,
            listen_port: 20003,
            net_octet: 10,
            change_fraction: 0.015,
            interval: Duration::from_micros(2500),
            churn_per_s: 12.5,
            lifetime: Duration::from_secs(400),
        };
        let mut flags = Flags::parse(cfg.to_args()).unwrap();
        assert_eq!(WorkerConfig::from_flags(&mut flags).unwrap(), cfg);
        flags.finish().unwrap();
    }
}
