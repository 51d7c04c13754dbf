//! One persistent socket that runs `inet_diag` dumps and hands out each reply borrowed
//! from a single reused receive buffer.

use std::time::Duration;

use netlink_sys::{Socket, SocketAddr};

use super::request::{build_dump_request, DumpSpec, TCPDIAG_GETSOCK};
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

    /// Runs one dump of `spec`, filtered in the kernel by `bytecode` (an
    /// `INET_DIAG_REQ_BYTECODE` program; empty for none), calling `on_msg` with the payload
    /// of every reply.
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
        bytecode: &[u8],
        stats: &mut DumpStats,
        mut on_msg: impl FnMut(&[u8]),
    ) -> Result<DumpEnd> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let req = build_dump_request(spec, bytecode, seq);
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
            if let Some(end) =
                read_datagram(&self.buf[..n], seq, &mut interrupted, stats, &mut on_msg)?
            {
                return Ok(end);
            }
        }
    }
}

/// Handles one datagram of the dump with sequence number `seq`: replies go to `on_msg`,
/// other sequence numbers are skipped, `NLM_F_DUMP_INTR` is remembered in `interrupted`.
/// Returns how the dump ended if this datagram ended it.
///
/// # Errors
/// [`Error::Kernel`] for `NLMSG_ERROR` or a negative `NLMSG_DONE` status.
pub fn read_datagram(
    datagram: &[u8],
    seq: u32,
    interrupted: &mut bool,
    stats: &mut DumpStats,
    on_msg: &mut impl FnMut(&[u8]),
) -> Result<Option<DumpEnd>> {
    for msg in NlMsgIter::new(datagram) {
        // A corrupt header ends this datagram only; the dump goes on with the next.
        let Ok(msg) = msg else {
            stats.malformed += 1;
            break;
        };
        if msg.seq != seq {
            continue;
        }
        *interrupted |= msg.flags & NLM_F_DUMP_INTR != 0;
        match msg.msg_type {
            SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK => {
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
                return Ok(Some(if *interrupted {
                    DumpEnd::Interrupted
                } else {
                    DumpEnd::Done
                }));
            }
            _ => {}
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = 16 + payload.len();
        let mut m = Vec::new();
        m.extend_from_slice(&u32::try_from(len).unwrap().to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(payload);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    fn run(datagrams: &[Vec<u8>], seq: u32) -> (Result<Option<DumpEnd>>, Vec<Vec<u8>>, DumpStats) {
        let mut seen = Vec::new();
        let mut stats = DumpStats::default();
        let mut interrupted = false;
        for d in datagrams {
            let r = read_datagram(d, seq, &mut interrupted, &mut stats, &mut |p: &[u8]| {
                seen.push(p.to_vec());
            });
            if !matches!(r, Ok(None)) {
                return (r, seen, stats);
            }
        }
        (Ok(None), seen, stats)
    }

    #[test]
    fn done_ends_the_dump_and_stale_replies_are_skipped() {
        let d1 = [msg(20, 2, 6, b"old!"), msg(20, 2, 7, b"aaaa")].concat();
        let d2 = [msg(20, 2, 7, b"bbbb"), msg(3, 2, 7, &0i32.to_ne_bytes())].concat();
        let (r, seen, stats) = run(&[d1, d2], 7);
        assert_eq!(r.unwrap(), Some(DumpEnd::Done));
        assert_eq!(seen, vec![b"aaaa".to_vec(), b"bbbb".to_vec()]);
        assert_eq!(stats.messages, 2);
    }

    #[test]
    fn dump_intr_marks_the_dump_interrupted() {
        let d = [
            msg(20, 2 | NLM_F_DUMP_INTR, 1, b"aaaa"),
            msg(3, 2, 1, &0i32.to_ne_bytes()),
        ]
        .concat();
        assert_eq!(run(&[d], 1).0.unwrap(), Some(DumpEnd::Interrupted));
    }

    /// A multipart reply over several datagrams with the flag on one message in the middle
    /// (where a dumper that calls `nl_dump_check_consistent` per message would put it):
    /// every reply is still delivered and counted, the dump ends `Interrupted`.
    #[test]
    fn dump_intr_on_one_part_of_a_multipart_reply_marks_the_whole_dump() {
        let d1 = [msg(20, 2, 9, b"aaaa"), msg(20, 2, 9, b"bbbb")].concat();
        let d2 = [msg(20, 2 | NLM_F_DUMP_INTR, 9, b"cccc")].concat();
        let d3 = [msg(20, 2, 9, b"dddd"), msg(3, 2, 9, &0i32.to_ne_bytes())].concat();
        let (r, seen, stats) = run(&[d1, d2, d3], 9);
        assert_eq!(r.unwrap(), Some(DumpEnd::Interrupted));
        assert_eq!(seen.len(), 4, "the replies of an interrupted dump are kept");
        assert_eq!(stats.messages, 4);
    }

    /// Where `netlink_dump_done` (af_netlink.c) puts the flag: on `NLMSG_DONE` alone.
    #[test]
    fn dump_intr_on_nlmsg_done_alone_marks_the_dump() {
        let d1 = [msg(20, 2, 4, b"aaaa")].concat();
        let d2 = msg(3, 2 | NLM_F_DUMP_INTR, 4, &0i32.to_ne_bytes());
        assert_eq!(run(&[d1, d2], 4).0.unwrap(), Some(DumpEnd::Interrupted));
    }

    /// The flag on a stale reply (an abandoned earlier dump) says nothing of this one.
    #[test]
    fn dump_intr_of_an_earlier_dump_is_ignored() {
        let d = [
            msg(20, 2 | NLM_F_DUMP_INTR, 3, b"old!"),
            msg(3, 2 | NLM_F_DUMP_INTR, 3, &0i32.to_ne_bytes()),
            msg(20, 2, 4, b"aaaa"),
            msg(3, 2, 4, &0i32.to_ne_bytes()),
        ]
        .concat();
        let (r, seen, _) = run(&[d], 4);
        assert_eq!(r.unwrap(), Some(DumpEnd::Done));
        assert_eq!(seen, vec![b"aaaa".to_vec()]);
    }

    #[test]
    fn kernel_errors_are_errors() {
        let err = msg(2, 0, 1, &(-libc::EINVAL).to_ne_bytes());
        assert!(
            matches!(run(&[err], 1).0, Err(Error::Kernel { errno, .. }) if errno == libc::EINVAL)
        );
        let done = [
            msg(20, 2, 1, b"aaaa"),
            msg(3, 2, 1, &(-libc::ENOBUFS).to_ne_bytes()),
        ]
        .concat();
        let (r, seen, _) = run(&[done], 1);
        assert!(matches!(r, Err(Error::Kernel { errno, .. }) if errno == libc::ENOBUFS));
        assert_eq!(
            seen.len(),
            1,
            "replies before the failure were still delivered"
        );
    }

    #[test]
    fn a_corrupt_datagram_is_counted_and_the_dump_goes_on() {
        let mut bad = msg(20, 2, 1, b"aaaa");
        bad[0] = 0xFF; // nlmsg_len past the end
        let good = [msg(20, 2, 1, b"bbbb"), msg(3, 2, 1, &0i32.to_ne_bytes())].concat();
        let (r, seen, stats) = run(&[bad, good], 1);
        assert_eq!(r.unwrap(), Some(DumpEnd::Done));
        assert_eq!(seen, vec![b"bbbb".to_vec()]);
        assert_eq!(stats.malformed, 1);
    }
}
