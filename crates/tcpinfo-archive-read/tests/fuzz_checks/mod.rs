//! The checks run by the archive reader's fuzz targets (`fuzz/fuzz_targets/archive_read.rs`:
//! any stored bytes; `archive_zstd.rs`: zstd frames of JSON lines built from fuzzed records,
//! header and garbage), included there by path, and by `tests/fuzz_regressions.rs`, which
//! replays every committed input through them. See docs/RELIABILITY.md#fuzzing.

use arbitrary::{Arbitrary, Unstructured};
use tcpinfo_archive_read::csv::{write_rows, COLUMNS};
use tcpinfo_archive_read::json_out::write_json_rows;
use tcpinfo_archive_read::series::extract;
use tcpinfo_archive_read::{ArchiveBatch, ArchiveDecoder, ErrorKind, ReaderOptions, Segment};
use tcpinfo_core::parse::attrs::{Attrs, MAX_ATTR_SLOTS};
use tcpinfo_core::parse::diag_msg::{parse_diag, INET_DIAG_MSG_LEN};
use tcpinfo_core::parse::tcp_info::AccEcnLayout;
use tcpinfo_core::{write_header_line, write_record_line, RecordIter};

/// Runs `check` on `bytes` the way `libfuzzer_sys::fuzz_target!` does for a typed input.
pub fn replay<T: for<'a> Arbitrary<'a>>(bytes: &[u8], check: fn(T)) {
    if bytes.len() < T::size_hint(0).0 {
        return;
    }
    if let Ok(input) = T::arbitrary_take_rest(Unstructured::new(bytes)) {
        check(input);
    }
}

// ---------------------------------------------------------------------------------------
// archive_read: any stored bytes.

/// Stored bytes and how they are read.
#[derive(Debug, Arbitrary)]
pub struct StoredInput {
    /// Reader bounds and policy (see [`options`]).
    pub options: u8,
    /// Chunk size of the second, chunked read.
    pub chunk: u16,
    /// The source's bytes.
    pub bytes: Vec<u8>,
}

/// Small bounds, so that batch, line and error limits are all reached: bit 0 stops at
/// the first error; bits 1–3 give 1–8 records per batch; bit 4 a 300-byte line limit.
fn options(bits: u8) -> ReaderOptions {
    ReaderOptions {
        stop_on_error: bits & 1 != 0,
        max_batch_records: 1 + usize::from(bits >> 1 & 7),
        max_batch_bytes: 4096,
        max_line_bytes: if bits & 16 != 0 { 300 } else { 1 << 20 },
        max_errors_per_batch: 4,
    }
}

/// Fuzz target `archive_read`.
pub fn archive_read(input: &StoredInput) {
    let _ = read_both_ways(&input.bytes, options(input.options), input.chunk);
}

/// One record as read, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    kind: u8,
    family: u8,
    state: u8,
    cookie: u64,
    payload: Vec<u8>,
    line: Vec<u8>,
    time: i64,
    segment: Segment,
}

/// What a read produced: records, and errors as (kind, line, byte offset).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Read {
    records: Vec<Rec>,
    errors: Vec<(ErrorKind, Option<u64>, u64)>,
    errors_counted: u64,
}

/// Reads `bytes` whole and again in chunks of `chunk` bytes: no panic, both reads agree
/// (chunking is invisible), every batch keeps its bounds and renders as JSON and CSV.
pub fn read_both_ways(bytes: &[u8], opts: ReaderOptions, chunk: u16) -> Read {
    let whole = read(bytes, opts, bytes.len());
    let chunked = read(bytes, opts, usize::from(chunk).max(1));
    assert_eq!(whole, chunked, "chunks of {chunk} bytes read differently");
    whole
}

fn read(bytes: &[u8], opts: ReaderOptions, chunk: usize) -> Read {
    let mut d = ArchiveDecoder::new(opts);
    let mut out = Read::default();
    d.begin("fuzz");
    for c in bytes.chunks(chunk.max(1)) {
        d.feed(c);
        while let Some(b) = d.next_batch(false) {
            collect(&mut out, &b, opts);
        }
    }
    d.end();
    while let Some(b) = d.next_batch(true) {
        collect(&mut out, &b, opts);
    }
    out
}

fn collect(out: &mut Read, b: &ArchiveBatch, opts: ReaderOptions) {
    assert!(b.len() <= opts.max_batch_records, "{} records", b.len());
    assert!(b.errors.len() <= opts.max_errors_per_batch);
    assert_eq!(b.times.len(), b.len() * 8);
    let r = &b.records;
    for (i, rec) in RecordIter::new(&r.index, &r.payloads, &r.lines).enumerate() {
        assert!(
            rec.payload.len() >= INET_DIAG_MSG_LEN,
            "a record has its inet_diag_msg"
        );
        assert!(rec.line.len() <= opts.max_line_bytes + 1);
        let segment = b
            .segment_of(i)
            .and_then(|s| b.segments.get(s))
            .cloned()
            .expect("every record has its segment");
        out.records.push(Rec {
            kind: rec.kind,
            family: rec.family,
            state: rec.state,
            cookie: rec.cookie,
            payload: rec.payload.to_vec(),
            line: rec.line.to_vec(),
            time: b.time(i).expect("a time per record"),
            segment,
        });
    }
    out.errors
        .extend(b.errors.iter().map(|e| (e.kind, e.line, e.byte_offset)));
    out.errors_counted += b.stats.errors;
    // What the read side renders from a batch: JSON rows, CSV rows, series.
    let mut json = Vec::new();
    let rows = write_json_rows(&mut json, b, AccEcnLayout::Bitfield);
    for line in json.split(|c| *c == b'\n').filter(|l| !l.is_empty()) {
        let v: Result<serde_json::Value, _> = serde_json::from_slice(line);
        assert!(v.is_ok(), "JSON row: {}", String::from_utf8_lossy(line));
    }
    assert!(rows <= b.len());
    let cols: Vec<usize> = (0..COLUMNS.len()).collect();
    let mut csv = Vec::new();
    write_rows(&mut csv, &r.index, &r.payloads, &r.lines, &cols);
    let series = extract(
        &r.index,
        &r.payloads,
        &b.times,
        &["rtt", "bytesAcked", "nope"],
    );
    assert_eq!(series.len(), 3 * b.len());
}

// ---------------------------------------------------------------------------------------
// archive_zstd: what the writer writes, damaged or not, compressed in fuzzed frames.

/// An archive file's content, its framing and its damage.
#[derive(Debug, Arbitrary)]
pub struct ArchiveInput {
    /// Reader options (see [`options`]).
    pub options: u8,
    /// Chunk size of the chunked read.
    pub chunk: u16,
    /// The metadata header line, if any.
    pub header: Option<(String, u64, u32)>,
    /// The lines after it.
    pub lines: Vec<Line>,
    /// Byte offsets (modulo the text length) where a zstd frame ends; none: plain text.
    pub frames: Option<Vec<u16>>,
    /// Bytes cut off the end of the stored file.
    pub cut: u8,
}

/// One line of the file.
#[derive(Debug, Arbitrary)]
pub enum Line {
    /// An `ArchivalRecord` as the poller writes it.
    Record(RecordIn),
    /// An `ArchivalRecord` with one byte changed.
    Damaged(RecordIn, u16, u8),
    /// Any bytes (a newline in them splits the line).
    Garbage(Vec<u8>),
    /// An empty line.
    Empty,
}

/// A netlink reply and its time.
#[derive(Debug, Arbitrary)]
pub struct RecordIn {
    /// Seconds since 1970 (kept within years 1970–2255).
    pub secs: u32,
    /// Nanoseconds.
    pub nanos: u32,
    /// `inet_diag_msg`.
    pub msg: [u8; 72],
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// Attributes: type and payload.
    pub attrs: Vec<(u8, Vec<u8>)>,
}

impl RecordIn {
    fn time(&self) -> i64 {
        i64::from(self.secs) * 1_000_000_000 + i64::from(self.nanos % 1_000_000_000)
    }

    fn payload(&self) -> Vec<u8> {
        let mut p = self.msg.to_vec();
        p[0] = if self.v6 { 10 } else { 2 };
        for (ty, data) in &self.attrs {
            let data = &data[..data.len().min(600)];
            let len = u16::try_from(4 + data.len()).expect("short");
            p.extend_from_slice(&len.to_ne_bytes());
            p.extend_from_slice(&u16::from(*ty % 50).to_ne_bytes());
            p.extend_from_slice(data);
            p.resize(p.len().next_multiple_of(4), 0);
        }
        p
    }

    fn line(&self) -> Vec<u8> {
        let payload = self.payload();
        let (msg, attrs) = parse_diag(&payload).expect("built well-formed");
        let mut out = Vec::new();
        write_record_line(&mut out, self.time(), &msg, &attrs);
        out
    }
}

/// Fuzz target `archive_zstd`: the generic read properties, and when nothing was damaged,
/// every record reads back with the time, `inet_diag_msg` and attributes it was written
/// with, under the header's metadata.
pub fn archive_zstd(input: &ArchiveInput) {
    let mut text = Vec::new();
    if let Some((uuid, seq, start)) = &input.header {
        write_header_line(&mut text, uuid, *seq, i64::from(*start) * 1_000_000_000);
    }
    let mut expect = Vec::new();
    let mut intact = true;
    for l in &input.lines {
        match l {
            Line::Record(r) => {
                text.extend_from_slice(&r.line());
                expect.push(r);
            }
            Line::Damaged(r, at, b) => {
                let mut line = r.line();
                let at = usize::from(*at) % line.len();
                if line[at] == *b {
                    expect.push(r);
                } else {
                    intact = false;
                    line[at] = *b;
                }
                text.extend_from_slice(&line);
            }
            Line::Garbage(g) => {
                intact &= g.is_empty();
                text.extend_from_slice(g);
                text.push(b'\n');
            }
            Line::Empty => text.push(b'\n'),
        }
    }
    let mut stored = match &input.frames {
        None => text.clone(),
        Some(ends) => frames(&text, ends),
    };
    let cut = usize::from(input.cut).min(stored.len());
    stored.truncate(stored.len() - cut);
    intact &= cut == 0;
    let opts = ReaderOptions {
        max_line_bytes: 1 << 20,
        ..options(input.options)
    };
    let read = read_both_ways(&stored, opts, input.chunk);
    if !intact {
        return;
    }
    assert_eq!(read.errors, vec![], "an intact archive reads without error");
    assert_eq!(read.records.len(), expect.len());
    for (got, want) in read.records.iter().zip(expect) {
        assert_eq!(got.time, want.time());
        let payload = want.payload();
        let (_, want_attrs) = parse_diag(&payload).expect("well-formed");
        assert_eq!(
            got.payload[..INET_DIAG_MSG_LEN],
            payload[..INET_DIAG_MSG_LEN]
        );
        let got_attrs = Attrs::parse(&got.payload, INET_DIAG_MSG_LEN).expect("reparses");
        for ty in 0..u16::try_from(MAX_ATTR_SLOTS).expect("small") {
            assert_eq!(got_attrs.get(ty), want_attrs.get(ty), "attribute {ty}");
        }
        if let Some((uuid, seq, start)) = &input.header {
            assert_eq!(got.segment.uuid.as_deref(), Some(uuid.as_str()));
            assert_eq!(got.segment.sequence, Some(*seq));
            assert_eq!(
                got.segment.start_time,
                Some(i64::from(*start) * 1_000_000_000)
            );
        }
    }
}

/// `text` compressed as one zstd frame per piece, cut at `ends` (modulo its length).
fn frames(text: &[u8], ends: &[u16]) -> Vec<u8> {
    let mut cuts: Vec<usize> = ends
        .iter()
        .map(|e| usize::from(*e) % (text.len() + 1))
        .chain([0, text.len()])
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    for w in cuts.windows(2) {
        out.extend_from_slice(&zstd::bulk::compress(&text[w[0]..w[1]], 1).expect("zstd"));
    }
    if cuts.len() < 2 {
        out.extend_from_slice(&zstd::bulk::compress(text, 1).expect("zstd"));
    }
    out
}
