//! The backward bit stream of zstd's entropy-coded parts (RFC 8878 §4.1): bits are
//! appended low to high into little-endian bytes, then a single `1` bit marks the end; a
//! decoder starts at that mark and reads towards the beginning, so what is written last
//! is read first.

/// Appends bits into a byte slice the caller sized (see each user's bound), keeping up
/// to 63 pending bits in a register.
pub(crate) struct BitWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
    acc: u64,
    n: u32,
}

impl<'a> BitWriter<'a> {
    /// A writer continuing at `pos` with `n` pending bits `acc` (`n` at most 63).
    pub fn resume(buf: &'a mut [u8], pos: usize, acc: u64, n: u32) -> Self {
        Self { buf, pos, acc, n }
    }

    /// Appends the low `bits` bits of `v` (which has no higher bits set). The pending
    /// bits must stay at most 63: callers `flush` often enough.
    #[inline]
    pub fn add(&mut self, v: u64, bits: u32) {
        debug_assert!(bits == 64 || v >> bits == 0);
        debug_assert!(self.n + bits <= 63);
        self.acc |= v << self.n;
        self.n += bits;
    }

    /// Stores the whole pending bytes (leaving fewer than 8 bits pending).
    #[inline]
    pub fn flush(&mut self) {
        let k = (self.n >> 3) as usize;
        self.buf[self.pos..self.pos + 8].copy_from_slice(&self.acc.to_le_bytes());
        self.pos += k;
        self.acc >>= k * 8;
        self.n &= 7;
    }

    /// Adds the end mark and returns the stream's length in bytes.
    pub fn finish(mut self) -> usize {
        self.add(1, 1);
        self.flush();
        self.pos + usize::from(self.n > 0)
    }
}
