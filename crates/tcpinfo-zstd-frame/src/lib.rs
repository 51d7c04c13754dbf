//! A hand-written encoder of small, complete, standard zstd frames (RFC 8878).
//!
//! Why: the archive writes one complete frame per open file per flush (so every file is a
//! valid zstd stream at any moment), and for a connection that changes about once per
//! flush that is one frame per ~590-byte JSON line. libzstd rebuilds its entropy tables
//! (histogram, Huffman and FSE tables) for every frame, which costs ~6 µs of CPU for such
//! a line at level 1; a persistent compressor per file costs too much memory at 20k open
//! files. This encoder does that work once: its literal Huffman table is built at startup
//! from constant byte counts of M-Lab ArchivalRecord lines (base64, digits, JSON), its
//! tree description (FSE-compressed weights, 54 bytes) serialized once and copied into
//! each frame, and the sequences use
//! zstd's predefined FSE distributions with precomputed encoding tables.
//!
//! What a frame holds: the magic, a single-segment header with the content size, no
//! dictionary, a content checksum (XXH64) if asked for, and one last block: a compressed
//! block (Huffman literals with the tree description, one stream up to 1023 literals and
//! four above; or raw literals when a literal has no code, a byte never seen in the
//! fixture lines' literals, or Huffman would not be smaller; then predefined-mode
//! sequences from a greedy 8-byte hash match finder) or, when that is not smaller than
//! the input, a raw block. Inputs up to [`MAX_INPUT`] bytes; larger ones get
//! [`Error::TooLarge`] and belong to libzstd.

#![expect(
    clippy::cast_possible_truncation,
    reason = "lengths are bounded by MAX_INPUT (16 bits), codes and states by the format's \
              tables; the tests check every frame against libzstd"
)]

mod bits;
mod counts;
mod huff;
mod matcher;
mod seq;
mod weights;
mod xxh64;

use std::sync::OnceLock;

use huff::HuffTable;
use matcher::Matcher;
use seq::{Seq, SeqTables};

/// Largest input one frame takes (a match position fits 16 bits).
pub const MAX_INPUT: usize = 0xFFFF;

/// Why a frame was not encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The input is longer than [`MAX_INPUT`].
    TooLarge {
        /// The input's length.
        len: usize,
    },
}

impl Error {
    /// A stable code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::TooLarge { .. } => "ZSTD_FRAME_TOO_LARGE",
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::TooLarge { len } => {
                write!(
                    f,
                    "input of {len} bytes is above the small-frame encoder's {MAX_INPUT}"
                )
            }
        }
    }
}

impl std::error::Error for Error {}

/// The tables every encoder shares, built on first use.
struct Tables {
    huff: HuffTable,
    seq: SeqTables,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| Tables {
        huff: HuffTable::new(&counts::literal_counts()),
        seq: SeqTables::new(),
    })
}

/// Encodes frames; holds a 4 KiB hash table plus scratch that grows to the largest
/// input. One per thread.
pub struct FrameEncoder {
    matcher: Matcher,
    lits: Vec<u8>,
    seqs: Vec<Seq>,
    tables: &'static Tables,
    checksum: bool,
}

impl Default for FrameEncoder {
    fn default() -> Self {
        Self::new()
    }
}

const MAGIC: [u8; 4] = 0xFD2F_B528u32.to_le_bytes();

impl FrameEncoder {
    /// An encoder (the shared tables are built by the first one).
    pub fn new() -> Self {
        Self {
            matcher: Matcher::new(),
            lits: Vec::new(),
            seqs: Vec::new(),
            tables: tables(),
            checksum: false,
        }
    }

    /// The encoder with frames carrying a content checksum (`on`) or not (the default).
    #[must_use]
    pub fn with_checksum(mut self, on: bool) -> Self {
        self.checksum = on;
        self
    }

    /// Appends one complete zstd frame of `src` to `out`; returns the frame's length.
    ///
    /// # Errors
    /// [`Error::TooLarge`] when `src` is longer than [`MAX_INPUT`] (`out` is untouched).
    pub fn compress(&mut self, src: &[u8], out: &mut Vec<u8>) -> Result<usize, Error> {
        if src.len() > MAX_INPUT {
            return Err(Error::TooLarge { len: src.len() });
        }
        let start = out.len();
        out.extend_from_slice(&MAGIC);
        // Frame header descriptor: single segment, content size in 1 byte (flag 0) or in
        // 2 bytes holding size - 256 (flag 1); a checksum or not; no dictionary.
        let checksum_flag = if self.checksum { 0x04 } else { 0 };
        if src.len() < 256 {
            out.extend_from_slice(&[0x20 | checksum_flag, src.len() as u8]);
        } else {
            out.push(0x60 | checksum_flag);
            out.extend_from_slice(&((src.len() - 256) as u16).to_le_bytes());
        }
        let block = out.len();
        out.extend_from_slice(&[0; 3]);
        let body = if src.is_empty() {
            0
        } else {
            self.compressed_block(src, out)
        };
        if body > 0 && body < src.len() {
            // Last block, compressed.
            write_block_header(out, block, 1 | 2 << 1 | (body as u32) << 3);
        } else {
            out.truncate(block + 3);
            write_block_header(out, block, 1 | (src.len() as u32) << 3);
            out.extend_from_slice(src);
        }
        if self.checksum {
            out.extend_from_slice(&(xxh64::xxh64(src) as u32).to_le_bytes());
        }
        Ok(out.len() - start)
    }

    /// Adds to `counts` the bytes of the literals the match finder leaves in `src` (at
    /// most [`MAX_INPUT`] bytes): how the constant counts the literal table is built from
    /// are generated (see the `literal_counts` test).
    #[doc(hidden)]
    pub fn count_literals(&mut self, src: &[u8], counts: &mut [u64; 256]) {
        self.matcher.parse(
            &src[..src.len().min(MAX_INPUT)],
            &mut self.lits,
            &mut self.seqs,
        );
        for &b in &self.lits {
            counts[usize::from(b)] += 1;
        }
    }

    /// Appends a compressed block's body to `out`; returns its length, or 0 when it would
    /// not be smaller than `src` (what was appended is then to be cut off).
    fn compressed_block(&mut self, src: &[u8], out: &mut Vec<u8>) -> usize {
        let start = out.len();
        self.matcher.parse(src, &mut self.lits, &mut self.seqs);
        self.literals_section(out);
        if out.len() - start >= src.len() {
            return 0;
        }
        let n = self.seqs.len();
        if n < 0x80 {
            out.push(n as u8);
        } else if n < 0x7F00 {
            out.extend_from_slice(&[(n >> 8) as u8 + 0x80, n as u8]);
        } else {
            out.push(0xFF);
            out.extend_from_slice(&((n - 0x7F00) as u16).to_le_bytes());
        }
        if n > 0 {
            // Symbol compression modes: predefined for literals lengths, offsets, match lengths.
            out.push(0);
            let at = out.len();
            out.resize(at + n * 13 + 16, 0);
            let len = self.tables.seq.encode(&self.seqs, &mut out[at..]);
            out.truncate(at + len);
        }
        out.len() - start
    }

    /// Appends the literals section of `self.lits`: Huffman-coded when every literal has
    /// a code and that is smaller, raw otherwise.
    fn literals_section(&self, out: &mut Vec<u8>) {
        let lits = &self.lits[..];
        let n = lits.len();
        let huff = &self.tables.huff;
        let streams = if n <= 1023 { 1 } else { 4 };
        let header = match n {
            0..=1023 => 3,
            1024..=16383 => 4,
            _ => 5,
        };
        if (32..1 << 18).contains(&n) {
            let at = out.len();
            out.resize(at + header, 0);
            out.extend_from_slice(&huff.desc);
            let streams_at = out.len();
            // Each stream: at most 11 bits a literal, plus 16 bytes of slack.
            out.resize(streams_at + n * 11 / 8 + 6 + 4 * 16 + 16, 0);
            let len = if streams == 1 {
                huff.encode(lits, &mut out[streams_at..])
            } else {
                let seg = n.div_ceil(4);
                let mut pos = streams_at + 6;
                let mut ok = true;
                for (i, part) in lits.chunks(seg).enumerate() {
                    let Some(l) = huff.encode(part, &mut out[pos..]) else {
                        ok = false;
                        break;
                    };
                    if i < 3 {
                        let size = u16::try_from(l).unwrap_or(u16::MAX);
                        out[streams_at + 2 * i..streams_at + 2 * i + 2]
                            .copy_from_slice(&size.to_le_bytes());
                    }
                    pos += l;
                }
                ok.then_some(pos - streams_at)
            };
            let raw_len = n + if n < 4096 { 2 } else { 3 };
            match len {
                Some(len) if streams_at + len - at < raw_len => {
                    out.truncate(streams_at + len);
                    let csize = (out.len() - at - header) as u64;
                    // Type 2 (compressed), size format 0 (1 stream, 10-bit sizes), 1 (4
                    // streams, 10 bits), 2 (14 bits) or 3 (18 bits).
                    let (format, width) = match header {
                        3 if streams == 1 => (0u64, 10),
                        3 => (1, 10),
                        4 => (2, 14),
                        _ => (3, 18),
                    };
                    let h = 2 | format << 2 | (n as u64) << 4 | csize << (4 + width);
                    out[at..at + header].copy_from_slice(&h.to_le_bytes()[..header]);
                    return;
                }
                _ => out.truncate(at),
            }
        }
        // Raw literals: size format 0 (5-bit size), 1 (12 bits) or 3 (20 bits).
        match n {
            0..=31 => out.push((n as u8) << 3),
            32..=4095 => out.extend_from_slice(&((1 << 2 | n << 4) as u16).to_le_bytes()),
            _ => out.extend_from_slice(&((3 << 2 | n << 4) as u32).to_le_bytes()[..3]),
        }
        out.extend_from_slice(lits);
    }
}

fn write_block_header(out: &mut [u8], at: usize, v: u32) {
    out[at..at + 3].copy_from_slice(&v.to_le_bytes()[..3]);
}
