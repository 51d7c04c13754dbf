//! `drain`: the bare kernel dump loop, the physical-limit baseline of the collector benchmarks.
//!
//! Per poll it sends one `SOCK_DIAG_BY_FAMILY` dump request per family on one
//! `NETLINK_SOCK_DIAG` socket and reads the replies to `NLMSG_DONE` into one buffer, doing
//! nothing but counting messages, `recvmsg` calls and bytes. The request is written by hand with
//! libc (no netlink crate, no parser), so what it costs is what the kernel costs. Layouts:
//! `shared/reference/KERNEL-UAPI.md` sections 3 and 4.2.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tcpinfo_bench::cli::{self, parse_u32, Flags};
use tcpinfo_bench::report::PollRun;
use tcpinfo_bench::sys::{cvt, kernel_release, CpuTime};

const USAGE: &str = "\
usage: drain [--polls 100] [--interval-ms 10] [--states 0xF37] [--ext 0xFF]
             [--families 4,6|unspec] [--buffer 65536]

Dumps all TCP sockets with SOCK_DIAG_BY_FAMILY --polls times and prints one JSON object:
wall time per poll (p50/p99), user/sys CPU, recvmsg calls and bytes per socket.
--families unspec sends one legacy TCPDIAG_GETSOCK request instead, which the kernel runs
as an AF_UNSPEC dump: both families in one walk of the socket tables.";

/// `SOCK_DIAG_BY_FAMILY` (`sock_diag.h`).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `TCPDIAG_GETSOCK` (`inet_diag.h`): the legacy request, dumped with `AF_UNSPEC`.
const TCPDIAG_GETSOCK: u16 = 18;
/// Pseudo-family of `--families unspec`: one legacy request for both families.
const UNSPEC: u8 = 0;
/// `struct nlmsghdr` (16 B) + `struct inet_diag_req` (60 B).
const COMPAT_REQUEST_LEN: usize = NLMSG_HDR_LEN + 60;
/// `NLM_F_REQUEST | NLM_F_DUMP` (netlink.h).
const DUMP_FLAGS: u16 = 0x01 | 0x300;
/// `NLM_F_DUMP_INTR`: the dump was interrupted by a table change and may be inconsistent.
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// `struct nlmsghdr` (16 B) + `struct inet_diag_req_v2` (56 B).
const NLMSG_HDR_LEN: usize = 16;
const REQUEST_LEN: usize = NLMSG_HDR_LEN + 56;
const REQUEST_LEN_U32: u32 = 72;
const _: () = assert!(REQUEST_LEN_U32 as usize == REQUEST_LEN);
/// Receive buffer; the kernel fills at most about 32 KiB per recvmsg (DESIGN section 3).
const DEFAULT_BUFFER: usize = 64 * 1024;

/// Settings from the command line.
struct Config {
    polls: u32,
    interval: Duration,
    states: u32,
    ext: u8,
    families: Vec<u8>,
    buffer: usize,
}

/// What one poll (all families) counted.
#[derive(Default)]
struct Counts {
    messages: u64,
    recvmsg_calls: u64,
    bytes: u64,
    interrupted: u64,
}

fn main() -> ExitCode {
    cli::main_with("drain", USAGE, run)
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut flags = Flags::parse(args)?;
    let cfg = Config {
        polls: flags.take("polls", 100)?,
        interval: Duration::from_millis(flags.take("interval-ms", 10)?),
        states: parse_u32(&flags.take("states", "0xF37".to_owned())?)?,
        ext: u8::try_from(parse_u32(&flags.take("ext", "0xFF".to_owned())?)?)
            .map_err(|e| format!("--ext: {e}"))?,
        families: parse_families(&flags.take("families", "4,6".to_owned())?)?,
        buffer: flags.take("buffer", DEFAULT_BUFFER)?,
    };
    flags.finish()?;
    let report = measure(&cfg).map_err(|e| e.to_string())?;
    writeln!(io::stdout(), "{}", report.to_json(&kernel_release())).map_err(|e| e.to_string())
}

fn parse_families(text: &str) -> Result<Vec<u8>, String> {
    text.split(',')
        .map(|f| match f.trim() {
            "4" | "inet" => Ok(family(libc::AF_INET)),
            "unspec" | "0" => Ok(UNSPEC),
            "6" | "inet6" => Ok(family(libc::AF_INET6)),
            other => Err(format!(
                "--families: unknown family {other:?} (use 4, 6 or 4,6)"
            )),
        })
        .collect()
}

fn family(af: libc::c_int) -> u8 {
    u8::try_from(af).unwrap_or_default()
}

fn measure(cfg: &Config) -> io::Result<PollRun> {
    // SAFETY: plain socket(2) call.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    })?;
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut buf = vec![0u8; cfg.buffer];
    let mut run = PollRun {
        tool: "drain",
        interval_ms: u64::try_from(cfg.interval.as_millis()).unwrap_or(u64::MAX),
        ..PollRun::default()
    };
    let mut total = Counts::default();
    let mut seq = 0u32;
    let cpu_before = CpuTime::this_process()?;
    for i in 0..cfg.polls {
        if i > 0 {
            std::thread::sleep(cfg.interval);
        }
        let started = Instant::now();
        let mut poll = Counts::default();
        for &fam in &cfg.families {
            seq = seq.wrapping_add(1);
            if fam == UNSPEC {
                send_request(&sock, &compat_request(cfg.states, cfg.ext, seq))?;
            } else {
                send_request(&sock, &request(fam, cfg.states, cfg.ext, seq))?;
            }
            read_dump(&sock, &mut buf, &mut poll)?;
        }
        run.wall.push(started.elapsed());
        run.sockets.push(poll.messages);
        total.recvmsg_calls += poll.recvmsg_calls;
        total.bytes += poll.bytes;
        total.interrupted += poll.interrupted;
    }
    run.cpu = CpuTime::this_process()?.since(cpu_before);
    run.recvmsg_calls = Some(total.recvmsg_calls);
    run.bytes = Some(total.bytes);
    run.extra = vec![
        ("dump_interrupted", total.interrupted.to_string()),
        ("states", format!("\"{:#x}\"", cfg.states)),
        ("ext", format!("\"{:#x}\"", cfg.ext)),
        ("families", format!("{:?}", cfg.families)),
        ("buffer", cfg.buffer.to_string()),
    ];
    Ok(run)
}

/// `nlmsghdr` + `inet_diag_req_v2` for a dump of all TCP sockets of one family.
fn request(family: u8, states: u32, ext: u8, seq: u32) -> [u8; REQUEST_LEN] {
    let mut b = [0u8; REQUEST_LEN];
    b[0..4].copy_from_slice(&REQUEST_LEN_U32.to_ne_bytes()); // nlmsg_len
    b[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes()); // nlmsg_type
    b[6..8].copy_from_slice(&DUMP_FLAGS.to_ne_bytes()); // nlmsg_flags
    b[8..12].copy_from_slice(&seq.to_ne_bytes()); // nlmsg_seq; nlmsg_pid 0 = the kernel assigns
    b[16] = family; // sdiag_family
    b[17] = u8::try_from(libc::IPPROTO_TCP).unwrap_or_default(); // sdiag_protocol
    b[18] = ext; // idiag_ext
    b[20..24].copy_from_slice(&states.to_ne_bytes()); // idiag_states
                                                      // id (48 B) stays zero: no port filter, no cookie.
    b
}

/// `nlmsghdr` + legacy `inet_diag_req` (`TCPDIAG_GETSOCK`): the kernel dumps it with
/// `sdiag_family = AF_UNSPEC` (`inet_diag_dump_compat`), i.e. every family in one table walk.
fn compat_request(states: u32, ext: u8, seq: u32) -> [u8; COMPAT_REQUEST_LEN] {
    let mut b = [0u8; COMPAT_REQUEST_LEN];
    let len = u32::try_from(COMPAT_REQUEST_LEN).unwrap_or_default();
    b[0..4].copy_from_slice(&len.to_ne_bytes()); // nlmsg_len
    b[4..6].copy_from_slice(&TCPDIAG_GETSOCK.to_ne_bytes()); // nlmsg_type
    b[6..8].copy_from_slice(&DUMP_FLAGS.to_ne_bytes()); // nlmsg_flags
    b[8..12].copy_from_slice(&seq.to_ne_bytes()); // nlmsg_seq
                                                  // idiag_family (ignored by the kernel's compat dump), src_len, dst_len, idiag_ext.
    b[16] = family(libc::AF_INET);
    b[19] = ext;
    // id (48 B) stays zero; then idiag_states and idiag_dbs.
    b[16 + 52..16 + 56].copy_from_slice(&states.to_ne_bytes());
    b
}

fn send_request(sock: &OwnedFd, req: &[u8]) -> io::Result<()> {
    // SAFETY: sockaddr_nl is plain old data; all-zero is the kernel's address (pid 0).
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::sa_family_t::try_from(libc::AF_NETLINK).unwrap_or_default();
    let addr_len = libc::socklen_t::try_from(size_of::<libc::sockaddr_nl>()).unwrap_or_default();
    // SAFETY: `req` is readable for its length and `kernel` is a valid sockaddr_nl.
    let sent = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            req.as_ptr().cast(),
            req.len(),
            0,
            (&raw const kernel).cast(),
            addr_len,
        )
    };
    if usize::try_from(cvt(sent)?).ok() == Some(req.len()) {
        Ok(())
    } else {
        Err(io::Error::other("short netlink send"))
    }
}

/// Reads one dump to `NLMSG_DONE`, counting messages (sockets), recvmsg calls and bytes.
fn read_dump(sock: &OwnedFd, buf: &mut [u8], counts: &mut Counts) -> io::Result<()> {
    loop {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is plain old data; all-zero means no name and no control data.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        // SAFETY: `msg` points at one iovec covering `buf`, which outlives the call.
        let ret = unsafe { libc::recvmsg(sock.as_raw_fd(), &raw mut msg, 0) };
        let n = match cvt(ret) {
            Ok(n) => usize::try_from(n).unwrap_or(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        counts.recvmsg_calls += 1;
        counts.bytes += n as u64;
        if msg.msg_flags & libc::MSG_TRUNC != 0 {
            return Err(io::Error::other(
                "netlink message truncated: raise --buffer",
            ));
        }
        let mut off = 0;
        while off + NLMSG_HDR_LEN <= n {
            let len =
                u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]) as usize;
            let kind = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
            let flags = u16::from_ne_bytes([buf[off + 6], buf[off + 7]]);
            if len < NLMSG_HDR_LEN || off + len > n {
                return Err(io::Error::other(format!(
                    "malformed netlink message (len {len} at {off} of {n})"
                )));
            }
            if flags & NLM_F_DUMP_INTR != 0 {
                counts.interrupted += 1;
            }
            match kind {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    let errno = buf
                        .get(off + 16..off + 20)
                        .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    return Err(io::Error::from_raw_os_error(-errno));
                }
                _ => counts.messages += 1,
            }
            off += len.next_multiple_of(4); // NLMSG_ALIGN
        }
    }
}
