//! µs and bytes per frame of one fixture line (and of a few lines) with this encoder,
//! libzstd level 1 and libzstd level -1:
//! `cargo run --release -p tcpinfo-zstd-frame --example bench [frames] [only]`
//! (`only`: part of a name, e.g. `frame`, to time just that one).

#![expect(clippy::print_stdout, reason = "a bench prints its table")]
#![expect(clippy::cast_precision_loss, reason = "frame counts far below 2^52")]

use std::time::Instant;

#[path = "../tests/common/mod.rs"]
mod common;

use common::fixture_lines;

use tcpinfo_zstd_frame::FrameEncoder;

fn main() {
    let frames: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300_000);
    let lines = fixture_lines();
    for per in [1, 2, 3, 4] {
        let inputs: Vec<Vec<u8>> = lines.chunks(per).map(<[Vec<u8>]>::concat).collect();
        let avg_in = inputs.iter().map(Vec::len).sum::<usize>() / inputs.len();
        println!(
            "{per} line(s) per frame, {} inputs, {avg_in} B/frame in",
            inputs.len()
        );
        let mut out = Vec::with_capacity(1 << 17);
        let mut enc = FrameEncoder::new();
        let mut l1 = zstd::bulk::Compressor::new(1).expect("level 1");
        let mut lm1 = zstd::bulk::Compressor::new(-1).expect("level -1");
        let only = std::env::args().nth(2);
        let names = ["tcpinfo-zstd-frame", "libzstd level 1", "libzstd level -1"];
        // The best of 7 rounds, the encoders interleaved, so load bursts of a shared
        // machine bias no one.
        let mut best = [f64::MAX; 3];
        let mut bytes = [0usize; 3];
        let n = frames / per / 7;
        for _round in 0..7 {
            for (k, name) in names.iter().enumerate() {
                if only.as_deref().is_some_and(|o| !name.contains(o)) {
                    continue;
                }
                let t = Instant::now();
                let mut total = 0usize;
                for i in 0..n {
                    let src = &inputs[i % inputs.len()];
                    out.clear();
                    total += match k {
                        0 => enc.compress(src, &mut out).expect("frame"),
                        1 => l1.compress_to_buffer(src, &mut out).expect("l1"),
                        _ => lm1.compress_to_buffer(src, &mut out).expect("l-1"),
                    };
                }
                best[k] = best[k].min(t.elapsed().as_secs_f64() * 1e6 / n as f64);
                bytes[k] = total / n;
            }
        }
        for (k, name) in names.iter().enumerate() {
            if best[k] < f64::MAX {
                println!(
                    "  {name:20} {:6.2} µs/frame {:6} B/frame",
                    best[k], bytes[k]
                );
            }
        }
    }
}
