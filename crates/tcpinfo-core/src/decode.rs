//! Typed decoding of one reply into a tree of named values, for consumers that ask for
//! objects (the JS API builds them lazily from this; the CLI prints them).
//!
//! Names are camelCase and units are documented in `src/api/types.ts`. Attribute layouts
//! mirror `include/uapi/linux/inet_diag.h` and `tcp.h`; see KERNEL-UAPI.md §2.1–2.2.

use crate::error::Result;
use crate::parse::attrs::{
    Attrs, INET_DIAG_BBRINFO, INET_DIAG_CGROUP_ID, INET_DIAG_CLASS_ID, INET_DIAG_CONG,
    INET_DIAG_DCTCPINFO, INET_DIAG_INFO, INET_DIAG_MARK, INET_DIAG_MEMINFO, INET_DIAG_PAD,
    INET_DIAG_PROTOCOL, INET_DIAG_SHUTDOWN, INET_DIAG_SKMEMINFO, INET_DIAG_SKV6ONLY,
    INET_DIAG_SOCKOPT, INET_DIAG_TCLASS, INET_DIAG_TOS, INET_DIAG_VEGASINFO,
};
use crate::parse::diag_msg::{parse_diag, InetDiagMsg};
use crate::parse::tcp_info::{AccEcnLayout, FieldValue, TcpInfo};
use crate::parse::{read_u16, read_u32, read_u64};
use crate::poll::batch::{RecordView, FLAG_UNSEEN};

/// A decoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number that fits a JS number exactly (u8/u16/u32).
    U32(u32),
    /// A 64-bit counter (a JS `bigint`).
    U64(u64),
    /// A flag.
    Bool(bool),
    /// Text.
    Str(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Value>),
    /// Named fields, in order.
    Obj(Vec<(&'static str, Value)>),
}

/// Names of TCP states as `ss` prints them, indexed by state number.
pub const STATE_NAMES: [&str; 14] = [
    "UNKNOWN",
    "ESTAB",
    "SYN-SENT",
    "SYN-RECV",
    "FIN-WAIT-1",
    "FIN-WAIT-2",
    "TIME-WAIT",
    "UNCONN",
    "CLOSE-WAIT",
    "LAST-ACK",
    "LISTEN",
    "CLOSING",
    "NEW-SYN-RECV",
    "BOUND-INACTIVE",
];

/// `SK_MEMINFO_*` names, in array order (`include/uapi/linux/sock_diag.h`).
const SKMEMINFO_NAMES: [&str; 9] = [
    "rmemAlloc",
    "rcvbuf",
    "wmemAlloc",
    "sndbuf",
    "fwdAlloc",
    "wmemQueued",
    "optmem",
    "backlog",
    "drops",
];

/// `struct inet_diag_sockopt` bit names, byte 0 bit 0 first (little-endian bitfields).
const SOCKOPT_NAMES: [&str; 11] = [
    "recverr",
    "isIcsk",
    "freebind",
    "hdrincl",
    "mcLoop",
    "transparent",
    "mcAll",
    "nodefrag",
    "bindAddressNoPort",
    "recverrRfc4884",
    "deferConnect",
];

/// Decodes one `inet_diag` reply payload (`inet_diag_msg` + attributes).
///
/// # Errors
/// [`crate::Error::Malformed`] when the payload is not a well-formed reply.
pub fn decode_connection(payload: &[u8], layout: AccEcnLayout) -> Result<Value> {
    decode_payload(payload, layout, true)
}

/// Decodes one record of a batch; `None` for a record without payload (a close found by
/// the sweep) or a malformed one. A connection no poll saw (closed within one interval)
/// has no known owner: the destroy message's uid and inode are 0 placeholders, so they
/// are left out rather than reported as root's socket 0.
pub fn decode_record(record: &RecordView<'_>, layout: AccEcnLayout) -> Option<Value> {
    if record.payload.is_empty() {
        return None;
    }
    let owner_known = record.flags & FLAG_UNSEEN == 0;
    decode_payload(record.payload, layout, owner_known).ok()
}

fn decode_payload(payload: &[u8], layout: AccEcnLayout, owner_known: bool) -> Result<Value> {
    let (msg, attrs) = parse_diag(payload)?;
    let mut fields = vec![("id", socket_id(msg))];
    fields.extend([
        ("state", Value::U32(msg.state().into())),
        (
            "stateName",
            Value::Str(
                STATE_NAMES
                    .get(usize::from(msg.state()))
                    .unwrap_or(&"UNKNOWN")
                    .to_string(),
            ),
        ),
        ("timer", Value::U32(msg.timer().into())),
        ("timerRetransmits", Value::U32(msg.retrans().into())),
        ("expires", Value::U32(msg.expires())),
        ("rqueue", Value::U32(msg.rqueue())),
        ("wqueue", Value::U32(msg.wqueue())),
    ]);
    if owner_known {
        fields.extend([
            ("uid", Value::U32(msg.uid())),
            ("inode", Value::U32(msg.inode())),
        ]);
    }
    decode_attributes(&attrs, layout, &mut fields);
    Ok(Value::Obj(fields))
}

fn socket_id(msg: InetDiagMsg<'_>) -> Value {
    Value::Obj(vec![
        ("family", Value::U32(msg.family().into())),
        ("srcIp", Value::Str(msg.src().to_string())),
        ("srcPort", Value::U32(msg.sport().into())),
        ("dstIp", Value::Str(msg.dst().to_string())),
        ("dstPort", Value::U32(msg.dport().into())),
        ("interface", Value::U32(msg.ifindex())),
        ("cookie", Value::U64(msg.cookie())),
    ])
}

fn decode_attributes(
    attrs: &Attrs<'_>,
    layout: AccEcnLayout,
    out: &mut Vec<(&'static str, Value)>,
) {
    let mut unknown = Vec::new();
    for (ty, p) in attrs.iter() {
        let decoded = match ty {
            INET_DIAG_INFO => Some(("tcpInfo", tcp_info(TcpInfo::new(p, layout)))),
            INET_DIAG_MEMINFO => {
                u32_obj(p, &["rmem", "wmem", "fmem", "tmem"]).map(|v| ("memInfo", v))
            }
            INET_DIAG_SKMEMINFO => Some(("skMemInfo", skmeminfo(p))),
            INET_DIAG_CONG => Some(("congestion", Value::Str(c_string(p)))),
            INET_DIAG_TOS => p.first().map(|b| ("tos", Value::U32((*b).into()))),
            INET_DIAG_TCLASS => p.first().map(|b| ("tclass", Value::U32((*b).into()))),
            INET_DIAG_SHUTDOWN => p.first().map(|b| ("shutdown", Value::U32((*b).into()))),
            INET_DIAG_VEGASINFO => {
                u32_obj(p, &["enabled", "rttCount", "rtt", "minRtt"]).map(|v| ("vegasInfo", v))
            }
            INET_DIAG_DCTCPINFO => dctcp(p).map(|v| ("dctcpInfo", v)),
            INET_DIAG_BBRINFO => bbr(p).map(|v| ("bbrInfo", v)),
            INET_DIAG_PROTOCOL => p.first().map(|b| ("protocol", Value::U32((*b).into()))),
            INET_DIAG_SKV6ONLY => p.first().map(|b| ("v6Only", Value::Bool(*b != 0))),
            INET_DIAG_MARK => read_u32(p, 0).map(|v| ("mark", Value::U32(v))),
            INET_DIAG_CLASS_ID => read_u32(p, 0).map(|v| ("classId", Value::U32(v))),
            INET_DIAG_CGROUP_ID => read_u64(p, 0).map(|v| ("cgroupId", Value::U64(v))),
            INET_DIAG_SOCKOPT => Some(("sockOpt", sockopt(p))),
            INET_DIAG_PAD => continue,
            _ => None,
        };
        match decoded {
            Some(field) => out.push(field),
            // Unknown types, and known ones too short for their struct, are kept raw.
            None => unknown.push(Value::Obj(vec![
                ("type", Value::U32(ty.into())),
                ("data", Value::Bytes(p.to_vec())),
            ])),
        }
    }
    if !unknown.is_empty() {
        out.push(("otherAttributes", Value::List(unknown)));
    }
}

fn tcp_info(info: TcpInfo<'_>) -> Value {
    Value::Obj(
        info.fields()
            .map(|(name, v)| {
                let v = match v {
                    FieldValue::U8(x) => Value::U32(x.into()),
                    FieldValue::U16(x) => Value::U32(x.into()),
                    FieldValue::U32(x) => Value::U32(x),
                    FieldValue::U64(x) => Value::U64(x),
                    FieldValue::Bool(x) => Value::Bool(x),
                };
                (name, v)
            })
            .collect(),
    )
}

fn u32_obj(p: &[u8], names: &[&'static str]) -> Option<Value> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| read_u32(p, i * 4).map(|v| (*n, Value::U32(v))))
        .collect::<Option<Vec<_>>>()
        .map(Value::Obj)
}

/// `__u32[]` of any length: older kernels send 7 or 8 entries, 4.7+ sends 9.
fn skmeminfo(p: &[u8]) -> Value {
    Value::Obj(
        SKMEMINFO_NAMES
            .iter()
            .enumerate()
            .filter_map(|(i, n)| read_u32(p, i * 4).map(|v| (*n, Value::U32(v))))
            .collect(),
    )
}

fn dctcp(p: &[u8]) -> Option<Value> {
    Some(Value::Obj(vec![
        ("enabled", Value::U32(read_u16(p, 0)?.into())),
        ("ceState", Value::U32(read_u16(p, 2)?.into())),
        ("alpha", Value::U32(read_u32(p, 4)?)),
        ("abEcn", Value::U32(read_u32(p, 8)?)),
        ("abTot", Value::U32(read_u32(p, 12)?)),
    ]))
}

/// `struct tcp_bbr_info`: bandwidth is split in two u32 halves; gains are <<8 fixed point.
fn bbr(p: &[u8]) -> Option<Value> {
    let bw = u64::from(read_u32(p, 4)?) << 32 | u64::from(read_u32(p, 0)?);
    Some(Value::Obj(vec![
        ("bw", Value::U64(bw)),
        ("minRtt", Value::U32(read_u32(p, 8)?)),
        ("pacingGain", Value::U32(read_u32(p, 12)?)),
        ("cwndGain", Value::U32(read_u32(p, 16)?)),
    ]))
}

fn sockopt(p: &[u8]) -> Value {
    let bits =
        u16::from(p.first().copied().unwrap_or(0)) | u16::from(p.get(1).copied().unwrap_or(0)) << 8;
    Value::Obj(
        SOCKOPT_NAMES
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, Value::Bool(bits >> i & 1 == 1)))
            .collect(),
    )
}

fn c_string(p: &[u8]) -> String {
    let end = p.iter().position(|b| *b == 0).unwrap_or(p.len());
    String::from_utf8_lossy(&p[..end]).into_owned()
}
