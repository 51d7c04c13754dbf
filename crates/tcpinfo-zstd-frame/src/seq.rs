//! The sequences section (RFC 8878 §3.1.1.3.2) with the predefined FSE distributions
//! (Predefined_Mode for all three symbol types, so no table description): encoding
//! tables built once, then per frame the codes, extra bits and states written backwards.

/// One sequence: `ll` literals, then a match of `ml` bytes at `Offset_Value` `of`
/// (offset + 3, or 1 for "the previous offset" after at least one literal).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Seq {
    pub ll: u32,
    pub ml: u32,
    pub of: u32,
}

const LL_NORM: [i16; 36] = [
    4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1,
    -1, -1, -1, -1,
];
const ML_NORM: [i16; 53] = [
    1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1,
];
const OF_NORM: [i16; 29] = [
    1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1,
];
/// Literals length codes 16..=35: their baselines and extra bits (codes 0..=15 are the length).
const LL_BASE: [u32; 20] = [
    16, 18, 20, 22, 24, 28, 32, 40, 48, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768,
    65536,
];
const LL_BITS: [u32; 20] = [
    1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
];
/// Match length codes 32..=52 (codes 0..=31 are lengths 3..=34).
const ML_BASE: [u32; 21] = [
    35, 37, 39, 41, 43, 47, 51, 59, 67, 83, 99, 131, 259, 515, 1027, 2051, 4099, 8195, 16387,
    32771, 65539,
];
const ML_BITS: [u32; 21] = [
    1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
];

/// A code with its baseline and extra bits.
#[derive(Clone, Copy, Default)]
struct Code {
    symbol: u8,
    bits: u8,
    base: u32,
}

/// The FSE encoding table of one predefined distribution.
pub(crate) struct Fse {
    /// `[symbol << log | state]`: the decoder state X that yields the symbol and moves to
    /// `state`, as `X | bits << 8 | value << 16` (the `bits` bits `value` a decoder reads
    /// from X to reach `state`).
    pub enc: Vec<u32>,
    /// Per symbol: a state that yields it (the last sequence's start).
    pub first: Vec<u32>,
}

impl Fse {
    pub fn new(norm: &[i16], log: u32) -> Self {
        let size = 1usize << log;
        let mut symbol_at = vec![0usize; size];
        let mut high = size - 1;
        for (s, &c) in norm.iter().enumerate() {
            if c == -1 {
                symbol_at[high] = s;
                high -= 1;
            }
        }
        let step = (size >> 1) + (size >> 3) + 3;
        let mut pos = 0;
        for (s, &c) in norm.iter().enumerate() {
            for _ in 0..c.max(0) {
                symbol_at[pos] = s;
                pos = (pos + step) & (size - 1);
                while pos > high {
                    pos = (pos + step) & (size - 1);
                }
            }
        }
        assert_eq!(pos, 0, "a distribution that does not fill its table");
        let mut next: Vec<usize> = norm
            .iter()
            .map(|&c| usize::from(c.unsigned_abs()))
            .collect();
        let mut enc = vec![u32::MAX; norm.len() << log];
        let mut first = vec![0u32; norm.len()];
        for (x, &s) in symbol_at.iter().enumerate() {
            let state = next[s];
            next[s] += 1;
            let bits = log - state.ilog2();
            let base = (state << bits) - size;
            first[s] = x as u32;
            for to in base..base + (1 << bits) {
                enc[(s << log) | to] = x as u32 | bits << 8 | ((to - base) as u32) << 16;
            }
        }
        assert!(
            norm.iter()
                .enumerate()
                .all(|(s, &c)| c == 0
                    || enc[s << log..(s + 1) << log].iter().all(|&e| e != u32::MAX)),
            "an incomplete encoding table"
        );
        Self { enc, first }
    }
}

/// The predefined tables and code lookups, built once.
pub(crate) struct SeqTables {
    ll: Fse,
    ml: Fse,
    of: Fse,
    /// Literals length code of lengths below 64.
    ll_small: [Code; 64],
    /// Match length code of `ml - 3` below 128.
    ml_small: [Code; 128],
}

fn code_of(v: u32, direct: u32, base: &[u32], bits: &[u32]) -> Code {
    if v < direct {
        return Code {
            symbol: v as u8,
            bits: 0,
            base: v,
        };
    }
    let i = base.iter().rposition(|&b| b <= v).unwrap_or(0);
    Code {
        symbol: (direct as usize + i) as u8,
        bits: bits[i] as u8,
        base: base[i],
    }
}

impl SeqTables {
    pub fn new() -> Self {
        Self {
            ll: Fse::new(&LL_NORM, 6),
            ml: Fse::new(&ML_NORM, 6),
            of: Fse::new(&OF_NORM, 5),
            ll_small: std::array::from_fn(|v| code_of(v as u32, 16, &LL_BASE, &LL_BITS)),
            ml_small: std::array::from_fn(|v| {
                let c = code_of(v as u32 + 3, 35, &ML_BASE, &ML_BITS);
                Code {
                    base: c.base - 3,
                    symbol: c.symbol.wrapping_sub(3),
                    bits: c.bits,
                }
            }),
        }
    }

    #[inline]
    fn ll_code(&self, ll: u32) -> Code {
        if ll < 64 {
            return self.ll_small[ll as usize];
        }
        // 64 → code 25 with 6 bits, 128 → 26 with 7, …
        power_of_two_code(ll, 19)
    }

    /// Code of a match length given as `ml - 3`.
    #[inline]
    fn ml_code(&self, mlb: u32) -> Code {
        if mlb < 128 {
            return self.ml_small[mlb as usize];
        }
        // 128 (a length of 131) → code 43 with 7 bits, 256 → 44 with 8, …
        power_of_two_code(mlb, 36)
    }

    /// Writes the sequences' bit stream (not the count and modes) into `buf`, which holds
    /// `seqs.len() * 13 + 16` bytes; returns its length. `seqs` is not empty.
    pub fn encode(&self, seqs: &[Seq], buf: &mut [u8]) -> usize {
        assert!(
            buf.len() >= seqs.len() * 13 + 16,
            "a sequences buffer too small"
        );
        // The bit writer's state in locals: `acc` holds `n` bits.
        let (mut acc, mut n, mut pos) = (0u64, 0u32, 0usize);
        let mut flush = |acc: &mut u64, n: &mut u32| {
            buf[pos..pos + 8].copy_from_slice(&acc.to_le_bytes());
            let k = *n >> 3;
            pos += k as usize;
            *acc >>= k * 8;
            *n &= 7;
        };
        let add = |acc: &mut u64, n: &mut u32, v: u32, bits: u32| {
            *acc |= u64::from(v) << *n;
            *n += bits;
        };
        let (last, rest) = seqs.split_last().expect("at least one sequence");
        let (ll, ml, of) = (
            self.ll_code(last.ll),
            self.ml_code(last.ml - 3),
            last.of.ilog2(),
        );
        let mut ll_state = self.ll.first[usize::from(ll.symbol)];
        let mut ml_state = self.ml.first[usize::from(ml.symbol)];
        let mut of_state = self.of.first[of as usize];
        // A decoder reads a sequence's extra bits in the order OF, ML, LL: written in
        // reverse (the LL and ML ones, at most 32 bits, then the OF ones, at most 16).
        add(&mut acc, &mut n, last.ll - ll.base, u32::from(ll.bits));
        add(&mut acc, &mut n, last.ml - 3 - ml.base, u32::from(ml.bits));
        flush(&mut acc, &mut n);
        add(&mut acc, &mut n, last.of - (1 << of), of);
        for s in rest.iter().rev() {
            let (ll, ml, of) = (self.ll_code(s.ll), self.ml_code(s.ml - 3), s.of.ilog2());
            // A decoder updates the states in the order LL, ML, OF: written in reverse
            // (at most 17 bits, after at most 16 + 7 pending).
            let e = self.of.enc[(of as usize) << 5 | of_state as usize];
            add(&mut acc, &mut n, e >> 16, (e >> 8) & 0xFF);
            of_state = e & 0xFF;
            let e = self.ml.enc[usize::from(ml.symbol) << 6 | ml_state as usize];
            add(&mut acc, &mut n, e >> 16, (e >> 8) & 0xFF);
            ml_state = e & 0xFF;
            let e = self.ll.enc[usize::from(ll.symbol) << 6 | ll_state as usize];
            add(&mut acc, &mut n, e >> 16, (e >> 8) & 0xFF);
            ll_state = e & 0xFF;
            flush(&mut acc, &mut n);
            add(&mut acc, &mut n, s.ll - ll.base, u32::from(ll.bits));
            add(&mut acc, &mut n, s.ml - 3 - ml.base, u32::from(ml.bits));
            flush(&mut acc, &mut n);
            add(&mut acc, &mut n, s.of - (1 << of), of);
        }
        // A decoder starts by reading the LL, OF, then ML initial states.
        add(&mut acc, &mut n, ml_state, 6);
        add(&mut acc, &mut n, of_state, 5);
        flush(&mut acc, &mut n);
        add(&mut acc, &mut n, ll_state, 6);
        add(&mut acc, &mut n, 1, 1);
        flush(&mut acc, &mut n);
        pos + usize::from(n > 0)
    }
}

/// The code of a length past the table of small ones: its power of two picks the symbol
/// (`log2 + symbol_offset`), and the bits below that power are the extra bits.
#[inline]
fn power_of_two_code(v: u32, symbol_offset: u32) -> Code {
    let hb = v.ilog2();
    Code {
        symbol: (hb + symbol_offset) as u8,
        bits: hb as u8,
        base: 1 << hb,
    }
}
