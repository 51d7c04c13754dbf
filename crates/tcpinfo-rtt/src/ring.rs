//! Live capture: an `AF_PACKET` socket with a `TPACKET_V3` memory-mapped receive ring
//! (raw `libc`, no libpcap), mirroring `include/uapi/linux/if_packet.h` (Linux 3.2+).
//!
//! The socket is `SOCK_DGRAM` ("cooked"): every frame starts at the network header,
//! whatever the interface's link type, so "all interfaces" works alike for Ethernet,
//! loopback, tunnels and VLAN-offloaded frames. A classic BPF program ([`tcp_filter`])
//! passes only IPv4/IPv6 TCP and cuts each packet to the snap length in the kernel.
//! The kernel retires a block when it is full or after `block_timeout`; user space
//! walks the packets of each retired block and hands the block back.
//! See docs/internals/rtt/design.md.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};

/// Default snap length: bytes kept of each packet from the IP header on (IPv6 40 +
/// TCP with full options 60 = 100 fit).
pub const DEFAULT_SNAPLEN: u32 = 128;
/// Default ring block size, bytes (a power-of-two multiple of the page size).
pub const DEFAULT_BLOCK_BYTES: u32 = 1 << 20;
/// Default number of ring blocks (8 MiB of ring: about 40k packets at 128-byte snaps).
pub const DEFAULT_BLOCKS: u32 = 8;
/// Default block retire timeout: a partly filled block reaches user space after this.
pub const DEFAULT_BLOCK_TIMEOUT: Duration = Duration::from_millis(20);

// include/uapi/linux/if_packet.h
const SOL_PACKET: libc::c_int = 263;
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_VERSION: libc::c_int = 10;
const TPACKET_V3: libc::c_int = 2;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
/// `tpacket_req3.tp_frame_size`: V3 packs frames of any size; this only has to divide the block.
const FRAME_SIZE: u32 = 2048;
/// `struct tpacket_block_desc`: `hdr.bh1.block_status`, `num_pkts`, `offset_to_first_pkt`.
const BD_BLOCK_STATUS: usize = 8;
const BD_NUM_PKTS: usize = 12;
const BD_OFFSET_TO_FIRST_PKT: usize = 16;
/// `struct tpacket3_hdr` (48 bytes): offsets of the fields read.
const H_NEXT_OFFSET: usize = 0;
const H_SEC: usize = 4;
const H_NSEC: usize = 8;
const H_SNAPLEN: usize = 12;
const H_NET: usize = 26;
const TPACKET3_HDR_LEN: usize = 48;
/// `ETH_P_ALL`, in network byte order for `bind`/`socket`.
const ETH_P_ALL_BE: u16 = 0x0003_u16.to_be();

/// Live capture settings.
#[derive(Clone, Debug)]
pub struct RingConfig {
    /// Interface name; `None` captures on all interfaces.
    pub interface: Option<String>,
    /// Bytes kept of each packet from the IP header on.
    pub snaplen: u32,
    /// Ring block size, bytes (multiple of the page size).
    pub block_bytes: u32,
    /// Number of blocks.
    pub blocks: u32,
    /// Block retire timeout.
    pub block_timeout: Duration,
}

impl Default for RingConfig {
    fn default() -> Self {
        Self {
            interface: None,
            snaplen: DEFAULT_SNAPLEN,
            block_bytes: DEFAULT_BLOCK_BYTES,
            blocks: DEFAULT_BLOCKS,
            block_timeout: DEFAULT_BLOCK_TIMEOUT,
        }
    }
}

/// Kernel-side counters (`PACKET_STATISTICS`, `struct tpacket_stats_v3`), accumulated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Packets that passed the filter (`tp_packets`).
    pub packets: u64,
    /// Packets dropped because the ring was full (`tp_drops`).
    pub drops: u64,
    /// Times the ring froze because user space lagged (`tp_freeze_q_cnt`).
    pub freezes: u64,
}

/// An open capture ring.
pub struct Ring {
    fd: OwnedFd,
    map: *mut u8,
    map_len: usize,
    block_bytes: usize,
    blocks: usize,
    next: usize,
    stats: RingStats,
}

/// The classic BPF program: accept IPv4 or IPv6 packets whose (first) next protocol is
/// TCP, cut to `snaplen`; drop the rest. Offsets are from the network header
/// (`SOCK_DGRAM`); the EtherType comes from the `SKF_AD_PROTOCOL` ancillary load.
pub fn tcp_filter(snaplen: u32) -> [libc::sock_filter; 9] {
    const LD_W_ABS: u16 = 0x20;
    const LDB_ABS: u16 = 0x30;
    const JEQ_K: u16 = 0x15;
    const JA: u16 = 0x05;
    const RET_K: u16 = 0x06;
    const SKF_AD_PROTOCOL: u32 = 0xffff_f000;
    let i = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    [
        i(LD_W_ABS, 0, 0, SKF_AD_PROTOCOL),
        i(JEQ_K, 0, 2, 0x0800),
        i(LDB_ABS, 0, 0, 9),
        i(JA, 0, 0, 2),
        i(JEQ_K, 0, 3, 0x86dd),
        i(LDB_ABS, 0, 0, 6),
        i(JEQ_K, 0, 1, 6),
        i(RET_K, 0, 0, snaplen),
        i(RET_K, 0, 0, 0),
    ]
}

fn setsockopt<T>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    v: &T,
    op: &'static str,
) -> Result<()> {
    // SAFETY: `v` points to a live `T` of the given size for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(v).cast(),
            libc::socklen_t::try_from(size_of::<T>()).unwrap_or(0),
        )
    };
    if rc < 0 {
        return Err(Error::socket(op, io::Error::last_os_error()));
    }
    Ok(())
}

impl Ring {
    /// Opens the socket, attaches the filter, maps the ring and binds to the interface.
    ///
    /// # Errors
    /// [`Error::Permission`] without `CAP_NET_RAW`; [`Error::Config`] for an unknown
    /// interface or bad sizes; [`Error::Socket`] for other failures.
    pub fn open(cfg: &RingConfig) -> Result<Self> {
        let page = 4096;
        if cfg.block_bytes == 0
            || cfg.block_bytes % page != 0
            || cfg.blocks == 0
            || cfg.snaplen < 64
        {
            return Err(Error::Config(format!(
                "ring blocks must be a non-zero multiple of {page} bytes, at least one block, snaplen at least 64 (got {} x {}, snaplen {})",
                cfg.block_bytes, cfg.blocks, cfg.snaplen
            )));
        }
        let ifindex = cfg.interface.as_deref().map_or(Ok(0), ifindex)?;
        // Protocol 0: no packet is queued before the filter and ring are in place.
        // SAFETY: plain socket(2) call.
        let raw =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(Error::socket(
                "socket(AF_PACKET)",
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let filter = tcp_filter(cfg.snaplen);
        let prog = libc::sock_fprog {
            len: u16::try_from(filter.len()).unwrap_or(0),
            filter: filter.as_ptr().cast_mut(),
        };
        setsockopt(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &prog,
            "setsockopt(SO_ATTACH_FILTER)",
        )?;
        setsockopt(
            &fd,
            SOL_PACKET,
            PACKET_VERSION,
            &TPACKET_V3,
            "setsockopt(PACKET_VERSION)",
        )?;
        let timeout_ms = u32::try_from(cfg.block_timeout.as_millis())
            .unwrap_or(u32::MAX)
            .max(1);
        // struct tpacket_req3
        let req: [u32; 7] = [
            cfg.block_bytes,
            cfg.blocks,
            FRAME_SIZE,
            cfg.block_bytes / FRAME_SIZE * cfg.blocks,
            timeout_ms,
            0,
            0,
        ];
        setsockopt(
            &fd,
            SOL_PACKET,
            PACKET_RX_RING,
            &req,
            "setsockopt(PACKET_RX_RING)",
        )?;
        let map_len = cfg.block_bytes as usize * cfg.blocks as usize;
        // SAFETY: mapping the ring the kernel just allocated for this socket.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(Error::socket("mmap(ring)", io::Error::last_os_error()));
        }
        let ring = Self {
            fd,
            map: map.cast(),
            map_len,
            block_bytes: cfg.block_bytes as usize,
            blocks: cfg.blocks as usize,
            next: 0,
            stats: RingStats::default(),
        };
        bind(&ring.fd, ifindex)?;
        Ok(ring)
    }

    /// Waits up to `timeout` for a retired block, then calls `f(t_ns, ip_packet)` for
    /// every packet of every block ready, handing each block back after it.
    /// Returns the number of packets.
    ///
    /// # Errors
    /// [`Error::Socket`] if `poll` fails (other than `EINTR`).
    pub fn next_packets(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(i64, &[u8]),
    ) -> Result<usize> {
        let mut n = 0;
        if !self.block_ready(self.next) {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN | libc::POLLERR,
                revents: 0,
            };
            let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&raw mut pfd, 1, ms) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(Error::socket("poll", e));
                }
            }
        }
        // Walk at most one lap of the ring per call so a busy ring cannot starve the caller.
        for _ in 0..self.blocks {
            if !self.block_ready(self.next) {
                break;
            }
            n += self.walk_block(self.next, &mut f);
            self.release_block(self.next);
            self.next = (self.next + 1) % self.blocks;
        }
        Ok(n)
    }

    fn block(&self, i: usize) -> *mut u8 {
        // SAFETY: i < blocks, so the offset is inside the mapping.
        unsafe { self.map.add(i * self.block_bytes) }
    }

    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: block_status is a 4-byte-aligned u32 inside the mapping (blocks start
        // on page boundaries), shared with the kernel, so it is only accessed atomically.
        #[expect(clippy::cast_ptr_alignment, reason = "page-aligned block + offset 8")]
        unsafe {
            &*self.block(i).add(BD_BLOCK_STATUS).cast::<AtomicU32>()
        }
    }

    fn block_ready(&self, i: usize) -> bool {
        self.status(i).load(Ordering::Acquire) & TP_STATUS_USER != 0
    }

    fn release_block(&self, i: usize) {
        self.status(i).store(TP_STATUS_KERNEL, Ordering::Release);
    }

    fn walk_block(&self, i: usize, f: &mut impl FnMut(i64, &[u8])) -> usize {
        // SAFETY: the block is owned by user space (TP_STATUS_USER) until released; the
        // kernel wrote every offset read here inside the block, and each is bounds-checked
        // against the block size before use.
        let block = unsafe { std::slice::from_raw_parts(self.block(i), self.block_bytes) };
        let num = read_u32(block, BD_NUM_PKTS) as usize;
        let mut off = read_u32(block, BD_OFFSET_TO_FIRST_PKT) as usize;
        let mut n = 0;
        for _ in 0..num {
            let Some(h) = block.get(off..off + TPACKET3_HDR_LEN) else {
                break;
            };
            let sec = i64::from(read_u32(h, H_SEC));
            let nsec = i64::from(read_u32(h, H_NSEC));
            let snap = read_u32(h, H_SNAPLEN) as usize;
            let net = usize::from(u16::from_ne_bytes([h[H_NET], h[H_NET + 1]]));
            if let Some(data) = block.get(off + net..off + net + snap) {
                f(sec * 1_000_000_000 + nsec, data);
                n += 1;
            }
            let step = read_u32(h, H_NEXT_OFFSET) as usize;
            if step == 0 {
                break;
            }
            off += step;
        }
        n
    }

    /// Kernel counters, accumulated since the ring was opened (reading resets the
    /// kernel's copy, so this is the only reader).
    ///
    /// # Errors
    /// [`Error::Socket`] if `getsockopt` fails.
    pub fn stats(&mut self) -> Result<RingStats> {
        let mut s = [0u32; 3];
        let mut len = libc::socklen_t::try_from(size_of_val(&s)).unwrap_or(0);
        // SAFETY: `s` is a writable tpacket_stats_v3 of `len` bytes.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                SOL_PACKET,
                PACKET_STATISTICS,
                s.as_mut_ptr().cast(),
                &raw mut len,
            )
        };
        if rc < 0 {
            return Err(Error::socket(
                "getsockopt(PACKET_STATISTICS)",
                io::Error::last_os_error(),
            ));
        }
        self.stats.packets += u64::from(s[0]);
        self.stats.drops += u64::from(s[1]);
        self.stats.freezes += u64::from(s[2]);
        Ok(self.stats)
    }
}

/// Index of the interface called `name`.
fn ifindex(name: &str) -> Result<i32> {
    let c =
        CString::new(name).map_err(|_| Error::Config(format!("bad interface name {name:?}")))?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(Error::Config(format!(
            "no network interface named {name:?} in this namespace"
        )));
    }
    i32::try_from(idx).map_err(|_| Error::Config("interface index out of range".into()))
}

/// Binds the socket to all packets (`ETH_P_ALL`) of interface `ifindex` (0: all).
fn bind(fd: &OwnedFd, ifindex: i32) -> Result<()> {
    // SAFETY: zeroed sockaddr_ll is a valid value; fields set below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = 17; // AF_PACKET
    sll.sll_protocol = ETH_P_ALL_BE;
    sll.sll_ifindex = ifindex;
    // SAFETY: `sll` is a valid sockaddr_ll of the given length.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            std::ptr::from_ref(&sll).cast(),
            libc::socklen_t::try_from(size_of::<libc::sockaddr_ll>()).unwrap_or(0),
        )
    };
    if rc < 0 {
        return Err(Error::socket("bind(AF_PACKET)", io::Error::last_os_error()));
    }
    Ok(())
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping made in `open`; nothing borrows it past `self`.
        unsafe {
            libc::munmap(self.map.cast(), self.map_len);
        }
    }
}

/// Enters the network namespace `ns` (a name under `/run/netns/` or a path) on the
/// calling thread. Call it only on a thread of its own.
///
/// # Errors
/// [`Error::Netns`] if the namespace cannot be opened or entered.
pub fn enter_netns(ns: &str) -> Result<()> {
    let path = if ns.contains('/') {
        ns.to_owned()
    } else {
        format!("/run/netns/{ns}")
    };
    let f = std::fs::File::open(&path).map_err(|source| Error::Netns {
        path: path.clone(),
        source,
    })?;
    // SAFETY: setns on a descriptor we hold open.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
        return Err(Error::Netns {
            path,
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}
