//! The archive writer against real files in a temp dir: names and headers, byte-identical
//! lines, complete frames, sequence continuation after a restart, the open-file cap,
//! rotation, SIGKILL, anonymization, backpressure and bad prefixes.

#![expect(
    clippy::many_single_char_names,
    reason = "w, c, m, s, l: short-lived test locals"
)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use common::*;
use tcpinfo_archive::{parse_file_name, AnonymizeMethod, ArchiveWriter, Rotate, WriterConfig};

const PREFIX: &str = "host-a_1700000000_unsafe";
const T: Duration = Duration::from_secs(5);

fn config(dir: &std::path::Path) -> WriterConfig {
    let mut c = WriterConfig::new(dir, PREFIX);
    c.flush_interval = Duration::from_secs(3600);
    c
}

/// Files grouped by cookie, each with (seq, decoded bytes).
fn by_cookie(root: &std::path::Path) -> BTreeMap<u64, Vec<(u32, Vec<u8>)>> {
    let mut m: BTreeMap<u64, Vec<(u32, Vec<u8>)>> = BTreeMap::new();
    for p in archive_files(root) {
        let name = p.file_name().unwrap().to_str().unwrap();
        let (tag, cookie, seq) = parse_file_name(name, PREFIX).expect(name);
        assert_eq!(tag, "", "{name}: a host-namespace UUID");
        let (ok, data) = zstd_dc(&p);
        assert!(ok, "zstd -dc {}", p.display());
        assert!(zstd_t(&p), "zstd -t {}", p.display());
        m.entry(cookie).or_default().push((seq, data));
    }
    for v in m.values_mut() {
        v.sort_by_key(|(s, _)| *s);
    }
    m
}

#[test]
fn files_have_mlab_headers_and_the_lines_byte_for_byte() {
    let dir = TempDir::new("basic");
    let lines = fixture_lines();
    let w = ArchiveWriter::new(&config(&dir.0)).unwrap();
    assert!(w
        .write(batch(&[
            (OPENED, 1, &lines[0]),
            (OPENED, 0x62D84, &lines[1])
        ]))
        .unwrap());
    w.write(batch(&[
        (CHANGED, 1, &lines[2]),
        (CHANGED, 0x62D84, &lines[3]),
    ]))
    .unwrap();
    w.write(batch(&[(CLOSED, 1, &lines[4]), (CLOSED, 0x62D84, &[])]))
        .unwrap();
    w.close(T).unwrap();

    let files = archive_files(&dir.0);
    assert_eq!(files.len(), 2);
    for f in &files {
        // Sequence 0 lives under the connection's start date (the fixture's 2019-07-01).
        assert!(f.starts_with(dir.0.join("2019/07/01")), "{}", f.display());
    }
    let m = by_cookie(&dir.0);
    let (seq, data) = &m[&1][0];
    assert_eq!(*seq, 0);
    let l = lines_of(data);
    assert_eq!(
        l[0],
        format!(
            "{{\"Timestamp\":\"0001-01-01T00:00:00Z\",\"Metadata\":{{\"UUID\":\"{PREFIX}_0000000000000001\",\"Sequence\":0,\"StartTime\":\"2019-07-01T00:00:12.092Z\"}}}}\n"
        )
        .as_bytes()
    );
    assert_eq!(&l[1..], &[&lines[0][..], &lines[2], &lines[4]]);
    let h = header(&m[&0x62D84][0].1);
    assert_eq!(h["Metadata"]["UUID"], format!("{PREFIX}_0000000000062D84"));
    assert_eq!(lines_of(&m[&0x62D84][0].1)[1..], [&lines[1][..], &lines[3]]);

    let s = w.stats();
    assert_eq!((s.files_opened, s.files_closed, s.open_files), (2, 2, 0));
    assert_eq!((s.records_written, s.records_dropped), (5, 0));
    assert_eq!(s.connections, 0, "closed connections are forgotten");
    assert!(s.bytes_compressed > 0 && s.bytes_uncompressed > s.bytes_compressed);
    assert_eq!(w.write(batch(&[])).unwrap_err().code(), "ERR_CLOSED");
}

#[test]
fn a_restart_continues_each_series_and_leaves_existing_files_alone() {
    let dir = TempDir::new("restart");
    let lines = fixture_lines();
    let w = ArchiveWriter::new(&config(&dir.0)).unwrap();
    w.write(batch(&[(OPENED, 7, &lines[0]), (OPENED, 8, &lines[1])]))
        .unwrap();
    w.rotate(Rotate::OlderThan(Duration::ZERO)).unwrap();
    w.write(batch(&[(CHANGED, 7, &lines[2])])).unwrap();
    w.close(T).unwrap();
    let before: Vec<_> = archive_files(&dir.0)
        .iter()
        .map(|p| (p.clone(), digest(p)))
        .collect();
    assert_eq!(before.len(), 3);

    // Same boot, same UUIDs: the new writer must not touch sequences 0 and 1.
    let w = ArchiveWriter::new(&config(&dir.0)).unwrap();
    w.write(batch(&[(CHANGED, 7, &lines[3]), (CHANGED, 8, &lines[4])]))
        .unwrap();
    w.close(T).unwrap();
    for (p, d) in &before {
        assert_eq!(&digest(p), d, "{} changed", p.display());
    }
    let m = by_cookie(&dir.0);
    assert_eq!(m[&7].iter().map(|(s, _)| *s).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(m[&8].iter().map(|(s, _)| *s).collect::<Vec<_>>(), [0, 1]);
    let h = header(&m[&7][2].1);
    assert_eq!(h["Metadata"]["Sequence"], 2);
    assert_eq!(lines_of(&m[&7][2].1)[1], &lines[3][..]);
}

#[test]
fn more_connections_than_the_open_file_cap() {
    let dir = TempDir::new("cap");
    let lines = fixture_lines();
    let mut c = config(&dir.0);
    c.max_open_files = 4;
    let w = ArchiveWriter::new(&c).unwrap();
    let first: Vec<(u8, u64, &[u8])> = (0..10)
        .map(|i| (OPENED, 100 + i as u64, &lines[i][..]))
        .collect();
    w.write(batch(&first)).unwrap();
    w.flush(T).unwrap();
    let s = w.stats();
    assert_eq!(s.open_files, 4);
    assert_eq!((s.files_opened, s.files_closed), (10, 6));
    // The evicted connections continue in a new sequence file, never reopening the old.
    let again: Vec<(u8, u64, &[u8])> = (0..10)
        .map(|i| (CHANGED, 100 + i as u64, &lines[20 + i][..]))
        .collect();
    w.write(batch(&again)).unwrap();
    w.close(T).unwrap();
    let m = by_cookie(&dir.0);
    assert_eq!(m.len(), 10);
    let mut records = 0;
    for (cookie, files) in &m {
        let i = usize::try_from(cookie - 100).unwrap();
        let all: Vec<&[u8]> = files
            .iter()
            .flat_map(|(_, d)| lines_of(d)[1..].to_vec())
            .collect();
        assert_eq!(all, [&lines[i][..], &lines[20 + i]], "cookie {cookie}");
        for (n, (seq, d)) in files.iter().enumerate() {
            assert_eq!(*seq as usize, n);
            assert_eq!(header(d)["Metadata"]["Sequence"], n);
        }
        records += all.len();
    }
    assert_eq!(records, 20);
    assert!(w.stats().files_opened > 10);
}

#[test]
fn idle_files_are_finished_and_continue_in_a_new_sequence() {
    let dir = TempDir::new("idle");
    let lines = fixture_lines();
    let mut c = config(&dir.0);
    c.flush_interval = Duration::from_millis(20);
    c.idle_close = Duration::from_millis(50);
    let w = ArchiveWriter::new(&c).unwrap();
    w.write(batch(&[(OPENED, 5, &lines[0])])).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.stats().open_files, 0);
    assert_eq!(w.stats().files_closed, 1);
    w.write(batch(&[(CHANGED, 5, &lines[1])])).unwrap();
    w.close(T).unwrap();
    let m = by_cookie(&dir.0);
    assert_eq!(m[&5].len(), 2);
}

#[test]
fn flush_interval_bounds_what_a_sigkill_can_lose() {
    if std::env::var_os("TCPINFO_ARCHIVE_CHILD").is_some() {
        return; // the child runs `sigkill_child` instead
    }
    let dir = TempDir::new("kill");
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "sigkill_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TCPINFO_ARCHIVE_CHILD", &dir.0)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 && !line.contains("READY") {
        line.clear();
    }
    assert!(line.contains("READY"), "child did not get ready");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let lines = fixture_lines();
    let files = archive_files(&dir.0);
    assert_eq!(files.len(), 20);
    for f in files {
        let (ok, data) = zstd_dc(&f);
        assert!(ok, "zstd -dc {} after SIGKILL", f.display());
        let l = lines_of(&data);
        // Everything up to the last flush, as whole lines; nothing after it.
        assert_eq!(l.len(), 1 + 50, "{}", f.display());
        assert!(l.iter().all(|x| x.ends_with(b"\n")));
        assert_eq!(
            &l[1..],
            &lines[..50].iter().map(Vec::as_slice).collect::<Vec<_>>()[..]
        );
    }
}

/// Run by `flush_interval_bounds_what_a_sigkill_can_lose` in a child process.
#[test]
#[ignore = "child process of the SIGKILL test"]
fn sigkill_child() {
    use std::io::Write as _;
    let Some(dir) = std::env::var_os("TCPINFO_ARCHIVE_CHILD") else {
        return;
    };
    let lines = fixture_lines();
    let w = ArchiveWriter::new(&config(std::path::Path::new(&dir))).unwrap();
    for (i, line) in lines.iter().take(50).enumerate() {
        let recs: Vec<(u8, u64, &[u8])> = (0..20u64).map(|c| (CHANGED, c + 1, &line[..])).collect();
        w.write(batch(&recs)).unwrap();
        if i % 10 == 9 {
            w.flush(T).unwrap();
        }
    }
    // Queued and pending, never flushed: lost by the SIGKILL, and only that.
    let recs: Vec<(u8, u64, &[u8])> = (0..20u64)
        .map(|c| (CHANGED, c + 1, &lines[60][..]))
        .collect();
    w.write(batch(&recs)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    writeln!(std::io::stdout(), "READY").unwrap();
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn netblock_anonymizes_the_archived_copy_only() {
    let dir = TempDir::new("anon");
    let lines = fixture_lines();
    let mut c = config(&dir.0);
    c.anonymize = AnonymizeMethod::Netblock;
    c.anonymize_keep = Some(vec![]);
    let w = ArchiveWriter::new(&c).unwrap();
    let b = batch(&[(OPENED, 9, &lines[0])]);
    let input = b.clone();
    w.write(b).unwrap();
    w.close(T).unwrap();
    assert_eq!(input.lines, lines[0], "input untouched");
    let m = by_cookie(&dir.0);
    let rec: serde_json::Value = serde_json::from_slice(lines_of(&m[&9][0].1)[1]).unwrap();
    let orig: serde_json::Value = serde_json::from_slice(&lines[0]).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let got = b64.decode(rec["RawIDM"].as_str().unwrap()).unwrap();
    let mut want = b64.decode(orig["RawIDM"].as_str().unwrap()).unwrap();
    // The fixture is AF_INET6 with v4-mapped addresses: /24 on both ends.
    assert_eq!(want[0], 10);
    assert_eq!(&want[8..20], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
    want[8 + 15] = 0;
    want[24 + 15] = 0;
    assert_eq!(got, want);
    assert_eq!(rec["Attributes"], orig["Attributes"]);
    assert_eq!(rec["Timestamp"], orig["Timestamp"]);
}

#[test]
fn prefixes_that_could_leave_the_output_dir_are_rejected() {
    let dir = TempDir::new("prefix");
    for bad in ["../evil", "a/b", "..", "x\0y", ".hidden", ""] {
        let e = ArchiveWriter::new(&WriterConfig::new(&dir.0, bad))
            .err()
            .expect(bad);
        assert_eq!(e.code(), "ERR_CONFIG", "{bad:?}");
    }
    assert!(archive_files(&dir.0).is_empty());
    let mut c = config(&dir.0);
    c.level = 99;
    assert_eq!(ArchiveWriter::new(&c).err().unwrap().code(), "ERR_CONFIG");
    let w = ArchiveWriter::new(&config(&dir.0)).unwrap();
    assert!(w.owns(&format!("{PREFIX}_00000000000000FF")));
    assert!(w.owns(&format!("{PREFIX}_ns4026531840_00000000000000FF")));
    assert!(!w.owns("other_00000000000000FF"));
    let mut b = batch(&[(OPENED, 1, b"{}\n")]);
    b.uuid_tags = vec!["ns1/../..".into()];
    assert_eq!(
        w.write(b).err().unwrap().code(),
        "ERR_CONFIG",
        "a tag is never a path"
    );
}

#[test]
fn over_the_queue_limit_closes_are_kept_and_the_rest_counted() {
    let dir = TempDir::new("backpressure");
    let lines = fixture_lines();
    let mut c = config(&dir.0);
    c.queue_depth = 1;
    c.max_queued_bytes = 1;
    let w = ArchiveWriter::new(&c).unwrap();
    let mut sent = 0u64;
    let mut full = 0;
    for i in 0..200u64 {
        let recs = [
            (OPENED, 1000 + i, &lines[0][..]),
            (CHANGED, 1000 + i, &lines[1][..]),
            (CLOSED, 1000 + i, &lines[2][..]),
        ];
        sent += 3;
        if !w.write(batch(&recs)).unwrap() {
            full += 1;
        }
    }
    assert!(full > 0, "a 1-batch queue reports full");
    w.close(T).unwrap();
    let s = w.stats();
    assert_eq!(s.records_written + s.records_dropped, sent);
    let m = by_cookie(&dir.0);
    assert_eq!(m.len(), 200, "every connection's close was archived");
    for files in m.values() {
        let last = lines_of(&files.last().unwrap().1)
            .last()
            .copied()
            .unwrap()
            .to_vec();
        assert_eq!(last, lines[2], "the final record is the close");
    }
}

#[test]
fn a_caller_that_waits_when_told_loses_nothing_to_the_byte_limit() {
    // Large parts of a first poll and small steady polls, each slow to write (every record
    // a new file), offered as fast as the writer's answers allow. A queue limit of 2.5
    // large batches must make the caller wait, never drop a record, whatever comes next.
    let dir = TempDir::new("room");
    let lines = fixture_lines();
    let size = |k: u64| if k % 3 == 2 { 50 } else { 2000 };
    let mut cookie = 0u64;
    let mut make = |k: u64| {
        let recs: Vec<(u8, u64, &[u8])> = (0..size(k))
            .map(|i| {
                cookie += 1;
                (OPENED, cookie, &lines[(i % 50) as usize][..])
            })
            .collect();
        batch(&recs)
    };
    let mut c = config(&dir.0);
    c.max_queued_bytes = make(0).len_bytes() * 5 / 2;
    let w = ArchiveWriter::new(&c).unwrap();
    let batches = 12u64;
    let mut waits = 0;
    for k in 1..=batches {
        if !w.write(make(k)).unwrap() {
            waits += 1;
            assert!(w.wait_for_room(Duration::from_secs(30)), "room came back");
        }
    }
    w.close(Duration::from_secs(60)).unwrap();
    let s = w.stats();
    assert!(waits > 0, "the writer asked the caller to wait");
    assert_eq!(s.records_dropped, 0, "nothing dropped: {s:?}");
    assert_eq!(s.batches_over_limit, 0, "no batch over the limit: {s:?}");
    assert_eq!(s.records_written, (1..=batches).map(size).sum::<u64>());
}

#[test]
fn a_burst_past_the_early_flush_bound_is_written_before_the_interval_ends() {
    // The flush interval is an hour: only the pending-bytes bound can write these.
    let dir = TempDir::new("burst");
    let lines = fixture_lines();
    let mut c = config(&dir.0);
    c.early_flush_bytes = 512 << 10;
    let w = ArchiveWriter::new(&c).unwrap();
    let mut sent = 0usize;
    let mut cookie = 0u64;
    while sent < 768 << 10 {
        let recs: Vec<(u8, u64, &[u8])> = (0..100)
            .map(|i| {
                cookie += 1;
                (OPENED, cookie, &lines[i % 50][..])
            })
            .collect();
        sent += recs.iter().map(|r| r.2.len()).sum::<usize>();
        assert!(w.write(batch(&recs)).unwrap() || w.wait_for_room(T));
    }
    // Settled: the queue drained and nothing more written for 100 ms.
    let end = std::time::Instant::now() + T;
    let mut last = w.stats();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let s = w.stats();
        if s.queue_depth == 0 && s.records_written == last.records_written {
            break;
        }
        assert!(std::time::Instant::now() < end, "still writing: {s:?}");
        last = s;
    }
    let s = w.stats();
    assert!(
        s.records_written >= 500,
        "most of the burst written early: {s:?}"
    );
    assert!(
        s.records_written < cookie,
        "the tail waits for its flush: {s:?}"
    );
    w.close(T).unwrap();
    assert_eq!(w.stats().records_written, cookie);
}

#[test]
fn a_forgotten_connection_continues_its_series_at_the_next_number() {
    let dir = TempDir::new("forget");
    let lines = fixture_lines();
    let mut c = config(&dir.0);
    c.flush_interval = Duration::from_millis(5);
    c.idle_close = Duration::from_millis(10);
    c.forget_after = Duration::from_millis(10);
    let w = ArchiveWriter::new(&c).unwrap();
    w.write(batch(&[(OPENED, 77, &lines[0])])).unwrap();
    w.flush(T).unwrap();
    assert_eq!(w.stats().connections, 1);
    let end = std::time::Instant::now() + T;
    while w.stats().connections > 0 {
        assert!(std::time::Instant::now() < end, "never forgotten");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A record dated another day: a new sequence 0 would go to another directory.
    let next_day = String::from_utf8(lines[1].clone())
        .unwrap()
        .replace("2019-07-01T", "2019-07-02T");
    w.write(batch(&[(CHANGED, 77, next_day.as_bytes())]))
        .unwrap();
    w.close(T).unwrap();
    let m = by_cookie(&dir.0);
    assert_eq!(m[&77].iter().map(|(s, _)| *s).collect::<Vec<_>>(), [0, 1]);
}

#[test]
fn a_name_taken_before_the_first_frame_moves_to_the_next_sequence() {
    let dir = TempDir::new("taken");
    let lines = fixture_lines();
    let w = ArchiveWriter::new(&config(&dir.0)).unwrap();
    w.write(batch(&[(OPENED, 5, &lines[0])])).unwrap();
    // The writer has chosen sequence 0 but creates the file only with its first frame.
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        archive_files(&dir.0).is_empty(),
        "no file before its first frame"
    );
    let foreign = dir.0.join(format!(
        "2019/07/01/{PREFIX}_0000000000000005.00000.jsonl.zst"
    ));
    std::fs::write(&foreign, b"not ours").unwrap();
    w.close(T).unwrap();
    assert_eq!(
        std::fs::read(&foreign).unwrap(),
        b"not ours",
        "never overwritten"
    );
    std::fs::remove_file(&foreign).unwrap();
    let m = by_cookie(&dir.0);
    assert_eq!(m[&5].len(), 1);
    let (seq, data) = &m[&5][0];
    assert_eq!(*seq, 1);
    assert_eq!(header(data)["Metadata"]["Sequence"], 1);
    assert_eq!(lines_of(data)[1], &lines[0][..]);
}

/// The same cookie in the host and in two other namespaces (kernels before 5.12 number
/// cookies per namespace): three series, named as `Connection.uuid` names them
/// (docs/netns.md); a restart continues each; a rotation by tagged UUID finishes only it.
#[test]
fn connections_of_other_namespaces_get_tagged_uuids_of_their_own() {
    const TAGS: [&str; 3] = ["", "ns4026532001", "ns4026532002.1764410000"];
    let dir = TempDir::new("netns");
    let lines = fixture_lines();
    // Three records of cookie 9, one per namespace of the batch's namespace table.
    let tagged = |from: usize| {
        let mut b = batch(&[
            (OPENED, 9, &lines[from]),
            (OPENED, 9, &lines[from + 1]),
            (OPENED, 9, &lines[from + 2]),
        ]);
        for i in 0..3u32 {
            let e = i as usize * 32;
            b.index[e + 20..e + 24].copy_from_slice(&i.to_le_bytes());
        }
        b.uuid_tags = TAGS.iter().map(|&t| t.into()).collect();
        b
    };
    let w = ArchiveWriter::new(&config(&dir.0)).unwrap();
    w.write(tagged(0)).unwrap();
    w.rotate(Rotate::Uuids(vec![format!(
        "{PREFIX}_ns4026532001_0000000000000009"
    )]))
    .unwrap();
    w.write(tagged(3)).unwrap();
    w.close(T).unwrap();
    let w = ArchiveWriter::new(&config(&dir.0)).unwrap();
    w.write(tagged(6)).unwrap();
    w.close(T).unwrap();

    let mut names: Vec<String> = archive_files(&dir.0)
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    names.sort();
    let want = |tag: &str, seq: u32| {
        let uuid = tcpinfo_archive::uuid_in(PREFIX, tag, 9);
        format!("{uuid}.{seq:05}.jsonl.zst")
    };
    // Only ns4026532001 was rotated: it has one file more.
    let mut expected = vec![want(TAGS[1], 2)];
    expected.extend(TAGS.iter().flat_map(|t| [want(t, 0), want(t, 1)]));
    expected.sort();
    assert_eq!(
        names, expected,
        "one series per namespace, continued after the restart"
    );
    for p in archive_files(&dir.0) {
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        let (tag, cookie, seq) = parse_file_name(&name, PREFIX).expect(&name);
        assert_eq!(cookie, 9);
        let (ok, data) = zstd_dc(&p);
        assert!(ok && zstd_t(&p), "{name}");
        let h = header(&data);
        assert_eq!(
            h["Metadata"]["UUID"],
            tcpinfo_archive::uuid_in(PREFIX, tag, 9),
            "{name}"
        );
        assert_eq!(h["Metadata"]["Sequence"], seq, "{name}");
        // Each namespace's records, and only its own, in its files.
        let i = TAGS.iter().position(|t| *t == tag).unwrap();
        for l in &lines_of(&data)[1..] {
            let at = lines.iter().position(|x| &x[..] == *l).unwrap();
            assert_eq!(at % 3, i, "{name} holds a record of another namespace");
        }
    }
}
