//! CSV rows and numeric series of archived batches (`tcpinfo_archive_read::{csv, series}`),
//! one call per batch; conversions only.

use napi::bindgen_prelude::{Buffer, Float64Array};
use napi_derive::napi;
use tcpinfo_archive_read::{csv, series};

/// The names of M-Lab csvtool's columns, in order.
#[napi]
pub fn native_csv_columns() -> Vec<String> {
    csv::COLUMNS.iter().map(|c| c.name.to_owned()).collect()
}

/// The CSV header line for the given column indexes.
#[napi]
pub fn native_csv_header(columns: Vec<u32>) -> Buffer {
    let cols: Vec<usize> = columns.into_iter().map(|c| c as usize).collect();
    let mut out = Vec::new();
    csv::write_header(&mut out, &cols);
    out.into()
}

/// One CSV row per record of a batch (its `index`, `payloads` and `lines`).
#[napi(catch_unwind)]
pub fn native_csv_rows(index: &[u8], payloads: &[u8], lines: &[u8], columns: Vec<u32>) -> Buffer {
    let cols: Vec<usize> = columns.into_iter().map(|c| c as usize).collect();
    let mut out = Vec::with_capacity(lines.len() / 2);
    csv::write_rows(&mut out, index, payloads, lines, &cols);
    out.into()
}

/// Column-major numeric series (`out[f * n + i]`, `NaN` when absent) of the named fields
/// (`time`, `state`, `cookie`, `deliveryRateAppLimited`, any `tcp_info` field).
#[napi(catch_unwind)]
pub fn native_archive_series(
    index: &[u8],
    payloads: &[u8],
    times: &[u8],
    fields: Vec<String>,
) -> Float64Array {
    let owned: Vec<String> = fields.into_iter().collect();
    let names: Vec<&str> = owned.iter().map(String::as_str).collect();
    series::extract(index, payloads, times, &names).into()
}
