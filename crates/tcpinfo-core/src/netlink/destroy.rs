//! Subscription to the kernel's TCP destroy multicast groups (what `ss -E` uses).
//!
//! `SKNLGRP_INET_TCP_DESTROY` (1) and `SKNLGRP_INET6_TCP_DESTROY` (3) from
//! `include/uapi/linux/sock_diag.h`. Each event is a `SOCK_DIAG_BY_FAMILY` message with an
//! `inet_diag_msg` (same cookie as in dumps), `INET_DIAG_PROTOCOL` and the final
//! `INET_DIAG_INFO`, sent when the full socket is freed. Unprivileged sockets may join.

use netlink_sys::{Socket, SocketAddr};

use super::{recv_datagram, set_rcvbuf, NETLINK_SOCK_DIAG};
use crate::error::{Error, Result};
use crate::parse::diag_msg::{AF_INET, AF_INET6};
use crate::parse::nlmsg::{NlMsgIter, SOCK_DIAG_BY_FAMILY};

/// `SKNLGRP_INET_TCP_DESTROY`.
const SKNLGRP_INET_TCP_DESTROY: u32 = 1;
/// `SKNLGRP_INET6_TCP_DESTROY`.
const SKNLGRP_INET6_TCP_DESTROY: u32 = 3;
/// Default kernel receive buffer for events: ~20k events of ~400 bytes between two drains
/// before the kernel drops (and we count) any.
pub const DEFAULT_EVENT_RCVBUF_BYTES: usize = 8 * 1024 * 1024;

/// Counters of one drain.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainStats {
    /// Events handed to the visitor.
    pub events: u32,
    /// Times the kernel reported `ENOBUFS`: events were lost.
    pub overruns: u32,
    /// Datagrams with corrupt framing.
    pub malformed: u32,
}

/// A non-blocking socket joined to the destroy groups of the chosen families.
pub struct DestroySubscription {
    sock: Socket,
    buf: Vec<u8>,
}

impl DestroySubscription {
    /// Joins the destroy groups of `families` (`AF_INET`, `AF_INET6`).
    ///
    /// # Errors
    /// [`Error::Socket`] when the socket cannot be created, bound or joined.
    pub fn open(families: &[u8], rcvbuf_bytes: usize, recv_buffer_bytes: usize) -> Result<Self> {
        let mut sock = Socket::new(NETLINK_SOCK_DIAG).map_err(|e| Error::socket("socket", e))?;
        sock.bind(&SocketAddr::new(0, 0))
            .map_err(|e| Error::socket("bind", e))?;
        for &f in families {
            let group = match f {
                AF_INET => SKNLGRP_INET_TCP_DESTROY,
                AF_INET6 => SKNLGRP_INET6_TCP_DESTROY,
                _ => continue,
            };
            sock.add_membership(group)
                .map_err(|e| Error::socket("join destroy group", e))?;
        }
        set_rcvbuf(&sock, rcvbuf_bytes)?;
        sock.set_non_blocking(true)
            .map_err(|e| Error::socket("set non-blocking", e))?;
        Ok(Self {
            sock,
            buf: vec![0; recv_buffer_bytes],
        })
    }

    /// Reads every queued event without blocking, calling `on_event` with each payload.
    ///
    /// # Errors
    /// [`Error::Socket`] on a receive failure other than `EAGAIN` or `ENOBUFS`.
    pub fn drain(&mut self, stats: &mut DrainStats, mut on_event: impl FnMut(&[u8])) -> Result<()> {
        loop {
            let n = match recv_datagram(&self.sock, &mut self.buf, "recv destroy event") {
                Ok(Some(n)) => n,
                Ok(None) => return Ok(()),
                Err(Error::Socket { source, .. })
                    if source.raw_os_error() == Some(libc::ENOBUFS) =>
                {
                    stats.overruns += 1;
                    continue;
                }
                Err(Error::Malformed { .. }) => {
                    stats.malformed += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            for msg in NlMsgIter::new(&self.buf[..n]) {
                let Ok(msg) = msg else {
                    stats.malformed += 1;
                    break;
                };
                if msg.msg_type == SOCK_DIAG_BY_FAMILY {
                    stats.events += 1;
                    on_event(msg.payload);
                }
            }
        }
    }
}
