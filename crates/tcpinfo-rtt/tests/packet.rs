//! Packet parser: golden frames of every link type, VLAN tags, IPv6, the timestamp
//! option, truncation at every length and garbage (never a panic, always counted).
#![expect(clippy::cast_possible_truncation, reason = "pseudo-random test bytes")]
mod common;

use common::{frame, ip_packet, vlan_frame, Tcp};
use tcpinfo_rtt::packet::parse_general;
use tcpinfo_rtt::{parse, LinkType, ParseStats, Skip, Timestamps};

const LINKS: [LinkType; 4] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
];

#[test]
fn every_link_type_ipv4_and_ipv6() {
    for v6 in [false, true] {
        let t = Tcp {
            v6,
            syn: true,
            ack: false,
            ..Tcp::new(1, 40000, 2, 5201).ts(77, 0)
        };
        let ip = ip_packet(&t);
        for link in LINKS {
            let s = parse(link, &frame(link, &ip))
                .unwrap_or_else(|e| panic!("{link:?} v6={v6}: {e:?}"));
            assert_eq!(
                s.ts,
                Some(Timestamps {
                    tsval: 77,
                    tsecr: 0
                })
            );
            assert!(s.syn && !s.ack);
            assert_eq!((s.flow.sport, s.flow.dport, s.flow.v6), (40000, 5201, v6));
            let want = if v6 {
                "[fd00::1]:40000+[fd00::2]:5201"
            } else {
                "10.9.0.1:40000+10.9.0.2:5201"
            };
            assert_eq!(s.flow.to_string(), want);
            assert_eq!(Ok(s), parse_general(link, &frame(link, &ip)));
        }
    }
}

#[test]
fn vlan_tags() {
    for double in [false, true] {
        let ip = ip_packet(&Tcp::new(3, 1, 4, 2).ts(5, 6));
        let s = parse(LinkType::Ethernet, &vlan_frame(&ip, double)).unwrap();
        assert_eq!(s.ts, Some(Timestamps { tsval: 5, tsecr: 6 }));
        assert_eq!(s.flow.to_string(), "10.9.0.3:1+10.9.0.4:2");
    }
}

#[test]
fn no_timestamp_option_is_a_segment_without_ts() {
    let s = parse(LinkType::RawIp, &ip_packet(&Tcp::new(1, 1, 2, 2))).unwrap();
    assert_eq!(s.ts, None);
}

#[test]
fn snaplen_cut_payload_still_parses() {
    // A segment with 1000 payload bytes captured at 128 bytes: lax slicing keeps it.
    let ip = ip_packet(&Tcp {
        payload: 1000,
        ..Tcp::new(1, 1, 2, 2).ts(9, 8)
    });
    for link in LINKS {
        let f = frame(link, &ip);
        let s = parse(link, &f[..128]).unwrap();
        assert_eq!(s.ts, Some(Timestamps { tsval: 9, tsecr: 8 }));
        assert_eq!(
            s.seq_len, 1000,
            "payload length from the IP header, not the captured bytes"
        );
    }
}

#[test]
fn truncation_at_every_length() {
    for v6 in [false, true] {
        let ip = ip_packet(&Tcp {
            v6,
            payload: 20,
            ..Tcp::new(1, 1, 2, 2).ts(9, 8)
        });
        let headers = ip.len() - 20;
        for link in LINKS.into_iter().map(Some).chain([None]) {
            let f = match link {
                Some(l) => frame(l, &ip),
                None => vlan_frame(&ip, true),
            };
            let l = link.unwrap_or(LinkType::Ethernet);
            let link_len = f.len() - ip.len();
            let mut stats = ParseStats::default();
            for n in 0..=f.len() {
                let r = parse(l, &f[..n]);
                if n < link_len + headers {
                    assert_eq!(r, Err(Skip::Truncated), "{link:?} v6={v6} cut at {n}");
                } else {
                    assert_eq!(
                        r.unwrap().ts,
                        Some(Timestamps { tsval: 9, tsecr: 8 }),
                        "{link:?} cut at {n}"
                    );
                }
                stats.parse(Some(l), &f[..n]);
            }
            assert_eq!(stats.truncated, (link_len + headers) as u64);
            assert_eq!(stats.frames, f.len() as u64 + 1);
        }
    }
}

#[test]
fn malformed_and_foreign_packets_are_classified() {
    let ip = ip_packet(&Tcp::new(1, 1, 2, 2).ts(9, 8));
    // Bad TCP option length (timestamp option claims 20 bytes).
    let mut bad = ip.clone();
    let opt = bad.len() - 10;
    assert_eq!(bad[opt], 8);
    bad[opt + 1] = 20;
    assert_eq!(parse(LinkType::RawIp, &bad), Err(Skip::Malformed));
    bad[opt + 1] = 1;
    assert_eq!(parse(LinkType::RawIp, &bad), Err(Skip::Malformed));
    // Bad IP version.
    let mut v = ip.clone();
    v[0] = 0x75;
    assert_eq!(parse(LinkType::RawIp, &v), Err(Skip::Malformed));
    // UDP.
    let mut udp = ip.clone();
    udp[9] = 17;
    assert_eq!(parse(LinkType::RawIp, &udp).err(), Some(Skip::NotTcp));
    // ARP over Ethernet.
    let mut arp = vec![0xff; 12];
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&[0; 20]);
    assert_eq!(parse(LinkType::Ethernet, &arp), Err(Skip::NotIp));
    // A non-first IPv4 fragment.
    let mut frag = ip.clone();
    frag[6] = 0x00;
    frag[7] = 0x10;
    assert_eq!(parse(LinkType::RawIp, &frag), Err(Skip::Fragment));
    let mut stats = ParseStats::default();
    assert!(stats.parse(None, &ip).is_none());
    assert_eq!(stats.unsupported_link, 1);
}

#[test]
fn garbage_never_panics() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut stats = ParseStats::default();
    let base = frame(
        LinkType::Ethernet,
        &ip_packet(&Tcp::new(1, 1, 2, 2).ts(9, 8)),
    );
    for i in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 120) as usize;
        let mut f: Vec<u8> = if i % 2 == 0 {
            (0..len).map(|j| (x >> (j % 56)) as u8).collect()
        } else {
            // Flip a few bytes of a valid frame.
            let mut f = base.clone();
            for k in 0..3 {
                let at = ((x >> (k * 16)) as usize) % f.len();
                f[at] = (x >> (k * 8 + 3)) as u8;
            }
            f
        };
        f.truncate(len.max(f.len() / 2));
        let link = LINKS[(x >> 60) as usize % 4];
        // The fast path and the general one agree on every frame.
        assert_eq!(
            parse(link, &f),
            parse_general(link, &f),
            "{link:?} {f:02x?}"
        );
        stats.parse(Some(link), &f);
    }
    assert_eq!(stats.frames, 200_000);
    let skipped =
        stats.truncated + stats.malformed + stats.not_ip + stats.not_tcp + stats.fragments;
    assert_eq!(stats.tcp + skipped, stats.frames);
}
