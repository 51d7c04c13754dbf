//! The kernel side: `NETLINK_SOCK_DIAG` sockets, dump requests, destroy events.
//!
//! Sockets come from `netlink-sys` and requests are built with
//! `netlink-packet-sock-diag`; only the receive path is ours, because it must hand out
//! borrowed messages from one reused buffer (see [`dump`]).

pub mod bytecode;
pub mod destroy;
pub mod dump;
pub mod exact;
pub mod request;

use std::os::fd::AsRawFd;

use crate::error::{Error, Result};

/// `NETLINK_SOCK_DIAG` protocol number.
pub const NETLINK_SOCK_DIAG: isize = 4;

/// Receives one datagram into `buf` with `recv(2)`.
///
/// Returns `Ok(None)` when a non-blocking socket has nothing (`EAGAIN`). A datagram larger
/// than `buf` is an error (`MSG_TRUNC` reports its real size), never silently cut.
pub(crate) fn recv_datagram(
    sock: &netlink_sys::Socket,
    buf: &mut [u8],
    op: &'static str,
) -> Result<Option<usize>> {
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call.
        let n = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
            )
        };
        if n >= 0 {
            #[expect(clippy::cast_sign_loss, reason = "n >= 0 checked above")]
            let n = n as usize;
            if n > buf.len() {
                return Err(Error::malformed(
                    "datagram larger than the receive buffer",
                    n,
                ));
            }
            return Ok(Some(n));
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EAGAIN) => return Ok(None),
            _ => return Err(Error::socket(op, err)),
        }
    }
}

/// Sets `SO_RCVBUFFORCE` (needs `CAP_NET_ADMIN`), falling back to `SO_RCVBUF`.
pub(crate) fn set_rcvbuf(sock: &netlink_sys::Socket, bytes: usize) -> Result<()> {
    let val = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: passes a pointer to a live c_int and its exact size.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&raw const val).cast(),
                socklen_of::<libc::c_int>(),
            )
        };
        if rc == 0 {
            return Ok(());
        }
    }
    Err(Error::socket(
        "setsockopt SO_RCVBUF",
        std::io::Error::last_os_error(),
    ))
}

/// Sets `SO_RCVTIMEO` so that a blocking `recv` can never hang forever.
pub(crate) fn set_recv_timeout(
    sock: &netlink_sys::Socket,
    timeout: std::time::Duration,
) -> Result<()> {
    let tv = libc::timeval {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_usec: libc::suseconds_t::from(timeout.subsec_micros()),
    };
    // SAFETY: passes a pointer to a live timeval and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const tv).cast(),
            socklen_of::<libc::timeval>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::socket(
            "setsockopt SO_RCVTIMEO",
            std::io::Error::last_os_error(),
        ))
    }
}

/// `sizeof(T)` as a `socklen_t`, for small C option structs.
fn socklen_of<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(std::mem::size_of::<T>()).unwrap_or(libc::socklen_t::MAX)
}
