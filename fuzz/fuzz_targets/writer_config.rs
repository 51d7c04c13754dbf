//! The archive writer's options, UUID prefixes, file names and paths.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/tcpinfo-archive/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|input: checks::WriterInput| checks::writer_config(&input));
