//! A 64-bit fingerprint of the parts of a message that count as a change.
//!
//! The fold is hand-written (not `std::hash`) for two reasons: it runs once per socket
//! per poll, over ~300 bytes, so it must be a few nanoseconds; and every step
//! `h = (rotl(h, 5) ^ word) * K` is a bijection of `h` for a fixed word, so a change in a
//! single 8-byte word *always* changes the fingerprint. Only simultaneous changes in
//! several words can collide, with probability about 2^-64.

use crate::parse::attrs::{
    Attrs, INET_DIAG_INFO, INET_DIAG_MEMINFO, INET_DIAG_PAD, INET_DIAG_SKMEMINFO,
};
use crate::parse::diag_msg::InetDiagMsg;
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

    /// The fingerprint of one message.
    pub fn fingerprint(&self, msg: &InetDiagMsg<'_>, attrs: &Attrs<'_>) -> u64 {
        let mut h = fold(0, u64::from(msg.state()));
        if self.state_only {
            return h;
        }
        for (ty, payload) in attrs.iter() {
            h = fold(h, u64::from(ty) << 32 | payload.len() as u64);
            match ty {
                INET_DIAG_INFO => h = self.fold_masked(h, payload),
                INET_DIAG_MEMINFO | INET_DIAG_SKMEMINFO if !self.include_memory => {}
                INET_DIAG_PAD => {}
                _ => h = fold_bytes(h, payload),
            }
        }
        h
    }

    fn fold_masked(&self, mut h: u64, payload: &[u8]) -> u64 {
        let mut chunks = payload.chunks_exact(8);
        for (i, c) in chunks.by_ref().enumerate() {
            let mask = self.info_mask.get(i).copied().unwrap_or(u64::MAX);
            h = fold(
                h,
                u64::from_ne_bytes(c.try_into().unwrap_or_default()) & mask,
            );
        }
        fold_tail(h, chunks.remainder())
    }
}

#[inline]
fn fold(h: u64, word: u64) -> u64 {
    (h.rotate_left(5) ^ word).wrapping_mul(K)
}

fn fold_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    for c in chunks.by_ref() {
        h = fold(h, u64::from_ne_bytes(c.try_into().unwrap_or_default()));
    }
    fold_tail(h, chunks.remainder())
}

fn fold_tail(h: u64, tail: &[u8]) -> u64 {
    if tail.is_empty() {
        return h;
    }
    let mut b = [0u8; 8];
    b[..tail.len()].copy_from_slice(tail);
    fold(h, u64::from_ne_bytes(b))
}
