//! Numeric time series out of a batch, for charts and summaries: one `f64` column per
//! requested field, one value per record, `NaN` where the record has no such value. One
//! call per batch replaces per-record object decoding (the report reads millions of points).
//!
//! Field names: `time` (the record's timestamp, unix milliseconds), `state` (the
//! `inet_diag_msg` state), `cookie` (low 53 bits), and every `tcp_info` field by its
//! camelCase name (`rtt`, `bytesAcked`, …, as in `tcpinfo_core::parse::tcp_info::FIELDS`)
//! plus the bitfield `deliveryRateAppLimited` (0/1). 64-bit counters above 2^53 lose
//! precision as JS numbers do.

use tcpinfo_core::parse::attrs::INET_DIAG_INFO;
use tcpinfo_core::parse::diag_msg::parse_diag;
use tcpinfo_core::parse::tcp_info::{AccEcnLayout, FieldValue, TcpInfo, FIELDS};
use tcpinfo_core::{RecordIter, GO_ZERO_TIME, INDEX_ENTRY_LEN};

#[derive(Debug, Clone, Copy)]
enum Source {
    Time,
    State,
    Cookie,
    AppLimited,
    Tcp(usize, usize),
    Unknown,
}

fn source(name: &str) -> Source {
    match name {
        "time" => Source::Time,
        "state" => Source::State,
        "cookie" => Source::Cookie,
        "deliveryRateAppLimited" => Source::AppLimited,
        _ => FIELDS
            .iter()
            .find(|f| f.name == name)
            .map_or(Source::Unknown, |f| Source::Tcp(f.offset, f.size)),
    }
}

#[expect(clippy::cast_precision_loss, reason = "JS numbers; documented")]
fn num(v: FieldValue) -> f64 {
    match v {
        FieldValue::U8(x) => x.into(),
        FieldValue::U16(x) => x.into(),
        FieldValue::U32(x) => x.into(),
        FieldValue::U64(x) => x as f64,
        FieldValue::Bool(b) => f64::from(u8::from(b)),
    }
}

/// Whether `name` is a known series field.
pub fn is_field(name: &str) -> bool {
    !matches!(source(name), Source::Unknown)
}

/// Column-major values: `out[f * n + i]` is field `f` of record `i`, for the `n` records of
/// `index`/`payloads`, with `times` the batch's i64 timestamps. Unknown fields are all `NaN`.
pub fn extract(index: &[u8], payloads: &[u8], times: &[u8], fields: &[&str]) -> Vec<f64> {
    let n = index.len() / INDEX_ENTRY_LEN;
    let sources: Vec<Source> = fields.iter().map(|f| source(f)).collect();
    let mut out = vec![f64::NAN; n * sources.len()];
    for (i, r) in RecordIter::new(index, payloads, &[]).enumerate() {
        let parsed = parse_diag(r.payload).ok();
        let info = parsed
            .as_ref()
            .and_then(|(_, a)| a.get(INET_DIAG_INFO))
            .map(|p| TcpInfo::new(p, AccEcnLayout::U16Pair));
        for (f, src) in sources.iter().enumerate() {
            let v = match *src {
                Source::Time => time_ms(times, i),
                Source::State => Some(f64::from(r.state)),
                #[expect(clippy::cast_precision_loss, reason = "low 53 bits kept exactly")]
                Source::Cookie => Some((r.cookie & ((1 << 53) - 1)) as f64),
                Source::AppLimited => info
                    .and_then(|t| t.delivery_rate_app_limited())
                    .map(|b| f64::from(u8::from(b))),
                Source::Tcp(off, size) => info.and_then(|t| read(t.bytes(), off, size)),
                Source::Unknown => None,
            };
            if let Some(v) = v {
                out[f * n + i] = v;
            }
        }
    }
    out
}

fn read(b: &[u8], off: usize, size: usize) -> Option<f64> {
    let s = b.get(off..off + size)?;
    let mut a = [0u8; 8];
    a[..size].copy_from_slice(s);
    let v = u64::from_le_bytes(a);
    #[expect(clippy::cast_precision_loss, reason = "JS numbers; documented")]
    Some(if size == 8 {
        num(FieldValue::U64(v))
    } else {
        v as f64
    })
}

fn time_ms(times: &[u8], i: usize) -> Option<f64> {
    let b = times.get(i * 8..i * 8 + 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    let ns = i64::from_le_bytes(a);
    #[expect(clippy::cast_precision_loss, reason = "ms since 1970 fit in 2^53")]
    (ns != GO_ZERO_TIME).then(|| ns as f64 / 1e6)
}
