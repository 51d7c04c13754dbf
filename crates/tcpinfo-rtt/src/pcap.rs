//! Capture files: classic pcap (microsecond and nanosecond magic, either byte order)
//! and pcapng (per-interface link type, `if_tsresol` and `if_tsoffset`), read with
//! `pcap-parser`'s streaming reader in a bounded buffer.
//!
//! A frame whose interface is unknown or whose link type is unsupported is still
//! handed on (with `link: None`) so that the parser counts it. A file cut short in its
//! last block ends the read and is counted (`truncated_blocks`), not an error; a file
//! that is not a capture at all, or garbage in the middle, is an error.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use pcap_parser::pcapng::Block;
use pcap_parser::{create_reader, PcapBlockOwned, PcapError};

use crate::error::{Error, Result};
use crate::packet::LinkType;

/// Initial read buffer of the file reader, bytes.
pub const DEFAULT_READ_BUFFER_BYTES: usize = 64 << 10;
/// Largest block the reader grows its buffer for, bytes (a pcapng block bigger than
/// this is corrupt for our purposes).
pub const MAX_BLOCK_BYTES: usize = 64 << 20;

/// pcapng Section Header Block type (the same bytes in either byte order).
const NG_SHB_TYPE: [u8; 4] = [0x0A, 0x0D, 0x0D, 0x0A];
/// Shortest pcapng block: its type and its length twice.
const NG_MIN_BLOCK_LEN: u32 = 12;

/// One captured frame.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Capture time, unix nanoseconds.
    pub t_ns: i64,
    /// Link type, `None` when unsupported or the interface is unknown.
    pub link: Option<LinkType>,
    /// Captured bytes.
    pub data: &'a [u8],
}

/// Counters of one file read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    /// Packet records (pcap records, pcapng EPB/SPB) read.
    pub records: u64,
    /// pcapng blocks other than packets and interfaces (statistics, names ...).
    pub other_blocks: u64,
    /// A last block cut short (0 or 1).
    pub truncated_blocks: u64,
}

#[derive(Clone, Copy)]
struct Interface {
    link: Option<LinkType>,
    /// Units per second of the timestamps.
    resolution: u64,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset_s: i64,
}

/// Reads every frame of the capture file at `path`, calling `f` for each, in file order.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, [`Error::CaptureFile`] when it is not a
/// pcap/pcapng file or is corrupt before its last block.
pub fn read_file(path: &Path, f: impl FnMut(Frame<'_>)) -> Result<FileStats> {
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    read(file, &path.display().to_string(), f)
}

/// Reads every frame of a capture from `reader` (`name` is for errors).
///
/// # Errors
/// As [`read_file`].
pub fn read(
    reader: impl Read + Send,
    name: &str,
    mut f: impl FnMut(Frame<'_>),
) -> Result<FileStats> {
    let bad = |what: String| Error::CaptureFile {
        path: name.to_owned(),
        what,
    };
    let mut r = match create_reader(DEFAULT_READ_BUFFER_BYTES, reader) {
        Ok(r) => r,
        Err(PcapError::Eof) => return Err(bad("the file is empty".into())),
        Err(PcapError::ReadError) => return Err(bad("read error".into())),
        Err(PcapError::Incomplete(_)) => return Err(bad("the file header is cut short".into())),
        Err(e) => return Err(bad(format!("unrecognized file header ({e:?})"))),
    };
    let mut st = State::default();
    let mut buffer_bytes = DEFAULT_READ_BUFFER_BYTES;
    loop {
        if let Some(len) = st.short_ng_block(r.data()) {
            return Err(bad(format!(
                "corrupt block after {} records at byte {} (block length {len}, below 12)",
                st.stats.records,
                r.position(),
            )));
        }
        match r.next() {
            Ok((consumed, block)) => {
                st.block(block, &mut f);
                r.consume(consumed);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                if r.reader_exhausted() {
                    // The last block is cut short (a capture still being written, or
                    // killed): what came before it is good.
                    st.stats.truncated_blocks += 1;
                    break;
                }
                let before = r.data().len();
                r.refill().map_err(|e| bad(format!("read error ({e:?})")))?;
                if r.data().len() == before && !r.reader_exhausted() {
                    // The buffer is full and still holds no complete block.
                    if buffer_bytes >= MAX_BLOCK_BYTES || !r.grow(buffer_bytes * 2) {
                        return Err(bad(format!(
                            "a block is larger than {MAX_BLOCK_BYTES} bytes"
                        )));
                    }
                    buffer_bytes *= 2;
                }
            }
            Err(e) => {
                let what = describe(&e);
                return Err(bad(format!(
                    "corrupt block after {} records at byte {} ({what})",
                    st.stats.records,
                    r.position(),
                )));
            }
        }
    }
    Ok(st.stats)
}

/// What the reader knows between blocks.
#[derive(Default)]
struct State {
    stats: FileStats,
    /// pcapng interfaces of the current section, by id.
    ifaces: Vec<Interface>,
    /// Classic pcap: link type and resolution from the file header.
    legacy: Option<(Option<LinkType>, u64)>,
    /// pcapng: the byte order of the current section, once its header was read.
    ng_big_endian: Option<bool>,
}

impl State {
    /// The declared length of the pcapng block at the head of `data` when it is below the
    /// 12 bytes of any block's own framing. pcap-parser 0.17 subtracts 12 from it
    /// unchecked (for a Process Information Block, whose header it takes as 4 bytes): a
    /// panic with overflow checks, a misleading `BufferTooSmall` without them (found by
    /// the `rtt_capture_file` fuzz target; docs/RELIABILITY.md#fuzzing).
    fn short_ng_block(&self, data: &[u8]) -> Option<u32> {
        let big_endian = self.ng_big_endian?;
        if data.get(..4)? == NG_SHB_TYPE {
            // A new section: its own byte order, checked by pcap-parser (28-byte header).
            return None;
        }
        let b: [u8; 4] = data.get(4..8)?.try_into().ok()?;
        let len = if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        };
        (len < NG_MIN_BLOCK_LEN).then_some(len)
    }

    fn block(&mut self, block: PcapBlockOwned<'_>, f: &mut impl FnMut(Frame<'_>)) {
        match block {
            PcapBlockOwned::LegacyHeader(h) => {
                let res = if h.is_nanosecond_precision() {
                    1_000_000_000
                } else {
                    1_000_000
                };
                self.legacy = Some((LinkType::from_linktype(h.network.0), res));
            }
            PcapBlockOwned::Legacy(b) => {
                self.stats.records += 1;
                let (link, res) = self.legacy.unwrap_or((None, 1_000_000));
                let t_ns = to_nanos(u64::from(b.ts_sec), u64::from(b.ts_usec), res, 0);
                let n = b.data.len().min(b.caplen as usize);
                f(Frame {
                    t_ns,
                    link,
                    data: &b.data[..n],
                });
            }
            PcapBlockOwned::NG(Block::SectionHeader(shb)) => {
                self.ng_big_endian = Some(shb.big_endian());
                self.ifaces.clear();
            }
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => self.ifaces.push(Interface {
                link: LinkType::from_linktype(idb.linktype.0),
                resolution: ts_resolution(idb.if_tsresol),
                offset_s: idb.ts_offset(),
            }),
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                self.stats.records += 1;
                let ts = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let (link, t_ns) = match self.ifaces.get(epb.if_id as usize) {
                    Some(i) if i.resolution > 0 => (
                        i.link,
                        to_nanos(
                            ts / i.resolution,
                            ts % i.resolution,
                            i.resolution,
                            i.offset_s,
                        ),
                    ),
                    // A packet of an undeclared interface: counted by the parser as unsupported.
                    _ => (None, 0),
                };
                let n = epb.data.len().min(epb.caplen as usize);
                f(Frame {
                    t_ns,
                    link,
                    data: &epb.data[..n],
                });
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                // No timestamp in an SPB: such frames get time 0 and never match.
                self.stats.records += 1;
                let link = self.ifaces.first().and_then(|i| i.link);
                let n = spb.data.len().min(spb.origlen as usize);
                f(Frame {
                    t_ns: 0,
                    link,
                    data: &spb.data[..n],
                });
            }
            PcapBlockOwned::NG(_) => self.stats.other_blocks += 1,
        }
    }
}

fn describe(e: &PcapError<&[u8]>) -> String {
    match e {
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => format!("{kind:?}"),
        other => format!("{other:?}"),
    }
}

/// Units per second of a pcapng `if_tsresol` byte: 10^-n, or 2^-n when the high bit
/// is set (pcapng §4.2); 0 when out of range. (pcap-parser 0.17's `ts_resolution()`
/// rejects every 2^-n value because it range-checks before masking the high bit.)
fn ts_resolution(r: u8) -> u64 {
    let n = u32::from(r & 0x7f);
    if r & 0x80 == 0 {
        10u64.checked_pow(n).unwrap_or(0)
    } else {
        1u64.checked_shl(n).filter(|_| n < 64).unwrap_or(0)
    }
}

/// `sec` seconds plus `frac` units of `1/resolution` s, plus `offset_s`, as unix nanoseconds.
fn to_nanos(sec: u64, frac: u64, resolution: u64, offset_s: i64) -> i64 {
    let frac_ns = u128::from(frac) * 1_000_000_000 / u128::from(resolution.max(1));
    let ns = i128::from(sec) * 1_000_000_000
        + i128::try_from(frac_ns).unwrap_or(0)
        + i128::from(offset_s) * 1_000_000_000;
    i64::try_from(ns).unwrap_or(i64::MAX)
}
