//! Per-flow RTT summaries: count, exact min and max, and p50/p90 from a fixed
//! log-linear histogram (8 buckets per power of two, so a percentile is within about
//! 6% of the true sample value), allocated on a flow's first sample.
//!
//! Bounded: one histogram of [`BUCKETS`] `u32` counters (about 1.2 KiB) per flow with
//! samples, and the matcher bounds the number of flows.

/// Sub-bucket bits: 2^3 = 8 buckets per power of two.
const SUB_BITS: u32 = 3;
/// Sub-buckets per power of two.
const SUB: usize = 1 << SUB_BITS;
/// Largest value kept apart, 2^36 ns (about 68.7 s); larger samples land in the last bucket.
const MAX_EXP: u32 = 36;
/// Number of histogram buckets.
pub const BUCKETS: usize = (MAX_EXP as usize - SUB_BITS as usize + 1) * SUB + SUB;

/// The RTT statistics of one flow direction (samples where the flow's source echoed).
#[derive(Clone, Debug, Default)]
pub struct FlowRtt {
    /// Samples taken.
    pub count: u64,
    /// Smallest sample, nanoseconds (0 when `count` is 0).
    pub min_ns: u64,
    /// Largest sample, nanoseconds.
    pub max_ns: u64,
    /// Value of `count` when the flow was last reported ([`crate::Matcher::take_summaries`]).
    pub(crate) reported: u64,
    hist: Option<Box<[u32; BUCKETS]>>,
}

/// A flow's RTT summary at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Smallest sample, nanoseconds.
    pub min_ns: u64,
    /// Median, nanoseconds (histogram bucket, clamped to `[min, max]`).
    pub p50_ns: u64,
    /// 90th percentile, nanoseconds (as `p50_ns`).
    pub p90_ns: u64,
    /// Largest sample, nanoseconds.
    pub max_ns: u64,
}

impl FlowRtt {
    /// Adds one sample.
    #[inline]
    pub fn add(&mut self, rtt_ns: u64) {
        if self.count == 0 || rtt_ns < self.min_ns {
            self.min_ns = rtt_ns;
        }
        self.max_ns = self.max_ns.max(rtt_ns);
        self.count += 1;
        let h = self.hist.get_or_insert_with(|| Box::new([0; BUCKETS]));
        let b = &mut h[bucket(rtt_ns)];
        *b = b.saturating_add(1);
    }

    /// The summary, `None` before the first sample.
    pub fn summary(&self) -> Option<Summary> {
        let h = self.hist.as_ref()?;
        Some(Summary {
            count: self.count,
            min_ns: self.min_ns,
            p50_ns: self.percentile(h, 50),
            p90_ns: self.percentile(h, 90),
            max_ns: self.max_ns,
        })
    }

    fn percentile(&self, h: &[u32; BUCKETS], pct: u64) -> u64 {
        let total: u64 = h.iter().map(|&c| u64::from(c)).sum();
        // Rank of the percentile sample, 1-based (nearest-rank method).
        let rank = (total * pct).div_ceil(100).max(1);
        let mut seen = 0;
        for (i, &c) in h.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return bucket_mid(i).clamp(self.min_ns, self.max_ns);
            }
        }
        self.max_ns
    }
}

/// Bucket index of a value.
#[inline]
fn bucket(v: u64) -> usize {
    if v < SUB as u64 {
        #[expect(clippy::cast_possible_truncation, reason = "v < 8")]
        return v as usize;
    }
    let exp = v.ilog2().min(MAX_EXP);
    let v = v.min((1 << (MAX_EXP + 1)) - 1);
    let mantissa = ((v >> (exp - SUB_BITS)) as usize) & (SUB - 1);
    (exp - SUB_BITS + 1) as usize * SUB + mantissa
}

/// Midpoint of a bucket's value range.
fn bucket_mid(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let exp = u32::try_from(i / SUB).unwrap_or(MAX_EXP) + SUB_BITS - 1;
    let mantissa = (i % SUB) as u64;
    let width = 1u64 << (exp - SUB_BITS);
    (1u64 << exp) + mantissa * width + width / 2
}

#[cfg(test)]
#[expect(clippy::cast_precision_loss, reason = "ratios in test assertions")]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_within_range() {
        for v in (0..1u64 << 37)
            .step_by(9_999_991)
            .chain([0, 1, 7, 8, 9, 15, 16, u64::MAX])
        {
            let b = bucket(v);
            assert!(b < BUCKETS, "{v} -> {b}");
            if (8..1 << 36).contains(&v) {
                let mid = bucket_mid(b);
                let err = mid.abs_diff(v) as f64 / v as f64;
                assert!(err <= 0.0625, "{v}: mid {mid}");
            }
        }
        let mut prev = 0;
        for v in 0..100_000u64 {
            let b = bucket(v);
            assert!(b >= prev);
            prev = b;
        }
    }

    #[test]
    fn percentiles() {
        let mut f = FlowRtt::default();
        assert!(f.summary().is_none());
        for v in 1..=100u64 {
            f.add(v * 1_000_000);
        }
        let s = f.summary().unwrap();
        assert_eq!((s.count, s.min_ns, s.max_ns), (100, 1_000_000, 100_000_000));
        assert!((s.p50_ns as f64 / 50e6 - 1.0).abs() < 0.07, "{s:?}");
        assert!((s.p90_ns as f64 / 90e6 - 1.0).abs() < 0.07, "{s:?}");
        let mut one = FlowRtt::default();
        one.add(1234);
        let s = one.summary().unwrap();
        assert_eq!(
            (s.min_ns, s.p50_ns, s.p90_ns, s.max_ns),
            (1234, 1234, 1234, 1234)
        );
    }
}
