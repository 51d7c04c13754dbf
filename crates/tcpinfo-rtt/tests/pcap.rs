//! Capture files: pcap (µs, ns), pcapng (if_tsresol 10^-6, 10^-9, 2^-20, several
//! interfaces of different link types) give the same samples; cut files never panic.
#![expect(clippy::cast_possible_truncation, reason = "pseudo-random test bytes")]
mod common;

use std::io::Write;

use common::{frame, ip_packet, pcap_file, pcapng_file, Tcp};
use tcpinfo_rtt::pcap::read;
use tcpinfo_rtt::{analyze_file, LinkType, MatcherConfig, Sample};

const T0: i64 = 1_700_000_000_123_456_789;

/// A short exchange: SYN, SYN-ACK 1.5 ms later, ACK, data, ACK 2.25 ms later.
fn exchange(v6: bool) -> Vec<(i64, Vec<u8>)> {
    let c = Tcp {
        v6,
        ..Tcp::new(1, 40000, 2, 80)
    };
    let s = Tcp {
        v6,
        ..Tcp::new(2, 80, 1, 40000)
    };
    vec![
        (
            T0,
            ip_packet(&Tcp {
                syn: true,
                ack: false,
                ..c.ts(100, 0)
            }),
        ),
        (
            T0 + 1_500_000,
            ip_packet(&Tcp {
                syn: true,
                ..s.ts(7000, 100)
            }),
        ),
        (T0 + 1_520_000, ip_packet(&c.ts(101, 7000))),
        (
            T0 + 5_000_000,
            ip_packet(&Tcp {
                payload: 500,
                ..c.ts(104, 7000)
            }),
        ),
        (T0 + 7_250_000, ip_packet(&s.ts(7004, 104))),
    ]
}

fn samples_of(bytes: &[u8]) -> Vec<Sample> {
    let mut f = tempfile();
    f.1.write_all(bytes).unwrap();
    let (samples, ..) = analyze_file(&f.0, MatcherConfig::default()).unwrap();
    std::fs::remove_file(&f.0).unwrap();
    samples
}

fn tempfile() -> (std::path::PathBuf, std::fs::File) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let p = std::env::temp_dir().join(format!(
        "tcpinfo-rtt-{}-{}.cap",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let f = std::fs::File::create(&p).unwrap();
    (p, f)
}

fn rtts(s: &[Sample]) -> Vec<u64> {
    s.iter().map(|s| s.rtt_ns).collect()
}

#[test]
fn pcap_and_pcapng_at_every_resolution_agree() {
    for v6 in [false, true] {
        let ex = exchange(v6);
        let eth: Vec<_> = ex
            .iter()
            .map(|(t, p)| (*t, frame(LinkType::Ethernet, p)))
            .collect();
        let nano = samples_of(&pcap_file(1, true, &eth));
        assert_eq!(rtts(&nano), vec![1_500_000, 20_000, 2_250_000], "v6={v6}");
        assert_eq!(nano[0].t_ns, T0 + 1_500_000);
        let micro = samples_of(&pcap_file(1, false, &eth));
        assert_eq!(rtts(&micro), rtts(&nano));
        for tsresol in [6u8, 9, 0x80 | 0x14] {
            let ng: Vec<_> = eth.iter().map(|(t, d)| (0, *t, d.clone())).collect();
            let s = samples_of(&pcapng_file(&[(1, tsresol)], &ng));
            assert_eq!(s.len(), 3, "tsresol {tsresol:#x}");
            for (a, b) in s.iter().zip(&nano) {
                let tol = if tsresol == 9 { 0 } else { 2_000 };
                assert!(
                    a.rtt_ns.abs_diff(b.rtt_ns) <= tol,
                    "tsresol {tsresol:#x}: {} vs {}",
                    a.rtt_ns,
                    b.rtt_ns
                );
                assert_eq!((a.flow, a.tsecr), (b.flow, b.tsecr));
            }
        }
    }
}

#[test]
fn pcapng_interfaces_with_different_link_types() {
    // Client packets on an Ethernet interface, server packets on a cooked (SLL2) one.
    let ex = exchange(false);
    let ng: Vec<_> = ex
        .iter()
        .enumerate()
        .map(|(i, (t, p))| {
            let server = i == 1 || i == 4;
            let link = if server {
                LinkType::LinuxSll2
            } else {
                LinkType::Ethernet
            };
            (u32::from(server), *t, frame(link, p))
        })
        .collect();
    let s = samples_of(&pcapng_file(&[(1, 9), (276, 9)], &ng));
    assert_eq!(rtts(&s), vec![1_500_000, 20_000, 2_250_000]);
    // Raw IP and SLL classic files.
    for (lt, link) in [(101u32, LinkType::RawIp), (113, LinkType::LinuxSll)] {
        let f: Vec<_> = ex.iter().map(|(t, p)| (*t, frame(link, p))).collect();
        assert_eq!(
            rtts(&samples_of(&pcap_file(lt, true, &f))),
            vec![1_500_000, 20_000, 2_250_000]
        );
    }
}

#[test]
fn cut_files_never_panic() {
    let eth: Vec<_> = exchange(false)
        .iter()
        .map(|(t, p)| (*t, frame(LinkType::Ethernet, p)))
        .collect();
    let ng: Vec<_> = eth.iter().map(|(t, d)| (0, *t, d.clone())).collect();
    for file in [pcap_file(1, true, &eth), pcapng_file(&[(1, 9)], &ng)] {
        let mut full = 0;
        for n in 0..=file.len() {
            let mut frames = 0;
            match read(&file[..n], "cut", |_| frames += 1) {
                Ok(st) => {
                    assert_eq!(st.records, frames);
                    if n == file.len() {
                        full = frames;
                        assert_eq!(st.truncated_blocks, 0);
                    }
                }
                Err(e) => assert_eq!(e.code(), "ERR_CAPTURE_FILE", "cut at {n}: {e}"),
            }
        }
        assert_eq!(full, 5);
    }
}

#[test]
fn not_a_capture_is_a_clear_error() {
    let e = read(
        &b"hello, this is not a capture file at all"[..],
        "x.txt",
        |_| {},
    )
    .unwrap_err();
    assert_eq!(e.code(), "ERR_CAPTURE_FILE");
    let e = read(&b""[..], "empty", |_| {}).unwrap_err();
    assert_eq!(e.code(), "ERR_CAPTURE_FILE");
    let e = analyze_file(
        std::path::Path::new("/nonexistent/x.pcap"),
        MatcherConfig::default(),
    )
    .unwrap_err();
    assert_eq!(e.code(), "ERR_IO");
}

#[test]
fn corrupt_block_in_the_middle_is_an_error_or_skipped_never_a_panic() {
    let eth: Vec<_> = exchange(false)
        .iter()
        .map(|(t, p)| (*t, frame(LinkType::Ethernet, p)))
        .collect();
    let ng: Vec<_> = eth.iter().map(|(t, d)| (0, *t, d.clone())).collect();
    let file = pcapng_file(&[(1, 9)], &ng);
    let mut x: u32 = 12345;
    for _ in 0..2000 {
        let mut f = file.clone();
        for _ in 0..4 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let at = (x >> 8) as usize % f.len();
            f[at] = (x >> 3) as u8;
        }
        if let Err(e) = read(&f[..], "fuzz", |_| {}) {
            assert_eq!(e.code(), "ERR_CAPTURE_FILE");
        }
    }
}
