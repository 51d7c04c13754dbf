//! `archive`: the archive writer's cost (`tcpinfo-archive`), in two modes.
//!
//! `--mode fixture` re-archives M-Lab fixture files with their original timing: one record
//! per poll, a flush whenever a record's timestamp crosses a `--flush-ms` boundary (what
//! the writer's timer does in real time), and compares compressed bytes per record with
//! M-Lab's own file of the same records.
//!
//! `--mode load` feeds `--conns` connections with `--per-flush` records each per flush
//! interval, `--polls-per-flush` polls per interval, `--flushes` intervals (flushes are
//! triggered explicitly, so the run takes only the CPU it needs). Records are fixture lines
//! (cycled). It reports the writer thread's user and system CPU per record (from
//! `/proc/self/task/<tid>/stat`, 10 ms ticks: runs last seconds), compressed bytes per
//! record, and the resident memory per open file (RSS with every file open and flushed,
//! minus RSS before the first write, over the number of files).

#![expect(
    clippy::cast_precision_loss,
    reason = "report figures: counts far below 2^52 turned into per-record ratios"
)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tcpinfo_archive::{ArchiveWriter, WriteBatch, WriterConfig};
use tcpinfo_bench::cli::{self, Flags};
use tcpinfo_bench::sys::Rss;
use tcpinfo_core::{FLAG_HAS_RECORD, INDEX_ENTRY_LEN};

const USAGE: &str = "\
usage: archive --mode fixture [--fixtures DIR] [--flush-ms 1000] [--level 1] [--output DIR]
       archive --mode load [--conns 1000] [--per-flush 10] [--polls-per-flush 100]
                           [--flushes 20] [--level 1] [--output DIR]";

const T: Duration = Duration::from_mins(1);

fn main() -> ExitCode {
    cli::main_with("archive", USAGE, run)
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut f = Flags::parse(args)?;
    let mode: String = f.take("mode", "load".to_owned())?;
    let level: i32 = f.take("level", 1)?;
    let output: PathBuf = f.take(
        "output",
        std::env::temp_dir().join(format!("tcpinfo-archive-bench-{}", std::process::id())),
    )?;
    let fixtures: PathBuf = f.take(
        "fixtures",
        PathBuf::from("crates/tcpinfo-core/tests/fixtures/mlab"),
    )?;
    let out = match mode.as_str() {
        "fixture" => {
            let flush_ms: u64 = f.take("flush-ms", 1000)?;
            f.finish()?;
            fixture_mode(&fixtures, &output, flush_ms, level)
        }
        "load" => {
            let p = Load {
                conns: f.take("conns", 1000)?,
                per_flush: f.take("per-flush", 10)?,
                polls_per_flush: f.take("polls-per-flush", 100)?,
                flushes: f.take("flushes", 20)?,
            };
            f.finish()?;
            load_mode(&fixtures, &output, &p, level)
        }
        m => Err(format!("--mode: expected fixture or load, got {m:?}")),
    };
    if std::env::var_os("KEEP").is_none() {
        let _cleanup = std::fs::remove_dir_all(&output);
    }
    out
}

fn say(s: &str) {
    use std::io::Write as _;
    // Ignored: a closed stdout leaves nobody to read the report.
    let _ignored = writeln!(std::io::stdout(), "{s}");
}

/// Lines of a `.jsonl.zst` file (with `\n`): (header, records).
fn read_fixture(path: &Path) -> Result<(Vec<u8>, Vec<Vec<u8>>), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let data = zstd::decode_all(file).map_err(|e| e.to_string())?;
    let mut lines = data.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec);
    let header = lines.next().unwrap_or_default();
    Ok((header, lines.collect()))
}

fn push(b: &mut WriteBatch, kind: u8, cookie: u64, line: &[u8]) {
    let mut e = [0u8; INDEX_ENTRY_LEN];
    e[0] = kind;
    e[1] = FLAG_HAS_RECORD;
    e[12..16].copy_from_slice(
        &u32::try_from(b.lines.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    e[16..20].copy_from_slice(&u32::try_from(line.len()).unwrap_or(u32::MAX).to_le_bytes());
    e[24..32].copy_from_slice(&cookie.to_le_bytes());
    b.index.extend_from_slice(&e);
    b.lines.extend_from_slice(line);
}

/// Seconds since midnight of a line's `Timestamp` (enough to find flush boundaries).
fn line_secs(line: &[u8]) -> f64 {
    let s = String::from_utf8_lossy(line.get(14..40).unwrap_or_default()).into_owned();
    let h: f64 = s.get(11..13).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    let m: f64 = s.get(14..16).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    let rest = s.get(17..).unwrap_or("0");
    let end = rest
        .find(|c: char| c != '.' && !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let sec: f64 = rest[..end].parse().unwrap_or(0.0);
    h * 3600.0 + m * 60.0 + sec
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                dir_bytes(&p)
            } else {
                e.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}

fn fixture_mode(fixtures: &Path, output: &Path, flush_ms: u64, level: i32) -> Result<(), String> {
    say("| fixture | records | M-Lab B/record | tcpinfo B/record | frames |");
    say("|---|---:|---:|---:|---:|");
    for name in [
        "ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst",
        "ndt-jdczh_1553815964_00000000000003E8.00183.jsonl.zst",
        "finwait2-sample_1554836592_unsafe_000000000135A272.00000.jsonl.zst",
    ] {
        let path = fixtures.join(name);
        let (_, records) = read_fixture(&path)?;
        let mlab = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
        let dir = output.join(name);
        let mut cfg = WriterConfig::new(&dir, "bench_1_unsafe");
        cfg.flush_interval = Duration::from_hours(1);
        cfg.level = level;
        let w = ArchiveWriter::new(&cfg).map_err(|e| e.to_string())?;
        let interval = flush_ms as f64 / 1000.0;
        let mut boundary = f64::MIN;
        for line in &records {
            let t = line_secs(line);
            if t >= boundary {
                w.flush(T).map_err(|e| e.to_string())?;
                boundary = (t / interval).floor() * interval + interval;
            }
            let mut b = WriteBatch::default();
            push(&mut b, 1, 1, line);
            if !w.write(b).map_err(|e| e.to_string())? {
                w.wait_for_room(T);
            }
        }
        w.close(T).map_err(|e| e.to_string())?;
        let s = w.stats();
        if s.records_written != records.len() as u64
            || decoded_lines(&dir)?
                != records.len() + usize::try_from(s.files_opened).unwrap_or(usize::MAX)
        {
            return Err(format!(
                "{name}: the re-archived files do not hold every record: {s:?} {}",
                decoded_lines(&dir)?
            ));
        }
        let n = records.len() as f64;
        let (ours, theirs) = (dir_bytes(&dir) as f64 / n, mlab as f64 / n);
        say(&format!(
            "| {name} | {} | {theirs:.1} | {ours:.1} | {} |",
            records.len(),
            s.frames_written
        ));
    }
    Ok(())
}

/// Lines in every archive file under `dir`, decoded.
fn decoded_lines(dir: &Path) -> Result<usize, String> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
    {
        let p = e.path();
        n += if p.is_dir() {
            decoded_lines(&p)?
        } else {
            let data = zstd::decode_all(std::fs::File::open(&p).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
            data.split(|&b| b == b'\n').count() - 1
        };
    }
    Ok(n)
}

struct Load {
    conns: u64,
    per_flush: u64,
    polls_per_flush: u64,
    flushes: u64,
}

/// (utime, stime) of the writer thread, in clock ticks.
fn writer_ticks() -> (u64, u64) {
    let Ok(rd) = std::fs::read_dir("/proc/self/task") else {
        return (0, 0);
    };
    for e in rd.filter_map(Result::ok) {
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        if !stat.contains("(tcpinfo-archive)") {
            continue;
        }
        let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = after.split_whitespace().collect();
        // Fields after the comm: state is index 0, utime is field 14 (index 11), stime 15.
        let get = |i: usize| f.get(i).and_then(|x| x.parse().ok()).unwrap_or(0);
        return (get(11), get(12));
    }
    (0, 0)
}

fn load_mode(fixtures: &Path, output: &Path, p: &Load, level: i32) -> Result<(), String> {
    let (_, lines) =
        read_fixture(&fixtures.join("ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst"))?;
    let per_poll = (p.conns * p.per_flush).div_ceil(p.polls_per_flush);
    // Every batch is built before the clock starts: the run measures the writer only.
    let mut polls = Vec::new();
    let mut next = 0u64;
    let mut line_i = 0usize;
    for _ in 0..p.flushes {
        let mut flush = Vec::new();
        for _ in 0..p.polls_per_flush {
            let mut b = WriteBatch::default();
            for _ in 0..per_poll {
                push(&mut b, 1, 1 + next % p.conns, &lines[line_i % lines.len()]);
                next += 1;
                line_i += 1;
            }
            flush.push(b);
        }
        polls.push(flush);
    }
    let mut cfg = WriterConfig::new(output, "bench_1_unsafe");
    cfg.flush_interval = Duration::from_hours(1);
    cfg.level = level;
    cfg.max_open_files = usize::try_from(p.conns).unwrap_or(usize::MAX).max(1);
    cfg.queue_depth = 1 << 20;
    cfg.max_queued_bytes = 1 << 40;
    let rss0 = Rss::now();
    let w = ArchiveWriter::new(&cfg).map_err(|e| e.to_string())?;
    let t0 = writer_ticks();
    let wall = Instant::now();
    let mut rss_open = Rss::default();
    for (i, flush) in polls.into_iter().enumerate() {
        for b in flush {
            w.write(b).map_err(|e| e.to_string())?;
        }
        w.flush(T).map_err(|e| e.to_string())?;
        if i == 0 {
            rss_open = Rss::now();
        }
    }
    let t1 = writer_ticks();
    let wall = wall.elapsed();
    let s = w.stats();
    let open = s.open_files;
    // Then one pending record per connection, and the time `close` takes to finish them all
    // (what SIGTERM costs the collector).
    let mut last = WriteBatch::default();
    for c in 0..p.conns {
        push(
            &mut last,
            1,
            1 + c,
            &lines[usize::try_from(c).unwrap_or(0) % lines.len()],
        );
    }
    w.write(last).map_err(|e| e.to_string())?;
    let closing = Instant::now();
    w.close(T).map_err(|e| e.to_string())?;
    let close_ms = closing.elapsed().as_secs_f64() * 1e3;
    let records = s.records_written as f64;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let us = |ticks: u64| ticks as f64 / hz * 1e6 / records;
    let rss_per_file =
        (rss_open.rss_kb.saturating_sub(rss0.rss_kb) as f64 * 1024.0) / open.max(1) as f64;
    say(&format!(
        "{{\"conns\":{},\"per_flush\":{},\"polls_per_flush\":{},\"flushes\":{},\"level\":{level},\
         \"records\":{},\"user_us_per_record\":{:.3},\"sys_us_per_record\":{:.3},\"wall_s\":{:.2},\
         \"bytes_per_record\":{:.1},\"uncompressed_bytes_per_record\":{:.1},\"frames\":{},\
         \"open_files\":{open},\"close_ms\":{close_ms:.0},\"rss_bytes_per_open_file\":{rss_per_file:.0},\"dropped\":{}}}",
        p.conns,
        p.per_flush,
        p.polls_per_flush,
        p.flushes,
        s.records_written,
        us(t1.0 - t0.0),
        us(t1.1 - t0.1),
        wall.as_secs_f64(),
        s.bytes_compressed as f64 / records,
        s.bytes_uncompressed as f64 / records,
        s.frames_written,
        s.records_dropped,
    ));
    Ok(())
}
