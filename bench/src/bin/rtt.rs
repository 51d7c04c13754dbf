//! `rtt`: the passive RTT benchmarks (issue 14).
//!
//! `rtt parse` builds a synthetic bulk-transfer trace in memory (Ethernet, IPv4 and IPv6,
//! TCP timestamps ticking every millisecond, an ACK every second data segment) and times
//! the parse + match loop on one thread (user CPU per packet); with `--write FILE` it also
//! writes the trace as a pcap for the contenders (`tcpdump -r`, `tshark -r`).
//! `rtt ring` sends TCP frames at `--pps` into one end of a veth pair with an `AF_PACKET`
//! socket and captures them at the other end with the default `TPACKET_V3` ring, then
//! reports ring drops and the capture's CPU per packet.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use tcpinfo_bench::cli::{self, Flags};
use tcpinfo_bench::sys::{cvt, kernel_release, CpuTime};
use tcpinfo_rtt::{
    FlowKey, LinkType, Matcher, MatcherConfig, Monitor, MonitorConfig, ParseStats, RingConfig,
    RttSession, SessionConfig, Source,
};

const USAGE: &str = "\
usage: rtt parse [--packets 2000000] [--flows 1000] [--write FILE]
       rtt monitor [--pps 200000] [--seconds 3]
       rtt ring [--pps 200000] [--seconds 3] [--blocks 8] [--senders 1] [--sink-device true] [--rt-sender true]

monitor: (root) as ring, through the collector's tcpinfo_rtt::Monitor, while another
       thread reads its tables every 10 ms as the collector does: reader wait p50/p99/max.
parse: user CPU per packet of parse + match over a synthetic trace held in memory.
ring:  (root) frames sent at --pps through a veth pair in two network namespaces,
       captured with the default ring; prints drops and CPU per packet. JSON output.";

fn main() -> ExitCode {
    cli::main_with("rtt", USAGE, |args| {
        let mode = args.first().cloned().unwrap_or_default();
        let mut flags = Flags::parse(args.into_iter().skip(1))?;
        let line = match mode.as_str() {
            "parse" => parse_bench(&mut flags)?,
            "ring" => ring_bench(&mut flags)?,
            "monitor" => monitor_bench(&mut flags)?,
            _ => return Err("give a mode: parse, ring or monitor".into()),
        };
        flags.finish()?;
        writeln!(std::io::stdout(), "{line}").map_err(|e| e.to_string())
    })
}

/// One Ethernet frame: TCP with the timestamp option and `payload` bytes (not stored:
/// the IP length says so, the frame is cut at 128 bytes as a capture would).
fn frame(flow: &FlowKey, seq: u32, ack: u32, tsval: u32, tsecr: u32, payload: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    let tcp_len: u16 = 32;
    if flow.v6 {
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        f.extend_from_slice(&(tcp_len + payload).to_be_bytes());
        f.extend_from_slice(&[6, 64]);
        f.extend_from_slice(&flow.src);
        f.extend_from_slice(&flow.dst);
    } else {
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
        f.extend_from_slice(&(20 + tcp_len + payload).to_be_bytes());
        f.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&flow.src[..4]);
        f.extend_from_slice(&flow.dst[..4]);
    }
    f.extend_from_slice(&flow.sport.to_be_bytes());
    f.extend_from_slice(&flow.dport.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ack.to_be_bytes());
    f.extend_from_slice(&[0x80, 0x10, 0xff, 0xff, 0, 0, 0, 0, 1, 1, 8, 10]);
    f.extend_from_slice(&tsval.to_be_bytes());
    f.extend_from_slice(&tsecr.to_be_bytes());
    f
}

/// The synthetic trace: `(time ns, frame)`, flows interleaved, 1 µs apart.
fn trace(packets: usize, flows: usize) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::with_capacity(packets);
    let keys: Vec<FlowKey> = (0..flows)
        .map(|i| {
            let hi = u8::try_from(i >> 8).unwrap_or(0);
            let lo = u8::try_from(i & 0xff).unwrap_or(0);
            let port = 40_000 + u16::try_from(i % 20_000).unwrap_or(0);
            let (a, b) = if i % 4 == 3 {
                (
                    format!("fd00::{hi:x}:{lo:x}")
                        .parse()
                        .unwrap_or(std::net::Ipv6Addr::LOCALHOST.into()),
                    "fd00::1"
                        .parse()
                        .unwrap_or(std::net::Ipv6Addr::LOCALHOST.into()),
                )
            } else {
                (
                    std::net::IpAddr::from([10, 1, hi, lo]),
                    std::net::IpAddr::from([10, 0, 0, 1]),
                )
            };
            FlowKey::new(b, 443, a, port)
        })
        .collect();
    let mut i = 0usize;
    while out.len() < packets {
        let t = i64::try_from(out.len()).unwrap_or(i64::MAX) * 1000;
        let k = &keys[i % flows];
        let n = u32::try_from(i / flows).unwrap_or(0);
        // Server clock and client clock tick every 4 rounds; an ACK after every 2nd segment.
        let (ts_s, ts_c) = (1_000 + n / 4, 9_000 + n / 4);
        out.push((t, frame(k, n * 1448, 1, ts_s, ts_c.saturating_sub(1), 1448)));
        if n % 2 == 1 {
            out.push((
                t + 500,
                frame(&k.reverse(), 1, (n + 1) * 1448, ts_c, ts_s, 0),
            ));
        }
        i += 1;
    }
    out
}

fn parse_bench(flags: &mut Flags) -> Result<String, String> {
    let packets: usize = flags.take("packets", 2_000_000)?;
    let flows: usize = flags.take("flows", 1000)?;
    let write: Option<String> = flags.take_opt("write")?;
    let frames = trace(packets, flows.max(1));
    if let Some(path) = &write {
        write_pcap(path, &frames).map_err(|e| format!("{path}: {e}"))?;
    }
    let mut best = f64::MAX;
    let mut samples = 0;
    for _ in 0..3 {
        let mut m = Matcher::new(MatcherConfig::default());
        let mut ps = ParseStats::default();
        let cpu0 = CpuTime::this_thread();
        for (t, f) in &frames {
            if let Some(seg) = ps.parse(Some(LinkType::Ethernet), f) {
                if m.process(&seg, *t).is_some() {
                    samples += 1;
                }
            }
        }
        let cpu = CpuTime::this_thread().since(cpu0);
        #[expect(clippy::cast_precision_loss, reason = "packet counts far below 2^52")]
        let ns = (cpu.user + cpu.sys).as_secs_f64() * 1e9 / frames.len() as f64;
        best = best.min(ns);
    }
    // The parser alone, for the split.
    let mut parse_only = f64::MAX;
    for _ in 0..3 {
        let mut ps = ParseStats::default();
        let cpu0 = CpuTime::this_thread();
        for (_, f) in &frames {
            std::hint::black_box(ps.parse(Some(LinkType::Ethernet), f));
        }
        let cpu = CpuTime::this_thread().since(cpu0);
        #[expect(clippy::cast_precision_loss, reason = "packet counts far below 2^52")]
        let ns = (cpu.user + cpu.sys).as_secs_f64() * 1e9 / frames.len() as f64;
        parse_only = parse_only.min(ns);
    }
    Ok(format!(
        "{{\"mode\":\"parse\",\"kernel\":\"{}\",\"packets\":{},\"flows\":{flows},\"samples_per_run\":{},\"cpu_ns_per_packet_best_of_3\":{best:.1},\"parse_only_ns_per_packet\":{parse_only:.1}}}",
        kernel_release(),
        frames.len(),
        samples / 3
    ))
}

fn write_pcap(path: &str, frames: &[(i64, Vec<u8>)]) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(frames.len() * 110);
    out.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    out.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&128u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (t, f) in frames {
        let sec = u32::try_from(t / 1_000_000_000).unwrap_or(0);
        let ns = u32::try_from(t % 1_000_000_000).unwrap_or(0);
        let len = u32::try_from(f.len()).unwrap_or(0);
        let orig = len + u32::from(u16::from_be_bytes([f[16], f[17]])).saturating_sub(len - 14);
        for v in [sec, ns, len, orig] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(f);
    }
    std::fs::write(path, out)
}

fn sh(args: &[&str]) -> Result<(), String> {
    let ok = Command::new(args[0])
        .args(&args[1..])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(format!("{args:?} failed"))
    }
}

fn ring_bench(flags: &mut Flags) -> Result<String, String> {
    let pps: u64 = flags.take("pps", 200_000)?;
    let seconds: f64 = flags.take("seconds", 3.0)?;
    let blocks: u32 = flags.take("blocks", tcpinfo_rtt::ring::DEFAULT_BLOCKS)?;
    let threads: u64 = flags.take("senders", 1)?;
    let dummy: bool = flags.take("sink-device", false)?;
    let rt: bool = flags.take("rt-sender", false)?;
    if threads == 0 {
        return Err("--senders must be at least 1".into());
    }
    let (a, b) = (
        format!("rttbench-{}-a", std::process::id()),
        format!("rttbench-{}-b", std::process::id()),
    );
    sh(&["ip", "netns", "add", &a])?;
    sh(&["ip", "netns", "add", &b])?;
    let result = (|| {
        // --sink-device: send into an ifb device (it drops what it was not redirected) and capture its transmit tap in the same
        // namespace. A frame then costs the kernel no receive path, which on a loaded
        // machine (the receive softirq runs at nice 0) limits the rate before the capture.
        if dummy {
            sh(&["ip", "-n", &a, "link", "add", "rbencha", "type", "ifb"])?;
        } else {
            sh(&[
                "ip", "link", "add", "rbencha", "netns", &a, "type", "veth", "peer", "name",
                "rbenchb", "netns", &b,
            ])?;
            sh(&["ip", "-n", &b, "link", "set", "rbenchb", "up"])?;
        }
        sh(&["ip", "-n", &a, "link", "set", "rbencha", "up"])?;
        let cfg = SessionConfig::new(Source::Live {
            ring: RingConfig {
                interface: Some(if dummy { "rbencha" } else { "rbenchb" }.into()),
                blocks,
                ..RingConfig::default()
            },
            netns: Some(if dummy { a.clone() } else { b.clone() }),
        });
        let (session, mut rx) = RttSession::start(cfg).map_err(|e| e.to_string())?;
        let drain = std::thread::spawn(move || {
            let mut last = None;
            while let Some(Ok(batch)) = rx.blocking_recv() {
                last = Some(batch.stats);
            }
            last
        });
        let cap0 = thread_cpu("tcpinfo-rtt").ok_or("no capture thread")?;
        let senders: Vec<_> = (0..threads)
            .map(|_| {
                let ns_a = a.clone();
                std::thread::spawn(move || {
                    send(&ns_a, pps / threads, Duration::from_secs_f64(seconds), rt)
                })
            })
            .collect();
        let (mut sent, mut sender_cpu) = (0, CpuTime::default());
        for s in senders {
            let (n, cpu) = s.join().map_err(|_| "sender panicked")??;
            sent += n;
            sender_cpu += cpu;
        }
        std::thread::sleep(Duration::from_millis(200));
        let cap1 = thread_cpu("tcpinfo-rtt").ok_or("no capture thread")?;
        session.stop();
        let stats = drain
            .join()
            .map_err(|_| "drain panicked")?
            .ok_or("no batch")?;
        drop(session);
        #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let packets = stats.ring.packets.max(1) as f64;
        // SAFETY: sysconf has no memory effects.
        let tick_ns = 1e9
            / f64::from(u32::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100));
        #[expect(
            clippy::cast_precision_loss,
            reason = "CPU ns and tick counts far below 2^52"
        )]
        let (thread_ns, user_ns, sys_ns) = (
            (cap1.0 - cap0.0) as f64 / packets,
            (cap1.1 - cap0.1) as f64 * tick_ns / packets,
            (cap1.2 - cap0.2) as f64 * tick_ns / packets,
        );
        Ok(format!(
            "{{\"mode\":\"ring\",\"kernel\":\"{}\",\"pps_target\":{pps},\"ring_blocks\":{blocks},\"senders\":{threads},\"sink_device\":{dummy},\"rt_sender\":{rt},\"seconds\":{seconds},\"sent\":{sent},\"achieved_pps\":{:.0},\"ring_packets\":{},\"ring_drops\":{},\"ring_freezes\":{},\"parsed\":{},\"samples\":{},\"capture_thread_ns_per_packet\":{:.1},\"capture_user_ns_per_packet\":{:.1},\"capture_sys_ns_per_packet\":{:.1},\"sender_cpu_s\":{:.2}}}",
            kernel_release(),
            f64::from(u32::try_from(sent).unwrap_or(u32::MAX)) / seconds,
            stats.ring.packets,
            stats.ring.drops,
            stats.ring.freezes,
            stats.parse.tcp,
            stats.matching.samples,
            thread_ns,
            user_ns,
            sys_ns,
            (sender_cpu.user + sender_cpu.sys).as_secs_f64(),
        ))
    })();
    for ns in [&a, &b] {
        sh(&["ip", "netns", "del", ns])?;
    }
    result
}

/// Sends TCP frames from namespace `ns` out of `rbencha` at `pps` for `dur`, in
/// `sendmmsg` batches of up to 32 (so the sender's syscalls do not cap the rate); returns
/// the count sent and the sender thread's CPU.
fn send(ns: &str, pps: u64, dur: Duration, rt: bool) -> Result<(u64, CpuTime), String> {
    const BATCH: usize = 32;
    tcpinfo_rtt::ring::enter_netns(ns).map_err(|e| e.to_string())?;
    if rt {
        // The load generator (not the capture) as a real-time thread: on a machine shared
        // with other builds it would otherwise fall short of the rate. It sleeps between
        // batches, so it takes what it needs (about a third of a core), not a core.
        let p = libc::sched_param { sched_priority: 10 };
        // SAFETY: valid policy and parameter for this thread.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &raw const p) } != 0 {
            return Err(format!("SCHED_FIFO: {}", std::io::Error::last_os_error()));
        }
    }
    // SAFETY: plain socket(2) call.
    let fd = cvt(unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) })
        .map_err(|e| e.to_string())?;
    // SAFETY: a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // A large send buffer (root may force it): a sender blocked on its buffer while the
    // receive softirq is descheduled would time the machine's load, not the capture.
    let big: libc::c_int = 64 << 20;
    // SAFETY: an int option of the right size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUFFORCE,
            std::ptr::from_ref(&big).cast(),
            4,
        );
    }
    // SAFETY: a NUL-terminated name.
    let ifindex = i32::try_from(unsafe { libc::if_nametoindex(c"rbencha".as_ptr()) }).unwrap_or(0);
    // SAFETY: zeroed sockaddr_ll is valid; fields set below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = 17;
    sll.sll_ifindex = ifindex;
    sll.sll_halen = 6;
    let mut frames = trace(4096, 64);
    let mut iovs: Vec<libc::iovec> = frames
        .iter_mut()
        .map(|(_, f)| libc::iovec {
            iov_base: f.as_mut_ptr().cast(),
            iov_len: f.len(),
        })
        .collect();
    let sll_len = u32::try_from(size_of::<libc::sockaddr_ll>()).unwrap_or(0);
    let mut msgs: Vec<libc::mmsghdr> = iovs
        .iter_mut()
        .map(|iov| {
            // SAFETY: a zeroed mmsghdr is valid; the pointers set stay valid (iovs and sll
            // outlive msgs, and are not moved while it is used).
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_name = std::ptr::from_mut(&mut sll).cast();
            m.msg_hdr.msg_namelen = sll_len;
            m.msg_hdr.msg_iov = std::ptr::from_mut(iov);
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    let cpu0 = CpuTime::this_thread();
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < dur {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "seconds * pps fits"
        )]
        let due = (start.elapsed().as_secs_f64()
            * f64::from(u32::try_from(pps).unwrap_or(u32::MAX))) as u64;
        while sent < due {
            let at = usize::try_from(sent).unwrap_or(0) % msgs.len();
            let n = BATCH
                .min(msgs.len() - at)
                .min(usize::try_from(due - sent).unwrap_or(BATCH));
            // SAFETY: `msgs[at..at + n]` are valid mmsghdrs (see above).
            let rc = unsafe {
                libc::sendmmsg(
                    fd.as_raw_fd(),
                    msgs[at..].as_mut_ptr(),
                    u32::try_from(n).unwrap_or(1),
                    0,
                )
            };
            if rc <= 0 {
                break;
            }
            sent += u64::try_from(rc).unwrap_or(0);
        }
        // Caught up: sleep rather than spin, so the scheduler sees a light thread and
        // runs it promptly when it wakes (it then sends what became due, in batches).
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok((sent, CpuTime::this_thread().since(cpu0)))
}

/// CPU time (user+sys, ns) of this process's thread named `name`, from its per-thread
/// clock, and its user and system ticks from `/proc` (`USER_HZ`).
fn thread_cpu(name: &str) -> Option<(u64, u64, u64)> {
    for e in std::fs::read_dir("/proc/self/task").ok()? {
        let tid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).ok()?;
        if comm.trim() != name {
            continue;
        }
        // Linux's per-thread CPU clock id: MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED).
        let clock = ((!tid) << 3) | 6;
        // SAFETY: a zeroed timespec is valid output space.
        let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
        // SAFETY: valid clock id and output pointer.
        if unsafe { libc::clock_gettime(clock, &raw mut ts) } != 0 {
            return None;
        }
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
        let after = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = after.split(' ').collect();
        let (utime, stime) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
        let ns = u64::try_from(ts.tv_sec).ok()? * 1_000_000_000 + u64::try_from(ts.tv_nsec).ok()?;
        return Some((ns, utime, stime));
    }
    None
}

/// `rtt monitor`: the collector's capture (`Monitor`) at `--pps` through a veth, and a
/// reader thread that looks up connections and copies the histograms every 10 ms, as the
/// collector's JS thread does at most: how long the reader waits on the capture's lock.
fn monitor_bench(flags: &mut Flags) -> Result<String, String> {
    let pps: u64 = flags.take("pps", 200_000)?;
    let seconds: f64 = flags.take("seconds", 3.0)?;
    let (a, b) = (
        format!("rttmon-{}-a", std::process::id()),
        format!("rttmon-{}-b", std::process::id()),
    );
    sh(&["ip", "netns", "add", &a])?;
    sh(&["ip", "netns", "add", &b])?;
    let result = (|| {
        sh(&[
            "ip", "link", "add", "rbencha", "netns", &a, "type", "veth", "peer", "name", "rbenchb",
            "netns", &b,
        ])?;
        sh(&["ip", "-n", &b, "link", "set", "rbenchb", "up"])?;
        sh(&["ip", "-n", &a, "link", "set", "rbencha", "up"])?;
        let mut cfg = MonitorConfig::new(RingConfig {
            interface: Some("rbenchb".into()),
            ..RingConfig::default()
        });
        cfg.netns = Some(b.clone());
        let monitor = std::sync::Arc::new(Monitor::start(cfg).map_err(|e| e.to_string())?);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (m2, s2) = (
            std::sync::Arc::clone(&monitor),
            std::sync::Arc::clone(&stop),
        );
        let reader = std::thread::spawn(move || {
            let keys: Vec<FlowKey> = trace(4096, 64)
                .iter()
                .take(256)
                .map(|(_, f)| {
                    tcpinfo_rtt::parse(LinkType::Ethernet, f).map_or_else(
                        |_| FlowKey::new([0, 0, 0, 0].into(), 0, [0, 0, 0, 0].into(), 0),
                        |s| s.flow,
                    )
                })
                .collect();
            let mut waits = Vec::new();
            while !s2.load(std::sync::atomic::Ordering::Acquire) {
                let t = Instant::now();
                let found = m2.lookup(&keys, false).iter().flatten().count();
                let rows = m2.with_histograms(|h| h.rows.len());
                waits.push(t.elapsed());
                std::hint::black_box((found, rows));
                std::thread::sleep(Duration::from_millis(10));
            }
            waits
        });
        let ns_a = a.clone();
        let sender =
            std::thread::spawn(move || send(&ns_a, pps, Duration::from_secs_f64(seconds), true));
        let (sent, _) = sender.join().map_err(|_| "sender panicked")??;
        std::thread::sleep(Duration::from_millis(1200));
        stop.store(true, std::sync::atomic::Ordering::Release);
        let mut waits = reader.join().map_err(|_| "reader panicked")?;
        waits.sort();
        let st = monitor.stats();
        let q = |p: usize| {
            waits
                .get((waits.len().saturating_sub(1)) * p / 100)
                .map_or(0, Duration::as_micros)
        };
        Ok(format!(
            "{{\"mode\":\"monitor\",\"kernel\":\"{}\",\"pps_target\":{pps},\"seconds\":{seconds},\"sent\":{sent},\"ring_packets\":{},\"ring_drops\":{},\"samples\":{},\"reads\":{},\"read_us_p50\":{},\"read_us_p99\":{},\"read_us_max\":{}}}",
            kernel_release(),
            st.ring.packets,
            st.ring.drops,
            st.matching.samples,
            waits.len(),
            q(50),
            q(99),
            q(100),
        ))
    })();
    for ns in [&a, &b] {
        sh(&["ip", "netns", "del", ns])?;
    }
    result
}
