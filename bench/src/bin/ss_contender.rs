//! `ss_contender`: runs `ss -tinmeo` (output to /dev/null) K times, the everyday peer of the
//! collector benchmarks.
//!
//! Each run is a fork + exec + full dump + formatting, as a shell loop polling with `ss` would
//! pay. Wall time covers spawn to reap; CPU is the child's own user/sys time from `wait4`'s
//! rusage (this process's spawning cost is not included). The socket count comes from
//! `ss -tnH` line counts before and after the runs: `ss` shows all states except LISTEN,
//! SYN-RECV, TIME-WAIT and CLOSE, so listeners are not counted (`drain` counts them).
//! A first, unmeasured run counts `ss`'s stderr lines (`stderr_lines`, with a warning); the
//! measured runs discard stderr too.
//! The JSON has the shape of `drain`'s, with the counters `ss` cannot give as `null`.

use std::io::{self, Write};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use tcpinfo_bench::cli::{self, Flags};
use tcpinfo_bench::report::PollRun;
use tcpinfo_bench::sys::{cvt, kernel_release, CpuTime};

const USAGE: &str = "\
usage: ss_contender [--polls 100] [--interval-ms 10] [--ss ss] [--args -tinmeo]

Runs `ss ARGS > /dev/null` --polls times and prints one JSON object shaped like drain's:
wall time per run (p50/p99) and the child's user/sys CPU per socket.";

fn main() -> ExitCode {
    cli::main_with("ss_contender", USAGE, run)
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut flags = Flags::parse(args)?;
    let polls: u32 = flags.take("polls", 100)?;
    let interval = Duration::from_millis(flags.take("interval-ms", 10)?);
    let ss: String = flags.take("ss", "ss".to_owned())?;
    let ss_args: String = flags.take("args", "-tinmeo".to_owned())?;
    flags.finish()?;
    let ss_args: Vec<&str> = ss_args.split_whitespace().collect();

    let before = count_sockets(&ss).map_err(|e| format!("{ss} -tnH: {e}"))?;
    let stderr_lines = probe_stderr(&ss, &ss_args).map_err(|e| format!("{ss}: {e}"))?;
    let mut run = PollRun {
        tool: "ss",
        interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
        ..PollRun::default()
    };
    for i in 0..polls {
        if i > 0 {
            std::thread::sleep(interval);
        }
        let started = Instant::now();
        let cpu =
            run_once(&ss, &ss_args).map_err(|e| format!("{ss} {}: {e}", ss_args.join(" ")))?;
        run.wall.push(started.elapsed());
        run.cpu += cpu;
    }
    let after = count_sockets(&ss).map_err(|e| format!("{ss} -tnH: {e}"))?;
    // The dump itself is not seen; assume the count moved evenly between the two samples.
    let mean = before.midpoint(after);
    run.sockets = vec![mean; run.wall.len()];
    run.extra = vec![
        ("sockets_before", before.to_string()),
        ("sockets_after", after.to_string()),
        ("stderr_lines", stderr_lines.to_string()),
        (
            "ss_args",
            format!("\"{}\"", ss_args.join(" ").replace(['"', '\\'], "_")),
        ),
    ];
    writeln!(io::stdout(), "{}", run.to_json(&kernel_release())).map_err(|e| e.to_string())
}

/// Runs `ss` once, unmeasured, and counts its stderr lines; explains the first on our stderr.
///
/// The measured runs discard stderr. A noisy `ss` is slow: under `ip netns exec` without a
/// cgroup2 mount, `ss -e` prints "Failed to find cgroup2 mount" for every socket.
fn probe_stderr(ss: &str, args: &[&str]) -> io::Result<usize> {
    let out = Command::new(ss)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()?;
    let text = String::from_utf8_lossy(&out.stderr);
    if let Some(first) = text.lines().next() {
        // Ignored: if stderr is gone there is nowhere left to report to.
        let _ignored = writeln!(
            io::stderr(),
            "ss_contender: warning: ss writes to stderr ({} lines), e.g. {first:?}",
            text.lines().count()
        );
    }
    Ok(text.lines().count())
}

/// Runs `ss` once with output discarded; returns the child's CPU time from `wait4`.
fn run_once(ss: &str, args: &[&str]) -> io::Result<CpuTime> {
    let child = Command::new(ss)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
    let mut status = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `ru` are writable; `pid` is our unreaped child. Reaping it here
        // (not with Child::wait) is what gives its rusage; `child` is then only dropped.
        let ret = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut ru) };
        match cvt(ret) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(io::Error::other(format!("exited with status {status:#x}")));
    }
    Ok(CpuTime::from_rusage(&ru))
}

/// Number of sockets `ss -tnH` lists (one per line).
fn count_sockets(ss: &str) -> io::Result<u64> {
    let out = Command::new(ss).arg("-tnH").stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!("exited with {}", out.status)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().count() as u64)
}
