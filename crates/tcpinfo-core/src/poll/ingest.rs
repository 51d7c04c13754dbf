//! The per-socket work of a poll, apart from any socket: parse, filter, fingerprint, diff
//! and frame. Kept separate so that benchmarks and tests can feed it recorded replies.

use super::accounting::Accounting;
use super::batch::{PollBatch, RecordKind};
use crate::diff::fingerprint::Fingerprinter;
use crate::diff::tracker::{Observation, Owner, Tracker, Vanished};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::parse::attrs::{walk, Attrs, INET_DIAG_INFO};
use crate::parse::diag_msg::{InetDiagMsg, INET_DIAG_MSG_LEN};
use crate::poll::config::PollerConfig;

/// `TCP_FIN_WAIT2` and `TCP_TIME_WAIT`: the states a timewait minisocket is dumped with.
const TCP_FIN_WAIT2: u8 = 5;
/// See [`TCP_FIN_WAIT2`].
const TCP_TIME_WAIT: u8 = 6;

/// Tracker, filter and fingerprinter of one poller.
#[derive(Debug)]
pub struct Ingest {
    pub(crate) tracker: Tracker,
    pub(crate) filter: Filter,
    fingerprinter: Fingerprinter,
    /// Destroy events close connections and `tcp_info` is requested: a dumped timewait
    /// minisocket (no `tcp_info`) of an untracked cookie is an already-closed connection.
    skip_untracked_timewait: bool,
    /// Flow events, byte deltas and per-port accounting of reported records.
    pub(crate) accounting: Accounting,
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
            tracker: Tracker::new(i64::try_from(config.close_grace.as_nanos()).unwrap_or(i64::MAX)),
            filter: config.filter.clone(),
            fingerprinter,
            skip_untracked_timewait: config.destroy_events
                && config.ext & (1 << (INET_DIAG_INFO - 1)) != 0,
            accounting: Accounting::new(config.count_bytes, &config.metric_ports),
        })
    }

    /// Starts a poll generation at `now_nanos` (unix ns).
    pub fn begin_poll(&mut self, now_nanos: i64) {
        self.tracker.begin_poll(now_nanos);
        self.accounting.begin_poll();
    }

    /// Handles one dump reply: a new or changed connection is added to `batch` with its
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
        let msg = InetDiagMsg::new(payload)?;
        if !self.filter.accepts(&msg) {
            // Checked all the same: a malformed reply is an error whether or not it is kept.
            return walk(payload, INET_DIAG_MSG_LEN).try_for_each(|a| a.map(drop));
        }
        // The fingerprint checks the attributes; they are indexed only for a record.
        let fp = self.fingerprinter.fingerprint(payload)?;
        batch.sockets_seen += 1;
        // A timewait minisocket keeps the cookie of the full socket it replaced. Once that
        // socket's destroy event has closed the connection, the minisocket must not open it
        // a second time under the same UUID (tests/live_kernel.rs, half_closed_...).
        if self.skip_untracked_timewait
            && matches!(msg.state(), TCP_FIN_WAIT2 | TCP_TIME_WAIT)
            && Attrs::parse(payload, INET_DIAG_MSG_LEN)?
                .get(INET_DIAG_INFO)
                .is_none()
            && !self.tracker.contains(msg.cookie())
        {
            return Ok(());
        }
        let owner = Owner {
            uid: msg.uid(),
            inode: msg.inode(),
        };
        let kind = match self.tracker.observe(msg.cookie(), msg.family(), fp, owner) {
            Observation::Opened => RecordKind::Opened,
            Observation::Changed => RecordKind::Changed,
            Observation::Unchanged => return Ok(()),
        };
        let attrs = Attrs::parse(payload, INET_DIAG_MSG_LEN)?;
        batch.push_record(kind, 0, line_nanos, payload, msg, &attrs);
        self.accounting.on_record(kind, 0, &msg, &attrs, batch);
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

    /// Heap bytes of the tracker.
    pub fn tracker_bytes(&self) -> usize {
        self.tracker.heap_bytes()
    }
}
