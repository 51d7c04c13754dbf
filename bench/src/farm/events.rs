//! The small I/O pieces of a worker's event loop: epoll, the stdin control pipe, and draining
//! a non-blocking socket.

use std::io::{self, ErrorKind, Read};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::sys::cvt;

/// Reads a non-blocking socket until it would block; returns bytes read and whether EOF came.
pub fn drain(mut end: &TcpStream) -> io::Result<(u64, bool)> {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        match end.read(&mut buf) {
            Ok(0) => return Ok((total, true)),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok((total, false)),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// `epoll_ctl(op)` of `fd` for `EPOLLIN` (level-triggered), with `tag` as the event data.
pub fn epoll_ctl(epoll: &OwnedFd, op: i32, fd: RawFd, tag: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: tag,
    };
    // SAFETY: `ev` is a valid epoll_event; the kernel ignores it for EPOLL_CTL_DEL.
    cvt(unsafe { libc::epoll_ctl(epoll.as_raw_fd(), op, fd, &raw mut ev) }).map(drop)
}

/// `epoll_wait` into `events`; an interrupted wait returns 0 events.
pub fn epoll_wait(
    epoll: &OwnedFd,
    events: &mut [libc::epoll_event],
    timeout_ms: i32,
) -> io::Result<usize> {
    let max = i32::try_from(events.len()).unwrap_or(i32::MAX);
    // SAFETY: `events` is writable for `max` entries.
    let ret = unsafe { libc::epoll_wait(epoll.as_raw_fd(), events.as_mut_ptr(), max, timeout_ms) };
    match cvt(ret) {
        Ok(n) => Ok(usize::try_from(n).unwrap_or(0)),
        Err(e) if e.kind() == ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

/// Reads the control pipe: true for "go" (any bytes), false for EOF or an error (stop).
pub fn read_control() -> bool {
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::read(libc::STDIN_FILENO, buf.as_mut_ptr().cast(), buf.len()) };
    n > 0
}

/// True if stdin (the supervisor's pipe) has reached EOF or errored, without blocking.
pub fn stdin_closed() -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd.
    let n = cvt(unsafe { libc::poll(&raw mut pfd, 1, 0) })?;
    Ok(n > 0)
}
