//! Facts about the running host: kernel release, hostname, boot time, and whether an
//! output pipe's reader is gone.

use std::ffi::CStr;

/// The kernel release (`uname -r`), or an empty string if `uname` fails.
pub fn kernel_release() -> String {
    uname_field(|u| &u.release)
}

/// The hostname (`uname -n`), or `"localhost"` if `uname` fails.
pub fn hostname() -> String {
    let name = uname_field(|u| &u.nodename);
    if name.is_empty() {
        "localhost".to_owned()
    } else {
        name
    }
}

/// Boot time in unix seconds, from the `btime` line of `/proc/stat`.
pub fn boot_time() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn uname_field(pick: impl Fn(&libc::utsname) -> &[libc::c_char; 65]) -> String {
    // SAFETY: utsname is plain old data; uname fills it or fails without touching it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&raw mut u) } != 0 {
        return String::new();
    }
    // SAFETY: the kernel NUL-terminates every utsname field.
    unsafe { CStr::from_ptr(pick(&u).as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Whether the reader of the pipe or socket that `fd` writes to has gone (`poll(2)`
/// reports `POLLERR` or `POLLHUP`), found without writing: a `tcpinfo watch | head` whose
/// `head` has exited should end even while there is nothing to print. False for files,
/// terminals and anything `poll` cannot tell about.
pub fn output_closed(fd: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, timeout 0: poll only reads and writes `p`.
    let n = unsafe { libc::poll(&raw mut p, 1, 0) };
    n == 1 && p.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

#[cfg(test)]
mod output_tests {
    use std::os::fd::AsRawFd;

    use super::output_closed;

    #[test]
    fn a_pipe_whose_reader_closed_is_closed() {
        let (reader, writer) = std::io::pipe().expect("pipe");
        assert!(!output_closed(writer.as_raw_fd()));
        drop(reader);
        assert!(output_closed(writer.as_raw_fd()));
    }
}
