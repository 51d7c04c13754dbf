//! `NativeAnonymizer`: M-Lab's `-anonymize.ip` applied to copies of a poll's payloads and
//! lines, for the outputs other than the archive (event socket, Kafka). Conversions only;
//! the rule is `tcpinfo_archive::Anonymizer`.

use std::net::IpAddr;

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use tcpinfo_archive::{local_interface_addrs, AnonymizeMethod, Anonymizer};

use crate::native_archive_options::archive_error;

/// Anonymized copies of a poll's buffers (same offsets as the originals).
#[napi(object)]
pub struct NativeAnonymizedBuffers {
    /// The netlink payloads, addresses cut to their netblock.
    pub payloads: Buffer,
    /// The `ArchivalRecord` lines, `RawIDM` addresses cut to their netblock.
    pub lines: Buffer,
}

/// Options of `NativeAnonymizer`.
#[napi(object)]
pub struct NativeAnonymizerOptions {
    /// `none` or `netblock`.
    pub method: String,
    /// Addresses never anonymized (default: the local interfaces' addresses, as the
    /// archive writer).
    pub keep: Option<Vec<String>>,
}

/// An anonymizer with the archive writer's rule and keep-list.
#[napi]
pub struct NativeAnonymizer {
    inner: Anonymizer,
}

#[napi]
impl NativeAnonymizer {
    /// An anonymizer for `options.method`.
    #[napi(constructor)]
    pub fn new(options: NativeAnonymizerOptions) -> napi::Result<Self> {
        let method = AnonymizeMethod::parse(&options.method).map_err(|e| archive_error(&e))?;
        let keep = match options.keep {
            Some(list) => list
                .iter()
                .map(|s| {
                    s.parse::<IpAddr>().map_err(|_| {
                        archive_error(&tcpinfo_archive::Error::Config(format!(
                            "anonymizeKeep: not an IP address: {s:?}"
                        )))
                    })
                })
                .collect::<napi::Result<Vec<_>>>()?,
            None => local_interface_addrs(),
        };
        Ok(Self {
            inner: Anonymizer::new(method, &keep),
        })
    }

    /// Copies of `payloads` and `lines` with every record's addresses anonymized.
    #[napi(catch_unwind)]
    pub fn batch(&self, index: &[u8], payloads: &[u8], lines: &[u8]) -> NativeAnonymizedBuffers {
        let (p, l) = self.inner.anonymize_batch(index, payloads, lines);
        NativeAnonymizedBuffers {
            payloads: p.into(),
            lines: l.into(),
        }
    }
}
