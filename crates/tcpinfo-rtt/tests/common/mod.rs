//! Test helpers: TCP frames of every supported link type and capture files written
//! byte by byte (pcap with µs/ns magic, pcapng with any `if_tsresol`).
#![expect(dead_code, reason = "each test file uses a subset")]
#![expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "test data sizes are small"
)]

use etherparse::{PacketBuilder, TcpOptionElement};
use tcpinfo_rtt::LinkType;

/// One TCP segment's description.
#[derive(Clone, Copy)]
pub struct Tcp {
    pub v6: bool,
    pub src: u8,
    pub dst: u8,
    pub sport: u16,
    pub dport: u16,
    pub syn: bool,
    pub ack: bool,
    pub ts: Option<(u32, u32)>,
    pub payload: usize,
}

impl Tcp {
    pub fn new(src: u8, sport: u16, dst: u8, dport: u16) -> Self {
        Self {
            v6: false,
            src,
            dst,
            sport,
            dport,
            syn: false,
            ack: true,
            ts: None,
            payload: 0,
        }
    }
    pub fn ts(mut self, tsval: u32, tsecr: u32) -> Self {
        self.ts = Some((tsval, tsecr));
        self
    }
}

fn addr4(last: u8) -> [u8; 4] {
    [10, 9, 0, last]
}

fn addr6(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0xfd;
    a[15] = last;
    a
}

/// The IP packet (IPv4 or IPv6 header, TCP header with options, zero payload bytes).
pub fn ip_packet(t: &Tcp) -> Vec<u8> {
    let b = if t.v6 {
        PacketBuilder::ipv6(addr6(t.src), addr6(t.dst), 64)
    } else {
        PacketBuilder::ipv4(addr4(t.src), addr4(t.dst), 64)
    };
    let mut b = b.tcp(t.sport, t.dport, 1000, 65535);
    if t.syn {
        b = b.syn();
    }
    if t.ack {
        b = b.ack(1);
    }
    if let Some((v, e)) = t.ts {
        b = b
            .options(&[
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::Timestamp(v, e),
            ])
            .unwrap();
    }
    let mut out = Vec::new();
    b.write(&mut out, &vec![0x61; t.payload]).unwrap();
    out
}

/// Wraps an IP packet in a link header.
pub fn frame(link: LinkType, ip: &[u8]) -> Vec<u8> {
    let ethertype: [u8; 2] = if ip[0] >> 4 == 6 {
        [0x86, 0xdd]
    } else {
        [0x08, 0x00]
    };
    let mut out = Vec::new();
    match link {
        LinkType::Ethernet => {
            out.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
            out.extend_from_slice(&ethertype);
        }
        LinkType::LinuxSll => {
            out.extend_from_slice(&[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
            out.extend_from_slice(&ethertype);
        }
        LinkType::LinuxSll2 => {
            out.extend_from_slice(&ethertype);
            out.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
        }
        LinkType::RawIp => {}
    }
    out.extend_from_slice(ip);
    out
}

/// Ethernet with an 802.1Q tag (and optionally a second, 802.1ad outer tag).
pub fn vlan_frame(ip: &[u8], double: bool) -> Vec<u8> {
    let ethertype: [u8; 2] = if ip[0] >> 4 == 6 {
        [0x86, 0xdd]
    } else {
        [0x08, 0x00]
    };
    let mut out = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    if double {
        out.extend_from_slice(&[0x88, 0xa8, 0x00, 0x07]);
    }
    out.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a]);
    out.extend_from_slice(&ethertype);
    out.extend_from_slice(ip);
    out
}

/// A classic pcap file (little-endian), microsecond or nanosecond magic.
pub fn pcap_file(linktype: u32, nano: bool, frames: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let magic: u32 = if nano { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    out.extend_from_slice(&magic.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&linktype.to_le_bytes());
    for (t, data) in frames {
        let sec = (t / 1_000_000_000) as u32;
        let frac = (t % 1_000_000_000) as u32;
        let frac = if nano { frac } else { frac / 1000 };
        out.extend_from_slice(&sec.to_le_bytes());
        out.extend_from_slice(&frac.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let mut body = body.to_vec();
    while body.len() % 4 != 0 {
        body.push(0);
    }
    let len = (body.len() + 12) as u32;
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&len.to_le_bytes());
}

/// A pcapng file: one section, one interface per entry of `ifaces` (linktype,
/// if_tsresol byte), packets as (interface, time in ns, data).
pub fn pcapng_file(ifaces: &[(u16, u8)], frames: &[(u32, i64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    for (linktype, tsresol) in ifaces {
        let mut idb = Vec::new();
        idb.extend_from_slice(&linktype.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&0u32.to_le_bytes());
        // if_tsresol option (code 9, length 1), then opt_endofopt.
        idb.extend_from_slice(&9u16.to_le_bytes());
        idb.extend_from_slice(&1u16.to_le_bytes());
        idb.extend_from_slice(&[*tsresol, 0, 0, 0]);
        idb.extend_from_slice(&[0, 0, 0, 0]);
        block(&mut out, 1, &idb);
    }
    for (iface, t, data) in frames {
        let r = ifaces[*iface as usize].1;
        let units: u128 = if r & 0b1000_0000 != 0 {
            1u128 << (r & 0x7f)
        } else {
            10u128.pow(u32::from(r))
        };
        let ts = (*t as u128 * units / 1_000_000_000) as u64;
        let mut epb = Vec::new();
        epb.extend_from_slice(&iface.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(data);
        while epb.len() % 4 != 0 {
            epb.push(0);
        }
        block(&mut out, 6, &epb);
    }
    out
}
