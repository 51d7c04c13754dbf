//! Iteration over the netlink messages of one received datagram.
//!
//! Mirrors `struct nlmsghdr` from `include/uapi/linux/netlink.h` (16 bytes, host order).

use super::{read_u16, read_u32};
use crate::error::{Error, Result};

/// Length of `struct nlmsghdr`.
pub const NLMSG_HDR_LEN: usize = 16;
/// `NLMSG_ERROR`: the payload is `struct nlmsgerr` (errno first).
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a multipart dump.
pub const NLMSG_DONE: u16 = 3;
/// `NLM_F_MULTI`: part of a multipart reply.
pub const NLM_F_MULTI: u16 = 0x2;
/// `NLM_F_DUMP_INTR`: the dump was inconsistent (the table changed during it).
pub const NLM_F_DUMP_INTR: u16 = 0x10;
/// `SOCK_DIAG_BY_FAMILY`, the message type of `inet_diag` replies and destroy events.
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;

/// One netlink message, borrowed from the datagram.
#[derive(Debug, Clone, Copy)]
pub struct NlMsg<'a> {
    /// `nlmsg_type`.
    pub msg_type: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// The payload after the 16-byte header, `nlmsg_len - 16` bytes.
    pub payload: &'a [u8],
}

impl NlMsg<'_> {
    /// For an `NLMSG_ERROR` message, the negative errno it carries (0 means ACK).
    pub fn error_code(&self) -> Option<i32> {
        (self.msg_type == NLMSG_ERROR)
            .then(|| read_u32(self.payload, 0).map(|v| i32::from_ne_bytes(v.to_ne_bytes())))
            .flatten()
    }
}

/// Iterator over the messages of one datagram.
///
/// A message whose `nlmsg_len` is impossible (shorter than the header or longer than what
/// is left) yields one `Err` and ends the iteration: without a trustworthy length there is
/// no way to find the next message. Messages before it were already yielded.
pub struct NlMsgIter<'a> {
    buf: &'a [u8],
    off: usize,
}

impl<'a> NlMsgIter<'a> {
    /// Iterates over the messages in `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, off: 0 }
    }
}

impl<'a> Iterator for NlMsgIter<'a> {
    type Item = Result<NlMsg<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.off..)?;
        if rest.is_empty() {
            return None;
        }
        let start = self.off;
        let Some(len) = read_u32(rest, 0).map(|l| l as usize) else {
            self.off = self.buf.len();
            return Some(Err(Error::malformed("netlink header truncated", start)));
        };
        if len < NLMSG_HDR_LEN || len > rest.len() {
            self.off = self.buf.len();
            return Some(Err(Error::malformed("nlmsg_len out of bounds", start)));
        }
        // NLMSG_ALIGN: messages start on 4-byte boundaries.
        self.off = (start + len + 3) & !3;
        Some(Ok(NlMsg {
            msg_type: read_u16(rest, 4).unwrap_or_default(),
            flags: read_u16(rest, 6).unwrap_or_default(),
            seq: read_u32(rest, 8).unwrap_or_default(),
            payload: &rest[NLMSG_HDR_LEN..len],
        }))
    }
}
