//! Typed errors of the passive RTT crate, one variant per failure kind, each with a
//! stable code (the binding turns [`Error::code`] into the JS error's `code`).
//!
//! Per-packet problems (truncated or malformed packets, unsupported link types) are
//! not errors: they are counted in [`crate::ParseStats`] and the packet is skipped.

use std::fmt;
use std::io;

/// Every error the passive RTT code can return.
#[derive(Debug)]
pub enum Error {
    /// The process lacks `CAP_NET_RAW`, which an `AF_PACKET` socket needs.
    Permission {
        /// What was refused, e.g. `"socket(AF_PACKET)"`.
        op: &'static str,
    },
    /// A capture socket call (socket, setsockopt, bind, mmap, poll) failed.
    Socket {
        /// What was being done, e.g. `"setsockopt(PACKET_RX_RING)"`.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Reading a capture file failed (open or read).
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: io::Error,
    },
    /// A capture file is not pcap/pcapng, or is corrupt beyond the next block.
    CaptureFile {
        /// The file.
        path: String,
        /// What was wrong.
        what: String,
    },
    /// A configuration value was invalid (unknown interface, zero ring size ...).
    Config(String),
    /// Entering a network namespace failed.
    Netns {
        /// The namespace path.
        path: String,
        /// The OS error.
        source: io::Error,
    },
    /// The capture was closed; no more batches will come.
    Closed,
}

impl Error {
    /// The stable code of this error, e.g. `ERR_PERMISSION`. Never changes between releases.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Permission { .. } => "ERR_PERMISSION",
            Error::Socket { .. } => "ERR_SOCKET",
            Error::Io { .. } => "ERR_IO",
            Error::CaptureFile { .. } => "ERR_CAPTURE_FILE",
            Error::Config(_) => "ERR_CONFIG",
            Error::Netns { .. } => "ERR_NETNS",
            Error::Closed => "ERR_CLOSED",
        }
    }

    /// A socket error, or [`Error::Permission`] when the OS said `EPERM`/`EACCES`.
    pub(crate) fn socket(op: &'static str, source: io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => Error::Permission { op },
            _ => Error::Socket { op, source },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Permission { op } => write!(
                f,
                "{op} was refused: live packet capture needs the CAP_NET_RAW capability \
                 (run as root, or grant it: setcap cap_net_raw+ep on the node binary)"
            ),
            Error::Socket { op, source } => write!(f, "packet capture {op} failed: {source}"),
            Error::Io { path, source } => write!(f, "cannot read capture file {path}: {source}"),
            Error::CaptureFile { path, what } => {
                write!(f, "{path} is not a readable pcap/pcapng capture: {what}")
            }
            Error::Config(msg) => write!(f, "invalid configuration: {msg}"),
            Error::Netns { path, source } => {
                write!(f, "cannot enter network namespace {path}: {source}")
            }
            Error::Closed => write!(f, "the RTT capture is closed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Socket { source, .. }
            | Error::Io { source, .. }
            | Error::Netns { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eperm_names_the_capability() {
        let e = Error::socket(
            "socket(AF_PACKET)",
            io::Error::from_raw_os_error(libc::EPERM),
        );
        assert_eq!(e.code(), "ERR_PERMISSION");
        assert!(e.to_string().contains("CAP_NET_RAW"));
        let e = Error::socket("bind", io::Error::from_raw_os_error(libc::ENODEV));
        assert_eq!(e.code(), "ERR_SOCKET");
    }
}
