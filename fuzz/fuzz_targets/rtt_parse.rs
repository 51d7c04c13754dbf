//! Fuzzes the packet parser on every link type and feeds what parses to the matcher:
//! never a panic; the fast path and the general path always agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpinfo_rtt::packet::parse_general;
use tcpinfo_rtt::{parse, LinkType, Matcher, MatcherConfig};

const LINKS: [LinkType; 4] = [LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2, LinkType::RawIp];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else { return };
    let link = LINKS[usize::from(sel) % LINKS.len()];
    let r = parse(link, frame);
    assert_eq!(r, parse_general(link, frame));
    if let Ok(seg) = r {
        let mut m = Matcher::new(MatcherConfig::default());
        m.process(&seg, i64::from(sel));
        m.process(&seg, 1_000_000);
    }
});
