//! `tcpinfo-kafka`: exports the poller's records to Apache Kafka (issue 12).
//!
//! Fed exactly like the archive writer, once per poll with the batch's regions
//! ([`KafkaProducer::offer`], never blocking, no per-record call from JS), it makes one
//! message per record (key = the connection's UUID, value = the `ArchivalRecord` line or
//! flat `decoded` JSON, headers `host`, `netns`, `kind`; [`message`]), keeps them in a
//! buffer bounded in bytes that drops the oldest first ([`buffer`]), and sends them from
//! its own thread with rskafka (pure Rust; `acks=all`; zstd, lz4, gzip or no
//! compression; TLS through rustls; SASL PLAIN/SCRAM), one request in flight per
//! partition so each connection's records arrive in order, reconnecting with backoff.
//! rskafka has no idempotent producer: delivery is at least once (a request cut by an
//! outage may be repeated). `close` delivers within a deadline and reports the rest.
//!
//! Design and measurements: docs/ARCHITECTURE.md ("The Kafka sink"), docs/BENCHMARKS.md.
#![deny(missing_docs)]

pub mod buffer;
mod config;
mod error;
pub mod message;
mod producer;
mod stats;
mod tls;
mod worker;

pub use config::{
    Compression, Format, ProducerConfig, Sample, Sasl, SaslMechanism, Tls, DEFAULT_BACKOFF_MAX,
    DEFAULT_BACKOFF_MIN, DEFAULT_BATCH_BYTES, DEFAULT_BUFFER_BYTES, DEFAULT_CA_FILE,
    DEFAULT_INTAKE_POLLS, DEFAULT_LINGER, DEFAULT_REQUEST_TIMEOUT, MAX_BATCH_BYTES, MAX_LINGER,
    MIN_BUFFER_BYTES,
};
pub use error::{Error, Result};
pub use message::{Namespace, PollInput, DECODED_SCHEMA};
pub use producer::{KafkaProducer, DROP_CLOSE_DEADLINE};
pub use stats::ProducerStats;
pub use worker::CloseReport;
