//! Any bytes as a pcap/pcapng capture file.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/tcpinfo-rtt/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::capture_file(data));
