//! Facts about the running host: kernel release, hostname, boot time.

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
