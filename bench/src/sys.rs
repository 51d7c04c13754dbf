//! Thin libc wrappers the bench binaries share: fd limit, CPU usage, kernel version.

use std::ffi::CStr;
use std::io;
use std::time::Duration;

/// Turns a libc `-1` return into the current `errno` as an [`io::Error`].
///
/// # Errors
/// `ret` is negative.
pub fn cvt<T: Copy + PartialOrd + Default>(ret: T) -> io::Result<T> {
    if ret < T::default() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the new soft limit.
///
/// The hard limit on the bench machine is 20,000 and cannot be raised, which is why the farm
/// spreads its sockets over worker processes.
///
/// # Errors
/// `getrlimit`/`setrlimit` fail.
pub fn raise_nofile() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) })?;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid rlimit.
        cvt(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lim) })?;
    }
    Ok(lim.rlim_cur)
}

/// Set by SIGINT/SIGTERM once [`install_stop_handler`] ran.
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Makes SIGINT and SIGTERM set a flag (see [`stop_requested`]) instead of killing the
/// process, so the caller can stop cleanly and still write its report.
///
/// # Errors
/// `sigaction` fails.
pub fn install_stop_handler() -> io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction is plain old data; the handler only stores to an atomic.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_stop_signal as *const () as libc::sighandler_t;
            cvt(libc::sigaction(sig, &raw const sa, std::ptr::null_mut()))?;
        }
    }
    Ok(())
}

/// Whether SIGINT or SIGTERM arrived since [`install_stop_handler`].
pub fn stop_requested() -> bool {
    STOP.load(std::sync::atomic::Ordering::Relaxed)
}

/// User and system CPU time of a process, as reported by `getrusage`/`wait4`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTime {
    /// `ru_utime`.
    pub user: Duration,
    /// `ru_stime`.
    pub sys: Duration,
}

impl CpuTime {
    /// Converts the two `timeval`s of a `rusage`.
    pub fn from_rusage(ru: &libc::rusage) -> Self {
        Self {
            user: timeval(ru.ru_utime),
            sys: timeval(ru.ru_stime),
        }
    }

    /// CPU time of the calling process so far (`RUSAGE_SELF`: all its threads).
    ///
    /// # Errors
    /// `getrusage` fails.
    pub fn this_process() -> io::Result<Self> {
        // SAFETY: rusage is plain old data; all-zero is a valid value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a valid, writable rusage.
        cvt(unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut ru) })?;
        Ok(Self::from_rusage(&ru))
    }

    /// CPU time of the calling thread so far (`RUSAGE_THREAD`).
    ///
    /// # Panics
    /// Never: `getrusage(RUSAGE_THREAD)` cannot fail with a valid pointer; zero is returned if it does.
    pub fn this_thread() -> Self {
        // SAFETY: rusage is plain old data; all-zero is a valid value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a valid, writable rusage.
        if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &raw mut ru) } != 0 {
            return Self::default();
        }
        Self::from_rusage(&ru)
    }

    /// `self - earlier`, saturating at zero.
    #[must_use]
    pub fn since(self, earlier: Self) -> Self {
        Self {
            user: self.user.saturating_sub(earlier.user),
            sys: self.sys.saturating_sub(earlier.sys),
        }
    }
}

impl std::ops::AddAssign for CpuTime {
    fn add_assign(&mut self, rhs: Self) {
        self.user += rhs.user;
        self.sys += rhs.sys;
    }
}

fn timeval(tv: libc::timeval) -> Duration {
    let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
    let micros = u32::try_from(tv.tv_usec).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(micros.into())
}

/// The running kernel's release string (`uname -r`), or `"unknown"`.
pub fn kernel_release() -> String {
    // SAFETY: utsname is plain old data; all-zero is a valid value.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable utsname.
    if unsafe { libc::uname(&raw mut uts) } != 0 {
        return "unknown".to_owned();
    }
    // SAFETY: uname NUL-terminates `release` inside the array.
    unsafe { CStr::from_ptr(uts.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Resident-memory figures of the calling process from `/proc/self/status`, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rss {
    /// `VmRSS`: resident now.
    pub rss_kb: u64,
    /// `VmHWM`: the peak resident size so far.
    pub hwm_kb: u64,
}

impl Rss {
    /// Reads `VmRSS` and `VmHWM`; zeros if `/proc` is unavailable.
    pub fn now() -> Self {
        let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Self {
            rss_kb: field("VmRSS:"),
            hwm_kb: field("VmHWM:"),
        }
    }
}
