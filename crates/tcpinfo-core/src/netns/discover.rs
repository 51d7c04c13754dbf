//! Finds every network namespace of the host: the named ones in `/run/netns` and the
//! anonymous ones that some process is in (`/proc/PID/ns/net`), deduplicated by inode.

use std::collections::HashMap;
use std::path::PathBuf;

/// Where named namespaces are bind-mounted (`ip netns add`).
pub const RUN_NETNS: &str = "/run/netns";

/// A namespace found by a scan: a path to open it by, and how to name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// `/run/netns/NAME` or `/proc/PID/ns/net`.
    pub path: PathBuf,
    /// The `/run/netns` name, if it has one.
    pub named: Option<String>,
    /// A process in it (for a container id from its cgroup), if found through `/proc`.
    pub pid: Option<u32>,
}

/// Counters of one scan.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanStats {
    /// Processes whose namespace link could not be read (exited meanwhile, or no permission).
    pub unreadable: u32,
}

/// Scans `/run/netns` and `/proc`, filling `out` (cleared first) with every namespace by
/// inode. Named entries win over `/proc` ones (a stable path and a name).
pub fn scan<S: std::hash::BuildHasher>(out: &mut HashMap<u64, Found, S>) -> ScanStats {
    out.clear();
    let mut stats = ScanStats::default();
    if let Ok(dir) = std::fs::read_dir(RUN_NETNS) {
        for e in dir.flatten() {
            let path = e.path();
            // A name whose bind mount is gone (a stale file) has the inode of a plain file
            // on tmpfs: it is opened and checked by `setns` later, which refuses it.
            if let Some(inode) = super::inode_of(&path).filter(|_| is_nsfs(&path)) {
                let named = e.file_name().to_str().map(str::to_owned);
                out.entry(inode).or_insert(Found {
                    path,
                    named,
                    pid: None,
                });
            }
        }
    }
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return stats;
    };
    let mut link = PathBuf::new();
    for e in proc_dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        link.clear();
        link.push("/proc");
        link.push(&name);
        link.push("ns/net");
        // `net:[4026531840]`: readlink is cheaper than stat and needs the same access.
        let Some(inode) = std::fs::read_link(&link)
            .ok()
            .and_then(|t| parse_link(t.to_str()?))
        else {
            stats.unreadable += 1;
            continue;
        };
        out.entry(inode).or_insert_with(|| Found {
            path: link.clone(),
            named: None,
            pid: Some(pid),
        });
    }
    stats
}

/// The inode in a namespace link's target, `net:[INODE]`.
pub fn parse_link(target: &str) -> Option<u64> {
    target
        .strip_prefix("net:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Whether `path` is a namespace file (on nsfs), not a leftover plain file.
fn is_nsfs(path: &std::path::Path) -> bool {
    // SAFETY: statfs fills the zeroed struct or fails without touching it.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: a NUL-terminated path and a valid, writable statfs.
    if unsafe { libc::statfs(c.as_ptr(), &raw mut s) } != 0 {
        return false;
    }
    // NSFS_MAGIC (include/uapi/linux/magic.h).
    s.f_type == 0x6e73_6673
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_parse_and_our_own_namespace_is_found() {
        assert_eq!(parse_link("net:[4026531840]"), Some(4_026_531_840));
        assert_eq!(parse_link("mnt:[4026531840]"), None);
        assert_eq!(parse_link("net:[x]"), None);
        let mut found = HashMap::new();
        scan(&mut found);
        let (_, own) = super::super::current().expect("own namespace");
        assert!(found.contains_key(&own), "{found:?}");
    }
}
