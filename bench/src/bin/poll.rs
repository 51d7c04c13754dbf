//! `poll`: contender (c) of the collector benchmarks, tcpinfo's real poll in the Rust core.
//!
//! Same loop and flags as `drain` (`--polls`, `--interval-ms`, `--states`, `--ext`,
//! `--families`): per poll one [`Poller::poll`] — dump, parse, filter, fingerprint, diff,
//! encode the changed records, drain the destroy events, sweep — on the calling thread, then a
//! pass over the framed records as a consumer would make (kind counts, JSON line bytes), and
//! the records buffer goes back to the poller's pool, as the napi binding does.
//! `--warmup` polls come first and are reported apart: the first poll reports every socket as
//! opened and encodes all of them, which is not the steady state the per-socket figures are for.
//!
//! Besides the shared report fields (`bench/src/report.rs`; the per-poll wall time is the whole
//! `poll()` call, `dump_us_*` is the dump alone), it reports records and encoded bytes, destroy
//! events, RSS (`/proc/self/status`), the heap held by the poller (a counting global allocator:
//! exact live bytes, not pages) and the tracked connections.
//!
//! `--polls 0` polls until SIGINT/SIGTERM, then polls once more (to drain the last destroy
//! events) and reports. `--closed-log PATH` writes one JSON line per `Closed` record with the
//! final `bytes_acked`/`bytes_received` decoded from its payload (`decode_connection`), for the
//! churn check against the farm's `--churn-log`. `--announce` prints `ready` on stdout once the
//! warm-up polls are done.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tcpinfo_bench::cli::{self, parse_u32, Flags};
use tcpinfo_bench::report::{percentile, PollRun};
use tcpinfo_bench::sys::{self, kernel_release, CpuTime, Rss};
use tcpinfo_core::parse::tcp_info::AccEcnLayout;
use tcpinfo_core::{
    decode_connection, ChangeRule, Filter, PollBatch, PollMode, Poller, PollerConfig, Value,
    FLAG_FROM_DESTROY_EVENT, FLAG_HAS_RECORD, FLAG_UNSEEN,
};

const USAGE: &str = "\
usage: poll [--polls 100] [--interval-ms 10] [--states 0xF37] [--ext 0xFF] [--families 4,6]
            [--single-dump 1] [--warmup 1] [--destroy-events 1] [--closed-log PATH] [--announce]
            [--exclude-local 0] [--kernel-filter 1] [--report-all 0]
            [--mode netlink|bpf|auto] [--state-only 0]

Runs tcpinfo's Poller (the Rust core) --polls times after --warmup polls and prints one JSON
object shaped like drain's, plus records, encoded bytes, destroy events, RSS, heap and
tracked connections. --polls 0 polls until SIGINT/SIGTERM. --single-dump 0 dumps each family
with its own request (default: both in one legacy AF_UNSPEC dump, as the core does). --closed-log writes every closed
connection with its final bytes_acked/bytes_received (JSON lines). --exclude-local 1 applies
M-Lab's local exclusion; --kernel-filter 0 keeps it out of the kernel (user space only).
--report-all 1 counts every tcp_info field as a change (the last_* elapsed times change every
poll), so every socket is reported every poll. --mode bpf polls with the BPF iterator (issue
#16): sockets per poll are then those the program walked, and bpf_* fields count its records
and exact fetches. --state-only 1 counts only the TCP state as a change (the BPF program then
skips its fingerprint: the walk's own cost).";

/// `RECORD_KIND` values of the framed records.
const KIND_CLOSED: u8 = 2;

/// Live and peak heap bytes, kept by [`Counting`].
static HEAP_LIVE: AtomicUsize = AtomicUsize::new(0);
static HEAP_PEAK: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting live bytes: what the poller holds, exactly, not in pages.
struct Counting;

// SAFETY: every call is forwarded unchanged to `System`; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        HEAP_LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            HEAP_LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grow(new_size);
        }
        p
    }
}

fn grow(size: usize) {
    let live = HEAP_LIVE.fetch_add(size, Ordering::Relaxed) + size;
    HEAP_PEAK.fetch_max(live, Ordering::Relaxed);
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Settings from the command line.
struct Config {
    polls: u32,
    warmup: u32,
    interval: Duration,
    poller: PollerConfig,
    closed_log: Option<String>,
    announce: bool,
}

/// What the polls of one phase (warm-up or measured) reported.
#[derive(Default)]
struct Totals {
    opened: u64,
    changed: u64,
    closed: u64,
    closed_with_final: u64,
    closed_unseen: u64,
    closed_bare: u64,
    framed_bytes: u64,
    line_bytes: u64,
    destroy_events: u64,
    destroy_overruns: u64,
    late_destroy_events: u64,
    malformed: u64,
    incomplete_polls: u64,
    warnings: u64,
    recv_calls: u64,
    bytes: u64,
}

impl Totals {
    fn records(&self) -> u64 {
        self.opened + self.changed + self.closed
    }
}

fn main() -> ExitCode {
    cli::main_with("poll", USAGE, run)
}

fn run(args: Vec<String>) -> Result<(), String> {
    let announce = args.iter().any(|a| a == "--announce");
    let mut flags = Flags::parse(args.into_iter().filter(|a| a != "--announce"))?;
    let interval = Duration::from_millis(flags.take("interval-ms", 10)?);
    let poller = PollerConfig {
        interval,
        families: parse_families(&flags.take("families", "4,6".to_owned())?)?,
        states: parse_u32(&flags.take("states", "0xF37".to_owned())?)?,
        ext: u8::try_from(parse_u32(&flags.take("ext", "0xFF".to_owned())?)?)
            .map_err(|e| format!("--ext: {e}"))?,
        destroy_events: flags.take::<u8>("destroy-events", 1)? != 0,
        single_dump: flags.take::<u8>("single-dump", 1)? != 0,
        filter: Filter {
            exclude_local: flags.take::<u8>("exclude-local", 0)? != 0,
            ..Filter::default()
        },
        kernel_filter: flags.take::<u8>("kernel-filter", 1)? != 0,
        change_rule: if flags.take::<u8>("report-all", 0)? != 0 {
            ChangeRule {
                ignore_tcp_info_fields: Vec::new(),
                ..ChangeRule::default()
            }
        } else {
            ChangeRule {
                state_only: flags.take::<u8>("state-only", 0)? != 0,
                ..ChangeRule::default()
            }
        },
        mode: PollMode::parse(&flags.take("mode", "netlink".to_owned())?)?,
        ..PollerConfig::default()
    };
    let cfg = Config {
        polls: flags.take("polls", 100)?,
        warmup: flags.take("warmup", 1)?,
        interval,
        poller,
        closed_log: flags.take_opt("closed-log")?,
        announce,
    };
    flags.finish()?;
    sys::install_stop_handler().map_err(|e| e.to_string())?;
    let report = measure(&cfg)?;
    writeln!(io::stdout(), "{report}").map_err(|e| e.to_string())
}

fn parse_families(text: &str) -> Result<Vec<u8>, String> {
    text.split(',')
        .map(|f| match f.trim() {
            "4" | "inet" => Ok(2),
            "6" | "inet6" => Ok(10),
            other => Err(format!(
                "--families: unknown family {other:?} (use 4, 6 or 4,6)"
            )),
        })
        .collect()
}

/// Consumes one batch: totals, and the closed records into the closed log.
fn account(
    batch: &PollBatch,
    totals: &mut Totals,
    mut log: Option<&mut ClosedLog>,
) -> Result<(), String> {
    totals.opened += u64::from(batch.opened);
    totals.changed += u64::from(batch.changed);
    totals.closed += u64::from(batch.closed);
    totals.framed_bytes += batch.records.len_bytes() as u64;
    totals.destroy_events += u64::from(batch.stats.destroy_events);
    totals.destroy_overruns += u64::from(batch.stats.destroy_overruns);
    totals.late_destroy_events += u64::from(batch.stats.late_destroy_events);
    totals.malformed += u64::from(batch.stats.malformed);
    totals.incomplete_polls += u64::from(!batch.complete);
    totals.warnings += batch.warnings.len() as u64;
    totals.recv_calls += u64::from(batch.stats.recv_calls);
    totals.bytes += batch.stats.bytes;
    for r in batch {
        totals.line_bytes += r.line.len() as u64;
        if r.kind != KIND_CLOSED {
            continue;
        }
        if r.flags & FLAG_HAS_RECORD == 0 {
            totals.closed_bare += 1;
        } else if r.flags & FLAG_FROM_DESTROY_EVENT != 0 {
            totals.closed_with_final += 1;
        }
        if r.flags & FLAG_UNSEEN != 0 {
            totals.closed_unseen += 1;
        }
        if let Some(log) = log.as_mut() {
            log.write(batch.seq, r.cookie, r.flags, r.payload)?;
        }
    }
    Ok(())
}

/// The `--closed-log` writer: one JSON line per closed connection.
struct ClosedLog {
    out: BufWriter<File>,
    layout: AccEcnLayout,
}

impl ClosedLog {
    fn write(&mut self, seq: u64, cookie: u64, flags: u8, payload: &[u8]) -> Result<(), String> {
        let (mut state, mut acked, mut received) = (None, None, None);
        if !payload.is_empty() {
            if let Ok(Value::Obj(fields)) = decode_connection(payload, self.layout) {
                for (name, value) in &fields {
                    match (*name, value) {
                        ("state", Value::U32(s)) => state = Some(u64::from(*s)),
                        ("tcpInfo", Value::Obj(info)) => {
                            acked = u64_field(info, "bytesAcked");
                            received = u64_field(info, "bytesReceived");
                        }
                        _ => {}
                    }
                }
            }
        }
        let opt = |v: Option<u64>| v.map_or("null".to_owned(), |v| v.to_string());
        writeln!(
            self.out,
            "{{\"seq\":{seq},\"cookie\":{cookie},\"from_destroy_event\":{},\"unseen\":{},\"has_payload\":{},\"state\":{},\"bytes_acked\":{},\"bytes_received\":{}}}",
            flags & FLAG_FROM_DESTROY_EVENT != 0,
            flags & FLAG_UNSEEN != 0,
            !payload.is_empty(),
            opt(state),
            opt(acked),
            opt(received),
        )
        .map_err(|e| format!("closed log: {e}"))
    }
}

/// Minor page faults of this process so far (`ru_minflt`): every first touch of freshly
/// mapped memory, e.g. a large records buffer allocated anew each poll.
fn minor_faults() -> u64 {
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut ru) } != 0 {
        return 0;
    }
    u64::try_from(ru.ru_minflt).unwrap_or(0)
}

fn u64_field(fields: &[(&'static str, Value)], name: &str) -> Option<u64> {
    fields.iter().find_map(|(n, v)| match v {
        Value::U64(x) if *n == name => Some(*x),
        Value::U32(x) if *n == name => Some(u64::from(*x)),
        _ => None,
    })
}

#[expect(clippy::too_many_lines, reason = "one measurement, read top to bottom")]
#[expect(
    clippy::cast_precision_loss,
    reason = "per-socket and per-poll ratios of counts far below 2^52"
)]
fn measure(cfg: &Config) -> Result<String, String> {
    let mut log = match &cfg.closed_log {
        Some(path) => Some(ClosedLog {
            out: BufWriter::new(File::create(path).map_err(|e| format!("{path}: {e}"))?),
            layout: AccEcnLayout::running_kernel(),
        }),
        None => None,
    };
    let rss_start = Rss::now();
    let heap_start = HEAP_LIVE.load(Ordering::Relaxed);
    let mut poller = Poller::new(cfg.poller.clone()).map_err(|e| e.to_string())?;
    // A consumer done with a batch gives its buffer back, as the napi binding does.
    let pool = poller.records_pool();

    // Warm-up: the first poll opens (and encodes) every socket.
    let mut warm = Totals::default();
    let mut first_wall = Duration::ZERO;
    let mut first_cpu = CpuTime::default();
    let mut first_heap_peak = 0;
    let mut first_records = 0;
    let mut first_bytes = 0;
    for i in 0..cfg.warmup {
        if i > 0 {
            std::thread::sleep(cfg.interval);
        }
        let cpu0 = CpuTime::this_process().map_err(|e| e.to_string())?;
        let t0 = Instant::now();
        let batch = poller.poll();
        if i == 0 {
            first_wall = t0.elapsed();
            first_cpu = CpuTime::this_process()
                .map_err(|e| e.to_string())?
                .since(cpu0);
            first_heap_peak = HEAP_PEAK.load(Ordering::Relaxed);
            first_records = u64::from(batch.opened + batch.changed + batch.closed);
            first_bytes = batch.records.len_bytes();
        }
        account(&batch, &mut warm, log.as_mut())?;
        pool.recycle_records(batch.records);
    }
    let rss_warm = Rss::now();
    let heap_warm = HEAP_LIVE.load(Ordering::Relaxed);
    if cfg.announce {
        let mut out = io::stdout().lock();
        writeln!(out, "ready")
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())?;
    }

    let mut run = PollRun {
        tool: "tcpinfo-rust",
        interval_ms: u64::try_from(cfg.interval.as_millis()).unwrap_or(u64::MAX),
        ..PollRun::default()
    };
    let mut totals = Totals::default();
    let mut dump_us: Vec<f64> = Vec::new();
    let mut seen: u64 = 0;
    let mut tracked = 0u32;
    let mut tracker_bytes = 0u64;
    let started = Instant::now();
    let cpu_before = CpuTime::this_process().map_err(|e| e.to_string())?;
    let faults_before = minor_faults();
    let mut i = 0u32;
    let mut last = false;
    // BPF mode: [emitted, fetched, gone, sweep walks, event polls, dirty, echo, sticky,
    // resync walks, overflows] over the measured polls.
    let mut bpf_totals = [0u64; 10];
    loop {
        if cfg.polls != 0 && i >= cfg.polls {
            break;
        }
        if cfg.polls == 0 && sys::stop_requested() {
            last = true; // one more poll drains the destroy events of the final moments
        }
        std::thread::sleep(cfg.interval);
        let t0 = Instant::now();
        let batch = poller.poll();
        run.wall.push(t0.elapsed());
        bpf_totals[9] += poller.bpf_stats().map_or(0, |b| b.overflows);
        match poller.bpf_stats() {
            Some(b) if b.walked_poll => {
                run.sockets.push(b.walked);
                bpf_totals[0] += b.emitted;
                bpf_totals[1] += u64::from(b.fetched);
                bpf_totals[2] += u64::from(b.gone);
                bpf_totals[3] += u64::from(b.sweep);
                bpf_totals[4] += u64::from(b.events && !b.resync);
                bpf_totals[5] += u64::from(b.dirty);
                bpf_totals[6] += u64::from(b.echo);
                bpf_totals[7] += u64::from(b.sticky);
                bpf_totals[8] += u64::from(b.resync);
            }
            _ => run.sockets.push(u64::from(batch.stats.messages)),
        }
        dump_us.push(batch.stats.dump_nanos as f64 / 1e3);
        seen += u64::from(batch.sockets_seen);
        tracked = batch.stats.tracked;
        tracker_bytes = batch.stats.tracker_bytes;
        account(&batch, &mut totals, log.as_mut())?;
        pool.recycle_records(batch.records);
        i += 1;
        if last {
            break;
        }
    }
    run.cpu = CpuTime::this_process()
        .map_err(|e| e.to_string())?
        .since(cpu_before);
    let elapsed = started.elapsed();
    let faults = minor_faults().saturating_sub(faults_before);
    let heap_state = HEAP_LIVE.load(Ordering::Relaxed).saturating_sub(heap_start);
    drop(poller);
    let rss_end = Rss::now();
    if let Some(mut log) = log {
        log.out.flush().map_err(|e| format!("closed log: {e}"))?;
    }
    let heap_end = HEAP_LIVE.load(Ordering::Relaxed);

    dump_us.sort_by(f64::total_cmp);
    let polls = run.wall.len().max(1) as f64;
    let socket_polls: u64 = run.sockets.iter().sum();
    let mean_sockets = socket_polls as f64 / polls;
    // Connection-seconds: the mean socket count over the measured wall time.
    let conn_s = mean_sockets * elapsed.as_secs_f64();
    let per_conn_s = |v: u64| {
        if conn_s > 0.0 {
            format!("{:.4}", v as f64 / conn_s)
        } else {
            "null".to_owned()
        }
    };
    run.recvmsg_calls = Some(totals.recv_calls);
    run.bytes = Some(totals.bytes);
    run.extra = vec![
        ("mode", format!("\"{}\"", cfg.poller.mode.as_str())),
        ("bpf_emitted_total", bpf_totals[0].to_string()),
        ("bpf_fetched_total", bpf_totals[1].to_string()),
        ("bpf_gone_total", bpf_totals[2].to_string()),
        ("bpf_sweeps", bpf_totals[3].to_string()),
        ("bpf_event_polls", bpf_totals[4].to_string()),
        ("bpf_dirty_total", bpf_totals[5].to_string()),
        ("bpf_echo_total", bpf_totals[6].to_string()),
        ("bpf_sticky_total", bpf_totals[7].to_string()),
        ("bpf_resync_walks", bpf_totals[8].to_string()),
        ("bpf_overflows_total", bpf_totals[9].to_string()),
        ("dump_us_p50", format!("{:.3}", percentile(&dump_us, 50.0))),
        ("dump_us_p99", format!("{:.3}", percentile(&dump_us, 99.0))),
        ("elapsed_s", format!("{:.3}", elapsed.as_secs_f64())),
        ("sockets_seen_total", seen.to_string()),
        ("records_total", totals.records().to_string()),
        (
            "records_per_poll",
            format!("{:.3}", totals.records() as f64 / polls),
        ),
        ("opened_total", totals.opened.to_string()),
        ("changed_total", totals.changed.to_string()),
        ("closed_total", totals.closed.to_string()),
        ("closed_with_final", totals.closed_with_final.to_string()),
        ("closed_unseen", totals.closed_unseen.to_string()),
        ("closed_without_final", totals.closed_bare.to_string()),
        ("framed_bytes_total", totals.framed_bytes.to_string()),
        ("line_bytes_total", totals.line_bytes.to_string()),
        (
            "line_bytes_per_record",
            if totals.records() == 0 {
                "null".to_owned()
            } else {
                format!("{:.1}", totals.line_bytes as f64 / totals.records() as f64)
            },
        ),
        ("records_per_conn_s", per_conn_s(totals.records())),
        ("line_bytes_per_conn_s", per_conn_s(totals.line_bytes)),
        ("destroy_events", totals.destroy_events.to_string()),
        ("destroy_overruns", totals.destroy_overruns.to_string()),
        (
            "late_destroy_events",
            totals.late_destroy_events.to_string(),
        ),
        ("malformed", totals.malformed.to_string()),
        ("incomplete_polls", totals.incomplete_polls.to_string()),
        ("warnings", totals.warnings.to_string()),
        ("tracked", tracked.to_string()),
        ("minor_faults", faults.to_string()),
        (
            "minor_faults_per_poll",
            format!("{:.1}", faults as f64 / polls),
        ),
        ("tracker_bytes", tracker_bytes.to_string()),
        (
            "tracker_bytes_per_tracked",
            if tracked == 0 {
                "null".to_owned()
            } else {
                format!("{:.1}", tracker_bytes as f64 / f64::from(tracked))
            },
        ),
        ("rss_kb_start", rss_start.rss_kb.to_string()),
        ("rss_kb_after_warmup", rss_warm.rss_kb.to_string()),
        ("rss_kb", rss_end.rss_kb.to_string()),
        ("rss_hwm_kb", rss_end.hwm_kb.to_string()),
        ("heap_bytes_state", heap_state.to_string()),
        (
            "heap_bytes_after_warmup",
            heap_warm.saturating_sub(heap_start).to_string(),
        ),
        (
            "heap_bytes_per_tracked",
            if tracked == 0 {
                "null".to_owned()
            } else {
                format!("{:.1}", heap_state as f64 / f64::from(tracked))
            },
        ),
        (
            "heap_bytes_peak",
            HEAP_PEAK.load(Ordering::Relaxed).to_string(),
        ),
        ("heap_bytes_peak_first_poll", first_heap_peak.to_string()),
        (
            "heap_bytes_leftover",
            heap_end.saturating_sub(heap_start).to_string(),
        ),
        ("warmup_polls", cfg.warmup.to_string()),
        (
            "first_poll_wall_us",
            format!("{:.3}", first_wall.as_secs_f64() * 1e6),
        ),
        (
            "first_poll_cpu_ns",
            (first_cpu.user + first_cpu.sys).as_nanos().to_string(),
        ),
        ("first_poll_records", first_records.to_string()),
        ("first_poll_bytes", first_bytes.to_string()),
        ("warmup_framed_bytes", warm.framed_bytes.to_string()),
        ("states", format!("\"{:#x}\"", cfg.poller.states)),
        ("ext", format!("\"{:#x}\"", cfg.poller.ext)),
        ("families", format!("{:?}", cfg.poller.families)),
        ("destroy_events_on", cfg.poller.destroy_events.to_string()),
        ("single_dump", cfg.poller.single_dump.to_string()),
    ];
    Ok(run.to_json(&kernel_release()))
}
