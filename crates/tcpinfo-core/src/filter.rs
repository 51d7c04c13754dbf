//! Which sockets are reported: M-Lab's exclusions (local, source ports, destination IPs).

use std::net::IpAddr;

use crate::parse::diag_msg::InetDiagMsg;

/// An IP network in CIDR form. A v4 network also matches v4-mapped IPv6 addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `"10.0.0.0/8"`, `"2001:db8::/32"` or a bare address (a /32 or /128).
    ///
    /// # Errors
    /// A one-line description of what is wrong with `s`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (a, p) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("not an IP address: {a:?}"))?;
        let addr = canonical(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("bad prefix length in {s:?}"))?,
        };
        Ok(Self { addr, prefix })
    }

    /// The network address (IPv4 for a v4 or v4-mapped network).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.prefix),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    let rem = bits % 8;
    a[..full] == b[..full] && (rem == 0 || (a[full] ^ b[full]) >> (8 - rem) == 0)
}

/// v4-mapped IPv6 (`::ffff:a.b.c.d`) to IPv4; anything else unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// M-Lab's notion of a local address: loopback, link-local unicast, multicast or
/// unspecified (so listeners, with an unspecified peer, are local too).
pub fn is_local(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(a) => {
            a.is_loopback() || a.is_link_local() || a.is_multicast() || a.is_unspecified()
        }
        IpAddr::V6(a) => {
            a.is_loopback() || a.is_unicast_link_local() || a.is_multicast() || a.is_unspecified()
        }
    }
}

/// Exclusion rules; a socket matching any of them is not reported.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Exclude sockets whose local or remote address is local (M-Lab `-exclude-local`).
    pub exclude_local: bool,
    /// Exclude sockets with these local ports (M-Lab `-exclude-srcport`).
    pub exclude_src_ports: Vec<u16>,
    /// Exclude sockets whose remote address is in one of these networks (M-Lab `-exclude-dstip`).
    pub exclude_dst: Vec<Cidr>,
}

impl Filter {
    /// Whether `msg` is reported.
    pub fn accepts(&self, msg: &InetDiagMsg<'_>) -> bool {
        if !self.exclude_src_ports.is_empty() && self.exclude_src_ports.contains(&msg.sport()) {
            return false;
        }
        if self.exclude_local && (is_local(msg.src()) || is_local(msg.dst())) {
            return false;
        }
        if !self.exclude_dst.is_empty() {
            let dst = msg.dst();
            if self.exclude_dst.iter().any(|c| c.contains(dst)) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_matches_v4_mapped() {
        let c = Cidr::parse("192.0.2.0/24").unwrap();
        assert!(c.contains("192.0.2.7".parse().unwrap()));
        assert!(c.contains("::ffff:192.0.2.7".parse().unwrap()));
        assert!(!c.contains("192.0.3.7".parse().unwrap()));
        assert!(Cidr::parse("2001:db8::/32")
            .unwrap()
            .contains("2001:db8:1::1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope").is_err());
        assert!(Cidr::parse("10.1.2.3")
            .unwrap()
            .contains("10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn local_addresses() {
        for a in [
            "127.0.0.1",
            "::1",
            "0.0.0.0",
            "::",
            "fe80::1",
            "169.254.1.1",
            "224.0.0.1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_local(a.parse().unwrap()), "{a}");
        }
        for a in ["192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1"] {
            assert!(!is_local(a.parse().unwrap()), "{a}");
        }
    }
}
