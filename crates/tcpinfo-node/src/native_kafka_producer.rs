//! `NativeKafkaProducer`: the Kafka producer of `tcpinfo-kafka`, fed one poll at a time
//! like the archive writer. Conversions and lifecycle only; messages are made and sent on
//! the producer's thread.

use std::sync::Arc;
use std::time::Duration;

use napi_derive::napi;
use tcpinfo_kafka::{KafkaProducer, Namespace, PollInput};

use crate::native_kafka_options::{kafka_error, to_config, NativeKafkaOptions};
use crate::native_kafka_stats::{NativeKafkaCloseReport, NativeKafkaStats};

/// A network namespace of a poll, as the records' index refers to it.
#[napi(object)]
pub struct NativeKafkaNamespace {
    /// Between the prefix and the cookie in its UUIDs (`''` for the host's namespace).
    pub uuid_tag: String,
    /// Its `netns` header (`''`: the producer's `netns` option).
    pub netns: String,
}

/// A Kafka producer running on its own thread.
#[napi]
pub struct NativeKafkaProducer {
    inner: Arc<KafkaProducer>,
}

#[napi]
impl NativeKafkaProducer {
    /// Starts the producer thread (it connects in the background). Throws `ERR_CONFIG`.
    #[napi(constructor, catch_unwind)]
    pub fn new(options: NativeKafkaOptions) -> napi::Result<Self> {
        let cfg = to_config(options)?;
        let inner = KafkaProducer::new(cfg).map_err(|e| kafka_error(&e))?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Queues one poll (its regions copied once; `payloads` may be empty for the
    /// `archival` format). Never blocks. Returns `false` when the poll was dropped whole
    /// (the producer thread is behind), counted.
    #[napi(catch_unwind)]
    pub fn offer(
        &self,
        index: &[u8],
        lines: &[u8],
        payloads: &[u8],
        seq: f64,
        timestamp_ms: f64,
        namespaces: Option<Vec<NativeKafkaNamespace>>,
    ) -> napi::Result<bool> {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a poll number and a time in ms"
        )]
        let poll = PollInput {
            index: index.to_vec(),
            lines: lines.to_vec(),
            payloads: payloads.to_vec(),
            seq: seq.max(0.0) as u64,
            timestamp_nanos: (timestamp_ms * 1e6) as i64,
            namespaces: namespaces
                .unwrap_or_default()
                .into_iter()
                .map(|n| Namespace {
                    uuid_tag: n.uuid_tag,
                    netns: n.netns,
                })
                .collect(),
        };
        self.inner.offer(poll).map_err(|e| kafka_error(&e))
    }

    /// The counters.
    #[napi]
    pub fn stats(&self) -> NativeKafkaStats {
        self.inner.stats().into()
    }

    /// The latest delivery or connection error since the last call.
    #[napi]
    pub fn take_error(&self) -> Option<String> {
        self.inner.take_error()
    }

    /// Delivers what is queued within `deadlineMs`, then stops; idempotent.
    #[napi(catch_unwind)]
    pub async fn close(&self, deadline_ms: f64) -> napi::Result<NativeKafkaCloseReport> {
        let p = Arc::clone(&self.inner);
        let deadline = Duration::from_secs_f64((deadline_ms / 1000.0).clamp(0.0, 1e6));
        napi::bindgen_prelude::spawn_blocking(move || p.close(deadline))
            .await
            .map_err(|e| {
                napi::Error::from_reason(format!("[ERR_INTERNAL] kafka task failed: {e}"))
            })?
            .map(Into::into)
            .map_err(|e| kafka_error(&e))
    }
}
