//! Builds dump requests: `SOCK_DIAG_BY_FAMILY` (`struct inet_diag_req_v2`, 56 bytes) with
//! `netlink-packet-sock-diag`, and the legacy `TCPDIAG_GETSOCK` (`struct inet_diag_req`,
//! 60 bytes, `include/uapi/linux/inet_diag.h`) by hand, since that crate has no type for it.
//!
//! Why the legacy request: the kernel runs it as an `AF_UNSPEC` dump
//! (`inet_diag_dump_compat`), which returns both families in **one** walk of the TCP socket
//! tables. Two `SOCK_DIAG_BY_FAMILY` dumps walk the same tables twice (IPv4 and IPv6 share
//! them), and the walk is the kernel's main cost (docs/BENCHMARKS.md).

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;

use super::bytecode::INET_DIAG_REQ_BYTECODE;
use crate::parse::diag_msg::AF_INET;

/// `IPPROTO_TCP`.
const IPPROTO_TCP: u8 = 6;
/// `TCPDIAG_GETSOCK`: legacy request type; replies carry the same type.
pub const TCPDIAG_GETSOCK: u16 = 18;
/// `AF_UNSPEC`: in a [`DumpSpec`], one legacy dump of every family.
pub const AF_UNSPEC: u8 = 0;
/// Length of the legacy `struct inet_diag_req`.
const INET_DIAG_REQ_LEN: usize = 60;
/// `nlmsghdr` length.
const NLMSG_HDR_LEN: usize = 16;
/// `NLM_F_REQUEST | NLM_F_DUMP`.
const DUMP_FLAGS: u16 = 0x301;

/// What to dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DumpSpec {
    /// `AF_INET`, `AF_INET6`, or [`AF_UNSPEC`] for both in one legacy dump.
    pub family: u8,
    /// `idiag_states` bitmask (`1 << state`).
    pub states: u32,
    /// `idiag_ext` attribute request bits.
    pub ext: u8,
}

/// Serializes the dump request for `spec` with sequence number `seq`, with the filter
/// program `bytecode` (an `INET_DIAG_REQ_BYTECODE` attribute) unless it is empty.
pub fn build_dump_request(spec: DumpSpec, bytecode: &[u8], seq: u32) -> Vec<u8> {
    let mut buf = if spec.family == AF_UNSPEC {
        build_compat_dump_request(spec, seq)
    } else {
        build_v2_dump_request(spec, seq)
    };
    if !bytecode.is_empty() {
        append_bytecode(&mut buf, bytecode);
    }
    buf
}

/// Appends `rtattr { len, INET_DIAG_REQ_BYTECODE }` + the program (a multiple of 4 bytes,
/// so no padding) and fixes `nlmsg_len`. Both request structs take it the same way.
fn append_bytecode(buf: &mut Vec<u8>, bytecode: &[u8]) {
    let attr_len = u16::try_from(4 + bytecode.len()).unwrap_or(u16::MAX);
    buf.extend_from_slice(&attr_len.to_ne_bytes());
    buf.extend_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
    buf.extend_from_slice(bytecode);
    let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    buf[0..4].copy_from_slice(&len.to_ne_bytes());
}

/// `SOCK_DIAG_BY_FAMILY` with `struct inet_diag_req_v2`, built by `netlink-packet-sock-diag`.
fn build_v2_dump_request(spec: DumpSpec, seq: u32) -> Vec<u8> {
    let mut hdr = NetlinkHeader::default();
    hdr.flags = NLM_F_REQUEST | NLM_F_DUMP;
    hdr.sequence_number = seq;
    let socket_id = if spec.family == AF_INET {
        SocketId::new_v4()
    } else {
        SocketId::new_v6()
    };
    let req = InetRequest {
        family: spec.family,
        protocol: IPPROTO_TCP,
        extensions: ExtensionFlags::from_bits_retain(spec.ext),
        states: StateFlags::from_bits_retain(spec.states),
        socket_id,
    };
    let mut packet = NetlinkMessage::new(hdr, SockDiagMessage::InetRequest(req).into());
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    buf
}

/// `nlmsghdr` + legacy `struct inet_diag_req`:
/// `family u8 | src_len u8 | dst_len u8 | ext u8 | id (48) | states u32 | dbs u32`.
/// The kernel ignores `family` on this path and dumps `AF_UNSPEC`.
fn build_compat_dump_request(spec: DumpSpec, seq: u32) -> Vec<u8> {
    let mut b = vec![0u8; NLMSG_HDR_LEN + INET_DIAG_REQ_LEN];
    let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
    b[0..4].copy_from_slice(&len.to_ne_bytes());
    b[4..6].copy_from_slice(&TCPDIAG_GETSOCK.to_ne_bytes());
    b[6..8].copy_from_slice(&DUMP_FLAGS.to_ne_bytes());
    b[8..12].copy_from_slice(&seq.to_ne_bytes());
    let req = NLMSG_HDR_LEN;
    b[req + 3] = spec.ext; // idiag_ext
    b[req + 52..req + 56].copy_from_slice(&spec.states.to_ne_bytes()); // idiag_states, after the 48-byte id
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// M-Lab's states and attributes for `family`.
    fn spec(family: u8) -> DumpSpec {
        DumpSpec {
            family,
            states: 0xF37,
            ext: 0xFF,
        }
    }

    #[test]
    fn request_layout_is_inet_diag_req_v2() {
        let b = build_dump_request(spec(10), &[], 7);
        assert_eq!(b.len(), 16 + 56);
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()), 72);
        assert_eq!(
            u16::from_ne_bytes(b[4..6].try_into().unwrap()),
            20,
            "SOCK_DIAG_BY_FAMILY"
        );
        assert_eq!(u16::from_ne_bytes(b[6..8].try_into().unwrap()), 0x301);
        assert_eq!(u32::from_ne_bytes(b[8..12].try_into().unwrap()), 7);
        assert_eq!(&b[16..20], &[10, 6, 0xFF, 0]);
        assert_eq!(u32::from_ne_bytes(b[20..24].try_into().unwrap()), 0xF37);
    }

    #[test]
    fn unspec_builds_the_legacy_inet_diag_req() {
        let b = build_dump_request(spec(AF_UNSPEC), &[], 9);
        assert_eq!(b.len(), 16 + 60);
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()), 76);
        assert_eq!(
            u16::from_ne_bytes(b[4..6].try_into().unwrap()),
            18,
            "TCPDIAG_GETSOCK"
        );
        assert_eq!(u16::from_ne_bytes(b[6..8].try_into().unwrap()), 0x301);
        assert_eq!(u32::from_ne_bytes(b[8..12].try_into().unwrap()), 9);
        assert_eq!(b[19], 0xFF, "idiag_ext");
        assert_eq!(
            u32::from_ne_bytes(b[68..72].try_into().unwrap()),
            0xF37,
            "idiag_states"
        );
        assert_eq!(&b[72..76], &[0; 4], "idiag_dbs");
    }

    #[test]
    fn bytecode_is_appended_as_an_rtattr_and_counted_in_nlmsg_len() {
        let prog = [1u8, 4, 8, 0, 0, 4, 4, 0];
        for (family, body) in [(AF_UNSPEC, 60), (10, 56)] {
            let b = build_dump_request(spec(family), &prog, 3);
            let at = 16 + body;
            assert_eq!(b.len(), at + 4 + prog.len());
            assert_eq!(
                u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize,
                b.len()
            );
            assert_eq!(
                u16::from_ne_bytes(b[at..at + 2].try_into().unwrap()),
                12,
                "rta_len"
            );
            assert_eq!(
                u16::from_ne_bytes(b[at + 2..at + 4].try_into().unwrap()),
                1,
                "INET_DIAG_REQ_BYTECODE"
            );
            assert_eq!(&b[at + 4..], &prog);
            assert_eq!(
                &b[4..at],
                &build_dump_request(spec(family), &[], 3)[4..],
                "the request itself is unchanged"
            );
        }
    }
}
