//! `tcpinfo-archive-read`: reads tcpinfo and M-Lab tcp-info archives back.
//!
//! Sources are zstd-compressed or plain JSON lines of M-Lab `ArchivalRecord`s (header line
//! optional, several frames, an unfinished last frame reported with its byte offset) and
//! raw netlink dumps (concatenated `nlmsghdr` + `inet_diag_msg` + rtattrs, M-Lab's
//! `testdata.zst`). Records come out in the poller's batch layout
//! ([`tcpinfo_core::Records`]), each with its timestamp and source metadata, so live and
//! archived records share one reader. [`csv`] writes them in M-Lab csvtool's format.
//!
//! Design: `docs/internals/archive/design.md`; CSV columns: `docs/CSV.md`.
#![deny(missing_docs)]

mod batch;
pub mod csv;
mod decoder;
mod error;
mod fast_line;
mod json;
pub mod json_out;
mod payload;
pub mod series;
mod time;

pub use batch::{ArchiveBatch, ReadStats, Segment, SEGMENT_FIELD_OFFSET};
pub use decoder::{
    ArchiveDecoder, ReaderOptions, DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_BATCH_RECORDS,
    DEFAULT_MAX_ERRORS_PER_BATCH, DEFAULT_MAX_LINE_BYTES,
};
pub use error::{ArchiveError, ErrorKind};
pub use json::{scan_line, Metadata, ScanError, Scanned, Text};
pub use time::{parse_rfc3339, write_csvtool_time, write_iso_millis, Stamp};
