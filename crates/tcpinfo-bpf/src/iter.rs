//! Loads the `iter/tcp` program and runs one walk per poll.
//!
//! A walk is `bpf_link_create` + `bpf_iter_create` + `read` until EOF: the kernel runs
//! the program for every TCP socket of the namespace of the thread that creates the
//! iterator (so a poller thread that entered a namespace walks that namespace).

use std::io::Read as _;

use aya::maps::{Array, HashMap, Map};
use aya::programs::{BtfTracePoint, Iter};
use aya::{Btf, Ebpf, EbpfLoader};

use crate::error::BpfError;
use crate::probe::check_support;
use crate::record::{parse, Entry, FULL_LEN};

#[cfg(tcpinfo_bpf_object)]
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/changed.bpf.o"));
#[cfg(not(tcpinfo_bpf_object))]
static OBJECT: &[u8] = &[];

/// Fingerprint only the TCP state (the change rule's `state_only`).
pub const FP_STATE_ONLY: u32 = 1;
/// Fold the memory attributes' sources too (the change rule counts memory).
pub const FP_MEMORY: u32 = 2;
/// Fold the `tcpi_last_*` elapsed times (the change rule counts them: every socket then
/// changes on every jiffy, and the BPF mode saves nothing).
pub const FP_ELAPSED: u32 = 4;
/// `ctl.flags`: write a record for unchanged sockets too.
const EMIT_ALL: u32 = 1;
/// Bytes asked per `read`: the iterator's seq_file fills at most 8 pages per call.
const READ_BYTES: usize = 64 << 10;
/// Program and map names in `bpf/changed.bpf.c`.
const PROGRAM: &str = "changed_sockets";
/// See [`PROGRAM`].
const CTL_MAP: &str = "ctl";
/// See [`PROGRAM`].
const FP_MAP: &str = "fp_store";
/// See [`PROGRAM`]: the event mode's dirty set and its counters.
const DIRTY_MAP: &str = "dirty";
/// See [`DIRTY_MAP`].
const EV_STATS_MAP: &str = "ev_stats";
/// The event programs of `bpf/changed.bpf.c`: (program, BTF tracepoint). `sys_enter`
/// is built for x86-64 only.
const EVENT_PROGRAMS: [(&str, &str); 9] = [
    ("ev_net_dev_queue", "net_dev_queue"),
    ("ev_tcp_probe", "tcp_probe"),
    ("ev_inet_sock_set_state", "inet_sock_set_state"),
    ("ev_tcp_retransmit_skb", "tcp_retransmit_skb"),
    ("ev_tcp_cong_state_set", "tcp_cong_state_set"),
    ("ev_tcp_rcv_space_adjust", "tcp_rcv_space_adjust"),
    ("ev_tcp_sendmsg_locked", "tcp_sendmsg_locked"),
    ("ev_tcp_retransmit_synack", "tcp_retransmit_synack"),
    ("ev_sys_enter", "sys_enter"),
];
/// Entries drained per `BPF_MAP_LOOKUP_AND_DELETE_BATCH` call.
const DRAIN_BATCH: usize = 4096;

/// What the program reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IterConfig {
    /// `idiag_states`-style mask of the states reported.
    pub states: u32,
    /// Report `AF_INET` sockets.
    pub ipv4: bool,
    /// Report `AF_INET6` sockets.
    pub ipv6: bool,
    /// `FP_*` flags: what the fingerprint covers.
    pub fp_flags: u32,
    /// Event mode: attach the programs that mark sockets dirty on the TCP paths that
    /// change them, so that a poll drains [`ChangeIter::drain_dirty`] instead of walking.
    pub events: bool,
    /// Capacity of the dirty set (0: the default, 65,536 sockets per poll).
    pub dirty_capacity: u32,
}

/// Counters of the event programs since load.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EventCounters {
    /// Marks refused because the dirty map was full (the poller must walk).
    pub overflows: u64,
    /// Sockets newly marked dirty.
    pub marks: u64,
}

/// `struct ctl` of the program.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct Ctl {
    flags: u32,
    states: u32,
    families: u32,
    fp_flags: u32,
    walked: u64,
    emitted: u64,
    netns: u32,
    events: u32,
    gen: u32,
    pad2: u32,
}

// SAFETY: `Ctl` is `repr(C)`, made of integers only, without padding (4 × u32 + 2 × u64 +
// 4 × u32).
unsafe impl aya::Pod for Ctl {}

/// Counters of one walk.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WalkStats {
    /// Sockets the program looked at (after the state and family masks).
    pub walked: u64,
    /// Records of changed sockets and minisockets.
    pub emitted: u64,
    /// Bytes read from the iterator.
    pub bytes: u64,
    /// `read` calls.
    pub reads: u32,
    /// The walk reached its end (the trailer was read).
    pub complete: bool,
}

/// The loaded program, ready to walk.
pub struct ChangeIter {
    ebpf: Ebpf,
    config: IterConfig,
    buf: Vec<u8>,
    /// Inode number of the loading thread's network namespace (event filter).
    netns: u32,
    keys: Vec<u64>,
    values: Vec<u8>,
    /// Drain generation (`ctl.gen`): the programs' per-CPU repeat filter is valid only
    /// within one.
    gen: u32,
}

impl std::fmt::Debug for ChangeIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeIter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn unsupported(what: &str, e: impl std::fmt::Display) -> BpfError {
    BpfError::Unsupported(format!("{what}: {e}"))
}

impl ChangeIter {
    /// Checks support, then loads and verifies the program against the running kernel.
    ///
    /// # Errors
    /// [`BpfError::Unsupported`] naming what is missing or what the kernel refused.
    pub fn load(config: IterConfig) -> Result<Self, BpfError> {
        check_support()?;
        let btf = Btf::from_sys_fs().map_err(|e| unsupported("cannot read kernel BTF", e))?;
        let mut loader = EbpfLoader::new();
        loader.btf(Some(&btf));
        if config.dirty_capacity > 0 {
            loader.map_max_entries(DIRTY_MAP, config.dirty_capacity);
        }
        let mut ebpf = loader
            .load(OBJECT)
            .map_err(|e| unsupported("the kernel refused the BPF maps or relocations", e))?;
        let prog: &mut Iter = ebpf
            .program_mut(PROGRAM)
            .ok_or_else(|| BpfError::Unsupported(format!("no program {PROGRAM} in the object")))?
            .try_into()
            .map_err(|e| unsupported("program type", e))?;
        prog.load("tcp", &btf).map_err(|e| {
            unsupported(
                "the kernel refused the iter/tcp program (Linux >= 5.9 with BTF needed)",
                e,
            )
        })?;
        let netns = netns_inode()?;
        if config.events {
            for (name, tracepoint) in EVENT_PROGRAMS {
                let Some(prog) = ebpf.program_mut(name) else {
                    continue; // sys_enter off x86-64
                };
                let prog: &mut BtfTracePoint = prog
                    .try_into()
                    .map_err(|e| unsupported("program type", e))?;
                prog.load(tracepoint, &btf).map_err(|e| {
                    unsupported(&format!("the kernel refused tp_btf/{tracepoint}"), e)
                })?;
                prog.attach()
                    .map_err(|e| unsupported(&format!("cannot attach tp_btf/{tracepoint}"), e))?;
            }
        }
        let mut it = Self {
            ebpf,
            config,
            buf: Vec::with_capacity(READ_BYTES),
            netns,
            keys: Vec::new(),
            values: Vec::new(),
            gen: 0,
        };
        it.set_ctl(0)?;
        Ok(it)
    }

    /// The configuration loaded.
    pub fn config(&self) -> IterConfig {
        self.config
    }

    fn set_ctl(&mut self, flags: u32) -> Result<(), BpfError> {
        let map = self
            .ebpf
            .map_mut(CTL_MAP)
            .ok_or_else(|| BpfError::Unsupported(format!("no map {CTL_MAP} in the object")))?;
        let mut ctl: Array<_, Ctl> = Array::try_from(map).map_err(|e| unsupported("ctl map", e))?;
        let c = Ctl {
            flags,
            states: self.config.states,
            families: u32::from(self.config.ipv4) | u32::from(self.config.ipv6) << 1,
            fp_flags: self.config.fp_flags,
            walked: 0,
            emitted: 0,
            netns: self.netns,
            events: u32::from(self.config.events),
            gen: self.gen,
            pad2: 0,
        };
        ctl.set(0, c, 0).map_err(|e| BpfError::Io {
            op: "update ctl map",
            source: std::io::Error::other(e.to_string()),
        })
    }

    /// Forgets the fingerprints of closed sockets (their destroy events, or the sweep's
    /// closes); returns how many were stored. A cookie never stored is ignored.
    ///
    /// # Errors
    /// [`BpfError::Io`] when the map cannot be reached.
    pub fn forget(&mut self, cookies: &[u64]) -> Result<usize, BpfError> {
        if cookies.is_empty() {
            return Ok(0);
        }
        let map = self
            .ebpf
            .map_mut(FP_MAP)
            .ok_or_else(|| BpfError::Malformed(format!("no map {FP_MAP}")))?;
        let mut fps: HashMap<_, u64, u64> = HashMap::try_from(map).map_err(|e| BpfError::Io {
            op: "fingerprint map",
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(cookies.iter().filter(|c| fps.remove(c).is_ok()).count())
    }

    /// The event programs' counters (zero without events).
    ///
    /// # Errors
    /// [`BpfError::Io`] when the map cannot be read.
    pub fn event_counters(&self) -> Result<EventCounters, BpfError> {
        let map = self
            .ebpf
            .map(EV_STATS_MAP)
            .ok_or_else(|| BpfError::Malformed(format!("no map {EV_STATS_MAP}")))?;
        let stats: Array<_, u64> = Array::try_from(map).map_err(|e| BpfError::Io {
            op: "ev_stats map",
            source: std::io::Error::other(e.to_string()),
        })?;
        let get = |i| {
            stats.get(&i, 0).map_err(|e| BpfError::Io {
                op: "read ev_stats",
                source: std::io::Error::other(e.to_string()),
            })
        };
        Ok(EventCounters {
            overflows: get(0)?,
            marks: get(1)?,
        })
    }

    /// Event mode: takes every socket marked dirty since the last drain out of the map
    /// (`BPF_MAP_LOOKUP_AND_DELETE_BATCH`, 4096 per call) and calls `visit` with each as
    /// [`Entry::Dirty`]; returns how many. A socket marked during the drain is either in
    /// this drain or stays for the next.
    ///
    /// # Errors
    /// [`BpfError::Io`] when the kernel refuses the batch operation,
    /// [`BpfError::Malformed`] for an entry that does not parse.
    pub fn drain_dirty(&mut self, mut visit: impl FnMut(Entry)) -> Result<usize, BpfError> {
        // A new generation before and after: a mark the programs skip as a repeat was
        // stored in `dirty` in the same generation, so it is still there or taken by
        // this drain (fetched after it).
        self.gen = self.gen.wrapping_add(1);
        self.set_ctl(0)?;
        let drained = self.drain_batches(&mut visit);
        self.gen = self.gen.wrapping_add(1);
        self.set_ctl(0)?;
        drained
    }

    fn drain_batches(&mut self, visit: &mut impl FnMut(Entry)) -> Result<usize, BpfError> {
        let fd = match self.ebpf.map(DIRTY_MAP) {
            Some(Map::HashMap(data)) => {
                use std::os::fd::{AsFd as _, AsRawFd as _};
                data.fd().as_fd().as_raw_fd()
            }
            _ => return Err(BpfError::Malformed(format!("no hash map {DIRTY_MAP}"))),
        };
        self.keys.resize(DRAIN_BATCH, 0);
        self.values.resize(DRAIN_BATCH * FULL_LEN, 0);
        let mut token = 0u64;
        let mut first = true;
        let mut total = 0;
        loop {
            let (n, done) = lookup_and_delete_batch(
                fd,
                (!first).then_some(&raw const token),
                &raw mut token,
                &mut self.keys,
                &mut self.values,
            )?;
            first = false;
            for v in self.values[..n * FULL_LEN].chunks_exact(FULL_LEN) {
                match parse(v)? {
                    Some((Entry::Changed(id), _)) => visit(Entry::Dirty { id, mini: false }),
                    Some((Entry::Mini(id), _)) => visit(Entry::Dirty { id, mini: true }),
                    _ => return Err(BpfError::Malformed("dirty entry of another kind".into())),
                }
            }
            total += n;
            if done {
                return Ok(total);
            }
        }
    }

    /// Runs one walk of the current namespace's TCP sockets, calling `visit` with every
    /// record. With `emit_all`, unchanged sockets are reported as [`Entry::Seen`] too (a
    /// sweep walk: whatever is not reported is gone).
    ///
    /// # Errors
    /// [`BpfError::Io`] when the iterator cannot be created or read,
    /// [`BpfError::Malformed`] when its output does not parse. Records visited before
    /// the error stand; the walk is incomplete.
    pub fn walk(
        &mut self,
        emit_all: bool,
        mut visit: impl FnMut(Entry),
    ) -> Result<WalkStats, BpfError> {
        self.set_ctl(if emit_all { EMIT_ALL } else { 0 })?;
        let io = |op: &'static str| {
            move |e: aya::programs::ProgramError| BpfError::Io {
                op,
                source: std::io::Error::other(e.to_string()),
            }
        };
        let prog: &mut Iter = self
            .ebpf
            .program_mut(PROGRAM)
            .ok_or_else(|| BpfError::Malformed("program vanished".into()))?
            .try_into()
            .map_err(io("program"))?;
        let link_id = prog.attach().map_err(io("bpf_link_create"))?;
        let link = prog.take_link(link_id).map_err(io("take link"))?;
        let mut file = link.into_file().map_err(|e| BpfError::Io {
            op: "bpf_iter_create",
            source: std::io::Error::other(e.to_string()),
        })?;
        let mut stats = WalkStats::default();
        let buf = &mut self.buf;
        buf.clear();
        let mut start = 0;
        loop {
            // Keep an unparsed tail at the front, then read after it.
            if start > 0 {
                buf.drain(..start);
                start = 0;
            }
            let have = buf.len();
            buf.resize(have + READ_BYTES, 0);
            let n = match file.read(&mut buf[have..]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
                Err(source) => {
                    buf.truncate(have);
                    return Err(BpfError::Io {
                        op: "read iterator",
                        source,
                    });
                }
            };
            buf.truncate(have + n);
            stats.reads += 1;
            stats.bytes += n as u64;
            while let Some((entry, len)) = parse(&buf[start..])? {
                start += len;
                if let Entry::End { walked, emitted } = entry {
                    stats.walked = walked;
                    stats.emitted = emitted;
                    stats.complete = true;
                }
                visit(entry);
            }
            if n == 0 {
                break;
            }
        }
        if start < buf.len() {
            return Err(BpfError::Malformed(format!(
                "{} trailing bytes after the last record",
                buf.len() - start
            )));
        }
        Ok(stats)
    }
}

/// The inode number of the calling thread's network namespace (what the kernel's
/// `net->ns.inum` holds).
fn netns_inode() -> Result<u32, BpfError> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata("/proc/thread-self/ns/net").map_err(|source| BpfError::Io {
        op: "stat /proc/thread-self/ns/net",
        source,
    })?;
    u32::try_from(m.ino()).map_err(|_| BpfError::Malformed("netns inode beyond u32".into()))
}

/// `union bpf_attr` for the map batch commands.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// `BPF_MAP_LOOKUP_AND_DELETE_BATCH` (`enum bpf_cmd`).
const BPF_MAP_LOOKUP_AND_DELETE_BATCH: libc::c_long = 25;

/// One `BPF_MAP_LOOKUP_AND_DELETE_BATCH` call: returns the entries taken and whether
/// the map is exhausted (`ENOENT`).
fn lookup_and_delete_batch(
    fd: i32,
    in_batch: Option<*const u64>,
    out_batch: *mut u64,
    keys: &mut [u64],
    values: &mut [u8],
) -> Result<(usize, bool), BpfError> {
    let mut attr = BatchAttr {
        in_batch: in_batch.map_or(0, |p| p as u64),
        out_batch: out_batch as u64,
        keys: keys.as_mut_ptr() as u64,
        values: values.as_mut_ptr() as u64,
        count: u32::try_from(keys.len()).unwrap_or(u32::MAX),
        map_fd: u32::try_from(fd).unwrap_or(u32::MAX),
        ..BatchAttr::default()
    };
    // SAFETY: `attr` is a valid `bpf_attr` prefix of its size; the kernel writes at most
    // `count` keys (8 bytes) and values (FULL_LEN bytes) into the buffers, which hold that
    // many, and one key-sized token into `out_batch`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_LOOKUP_AND_DELETE_BATCH,
            &raw mut attr,
            std::mem::size_of::<BatchAttr>(),
        )
    };
    let n = attr.count as usize;
    if rc == 0 {
        return Ok((n, false));
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ENOENT) {
        return Ok((n, true));
    }
    Err(BpfError::Io {
        op: "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
        source: e,
    })
}
