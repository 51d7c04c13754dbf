//! Typed errors of the BPF mode, each with a stable code.

use std::fmt;
use std::io;

/// Every error of the BPF mode.
#[derive(Debug)]
pub enum BpfError {
    /// The mode cannot run here; the text names what is missing (the program was not
    /// built, no kernel BTF, no `CAP_BPF`/`CAP_PERFMON`, the kernel refused the program).
    Unsupported(String),
    /// A system call of a walk failed.
    Io {
        /// What was being done, e.g. `"read iterator"`.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The iterator's output did not parse (a bug, or a kernel writing something else).
    Malformed(String),
}

/// Every code [`BpfError::code`] can return.
pub const BPF_ERROR_CODES: [&str; 3] = ["ERR_UNSUPPORTED", "ERR_BPF_IO", "ERR_MALFORMED"];

impl BpfError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            BpfError::Unsupported(_) => "ERR_UNSUPPORTED",
            BpfError::Io { .. } => "ERR_BPF_IO",
            BpfError::Malformed(_) => "ERR_MALFORMED",
        }
    }
}

impl fmt::Display for BpfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BpfError::Unsupported(what) => write!(f, "BPF poll mode unsupported: {what}"),
            BpfError::Io { op, source } => write!(f, "BPF {op} failed: {source}"),
            BpfError::Malformed(what) => write!(f, "malformed BPF iterator output: {what}"),
        }
    }
}

impl std::error::Error for BpfError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BpfError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
