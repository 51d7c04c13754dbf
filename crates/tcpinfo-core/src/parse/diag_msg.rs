//! `struct inet_diag_msg` (72 bytes), the header of every `inet_diag` reply.
//!
//! Mirrors `include/uapi/linux/inet_diag.h`. Ports and addresses are in network byte
//! order, everything else in host order.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::attrs::Attrs;
use super::read_u32;
use crate::error::{Error, Result};

/// Length of `struct inet_diag_msg`; attributes follow at `NLMSG_ALIGN(72) = 72`.
pub const INET_DIAG_MSG_LEN: usize = 72;
/// `AF_INET`.
pub const AF_INET: u8 = 2;
/// `AF_INET6`.
pub const AF_INET6: u8 = 10;

/// A borrowed `inet_diag_msg`.
#[derive(Debug, Clone, Copy)]
pub struct InetDiagMsg<'a>(&'a [u8; INET_DIAG_MSG_LEN]);

impl<'a> InetDiagMsg<'a> {
    /// Views the first 72 bytes of `payload`.
    ///
    /// # Errors
    /// [`Error::Malformed`] when `payload` is shorter than 72 bytes.
    pub fn new(payload: &'a [u8]) -> Result<Self> {
        payload
            .get(..INET_DIAG_MSG_LEN)
            .and_then(|s| s.try_into().ok())
            .map(Self)
            .ok_or_else(|| Error::malformed("inet_diag_msg shorter than 72 bytes", payload.len()))
    }

    /// The raw 72 bytes (M-Lab's `RawIDM`).
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
    /// `idiag_family`: `AF_INET` (2) or `AF_INET6` (10).
    pub fn family(&self) -> u8 {
        self.0[0]
    }
    /// `idiag_state`: TCP state (1 = ESTABLISHED … 10 = LISTEN).
    pub fn state(&self) -> u8 {
        self.0[1]
    }
    /// `idiag_timer`: 0 off, 1 retransmit, 2 keepalive, 3 TIME_WAIT, 4 zero-window probe.
    pub fn timer(&self) -> u8 {
        self.0[2]
    }
    /// `idiag_retrans`: retransmits or probes of the running timer.
    pub fn retrans(&self) -> u8 {
        self.0[3]
    }
    /// `id.idiag_sport`, the local port (converted from network order).
    pub fn sport(&self) -> u16 {
        u16::from_be_bytes([self.0[4], self.0[5]])
    }
    /// `id.idiag_dport`, the remote port (converted from network order).
    pub fn dport(&self) -> u16 {
        u16::from_be_bytes([self.0[6], self.0[7]])
    }
    /// `id.idiag_src`: the local address.
    pub fn src(&self) -> IpAddr {
        self.addr(8)
    }
    /// `id.idiag_dst`: the remote address.
    pub fn dst(&self) -> IpAddr {
        self.addr(24)
    }
    /// `id.idiag_if`: interface the socket is bound to (0 = none).
    pub fn ifindex(&self) -> u32 {
        read_u32(self.0, 40).unwrap_or_default()
    }
    /// `id.idiag_cookie`: the kernel's unique socket cookie (`cookie[1] << 32 | cookie[0]`).
    pub fn cookie(&self) -> u64 {
        let lo = u64::from(read_u32(self.0, 44).unwrap_or_default());
        let hi = u64::from(read_u32(self.0, 48).unwrap_or_default());
        hi << 32 | lo
    }
    /// `idiag_expires`: ms until the timer fires.
    pub fn expires(&self) -> u32 {
        read_u32(self.0, 52).unwrap_or_default()
    }
    /// `idiag_rqueue`: bytes not yet read by the application (LISTEN: accept backlog).
    pub fn rqueue(&self) -> u32 {
        read_u32(self.0, 56).unwrap_or_default()
    }
    /// `idiag_wqueue`: bytes not yet acknowledged (LISTEN: max backlog).
    pub fn wqueue(&self) -> u32 {
        read_u32(self.0, 60).unwrap_or_default()
    }
    /// `idiag_uid`: owner uid.
    pub fn uid(&self) -> u32 {
        read_u32(self.0, 64).unwrap_or_default()
    }
    /// `idiag_inode`: socket inode (0 for orphans).
    pub fn inode(&self) -> u32 {
        read_u32(self.0, 68).unwrap_or_default()
    }

    fn addr(self, off: usize) -> IpAddr {
        if self.family() == AF_INET {
            IpAddr::V4(Ipv4Addr::new(
                self.0[off],
                self.0[off + 1],
                self.0[off + 2],
                self.0[off + 3],
            ))
        } else {
            let mut b = [0u8; 16];
            b.copy_from_slice(&self.0[off..off + 16]);
            IpAddr::V6(Ipv6Addr::from(b))
        }
    }
}

/// Splits an `inet_diag` reply payload into its header and attributes.
///
/// # Errors
/// [`Error::Malformed`] when the header is short or an attribute length is impossible.
pub fn parse_diag(payload: &[u8]) -> Result<(InetDiagMsg<'_>, Attrs<'_>)> {
    let msg = InetDiagMsg::new(payload)?;
    let attrs = Attrs::parse(payload, INET_DIAG_MSG_LEN)?;
    Ok((msg, attrs))
}
