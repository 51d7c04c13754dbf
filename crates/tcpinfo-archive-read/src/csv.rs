//! CSV in M-Lab csvtool's format (tcp-info v1.9 `cmd/csvtool`: gocsv over
//! `snapshot.Snapshot`): the same 105 columns, names, order and value formats, so existing
//! scripts read our output unchanged. One row per data record; unlike csvtool, a header
//! line's metadata is not a row. Every column and quirk is listed in `docs/CSV.md`.
//!
//! Values are read from the netlink payload at the offsets of M-Lab's Go structs, with
//! their quirks kept on purpose: a shorter attribute reads as zero-filled (`maybeCopy`),
//! ports and the interface are read big-endian, the cookie is `%X`, 64-bit counters print
//! as Go's `int64`, and Go's zero time prints as csvtool's `2009-05-29T23:59:59Z`.

use std::net::Ipv6Addr;

use tcpinfo_core::parse::attrs::{
    Attrs, INET_DIAG_BBRINFO, INET_DIAG_CLASS_ID, INET_DIAG_CONG, INET_DIAG_DCTCPINFO,
    INET_DIAG_INFO, INET_DIAG_MARK, INET_DIAG_MEMINFO, INET_DIAG_PROTOCOL, INET_DIAG_SHUTDOWN,
    INET_DIAG_SKMEMINFO, INET_DIAG_TCLASS, INET_DIAG_TOS, INET_DIAG_VEGASINFO,
};
use tcpinfo_core::parse::diag_msg::{parse_diag, INET_DIAG_MSG_LEN};
use tcpinfo_core::RecordIter;

use crate::json::{scan_line, Scanned};
use crate::time::{parse_rfc3339, write_csvtool_time, Stamp};

/// Where a column's value comes from.
#[derive(Debug, Clone, Copy)]
enum Src {
    Timestamp,
    Observed,
    NotFullyParsed,
    IdmU8(usize),
    IdmU32(usize),
    IdmPort(usize),
    IdmIp(usize),
    IdmIf,
    IdmCookie,
    Cong,
    /// A one-byte attribute, 0 when absent.
    Byte(u16),
    Mark,
    /// `(attribute, offset, kind)` of a struct attribute; empty when absent.
    Field(u16, usize, Kind),
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    U8,
    U16,
    U32,
    I32,
    I64,
}

/// One CSV column.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Header name, as csvtool writes it.
    pub name: &'static str,
    src: Src,
}

const fn col(name: &'static str, src: Src) -> Column {
    Column { name, src }
}
const fn tcp(name: &'static str, off: usize, k: Kind) -> Column {
    col(name, Src::Field(INET_DIAG_INFO, off, k))
}

/// The columns of M-Lab csvtool, in its order (note its own typos: two `TCP.LastDataRecv`,
/// `SKMemInfo.Sndbug`).
pub const COLUMNS: &[Column] = &[
    col("Timestamp", Src::Timestamp),
    col("Observed", Src::Observed),
    col("NotFullyParsed", Src::NotFullyParsed),
    col("IDM.Family", Src::IdmU8(0)),
    col("IDM.State", Src::IdmU8(1)),
    col("IDM.Timer", Src::IdmU8(2)),
    col("IDM.Retrans", Src::IdmU8(3)),
    col("IDM.SockID.SPort", Src::IdmPort(4)),
    col("IDM.SockID.DPort", Src::IdmPort(6)),
    col("IDM.SockID.Src", Src::IdmIp(8)),
    col("IDM.SockID.Dst", Src::IdmIp(24)),
    col("IDM.SockID.Interface", Src::IdmIf),
    col("IDM.SockID.Cookie", Src::IdmCookie),
    col("IDM.Expires", Src::IdmU32(52)),
    col("IDM.Rqueue", Src::IdmU32(56)),
    col("IDM.Wqueue", Src::IdmU32(60)),
    col("IDM.UID", Src::IdmU32(64)),
    col("IDM.Inode", Src::IdmU32(68)),
    col("CongestionAlgorithm", Src::Cong),
    col("TOS", Src::Byte(INET_DIAG_TOS)),
    col("TClass", Src::Byte(INET_DIAG_TCLASS)),
    col("ClassID", Src::Byte(INET_DIAG_CLASS_ID)),
    col("Shutdown", Src::Byte(INET_DIAG_SHUTDOWN)),
    col("Protocol", Src::Byte(INET_DIAG_PROTOCOL)),
    col("Mark", Src::Mark),
    tcp("TCP.State", 0, Kind::U8),
    tcp("TCP.CAState", 1, Kind::U8),
    tcp("TCP.Retransmits", 2, Kind::U8),
    tcp("TCP.Probes", 3, Kind::U8),
    tcp("TCP.Backoff", 4, Kind::U8),
    tcp("TCP.Options", 5, Kind::U8),
    tcp("TCP.WScale", 6, Kind::U8),
    tcp("TCP.AppLimited", 7, Kind::U8),
    tcp("TCP.RTO", 8, Kind::U32),
    tcp("TCP.ATO", 12, Kind::U32),
    tcp("TCP.SndMSS", 16, Kind::U32),
    tcp("TCP.RcvMSS", 20, Kind::U32),
    tcp("TCP.Unacked", 24, Kind::U32),
    tcp("TCP.Sacked", 28, Kind::U32),
    tcp("TCP.Lost", 32, Kind::U32),
    tcp("TCP.Retrans", 36, Kind::U32),
    tcp("TCP.Fackets", 40, Kind::U32),
    tcp("TCP.LastDataSent", 44, Kind::U32),
    tcp("TCP.LastAckSent", 48, Kind::U32),
    tcp("TCP.LastDataRecv", 52, Kind::U32),
    tcp("TCP.LastDataRecv", 56, Kind::U32),
    tcp("TCP.PMTU", 60, Kind::U32),
    tcp("TCP.RcvSsThresh", 64, Kind::U32),
    tcp("TCP.RTT", 68, Kind::U32),
    tcp("TCP.RTTVar", 72, Kind::U32),
    tcp("TCP.SndSsThresh", 76, Kind::U32),
    tcp("TCP.SndCwnd", 80, Kind::U32),
    tcp("TCP.AdvMSS", 84, Kind::U32),
    tcp("TCP.Reordering", 88, Kind::U32),
    tcp("TCP.RcvRTT", 92, Kind::U32),
    tcp("TCP.RcvSpace", 96, Kind::U32),
    tcp("TCP.TotalRetrans", 100, Kind::U32),
    tcp("TCP.PacingRate", 104, Kind::I64),
    tcp("TCP.MaxPacingRate", 112, Kind::I64),
    tcp("TCP.BytesAcked", 120, Kind::I64),
    tcp("TCP.BytesReceived", 128, Kind::I64),
    tcp("TCP.SegsOut", 136, Kind::I32),
    tcp("TCP.SegsIn", 140, Kind::I32),
    tcp("TCP.NotsentBytes", 144, Kind::U32),
    tcp("TCP.MinRTT", 148, Kind::U32),
    tcp("TCP.DataSegsIn", 152, Kind::U32),
    tcp("TCP.DataSegsOut", 156, Kind::U32),
    tcp("TCP.DeliveryRate", 160, Kind::I64),
    tcp("TCP.BusyTime", 168, Kind::I64),
    tcp("TCP.RWndLimited", 176, Kind::I64),
    tcp("TCP.SndBufLimited", 184, Kind::I64),
    tcp("TCP.Delivered", 192, Kind::U32),
    tcp("TCP.DeliveredCE", 196, Kind::U32),
    tcp("TCP.BytesSent", 200, Kind::I64),
    tcp("TCP.BytesRetrans", 208, Kind::I64),
    tcp("TCP.DSackDups", 216, Kind::U32),
    tcp("TCP.ReordSeen", 220, Kind::U32),
    tcp("TCP.RcvOooPack", 224, Kind::U32),
    tcp("TCP.SndWnd", 228, Kind::U32),
    col("MemInfo.Rmem", Src::Field(INET_DIAG_MEMINFO, 0, Kind::U32)),
    col("MemInfo.Wmem", Src::Field(INET_DIAG_MEMINFO, 4, Kind::U32)),
    col("MemInfo.Fmem", Src::Field(INET_DIAG_MEMINFO, 8, Kind::U32)),
    col("MemInfo.Tmem", Src::Field(INET_DIAG_MEMINFO, 12, Kind::U32)),
    col(
        "SKMemInfo.RmemAlloc",
        Src::Field(INET_DIAG_SKMEMINFO, 0, Kind::U32),
    ),
    col(
        "SKMemInfo.Rcvbuf",
        Src::Field(INET_DIAG_SKMEMINFO, 4, Kind::U32),
    ),
    col(
        "SKMemInfo.WmemAlloc",
        Src::Field(INET_DIAG_SKMEMINFO, 8, Kind::U32),
    ),
    col(
        "SKMemInfo.Sndbug",
        Src::Field(INET_DIAG_SKMEMINFO, 12, Kind::U32),
    ),
    col(
        "SKMemInfo.FwdAlloc",
        Src::Field(INET_DIAG_SKMEMINFO, 16, Kind::U32),
    ),
    col(
        "SKMemInfo.WmemQueued",
        Src::Field(INET_DIAG_SKMEMINFO, 20, Kind::U32),
    ),
    col(
        "SKMemInfo.Optmem",
        Src::Field(INET_DIAG_SKMEMINFO, 24, Kind::U32),
    ),
    col(
        "SKMemInfo.Backlog",
        Src::Field(INET_DIAG_SKMEMINFO, 28, Kind::U32),
    ),
    col(
        "SKMemInfo.Drops",
        Src::Field(INET_DIAG_SKMEMINFO, 32, Kind::U32),
    ),
    col(
        "Vegas.Enabled",
        Src::Field(INET_DIAG_VEGASINFO, 0, Kind::U32),
    ),
    col(
        "Vegas.RTTCount",
        Src::Field(INET_DIAG_VEGASINFO, 4, Kind::U32),
    ),
    col("Vegas.RTT", Src::Field(INET_DIAG_VEGASINFO, 8, Kind::U32)),
    col(
        "Vegas.MinRTT",
        Src::Field(INET_DIAG_VEGASINFO, 12, Kind::U32),
    ),
    col(
        "DCTCP.Enabled",
        Src::Field(INET_DIAG_DCTCPINFO, 0, Kind::U16),
    ),
    col(
        "DCTCP.CEState",
        Src::Field(INET_DIAG_DCTCPINFO, 2, Kind::U16),
    ),
    col("DCTCP.Alpha", Src::Field(INET_DIAG_DCTCPINFO, 4, Kind::U32)),
    col("DCTCP.ABEcn", Src::Field(INET_DIAG_DCTCPINFO, 8, Kind::U32)),
    col(
        "DCTCP.ABTot",
        Src::Field(INET_DIAG_DCTCPINFO, 12, Kind::U32),
    ),
    col("BBR.BW", Src::Field(INET_DIAG_BBRINFO, 0, Kind::I64)),
    col("BBR.MinRTT", Src::Field(INET_DIAG_BBRINFO, 8, Kind::U32)),
    col(
        "BBR.PacingGain",
        Src::Field(INET_DIAG_BBRINFO, 12, Kind::U32),
    ),
    col("BBR.CwndGain", Src::Field(INET_DIAG_BBRINFO, 16, Kind::U32)),
];

/// Sizes of M-Lab's Go structs (`unsafe.Sizeof`): a longer attribute is "not fully parsed".
fn go_struct_size(ty: u16) -> Option<usize> {
    match ty {
        INET_DIAG_MEMINFO | INET_DIAG_VEGASINFO | INET_DIAG_DCTCPINFO => Some(16),
        INET_DIAG_INFO => Some(232),
        INET_DIAG_SKMEMINFO => Some(36),
        INET_DIAG_BBRINFO => Some(24),
        _ => None,
    }
}

/// Whether csvtool decodes attribute `ty` of this length fully (`snapshot.Decode`'s `ok`).
fn fully_parsed(ty: u16, len: usize) -> bool {
    match ty {
        INET_DIAG_CONG => true,
        INET_DIAG_TOS | INET_DIAG_TCLASS | INET_DIAG_SHUTDOWN | INET_DIAG_PROTOCOL
        | INET_DIAG_CLASS_ID => len >= 1,
        INET_DIAG_MARK => len == 4,
        _ => go_struct_size(ty).is_some_and(|size| len <= size),
    }
}

/// The index of the column named `name` (the first, for csvtool's duplicate name).
pub fn column_index(name: &str) -> Option<usize> {
    COLUMNS.iter().position(|c| c.name == name)
}

/// Appends the header line for `cols` (indexes into [`COLUMNS`]).
pub fn write_header(out: &mut Vec<u8>, cols: &[usize]) {
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if let Some(col) = COLUMNS.get(*c) {
            out.extend_from_slice(col.name.as_bytes());
        }
    }
    out.push(b'\n');
}

fn rd(b: &[u8], off: usize, n: usize) -> u64 {
    if let Some(s) = b.get(off..off + n) {
        return match n {
            1 => u64::from(s[0]),
            2 => u64::from(u16::from_le_bytes([s[0], s[1]])),
            4 => u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]])),
            _ => {
                let mut a = [0u8; 8];
                a[..n].copy_from_slice(s);
                u64::from_le_bytes(a)
            }
        };
    }
    // Zero-filled past the end, as M-Lab's maybeCopy does.
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..) {
        let k = s.len().min(n);
        a[..k].copy_from_slice(&s[..k]);
    }
    u64::from_le_bytes(a)
}

/// Decimal digits. Rows are mostly 1..10-digit numbers. Digit by digit through memory
/// cost ~35% of `tcpinfo csv`'s samples (a variable-length copy is a `memmove` call, and
/// bytes stored one by one then copied as a block stall store forwarding), so the digits
/// are computed in a register, eight at a time ([`eight_digits`]), appended as 8 bytes
/// and the leading zeros cut.
fn push_u64(out: &mut Vec<u8>, v: u64) {
    const E8: u64 = 100_000_000;
    if v < 10 {
        // Most columns of most rows (flags, counts, states): one byte, no arithmetic.
        out.push(b'0' + u8::try_from(v).unwrap_or_default());
    } else if v < E8 {
        push_leading(out, v);
    } else if v < E8 * E8 {
        push_leading(out, v / E8);
        push_eight(out, v % E8);
    } else {
        push_leading(out, v / (E8 * E8));
        push_eight(out, v / E8 % E8);
        push_eight(out, v % E8);
    }
}

/// `v` < 10^8 without leading zeros.
fn push_leading(out: &mut Vec<u8>, v: u64) {
    let n = v.checked_ilog10().map_or(1, |l| l as usize + 1);
    let digits = eight_digits(v) >> (8 * (8 - n));
    let len = out.len();
    out.extend_from_slice(&digits.to_le_bytes());
    out.truncate(len + n);
}

/// `v` < 10^8 as exactly eight digits.
fn push_eight(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&eight_digits(v).to_le_bytes());
}

/// The eight ASCII digits of `v` < 10^8, most significant in the lowest byte (SWAR: two
/// 4-digit halves in 32-bit lanes, split into 16-bit lanes of two digits by `x * 10486 >>
/// 20` = `x / 100` for x < 10^4, then into bytes by `x * 103 >> 10` = `x / 10` for x < 100;
/// no lane's product reaches the next lane's masked bits).
fn eight_digits(v: u64) -> u64 {
    let mut x = (v / 10_000) | ((v % 10_000) << 32);
    let hundreds = ((x * 10_486) >> 20) & 0x0000_007F_0000_007F;
    x = hundreds | ((x - hundreds * 100) << 16);
    let tens = ((x * 103) >> 10) & 0x000F_000F_000F_000F;
    x = tens | ((x - tens * 10) << 8);
    x + 0x3030_3030_3030_3030
}

fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

fn push_hex(out: &mut Vec<u8>, v: u64) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let digits = (64 - v.leading_zeros()).div_ceil(4).max(1);
    for k in (0..digits).rev() {
        out.push(HEX[(v >> (k * 4) & 0xF) as usize]);
    }
}

/// Go's `net.IP.String()` of M-Lab's `ip()`: 4 bytes when bytes 4..16 are zero, a
/// v4-mapped address as dotted quad, other IPv6 in RFC 5952 form.
fn push_ip(out: &mut Vec<u8>, b: &[u8]) {
    use std::io::Write as _;
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    let v4 = |out: &mut Vec<u8>, q: &[u8]| {
        for (k, byte) in q.iter().enumerate() {
            if k > 0 {
                out.push(b'.');
            }
            push_u64(out, u64::from(*byte));
        }
    };
    if a[4..].iter().all(|x| *x == 0) {
        v4(out, &a[..4]);
    } else if a[..10].iter().all(|x| *x == 0) && a[10] == 0xFF && a[11] == 0xFF {
        v4(out, &a[12..]);
    } else {
        write!(out, "{}", Ipv6Addr::from(a)).unwrap_or_default();
    }
}

/// Go's `encoding/csv` quoting of a string field.
fn push_field(out: &mut Vec<u8>, s: &[u8]) {
    let needs = s == b"\\."
        || s.iter().any(|c| matches!(c, b',' | b'"' | b'\r' | b'\n'))
        || s.first().is_some_and(|c| matches!(c, b' ' | b'\t'));
    if !needs {
        out.extend_from_slice(s);
        return;
    }
    out.push(b'"');
    for c in s {
        if *c == b'"' {
            out.push(b'"');
        }
        out.push(*c);
    }
    out.push(b'"');
}

/// The timestamp (with its zone) of an `ArchivalRecord` line.
fn line_stamp(line: &[u8], scratch: &mut Scanned) -> Stamp {
    // Fast path: lines written by Go (and by us) start with the Timestamp.
    const PREFIX: &[u8] = br#"{"Timestamp":""#;
    if let Some(rest) = line.strip_prefix(PREFIX) {
        if let Some(end) = memchr::memchr(b'"', rest) {
            if let Some(s) = parse_rfc3339(&rest[..end]) {
                return s;
            }
        }
    }
    match scan_line(line.strip_suffix(b"\n").unwrap_or(line), scratch) {
        Ok(()) => scratch.stamp.unwrap_or(Stamp::ZERO),
        Err(_) => Stamp::ZERO,
    }
}

/// Appends one CSV row per record of a batch's `index`, `payloads` and `lines` regions.
/// Records that are not well-formed replies are skipped; returns the rows written.
pub fn write_rows(
    out: &mut Vec<u8>,
    index: &[u8],
    payloads: &[u8],
    lines: &[u8],
    cols: &[usize],
) -> usize {
    let mut scratch = Scanned::default();
    let mut rows = 0;
    for r in RecordIter::new(index, payloads, lines) {
        let Ok((msg, attrs)) = parse_diag(r.payload) else {
            continue;
        };
        let row = Row {
            stamp: line_stamp(r.line, &mut scratch),
            idm: &msg.bytes()[..INET_DIAG_MSG_LEN],
            attrs,
        };
        row.write(out, cols);
        rows += 1;
    }
    rows
}

/// Attribute types with a column: their payloads are looked up once per row.
const SLOTS: usize = 18;

struct Row<'a> {
    stamp: Stamp,
    idm: &'a [u8],
    attrs: Attrs<'a>,
}

impl Row<'_> {
    fn masks(&self) -> (u32, u32) {
        let (mut observed, mut partial) = (0u32, 0u32);
        for (ty, p) in self.attrs.iter() {
            // Go: `uint32(1) << uint8(t-1)`: 0 for type 0 and for types above 32.
            let bit = if (1..=32).contains(&ty) {
                1u32 << (ty - 1)
            } else {
                0
            };
            observed |= bit;
            if !fully_parsed(ty, p.len()) {
                partial |= bit;
            }
        }
        (observed, partial)
    }

    fn write(&self, out: &mut Vec<u8>, cols: &[usize]) {
        out.reserve(cols.len() * 12);
        let (observed, partial) = self.masks();
        let mut slots: [Option<&[u8]>; SLOTS] = [None; SLOTS];
        for (ty, slot) in slots.iter_mut().enumerate() {
            *slot = u16::try_from(ty).ok().and_then(|t| self.attrs.get(t));
        }
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let Some(col) = COLUMNS.get(*c) else { continue };
            let idm = self.idm;
            match col.src {
                Src::Timestamp => write_csvtool_time(out, self.stamp),
                Src::Observed => push_u64(out, observed.into()),
                Src::NotFullyParsed => push_u64(out, partial.into()),
                Src::IdmU8(off) => push_u64(out, idm[off].into()),
                Src::IdmU32(off) => push_u64(out, rd(idm, off, 4)),
                Src::IdmPort(off) => {
                    push_u64(out, u16::from_be_bytes([idm[off], idm[off + 1]]).into());
                }
                Src::IdmIp(off) => push_ip(out, &idm[off..off + 16]),
                Src::IdmIf => push_u64(
                    out,
                    u32::from_be_bytes([idm[40], idm[41], idm[42], idm[43]]).into(),
                ),
                Src::IdmCookie => push_hex(out, rd(idm, 44, 8)),
                Src::Cong => {
                    if let Some(p) = self.attrs.get(INET_DIAG_CONG) {
                        push_field(out, &p[..p.len().saturating_sub(1)]);
                    }
                }
                Src::Byte(ty) => push_u64(
                    out,
                    self.attrs
                        .get(ty)
                        .and_then(|p| p.first())
                        .copied()
                        .unwrap_or(0)
                        .into(),
                ),
                Src::Mark => push_u64(
                    out,
                    self.attrs
                        .get(INET_DIAG_MARK)
                        .filter(|p| p.len() == 4)
                        .map_or(0, |p| rd(p, 0, 4)),
                ),
                Src::Field(ty, off, kind) => {
                    let Some(p) = slots.get(usize::from(ty)).copied().flatten() else {
                        continue;
                    };
                    match kind {
                        Kind::U8 => push_u64(out, rd(p, off, 1)),
                        Kind::U16 => push_u64(out, rd(p, off, 2)),
                        Kind::U32 => push_u64(out, rd(p, off, 4)),
                        #[expect(
                            clippy::cast_possible_truncation,
                            clippy::cast_possible_wrap,
                            reason = "Go's int32 of the same bits"
                        )]
                        Kind::I32 => push_i64(out, i64::from(rd(p, off, 4) as u32 as i32)),
                        #[expect(
                            clippy::cast_possible_wrap,
                            reason = "Go's int64 of the same bits"
                        )]
                        Kind::I64 => push_i64(out, rd(p, off, 8) as i64),
                    }
                }
            }
        }
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::{eight_digits, push_u64};

    /// Every value below 10^5 and every 9,973rd one up to 10^8 (the lanes are independent).
    #[test]
    fn eight_digits_are_the_zero_padded_decimal() {
        for v in (0..100_000)
            .chain((0..100_000_000).step_by(9_973))
            .chain([99_999_999])
        {
            assert_eq!(
                eight_digits(v).to_le_bytes(),
                format!("{v:08}").as_bytes(),
                "{v}"
            );
        }
    }

    /// Every digit count and every boundary between them, and a spread of other values,
    /// against `format!`.
    #[test]
    fn push_u64_writes_what_format_writes() {
        let mut values = vec![0, 1, 9, 10, 11, 99, 100, 101, u64::MAX, u64::MAX - 1];
        for k in 1..20 {
            let p = 10u64.pow(k);
            values.extend([p - 1, p, p + 1, p / 2 * 3 + 7]);
        }
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x >> (x % 64));
        }
        let mut out = b"prefix,".to_vec();
        let mut want = out.clone();
        for v in values {
            push_u64(&mut out, v);
            out.push(b',');
            want.extend_from_slice(format!("{v},").as_bytes());
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }
}
