//! `tcpinfo-archive`: writes M-Lab tcp-info v1.9 compatible archives, one file series per
//! connection (`<output>/YYYY/MM/DD/<UUID>.<%05d seq>.jsonl.zst`: a metadata header line,
//! then the `ArchivalRecord` lines as the poller encoded them), from the batches of
//! `tcpinfo-core`'s poller.
//!
//! Fed once per poll ([`ArchiveWriter::write`], never blocking), it compresses and writes
//! on its own thread: one zstd frame per file per flush interval, so every file is at
//! any moment a sequence of complete frames. Files are created with `O_EXCL` and never
//! truncated, overwritten or reopened; open files are capped; the rotation policy belongs
//! to the caller ([`ArchiveWriter::rotate`]).
//!
//! Design and measurements: `docs/internals/archive/design.md`.
#![deny(missing_docs)]

mod anonymize;
mod config;
mod error;
mod file;
mod frame;
mod key;
mod path;
mod queue;
mod series;
mod stats;
mod worker;
mod writer;

pub use anonymize::{local_interface_addrs, Anonymizer};
pub use config::{
    AnonymizeMethod, WriterConfig, DEFAULT_EARLY_FLUSH_BYTES, DEFAULT_ERROR_REPORT_INTERVAL,
    DEFAULT_FLUSH_INTERVAL, DEFAULT_FORGET_AFTER, DEFAULT_IDLE_CLOSE, DEFAULT_LEVEL,
    DEFAULT_MAX_OPEN_FILES, DEFAULT_MAX_PENDING_BYTES, DEFAULT_MAX_QUEUED_BYTES,
    DEFAULT_QUEUE_DEPTH,
};
pub use error::{Error, ErrorCause, Result};
pub use key::valid_tag;
pub use path::{
    connection_of_uuid, file_path, parse_file_name, uuid, uuid_in, validate_prefix, FILE_SUFFIX,
    MAX_PREFIX_LEN,
};
pub use stats::{ErrorEvent, WriterStats};
pub use writer::{ArchiveWriter, Rotate, WriteBatch, DROP_CLOSE_DEADLINE};
