//! The byte layer of a source: stored bytes to decompressed text (zstd frames or plain),
//! and what the end of a source means (an unfinished frame, a last line without `\n`).

use zstd::stream::raw::{Decoder as ZstdDecoder, Operation as _};

use super::{ArchiveDecoder, Compression, Content, TEXT_CHUNK, ZSTD_MAGIC};
use crate::error::ErrorKind;

impl ArchiveDecoder {
    /// Moves stored input into `text` (decompressing). False when no progress is possible.
    pub(super) fn fill_text(&mut self) -> bool {
        let Some(s) = self.source.as_mut() else {
            return false;
        };
        if s.finished {
            return false;
        }
        if s.text_pos > 0 {
            s.text.copy_within(s.text_pos..s.text_end, 0);
            s.text_end -= s.text_pos;
            s.text_offset += s.text_pos as u64;
            s.text_pos = 0;
        }
        if s.text.len() - s.text_end < TEXT_CHUNK {
            s.text.resize(s.text_end + TEXT_CHUNK, 0);
        }
        let avail = &s.input[s.input_pos..];
        if let Compression::Unknown = s.compression {
            if avail.len() < ZSTD_MAGIC.len() && !s.ended {
                return false;
            }
            let skippable =
                avail.len() >= 4 && avail[0] & 0xF0 == 0x50 && avail[1..4] == [0x2A, 0x4D, 0x18];
            s.compression = if avail.starts_with(&ZSTD_MAGIC) || skippable {
                match ZstdDecoder::new() {
                    Ok(z) => Compression::Zstd(Box::new(z)),
                    Err(e) => {
                        self.fail(
                            ErrorKind::Compression,
                            None,
                            0,
                            true,
                            format!("cannot start a zstd decoder: {e}"),
                        );
                        return false;
                    }
                }
            } else {
                Compression::Plain
            };
        }
        if avail.is_empty() {
            return false;
        }
        match &mut s.compression {
            Compression::Plain | Compression::Unknown => {
                let n = avail.len().min(s.text.len() - s.text_end);
                s.text[s.text_end..s.text_end + n].copy_from_slice(&avail[..n]);
                s.text_end += n;
                s.input_pos += n;
                s.consumed += n as u64;
                self.batch.stats.bytes_in += n as u64;
                true
            }
            Compression::Zstd(z) => {
                let r = z.run_on_buffers(avail, &mut s.text[s.text_end..]);
                match r {
                    Ok(st) => {
                        s.text_end += st.bytes_written;
                        s.input_pos += st.bytes_read;
                        s.consumed += st.bytes_read as u64;
                        self.batch.stats.bytes_in += st.bytes_read as u64;
                        if st.bytes_read > 0 || st.bytes_written > 0 {
                            if st.remaining == 0 {
                                s.in_frame = false;
                                s.frame_start = s.consumed;
                            } else {
                                s.in_frame = true;
                            }
                        }
                        st.bytes_read > 0 || st.bytes_written > 0
                    }
                    Err(e) => {
                        let (at, msg) = (
                            s.frame_start,
                            format!("the zstd frame starting here is corrupt: {e}"),
                        );
                        self.fail(ErrorKind::Compression, None, at, true, msg);
                        false
                    }
                }
            }
        }
    }

    /// The end of a source's input: report an unfinished frame or line, then close it.
    pub(super) fn finish_source(&mut self) {
        let Some(s) = self.source.as_mut() else {
            return;
        };
        if s.finished {
            return;
        }
        let tail = s.text_end - s.text_pos;
        if s.in_frame {
            let (at, msg) = (
                s.frame_start,
                format!("input ends inside the zstd frame starting here (a writer still open or crashed, or a cut file); {tail} bytes of an unfinished line dropped"),
            );
            self.fail(ErrorKind::Truncated, None, at, true, msg);
        } else if tail > 0 && !s.skipping_long_line {
            match s.content {
                Content::Jsonl => {
                    // A last line without '\n' is still a line.
                    let line = s.text[s.text_pos..s.text_end].to_vec();
                    let (no, off) = (s.line_no + 1, s.text_offset + s.text_pos as u64);
                    s.line_no = no;
                    s.text_pos = s.text_end;
                    self.line(&line, no, off);
                }
                Content::Netlink => {
                    let (no, off) = (s.line_no + 1, s.text_offset + s.text_pos as u64);
                    self.fail(
                        ErrorKind::Netlink,
                        Some(no),
                        off,
                        false,
                        format!("{tail} trailing bytes are not a whole netlink message"),
                    );
                }
                Content::Unknown => {
                    let first = s.text[s.text_pos..s.text_end]
                        .iter()
                        .any(|c| !c.is_ascii_whitespace());
                    if first {
                        let off = s.text_offset + s.text_pos as u64;
                        self.fail(
                            ErrorKind::Foreign,
                            None,
                            off,
                            false,
                            "neither ArchivalRecord JSON lines nor a netlink dump".into(),
                        );
                    }
                }
            }
        }
        if let Some(s) = self.source.as_mut() {
            s.finished = true;
            s.input = Vec::new();
            s.input_pos = 0;
            s.text = Vec::new();
            s.text_pos = 0;
            s.text_end = 0;
            self.batch.stats.sources_done += 1;
        }
    }
}
