//! The producer's configuration: what to export (format, sampling), where (brokers,
//! topic, TLS, SASL) and the bounds (buffer, batch size, linger, backoff). Values from
//! flags are parsed here ([`std::str::FromStr`] on each choice) and checked once by
//! [`ProducerConfig::validate`], the only place that makes [`Error::Config`].

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};

/// Bytes of queued message keys and values beyond which the oldest are dropped (64 MiB).
pub const DEFAULT_BUFFER_BYTES: usize = 64 << 20;
/// Smallest accepted buffer, bytes.
pub const MIN_BUFFER_BYTES: usize = 4096;
/// Bytes of records per produce request at most (512 KiB; keys, values, headers and about
/// 16 bytes of framing per record). The broker refuses a record batch over its
/// `message.max.bytes` (about 1 MiB by default); a refused request is split in halves.
pub const DEFAULT_BATCH_BYTES: usize = 512 << 10;
/// Largest accepted produce request, bytes (the broker's default `message.max.bytes` is
/// about 1 MiB per record batch after compression; larger needs broker configuration).
pub const MAX_BATCH_BYTES: usize = 64 << 20;
/// A partition's partial batch is sent after this long (20 ms).
pub const DEFAULT_LINGER: Duration = Duration::from_millis(20);
/// Longest accepted linger (one minute).
pub const MAX_LINGER: Duration = Duration::from_secs(60);
/// First wait after a failed produce request or connection attempt (100 ms).
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest wait between retries (5 s); the wait doubles from [`DEFAULT_BACKOFF_MIN`].
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A produce request, or a connection attempt with its metadata requests, is given up
/// after this long (then retried after the backoff) (10 s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Polls waiting for the producer thread at most (each one copied, not yet made into
/// messages); a poll beyond it is dropped whole, counted.
pub const DEFAULT_INTAKE_POLLS: usize = 256;
/// Certificate authorities used for TLS when no CA file is given (Debian's bundle).
pub const DEFAULT_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The message value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The M-Lab `ArchivalRecord` line, as the archive writes it (without its newline).
    #[default]
    Archival,
    /// Flat JSON of the decoded fields with a `schema` version (ClickHouse `JSONEachRow`).
    Decoded,
}

/// Record batch compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// No compression.
    #[default]
    None,
    /// gzip (flate2).
    Gzip,
    /// LZ4 frames.
    Lz4,
    /// zstd.
    Zstd,
}

/// Which records are exported (xtcp's `samplingModulus`); opens and closes always are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// The `changed` records of every Nth poll (1 = all).
    Every(u32),
    /// Only opens and closes.
    OpensCloses,
}

impl Default for Sample {
    fn default() -> Self {
        Sample::Every(1)
    }
}

/// SASL mechanisms rskafka implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// PLAIN (RFC 4616): use it only over TLS.
    Plain,
    /// SCRAM-SHA-256 (RFC 7677).
    ScramSha256,
    /// SCRAM-SHA-512.
    ScramSha512,
}

/// SASL authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sasl {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// TLS to the brokers (rustls; TLS 1.2 and 1.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tls {
    /// PEM file of the certificate authorities to trust (default [`DEFAULT_CA_FILE`]).
    pub ca_file: Option<PathBuf>,
    /// PEM file of the client certificate chain, for mutual TLS (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// PEM file of the client's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
}

/// Everything the producer needs. Build it, then [`crate::KafkaProducer::new`] validates it.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// Topic of the records.
    pub topic: String,
    /// The UUID prefix of the keys (`<prefix>_<cookie %016X>`).
    pub uuid_prefix: String,
    /// The `host` header.
    pub host: String,
    /// The `netns` header of records from the collector's own namespace (or the one it
    /// was pointed at); other namespaces' records carry their own (see [`crate::PollInput`]).
    pub netns: String,
    /// Value format.
    pub format: Format,
    /// Compression.
    pub compression: Compression,
    /// Bytes of queued keys and values beyond which the oldest records are dropped.
    pub buffer_bytes: usize,
    /// Bytes of keys and values per produce request at most.
    pub batch_bytes: usize,
    /// A partial batch is sent after this long.
    pub linger: Duration,
    /// Sampling.
    pub sample: Sample,
    /// Kafka client id.
    pub client_id: String,
    /// TLS, if any.
    pub tls: Option<Tls>,
    /// SASL, if any.
    pub sasl: Option<Sasl>,
    /// First retry wait.
    pub backoff_min: Duration,
    /// Longest retry wait.
    pub backoff_max: Duration,
    /// Time limit of one produce request or connection attempt.
    pub request_timeout: Duration,
    /// Polls waiting for the producer thread at most.
    pub intake_polls: usize,
}

impl ProducerConfig {
    /// A configuration with the defaults.
    pub fn new(
        brokers: Vec<String>,
        topic: impl Into<String>,
        uuid_prefix: impl Into<String>,
    ) -> Self {
        Self {
            brokers,
            topic: topic.into(),
            uuid_prefix: uuid_prefix.into(),
            host: tcpinfo_core::hostname(),
            netns: String::new(),
            format: Format::default(),
            compression: Compression::default(),
            buffer_bytes: DEFAULT_BUFFER_BYTES,
            batch_bytes: DEFAULT_BATCH_BYTES,
            linger: DEFAULT_LINGER,
            sample: Sample::default(),
            client_id: "tcpinfo".into(),
            tls: None,
            sasl: None,
            backoff_min: DEFAULT_BACKOFF_MIN,
            backoff_max: DEFAULT_BACKOFF_MAX,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            intake_polls: DEFAULT_INTAKE_POLLS,
        }
    }

    /// Checks every value (TLS files are read and parsed here).
    ///
    /// # Errors
    /// [`Error::Config`] naming the option and the bad value.
    pub fn validate(&self) -> Result<()> {
        if self.brokers.is_empty() {
            return Err(cfg("brokers: at least one host:port is needed"));
        }
        for b in &self.brokers {
            check_broker(b)?;
        }
        check_topic(&self.topic)?;
        if self.uuid_prefix.is_empty() {
            return Err(cfg("uuidPrefix: must not be empty"));
        }
        if self.buffer_bytes < MIN_BUFFER_BYTES {
            return Err(cfg(format!(
                "bufferBytes: {} is below the minimum {MIN_BUFFER_BYTES}",
                self.buffer_bytes
            )));
        }
        if self.batch_bytes == 0 || self.batch_bytes > MAX_BATCH_BYTES {
            return Err(cfg(format!(
                "batchBytes: {} is not within 1..={MAX_BATCH_BYTES}",
                self.batch_bytes
            )));
        }
        if self.linger > MAX_LINGER {
            return Err(cfg(format!(
                "lingerMs: {:?} is over one minute",
                self.linger
            )));
        }
        if let Sample::Every(0) = self.sample {
            return Err(cfg("sample: every Nth poll needs N >= 1"));
        }
        if self.backoff_min.is_zero() || self.backoff_max < self.backoff_min {
            return Err(cfg(
                "backoff: the minimum must be > 0 and at most the maximum",
            ));
        }
        if self.request_timeout.is_zero() || self.intake_polls == 0 {
            return Err(cfg("requestTimeout and intake polls must be > 0"));
        }
        if let Some(s) = &self.sasl {
            if s.username.is_empty() {
                return Err(cfg("sasl: a user name is needed"));
            }
        }
        if let Some(t) = &self.tls {
            crate::tls::client_config(t)?;
        }
        Ok(())
    }
}

fn cfg(m: impl Into<String>) -> Error {
    Error::Config(m.into())
}

/// `host:port`, `[v6]:port`; port 1..=65535.
fn check_broker(b: &str) -> Result<()> {
    let bad = || cfg(format!("brokers: {b:?} is not a host:port"));
    let (host, port) = b.rsplit_once(':').ok_or_else(bad)?;
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 && host_ok => Ok(()),
        _ => Err(bad()),
    }
}

/// Kafka's rule: 1..=249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn check_topic(t: &str) -> Result<()> {
    let ok = !t.is_empty()
        && t.len() <= 249
        && t != "."
        && t != ".."
        && t.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(cfg(format!(
            "topic: {t:?} is not a Kafka topic name (1 to 249 of letters, digits, . _ -)"
        )))
    }
}

impl FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "archival" => Ok(Format::Archival),
            "decoded" => Ok(Format::Decoded),
            _ => Err(cfg(format!("format: {s:?} is not archival or decoded"))),
        }
    }
}

impl FromStr for Compression {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            _ => Err(cfg(format!(
                "compression: {s:?} is not none, gzip, lz4 or zstd"
            ))),
        }
    }
}

impl FromStr for Sample {
    type Err = Error;
    /// `all`, `opens-closes` or `N` (1..=1000000).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "all" => Ok(Sample::Every(1)),
            "opens-closes" => Ok(Sample::OpensCloses),
            _ => match s.parse::<u32>() {
                Ok(n) if (1..=1_000_000).contains(&n) => Ok(Sample::Every(n)),
                _ => Err(cfg(format!(
                    "sample: {s:?} is not all, opens-closes or N (1 to 1000000)"
                ))),
            },
        }
    }
}

impl FromStr for SaslMechanism {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Ok(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(SaslMechanism::ScramSha512),
            _ => Err(cfg(format!(
                "sasl mechanism: {s:?} is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ProducerConfig {
        ProducerConfig::new(vec!["127.0.0.1:9092".into()], "t", "p")
    }

    #[test]
    fn defaults_validate() {
        assert!(base().validate().is_ok());
    }

    #[test]
    fn bad_values_name_the_option() {
        type Case = (Box<dyn Fn(&mut ProducerConfig)>, &'static str);
        let cases: Vec<Case> = vec![
            (Box::new(|c| c.brokers.clear()), "brokers"),
            (Box::new(|c| c.brokers = vec!["nohost".into()]), "brokers"),
            (Box::new(|c| c.brokers = vec!["h:99999".into()]), "brokers"),
            (Box::new(|c| c.brokers = vec!["[zz]:1".into()]), "brokers"),
            (Box::new(|c| c.topic = "a b".into()), "topic"),
            (Box::new(|c| c.topic = "..".into()), "topic"),
            (Box::new(|c| c.buffer_bytes = 10), "bufferBytes"),
            (Box::new(|c| c.batch_bytes = 0), "batchBytes"),
            (Box::new(|c| c.linger = Duration::from_secs(61)), "lingerMs"),
            (Box::new(|c| c.sample = Sample::Every(0)), "sample"),
            (
                Box::new(|c| {
                    c.sasl = Some(Sasl {
                        mechanism: SaslMechanism::Plain,
                        username: String::new(),
                        password: "x".into(),
                    });
                }),
                "sasl",
            ),
            (
                Box::new(|c| {
                    c.tls = Some(Tls {
                        ca_file: Some("/nonexistent/ca.pem".into()),
                        ..Tls::default()
                    });
                }),
                "tls",
            ),
        ];
        for (f, name) in cases {
            let mut c = base();
            f(&mut c);
            let e = c.validate().expect_err(name);
            assert_eq!(e.code(), "ERR_CONFIG");
            assert!(e.to_string().contains(name), "{name}: {e}");
        }
    }

    #[test]
    fn brokers_and_choices_parse() {
        for b in ["k1:9092", "10.0.0.1:9093", "[::1]:9094", "a-b.c:1"] {
            assert!(check_broker(b).is_ok(), "{b}");
        }
        assert_eq!("zstd".parse::<Compression>().ok(), Some(Compression::Zstd));
        assert_eq!("lz4".parse::<Compression>().ok(), Some(Compression::Lz4));
        assert!("snappy".parse::<Compression>().is_err());
        assert_eq!("decoded".parse::<Format>().ok(), Some(Format::Decoded));
        assert_eq!("10".parse::<Sample>().ok(), Some(Sample::Every(10)));
        assert_eq!("all".parse::<Sample>().ok(), Some(Sample::Every(1)));
        assert_eq!(
            "opens-closes".parse::<Sample>().ok(),
            Some(Sample::OpensCloses)
        );
        assert!("0".parse::<Sample>().is_err());
        assert!("some".parse::<Sample>().is_err());
        assert_eq!(
            "scram-sha-512".parse::<SaslMechanism>().ok(),
            Some(SaslMechanism::ScramSha512)
        );
        assert!("GSSAPI".parse::<SaslMechanism>().is_err());
    }
}
