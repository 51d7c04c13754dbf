//! The FSE-compressed form of the Huffman weights (RFC 8878 §4.2.1.2): a header byte
//! under 128 (the size of what follows), the FSE table description of the weights'
//! distribution, then the weights as an FSE bit stream of two interleaved states. Built
//! once; about half the size of the direct form (4 bits a weight) for the literal table.

use crate::seq::Fse;

/// Accuracy log of the weights' distribution (the format's maximum for weights).
const LOG: u32 = 6;

/// The description of `weights` (the weights of bytes 0..N, the last byte's implied
/// weight not included), or `None` when this simple encoder cannot (a weight too frequent
/// for a state to read at least one bit, or the result too long): use the direct form.
pub(crate) fn compressed(weights: &[u32]) -> Option<Vec<u8>> {
    let n = weights.len();
    if n < 2 {
        return None;
    }
    let max = *weights.iter().max()? as usize;
    let mut counts = vec![0usize; max + 1];
    for &w in weights {
        counts[w as usize] += 1;
    }
    // Normalize to 64: every present weight at least 1, the rounding given to the largest.
    let size: usize = 1 << LOG;
    let mut norm: Vec<i16> = counts
        .iter()
        .map(|&c| {
            let share = if c == 0 {
                0
            } else {
                ((c * size + n / 2) / n).max(1)
            };
            i16::try_from(share).unwrap_or(i16::MAX)
        })
        .collect();
    let sum: i32 = norm.iter().map(|&c| i32::from(c)).sum();
    let big = (0..norm.len()).max_by_key(|&i| norm[i])?;
    let top = i32::from(norm[big]) + (1 << LOG) - sum;
    // A count above half the table would give a state that reads no bits, and the
    // decoder finds the stream's end by reading past it.
    if !(1..=(1 << (LOG - 1))).contains(&top) {
        return None;
    }
    norm[big] = i16::try_from(top).ok()?;
    let mut out = vec![0u8];
    write_ncount(&norm, &mut out);
    let fse = Fse::new(&norm, LOG);
    let mut bits = BackBits::default();
    // A decoder alternates: weight 0 from state 1, weight 1 from state 2, … Written from
    // the end: the last two weights only choose the states' starting points.
    let state_of = |w: u32| fse.first[w as usize];
    let step = |bits: &mut BackBits, state: u32, w: u32| {
        let e = fse.enc[(w as usize) << LOG | state as usize];
        bits.add(u64::from(e >> 16), (e >> 8) & 0xFF);
        e & 0xFF
    };
    let (mut s1, mut s2);
    let mut i = n;
    if n % 2 == 1 {
        s1 = state_of(weights[n - 1]);
        s2 = state_of(weights[n - 2]);
        if n >= 3 {
            s1 = step(&mut bits, s1, weights[n - 3]);
        }
        i = n - 3;
    } else {
        s2 = state_of(weights[n - 1]);
        s1 = state_of(weights[n - 2]);
        i -= 2;
    }
    while i > 0 {
        s2 = step(&mut bits, s2, weights[i - 1]);
        s1 = step(&mut bits, s1, weights[i - 2]);
        i -= 2;
    }
    // A decoder reads state 1, then state 2.
    bits.add(u64::from(s2), LOG);
    bits.add(u64::from(s1), LOG);
    bits.finish(&mut out);
    out[0] = u8::try_from(out.len() - 1).ok().filter(|&b| b < 128)?;
    Some(out)
}

/// A backward bit stream kept whole in memory (built once, so simplicity over speed).
#[derive(Default)]
struct BackBits {
    bits: Vec<bool>,
}

impl BackBits {
    fn add(&mut self, v: u64, n: u32) {
        self.bits.extend((0..n).map(|i| v >> i & 1 == 1));
    }

    fn finish(mut self, out: &mut Vec<u8>) {
        self.bits.push(true);
        for byte in self.bits.chunks(8) {
            out.push(
                byte.iter()
                    .rev()
                    .fold(0u8, |acc, &b| acc << 1 | u8::from(b)),
            );
        }
    }
}

/// The FSE table description (RFC 8878 §4.1.1) of `norm` (accuracy log `LOG`, no
/// "less than 1" counts).
fn write_ncount(norm: &[i16], out: &mut Vec<u8>) {
    let mut bits = BackBits::default();
    bits.add(u64::from(LOG - 5), 4);
    let mut remaining = (1i32 << LOG) + 1;
    let mut threshold = 1i32 << LOG;
    let mut nb = LOG + 1;
    let mut symbol = 0usize;
    let mut previous_zero = false;
    while symbol < norm.len() && remaining > 1 {
        if previous_zero {
            let mut start = symbol;
            while norm[symbol] == 0 {
                symbol += 1;
            }
            while symbol >= start + 3 {
                start += 3;
                bits.add(3, 2);
            }
            bits.add((symbol - start) as u64, 2);
        }
        let count = i32::from(norm[symbol]);
        symbol += 1;
        let max = (2 * threshold - 1) - remaining;
        remaining -= count;
        let mut value = count + 1;
        if value >= threshold {
            value += max;
        }
        bits.add(
            u64::try_from(value).unwrap_or(0),
            if value < max { nb - 1 } else { nb },
        );
        previous_zero = value == 1;
        while remaining < threshold {
            nb -= 1;
            threshold >>= 1;
        }
    }
    // Forward order (the description is read from its start), whole bytes.
    let mut byte = 0u8;
    for (i, &b) in bits.bits.iter().enumerate() {
        byte |= u8::from(b) << (i % 8);
        if i % 8 == 7 {
            out.push(byte);
            byte = 0;
        }
    }
    if bits.bits.len() % 8 != 0 {
        out.push(byte);
    }
}
