//! The fixed Huffman table for literals (RFC 8878 §4.2.1): built once from constant byte
//! counts, its tree description serialized once (copied into every frame), and the
//! literal streams encoded with it.

use crate::bits::BitWriter;

/// Longest code the format allows for literals.
const MAX_BITS: u32 = 11;
/// The code table entry of a byte without a code (a flag, with no bits).
const MISSING: u32 = 1 << 31;

/// A literal Huffman table and its tree description.
pub(crate) struct HuffTable {
    /// Per byte: `code | bits << 16`; [`MISSING`] for a byte without a code.
    codes: [u32; 256],
    /// The Huffman tree description, as it opens a compressed literals section.
    pub desc: Vec<u8>,
}

/// Code lengths of a Huffman code for `counts` (0 for a count of 0), at most `MAX_BITS`:
/// when the optimal code is longer, small counts are raised until it is not.
fn code_lengths(counts: &[u32; 256]) -> [u32; 256] {
    let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    let mut floor = 0u64;
    loop {
        let lens =
            huffman_lengths(&counts.map(|c| if c == 0 { 0 } else { u64::from(c).max(floor) }));
        if lens.iter().all(|&l| l <= MAX_BITS) {
            return lens;
        }
        floor = (floor * 2).max(total >> 12).max(1);
    }
}

/// Optimal (unlimited) Huffman code lengths; quadratic, run once.
fn huffman_lengths(counts: &[u64; 256]) -> [u32; 256] {
    // Nodes: 0..256 leaves, then internal ones; `parent[i]` links upwards.
    let mut weight: Vec<u64> = counts.to_vec();
    let mut parent: Vec<usize> = vec![usize::MAX; 256];
    let mut live: Vec<usize> = (0..256).filter(|&i| counts[i] > 0).collect();
    let mut lens = [0u32; 256];
    if live.len() < 2 {
        for &i in &live {
            lens[i] = 1;
        }
        return lens;
    }
    while live.len() > 1 {
        live.sort_by_key(|&i| (std::cmp::Reverse(weight[i]), std::cmp::Reverse(i)));
        let a = live.pop().unwrap_or_default();
        let b = live.pop().unwrap_or_default();
        let node = weight.len();
        weight.push(weight[a] + weight[b]);
        parent.push(usize::MAX);
        parent[a] = node;
        parent[b] = node;
        live.push(node);
    }
    for (i, len) in lens.iter_mut().enumerate() {
        if counts[i] > 0 {
            let mut depth = 0;
            let mut at = i;
            while parent[at] != usize::MAX {
                at = parent[at];
                depth += 1;
            }
            *len = depth;
        }
    }
    lens
}

impl HuffTable {
    /// The table for `counts`; the largest byte with a non-zero count must be at most 128
    /// (the direct tree description's limit), and at least two counts non-zero.
    pub fn new(counts: &[u32; 256]) -> Self {
        let lens = code_lengths(counts);
        let max_bits = lens.iter().copied().max().unwrap_or(0);
        let weight = lens.map(|l| if l == 0 { 0 } else { max_bits + 1 - l });
        // Codes in the order a decoder fills its table: by increasing weight, then by byte.
        let mut codes = [MISSING; 256];
        let mut next = 0u32;
        for w in 1..=max_bits {
            for b in 0..256 {
                if weight[b] == w {
                    codes[b] = (next >> (w - 1)) | (lens[b] << 16);
                    next += 1 << (w - 1);
                }
            }
        }
        assert_eq!(next, 1 << max_bits, "an incomplete Huffman code");
        // Direct representation: a header byte 127 + N, then the weights of bytes 0..N
        // (4 bits each, high nibble first); byte N (the last with a code) gets the weight
        // that completes the code, so it is not written.
        let last = (0..256).rev().find(|&b| weight[b] > 0).unwrap_or(0);
        assert!(
            (1..=128).contains(&last),
            "the direct tree description covers bytes 0..=128"
        );
        let mut desc = vec![u8::try_from(127 + last).unwrap_or(u8::MAX)];
        for pair in weight[..last].chunks(2) {
            let hi = pair[0];
            let lo = pair.get(1).copied().unwrap_or(0);
            desc.push(u8::try_from((hi << 4) | lo).unwrap_or(0));
        }
        // The FSE-compressed form when it is shorter.
        if let Some(fse) = crate::weights::compressed(&weight[..last]) {
            if fse.len() < desc.len() {
                desc = fse;
            }
        }
        Self { codes, desc }
    }

    /// Encodes `lits` as one Huffman stream into `buf` (which holds at least
    /// `lits.len() * 11 / 8 + 16` bytes), returning its length, or `None` when a literal
    /// has no code. The first literal is what a decoder reads first, so the stream is
    /// written from the last literal back.
    pub fn encode(&self, lits: &[u8], buf: &mut [u8]) -> Option<usize> {
        assert!(
            buf.len() >= lits.len() * 11 / 8 + 16,
            "a Huffman stream buffer too small"
        );
        let codes = &self.codes;
        // The bit writer's state in locals: `acc` holds `n` (< 8 after a flush) bits.
        let (mut acc, mut n, mut pos, mut seen) = (0u64, 0u32, 0usize, 0u32);
        let mut put = |b: u8, acc: &mut u64, n: &mut u32| {
            let e = codes[usize::from(b)];
            seen |= e;
            *acc |= u64::from(e & 0xFFFF) << *n;
            *n += (e >> 16) & 0xFF;
        };
        let head = lits.len() % 5;
        let (whole, tail) = lits.split_at(lits.len() - head);
        for &b in tail.iter().rev() {
            put(b, &mut acc, &mut n);
        }
        // Five codes of at most 11 bits after at most 7 pending: 62 bits.
        for c in whole.chunks_exact(5).rev() {
            let k = (n >> 3) as usize;
            buf[pos..pos + 8].copy_from_slice(&acc.to_le_bytes());
            pos += k;
            acc >>= k * 8;
            n &= 7;
            put(c[4], &mut acc, &mut n);
            put(c[3], &mut acc, &mut n);
            put(c[2], &mut acc, &mut n);
            put(c[1], &mut acc, &mut n);
            put(c[0], &mut acc, &mut n);
        }
        if seen & MISSING != 0 {
            return None;
        }
        let mut w = BitWriter::resume(buf, pos, acc, n);
        w.flush();
        Some(w.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::HuffTable;

    #[test]
    fn the_literal_table_has_the_compressed_description() {
        let t = HuffTable::new(&crate::counts::literal_counts());
        // FSE-compressed weights (header byte under 128), well below the direct form's
        // 64 bytes; every frame of the roundtrip tests checks libzstd reads it.
        assert!(t.desc[0] < 128, "direct form chosen");
        assert_eq!(usize::from(t.desc[0]) + 1, t.desc.len());
        assert!(t.desc.len() < 60, "{} bytes", t.desc.len());
    }
}
