//! Loads the `iter/tcp` program and runs one walk per poll.
//!
//! A walk is `bpf_link_create` + `bpf_iter_create` + `read` until EOF: the kernel runs
//! the program for every TCP socket of the namespace of the thread that creates the
//! iterator (so a poller thread that entered a namespace walks that namespace).

use std::io::Read as _;

use aya::maps::{Array, HashMap};
use aya::programs::Iter;
use aya::{Btf, Ebpf, EbpfLoader};

use crate::error::BpfError;
use crate::probe::check_support;
use crate::record::{parse, Entry};

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
}

// SAFETY: `Ctl` is `repr(C)`, made of integers only, without padding (4 × u32 + 2 × u64).
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
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
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
        let mut it = Self {
            ebpf,
            config,
            buf: Vec::with_capacity(READ_BYTES),
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
