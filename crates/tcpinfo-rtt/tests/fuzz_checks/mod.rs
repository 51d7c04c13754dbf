//! The checks run by the passive-RTT fuzz targets (`fuzz/fuzz_targets/rtt_parse.rs`,
//! `rtt_capture_file.rs`, which include this file by path) and by
//! `tests/fuzz_regressions.rs`, which replays every committed input through them. Raw bytes:
//! frames and capture files have no length field that structure would help past.
//! See docs/RELIABILITY.md#fuzzing.

use tcpinfo_rtt::packet::parse_general;
use tcpinfo_rtt::pcap::read;
use tcpinfo_rtt::{parse, LinkType, Matcher, MatcherConfig, ParseStats};

const LINKS: [LinkType; 4] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
];

/// Fuzz target `rtt_parse`: the first byte picks the link type, the rest is a frame. Never a
/// panic; the fast path and the general path always agree; what parses feeds the matcher.
pub fn parse_frame(data: &[u8]) {
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(sel) % LINKS.len()];
    let r = parse(link, frame);
    assert_eq!(r, parse_general(link, frame));
    if let Ok(seg) = r {
        let mut m = Matcher::new(MatcherConfig::default());
        m.process(&seg, i64::from(sel));
        m.process(&seg, 1_000_000);
    }
}

/// Fuzz target `rtt_capture_file`: any bytes read as a pcap/pcapng file give frames or an
/// `ERR_CAPTURE_FILE`, never a panic.
pub fn capture_file(data: &[u8]) {
    let mut stats = ParseStats::default();
    if let Err(e) = read(data, "fuzz", |f| {
        stats.parse(f.link, f.data);
    }) {
        assert_eq!(e.code(), "ERR_CAPTURE_FILE");
    }
}
