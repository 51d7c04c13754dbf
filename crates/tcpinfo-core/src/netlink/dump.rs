//! One persistent socket that runs `inet_diag` dumps and hands out each reply borrowed
//! from a single reused receive buffer.

use std::time::Duration;

use netlink_sys::{Socket, SocketAddr};

use super::request::{build_dump_request, DumpSpec};
use super::{recv_datagram, set_recv_timeout, NETLINK_SOCK_DIAG};
use crate::error::{Error, Result};
use crate::parse::nlmsg::{
    NlMsgIter, NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP_INTR, SOCK_DIAG_BY_FAMILY,
};

/// Default user-space receive buffer: the kernel fills at most ~32 KiB per `recvmsg`, so
/// 64 KiB always holds one datagram.
pub const DEFAULT_RECV_BUFFER_BYTES: usize = 64 * 1024;
/// A blocking `recv` of a dump gives up after this long (the kernel never needs it).
pub const DEFAULT_RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// Counters of one dump.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DumpStats {
    /// `recvmsg` calls made.
    pub recv_calls: u32,
    /// Bytes received.
    pub bytes: u64,
    /// `SOCK_DIAG_BY_FAMILY` messages handed to the visitor.
    pub messages: u32,
    /// Datagrams whose netlink framing was corrupt; their remaining bytes were skipped.
    pub malformed: u32,
}

/// How a dump ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpEnd {
    /// `NLMSG_DONE` with a consistent table.
    Done,
    /// `NLMSG_DONE`, but a reply carried `NLM_F_DUMP_INTR`: sockets may be missing or
    /// doubled, so absence from this dump proves nothing.
    Interrupted,
}

/// A `NETLINK_SOCK_DIAG` socket for dumps.
pub struct DumpSocket {
    sock: Socket,
    buf: Vec<u8>,
    seq: u32,
}

impl DumpSocket {
    /// Opens and binds the socket with a user-space buffer of `recv_buffer_bytes`.
    ///
    /// # Errors
    /// [`Error::Socket`] when the socket cannot be created or configured.
    pub fn open(recv_buffer_bytes: usize) -> Result<Self> {
        let mut sock = Socket::new(NETLINK_SOCK_DIAG).map_err(|e| Error::socket("socket", e))?;
        sock.bind_auto().map_err(|e| Error::socket("bind", e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| Error::socket("connect", e))?;
        set_recv_timeout(&sock, DEFAULT_RECV_TIMEOUT)?;
        Ok(Self {
            sock,
            buf: vec![0; recv_buffer_bytes.max(DEFAULT_RECV_BUFFER_BYTES / 2)],
            seq: 0,
        })
    }

    /// Runs one dump of `spec`, calling `on_msg` with the payload of every reply.
    ///
    /// Replies of earlier, abandoned dumps (other sequence numbers) are skipped.
    ///
    /// # Errors
    /// [`Error::Kernel`] when the kernel rejects the request or fails the dump,
    /// [`Error::Socket`] on a send/recv failure, [`Error::Malformed`] for a corrupt
    /// datagram. The visitor has seen every reply received before the error.
    pub fn dump(
        &mut self,
        spec: DumpSpec,
        stats: &mut DumpStats,
        mut on_msg: impl FnMut(&[u8]),
    ) -> Result<DumpEnd> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let req = build_dump_request(spec, seq);
        self.sock
            .send(&req, 0)
            .map_err(|e| Error::socket("send dump request", e))?;
        let mut interrupted = false;
        loop {
            let Some(n) = recv_datagram(&self.sock, &mut self.buf, "recv dump")? else {
                return Err(Error::socket(
                    "recv dump",
                    std::io::ErrorKind::WouldBlock.into(),
                ));
            };
            stats.recv_calls += 1;
            stats.bytes += n as u64;
            for msg in NlMsgIter::new(&self.buf[..n]) {
                // A corrupt header ends this datagram only; the dump goes on with the next.
                let Ok(msg) = msg else {
                    stats.malformed += 1;
                    break;
                };
                if msg.seq != seq {
                    continue;
                }
                interrupted |= msg.flags & NLM_F_DUMP_INTR != 0;
                match msg.msg_type {
                    SOCK_DIAG_BY_FAMILY => {
                        stats.messages += 1;
                        on_msg(msg.payload);
                    }
                    NLMSG_DONE | NLMSG_ERROR => {
                        let code = crate::parse::read_u32(msg.payload, 0)
                            .map_or(0, |v| i32::from_ne_bytes(v.to_ne_bytes()));
                        if code < 0 {
                            return Err(Error::Kernel {
                                op: "inet_diag dump",
                                errno: -code,
                            });
                        }
                        return Ok(if interrupted {
                            DumpEnd::Interrupted
                        } else {
                            DumpEnd::Done
                        });
                    }
                    _ => {}
                }
            }
        }
    }
}
