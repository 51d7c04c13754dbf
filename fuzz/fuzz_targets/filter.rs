//! CIDR text, exclusion filters and their bytecode, against the kernel in a private netns.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/tcpinfo-core/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|input: checks::filter::FilterInput| checks::filter::filter(&input));
