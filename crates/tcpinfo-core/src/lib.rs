//! `tcpinfo-core`: watch every TCP socket of a Linux host through netlink `inet_diag`.
//!
//! The hot path of the `tcpinfo` package, with no Node dependency: one dedicated thread
//! per poller dumps `AF_INET`/`AF_INET6` TCP sockets at a fixed interval
//! ([`PollerThread`]), parses the replies without copying ([`parse`]), keeps a 24-byte slot
//! (64-bit fingerprint) per connection to tell new, changed and closed ones apart ([`diff`]),
//! listens to the kernel's destroy events for final counters, and encodes each reported
//! connection once as an M-Lab `ArchivalRecord` JSON line ([`encode`]).
//!
//! Architecture: `docs/ARCHITECTURE.md`; kernel structs: `shared/reference/KERNEL-UAPI.md`.
#![deny(missing_docs)]

mod decode;
mod diff;
mod encode;
mod error;
mod filter;
mod host;
mod netlink;
pub mod netns;
pub mod parse;
mod poll;
mod uuid;

pub use decode::{decode_connection, decode_record, Value, STATE_NAMES};
pub use diff::fingerprint::{ChangeRule, Fingerprinter, DEFAULT_IGNORED_FIELDS};
pub use diff::tracker::{Observation, Owner, Tracker, Vanished};
pub use encode::archival::{write_header_line, write_record_line};
pub use encode::rfc3339::{civil_from_days, write_rfc3339, write_rfc3339_body, GO_ZERO_TIME};
pub use error::{Error, Result, ERROR_CODES};
pub use filter::{is_local, Cidr, Filter};
pub use host::{boot_time, hostname, kernel_release, output_closed};
pub use netlink::bytecode::exclusion_program;
pub use netlink::dump::{DumpEnd, DumpSocket, DumpStats, DEFAULT_RECV_BUFFER_BYTES};
pub use netlink::request::DumpSpec;
pub use poll::accounting::{Accounting, MAX_METRIC_PORTS};
pub use poll::batch::PortStats;
pub use poll::batch::{
    NamespaceInfo, PollBatch, PollStats, RecordIter, RecordKind, RecordView, Records, Warning,
    WarningCode, FLAG_FROM_DESTROY_EVENT, FLAG_HAS_RECORD, FLAG_UNSEEN, INDEX_ENTRY_LEN,
    INDEX_NETNS_OFFSET, WARNING_CODES,
};
pub use poll::bpf_source::BpfPollStats;
pub use poll::config::{
    PollerConfig, ALL_STATES, DEFAULT_CLOSE_GRACE, DEFAULT_EXT, DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_PENDING_CLOSES, DEFAULT_MAX_QUEUED_BYTES, DEFAULT_POLL_INTERVAL,
    DEFAULT_QUEUE_DEPTH, DEFAULT_STATES, MAX_MAX_QUEUED_BYTES, MAX_POLL_INTERVAL, MAX_QUEUE_DEPTH,
    MIN_MAX_CPU, MIN_MAX_QUEUED_BYTES,
};
pub use poll::ingest::Ingest;
pub use poll::mode::{PollMode, AUTO_TO_BPF_SHARE, AUTO_TO_NETLINK_SHARE, BPF_SWEEP_INTERVAL};
pub use poll::multi::{MultiPoller, MAX_NAMESPACES};
pub use poll::poller::{unix_nanos, PartSink, Poller};
pub use poll::records_pool::RecordsPool;
pub use poll::thread::{snapshot, BatchReceiver, PollerThread};
pub use uuid::{default_uuid_prefix, read_uuid_prefix, uuid_for_cookie};
