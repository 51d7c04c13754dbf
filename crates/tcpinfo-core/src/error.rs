//! Typed errors of the core, one variant per failure kind, each with a stable code.
//!
//! The binding maps [`Error::code`] onto the JS error's `code` property, so tests
//! and users match on codes, never on message text.

use std::fmt;
use std::io;

/// Every error the core can return.
#[derive(Debug)]
pub enum Error {
    /// A netlink socket call (socket, bind, send, recv, setsockopt) failed.
    Socket {
        /// What was being done, e.g. `"recv dump"`.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The kernel answered a request with `NLMSG_ERROR` and a non-zero errno.
    Kernel {
        /// What was being done, e.g. `"dump AF_INET6"`.
        op: &'static str,
        /// The positive errno the kernel returned.
        errno: i32,
    },
    /// A netlink message or attribute was malformed (bad length, truncated, wrong size).
    Malformed {
        /// What was malformed, e.g. `"inet_diag_msg shorter than 72 bytes"`.
        what: &'static str,
        /// Byte offset of the problem inside the message or buffer.
        offset: usize,
    },
    /// A dump was interrupted (`NLM_F_DUMP_INTR`) more times than the retry budget allows.
    DumpInterrupted {
        /// Address family of the dump.
        family: u8,
    },
    /// A configuration value was invalid.
    Config(String),
    /// The poller was closed; no more batches will come.
    Closed,
    /// Entering a network namespace failed.
    Netns {
        /// The namespace path.
        path: String,
        /// The OS error.
        source: io::Error,
    },
    /// A thread of tcpinfo could not be started or joined.
    Thread {
        /// What was being done, e.g. `"spawn poller thread"`.
        op: &'static str,
        /// The OS error, or a description of the failure.
        detail: String,
    },
    /// A bug in tcpinfo: a thread panicked or ended without being asked to.
    Internal(String),
}

/// Every code [`Error::code`] can return, in declaration order. The TypeScript list of
/// error codes is tested against it (`__test__/vocabulary.spec.ts`).
pub const ERROR_CODES: [&str; 9] = [
    "ERR_SOCKET",
    "ERR_KERNEL",
    "ERR_MALFORMED",
    "ERR_DUMP_INTERRUPTED",
    "ERR_CONFIG",
    "ERR_CLOSED",
    "ERR_NETNS",
    "ERR_THREAD",
    "ERR_INTERNAL",
];

impl Error {
    /// The stable code of this error, e.g. `ERR_SOCKET`. Never changes between releases.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Socket { .. } => "ERR_SOCKET",
            Error::Kernel { .. } => "ERR_KERNEL",
            Error::Malformed { .. } => "ERR_MALFORMED",
            Error::DumpInterrupted { .. } => "ERR_DUMP_INTERRUPTED",
            Error::Config(_) => "ERR_CONFIG",
            Error::Closed => "ERR_CLOSED",
            Error::Netns { .. } => "ERR_NETNS",
            Error::Thread { .. } => "ERR_THREAD",
            Error::Internal(_) => "ERR_INTERNAL",
        }
    }

    pub(crate) fn socket(op: &'static str, source: io::Error) -> Self {
        Error::Socket { op, source }
    }

    pub(crate) fn thread(op: &'static str, detail: impl fmt::Display) -> Self {
        Error::Thread {
            op,
            detail: detail.to_string(),
        }
    }

    pub(crate) fn malformed(what: &'static str, offset: usize) -> Self {
        Error::Malformed { what, offset }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Socket { op, source } => write!(f, "netlink {op} failed: {source}"),
            Error::Kernel { op, errno } => write!(
                f,
                "kernel rejected {op}: {}",
                io::Error::from_raw_os_error(*errno)
            ),
            Error::Malformed { what, offset } => {
                write!(f, "malformed netlink data at byte {offset}: {what}")
            }
            Error::DumpInterrupted { family } => {
                write!(f, "inet_diag dump of family {family} was interrupted repeatedly (NLM_F_DUMP_INTR)")
            }
            Error::Config(msg) => write!(f, "invalid configuration: {msg}"),
            Error::Closed => write!(f, "the poller is closed"),
            Error::Netns { path, source } => {
                write!(f, "cannot enter network namespace {path}: {source}")?;
                if source.raw_os_error() == Some(libc::EPERM) {
                    write!(f, " (entering a network namespace needs CAP_SYS_ADMIN: run as root or grant it, e.g. setcap cap_sys_admin+ep)")?;
                }
                Ok(())
            }
            Error::Thread { op, detail } => write!(f, "{op} failed: {detail}"),
            Error::Internal(msg) => {
                write!(f, "{msg} (this is a bug in tcpinfo, please report it)")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Socket { source, .. } | Error::Netns { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Result alias of the core.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    /// `ERROR_CODES` lists every variant's code exactly once.
    #[test]
    fn error_codes_lists_every_variant() {
        let all = [
            Error::socket("x", io::Error::other("x")),
            Error::Kernel { op: "x", errno: 1 },
            Error::malformed("x", 0),
            Error::DumpInterrupted { family: 2 },
            Error::Config(String::new()),
            Error::Closed,
            Error::Netns {
                path: String::new(),
                source: io::Error::other("x"),
            },
            Error::thread("x", "y"),
            Error::Internal(String::new()),
        ];
        let codes: Vec<_> = all.iter().map(Error::code).collect();
        assert_eq!(codes, ERROR_CODES);
    }
}
