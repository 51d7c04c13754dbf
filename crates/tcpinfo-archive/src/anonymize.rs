//! IP anonymization of archived records, with M-Lab's semantics
//! (`github.com/m-lab/go/anonymize`, `netblock` method, applied by tcp-info's saver to
//! `RawIDM` before marshalling):
//!
//! - `AF_INET`: the last byte of the source and destination address is zeroed (/24);
//! - `AF_INET6`: a v4-mapped address (`::ffff:a.b.c.d`) gets its last byte zeroed (/24),
//!   any other address keeps its first 6 bytes (/48);
//! - addresses of the local interfaces (read once, at start, as M-Lab's `init` does) are
//!   left untouched, a v4 address matching its v4-mapped form (Go's `net.IP.Equal`);
//! - a message of any other family is not archived (M-Lab skips it with an error).
//!
//! Only the writer's copy of the line changes: the batch's buffers are shared with other
//! consumers and are never written to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::config::AnonymizeMethod;

/// Bytes of `struct inet_diag_msg`.
const IDM_LEN: usize = 72;
/// Offset of `id.idiag_src` (16 bytes) in `inet_diag_msg`.
const SRC_OFF: usize = 8;
/// Offset of `id.idiag_dst` (16 bytes) in `inet_diag_msg`.
const DST_OFF: usize = 24;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const RAW_IDM_KEY: &[u8] = br#""RawIDM":""#;

/// Applies an [`AnonymizeMethod`] to archive lines.
#[derive(Debug, Clone)]
pub struct Anonymizer {
    method: AnonymizeMethod,
    keep: Vec<IpAddr>,
}

impl Anonymizer {
    /// An anonymizer that leaves `keep` (canonicalized: v4-mapped to v4) untouched.
    pub fn new(method: AnonymizeMethod, keep: &[IpAddr]) -> Self {
        Self {
            method,
            keep: keep.iter().map(|ip| canonical(*ip)).collect(),
        }
    }

    /// Whether this anonymizer changes anything at all.
    pub fn is_active(&self) -> bool {
        self.method == AnonymizeMethod::Netblock
    }

    /// Anonymizes a raw `inet_diag_msg` in place. Returns `false` for a message that
    /// must not be archived (too short, or a family other than `AF_INET`/`AF_INET6`).
    pub fn anonymize_idm(&self, idm: &mut [u8]) -> bool {
        if !self.is_active() {
            return true;
        }
        if idm.len() < IDM_LEN {
            return false;
        }
        match idm[0] {
            AF_INET => {
                for off in [SRC_OFF, DST_OFF] {
                    let a = Ipv4Addr::new(idm[off], idm[off + 1], idm[off + 2], idm[off + 3]);
                    if !self.keeps(IpAddr::V4(a)) {
                        idm[off + 3] = 0;
                    }
                }
                true
            }
            AF_INET6 => {
                for off in [SRC_OFF, DST_OFF] {
                    let mut b = [0u8; 16];
                    b.copy_from_slice(&idm[off..off + 16]);
                    let a = Ipv6Addr::from(b);
                    if self.keeps(IpAddr::V6(a)) {
                        continue;
                    }
                    if a.to_ipv4_mapped().is_some() {
                        idm[off + 15] = 0;
                    } else {
                        idm[off + 6..off + 16].fill(0);
                    }
                }
                true
            }
            _ => false,
        }
    }

    /// Writes `line` to `out` with its `RawIDM` anonymized. Returns `false` (and writes
    /// nothing) when the line has no decodable `RawIDM` or its message must not be archived.
    pub fn anonymize_line(&self, line: &[u8], out: &mut Vec<u8>) -> bool {
        let Some(start) = find(line, RAW_IDM_KEY).map(|i| i + RAW_IDM_KEY.len()) else {
            return false;
        };
        let Some(len) = line[start..].iter().position(|&b| b == b'"') else {
            return false;
        };
        let Ok(mut idm) = STANDARD.decode(&line[start..start + len]) else {
            return false;
        };
        if !self.anonymize_idm(&mut idm) {
            return false;
        }
        out.extend_from_slice(&line[..start]);
        let b64_start = out.len();
        out.resize(b64_start + idm.len().div_ceil(3) * 4, 0);
        let written = STANDARD
            .encode_slice(&idm, &mut out[b64_start..])
            .unwrap_or_default();
        out.truncate(b64_start + written);
        out.extend_from_slice(&line[start + len..]);
        true
    }

    /// Anonymizes the `RawIDM` of a record line in place (the base64 text keeps its
    /// length). A line without a decodable `RawIDM`, or of another family, gets its
    /// addresses zeroed. Returns whether the line had a `RawIDM`.
    pub fn anonymize_line_in_place(&self, line: &mut [u8]) -> bool {
        let Some(start) = find(line, RAW_IDM_KEY).map(|i| i + RAW_IDM_KEY.len()) else {
            return false;
        };
        let Some(len) = line[start..].iter().position(|&b| b == b'"') else {
            return false;
        };
        let b64 = &mut line[start..start + len];
        let Ok(mut idm) = STANDARD.decode(&*b64) else {
            b64.fill(b'A');
            return true;
        };
        if !self.anonymize_idm(&mut idm) {
            zero_addresses(&mut idm);
        }
        let mut out = vec![0; idm.len().div_ceil(3) * 4];
        match STANDARD.encode_slice(&idm, &mut out) {
            Ok(n) if n == b64.len() => b64.copy_from_slice(&out[..n]),
            _ => b64.fill(b'A'),
        }
        true
    }

    /// Copies of a poll's payloads and lines (the layout of `tcpinfo_core::RecordIter`,
    /// same offsets) with every record's addresses anonymized, for the outputs other than
    /// the archive (which anonymizes its own copy of each line).
    pub fn anonymize_batch(
        &self,
        index: &[u8],
        payloads: &[u8],
        lines: &[u8],
    ) -> (Vec<u8>, Vec<u8>) {
        let mut p = payloads.to_vec();
        let mut l = lines.to_vec();
        if !self.is_active() {
            return (p, l);
        }
        for rec in tcpinfo_core::RecordIter::new(index, payloads, lines) {
            if !rec.payload.is_empty() {
                let off = rec.payload.as_ptr() as usize - payloads.as_ptr() as usize;
                let idm = &mut p[off..off + rec.payload.len()];
                if !self.anonymize_idm(idm) {
                    zero_addresses(idm);
                }
            }
            if !rec.line.is_empty() {
                let off = rec.line.as_ptr() as usize - lines.as_ptr() as usize;
                self.anonymize_line_in_place(&mut l[off..off + rec.line.len()]);
            }
        }
        (p, l)
    }

    fn keeps(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.keep.contains(&ip)
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// Zeroes both addresses of a message that cannot be anonymized by its family.
fn zero_addresses(idm: &mut [u8]) {
    let end = idm.len().min(DST_OFF + 16);
    if end > SRC_OFF {
        idm[SRC_OFF..end].fill(0);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The addresses of the local interfaces (`getifaddrs`), as M-Lab's anonymizer ignores
/// them. Empty if the call fails.
pub fn local_interface_addrs() -> Vec<IpAddr> {
    tcpinfo_core::netns::addrs::interface_addrs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idm(family: u8, src: &[u8], dst: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; IDM_LEN];
        m[0] = family;
        m[SRC_OFF..SRC_OFF + src.len()].copy_from_slice(src);
        m[DST_OFF..DST_OFF + dst.len()].copy_from_slice(dst);
        m
    }

    fn v6(s: &str) -> [u8; 16] {
        s.parse::<Ipv6Addr>().unwrap().octets()
    }

    /// M-Lab's `TestNetblockAnon` table, plus v4-mapped and the kept local addresses.
    #[test]
    fn netblock_golden() {
        let keep: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "1::2".parse().unwrap()];
        let a = Anonymizer::new(AnonymizeMethod::Netblock, &keep);

        let mut m = idm(AF_INET, &[10, 1, 2, 3], &[255, 255, 255, 255]);
        assert!(a.anonymize_idm(&mut m));
        assert_eq!(&m[SRC_OFF..SRC_OFF + 4], &[10, 1, 2, 0]);
        assert_eq!(&m[DST_OFF..DST_OFF + 4], &[255, 255, 255, 0]);

        let mut m = idm(AF_INET, &[127, 0, 0, 1], &[10, 1, 2, 3]);
        assert!(a.anonymize_idm(&mut m));
        assert_eq!(
            &m[SRC_OFF..SRC_OFF + 4],
            &[127, 0, 0, 1],
            "local address kept"
        );

        let mut m = idm(
            AF_INET6,
            &v6("0:1:2:3:4:5:6:7"),
            &v6("aaaa:aaab:aaac:aaad:aaae:aaaf:aaa1:aaa1"),
        );
        assert!(a.anonymize_idm(&mut m));
        assert_eq!(&m[SRC_OFF..SRC_OFF + 16], &v6("0:1:2::"));
        assert_eq!(&m[DST_OFF..DST_OFF + 16], &v6("aaaa:aaab:aaac::"));

        let mut m = idm(AF_INET6, &v6("1::2"), &v6("::ffff:10.1.2.3"));
        assert!(a.anonymize_idm(&mut m));
        assert_eq!(&m[SRC_OFF..SRC_OFF + 16], &v6("1::2"), "local address kept");
        assert_eq!(
            &m[DST_OFF..DST_OFF + 16],
            &v6("::ffff:10.1.2.0"),
            "v4-mapped: /24"
        );

        let mut m = idm(AF_INET6, &v6("::ffff:127.0.0.1"), &v6("::"));
        assert!(a.anonymize_idm(&mut m));
        assert_eq!(
            &m[SRC_OFF..SRC_OFF + 16],
            &v6("::ffff:127.0.0.1"),
            "kept v4 matches v4-mapped"
        );

        let mut m = idm(1, &[1, 2, 3, 4], &[1, 2, 3, 4]);
        assert!(!a.anonymize_idm(&mut m), "unknown family is not archived");
        assert!(
            !a.anonymize_idm(&mut [AF_INET; 71]),
            "short message is not archived"
        );
    }

    #[test]
    fn none_changes_nothing() {
        let a = Anonymizer::new(AnonymizeMethod::None, &[]);
        let mut m = idm(AF_INET, &[10, 1, 2, 3], &[10, 1, 2, 4]);
        let before = m.clone();
        assert!(a.anonymize_idm(&mut m));
        assert_eq!(m, before);
    }

    #[test]
    fn line_rewrites_only_raw_idm() {
        let m = idm(AF_INET, &[10, 1, 2, 3], &[192, 0, 2, 77]);
        let line = format!(
            "{{\"Timestamp\":\"2019-07-01T00:00:12.092Z\",\"RawIDM\":\"{}\",\"Attributes\":[null,\"AAAA\"]}}\n",
            STANDARD.encode(&m)
        );
        let a = Anonymizer::new(AnonymizeMethod::Netblock, &[]);
        let mut out = Vec::new();
        assert!(a.anonymize_line(line.as_bytes(), &mut out));
        let mut want = m.clone();
        want[SRC_OFF + 3] = 0;
        want[DST_OFF + 3] = 0;
        let expect = line.replace(&STANDARD.encode(&m), &STANDARD.encode(&want));
        assert_eq!(String::from_utf8(out).unwrap(), expect);
        let mut out = Vec::new();
        assert!(!a.anonymize_line(b"{\"Timestamp\":\"x\"}\n", &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn line_in_place_matches_the_copying_rewrite() {
        let m = idm(AF_INET6, &v6("2001:db8:1:2::9"), &v6("::ffff:192.0.2.77"));
        let line = format!(
            "{{\"Timestamp\":\"2019-07-01T00:00:12.092Z\",\"RawIDM\":\"{}\",\"Attributes\":[]}}\n",
            STANDARD.encode(&m)
        );
        let a = Anonymizer::new(AnonymizeMethod::Netblock, &[]);
        let mut out = Vec::new();
        assert!(a.anonymize_line(line.as_bytes(), &mut out));
        let mut in_place = line.clone().into_bytes();
        assert!(a.anonymize_line_in_place(&mut in_place));
        assert_eq!(in_place, out);
        let mut garbage = b"{\"RawIDM\":\"!!!!\"}".to_vec();
        assert!(a.anonymize_line_in_place(&mut garbage));
        assert_eq!(
            &garbage, b"{\"RawIDM\":\"AAAA\"}",
            "undecodable: blanked, same length"
        );
        let mut other = idm(1, &[1, 2, 3, 4], &[5, 6, 7, 8]);
        zero_addresses(&mut other);
        assert!(other[SRC_OFF..DST_OFF + 16].iter().all(|&b| b == 0));
    }

    #[test]
    fn local_addresses_include_loopback() {
        assert!(local_interface_addrs().contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }
}
