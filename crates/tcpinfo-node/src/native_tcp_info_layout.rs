//! `NativeTcpInfoLayout`: the core's `struct tcp_info` field table, so the TypeScript side
//! reads `tcp_info` bytes with the core's offsets (defined once, in
//! `tcpinfo_core::parse::tcp_info::FIELDS`) instead of a copy of them.

use napi_derive::napi;
use tcpinfo_core::parse::tcp_info::{AccEcnLayout, FIELDS};

/// The plain fields of `struct tcp_info` in offset order, and the AccECN layout in use.
#[napi(object)]
pub struct NativeTcpInfoLayout {
    /// camelCase field names.
    pub names: Vec<String>,
    /// Byte offset of each field.
    pub offsets: Vec<u32>,
    /// Byte size of each field: 1, 2, 4 or 8 (8 = a `bigint` counter).
    pub sizes: Vec<u32>,
    /// The running kernel uses the Linux 7.0+ bitfield for bytes 276..280 (else 6.18's
    /// `u16` pair), as `nativeDecodeRecords` assumes.
    pub accecn_bitfield: bool,
}

/// The `tcp_info` field table (see the module docs).
#[napi]
pub fn native_tcp_info_layout() -> NativeTcpInfoLayout {
    let u = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    NativeTcpInfoLayout {
        names: FIELDS.iter().map(|f| f.name.to_owned()).collect(),
        offsets: FIELDS.iter().map(|f| u(f.offset)).collect(),
        sizes: FIELDS.iter().map(|f| u(f.size)).collect(),
        accecn_bitfield: AccEcnLayout::running_kernel() == AccEcnLayout::Bitfield,
    }
}
