//! `tcpinfo-bpf`: the kernel side of tcpinfo's BPF poll mode.
//!
//! An `iter/tcp` BPF program (`bpf/changed.bpf.c`, compiled by `build.rs` and embedded)
//! fingerprints every TCP socket of the current network namespace in the kernel, keeps
//! the last fingerprint in a hash map keyed by socket cookie, and writes out only new and changed
//! sockets: their cookie and `inet_diag_sockid`, enough for an exact `inet_diag` request.
//! [`ChangeIter`] loads it (with `aya`, pure Rust) and runs one walk per poll.
//!
//! Design and the table of fingerprinted fields: `docs/internals/bpf/design.md`.
#![deny(missing_docs)]

mod error;
mod iter;
mod probe;
mod record;

pub use error::{BpfError, BPF_ERROR_CODES};
pub use iter::{
    ChangeIter, EventCounters, IterConfig, WalkStats, FP_ELAPSED, FP_MEMORY, FP_STATE_ONLY,
};
pub use probe::{built_in, check_support, check_support_at};
pub use record::{Entry, SocketId};
