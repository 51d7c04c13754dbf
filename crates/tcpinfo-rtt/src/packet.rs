//! Packet parsing: one captured frame (link header, optional VLAN tags, IPv4/IPv6, TCP)
//! down to the fields RTT matching needs: the flow's 4-tuple, the TCP flags and the
//! timestamp option (RFC 7323 §3: kind 8, length 10, TSval then TSecr, big-endian).
//!
//! Link and IP layers are sliced with `etherparse`'s lax slicer, which accepts frames cut
//! short by the capture's snap length (the IP length fields then point past the captured
//! bytes). The TCP header itself, options included, must be complete: a frame cut inside
//! it is counted as truncated. Linux cooked headers (SLL, SLL2) are read here, as
//! `etherparse` 0.21 has no lax SLL entry point. Nothing here panics on any input.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::err::packet::SliceError;
use etherparse::{EtherType, IpNumber, LaxNetSlice, LaxSlicedPacket, TransportSlice};

/// Link-layer header types (pcap `LINKTYPE_*` values) this parser understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1), with any number of 802.1Q/802.1ad tags (up to 3).
    Ethernet,
    /// `LINKTYPE_LINUX_SLL` (113): 16-byte Linux cooked header (`tcpdump -i any`, old).
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276): 20-byte Linux cooked header v2 (`tcpdump -i any`).
    LinuxSll2,
    /// `LINKTYPE_RAW` (101, also DLT 12/14) and `LINKTYPE_IPV4`/`IPV6` (228/229): the
    /// frame starts with the IP header; the version nibble says which.
    RawIp,
}

/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: i32 = 1;
/// `LINKTYPE_RAW`.
pub const LINKTYPE_RAW: i32 = 101;
/// `LINKTYPE_LINUX_SLL`.
pub const LINKTYPE_LINUX_SLL: i32 = 113;
/// `LINKTYPE_LINUX_SLL2`.
pub const LINKTYPE_LINUX_SLL2: i32 = 276;

/// Length of the Linux cooked header v1.
const SLL_HEADER_LEN: usize = 16;
/// Offset of the protocol (EtherType) field in the SLL v1 header.
const SLL_PROTOCOL_OFFSET: usize = 14;
/// Length of the Linux cooked header v2 (its protocol field is at offset 0).
const SLL2_HEADER_LEN: usize = 20;
/// TCP option kinds (RFC 9293 §3.1, RFC 7323 §3).
const TCPOPT_EOL: u8 = 0;
const TCPOPT_NOP: u8 = 1;
const TCPOPT_TIMESTAMP: u8 = 8;
const TCPOLEN_TIMESTAMP: usize = 10;

impl LinkType {
    /// The link type of a pcap/pcapng `LINKTYPE_*` value, `None` if unsupported.
    pub fn from_linktype(linktype: i32) -> Option<Self> {
        match linktype {
            LINKTYPE_ETHERNET => Some(Self::Ethernet),
            LINKTYPE_LINUX_SLL => Some(Self::LinuxSll),
            LINKTYPE_LINUX_SLL2 => Some(Self::LinuxSll2),
            // DLT_RAW is 12 on most systems and 14 on OpenBSD; 228/229 are IPv4/IPv6 only.
            LINKTYPE_RAW | 12 | 14 | 228 | 229 => Some(Self::RawIp),
            _ => None,
        }
    }
}

/// A TCP flow direction: source and destination address and port.
///
/// IPv4 addresses sit in the first 4 bytes of `src`/`dst` with the rest zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// Source address bytes (network order).
    pub src: [u8; 16],
    /// Destination address bytes (network order).
    pub dst: [u8; 16],
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Whether the addresses are IPv6.
    pub v6: bool,
}

impl FlowKey {
    /// A key from socket addresses (an IPv4-mapped IPv6 address stays IPv6).
    pub fn new(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Self {
        fn bytes(a: IpAddr) -> [u8; 16] {
            match a {
                IpAddr::V4(v4) => {
                    let mut b = [0; 16];
                    b[..4].copy_from_slice(&v4.octets());
                    b
                }
                IpAddr::V6(v6) => v6.octets(),
            }
        }
        Self {
            src: bytes(src),
            dst: bytes(dst),
            sport,
            dport,
            v6: src.is_ipv6(),
        }
    }

    /// The opposite direction of the same connection.
    #[must_use]
    pub fn reverse(&self) -> Self {
        Self {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            v6: self.v6,
        }
    }

    /// Source address.
    pub fn src_ip(&self) -> IpAddr {
        ip(&self.src, self.v6)
    }

    /// Destination address.
    pub fn dst_ip(&self) -> IpAddr {
        ip(&self.dst, self.v6)
    }
}

fn ip(b: &[u8; 16], v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(*b))
    } else {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }
}

impl fmt::Display for FlowKey {
    /// `src:port+dst:port` as pping prints flows (IPv6 addresses in brackets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.v6 {
            write!(
                f,
                "[{}]:{}+[{}]:{}",
                self.src_ip(),
                self.sport,
                self.dst_ip(),
                self.dport
            )
        } else {
            write!(
                f,
                "{}:{}+{}:{}",
                self.src_ip(),
                self.sport,
                self.dst_ip(),
                self.dport
            )
        }
    }
}

/// The TCP timestamp option of a segment (RFC 7323 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamps {
    /// `TSval`: the sender's timestamp clock.
    pub tsval: u32,
    /// `TSecr`: the most recent `TSval` the sender received (valid when ACK is set).
    pub tsecr: u32,
}

/// What RTT matching needs of one TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The segment's direction.
    pub flow: FlowKey,
    /// The timestamp option, if present.
    pub ts: Option<Timestamps>,
    /// SYN flag.
    pub syn: bool,
    /// ACK flag.
    pub ack: bool,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (valid when `ack`).
    pub ack_no: u32,
    /// Sequence space the segment occupies: payload bytes (from the IP length fields, not
    /// the captured bytes) plus one for SYN and one for FIN.
    pub seq_len: u32,
}

/// Why a frame gave no [`Segment`]. Each reason has a counter in [`ParseStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Cut short before the end of the TCP header (options included).
    Truncated,
    /// A header field is invalid (bad IP version or header length, TCP data offset,
    /// option lengths).
    Malformed,
    /// Not IPv4 or IPv6 (ARP, LLDP ...).
    NotIp,
    /// IP, but not TCP.
    NotTcp,
    /// A non-first IP fragment, or a fragment whose TCP header is not in this frame.
    Fragment,
    /// The capture's link type is not one of [`LinkType`].
    UnsupportedLink,
}

/// Per-reason counts of frames parsed and skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// Frames given to the parser.
    pub frames: u64,
    /// TCP segments parsed.
    pub tcp: u64,
    /// [`Skip::Truncated`].
    pub truncated: u64,
    /// [`Skip::Malformed`].
    pub malformed: u64,
    /// [`Skip::NotIp`].
    pub not_ip: u64,
    /// [`Skip::NotTcp`].
    pub not_tcp: u64,
    /// [`Skip::Fragment`].
    pub fragments: u64,
    /// [`Skip::UnsupportedLink`].
    pub unsupported_link: u64,
}

impl ParseStats {
    /// Parses `frame`, counting the outcome.
    #[inline]
    pub fn parse(&mut self, link: Option<LinkType>, frame: &[u8]) -> Option<Segment> {
        self.frames += 1;
        let r = match link {
            Some(l) => parse(l, frame),
            None => Err(Skip::UnsupportedLink),
        };
        match r {
            Ok(s) => {
                self.tcp += 1;
                Some(s)
            }
            Err(skip) => {
                *match skip {
                    Skip::Truncated => &mut self.truncated,
                    Skip::Malformed => &mut self.malformed,
                    Skip::NotIp => &mut self.not_ip,
                    Skip::NotTcp => &mut self.not_tcp,
                    Skip::Fragment => &mut self.fragments,
                    Skip::UnsupportedLink => &mut self.unsupported_link,
                } += 1;
                None
            }
        }
    }
}

/// Parses one frame of link type `link`.
///
/// # Errors
/// A [`Skip`] saying why the frame holds no usable TCP segment.
pub fn parse(link: LinkType, frame: &[u8]) -> Result<Segment, Skip> {
    if let Some(seg) = fast(link, frame) {
        return Ok(seg);
    }
    parse_general(link, frame)
}

/// The common case by hand, about four times faster than the general slicer: a
/// complete, unfragmented IPv4 (any header length) or IPv6 (no extension headers) TCP
/// segment behind Ethernet (with VLAN tags), SLL, SLL2 or nothing. `None` for anything
/// else, which then takes the general path (and its error classification); both paths
/// give the same [`Segment`] for every frame this one accepts (tested).
#[inline]
fn fast(link: LinkType, frame: &[u8]) -> Option<Segment> {
    const VLAN: [u16; 2] = [0x8100, 0x88a8];
    let (ethertype, off) = match link {
        LinkType::Ethernet => {
            let (mut et, mut off) = (be16(frame, 12)?, 14);
            // At most as many tags as the general path (`LaxSlicedPacket::LINK_EXTS_CAP`).
            while VLAN.contains(&et) {
                if off >= 14 + 4 * LaxSlicedPacket::LINK_EXTS_CAP {
                    return None;
                }
                et = be16(frame, off + 2)?;
                off += 4;
            }
            (et, off)
        }
        LinkType::LinuxSll => (be16(frame, SLL_PROTOCOL_OFFSET)?, SLL_HEADER_LEN),
        LinkType::LinuxSll2 => (be16(frame, 0)?, SLL2_HEADER_LEN),
        LinkType::RawIp => match frame.first()? >> 4 {
            4 => (0x0800, 0),
            6 => (0x86dd, 0),
            _ => return None,
        },
    };
    let ip = frame.get(off..)?;
    let mut src = [0; 16];
    let mut dst = [0; 16];
    let (v6, tcp_off, ip_len) = match ethertype {
        0x0800 => {
            let ihl = usize::from(*ip.first()? & 0x0f) * 4;
            if ip[0] >> 4 != 4
                || ihl < 20
                || ip.len() < ihl
                || ip[9] != 6
                || be16(ip, 6)? & 0x3fff != 0
            {
                return None;
            }
            // Total length 0: unknown (TSO); the general path then uses the captured bytes.
            let total = usize::from(be16(ip, 2)?);
            if total != 0 && total < ihl + 20 {
                return None;
            }
            src[..4].copy_from_slice(&ip[12..16]);
            dst[..4].copy_from_slice(&ip[16..20]);
            (false, ihl, total.saturating_sub(ihl))
        }
        0x86dd => {
            if ip.len() < 40 || ip[0] >> 4 != 6 || ip[6] != 6 {
                return None;
            }
            src.copy_from_slice(&ip[8..24]);
            dst.copy_from_slice(&ip[24..40]);
            (true, 40, usize::from(be16(ip, 4)?))
        }
        _ => return None,
    };
    let tcp = ip.get(tcp_off..)?;
    let doff = usize::from(*tcp.get(12)? >> 4) * 4;
    if doff < 20 || tcp.len() < doff || (ip_len != 0 && ip_len < doff) {
        return None;
    }
    let ts = timestamps(&tcp[20..doff]).ok()?;
    let flags = tcp[13];
    let (fin, syn, ack) = (flags & 0x01 != 0, flags & 0x02 != 0, flags & 0x10 != 0);
    let data = if ip_len == 0 { tcp.len() } else { ip_len }.saturating_sub(doff);
    Some(Segment {
        flow: FlowKey {
            src,
            dst,
            sport: be16(tcp, 0)?,
            dport: be16(tcp, 2)?,
            v6,
        },
        ts,
        syn,
        ack,
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        ack_no: u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]),
        seq_len: u32::try_from(data).unwrap_or(u32::MAX) + u32::from(syn) + u32::from(fin),
    })
}

/// The general path only (for tests comparing it with the fast path).
#[doc(hidden)]
pub fn parse_general(link: LinkType, frame: &[u8]) -> Result<Segment, Skip> {
    let sliced = match link {
        LinkType::Ethernet => LaxSlicedPacket::from_ethernet(frame).map_err(|_| Skip::Truncated)?,
        LinkType::RawIp => LaxSlicedPacket::from_ip(frame).map_err(|e| match e {
            etherparse::err::ip::LaxHeaderSliceError::Len(_) => Skip::Truncated,
            etherparse::err::ip::LaxHeaderSliceError::Content(_) => Skip::Malformed,
        })?,
        LinkType::LinuxSll => {
            let proto = be16(frame, SLL_PROTOCOL_OFFSET).ok_or(Skip::Truncated)?;
            let rest = frame.get(SLL_HEADER_LEN..).ok_or(Skip::Truncated)?;
            LaxSlicedPacket::from_ether_type(EtherType(proto), rest)
        }
        LinkType::LinuxSll2 => {
            let proto = be16(frame, 0).ok_or(Skip::Truncated)?;
            let rest = frame.get(SLL2_HEADER_LEN..).ok_or(Skip::Truncated)?;
            LaxSlicedPacket::from_ether_type(EtherType(proto), rest)
        }
    };
    segment(&sliced)
}

fn segment(p: &LaxSlicedPacket<'_>) -> Result<Segment, Skip> {
    // `ip_len`: the IP payload length the headers claim (0 when they do not say, as
    // with TSO/GRO super-packets), so that a snaplen cut does not shorten the segment.
    let (src, dst, v6, payload, ip_len) = match &p.net {
        Some(LaxNetSlice::Ipv4(s)) => {
            let h = s.header();
            let mut src = [0; 16];
            let mut dst = [0; 16];
            src[..4].copy_from_slice(&h.source());
            dst[..4].copy_from_slice(&h.destination());
            let len = usize::from(h.total_len()).saturating_sub(
                usize::from(h.ihl()) * 4 + s.extensions().auth.map_or(0, |a| a.slice().len()),
            );
            (src, dst, false, s.payload(), len)
        }
        Some(LaxNetSlice::Ipv6(s)) => {
            let h = s.header();
            let len = usize::from(h.payload_length()).saturating_sub(s.extensions().slice().len());
            (h.source(), h.destination(), true, s.payload(), len)
        }
        Some(LaxNetSlice::Arp(_)) => return Err(Skip::NotIp),
        None => return Err(stop_reason(p).unwrap_or(Skip::NotIp)),
    };
    if payload.ip_number != IpNumber::TCP {
        return Err(stop_reason(p).unwrap_or(Skip::NotTcp));
    }
    if payload.fragmented {
        return Err(Skip::Fragment);
    }
    let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
        return Err(stop_reason(p).unwrap_or(Skip::Truncated));
    };
    let header_len = usize::from(tcp.data_offset()) * 4;
    let data = if ip_len == 0 {
        payload.payload.len()
    } else {
        ip_len
    }
    .saturating_sub(header_len);
    let seq_len =
        u32::try_from(data).unwrap_or(u32::MAX) + u32::from(tcp.syn()) + u32::from(tcp.fin());
    Ok(Segment {
        flow: FlowKey {
            src,
            dst,
            sport: tcp.source_port(),
            dport: tcp.destination_port(),
            v6,
        },
        ts: timestamps(tcp.options())?,
        syn: tcp.syn(),
        ack: tcp.ack(),
        seq: tcp.sequence_number(),
        ack_no: tcp.acknowledgment_number(),
        seq_len,
    })
}

/// Why the slicer stopped early, if it did.
fn stop_reason(p: &LaxSlicedPacket<'_>) -> Option<Skip> {
    p.stop_err.as_ref().map(|(e, _)| match e {
        SliceError::Len(_) => Skip::Truncated,
        _ => Skip::Malformed,
    })
}

/// Finds the timestamp option in a TCP option list (RFC 9293 §3.2 option syntax).
fn timestamps(opts: &[u8]) -> Result<Option<Timestamps>, Skip> {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            TCPOPT_EOL => break,
            TCPOPT_NOP => i += 1,
            kind => {
                let len = *opts.get(i + 1).ok_or(Skip::Malformed)? as usize;
                if len < 2 || i + len > opts.len() {
                    return Err(Skip::Malformed);
                }
                if kind == TCPOPT_TIMESTAMP {
                    if len != TCPOLEN_TIMESTAMP {
                        return Err(Skip::Malformed);
                    }
                    let o = &opts[i + 2..i + TCPOLEN_TIMESTAMP];
                    return Ok(Some(Timestamps {
                        tsval: u32::from_be_bytes([o[0], o[1], o[2], o[3]]),
                        tsecr: u32::from_be_bytes([o[4], o[5], o[6], o[7]]),
                    }));
                }
                i += len;
            }
        }
    }
    Ok(None)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}
