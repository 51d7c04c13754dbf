//! Frames of every link type through the passive-RTT packet parser and matcher.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/tcpinfo-rtt/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::parse_frame(data));
