//! Helpers shared by the integration tests: fixture access and a whole-source decode.

use std::path::{Path, PathBuf};

use tcpinfo_archive_read::{ArchiveBatch, ArchiveDecoder, ArchiveError, ReaderOptions, Segment};
use tcpinfo_core::RecordIter;

/// M-Lab's fixtures live with the core crate.
pub fn mlab_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tcpinfo-core/tests/fixtures/mlab")
}

pub fn read_fixture(name: &str) -> Vec<u8> {
    let p = mlab_dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every `.zst` fixture (archives and the raw netlink dump), sorted.
pub fn fixtures() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(mlab_dir())
        .expect("fixture dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| Path::new(n).extension().is_some_and(|e| e == "zst"))
        .collect();
    v.sort();
    assert_eq!(v.len(), 6, "{v:?}");
    v
}

/// One decoded record, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct Rec {
    pub kind: u8,
    pub family: u8,
    pub state: u8,
    pub cookie: u64,
    pub payload: Vec<u8>,
    pub line: Vec<u8>,
    pub time: i64,
    pub segment: Segment,
}

#[derive(Debug, Default)]
pub struct Decoded {
    pub records: Vec<Rec>,
    pub errors: Vec<ArchiveError>,
    pub batches: Vec<ArchiveBatch>,
}

pub fn collect(out: &mut Decoded, b: ArchiveBatch) {
    for (i, r) in
        RecordIter::new(&b.records.index, &b.records.payloads, &b.records.lines).enumerate()
    {
        let seg = b
            .segment_of(i)
            .and_then(|s| b.segments.get(s))
            .cloned()
            .expect("segment");
        out.records.push(Rec {
            kind: r.kind,
            family: r.family,
            state: r.state,
            cookie: r.cookie,
            payload: r.payload.to_vec(),
            line: r.line.to_vec(),
            time: b.time(i).expect("time"),
            segment: seg,
        });
    }
    out.errors.extend(b.errors.iter().cloned());
    out.batches.push(b);
}

/// Decodes `sources` (name, bytes), fed in chunks of `chunk` bytes.
pub fn decode(sources: &[(&str, &[u8])], opts: ReaderOptions, chunk: usize) -> Decoded {
    let mut d = ArchiveDecoder::new(opts);
    let mut out = Decoded::default();
    for (name, bytes) in sources {
        d.begin(*name);
        for c in bytes.chunks(chunk.max(1)) {
            d.feed(c);
            while let Some(b) = d.next_batch(false) {
                collect(&mut out, b);
            }
        }
        d.end();
    }
    while let Some(b) = d.next_batch(true) {
        collect(&mut out, b);
    }
    out
}

pub fn decode_one(name: &str, bytes: &[u8], stop_on_error: bool) -> Decoded {
    decode(
        &[(name, bytes)],
        ReaderOptions {
            stop_on_error,
            ..ReaderOptions::default()
        },
        1 << 16,
    )
}
