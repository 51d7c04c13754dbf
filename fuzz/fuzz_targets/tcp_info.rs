//! `struct tcp_info` of any length, checked at every prefix length.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/tcpinfo-core/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|input: checks::TcpInfoInput| checks::tcp_info(&input));
