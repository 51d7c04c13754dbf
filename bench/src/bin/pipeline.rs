//! `pipeline`: user CPU of tcpinfo's per-socket work (parse + fingerprint + diff, and
//! encoding for changed sockets) with no kernel in the loop.
//!
//! Input: the 420 real netlink replies of M-Lab's `testdata.zst` dump, replicated to
//! `--sockets N` messages with unique cookies and ports (or `--dump FILE`, raw
//! concatenated netlink messages captured from this host). Each poll feeds every message
//! to one [`tcpinfo_core::Ingest`]; `--change-fraction p` alters `tcpi_bytes_acked` of a
//! fraction p of the messages before each poll, so they are reported and encoded.
//!
//! Output: one JSON line with user/system ns per socket per poll and the reported records.
//! Issue #2's target: at most 300 ns of user CPU per unchanged socket per poll.

use std::io::Write as _;
use std::time::Instant;

use tcpinfo_bench::cli::Flags;
use tcpinfo_bench::sys::CpuTime;
use tcpinfo_core::parse::nlmsg::NlMsgIter;
use tcpinfo_core::{Ingest, PollBatch, PollerConfig, Vanished};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/tcpinfo-core/tests/fixtures/mlab/testdata.zst"
);
/// Offset of the cookie inside `inet_diag_msg` (`id.idiag_cookie`).
const COOKIE_OFF: usize = 44;
/// Offset of the source port inside `inet_diag_msg` (`id.idiag_sport`).
const SPORT_OFF: usize = 4;
/// Offset of `tcpi_bytes_acked` inside the `INET_DIAG_INFO` payload.
const BYTES_ACKED_OFF: usize = 120;

fn main() {
    if let Err(e) = run() {
        let mut err = std::io::stderr();
        writeln!(err, "pipeline: {e}").ok();
        std::process::exit(2);
    }
}

#[expect(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "benchmark arithmetic on small counts"
)]
fn run() -> Result<(), String> {
    let mut flags = Flags::parse(std::env::args().skip(1))?;
    let sockets: usize = flags.take("sockets", 100_000)?;
    let polls: usize = flags.take("polls", 50)?;
    let change: f64 = flags.take("change-fraction", 0.0)?;
    let dump: String = flags.take("dump", FIXTURE.to_owned())?;
    let raw = std::fs::read(&dump).map_err(|e| format!("{dump}: {e}"))?;
    let raw = if std::path::Path::new(&dump)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zst"))
    {
        zstd::decode_all(&raw[..]).map_err(|e| e.to_string())?
    } else {
        raw
    };
    let base: Vec<Vec<u8>> = NlMsgIter::new(&raw)
        .filter_map(Result::ok)
        .filter(|m| m.msg_type == 20)
        .map(|m| m.payload.to_vec())
        .collect();
    if base.is_empty() {
        return Err("no SOCK_DIAG_BY_FAMILY messages in the input".into());
    }
    let mut msgs = replicate(&base, sockets);
    let info_offsets: Vec<Option<usize>> = msgs.iter().map(|m| info_offset(m)).collect();

    let config = PollerConfig::default();
    let mut ingest = Ingest::new(&config).map_err(|e| e.to_string())?;
    let mut vanished: Vec<Vanished> = Vec::new();
    let families = config.families.clone();
    let mut first = PollBatch::default();
    ingest.begin_poll(0);
    for m in &msgs {
        ingest
            .on_reply(m, 0, &mut first)
            .map_err(|e| e.to_string())?;
    }
    let step = if change > 0.0 {
        (1.0 / change).round().max(1.0) as usize
    } else {
        0
    };
    let (mut reported, mut encoded_bytes) = (0u64, 0u64);
    let cpu0 = CpuTime::this_thread();
    let wall0 = Instant::now();
    for poll in 0..polls {
        if step > 0 {
            for i in (poll % step..msgs.len()).step_by(step) {
                bump_bytes_acked(&mut msgs[i], info_offsets[i]);
            }
        }
        let mut batch = PollBatch::default();
        ingest.begin_poll(0);
        for m in &msgs {
            ingest
                .on_reply(m, 1_700_000_000_000_000_000, &mut batch)
                .map_err(|e| e.to_string())?;
        }
        ingest.sweep(&families, &mut vanished);
        reported += u64::from(batch.opened + batch.changed + batch.closed);
        encoded_bytes += batch.records.len_bytes() as u64;
    }
    let cpu = CpuTime::this_thread().since(cpu0);
    let wall = wall0.elapsed();
    let per = (polls * msgs.len()) as f64;
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "{{\"tool\":\"pipeline\",\"input\":{:?},\"distinct_real_messages\":{},\"sockets\":{},\"polls\":{},\"change_fraction\":{},\"user_ns_per_socket\":{:.1},\"sys_ns_per_socket\":{:.1},\"wall_ns_per_socket\":{:.1},\"records_per_poll\":{:.1},\"framed_bytes_per_record\":{:.1},\"first_poll_opened\":{}}}",
        dump,
        base.len(),
        msgs.len(),
        polls,
        change,
        cpu.user.as_nanos() as f64 / per,
        cpu.sys.as_nanos() as f64 / per,
        wall.as_nanos() as f64 / per,
        reported as f64 / polls as f64,
        if reported == 0 { 0.0 } else { encoded_bytes as f64 / reported as f64 },
        first.opened,
    )
    .map_err(|e| e.to_string())
}

/// `n` messages cycling through `base`, each with its own cookie and source port.
#[expect(
    clippy::cast_possible_truncation,
    reason = "cookie halves and ports are masked to fit"
)]
fn replicate(base: &[Vec<u8>], n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut m = base[i % base.len()].clone();
            let cookie = 0x1000_0000_u64 + i as u64;
            m[COOKIE_OFF..COOKIE_OFF + 4]
                .copy_from_slice(&((cookie & 0xFFFF_FFFF) as u32).to_ne_bytes());
            m[COOKIE_OFF + 4..COOKIE_OFF + 8]
                .copy_from_slice(&((cookie >> 32) as u32).to_ne_bytes());
            m[SPORT_OFF..SPORT_OFF + 2]
                .copy_from_slice(&((i % 60_000) as u16 + 1024).to_be_bytes());
            m
        })
        .collect()
}

/// Byte offset of the `INET_DIAG_INFO` payload inside a reply, if present.
fn info_offset(m: &[u8]) -> Option<usize> {
    let mut off = 72;
    while off + 4 <= m.len() {
        let len = usize::from(u16::from_ne_bytes([m[off], m[off + 1]]));
        let ty = u16::from_ne_bytes([m[off + 2], m[off + 3]]);
        if len < 4 {
            return None;
        }
        if ty == 2 && len >= 4 + BYTES_ACKED_OFF + 8 {
            return Some(off + 4);
        }
        off += (len + 3) & !3;
    }
    None
}

fn bump_bytes_acked(m: &mut [u8], info: Option<usize>) {
    if let Some(o) = info {
        let at = o + BYTES_ACKED_OFF;
        let v = u64::from_ne_bytes(m[at..at + 8].try_into().unwrap_or_default()).wrapping_add(1448);
        m[at..at + 8].copy_from_slice(&v.to_ne_bytes());
    }
}
