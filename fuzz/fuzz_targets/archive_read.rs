//! Any stored bytes through the archive reader, whole and in chunks.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/tcpinfo-archive-read/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|input: checks::StoredInput| checks::archive_read(&input));
