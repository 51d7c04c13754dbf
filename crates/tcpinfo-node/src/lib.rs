//! The napi binding of `tcpinfo-core`: conversions and lifecycle only.
//!
//! Every exported item is named `Native*` (or is a plain function) and lives in one
//! `native_*.rs` file; all logic is in `tcpinfo-core`. The TS wrapper in `src/native.ts`
//! is the only JS module that loads this addon.
#![deny(missing_docs)]

/// glibc for every thread, mimalloc for those that opt in (the Kafka producer): see
/// `tcpinfo-alloc` for why.
#[global_allocator]
static ALLOCATOR: tcpinfo_alloc::SplitAlloc = tcpinfo_alloc::SplitAlloc;

mod native_anonymizer;
mod native_archive_batch;
mod native_archive_csv;
mod native_archive_options;
mod native_archive_reader;
mod native_archive_stats;
mod native_archive_writer;
mod native_decode;
mod native_error;
mod native_namespace;
mod native_options;
mod native_poller;
mod native_port_stats;
mod native_records;
mod native_rtt;
mod native_rtt_monitor;
mod native_rtt_monitor_options;
mod native_rtt_options;
mod native_tcp_info_layout;
mod native_vocabulary;
// Kafka export (issue 12)
mod native_kafka_options;
mod native_kafka_producer;
mod native_kafka_stats;

/// Makes a Rust panic say what it is before napi turns it into a JS error.
#[napi_derive::module_init]
fn init() {
    native_records::release_large_buffers_to_the_os();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        #[expect(
            clippy::print_stderr,
            reason = "a panic is a bug; stderr is the only place left to say so"
        )]
        {
            eprintln!("tcpinfo: internal error (this is a bug in tcpinfo, please report it)");
        }
        default_hook(info);
    }));
}
