//! Options and counters of the Kafka producer, between JS and `tcpinfo-kafka`.

use std::time::Duration;

use napi_derive::napi;
use tcpinfo_kafka::{ProducerConfig, Sasl, Tls};

/// Options of `NativeKafkaProducer`; absent values take the `DEFAULT_*` of `tcpinfo-kafka`.
#[napi(object)]
#[derive(Default)]
pub struct NativeKafkaOptions {
    /// Bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// Topic.
    pub topic: String,
    /// UUID prefix of the keys.
    pub uuid_prefix: String,
    /// `host` header (default: the host name).
    pub host: Option<String>,
    /// `netns` header of the collector's own namespace's records (default `''`).
    pub netns: Option<String>,
    /// `archival` (default) or `decoded`.
    pub format: Option<String>,
    /// `none` (default), `gzip`, `lz4` or `zstd`.
    pub compression: Option<String>,
    /// Bytes of queued keys and values before the oldest are dropped (default 64 MiB).
    pub buffer_bytes: Option<f64>,
    /// Bytes of records per produce request at most (default 512 KiB).
    pub batch_bytes: Option<f64>,
    /// A partial batch is sent after this long, ms (default 20).
    pub linger_ms: Option<f64>,
    /// `all` (default), `opens-closes` or `N`.
    pub sample: Option<String>,
    /// Kafka client id (default `tcpinfo`).
    pub client_id: Option<String>,
    /// Use TLS.
    pub tls: Option<bool>,
    /// PEM file of the CAs to trust (default: the system bundle).
    pub tls_ca_file: Option<String>,
    /// PEM client certificate chain (mutual TLS).
    pub tls_cert_file: Option<String>,
    /// PEM client key (mutual TLS).
    pub tls_key_file: Option<String>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (with `saslUsername`).
    pub sasl_mechanism: Option<String>,
    /// SASL user name.
    pub sasl_username: Option<String>,
    /// SASL password.
    pub sasl_password: Option<String>,
}

fn cfg_err(e: &tcpinfo_kafka::Error) -> napi::Error {
    napi::Error::from_reason(format!("[{}] {e}", e.code()))
}

fn bytes(v: f64, what: &str) -> napi::Result<usize> {
    if v.is_finite() && v >= 0.0 && v <= 2f64.powi(40) {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "checked range"
        )]
        Ok(v as usize)
    } else {
        Err(cfg_err(&tcpinfo_kafka::Error::Config(format!(
            "{what}: {v} is not a byte count"
        ))))
    }
}

fn parse<T: std::str::FromStr<Err = tcpinfo_kafka::Error>>(s: &str) -> napi::Result<T> {
    s.parse().map_err(|e| cfg_err(&e))
}

/// Options to the producer's config (checked by `KafkaProducer::new`).
pub fn to_config(o: NativeKafkaOptions) -> napi::Result<ProducerConfig> {
    let mut c = ProducerConfig::new(o.brokers, o.topic, o.uuid_prefix);
    if let Some(h) = o.host {
        c.host = h;
    }
    c.netns = o.netns.unwrap_or_default();
    if let Some(f) = o.format {
        c.format = parse(&f)?;
    }
    if let Some(v) = o.compression {
        c.compression = parse(&v)?;
    }
    if let Some(v) = o.sample {
        c.sample = parse(&v)?;
    }
    if let Some(v) = o.buffer_bytes {
        c.buffer_bytes = bytes(v, "bufferBytes")?;
    }
    if let Some(v) = o.batch_bytes {
        c.batch_bytes = bytes(v, "batchBytes")?;
    }
    if let Some(v) = o.linger_ms {
        c.linger = Duration::from_secs_f64((v / 1000.0).clamp(0.0, 1e6));
    }
    if let Some(v) = o.client_id {
        c.client_id = v;
    }
    if o.tls.unwrap_or(false) || o.tls_ca_file.is_some() || o.tls_cert_file.is_some() {
        c.tls = Some(Tls {
            ca_file: o.tls_ca_file.map(Into::into),
            cert_file: o.tls_cert_file.map(Into::into),
            key_file: o.tls_key_file.map(Into::into),
        });
    }
    if let Some(m) = o.sasl_mechanism {
        c.sasl = Some(Sasl {
            mechanism: parse(&m)?,
            username: o.sasl_username.unwrap_or_default(),
            password: o.sasl_password.unwrap_or_default(),
        });
    }
    Ok(c)
}

/// The producer's error to a JS error whose reason starts with the stable code.
pub fn kafka_error(e: &tcpinfo_kafka::Error) -> napi::Error {
    cfg_err(e)
}
