//! A full file system (a small tmpfs, mounted by the test; needs root): errors are
//! counted by cause and reported once, `write` keeps accepting, files already written
//! stay readable, and writing resumes by itself when space returns. Likewise a read-only
//! file system (the lines wait, nothing is dropped) and an output directory deleted under
//! the writer (its open connections continue in new sequence files).

mod common;

use std::io::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use tcpinfo_archive::{ArchiveWriter, ErrorCause, WriterConfig};

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_full_disk_is_counted_and_writing_resumes_when_space_returns() {
    let Some(dir) = mount_tmpfs("full", "size=512k") else {
        return;
    };
    let out = dir.path.join("archive");
    let lines = fixture_lines();
    let mut c = WriterConfig::new(&out, "full_1_unsafe");
    c.flush_interval = Duration::from_millis(20);
    let w = ArchiveWriter::new(&c).unwrap();
    let conns = 5u64;
    let mut expected: Vec<Vec<&[u8]>> = vec![Vec::new(); 5];
    let mut send = |w: &ArchiveWriter, from: usize, to: usize| {
        for line in &lines[from..to] {
            let recs: Vec<(u8, u64, &[u8])> = (0..conns).map(|c| (1, c + 1, &line[..])).collect();
            for e in &mut expected {
                e.push(line);
            }
            w.write(batch(&recs)).unwrap();
        }
    };
    send(&w, 0, 10);
    w.flush(Duration::from_secs(5)).unwrap();
    let written_before = w.stats().records_written;
    assert_eq!(written_before, 50);

    // Fill the file system.
    let filler_path = dir.path.join("filler");
    let mut filler = std::fs::File::create(&filler_path).unwrap();
    let chunk = vec![0x5au8; 4096];
    while filler.write_all(&chunk).is_ok() {}
    drop(filler);

    send(&w, 10, 60);
    // A connection opened and closed while the disk is full: its final record must not be
    // lost (the finished file waits and is retried).
    w.write(batch(&[(0, 99, &lines[100]), (2, 99, &lines[101])]))
        .unwrap();
    wait_until("no_space errors", || {
        w.stats().errors(ErrorCause::NoSpace) >= 3
    });
    let events = w.take_events();
    assert_eq!(events.len(), 1, "one event per cause: {events:?}");
    assert_eq!(events[0].cause, ErrorCause::NoSpace);
    assert_eq!(events[0].op, "write");
    assert!(w.take_events().is_empty(), "rate-limited");
    // (A frame may still fit in the slack of a file's last page, but not all of them.)
    assert!(w.stats().records_written < 300, "not everything fits");
    // Files already written stay readable while the disk is full (between a failed write
    // and its cut a file may hold a partial frame for a moment: once in 12 runs here).
    for f in archive_files(&out) {
        assert!(zstd_t_settled(&f), "{} readable while full", f.display());
    }

    std::fs::remove_file(&filler_path).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while w.stats().records_written != 302 {
        assert!(
            Instant::now() < end,
            "writing did not resume: {:?}",
            w.stats()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    wait_until("the closed connection's file", || w.stats().open_files == 5);
    w.close(Duration::from_secs(5)).unwrap();
    let s = w.stats();
    assert_eq!(s.records_dropped, 0);
    let mut files = archive_files(&out);
    assert_eq!(files.len(), 6);
    let closed = files
        .iter()
        .position(|f| f.to_string_lossy().contains("_0000000000000063."))
        .unwrap();
    let closed = files.remove(closed);
    assert!(zstd_t(&closed));
    assert_eq!(
        &lines_of(&zstd_dc(&closed).1)[1..],
        &[&lines[100][..], &lines[101]]
    );
    for f in &files {
        assert!(zstd_t(f), "{}", f.display());
        let (ok, data) = zstd_dc(f);
        assert!(ok);
        assert_eq!(&lines_of(&data)[1..], &expected[0][..], "{}", f.display());
    }
}

#[test]
fn a_read_only_output_is_counted_and_writing_resumes_when_it_is_writable() {
    let Some(dir) = mount_tmpfs("readonly", "ro,size=1m") else {
        return;
    };
    let out = dir.path.join("archive");
    let lines = fixture_lines();
    let mut c = WriterConfig::new(&out, "ro_1_unsafe");
    c.flush_interval = Duration::from_millis(20);
    let w = ArchiveWriter::new(&c).expect("an unwritable output is not a construction error");
    for line in &lines[..5] {
        assert!(w.write(batch(&[(1, 42, line)])).unwrap());
    }
    // The flush cannot write them: they stay pending (retried every tick), not dropped.
    assert!(w.flush(Duration::from_secs(5)).is_ok());
    let s = w.stats();
    assert!(
        s.errors(ErrorCause::ReadOnly) >= 1,
        "the mkdir failure is counted"
    );
    assert_eq!(s.records_dropped, 0, "the lines wait for the directory");
    let events = w.take_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].cause, events[0].op, events[0].count),
        (ErrorCause::ReadOnly, "mkdir", 1)
    );
    let before = w.stats().errors(ErrorCause::ReadOnly);

    let remount = Command::new("mount")
        .args(["-o", "remount,rw"])
        .arg(&dir.path)
        .status()
        .unwrap();
    assert!(remount.success());
    w.write(batch(&[(2, 42, &lines[5])])).unwrap();
    w.close(Duration::from_secs(5)).unwrap();
    let files = archive_files(&out);
    assert_eq!(files.len(), 1);
    let (ok, data) = zstd_dc(&files[0]);
    assert!(ok);
    let want: Vec<&[u8]> = lines[..6].iter().map(|l| &l[..]).collect();
    assert_eq!(&lines_of(&data)[1..], &want[..], "nothing lost");
    assert_eq!(w.stats().records_dropped, 0);
    assert!(
        w.stats().errors(ErrorCause::ReadOnly) <= before + 1,
        "no error once writable (one tick may have been under way)"
    );
}

#[test]
fn an_output_deleted_under_the_writer_continues_in_a_new_sequence_file() {
    let dir = TempDir::new("deleted");
    let out = dir.0.join("archive");
    let lines = fixture_lines();
    let mut c = WriterConfig::new(&out, "del_1_unsafe");
    c.flush_interval = Duration::from_millis(20);
    let w = ArchiveWriter::new(&c).unwrap();
    for line in &lines[..3] {
        w.write(batch(&[(1, 7, line)])).unwrap();
    }
    w.flush(Duration::from_secs(5)).unwrap();
    assert_eq!(archive_files(&out).len(), 1);
    std::fs::remove_dir_all(&out).unwrap();
    // The open file is now unlinked: the next tick sees its directory gone.
    wait_until("the deletion counted", || {
        w.stats().errors(ErrorCause::Other) >= 1
    });
    for line in &lines[3..6] {
        w.write(batch(&[(1, 7, line)])).unwrap();
    }
    w.close(Duration::from_secs(5)).unwrap();
    let files = archive_files(&out);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].to_string_lossy().ends_with(".00001.jsonl.zst"),
        "the next sequence number: {}",
        files[0].display()
    );
    let (ok, data) = zstd_dc(&files[0]);
    assert!(ok);
    let want: Vec<&[u8]> = lines[3..6].iter().map(|l| &l[..]).collect();
    assert_eq!(&lines_of(&data)[1..], &want[..]);
    let events = w.take_events();
    assert!(events.iter().any(|e| e.op == "deleted"), "{events:?}");
}

/// Files written one line per flush keep that line in the writer's shared arena, which is
/// emptied after every flush: a line whose frame could not be written (disk full) must move
/// to its file's own buffer first, and reach the file when space returns, in order.
#[test]
fn one_line_per_flush_on_a_full_disk_loses_nothing() {
    let Some((w, out, lines, sent)) = one_line_per_flush_on_a_full_disk(1, "1m") else {
        return;
    };
    w.close(Duration::from_secs(5)).unwrap();
    let s = w.stats();
    assert_eq!(s.records_dropped, 0);
    assert_eq!(s.records_written, sent as u64 * CONNS, "{s:?}");
    assert_eq!(s.pending_bytes, 0, "everything written, nothing pending");
    let files = archive_files(&out.path.join("archive"));
    assert_eq!(files.len() as u64, CONNS);
    let want: Vec<&[u8]> = lines[..sent].iter().map(|l| &l[..]).collect();
    for f in &files {
        assert!(zstd_t(f), "{}", f.display());
        let (ok, data) = zstd_dc(f);
        assert!(ok);
        assert_eq!(&lines_of(&data)[1..], &want[..], "{}", f.display());
    }
}

/// Every record a close: each file is finished with its one line and, on the full disk,
/// waits to be retried (its first frame failed, so it is not on disk) while the
/// connection's next file takes the same name. When some space returns, the waiting files
/// are created and renumbered, and most of their frames still fail: the renumbered header
/// is one digit longer, and the pending-bytes total must follow (it went below zero when
/// they were given up at close, and a release build would have wrapped it and given every
/// pending line up as over the bound). Every record is written or counted as dropped.
#[test]
fn a_close_per_flush_on_a_full_disk_accounts_for_every_record() {
    let Some((w, out, _lines, sent)) = one_line_per_flush_on_a_full_disk(2, "256k") else {
        return;
    };
    // 240 files waiting do not fit in 64 pages: close gives the rest up, counted.
    let closed = w.close(Duration::from_secs(5));
    assert!(
        matches!(closed, Err(tcpinfo_archive::Error::Timeout { .. })),
        "{closed:?}"
    );
    let s = w.stats();
    assert!(s.records_dropped > 0, "{s:?}");
    assert_eq!(
        s.records_written + s.records_dropped,
        sent as u64 * CONNS,
        "{s:?}"
    );
    assert_eq!(s.pending_bytes, 0, "{s:?}");
    for f in &archive_files(&out.path.join("archive")) {
        assert!(zstd_t(f), "{}", f.display());
    }
}

const CONNS: u64 = 4;

/// Writes one line per connection per flush (records of `kind`) on a tmpfs of `size`:
/// two rounds, then 60 with the file system full, then one after space returns. `None`
/// when no tmpfs can be mounted; the mount goes with the returned `MountedDir`.
fn one_line_per_flush_on_a_full_disk(
    kind: u8,
    size: &str,
) -> Option<(ArchiveWriter, MountedDir, Vec<Vec<u8>>, usize)> {
    let mount = mount_tmpfs(&format!("arena-full-{kind}"), &format!("size={size}"))?;
    let out = mount.path.join("archive");
    let lines = fixture_lines();
    let mut c = WriterConfig::new(&out, "arena_1_unsafe");
    c.flush_interval = Duration::from_secs(3600);
    let w = ArchiveWriter::new(&c).unwrap();
    let mut sent = 0;
    let mut round = |w: &ArchiveWriter| {
        let line = &lines[sent][..];
        let recs: Vec<(u8, u64, &[u8])> = (0..CONNS).map(|c| (kind, c + 1, line)).collect();
        w.write(batch(&recs)).unwrap();
        w.flush(Duration::from_secs(5)).unwrap();
        sent += 1;
    };
    // Every file created, then one line per file per flush (no buffer of its own).
    round(&w);
    round(&w);
    let filler_path = mount.path.join("filler");
    let mut filler = std::fs::File::create(&filler_path).unwrap();
    let chunk = vec![0x5au8; 4096];
    while filler.write_all(&chunk).is_ok() {}
    drop(filler);
    // Frames fit in the slack of each file's last page until they do not: go on until
    // every file has failed a few times.
    let before = w.stats().records_written;
    for _ in 0..60 {
        round(&w);
    }
    let s = w.stats();
    assert!(s.errors(ErrorCause::NoSpace) >= 4, "{s:?}");
    assert!(s.records_written < before + 60 * CONNS, "{s:?}");
    assert_eq!(s.records_dropped, 0);
    std::fs::remove_file(&filler_path).unwrap();
    round(&w);
    Some((w, mount, lines, sent))
}

/// A tmpfs mounted with `options` on a new temporary directory; `None` (said on stderr)
/// when none can be mounted (needs root).
fn mount_tmpfs(name: &str, options: &str) -> Option<MountedDir> {
    let dir = TempDir::new(name);
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", options])
        .arg("tcpinfo-archive-test")
        .arg(&dir.0)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        #[expect(clippy::print_stderr, reason = "a skipped test says why")]
        {
            eprintln!("SKIPPED: cannot mount a tmpfs (needs root)");
        }
        return None;
    }
    Some(MountedDir {
        path: dir.0.clone(),
        _mount: Mount(dir.0.clone()),
        _dir: dir,
    })
}

/// A mounted tmpfs: unmounted (then removed) when dropped.
struct MountedDir {
    path: std::path::PathBuf,
    _mount: Mount,
    _dir: TempDir,
}
