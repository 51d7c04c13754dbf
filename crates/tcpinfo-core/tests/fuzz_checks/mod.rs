//! The checks run by the core's fuzz targets (`fuzz/fuzz_targets/{netlink,tcp_info,filter,
//! poller_config}.rs`, which include this file by path) and by `tests/fuzz_regressions.rs`,
//! which replays every committed input through them. One copy of each check: a crashing
//! input found by the fuzzer is a regression test of the normal suite as it is.
//!
//! Inputs are structure-aware (`arbitrary`) where raw bytes would stop at the first length
//! check: netlink datagrams are built from messages with valid headers and fuzzed
//! attributes, and only sometimes a wrong length. See docs/RELIABILITY.md#fuzzing.
pub mod filter;

use arbitrary::{Arbitrary, Unstructured};
use tcpinfo_core::parse::attrs::{Attrs, MAX_ATTR_SLOTS};
use tcpinfo_core::parse::diag_msg::{parse_diag, InetDiagMsg, INET_DIAG_MSG_LEN};
use tcpinfo_core::parse::nlmsg::{NlMsgIter, NLMSG_HDR_LEN};
use tcpinfo_core::parse::tcp_info::{AccEcnLayout, FieldValue, TcpInfo, FIELDS, KNOWN_SIZES};
use tcpinfo_core::{
    decode_connection, decode_record, ChangeRule, Error, Fingerprinter, Ingest, PollBatch,
    PollerConfig, RecordIter, Value, ALL_STATES, MAX_MAX_QUEUED_BYTES, MAX_POLL_INTERVAL,
    MAX_QUEUE_DEPTH, MIN_MAX_CPU,
};

/// Runs `check` on `bytes` the way `libfuzzer_sys::fuzz_target!` does for a typed input:
/// too short for the type or not decodable means the input is skipped.
pub fn replay<T: for<'a> Arbitrary<'a>>(bytes: &[u8], check: fn(T)) {
    if bytes.len() < T::size_hint(0).0 {
        return;
    }
    if let Ok(input) = T::arbitrary_take_rest(Unstructured::new(bytes)) {
        check(input);
    }
}

// ---------------------------------------------------------------------------------------
// netlink: datagrams of nlmsghdr + inet_diag_msg + rtattrs, through the whole poll path.

/// A datagram as the kernel would send it, with fuzzed contents.
#[derive(Debug, Arbitrary)]
pub struct Datagram {
    /// Bit 0: AccECN layout; bit 1: exclude local; bit 2: destroy events; bit 3: state only.
    pub options: u8,
    /// The messages, in order.
    pub messages: Vec<Message>,
    /// Bytes appended after the last message (trailing padding or garbage).
    pub tail: Vec<u8>,
}

/// One netlink message.
#[derive(Debug, Arbitrary)]
pub struct Message {
    /// `nlmsg_type`.
    pub kind: MsgKind,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// The 72-byte `inet_diag_msg` (for reply kinds) or the errno (for DONE/ERROR).
    pub header: DiagHeader,
    /// Attributes after the header.
    pub attrs: Vec<Attr>,
    /// Added to `nlmsg_len` (0 most of the time: a correct length).
    pub len_error: LenError,
}

/// `nlmsg_type`.
#[derive(Debug, Arbitrary, Clone, Copy)]
pub enum MsgKind {
    /// `SOCK_DIAG_BY_FAMILY` (20).
    Diag,
    /// `TCPDIAG_GETSOCK` (18).
    Legacy,
    /// `NLMSG_DONE` with a status.
    Done(i32),
    /// `NLMSG_ERROR` with an errno.
    Error(i32),
    /// Anything else.
    Other(u16),
}

/// A length that is usually right.
#[derive(Debug, Arbitrary, Clone, Copy)]
pub enum LenError {
    /// The true length.
    None,
    /// The true length plus this (wrapping).
    Delta(i16),
    /// This length, whatever the content.
    Absolute(u16),
}

impl LenError {
    fn apply(self, len: usize) -> usize {
        match self {
            LenError::None => len,
            LenError::Delta(d) => len.wrapping_add_signed(isize::from(d)),
            LenError::Absolute(v) => usize::from(v),
        }
    }
}

/// `struct inet_diag_msg` fields.
#[derive(Debug, Arbitrary)]
pub struct DiagHeader {
    /// `idiag_family`: 2, 10 or anything.
    pub family: Family,
    /// `idiag_state`.
    pub state: u8,
    /// `idiag_timer`, `idiag_retrans`.
    pub timer: [u8; 2],
    /// `idiag_sport`, `idiag_dport`.
    pub ports: [u16; 2],
    /// `idiag_src`.
    pub src: [u8; 16],
    /// `idiag_dst`.
    pub dst: [u8; 16],
    /// `idiag_if`.
    pub ifindex: u32,
    /// `idiag_cookie`: a small space, so that messages of one datagram share cookies.
    pub cookie: u8,
    /// `idiag_expires`, `rqueue`, `wqueue`, `uid`, `inode`.
    pub rest: [u32; 5],
}

/// `idiag_family`.
#[derive(Debug, Arbitrary, Clone, Copy)]
pub enum Family {
    /// `AF_INET`.
    Inet,
    /// `AF_INET6`.
    Inet6,
    /// Any other byte.
    Raw(u8),
}

/// One `rtattr`.
#[derive(Debug, Arbitrary)]
pub struct Attr {
    /// `rta_type`: a known `INET_DIAG_*` type (mod 23), with flag bits, or any.
    pub ty: AttrType,
    /// The payload.
    pub payload: AttrPayload,
    /// Added to `rta_len` (0 most of the time).
    pub len_error: LenError,
}

/// `rta_type`.
#[derive(Debug, Arbitrary, Clone, Copy)]
pub enum AttrType {
    /// `INET_DIAG_*` 0..=22.
    Known(u8),
    /// A known type with `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER` bits.
    Flagged(u8, bool),
    /// Any 16 bits.
    Any(u16),
}

/// An attribute payload.
#[derive(Debug, Arbitrary)]
pub enum AttrPayload {
    /// Any bytes.
    Bytes(Vec<u8>),
    /// A `tcp_info` of one of the sizes the kernel ever sent, filled from the seed.
    TcpInfo(u8, u64),
    /// A NUL-terminated congestion control name.
    Cong(String),
}

impl Datagram {
    /// The datagram's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for m in &self.messages {
            m.write(&mut out);
        }
        out.extend_from_slice(&self.tail);
        out
    }
}

impl Message {
    fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let ty: u16 = match self.kind {
            MsgKind::Diag => 20,
            MsgKind::Legacy => 18,
            MsgKind::Done(_) => 3,
            MsgKind::Error(_) => 2,
            MsgKind::Other(t) => t,
        };
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&ty.to_ne_bytes());
        out.extend_from_slice(&self.flags.to_ne_bytes());
        out.extend_from_slice(&self.seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        match self.kind {
            MsgKind::Done(code) | MsgKind::Error(code) => {
                out.extend_from_slice(&code.to_ne_bytes());
            }
            _ => {
                self.header.write(out);
                for a in &self.attrs {
                    a.write(out);
                }
            }
        }
        let len = self.len_error.apply(out.len() - start);
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        out[start..start + 4].copy_from_slice(&len.to_ne_bytes());
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }
}

impl DiagHeader {
    fn write(&self, out: &mut Vec<u8>) {
        out.push(match self.family {
            Family::Inet => 2,
            Family::Inet6 => 10,
            Family::Raw(f) => f,
        });
        out.push(self.state);
        out.extend_from_slice(&self.timer);
        out.extend_from_slice(&self.ports[0].to_be_bytes());
        out.extend_from_slice(&self.ports[1].to_be_bytes());
        out.extend_from_slice(&self.src);
        out.extend_from_slice(&self.dst);
        out.extend_from_slice(&self.ifindex.to_ne_bytes());
        out.extend_from_slice(&u32::from(self.cookie).to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        for v in self.rest {
            out.extend_from_slice(&v.to_ne_bytes());
        }
    }
}

impl Attr {
    fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let ty = match self.ty {
            AttrType::Known(t) => u16::from(t % 23),
            AttrType::Flagged(t, nested) => {
                u16::from(t % 23) | if nested { 0x8000 } else { 0x4000 }
            }
            AttrType::Any(t) => t,
        };
        out.extend_from_slice(&[0; 2]);
        out.extend_from_slice(&ty.to_ne_bytes());
        match &self.payload {
            AttrPayload::Bytes(b) => out.extend_from_slice(b),
            AttrPayload::TcpInfo(size, seed) => {
                let n = KNOWN_SIZES[usize::from(*size) % KNOWN_SIZES.len()];
                let mut x = *seed | 1;
                out.extend((0..n).map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x.to_le_bytes()[0]
                }));
            }
            AttrPayload::Cong(s) => {
                out.extend_from_slice(s.as_bytes());
                out.push(0);
            }
        }
        let len = self.len_error.apply(out.len() - start);
        let len = u16::try_from(len).unwrap_or(u16::MAX);
        out[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }
}

/// Fuzz target `netlink`.
pub fn netlink(input: &Datagram) {
    check_datagram(&input.to_bytes(), input.options);
}

/// Runs one datagram through what a poll does with it (frame iteration, `inet_diag_msg`
/// and attribute parsing, filter, fingerprint, tracker, `ArchivalRecord` encoding) and the
/// typed decoder, twice (a second poll sees every connection again).
///
/// Properties: no panic; a message is a reply of the poll exactly when it parses; every
/// attribute lies inside its message; every record's line is one JSON object with the
/// message's bytes; every record decodes; the second poll only reports changes.
pub fn check_datagram(bytes: &[u8], options: u8) {
    let layout = if options & 1 == 0 {
        AccEcnLayout::U16Pair
    } else {
        AccEcnLayout::Bitfield
    };
    let mut config = PollerConfig {
        destroy_events: options & 4 != 0,
        accecn_layout: layout,
        ..PollerConfig::default()
    };
    config.filter.exclude_local = options & 2 != 0;
    config.change_rule.state_only = options & 8 != 0;
    let mut ingest = Ingest::new(&config).expect("default change rule");
    let mut parsed_total = 0u32;
    for poll in 1..=2i64 {
        let now = poll * 1_000_000_000;
        ingest.begin_poll(now);
        let mut batch = PollBatch::default();
        for msg in NlMsgIter::new(bytes) {
            let msg = match msg {
                Ok(m) => m,
                Err(e) => {
                    assert!(matches!(e, Error::Malformed { .. }), "{e:?}");
                    break;
                }
            };
            assert!(msg.payload.len() + NLMSG_HDR_LEN <= bytes.len());
            if msg.msg_type != 20 && msg.msg_type != 18 {
                let _errno = msg.error_code();
                continue;
            }
            let parsed = parse_diag(msg.payload);
            if let Ok((m, attrs)) = &parsed {
                check_attrs(msg.payload, m, attrs);
                parsed_total += 1;
            }
            let decoded = decode_connection(msg.payload, layout);
            assert_eq!(decoded.is_ok(), parsed.is_ok());
            let ingested = ingest.on_reply(msg.payload, now, &mut batch);
            assert_eq!(ingested.is_ok(), parsed.is_ok(), "{ingested:?}");
        }
        check_batch(&batch, layout);
        if poll == 2 {
            assert_eq!(batch.opened, 0, "the second poll saw nothing new");
        }
        let mut gone = Vec::new();
        ingest.sweep(&[2, 10], &mut gone);
        // Index entries that point outside their regions read as empty, never panic.
        let r = &batch.records;
        for view in RecordIter::new(bytes, &r.payloads, &r.lines) {
            let _ = (view.payload.len(), view.line.len());
        }
    }
    assert!(ingest.tracked() <= usize::try_from(parsed_total).unwrap_or(usize::MAX));
}

fn check_attrs(payload: &[u8], msg: &InetDiagMsg<'_>, attrs: &Attrs<'_>) {
    assert_eq!(msg.bytes(), &payload[..INET_DIAG_MSG_LEN]);
    let mut seen = 0;
    for (ty, p) in attrs.iter() {
        assert!(usize::from(ty) < MAX_ATTR_SLOTS);
        assert_eq!(attrs.get(ty), Some(p));
        let start = p.as_ptr() as usize - payload.as_ptr() as usize;
        assert!(start >= INET_DIAG_MSG_LEN + 4 && start + p.len() <= payload.len());
        seen += 1;
    }
    assert_eq!(seen == 0, attrs.max_type().is_none());
}

fn check_batch(batch: &PollBatch, layout: AccEcnLayout) {
    let mut n = 0u32;
    for rec in batch {
        n += 1;
        let line = std::str::from_utf8(rec.line).expect("lines are ASCII");
        assert!(line.ends_with('\n'));
        let json: serde_json::Value = serde_json::from_str(line).expect("a line is JSON");
        let raw = json["RawIDM"].as_str().expect("RawIDM");
        assert_eq!(raw.len(), 96, "base64 of 72 bytes");
        assert!(json["Attributes"].is_array());
        assert!(decode_record(&rec, layout).is_some());
    }
    assert_eq!(n, batch.opened + batch.changed + batch.closed);
}

// ---------------------------------------------------------------------------------------
// tcp_info: the length-aware decoder, at every length of the input.

/// A `tcp_info` payload of any length.
#[derive(Debug, Arbitrary)]
pub struct TcpInfoInput {
    /// The AccECN layout (6.18 pair or 7.0 bitfield).
    pub bitfield: bool,
    /// The payload.
    pub bytes: Vec<u8>,
}

/// Longest prefix checked at every length (the struct is 280 bytes today).
const TCP_INFO_LENGTHS: usize = 320;

/// Fuzz target `tcp_info`: for every prefix length up to 320 bytes (and the whole input), a
/// field is present exactly when the payload covers it, with the value at its offset, and
/// the typed decoder of a reply carrying it yields the same fields.
pub fn tcp_info(input: &TcpInfoInput) {
    let layout = if input.bitfield {
        AccEcnLayout::Bitfield
    } else {
        AccEcnLayout::U16Pair
    };
    let all = input.bytes.len();
    for len in (0..=all.min(TCP_INFO_LENGTHS)).chain(std::iter::once(all)) {
        check_tcp_info(&input.bytes[..len], layout);
    }
}

fn check_tcp_info(b: &[u8], layout: AccEcnLayout) {
    let info = TcpInfo::new(b, layout);
    let fields: Vec<(&str, FieldValue)> = info.fields().collect();
    for f in FIELDS {
        let got = fields.iter().find(|(n, _)| *n == f.name).map(|(_, v)| *v);
        if f.offset + f.size <= b.len() {
            let raw = &b[f.offset..f.offset + f.size];
            let want = match f.size {
                1 => FieldValue::U8(raw[0]),
                2 => FieldValue::U16(u16::from_ne_bytes([raw[0], raw[1]])),
                4 => FieldValue::U32(u32::from_ne_bytes(raw.try_into().expect("4"))),
                _ => FieldValue::U64(u64::from_ne_bytes(raw.try_into().expect("8"))),
            };
            assert_eq!(got, Some(want), "{} at length {}", f.name, b.len());
        } else {
            assert_eq!(got, None, "{} past length {}", f.name, b.len());
        }
    }
    let has = |name: &str| fields.iter().any(|(n, _)| *n == name);
    assert_eq!(has("sndWscale"), b.len() > 6);
    assert_eq!(has("deliveryRateAppLimited"), b.len() >= 168);
    assert_eq!(has("fastopenClientFail"), b.len() >= 232);
    assert_eq!(
        has("ecnMode"),
        layout == AccEcnLayout::Bitfield && b.len() >= 280
    );
    assert_eq!(
        info.rtt(),
        b.get(68..72)
            .map(|s| u32::from_ne_bytes(s.try_into().expect("4")))
    );
    assert_eq!(info.bytes_acked().is_some(), b.len() >= 128);

    // The same bytes as the INET_DIAG_INFO attribute of a reply, through the typed decoder.
    let Ok(attr_len) = u16::try_from(b.len() + 4) else {
        return;
    };
    let mut payload = vec![0u8; INET_DIAG_MSG_LEN];
    payload[0] = 2;
    payload.extend_from_slice(&attr_len.to_ne_bytes());
    payload.extend_from_slice(&2u16.to_ne_bytes());
    payload.extend_from_slice(b);
    while payload.len() % 4 != 0 {
        payload.push(0);
    }
    let Value::Obj(top) = decode_connection(&payload, layout).expect("a well-formed reply") else {
        panic!("a reply decodes to an object");
    };
    let tcp = top.iter().find(|(n, _)| *n == "tcpInfo").map(|(_, v)| v);
    match tcp {
        Some(Value::Obj(f)) => assert_eq!(f.len(), fields.len()),
        other => panic!("tcpInfo missing: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// poller_config: PollerConfig::validate, the guard below every front end.

/// Every field of a poller configuration, fuzzed.
#[derive(Debug, Arbitrary)]
#[expect(clippy::struct_excessive_bools, reason = "mirrors PollerConfig")]
pub struct ConfigInput {
    interval_nanos: u64,
    families: Vec<u8>,
    states: u32,
    ext: u8,
    exclude_local: bool,
    exclude_src_ports: Vec<u16>,
    ignore_fields: Vec<String>,
    include_memory: bool,
    state_only: bool,
    netns: Option<String>,
    all_namespaces: bool,
    max_batch_bytes: usize,
    max_cpu: Option<f64>,
    recv_buffer_bytes: usize,
    event_rcvbuf_bytes: usize,
    queue_depth: usize,
    max_queued_bytes: usize,
    max_pending_closes: usize,
    close_grace_nanos: u64,
}

/// Fuzz target `poller_config`: a configuration `validate` accepts keeps every documented
/// bound (so nothing sized from it can be absurd), and building the per-socket state from
/// it either works or fails with `ERR_CONFIG` (an unknown field name), never a panic.
pub fn poller_config(c: ConfigInput) {
    let config = PollerConfig {
        interval: std::time::Duration::from_nanos(c.interval_nanos),
        families: c.families,
        states: c.states,
        ext: c.ext,
        filter: tcpinfo_core::Filter {
            exclude_local: c.exclude_local,
            exclude_src_ports: c.exclude_src_ports,
            exclude_dst: Vec::new(),
        },
        change_rule: ChangeRule {
            ignore_tcp_info_fields: c.ignore_fields,
            include_memory: c.include_memory,
            state_only: c.state_only,
        },
        netns: c.netns.map(Into::into),
        all_namespaces: c.all_namespaces,
        max_batch_bytes: c.max_batch_bytes,
        max_cpu: c.max_cpu,
        recv_buffer_bytes: c.recv_buffer_bytes,
        event_rcvbuf_bytes: c.event_rcvbuf_bytes,
        queue_depth: c.queue_depth,
        max_queued_bytes: c.max_queued_bytes,
        max_pending_closes: c.max_pending_closes,
        close_grace: std::time::Duration::from_nanos(c.close_grace_nanos),
        ..PollerConfig::default()
    };
    match config.validate() {
        Ok(()) => {
            assert!(!config.interval.is_zero() && config.interval <= MAX_POLL_INTERVAL);
            assert!(!config.families.is_empty());
            assert!(config.families.iter().all(|f| *f == 2 || *f == 10));
            assert!(config.states != 0 && config.states & !ALL_STATES == 0);
            assert!((1..=MAX_QUEUE_DEPTH).contains(&config.queue_depth));
            assert!((1..=MAX_MAX_QUEUED_BYTES).contains(&config.max_queued_bytes));
            assert!(config
                .max_cpu
                .is_none_or(|c| (MIN_MAX_CPU..=1.0).contains(&c)));
            assert!(config.recv_buffer_bytes >= 1 && config.recv_buffer_bytes <= 64 << 20);
            assert!(!(config.all_namespaces && config.netns.is_some()));
        }
        Err(e) => assert_eq!(e.code(), "ERR_CONFIG", "{e:?}"),
    }
    let fp = Fingerprinter::new(&config.change_rule);
    match Ingest::new(&config) {
        Ok(_) => assert!(fp.is_ok()),
        Err(e) => {
            assert!(fp.is_err());
            assert_eq!(e.code(), "ERR_CONFIG");
        }
    }
}
