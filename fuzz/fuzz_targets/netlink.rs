//! Netlink datagrams (valid headers, fuzzed messages and attributes, sometimes wrong
//! lengths) through a poll's whole per-socket path and the typed decoder.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/tcpinfo-core/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|input: checks::Datagram| checks::netlink(&input));
