//! `netns`: the cost of watching many network namespaces from one thread.
//!
//! Makes `--namespaces` named namespaces with `--conns` loopback connections each (both
//! ends and a listener inside: `2 × conns + 1` sockets per namespace), and one more
//! namespace holding all of those connections at once. Then reports, per poll, the CPU of
//! the calling thread (`RUSAGE_THREAD`, user + sys):
//!
//! - `all`: one `MultiPoller` poll of every namespace (discovery included);
//! - `discover`: the namespace scan alone (`/run/netns` + `/proc/PID/ns/net`);
//! - `drain_each`: a bare dump (no parsing) in each namespace in turn: the kernel's floor;
//! - `single`: one `Poller` poll of the namespace holding the same sockets alone;
//! - `drain_single`: a bare dump of that namespace.
//!
//! `all` also polls the host namespace and any other namespace on the machine: compare
//! per socket (`ratio_per_socket`) when the host holds sockets of its own.
//!
//! Namespaces are deleted at the end (also on error). Root needed.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, ExitCode};

use tcpinfo_bench::cli::{self, Flags};
use tcpinfo_bench::sys;
use tcpinfo_core::netns::{current, discover, enter, within};
use tcpinfo_core::{
    DumpSocket, DumpSpec, DumpStats, MultiPoller, Poller, PollerConfig, DEFAULT_RECV_BUFFER_BYTES,
};

const USAGE: &str = "usage: netns [--namespaces 100] [--conns 50] [--polls 30] [--child-ehash 0]";
/// Sets the socket hash table size of namespaces created afterwards (Linux 6.1+; 0: share
/// the host's table, the default).
const CHILD_EHASH: &str = "/proc/sys/net/ipv4/tcp_child_ehash_entries";

fn main() -> ExitCode {
    cli::main_with("netns", USAGE, run)
}

struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.0 {
            Command::new("ip").args(["netns", "del", n]).status().ok();
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let ok = Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(format!("ip {args:?} failed"))
    }
}

/// Opens `conns` connections inside the namespace at `path`; returns the sockets.
fn populate(path: &str, conns: usize) -> Result<Vec<TcpStream>, String> {
    let path = path.to_owned();
    std::thread::spawn(move || -> Result<Vec<TcpStream>, String> {
        let ns = File::open(&path).map_err(|e| e.to_string())?;
        enter(&ns).map_err(|e| e.to_string())?;
        let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = l.local_addr().map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(2 * conns);
        for _ in 0..conns {
            out.push(TcpStream::connect(addr).map_err(|e| e.to_string())?);
            out.push(l.accept().map_err(|e| e.to_string())?.0);
        }
        // The listener is kept alive by leaking its fd into the stream list's lifetime.
        std::mem::forget(l);
        Ok(out)
    })
    .join()
    .map_err(|_| "populate thread panicked".to_owned())?
}

/// CPU time of the calling thread, µs (`CLOCK_THREAD_CPUTIME_ID`: exact, not tick-sampled).
fn thread_cpu_us() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    #[expect(clippy::cast_precision_loss, reason = "seconds of CPU, far below 2^53")]
    let us = ts.tv_sec as f64 * 1e6 + ts.tv_nsec as f64 / 1e3;
    us
}

fn cpu_us(f: impl FnOnce()) -> f64 {
    let t0 = thread_cpu_us();
    f();
    thread_cpu_us() - t0
}

fn drain(dump: &mut DumpSocket) -> u32 {
    let spec = DumpSpec {
        family: 0,
        states: 0xF37,
        ext: 0xFF,
    };
    let mut stats = DumpStats::default();
    dump.dump(spec, &[], &mut stats, |_| {}).ok();
    stats.messages
}

/// `n + 1` namespaces (the last one empty), `conns` connections in each of the first `n`;
/// with `child_ehash > 0`, each with a socket table of its own (the sysctl is restored).
fn make_namespaces(
    n: usize,
    conns: usize,
    child_ehash: u32,
) -> Result<(Namespaces, Vec<Vec<TcpStream>>), String> {
    let saved_ehash = std::fs::read_to_string(CHILD_EHASH).unwrap_or_default();
    if child_ehash > 0 {
        std::fs::write(CHILD_EHASH, child_ehash.to_string())
            .map_err(|e| format!("{CHILD_EHASH}: {e}"))?;
    }
    let tag = format!("tcpinfo-netns-bench-{}", std::process::id());
    let mut names = Namespaces(Vec::new());
    let mut held = Vec::new();
    let mut made = || -> Result<(), String> {
        for i in 0..=n {
            let name = format!("{tag}-{i}");
            ip(&["netns", "add", &name])?;
            names.0.push(name.clone());
            ip(&["-n", &name, "link", "set", "lo", "up"])?;
            // The last one gets every connection later: the single-namespace contender.
            if i < n {
                held.push(populate(&format!("/run/netns/{name}"), conns)?);
            }
        }
        Ok(())
    };
    let result = made();
    if child_ehash > 0 {
        // Only namespaces created meanwhile get their own table: restore at once.
        std::fs::write(CHILD_EHASH, saved_ehash.trim()).ok();
    }
    result.map(|()| (names, held))
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut flags = Flags::parse(args)?;
    let n: usize = flags.take("namespaces", 100)?;
    let conns: usize = flags.take("conns", 50)?;
    let polls: usize = flags.take("polls", 30)?;
    let child_ehash: u32 = flags.take("child-ehash", 0)?;
    flags.finish()?;
    sys::raise_nofile().map_err(|e| e.to_string())?;
    let (names, held) = make_namespaces(n, conns, child_ehash)?;
    let config = PollerConfig::default();
    let (home, _) = current().map_err(|e| e.to_string())?;

    // All namespaces from one MultiPoller (the big one is still empty).
    let mut multi = MultiPoller::new(config.clone()).map_err(|e| e.to_string())?;
    let mut sockets = 0;
    for _ in 0..2 {
        sockets = multi.poll().map_err(|e| e.to_string())?.sockets_seen;
    }
    let mut all = Vec::new();
    let mut namespaces = 0;
    for _ in 0..polls {
        let mut b = None;
        all.push(cpu_us(|| b = Some(multi.poll())));
        namespaces = b.and_then(Result::ok).map_or(0, |b| b.stats.namespaces);
    }
    drop(multi);
    let mut found = HashMap::new();
    let discover_us: Vec<f64> = (0..polls)
        .map(|_| {
            cpu_us(|| {
                discover::scan(&mut found);
            })
        })
        .collect();
    let mut dumps = Vec::new();
    for name in &names.0[..n] {
        let path = format!("/run/netns/{name}");
        dumps.push(
            within(Path::new(&path), &home, || {
                DumpSocket::open(DEFAULT_RECV_BUFFER_BYTES)
            })
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?,
        );
    }
    let mut drained = 0;
    let drain_each: Vec<f64> = (0..polls)
        .map(|_| {
            cpu_us(|| {
                drained = dumps.iter_mut().map(drain).sum();
            })
        })
        .collect();
    drop(dumps);
    drop(held);

    // The same number of sockets in one namespace.
    let big = format!("/run/netns/{}", names.0[n]);
    let held_big = populate(&big, n * conns)?;
    let (mut single, mut big_dump) = within(Path::new(&big), &home, || {
        Ok((
            Poller::new(config.clone())?,
            DumpSocket::open(DEFAULT_RECV_BUFFER_BYTES)?,
        ))
    })
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    single.poll();
    let single_sockets = single.poll().sockets_seen;
    let single_us: Vec<f64> = (0..polls)
        .map(|_| {
            cpu_us(|| {
                single.poll();
            })
        })
        .collect();
    let drain_single: Vec<f64> = (0..polls)
        .map(|_| {
            cpu_us(|| {
                drain(&mut big_dump);
            })
        })
        .collect();
    drop(held_big);

    let med = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let line = format!(
        "{{\"kernel\":\"{}\",\"child_ehash\":{child_ehash},\"namespaces\":{n},\"conns_per_ns\":{conns},\"polled_namespaces\":{namespaces},\"sockets_all\":{sockets},\"sockets_drained\":{drained},\"sockets_single\":{single_sockets},\"all_us\":{:.0},\"discover_us\":{:.0},\"drain_each_us\":{:.0},\"single_us\":{:.0},\"drain_single_us\":{:.0},\"ratio_all_single\":{:.2},\"ratio_per_socket\":{:.2}}}",
        sys::kernel_release(),
        med(&all),
        med(&discover_us),
        med(&drain_each),
        med(&single_us),
        med(&drain_single),
        med(&all) / med(&single_us),
        (med(&all) / f64::from(sockets.max(1))) / (med(&single_us) / f64::from(single_sockets.max(1))),
    );
    writeln!(std::io::stdout(), "{line}").map_err(|e| e.to_string())
}
