//! Fuzzes the pcap/pcapng reader: any bytes give frames or an `ERR_CAPTURE_FILE`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpinfo_rtt::pcap::read;
use tcpinfo_rtt::ParseStats;

fuzz_target!(|data: &[u8]| {
    let mut stats = ParseStats::default();
    match read(data, "fuzz", |f| {
        stats.parse(f.link, f.data);
    }) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.code(), "ERR_CAPTURE_FILE"),
    }
});
