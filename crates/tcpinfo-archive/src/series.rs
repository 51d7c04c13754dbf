//! A connection's file series: what the writer remembers of a connection (next sequence
//! number, start time, open file), how its next file is named and placed, and the flush
//! of one file with its counters.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rustc_hash::FxHashSet;

use crate::error::ErrorCause;
#[cfg(test)]
use crate::file::write_header;
use crate::file::ArchiveFile;
use crate::frame::FrameCompressor;
use crate::path::{civil_date, date_dir, date_of_rfc3339, file_path, MAX_SEQUENCE};
use crate::stats::{Counters, Events};

/// File descriptors left for everything else when the cap is clamped to `RLIMIT_NOFILE`.
const FD_RESERVE: u64 = 512;
/// The smallest open-file cap a clamp can give.
const MIN_OPEN_FILES: usize = 16;
/// Longest RFC 3339 timestamp kept as a start time (`2019-04-01T07:42:37.371123456Z` is 30).
const MAX_START_LEN: usize = 40;
/// Date directories remembered as existing (cleared when full).
const MAX_KNOWN_DIRS: usize = 64;
/// How every `ArchivalRecord` line begins.
const TIMESTAMP_KEY: &[u8] = br#"{"Timestamp":""#;

/// What the writer remembers of a connection.
pub(crate) struct Conn {
    pub(crate) next_seq: u32,
    pub(crate) start: [u8; MAX_START_LEN],
    pub(crate) start_len: u8,
    pub(crate) file: Option<Box<ArchiveFile>>,
    pub(crate) last_seen: Instant,
}

impl Conn {
    pub(crate) fn start(&self) -> &[u8] {
        &self.start[..usize::from(self.start_len)]
    }
}

/// Writes a file's pending lines as one frame and counts it; on failure counts the
/// error and leaves the lines pending.
pub(crate) fn flush_file(
    cctx: &mut FrameCompressor,
    scratch: &mut Vec<u8>,
    counters: &Counters,
    events: &Events,
    pending_total: &mut usize,
    file: &mut ArchiveFile,
    arena: &[u8],
) -> bool {
    let before = file.pending_len();
    match file.flush(cctx, scratch, arena) {
        Ok(done) => {
            *pending_total -= before;
            if done.uncompressed > 0 {
                Counters::add(&counters.frames_written, 1);
                Counters::add(&counters.bytes_compressed, done.compressed);
                Counters::add(&counters.bytes_uncompressed, done.uncompressed);
                Counters::add(&counters.records_written, done.records);
            }
            true
        }
        Err((op, e)) => {
            // Taking the next free name may have renumbered the pending header (one
            // more digit, or one fewer): the total follows what is pending now.
            *pending_total = *pending_total + file.pending_len() - before;
            let cause = ErrorCause::of(&e);
            Counters::add(&counters.errors[cause as usize], 1);
            events.record(cause, op, &file.path.to_string_lossy(), &e);
            false
        }
    }
}

/// A file-system error to count: the operation, its path, the error.
pub(crate) type OpError = (&'static str, PathBuf, io::Error);

/// The connection's next file (at the next free sequence number), its header pending;
/// the file itself is created with its first frame. Sequence 0 goes under the
/// connection's start date, later ones under today's date (as M-Lab).
///
/// A date directory that cannot be made now (permissions) is returned as an error to
/// count beside the file: the file's lines stay pending and its first flush makes the
/// directory again, every tick, until it can (or the pending bound gives them up).
pub(crate) fn open_file(
    output: &Path,
    uuid: &str,
    conn: &mut Conn,
    known_dirs: &mut FxHashSet<PathBuf>,
    now: Instant,
) -> (Box<ArchiveFile>, Option<OpError>) {
    let date = if conn.next_seq == 0 {
        date_of_rfc3339(conn.start())
    } else {
        None
    }
    .unwrap_or_else(|| civil_date(unix_secs()));
    let dir = output.join(date_dir(date));
    let mut failed = None;
    if !known_dirs.contains(&dir) {
        match std::fs::create_dir_all(&dir) {
            Ok(()) => {
                if known_dirs.len() >= MAX_KNOWN_DIRS {
                    known_dirs.clear();
                }
                known_dirs.insert(dir.clone());
            }
            Err(e) => failed = Some(("mkdir", dir.clone(), e)),
        }
    }
    let id = uuid;
    let mut seq = conn.next_seq;
    // Skip names that exist (the O_EXCL create at the first frame is the real guard).
    while seq < MAX_SEQUENCE && std::fs::symlink_metadata(file_path(&dir, id, seq)).is_ok() {
        seq += 1;
    }
    conn.next_seq = seq.saturating_add(1);
    let file = Box::new(ArchiveFile::new(&dir, id, seq, conn.start(), now));
    (file, failed)
}

/// The open-file cap, at most the process's `RLIMIT_NOFILE` soft limit minus a reserve.
pub(crate) fn clamp_to_nofile(max_open: usize) -> usize {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut rl) } != 0 {
        return max_open;
    }
    let room = usize::try_from(rl.rlim_cur.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
    max_open.min(room.max(MIN_OPEN_FILES))
}

fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub(crate) fn new_conn(next_seq: u32, start: &[u8], now: Instant) -> Conn {
    let mut c = Conn {
        next_seq,
        start: [0; MAX_START_LEN],
        start_len: 0,
        file: None,
        last_seen: now,
    };
    let n = start.len().min(MAX_START_LEN);
    c.start[..n].copy_from_slice(&start[..n]);
    c.start_len = u8::try_from(n).unwrap_or(0);
    c
}

/// The `Timestamp` value of a record line (`{"Timestamp":"<here>",…`).
pub(crate) fn line_timestamp(line: &[u8]) -> &[u8] {
    line.strip_prefix(TIMESTAMP_KEY)
        .and_then(|rest| rest.iter().position(|&b| b == b'"').map(|n| &rest[..n]))
        .unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_cap_leaves_descriptors_for_the_rest() {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the rlimit we pass.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut rl) },
            0
        );
        let cap = clamp_to_nofile(usize::MAX);
        assert!(
            cap as u64
                <= rl
                    .rlim_cur
                    .saturating_sub(FD_RESERVE)
                    .max(MIN_OPEN_FILES as u64)
        );
        assert!(cap >= MIN_OPEN_FILES);
        assert_eq!(clamp_to_nofile(4), 4, "a small cap is kept");
    }

    #[test]
    fn header_matches_the_core_encoder() {
        let mut ours = Vec::new();
        write_header(
            &mut ours,
            "p_0000000000000001",
            3,
            b"2019-07-01T00:00:12.092Z",
        );
        let mut core = Vec::new();
        tcpinfo_core::write_header_line(
            &mut core,
            "p_0000000000000001",
            3,
            1_561_939_212_092_000_000,
        );
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(core).unwrap()
        );
    }
}
