//! Decode rate of the archive reader alone (no Node), and with `--csv` the CSV rate:
//! `cargo run --release --example read_speed -- [--csv] FILE...`.
#![expect(clippy::print_stdout, reason = "an example prints its measurement")]

use std::sync::Arc;
use std::time::Instant;

use tcpinfo_archive_read::{ArchiveDecoder, ReaderOptions};
use tcpinfo_core::RecordsPool;

fn main() {
    let csv = std::env::args().any(|a| a == "--csv");
    let cols: Vec<usize> = (0..tcpinfo_archive_read::csv::COLUMNS.len()).collect();
    let mut out = Vec::new();
    for path in std::env::args().skip(1).filter(|a| a != "--csv") {
        let bytes = std::fs::read(&path).expect("read");
        let t0 = Instant::now();
        let pool = Arc::new(RecordsPool::new(16, 256 << 20));
        let mut d = ArchiveDecoder::new(ReaderOptions::default()).with_pool(pool);
        d.begin(path.as_str());
        let mut n = 0usize;
        for chunk in bytes.chunks(1 << 20) {
            d.feed(chunk);
            while let Some(b) = d.next_batch(false) {
                n += b.len();
                if csv {
                    out.clear();
                    let r = &b.records;
                    tcpinfo_archive_read::csv::write_rows(
                        &mut out,
                        &r.index,
                        &r.payloads,
                        &r.lines,
                        &cols,
                    );
                }
                d.recycle(b);
            }
        }
        d.end();
        while let Some(b) = d.next_batch(true) {
            n += b.len();
        }
        let s = t0.elapsed().as_secs_f64();
        #[expect(clippy::cast_precision_loss, reason = "a rate")]
        let rate = n as f64 / s / 1e6;
        println!("{path}: {n} records in {s:.3} s = {rate:.2} M records/s");
    }
}
