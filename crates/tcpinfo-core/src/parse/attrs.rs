//! The `rtattr` list after `inet_diag_msg`, indexed by attribute type.
//!
//! Mirrors `enum { INET_DIAG_NONE, INET_DIAG_MEMINFO, … }` from
//! `include/uapi/linux/inet_diag.h` (types 1–22 as of Linux 7.2-pre). Payloads stay
//! borrowed; unknown types are kept like known ones, so nothing the kernel sent is lost.

use crate::error::{Error, Result};

/// `struct rtattr` / `struct nlattr` header length.
pub const RTA_HDR_LEN: usize = 4;
/// Attribute types we index directly. M-Lab caps its `Attributes` array at
/// `2 * INET_DIAG_MAX`; 48 leaves room for future kernels. Larger types are counted in
/// [`Attrs::dropped`] and otherwise ignored.
pub const MAX_ATTR_SLOTS: usize = 48;
/// `NLA_TYPE_MASK`: strips `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER`.
const NLA_TYPE_MASK: u16 = 0x3FFF;

/// `INET_DIAG_MEMINFO` (16 B `inet_diag_meminfo`).
pub const INET_DIAG_MEMINFO: u16 = 1;
/// `INET_DIAG_INFO` (`tcp_info`, 104–280 B).
pub const INET_DIAG_INFO: u16 = 2;
/// `INET_DIAG_VEGASINFO`.
pub const INET_DIAG_VEGASINFO: u16 = 3;
/// `INET_DIAG_CONG`: congestion control name, NUL-terminated.
pub const INET_DIAG_CONG: u16 = 4;
/// `INET_DIAG_TOS`.
pub const INET_DIAG_TOS: u16 = 5;
/// `INET_DIAG_TCLASS`.
pub const INET_DIAG_TCLASS: u16 = 6;
/// `INET_DIAG_SKMEMINFO` (`__u32[SK_MEMINFO_VARS]`).
pub const INET_DIAG_SKMEMINFO: u16 = 7;
/// `INET_DIAG_SHUTDOWN`.
pub const INET_DIAG_SHUTDOWN: u16 = 8;
/// `INET_DIAG_DCTCPINFO`.
pub const INET_DIAG_DCTCPINFO: u16 = 9;
/// `INET_DIAG_PROTOCOL`.
pub const INET_DIAG_PROTOCOL: u16 = 10;
/// `INET_DIAG_SKV6ONLY`.
pub const INET_DIAG_SKV6ONLY: u16 = 11;
/// `INET_DIAG_PAD`: alignment filler, no payload.
pub const INET_DIAG_PAD: u16 = 14;
/// `INET_DIAG_MARK` (needs `CAP_NET_ADMIN`).
pub const INET_DIAG_MARK: u16 = 15;
/// `INET_DIAG_BBRINFO`.
pub const INET_DIAG_BBRINFO: u16 = 16;
/// `INET_DIAG_CLASS_ID`.
pub const INET_DIAG_CLASS_ID: u16 = 17;
/// `INET_DIAG_MD5SIG`.
pub const INET_DIAG_MD5SIG: u16 = 18;
/// `INET_DIAG_ULP_INFO`.
pub const INET_DIAG_ULP_INFO: u16 = 19;
/// `INET_DIAG_CGROUP_ID`.
pub const INET_DIAG_CGROUP_ID: u16 = 21;
/// `INET_DIAG_SOCKOPT`.
pub const INET_DIAG_SOCKOPT: u16 = 22;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u16,
    len: u16,
}

const ABSENT: Span = Span {
    start: u16::MAX,
    len: 0,
};

/// Walks the `rtattr` list of `data` from byte `start`, yielding `(type, offset of the
/// header, payload)` in the kernel's order, then one error and nothing more if an
/// attribute's length is shorter than its header or runs past the end. Fewer than 4
/// trailing bytes can only be alignment padding; they end the walk. The one walker of
/// [`Attrs::parse`], the change fingerprint and the check of filtered-out replies, so
/// that all three accept and reject exactly the same bytes.
pub fn walk(data: &[u8], start: usize) -> AttrWalk<'_> {
    AttrWalk { data, off: start }
}

/// The iterator of [`walk`]: a struct with an inlined `next` (as a `from_fn` closure it
/// stayed an out-of-line call per attribute, 2.7% of a poll's samples at 100k sockets).
#[derive(Debug, Clone)]
pub struct AttrWalk<'a> {
    data: &'a [u8],
    off: usize,
}

impl<'a> Iterator for AttrWalk<'a> {
    type Item = Result<(u16, usize, &'a [u8])>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (data, off) = (self.data, self.off);
        let header = data.get(off..off + RTA_HDR_LEN)?;
        let len = usize::from(u16::from_ne_bytes([header[0], header[1]]));
        let ty = u16::from_ne_bytes([header[2], header[3]]) & NLA_TYPE_MASK;
        match data.get(off + RTA_HDR_LEN..off + len) {
            Some(payload) if len >= RTA_HDR_LEN => {
                self.off = off + ((len + 3) & !3);
                Some(Ok((ty, off, payload)))
            }
            _ => {
                self.off = data.len();
                Some(Err(Error::malformed("rtattr length out of bounds", off)))
            }
        }
    }
}

/// The attributes of one message, indexed by type. 4 bytes per slot, no copies.
#[derive(Debug, Clone, Copy)]
pub struct Attrs<'a> {
    data: &'a [u8],
    spans: [Span; MAX_ATTR_SLOTS],
    max_type: Option<u16>,
    dropped: u16,
}

impl<'a> Attrs<'a> {
    /// Parses the attributes of `data` starting at byte `start`.
    ///
    /// # Errors
    /// [`Error::Malformed`] when an attribute's length is shorter than its header or
    /// runs past the end of the message.
    pub fn parse(data: &'a [u8], start: usize) -> Result<Self> {
        let mut attrs = Attrs {
            data,
            spans: [ABSENT; MAX_ATTR_SLOTS],
            max_type: None,
            dropped: 0,
        };
        for attr in walk(data, start) {
            let (ty, off, payload) = attr?;
            let slot = usize::from(ty);
            let end = off + RTA_HDR_LEN + payload.len();
            if slot < MAX_ATTR_SLOTS && u16::try_from(end).is_ok() {
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "bounded by the check above"
                )]
                let span = Span {
                    start: (off + RTA_HDR_LEN) as u16,
                    len: payload.len() as u16,
                };
                attrs.spans[slot] = span;
                attrs.max_type = Some(attrs.max_type.map_or(ty, |m| m.max(ty)));
            } else {
                attrs.dropped = attrs.dropped.saturating_add(1);
            }
        }
        // Fewer than 4 trailing bytes can only be alignment padding; they are ignored.
        Ok(attrs)
    }

    /// The payload of attribute `ty`, if the kernel sent it.
    pub fn get(&self, ty: u16) -> Option<&'a [u8]> {
        let span = *self.spans.get(usize::from(ty))?;
        (span != ABSENT).then(|| {
            &self.data[usize::from(span.start)..usize::from(span.start) + usize::from(span.len)]
        })
    }

    /// The largest attribute type present, if any.
    pub fn max_type(&self) -> Option<u16> {
        self.max_type
    }

    /// Attributes present, as `(type, payload)` in type order.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &'a [u8])> + '_ {
        let end = self.max_type.map_or(0, |m| usize::from(m) + 1);
        (0..end).filter_map(|t| {
            #[expect(clippy::cast_possible_truncation, reason = "t < MAX_ATTR_SLOTS")]
            let ty = t as u16;
            self.get(ty).map(|p| (ty, p))
        })
    }

    /// Attributes that could not be indexed (type too large, or past the first 64 KiB of
    /// the message): ignored, counted (saturating at `u16::MAX`).
    pub fn dropped(&self) -> u16 {
        self.dropped
    }
}
