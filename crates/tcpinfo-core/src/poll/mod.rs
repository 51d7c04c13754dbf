//! One poll end to end (dump, parse, filter, diff, encode) and the dedicated thread that
//! runs it at a fixed interval. See `docs/internals/poll/design.md`.

pub mod accounting;
pub mod batch;
pub mod bpf_source;
pub mod budget;
pub mod config;
pub mod ingest;
pub mod mode;
pub mod multi;
pub mod poller;
pub mod records_pool;
pub mod thread;
