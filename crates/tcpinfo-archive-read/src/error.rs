//! Errors of the archive reader: one enum, one stable code (`ERR_ARCHIVE`) and a `kind`
//! saying what was wrong, always with the source name and where (line and byte offset).
//!
//! Reading never panics on bad input: the valid records before the damage are returned,
//! then one error. See `docs/internals/archive/design.md`.

use std::fmt;

/// What was wrong with the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input ends inside a zstd frame (a writer crashed or the file is cut short).
    Truncated,
    /// The zstd decoder rejected the data (flipped bits, wrong checksum).
    Compression,
    /// A line is not an `ArchivalRecord` JSON object.
    Json,
    /// A `RawIDM` or attribute is not valid base64, or has an impossible size.
    Record,
    /// A line is longer than the reader's bound.
    LineTooLong,
    /// A raw netlink dump message has an impossible length or type.
    Netlink,
    /// The input is neither JSONL, zstd nor a netlink dump.
    Foreign,
}

impl ErrorKind {
    /// Stable name of the kind, e.g. `"truncated"`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Truncated => "truncated",
            ErrorKind::Compression => "compression",
            ErrorKind::Json => "json",
            ErrorKind::Record => "record",
            ErrorKind::LineTooLong => "line-too-long",
            ErrorKind::Netlink => "netlink",
            ErrorKind::Foreign => "foreign",
        }
    }

    /// Whether reading can go on with the next line of the same source after this error.
    /// Errors of the byte stream itself (compression, truncation, netlink framing, foreign
    /// input) end the source.
    pub fn recoverable(self) -> bool {
        matches!(
            self,
            ErrorKind::Json | ErrorKind::Record | ErrorKind::LineTooLong
        )
    }
}

/// One error of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveError {
    /// What was wrong.
    pub kind: ErrorKind,
    /// Name of the source (file path, or `-`).
    pub source: String,
    /// 1-based line of the decompressed text, when the error is about a line.
    pub line: Option<u64>,
    /// Byte offset: in the decompressed text for line errors, in the input as stored
    /// (compressed) for compression and truncation errors.
    pub byte_offset: u64,
    /// Whether `byte_offset` counts bytes of the stored (compressed) input.
    pub compressed_offset: bool,
    /// One-line explanation.
    pub message: String,
}

impl ArchiveError {
    /// The stable error code of every archive error.
    pub const CODE: &'static str = "ERR_ARCHIVE";

    /// The stable code, `ERR_ARCHIVE`.
    pub fn code(&self) -> &'static str {
        Self::CODE
    }
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(line) = self.line {
            write!(f, ": line {line}")?;
        }
        let what = if self.compressed_offset {
            "byte (compressed)"
        } else {
            "byte"
        };
        write!(
            f,
            " ({what} {}): {} ({})",
            self.byte_offset,
            self.message,
            self.kind.name()
        )
    }
}

impl std::error::Error for ArchiveError {}
