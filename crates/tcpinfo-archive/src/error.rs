//! Typed errors of the archive writer, each with a stable code, and the causes under
//! which file-system failures are counted.

use std::fmt;
use std::io;

/// Errors returned by the writer's API. File-system failures while archiving are not
/// returned here: they are counted by [`ErrorCause`] and reported as
/// [`crate::ErrorEvent`]s, and archiving goes on.
#[derive(Debug)]
pub enum Error {
    /// A configuration value was invalid (message names the option and the value).
    Config(String),
    /// The writer is closed.
    Closed,
    /// The writer thread could not be started, or died.
    Thread(String),
    /// `close()` did not finish every file within its deadline.
    Timeout {
        /// Files still open (their data up to the last flush is readable).
        unfinished: u64,
    },
}

impl Error {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config(_) => "ERR_CONFIG",
            Error::Closed => "ERR_CLOSED",
            Error::Thread(_) => "ERR_ARCHIVE_THREAD",
            Error::Timeout { .. } => "ERR_ARCHIVE_TIMEOUT",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) => write!(f, "invalid archive configuration: {m}"),
            Error::Closed => write!(f, "the archive writer is closed"),
            Error::Thread(m) => write!(f, "archive writer thread: {m}"),
            Error::Timeout { unfinished } => {
                write!(
                    f,
                    "archive writer close timed out with {unfinished} files unfinished"
                )
            }
        }
    }
}

impl std::error::Error for Error {}

/// Result alias of the archive writer.
pub type Result<T> = std::result::Result<T, Error>;

/// Why a file-system operation failed; write errors are counted per cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ErrorCause {
    /// `ENOSPC`: the file system is full.
    NoSpace = 0,
    /// `EDQUOT`: a disk quota is exhausted.
    Quota = 1,
    /// `EACCES`/`EPERM`: the output directory is not writable.
    Permission = 2,
    /// `EROFS`: the file system is read-only.
    ReadOnly = 3,
    /// `EMFILE`/`ENFILE`: out of file descriptors.
    TooManyFiles = 4,
    /// `EEXIST` on every candidate sequence number (a file series full of foreign files).
    Exists = 5,
    /// Any other I/O error.
    Other = 6,
}

impl ErrorCause {
    /// Number of causes.
    pub const COUNT: usize = 7;
    /// Every cause, in code order.
    pub const ALL: [ErrorCause; Self::COUNT] = [
        ErrorCause::NoSpace,
        ErrorCause::Quota,
        ErrorCause::Permission,
        ErrorCause::ReadOnly,
        ErrorCause::TooManyFiles,
        ErrorCause::Exists,
        ErrorCause::Other,
    ];

    /// Stable name, used as a metric label: `no_space`, `quota`, `permission`, `read_only`,
    /// `too_many_files`, `exists`, `other`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCause::NoSpace => "no_space",
            ErrorCause::Quota => "quota",
            ErrorCause::Permission => "permission",
            ErrorCause::ReadOnly => "read_only",
            ErrorCause::TooManyFiles => "too_many_files",
            ErrorCause::Exists => "exists",
            ErrorCause::Other => "other",
        }
    }

    /// The cause of an I/O error.
    pub fn of(e: &io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::ENOSPC) => ErrorCause::NoSpace,
            Some(libc::EDQUOT) => ErrorCause::Quota,
            Some(libc::EACCES | libc::EPERM) => ErrorCause::Permission,
            Some(libc::EROFS) => ErrorCause::ReadOnly,
            Some(libc::EMFILE | libc::ENFILE) => ErrorCause::TooManyFiles,
            Some(libc::EEXIST) => ErrorCause::Exists,
            _ => ErrorCause::Other,
        }
    }
}
