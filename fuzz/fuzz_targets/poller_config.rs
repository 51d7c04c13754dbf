//! `PollerConfig::validate` and what is built from an accepted configuration.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/tcpinfo-core/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|input: checks::ConfigInput| checks::poller_config(input));
