//! Network namespaces: finding every one on the host ([`discover`]), naming them
//! ([`name`]), and entering one on the current thread to open sockets there.
//!
//! A netlink socket belongs to the namespace it was created in for its whole life, so the
//! poller thread enters a namespace only to open its sockets, then returns home; it never
//! needs one thread per namespace.

pub mod addrs;
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

/// Whether socket cookies are unique across namespaces on kernel `release` (`uname -r`):
/// since Linux 5.12 one generator serves the whole host; before, each namespace counted
/// from 1 on its own.
pub fn global_cookies(release: &str) -> bool {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (5, 12)
}

/// The UUID tag of a namespace other than the host's: `ns<INODE>`, plus, on kernels whose
/// cookies are per namespace, `.<unix seconds when tcpinfo first saw it>` (an inode is
/// reused once its namespace is gone, and a new namespace's cookies start again from 1).
pub fn uuid_tag(inode: u64, global_cookies: bool, first_seen_nanos: i64) -> String {
    if global_cookies {
        format!("ns{inode}")
    } else {
        format!("ns{inode}.{}", first_seen_nanos.div_euclid(1_000_000_000))
    }
}

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
    let missing: Vec<&str> = [
        (
            CAP_SYS_ADMIN,
            "CAP_SYS_ADMIN (to enter namespaces with setns)",
        ),
        (
            CAP_SYS_PTRACE,
            "CAP_SYS_PTRACE (to open other processes' /proc/PID/ns/net)",
        ),
    ]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_scope_follows_the_kernel_version_and_tags_say_it() {
        assert!(global_cookies("6.18.44-fc-v657"));
        assert!(global_cookies("5.12.0"));
        assert!(!global_cookies("5.11.22-generic"));
        assert!(!global_cookies("4.19.0"));
        assert!(!global_cookies(""));
        assert_eq!(
            uuid_tag(4_026_532_246, true, 1_700_000_000_123_456_789),
            "ns4026532246"
        );
        assert_eq!(
            uuid_tag(4_026_532_246, false, 1_700_000_000_123_456_789),
            "ns4026532246.1700000000"
        );
    }
}
