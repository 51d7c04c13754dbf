//! Builds `SOCK_DIAG_BY_FAMILY` dump requests (`struct inet_diag_req_v2`, 56 bytes) with
//! `netlink-packet-sock-diag`.

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;

use crate::parse::diag_msg::AF_INET;

/// `IPPROTO_TCP`.
const IPPROTO_TCP: u8 = 6;

/// What to dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DumpSpec {
    /// `AF_INET` or `AF_INET6`.
    pub family: u8,
    /// `idiag_states` bitmask (`1 << state`).
    pub states: u32,
    /// `idiag_ext` attribute request bits.
    pub ext: u8,
}

/// Serializes the dump request for `spec` with sequence number `seq`.
pub fn build_dump_request(spec: DumpSpec, seq: u32) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout_is_inet_diag_req_v2() {
        let b = build_dump_request(
            DumpSpec {
                family: 10,
                states: 0xF37,
                ext: 0xFF,
            },
            7,
        );
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
}
