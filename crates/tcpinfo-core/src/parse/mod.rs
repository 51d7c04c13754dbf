//! Zero-copy views over netlink `sock_diag` replies.
//!
//! Nothing here copies or allocates: every view borrows the receive buffer and reads
//! fields at fixed offsets. Written by hand rather than with
//! `netlink-packet-sock-diag`'s parsers because that crate copies every attribute into an
//! owned `Vec` and assumes a fixed 232-byte `tcp_info`; on the per-socket hot path we need
//! borrowed slices and length-aware reads (see `docs/internals/parse/design.md`).

pub mod attrs;
pub mod diag_msg;
pub mod nlmsg;
pub mod tcp_info;

pub(crate) fn read_u16(b: &[u8], off: usize) -> Option<u16> {
    b.get(off..off + 2)
        .map(|s| u16::from_ne_bytes([s[0], s[1]]))
}

pub(crate) fn read_u32(b: &[u8], off: usize) -> Option<u32> {
    b.get(off..off + 4)
        .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

pub(crate) fn read_u64(b: &[u8], off: usize) -> Option<u64> {
    b.get(off..off + 8)
        .map(|s| u64::from_ne_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
}
