//! Network namespaces: finding every one on the host ([`discover`]), naming them
//! ([`name`]), and entering one on the current thread to open sockets there.
//!
//! A netlink socket belongs to the namespace it was created in for its whole life, so the
//! poller thread enters a namespace only to open its sockets, then returns home; it never
//! needs one thread per namespace.

pub mod discover;
pub mod name;

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{Error, Result};

/// `CAP_SYS_PTRACE` (include/uapi/linux/capability.h).
const CAP_SYS_PTRACE: u32 = 19;
/// `CAP_SYS_ADMIN`.
const CAP_SYS_ADMIN: u32 = 21;

/// Moves the calling thread into the namespace `ns` (an open `/proc/PID/ns/net` or
/// `/run/netns/NAME`).
///
/// # Errors
/// The OS error of `setns(2)`.
pub fn enter(ns: &File) -> io::Result<()> {
    // SAFETY: setns on a valid fd only changes this thread's network namespace.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The network namespace of the calling thread, open (to come back to) with its inode.
///
/// # Errors
/// [`Error::Netns`] when `/proc/thread-self/ns/net` cannot be opened.
pub fn current() -> Result<(File, u64)> {
    let path = "/proc/thread-self/ns/net";
    let file = File::open(path).map_err(|source| Error::Netns {
        path: path.into(),
        source,
    })?;
    let inode = file
        .metadata()
        .map_err(|source| Error::Netns {
            path: path.into(),
            source,
        })?
        .ino();
    Ok((file, inode))
}

/// The inode of the namespace at `path` (a namespace file or a bind mount of one).
pub fn inode_of(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Checks that the calling thread may watch every namespace: `CAP_SYS_ADMIN` for
/// `setns(2)`, `CAP_SYS_PTRACE` to open other users' `/proc/PID/ns/net`.
///
/// # Errors
/// [`Error::Netns`] (`EPERM`) naming the missing capabilities.
pub fn check_privileges() -> Result<()> {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let missing: Vec<&str> = [(CAP_SYS_ADMIN, "CAP_SYS_ADMIN (to enter namespaces with setns)"), (CAP_SYS_PTRACE, "CAP_SYS_PTRACE (to open other processes' /proc/PID/ns/net)")]
        .into_iter()
        .filter(|(bit, _)| effective & (1 << bit) == 0)
        .map(|(_, what)| what)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::Netns {
        path: "all".into(),
        source: io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "watching every network namespace needs {}; run as root or grant them (e.g. setcap cap_sys_admin,cap_sys_ptrace+ep)",
                missing.join(" and ")
            ),
        ),
    })
}

/// Enters `path`'s namespace on the calling thread, runs `f` there, and returns to
/// `home` whatever `f` did. The inner result is `f`'s, or [`Error::Netns`] when the
/// namespace could not be opened or entered (then `f` did not run).
///
/// # Errors
/// The outer [`Error::Netns`] when returning home failed: the thread is then in an
/// unknown namespace, which is fatal for a poller.
pub fn within<T>(path: &Path, home: &File, f: impl FnOnce() -> Result<T>) -> Result<Result<T>> {
    let netns_err = |source| Error::Netns {
        path: path.display().to_string(),
        source,
    };
    let entered = File::open(path).and_then(|ns| enter(&ns));
    if let Err(e) = entered {
        return Ok(Err(netns_err(e)));
    }
    let out = f();
    enter(home).map_err(|source| Error::Netns {
        path: "(the poller thread's own namespace)".into(),
        source,
    })?;
    Ok(out)
}
