//! A 64-bit fingerprint of the parts of a message that count as a change.
//!
//! The fold is hand-written (not `std::hash`) for two reasons: it runs once per socket
//! per poll, over ~300 bytes, so it must be a few nanoseconds; and every step
//! `h = (rotl(h, 5) ^ word) * K` is a bijection of `h` for a fixed word, so a change in a
//! single 8-byte word *always* changes the fingerprint. Only simultaneous changes in
//! several words can collide, with probability about 2^-64.

use crate::error;
use crate::parse::attrs::{
    walk, INET_DIAG_INFO, INET_DIAG_MEMINFO, INET_DIAG_PAD, INET_DIAG_SKMEMINFO,
};
use crate::parse::diag_msg::{InetDiagMsg, INET_DIAG_MSG_LEN};
use crate::parse::tcp_info::FIELDS;

/// Odd multiplier of the fold (FxHash's 64-bit constant).
const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
/// Words of `tcp_info` covered by the per-word mask (280 bytes today; room to grow).
const MASK_WORDS: usize = 48;

/// What counts as a change. The default follows DESIGN.md §3.5.
#[derive(Debug, Clone)]
pub struct ChangeRule {
    /// `tcp_info` fields (camelCase names) whose changes are ignored.
    pub ignore_tcp_info_fields: Vec<String>,
    /// Whether `INET_DIAG_MEMINFO`/`INET_DIAG_SKMEMINFO` changes count.
    pub include_memory: bool,
    /// Only the TCP state counts; everything else is ignored.
    pub state_only: bool,
}

/// The four elapsed-time fields that change on every poll of an idle socket.
pub const DEFAULT_IGNORED_FIELDS: [&str; 4] =
    ["lastDataSent", "lastAckSent", "lastDataRecv", "lastAckRecv"];

impl Default for ChangeRule {
    fn default() -> Self {
        Self {
            ignore_tcp_info_fields: DEFAULT_IGNORED_FIELDS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            include_memory: false,
            state_only: false,
        }
    }
}

/// A compiled [`ChangeRule`]: a per-word byte mask over `tcp_info`.
#[derive(Debug, Clone)]
pub struct Fingerprinter {
    info_mask: [u64; MASK_WORDS],
    include_memory: bool,
    state_only: bool,
}

impl Fingerprinter {
    /// Compiles `rule`.
    ///
    /// # Errors
    /// Returns the unknown field name if `rule` names a field `tcp_info` does not have.
    pub fn new(rule: &ChangeRule) -> Result<Self, String> {
        let mut bytes = [0xFFu8; MASK_WORDS * 8];
        for name in &rule.ignore_tcp_info_fields {
            let f = FIELDS
                .iter()
                .find(|f| f.name == name)
                .ok_or_else(|| name.clone())?;
            bytes[f.offset..f.offset + f.size].fill(0);
        }
        let mut info_mask = [0u64; MASK_WORDS];
        for (i, w) in info_mask.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            *w = u64::from_ne_bytes(b);
        }
        Ok(Self {
            info_mask,
            include_memory: rule.include_memory,
            state_only: rule.state_only,
        })
    }

    /// The fingerprint of one `inet_diag` reply payload (`inet_diag_msg` and its
    /// attributes), in a single pass over the attribute list.
    ///
    /// It walks the raw `rtattr` list itself instead of taking an [`Attrs`]: at 100k
    /// sockets with 1% changing, 99% of replies need only this, and indexing their
    /// attributes first cost as much again (`Attrs::parse` was 4.5% of a poll's samples,
    /// `fingerprint` 5.3%; docs/BENCHMARKS.md, "Session 7"). Attributes fold in the
    /// kernel's emission order, which is fixed for a socket, so equal replies still give
    /// equal fingerprints.
    ///
    /// # Errors
    /// [`error::Error::Malformed`] exactly when [`parse_diag`] would fail on `payload` (a short
    /// header, an attribute length shorter than its header or past the end), with the
    /// same message and offset.
    ///
    /// [`parse_diag`]: crate::parse::diag_msg::parse_diag
    pub fn fingerprint(&self, payload: &[u8]) -> error::Result<u64> {
        let msg = InetDiagMsg::new(payload)?;
        let seed = fold(0, u64::from(msg.state()));
        let mut lanes = [seed, 0, 0, 0];
        for attr in walk(payload, INET_DIAG_MSG_LEN) {
            let (ty, _, body) = attr?;
            if self.state_only {
                continue;
            }
            lanes[0] = fold(lanes[0], u64::from(ty) << 32 | body.len() as u64);
            match ty {
                INET_DIAG_INFO => fold_lanes(&mut lanes, body, |i| {
                    self.info_mask.get(i).copied().unwrap_or(u64::MAX)
                }),
                INET_DIAG_MEMINFO | INET_DIAG_SKMEMINFO if !self.include_memory => {}
                INET_DIAG_PAD => {}
                _ => fold_lanes(&mut lanes, body, |_| u64::MAX),
            }
        }
        if self.state_only {
            return Ok(seed);
        }
        Ok(lanes.iter().fold(seed, |h, l| fold(h, *l)))
    }
}

#[inline]
fn fold(h: u64, word: u64) -> u64 {
    (h.rotate_left(5) ^ word).wrapping_mul(K)
}

/// Folds `bytes` as 8-byte words into four independent lanes (word `i` into lane
/// `i % 4`), each word ANDed with `mask(i)`. Four chains let the CPU overlap the
/// multiplications (one chain was the bottleneck: ~5 cycles per word, serial). Each lane
/// step is still a bijection, and the lanes are combined by folds that are bijections in
/// each lane, so a change in one word still always changes the fingerprint.
#[inline]
fn fold_lanes(lanes: &mut [u64; 4], bytes: &[u8], mask: impl Fn(usize) -> u64) {
    let word = |c: &[u8]| u64::from_ne_bytes(c.try_into().unwrap_or_default());
    let mut chunks = bytes.chunks_exact(32);
    let mut i = 0;
    for c in chunks.by_ref() {
        lanes[0] = fold(lanes[0], word(&c[0..8]) & mask(i));
        lanes[1] = fold(lanes[1], word(&c[8..16]) & mask(i + 1));
        lanes[2] = fold(lanes[2], word(&c[16..24]) & mask(i + 2));
        lanes[3] = fold(lanes[3], word(&c[24..32]) & mask(i + 3));
        i += 4;
    }
    let rest = chunks.remainder();
    let mut words = rest.chunks_exact(8);
    for (k, c) in words.by_ref().enumerate() {
        lanes[k] = fold(lanes[k], word(c) & mask(i + k));
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        // Assembled byte by byte: a variable-length copy here compiled to a `memcpy` call
        // per attribute (~6% of a poll's user time in a profile).
        let w = tail
            .iter()
            .enumerate()
            .fold(0u64, |w, (k, b)| w | u64::from(*b) << (8 * k));
        lanes[3] = fold(lanes[3], w & mask(i + rest.len() / 8));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply with a 280-byte INFO, a CONG, a SKMEMINFO and a BBRINFO attribute, and
    /// the payload range of each attribute type.
    fn reply() -> (Vec<u8>, Vec<(u16, std::ops::Range<usize>)>) {
        let mut m = vec![0u8; 72];
        m[0] = 2;
        m[1] = 1;
        let mut ranges = Vec::new();
        for (ty, len) in [(2u16, 280usize), (4, 4), (7, 36), (16, 20)] {
            let attr_len = u16::try_from(4 + len).unwrap();
            m.extend_from_slice(&attr_len.to_ne_bytes());
            m.extend_from_slice(&ty.to_ne_bytes());
            ranges.push((ty, m.len()..m.len() + len));
            m.extend((0..len).map(|i| u8::try_from(i % 251).unwrap()));
            while m.len() % 4 != 0 {
                m.push(0);
            }
        }
        (m, ranges)
    }

    fn fp(f: &Fingerprinter, m: &[u8]) -> u64 {
        f.fingerprint(m).unwrap()
    }

    #[test]
    fn every_counted_byte_changes_the_fingerprint_and_ignored_ones_do_not() {
        let f = Fingerprinter::new(&ChangeRule::default()).unwrap();
        let (base, ranges) = reply();
        let h0 = fp(&f, &base);
        let last_fields = 44..60; // lastDataSent, lastAckSent, lastDataRecv, lastAckRecv
        let mut counted = 0;
        for (ty, range) in ranges {
            for off in range.clone() {
                let mut m = base.clone();
                m[off] ^= 0x5A;
                let ignored = (ty == 2 && last_fields.contains(&(off - range.start))) || ty == 7;
                let changed = fp(&f, &m) != h0;
                assert_eq!(
                    changed,
                    !ignored,
                    "attribute {ty}, byte {}",
                    off - range.start
                );
                counted += usize::from(changed);
            }
        }
        assert_eq!(counted, 280 - 16 + 4 + 20);
        let mut m = base.clone();
        m[1] = 8;
        assert_ne!(fp(&f, &m), h0, "a state change counts");
    }

    #[test]
    fn include_memory_and_state_only() {
        let (base, _) = reply();
        let skmem_byte = 72 + 4 + 280 + 4 + 4 + 4 + 3;
        let mut m = base.clone();
        m[skmem_byte] ^= 1;
        let with_mem = Fingerprinter::new(&ChangeRule {
            include_memory: true,
            ..ChangeRule::default()
        })
        .unwrap();
        assert_ne!(fp(&with_mem, &m), fp(&with_mem, &base));
        let state_only = Fingerprinter::new(&ChangeRule {
            state_only: true,
            ..ChangeRule::default()
        })
        .unwrap();
        let mut info_changed = base.clone();
        info_changed[72 + 4 + 120] ^= 1;
        assert_eq!(fp(&state_only, &info_changed), fp(&state_only, &base));
        assert!(Fingerprinter::new(&ChangeRule {
            ignore_tcp_info_fields: vec!["nope".into()],
            ..ChangeRule::default()
        })
        .is_err());
    }
}
