//! A greedy match finder over one input: a hash table of 8-byte positions (4 KiB, small
//! enough to stay cached between the archive writer's system calls), emptied per frame by
//! a generation counter (no clearing), the last offset reused as a repeat code.
//!
//! Matches of at least 8 bytes: on the archive's lines (base64 and JSON) the 5-byte
//! matches that a shorter minimum also takes cost more as sequences than they save as
//! literals. Measured on the fixture lines (docs/BENCHMARKS.md, "Session 7"): 5 → 8 bytes
//! made one-line frames 343 → 339 B, two-line 452 → 446, three-line 552 → 541, with 22%
//! fewer instructions (fewer sequences to encode, and the literal table built for it).

use crate::seq::Seq;

const HASH_LOG: u32 = 10;
/// The shortest match taken (at most 8: one 64-bit read holds it).
const MIN_MATCH: usize = 8;

/// The hash table, kept between frames; entries are `generation << 16 | position`.
pub(crate) struct Matcher {
    table: Box<[u32; 1 << HASH_LOG]>,
    generation: u32,
}

#[inline]
fn read64(src: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(src[at..at + 8].try_into().unwrap_or_default())
}

/// The first `MIN_MATCH` bytes of a read, hashed.
#[inline]
fn hash(v: u64) -> usize {
    ((v << (64 - 8 * MIN_MATCH)).wrapping_mul(0x9E37_79B1_85EB_CA87) >> (64 - HASH_LOG)) as usize
}

/// Bytes `x` and `y` have in common from their start.
#[inline]
fn common(x: &[u8], y: &[u8]) -> usize {
    let n = x.len().min(y.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(x[i..i + 8].try_into().unwrap_or_default())
            ^ u64::from_le_bytes(y[i..i + 8].try_into().unwrap_or_default());
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && x[i] == y[i] {
        i += 1;
    }
    i
}

impl Matcher {
    pub fn new() -> Self {
        Self {
            table: Box::new([0; 1 << HASH_LOG]),
            generation: 0,
        }
    }

    /// Splits `src` (at most 65535 bytes) into `seqs` and the literals they leave, in
    /// `lits` (both cleared first); the literals after the last match end `lits`.
    pub fn parse(&mut self, src: &[u8], lits: &mut Vec<u8>, seqs: &mut Vec<Seq>) {
        debug_assert!(src.len() <= 0xFFFF);
        lits.clear();
        seqs.clear();
        self.generation += 1;
        if self.generation > 0xFFFF {
            self.table.fill(0);
            self.generation = 1;
        }
        let gen = self.generation << 16;
        let mut anchor = 0usize;
        let mut last_offset = 1usize;
        if src.len() >= 8 {
            let end = src.len() - 8;
            let mut ip = 0usize;
            let mut misses = 0usize;
            while ip <= end {
                let v = read64(src, ip);
                let h = hash(v);
                let e = self.table[h];
                self.table[h] = gen | ip as u32;
                let cand = (e & 0xFFFF) as usize;
                if e & 0xFFFF_0000 != gen || (read64(src, cand) ^ v) << (64 - 8 * MIN_MATCH) != 0 {
                    misses += 1;
                    ip += 1 + (misses >> 3);
                    continue;
                }
                misses = 0;
                let mut start = ip;
                let mut from = cand;
                let mut len = MIN_MATCH + common(&src[cand + MIN_MATCH..], &src[ip + MIN_MATCH..]);
                while start > anchor && from > 0 && src[start - 1] == src[from - 1] {
                    start -= 1;
                    from -= 1;
                    len += 1;
                }
                let offset = start - from;
                let ll = start - anchor;
                lits.extend_from_slice(&src[anchor..start]);
                let of = if ll > 0 && offset == last_offset {
                    1
                } else {
                    offset + 3
                };
                last_offset = offset;
                seqs.push(Seq {
                    ll: ll as u32,
                    ml: len as u32,
                    of: of as u32,
                });
                ip = start + len;
                anchor = ip;
                if ip - 2 <= end {
                    self.table[hash(read64(src, ip - 2))] = gen | (ip - 2) as u32;
                }
            }
        }
        lits.extend_from_slice(&src[anchor..]);
    }
}
