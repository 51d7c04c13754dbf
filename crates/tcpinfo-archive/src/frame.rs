//! The worker's frame compressor: libzstd, except for a flush of fewer than
//! [`SMALL_FRAME`] bytes (one to three lines) at the fast levels (≤ 1, the default's),
//! which goes to `tcpinfo-zstd-frame`'s hand-written encoder. libzstd rebuilds its entropy
//! tables for every frame, ~6 µs of CPU for one ~590-byte line; the small encoder's tables
//! are built once (~1.5 µs a line, and smaller output than level -1's). Both write one
//! complete frame with a content checksum, so the files are the same to any reader.

use std::io;

use tcpinfo_zstd_frame::FrameEncoder;
use zstd::bulk::Compressor;

/// Pending bytes below which a frame goes to the small encoder. Above ~3 lines libzstd's
/// per-frame table cost is spread over the lines and its longer matches win on size.
pub(crate) const SMALL_FRAME: usize = 2048;

/// Highest zstd level for which the small encoder stands in: its frames are between
/// level -1's and level 1's in size, so a caller asking for more gets libzstd.
const SMALL_MAX_LEVEL: i32 = 1;

/// libzstd and, at the fast levels, the small-frame encoder.
pub(crate) struct FrameCompressor {
    zstd: Compressor<'static>,
    small: Option<FrameEncoder>,
}

impl FrameCompressor {
    /// Compressors for zstd `level`, both adding a content checksum.
    pub fn new(level: i32) -> io::Result<Self> {
        let mut zstd = Compressor::new(level)?;
        zstd.include_checksum(true)?;
        let small = (level <= SMALL_MAX_LEVEL).then(|| FrameEncoder::new().with_checksum(true));
        Ok(Self { zstd, small })
    }

    /// Replaces `out` with one complete zstd frame of `src`.
    pub fn compress(&mut self, src: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        out.clear();
        if src.len() < SMALL_FRAME {
            if let Some(small) = &mut self.small {
                return small.compress(src, out).map(drop).map_err(io::Error::other);
            }
        }
        out.reserve(zstd::zstd_safe::compress_bound(src.len()));
        self.zstd.compress_to_buffer(src, out).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::{FrameCompressor, SMALL_FRAME};
    use tcpinfo_zstd_frame::FrameEncoder;

    const LINE: &[u8] = br#"{"Timestamp":"2019-04-02T14:12:37.511Z","RawIDM":"CgECACODqfQAAAAAAAAAAAAA///AqA6GAAAAAAAAAAAAAP//wKgOgQAAAADoAwAAAAAAAHD///8AAAAAAAAAAAAAAACvos4D","Attributes":[null,"AAAAAAAAAAAAAAAAAAAAAA==",null,"Y3ViaWMA","AA==","AA=="]}
"#;

    fn frame(level: i32, src: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        FrameCompressor::new(level)
            .unwrap()
            .compress(src, &mut out)
            .unwrap();
        assert_eq!(zstd::bulk::decompress(&out, src.len()).unwrap(), src);
        out
    }

    #[test]
    fn small_flushes_at_fast_levels_take_the_small_encoder() {
        let mut small = Vec::new();
        FrameEncoder::new()
            .with_checksum(true)
            .compress(LINE, &mut small)
            .unwrap();
        assert_eq!(frame(1, LINE), small);
        assert_eq!(frame(-3, LINE), small);
        // A slower level, or a larger flush, is libzstd's (with its checksum).
        let mut l3 = zstd::bulk::Compressor::new(3).unwrap();
        l3.include_checksum(true).unwrap();
        assert_eq!(frame(3, LINE), l3.compress(LINE).unwrap());
        let big = LINE.repeat(SMALL_FRAME / LINE.len() + 1);
        let mut l1 = zstd::bulk::Compressor::new(1).unwrap();
        l1.include_checksum(true).unwrap();
        assert_eq!(frame(1, &big), l1.compress(&big).unwrap());
    }

    #[test]
    fn small_frames_carry_a_checksum() {
        let mut f = frame(1, LINE);
        let last = f.len() - 1;
        f[last] ^= 1;
        assert!(zstd::bulk::decompress(&f, LINE.len()).is_err());
    }
}
