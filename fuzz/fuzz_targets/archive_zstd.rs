//! zstd frames of JSON lines (written records, a header, garbage, damage) through the archive reader.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/tcpinfo-archive-read/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|input: checks::ArchiveInput| checks::archive_zstd(&input));
