//! Fixed-size little-endian records in which samples and summaries cross to JS, one
//! `Buffer` per batch (decoded by `src/rtt/records.ts`; keep the two in step).
//!
//! Flow part (40 bytes), shared by both records: `src` address 16 bytes at 0, `dst`
//! 16 bytes at 16 (IPv4 in the first 4), `sport` u16 at 32, `dport` u16 at 34, family
//! u8 at 36 (4 or 6), 3 bytes zero.
//! Sample (64 bytes): flow, `tsecr` u32 at 40, 4 bytes zero, capture time (unix ns) i64
//! at 48, RTT (ns) u64 at 56.
//! Summary (80 bytes): flow, count u64 at 40, min/p50/p90/max (ns) u64 at 48/56/64/72.

use crate::matcher::Sample;
use crate::packet::FlowKey;
use crate::summary::Summary;

/// Bytes of the flow part.
pub const FLOW_LEN: usize = 40;
/// Bytes of one sample record.
pub const SAMPLE_RECORD_LEN: usize = 64;
/// Bytes of one summary record.
pub const SUMMARY_RECORD_LEN: usize = 80;

fn put_flow(out: &mut Vec<u8>, f: &FlowKey) {
    out.extend_from_slice(&f.src);
    out.extend_from_slice(&f.dst);
    out.extend_from_slice(&f.sport.to_le_bytes());
    out.extend_from_slice(&f.dport.to_le_bytes());
    out.extend_from_slice(&[if f.v6 { 6 } else { 4 }, 0, 0, 0]);
}

/// Appends one sample record.
pub fn put_sample(out: &mut Vec<u8>, s: &Sample) {
    put_flow(out, &s.flow);
    out.extend_from_slice(&s.tsecr.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&s.t_ns.to_le_bytes());
    out.extend_from_slice(&s.rtt_ns.to_le_bytes());
}

/// Appends one summary record.
pub fn put_summary(out: &mut Vec<u8>, f: &FlowKey, s: &Summary) {
    put_flow(out, f);
    for v in [s.count, s.min_ns, s.p50_ns, s.p90_ns, s.max_ns] {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn layout() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let flow = FlowKey::new(a, 1, b, 2);
        let mut out = Vec::new();
        put_sample(
            &mut out,
            &Sample {
                flow,
                t_ns: 5,
                rtt_ns: 7,
                tsecr: 9,
            },
        );
        assert_eq!(out.len(), SAMPLE_RECORD_LEN);
        assert_eq!(&out[..4], &[10, 0, 0, 1]);
        assert_eq!(&out[32..37], &[1, 0, 2, 0, 4]);
        assert_eq!(out[40], 9);
        assert_eq!(out[48], 5);
        assert_eq!(out[56], 7);
        out.clear();
        let s = Summary {
            count: 1,
            min_ns: 2,
            p50_ns: 3,
            p90_ns: 4,
            max_ns: 5,
        };
        put_summary(&mut out, &flow, &s);
        assert_eq!(out.len(), SUMMARY_RECORD_LEN);
        assert_eq!((out[40], out[48], out[72]), (1, 2, 5));
    }
}
