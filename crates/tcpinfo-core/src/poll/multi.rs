//! Every network namespace from one thread: before each poll the namespaces are
//! discovered (`/run/netns` and `/proc/PID/ns/net`); a new one gets its own [`Poller`]
//! (dump socket, destroy subscription, tracker), opened by entering the namespace just
//! long enough to create the sockets; one that is gone is retired (its last destroy
//! events, then its remaining connections as closed) and its sockets closed.
//!
//! Connections are keyed by (namespace, cookie) since each namespace has its own tracker;
//! each record points into the batch's namespace table. See `docs/internals/netns.md`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io;
use std::sync::Arc;

use super::batch::{NamespaceInfo, PollBatch, Warning, WarningCode};
use super::config::PollerConfig;
use super::poller::{unix_nanos, BatchSource, PartSink, Poller};
use super::records_pool::RecordsPool;
use crate::error::{Error, Result};
use crate::netns::discover::{scan, Found};
use crate::netns::{check_privileges, current, global_cookies, name, uuid_tag, within};

/// Namespaces that could not be opened and are remembered (so each warns once) at most.
const MAX_FAILED_REMEMBERED: usize = 4096;
/// Most namespaces watched at once: beyond, new ones are skipped with one warning.
pub const MAX_NAMESPACES: usize = 4096;

/// A watched namespace.
struct Member {
    poller: Poller,
}

/// Polls every network namespace of the host, one after the other, on the calling thread.
pub struct MultiPoller {
    /// The configuration of each namespace's poller (`netns` unset).
    config: PollerConfig,
    /// The thread's own namespace, returned to after opening sockets elsewhere.
    home: File,
    home_inode: u64,
    members: BTreeMap<u64, Member>,
    found: HashMap<u64, Found>,
    /// Namespaces whose opening failed for a reason other than vanishing: warned once.
    failed: HashSet<u64>,
    source: BatchSource,
    pending: PollBatch,
    /// A warning about too many namespaces was given.
    warned_full: bool,
    /// Socket cookies are unique across namespaces on this kernel.
    global_cookies: bool,
    part_sink: Option<(usize, PartSink)>,
}

impl MultiPoller {
    /// Checks privileges and opens the sockets of every namespace found now.
    ///
    /// # Errors
    /// [`Error::Netns`] naming `CAP_SYS_ADMIN`/`CAP_SYS_PTRACE` when they are missing;
    /// [`Error::Config`] for an invalid configuration; whatever opening the sockets of
    /// the thread's own namespace fails with.
    pub fn new(mut config: PollerConfig) -> Result<Self> {
        config.all_namespaces = false;
        config.netns = None;
        config.validate()?;
        check_privileges()?;
        let (home, home_inode) = current()?;
        let mut own = Poller::new(config.clone())?;
        own.set_namespace(NamespaceInfo {
            inode: home_inode,
            name: None,
            host: true,
            uuid_tag: String::new(),
        });
        let source = BatchSource::new(&config);
        own.share_records_pool(Arc::clone(&source.records_pool));
        let mut members = BTreeMap::new();
        members.insert(home_inode, Member { poller: own });
        let mut multi = Self {
            source,
            config,
            home,
            home_inode,
            members,
            found: HashMap::new(),
            failed: HashSet::new(),
            pending: PollBatch::default(),
            warned_full: false,
            global_cookies: global_cookies(&crate::host::kernel_release()),
            part_sink: None,
        };
        let mut ignored = PollBatch::default();
        multi.refresh(&mut ignored, 0)?;
        multi.pending.warnings = ignored.warnings;
        Ok(multi)
    }

    /// The pool the batches' records buffers come from (see [`Poller::records_pool`]).
    pub fn records_pool(&self) -> Arc<RecordsPool> {
        Arc::clone(&self.source.records_pool)
    }

    /// Delivers large polls in parts (see [`Poller::set_part_sink`]).
    pub fn set_part_sink(&mut self, max_bytes: usize, sink: PartSink) {
        for m in self.members.values_mut() {
            m.poller.set_part_sink(max_bytes, Arc::clone(&sink));
        }
        self.part_sink = Some((max_bytes, sink));
    }

    /// Namespaces watched now.
    pub fn namespaces(&self) -> impl Iterator<Item = &NamespaceInfo> {
        self.members.values().map(|m| m.poller.namespace())
    }

    /// Discovers namespaces, then polls each one; returns what changed in all of them.
    ///
    /// # Errors
    /// [`Error::Netns`] only when the thread cannot return to its own namespace (it
    /// cannot go on safely); everything else is a warning in the batch.
    pub fn poll(&mut self) -> Result<PollBatch> {
        let mut batch = std::mem::take(&mut self.pending);
        let line_nanos = self.source.start(&mut batch);
        self.refresh(&mut batch, line_nanos)?;
        let now = batch.timestamp_nanos;
        let mut complete = true;
        let (mut tracked, mut tracker_bytes) = (0usize, 0usize);
        for m in self.members.values_mut() {
            complete &= m.poller.poll_into(&mut batch, line_nanos, now);
            tracked += m.poller.tracked();
            tracker_bytes += m.poller.tracker_bytes();
        }
        batch.complete = complete;
        batch.stats.namespaces = u32::try_from(self.members.len()).unwrap_or(u32::MAX);
        batch.stats.tracked = u32::try_from(tracked).unwrap_or(u32::MAX);
        batch.stats.tracker_bytes = tracker_bytes as u64;
        self.source.finish(&batch);
        Ok(batch)
    }

    /// Drains every namespace's destroy events without polling (the consumer is behind).
    pub fn drain_events_only(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        pending.stats.skipped_polls += 1;
        let now = unix_nanos();
        let line_nanos = now - now.rem_euclid(1_000_000);
        for m in self.members.values_mut() {
            pending.enter_namespace(m.poller.namespace());
            m.poller.drain_events_into(&mut pending, line_nanos);
        }
        self.pending = pending;
    }

    /// Retires the namespaces that are gone and opens the new ones.
    fn refresh(&mut self, batch: &mut PollBatch, line_nanos: i64) -> Result<()> {
        scan(&mut self.found);
        let gone: Vec<u64> = self
            .members
            .keys()
            .copied()
            .filter(|ino| *ino != self.home_inode && !self.found.contains_key(ino))
            .collect();
        for ino in gone {
            if let Some(mut m) = self.members.remove(&ino) {
                m.poller.retire_into(batch, line_nanos);
            }
        }
        self.failed.retain(|ino| self.found.contains_key(ino));
        let mut new: Vec<(u64, Found)> = self
            .found
            .iter()
            .filter(|(ino, _)| !self.members.contains_key(ino) && !self.failed.contains(ino))
            .map(|(ino, f)| (*ino, f.clone()))
            .collect();
        new.sort_unstable_by_key(|(ino, _)| *ino);
        for (ino, found) in new {
            if self.members.len() >= MAX_NAMESPACES {
                if !self.warned_full {
                    self.warned_full = true;
                    batch.warnings.push(Warning {
                        code: WarningCode::Internal,
                        message: format!("more than {MAX_NAMESPACES} network namespaces: the others are not watched"),
                    });
                }
                break;
            }
            self.open(ino, found, batch)?;
        }
        Ok(())
    }

    fn open(&mut self, ino: u64, found: Found, batch: &mut PollBatch) -> Result<()> {
        let config = self.config.clone();
        let opened = within(&found.path, &self.home, || Poller::new(config))?;
        match opened {
            Ok(mut poller) => {
                // The path may now name another namespace (the process exited and its
                // pid was reused): that one is picked up under its own inode next poll.
                if poller.namespace().inode != ino {
                    return Ok(());
                }
                let name = found
                    .named
                    .or_else(|| found.pid.and_then(name::container_id));
                if let Some((max, sink)) = &self.part_sink {
                    poller.set_part_sink(*max, Arc::clone(sink));
                }
                poller.share_records_pool(Arc::clone(&self.source.records_pool));
                poller.set_namespace(NamespaceInfo {
                    inode: ino,
                    name,
                    host: false,
                    uuid_tag: uuid_tag(ino, self.global_cookies, unix_nanos()),
                });
                self.members.insert(ino, Member { poller });
                Ok(())
            }
            // Gone between the scan and the open (the process exited, the name was
            // deleted): nothing to say, it is not there.
            Err(Error::Netns { ref source, .. }) if vanished(source) => Ok(()),
            Err(e) => {
                if self.failed.len() < MAX_FAILED_REMEMBERED {
                    self.failed.insert(ino);
                }
                batch.warnings.push(Warning {
                    code: WarningCode::of(&e),
                    message: format!(
                        "network namespace {ino} ({}) is not watched: {e}",
                        found.path.display()
                    ),
                });
                Ok(())
            }
        }
    }
}

/// Whether opening a namespace failed because it is gone.
fn vanished(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT | libc::ESRCH | libc::EINVAL)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The poller's own namespace is always watched and is the host one.
    #[test]
    fn the_own_namespace_is_the_host_one() {
        let _listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut multi = MultiPoller::new(PollerConfig::default()).expect("root in CI");
        let batch = multi.poll().expect("poll");
        let (_, own) = current().expect("own");
        let host = batch
            .namespaces
            .iter()
            .position(|n| n.host)
            .expect("host entry");
        assert_eq!(batch.namespaces[host].inode, own);
        assert!(batch.iter().any(|r| r.netns as usize == host));
        assert!(batch.stats.namespaces >= 1);
    }

    /// `struct __user_cap_header_struct` (include/uapi/linux/capability.h).
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: i32,
    }

    /// `struct __user_cap_data_struct`.
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }

    /// Without `CAP_SYS_ADMIN` (dropped from this thread's effective set only: capabilities
    /// are per thread), the error says which capability is missing and why it is needed.
    #[test]
    fn a_missing_capability_is_named() {
        let err = std::thread::spawn(|| {
            let mut h = CapHeader {
                version: 0x2008_0522,
                pid: 0,
            };
            let mut d = [CapData::default(); 2];
            // SAFETY: capget/capset with a valid header and two data structs (version 3).
            unsafe {
                assert_eq!(
                    libc::syscall(libc::SYS_capget, &raw mut h, d.as_mut_ptr()),
                    0
                );
                d[0].effective &= !(1 << 21);
                assert_eq!(libc::syscall(libc::SYS_capset, &raw mut h, d.as_ptr()), 0);
            }
            MultiPoller::new(PollerConfig::default()).err()
        })
        .join()
        .expect("thread")
        .expect("refused without CAP_SYS_ADMIN");
        let text = err.to_string();
        assert_eq!(err.code(), "ERR_NETNS");
        assert!(
            text.contains("CAP_SYS_ADMIN") && !text.contains("CAP_SYS_PTRACE"),
            "{text}"
        );
    }
}
