//! The per-socket work of a poll, apart from any socket: parse, filter, fingerprint, diff
//! and frame. Kept separate so that benchmarks and tests can feed it recorded replies.

use super::batch::{PollBatch, RecordKind};
use crate::diff::fingerprint::Fingerprinter;
use crate::diff::tracker::{Observation, Tracker, Vanished};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::parse::diag_msg::parse_diag;
use crate::poll::config::PollerConfig;

/// Tracker, filter and fingerprinter of one poller.
#[derive(Debug)]
pub struct Ingest {
    pub(crate) tracker: Tracker,
    pub(crate) filter: Filter,
    fingerprinter: Fingerprinter,
}

impl Ingest {
    /// Builds the per-socket state for `config`.
    ///
    /// # Errors
    /// [`Error::Config`] when the change rule names an unknown `tcp_info` field.
    pub fn new(config: &PollerConfig) -> Result<Self> {
        let fingerprinter = Fingerprinter::new(&config.change_rule)
            .map_err(|f| Error::Config(format!("unknown tcp_info field in change rule: {f}")))?;
        Ok(Self {
            tracker: Tracker::new(),
            filter: config.filter.clone(),
            fingerprinter,
        })
    }

    /// Starts a poll generation.
    pub fn begin_poll(&mut self) {
        self.tracker.begin_poll();
    }

    /// Handles one dump reply: a new or changed connection is framed into `batch` with its
    /// `ArchivalRecord` line stamped `line_nanos`.
    ///
    /// # Errors
    /// [`Error::Malformed`] when the reply cannot be parsed; nothing is recorded then.
    pub fn on_reply(
        &mut self,
        payload: &[u8],
        line_nanos: i64,
        batch: &mut PollBatch,
    ) -> Result<()> {
        let (msg, attrs) = parse_diag(payload)?;
        if !self.filter.accepts(&msg) {
            return Ok(());
        }
        batch.sockets_seen += 1;
        let fp = self.fingerprinter.fingerprint(&msg, &attrs);
        let kind = match self.tracker.observe(msg.cookie(), msg.family(), fp) {
            Observation::Opened => RecordKind::Opened,
            Observation::Changed => RecordKind::Changed,
            Observation::Unchanged => return Ok(()),
        };
        batch.push_record(kind, 0, line_nanos, payload, msg, &attrs);
        Ok(())
    }

    /// Sweeps connections missing from complete polls (see [`Tracker::sweep`]).
    pub fn sweep(&mut self, complete_families: &[u8], out: &mut Vec<Vanished>) {
        self.tracker.sweep(complete_families, out);
    }

    /// Connections tracked.
    pub fn tracked(&self) -> usize {
        self.tracker.len()
    }
}
