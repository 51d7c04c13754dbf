//! Options of the archive writer, from JS to `WriterConfig`; its errors to JS errors.

use std::net::IpAddr;
use std::time::Duration;

use napi_derive::napi;
use tcpinfo_archive::{AnonymizeMethod, WriterConfig};

/// Options of `NativeArchiveWriter`; absent values take the `DEFAULT_*` of
/// `tcpinfo-archive`.
#[napi(object)]
#[derive(Default)]
pub struct NativeArchiveWriterOptions {
    /// Root directory of the archive.
    pub output_dir: String,
    /// UUID prefix (`<prefix>_<cookie %016X>`).
    pub uuid_prefix: String,
    /// Milliseconds between flushes (default 1000).
    pub flush_interval_ms: Option<u32>,
    /// Files open at once (default 16384, at most the fd limit minus 512).
    pub max_open_files: Option<u32>,
    /// Milliseconds without a record after which a file is finished (default 120000).
    pub idle_close_ms: Option<u32>,
    /// Batches queued in front of the writer thread (default 64).
    pub queue_depth: Option<u32>,
    /// Bytes queued in front of the writer thread (default 64 MiB).
    pub max_queued_bytes: Option<f64>,
    /// zstd level (default 1).
    pub level: Option<i32>,
    /// `none` (default) or `netblock`.
    pub anonymize: Option<String>,
    /// Addresses never anonymized (default: the local interfaces' addresses).
    pub anonymize_keep: Option<Vec<String>>,
}

/// An archive error to a JS error whose reason starts with the stable code.
pub fn archive_error(e: &tcpinfo_archive::Error) -> napi::Error {
    napi::Error::from_reason(format!("[{}] {e}", e.code()))
}

fn bad(msg: String) -> napi::Error {
    archive_error(&tcpinfo_archive::Error::Config(msg))
}

/// Options to the writer's config.
pub fn to_writer_config(o: NativeArchiveWriterOptions) -> napi::Result<WriterConfig> {
    let mut c = WriterConfig::new(o.output_dir, o.uuid_prefix);
    let ms = |v: u32| Duration::from_millis(u64::from(v));
    if let Some(v) = o.flush_interval_ms {
        c.flush_interval = ms(v);
    }
    if let Some(v) = o.idle_close_ms {
        c.idle_close = ms(v);
    }
    if let Some(v) = o.max_open_files {
        c.max_open_files = v as usize;
    }
    if let Some(v) = o.queue_depth {
        c.queue_depth = v as usize;
    }
    if let Some(v) = o.max_queued_bytes {
        if !(v.is_finite() && v >= 1.0 && v <= 2f64.powi(40)) {
            return Err(bad(format!("maxQueuedBytes: expected 1..2^40, got {v}")));
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "range checked above"
        )]
        {
            c.max_queued_bytes = v as usize;
        }
    }
    if let Some(v) = o.level {
        c.level = v;
    }
    if let Some(a) = o.anonymize {
        c.anonymize = AnonymizeMethod::parse(&a).map_err(|e| archive_error(&e))?;
    }
    if let Some(keep) = o.anonymize_keep {
        let ips = keep
            .iter()
            .map(|s| {
                s.parse::<IpAddr>()
                    .map_err(|_| bad(format!("anonymizeKeep: not an IP address: {s:?}")))
            })
            .collect::<napi::Result<Vec<_>>>()?;
        c.anonymize_keep = Some(ips);
    }
    Ok(c)
}
