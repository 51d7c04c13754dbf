//! `tcp_info` is length-aware (STYLE practice 9, KERNEL-UAPI.md §1.1–1.2).
//!
//! For every size the struct has had (104 … 280 bytes) and every length in between, a payload
//! cut to that length yields exactly the fields that fit (a field past the end is absent, never
//! zero), plus the bitfields by their rules. Values at known offsets decode correctly on a
//! little-endian host, both layouts of bytes 276..280 (6.18–6.19 `__u16` pair, 7.0+ bitfield)
//! decode as specified, `AccEcnLayout::for_release` picks the layout from `uname -r`, and a
//! payload longer than any known kernel's (300 bytes) decodes without error.

use tcpinfo_core::parse::tcp_info::{AccEcnLayout, FieldValue, TcpInfo, FIELDS, KNOWN_SIZES};
use tcpinfo_core::{decode_connection, Value};

/// `sizeof(struct tcp_info)` of Linux 6.18+.
const LATEST_SIZE: usize = 280;
/// Longer than any known kernel: the extra bytes must be ignored.
const FUTURE_SIZE: usize = 300;
/// Byte 7: `tcpi_delivery_rate_app_limited` exists from this length (4.9).
const APP_LIMITED_FROM: usize = 168;
/// Byte 7: `tcpi_fastopen_client_fail` exists from this length (5.5, which shares 232 with 5.4).
const FASTOPEN_FAIL_FROM: usize = 232;
/// Bytes 276..280, whose layout depends on the kernel release.
const ACCECN_TAIL: usize = 276;

/// A payload whose every byte differs from its neighbours, so a misplaced read shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from((i * 7 + 3) % 251).expect("fits"))
        .collect()
}

/// The value of a plain field, read by the test itself (little-endian host).
fn expected_value(bytes: &[u8], offset: usize, size: usize) -> FieldValue {
    let b = &bytes[offset..offset + size];
    match size {
        1 => FieldValue::U8(b[0]),
        2 => FieldValue::U16(u16::from_le_bytes([b[0], b[1]])),
        4 => FieldValue::U32(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        8 => FieldValue::U64(u64::from_le_bytes(b.try_into().expect("8 bytes"))),
        other => panic!("field size {other}"),
    }
}

/// The names `TcpInfo::fields()` must yield for a payload of `len` bytes.
fn expected_names(len: usize, layout: AccEcnLayout) -> Vec<&'static str> {
    let mut names: Vec<&str> = FIELDS
        .iter()
        .filter(|f| f.offset + f.size <= len)
        .map(|f| f.name)
        .collect();
    if len > 6 {
        names.extend(["sndWscale", "rcvWscale"]);
    }
    if len >= APP_LIMITED_FROM {
        names.push("deliveryRateAppLimited");
    }
    if len >= FASTOPEN_FAIL_FROM {
        names.push("fastopenClientFail");
    }
    // At every known size the rule is simply: the AccEcn fields come with 280.
    match layout {
        // Two plain `__u16`s: each is there when it fits (only 280 occurs in practice).
        AccEcnLayout::U16Pair => {
            if len >= ACCECN_TAIL + 2 {
                names.push("accecnFailMode");
            }
            if len >= ACCECN_TAIL + 4 {
                names.push("accecnOptSeen");
            }
        }
        // One `__u32` bitfield: all four or none.
        AccEcnLayout::Bitfield => {
            if len >= ACCECN_TAIL + 4 {
                names.extend(["accecnFailMode", "accecnOptSeen", "ecnMode", "options2"]);
            }
        }
    }
    names
}

fn check_length(bytes: &[u8], len: usize, layout: AccEcnLayout) {
    let info = TcpInfo::new(&bytes[..len], layout);
    let got: Vec<(&str, FieldValue)> = info.fields().collect();
    let names: Vec<&str> = got.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, expected_names(len, layout), "len {len}, {layout:?}");
    for (name, value) in &got {
        if let Some(f) = FIELDS.iter().find(|f| f.name == *name) {
            assert_eq!(
                *value,
                expected_value(bytes, f.offset, f.size),
                "{name} at len {len}"
            );
        }
    }
}

#[test]
fn known_sizes_are_the_documented_ones() {
    assert_eq!(
        KNOWN_SIZES,
        [104, 120, 136, 144, 160, 168, 192, 200, 224, 232, 240, 248, 280]
    );
    // Each size ends exactly at the end of a field (no size cuts a field in half).
    for size in KNOWN_SIZES {
        assert!(
            size == LATEST_SIZE || FIELDS.iter().any(|f| f.offset + f.size == size),
            "{size} does not end on a field boundary"
        );
    }
}

#[test]
fn field_table_is_contiguous_and_aligned() {
    // Offset order, natural alignment, no overlap; the only holes are the bitfield bytes 6..8
    // and the layout-dependent tail 276..280.
    let mut end = 0;
    for f in FIELDS {
        assert!(matches!(f.size, 1 | 2 | 4 | 8), "{}", f.name);
        assert_eq!(f.offset % f.size, 0, "{} is not naturally aligned", f.name);
        let hole = f.offset - end;
        assert!(
            hole == 0 || (end == 6 && f.offset == 8),
            "hole before {} at {end}",
            f.name
        );
        assert_eq!(
            f.kernel_name.strip_prefix("tcpi_").map(str::is_empty),
            Some(false),
            "{}",
            f.name
        );
        end = f.offset + f.size;
    }
    assert_eq!(end, ACCECN_TAIL);
    let names: std::collections::HashSet<_> = FIELDS.iter().map(|f| f.name).collect();
    assert_eq!(names.len(), FIELDS.len(), "duplicate names");
}

#[test]
fn every_known_size_yields_exactly_the_fields_that_fit() {
    let bytes = pattern(FUTURE_SIZE);
    for layout in [AccEcnLayout::U16Pair, AccEcnLayout::Bitfield] {
        for size in KNOWN_SIZES {
            check_length(&bytes, size, layout);
        }
    }
}

#[test]
fn every_length_in_between_is_safe() {
    let bytes = pattern(FUTURE_SIZE);
    for layout in [AccEcnLayout::U16Pair, AccEcnLayout::Bitfield] {
        for len in 0..=FUTURE_SIZE {
            check_length(&bytes, len, layout);
        }
    }
}

#[test]
fn accessors_are_none_past_the_end() {
    let bytes = pattern(LATEST_SIZE);
    let at = |len: usize| TcpInfo::new(&bytes[..len], AccEcnLayout::U16Pair);
    assert_eq!(at(104).pacing_rate(), None);
    assert!(at(104).total_retrans().is_some());
    assert_eq!(at(120).bytes_acked(), None);
    assert!(at(136).bytes_acked().is_some());
    assert_eq!(at(160).delivery_rate(), None);
    assert_eq!(at(160).delivery_rate_app_limited(), None);
    assert!(at(168).delivery_rate_app_limited().is_some());
    assert_eq!(at(224).fastopen_client_fail(), None);
    assert_eq!(at(224).snd_wnd(), None);
    assert!(at(232).fastopen_client_fail().is_some());
    assert_eq!(at(240).total_rto(), None);
    assert_eq!(at(248).received_ce(), None);
    assert_eq!(at(279).accecn_opt_seen(), None);
    assert_eq!(at(0).state(), None);
    assert_eq!(at(0).snd_wscale(), None);
    assert_eq!(at(6).rcv_wscale(), None);
    assert!(at(7).rcv_wscale().is_some());
}

#[cfg(target_endian = "little")]
#[test]
fn concrete_values_at_known_offsets() {
    let mut b = vec![0u8; LATEST_SIZE];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    put(0, &[1, 4, 2, 3, 5, 0x47]); // ESTABLISHED, CA_Loss, retransmits, probes, backoff, options
    put(6, &[0x7E]); // snd_wscale 14 (low nibble), rcv_wscale 7 (high nibble)
    put(7, &[0b0000_0101]); // app_limited = 1, fastopen_client_fail = 2 (TFO_DATA_NOT_ACKED)
    put(8, &204_000u32.to_le_bytes()); // rto
    put(16, &1448u32.to_le_bytes()); // snd_mss
    put(68, &0x0001_2345u32.to_le_bytes()); // rtt
    put(76, &0x7FFF_FFFFu32.to_le_bytes()); // snd_ssthresh "infinite"
    put(80, &10u32.to_le_bytes()); // snd_cwnd
    put(100, &3u32.to_le_bytes()); // total_retrans
    put(112, &u64::MAX.to_le_bytes()); // max_pacing_rate unlimited
    put(120, &0x0102_0304_0506_0708u64.to_le_bytes()); // bytes_acked
    put(148, &u32::MAX.to_le_bytes()); // min_rtt "not available"
    put(200, &(5u64 << 40).to_le_bytes()); // bytes_sent
    put(240, &0xBEEFu16.to_le_bytes()); // total_rto
    put(242, &0x0102u16.to_le_bytes()); // total_rto_recoveries
    put(244, &60_000u32.to_le_bytes()); // total_rto_time (ms)
    put(272, &0xDEAD_BEEFu32.to_le_bytes()); // received_ce_bytes
    let info = TcpInfo::new(&b, AccEcnLayout::U16Pair);
    assert_eq!(info.bytes().len(), LATEST_SIZE);
    assert_eq!(
        (
            info.state(),
            info.ca_state(),
            info.retransmits(),
            info.probes(),
            info.backoff(),
            info.options()
        ),
        (Some(1), Some(4), Some(2), Some(3), Some(5), Some(0x47))
    );
    assert_eq!((info.snd_wscale(), info.rcv_wscale()), (Some(14), Some(7)));
    assert_eq!(info.delivery_rate_app_limited(), Some(true));
    assert_eq!(info.fastopen_client_fail(), Some(2));
    assert_eq!(info.rto(), Some(204_000));
    assert_eq!(info.ato(), Some(0));
    assert_eq!(info.snd_mss(), Some(1448));
    assert_eq!(info.rtt(), Some(0x0001_2345));
    assert_eq!(info.snd_ssthresh(), Some(0x7FFF_FFFF));
    assert_eq!(info.snd_cwnd(), Some(10));
    assert_eq!(info.total_retrans(), Some(3));
    assert_eq!(info.max_pacing_rate(), Some(u64::MAX));
    assert_eq!(info.bytes_acked(), Some(0x0102_0304_0506_0708));
    assert_eq!(info.min_rtt(), Some(u32::MAX));
    assert_eq!(info.bytes_sent(), Some(5u64 << 40));
    assert_eq!(info.total_rto(), Some(0xBEEF));
    assert_eq!(info.total_rto_recoveries(), Some(0x0102));
    assert_eq!(info.total_rto_time(), Some(60_000));
    assert_eq!(info.received_ce_bytes(), Some(0xDEAD_BEEF));
    // The same values through the generic iterator.
    let get = |name: &str| info.fields().find(|(n, _)| *n == name).map(|(_, v)| v);
    assert_eq!(
        get("bytesAcked"),
        Some(FieldValue::U64(0x0102_0304_0506_0708))
    );
    assert_eq!(get("totalRto"), Some(FieldValue::U16(0xBEEF)));
    assert_eq!(get("caState"), Some(FieldValue::U8(4)));
    assert_eq!(get("sndWscale"), Some(FieldValue::U8(14)));
    assert_eq!(get("fastopenClientFail"), Some(FieldValue::U8(2)));
    assert_eq!(get("deliveryRateAppLimited"), Some(FieldValue::Bool(true)));
}

#[test]
fn accecn_layout_for_release() {
    assert_eq!(
        AccEcnLayout::for_release("6.18.44-x"),
        AccEcnLayout::U16Pair
    );
    assert_eq!(AccEcnLayout::for_release("6.19.0"), AccEcnLayout::U16Pair);
    assert_eq!(
        AccEcnLayout::for_release("5.15.0-113-generic"),
        AccEcnLayout::U16Pair
    );
    assert_eq!(AccEcnLayout::for_release("7.0.1"), AccEcnLayout::Bitfield);
    assert_eq!(
        AccEcnLayout::for_release("7.1.0-rc2+"),
        AccEcnLayout::Bitfield
    );
    assert_eq!(AccEcnLayout::for_release("10.2"), AccEcnLayout::Bitfield);
    // Unknown: the older layout (a wrong guess only affects 4 bytes of a 280-byte struct).
    assert_eq!(AccEcnLayout::for_release(""), AccEcnLayout::U16Pair);
    assert_eq!(AccEcnLayout::for_release("weird"), AccEcnLayout::U16Pair);
    assert_eq!(
        AccEcnLayout::running_kernel(),
        AccEcnLayout::for_release(&tcpinfo_core::kernel_release())
    );
}

#[cfg(target_endian = "little")]
#[test]
fn accecn_tail_u16_pair_layout() {
    // 6.18/6.19: byte 276 = fail_mode (0–15), 277 = 0, 278 = opt_seen (0–3), 279 = 0.
    let mut b = vec![0u8; LATEST_SIZE];
    b[ACCECN_TAIL..].copy_from_slice(&[0x0A, 0x00, 0x02, 0x00]);
    let info = TcpInfo::new(&b, AccEcnLayout::U16Pair);
    assert_eq!(info.accecn_fail_mode(), Some(0x0A)); // OPT_FAIL_SEND | ACE_FAIL_RECV
    assert_eq!(info.accecn_opt_seen(), Some(2)); // COUNTER_SEEN
    assert_eq!(info.ecn_mode(), None, "no ecn_mode before 7.0");
    assert_eq!(info.options2(), None, "no options2 before 7.0");
    // A full u16 is read, not a nibble.
    b[ACCECN_TAIL..].copy_from_slice(&[0x34, 0x12, 0x78, 0x56]);
    let info = TcpInfo::new(&b, AccEcnLayout::U16Pair);
    assert_eq!(
        (info.accecn_fail_mode(), info.accecn_opt_seen()),
        (Some(0x1234), Some(0x5678))
    );
}

#[cfg(target_endian = "little")]
#[test]
fn accecn_tail_bitfield_layout() {
    // 7.0+: byte 276 = ecn_mode | opt_seen << 2 | fail_mode << 4; bytes 277..280 = options2.
    let mut b = vec![0u8; LATEST_SIZE];
    b[ACCECN_TAIL..].copy_from_slice(&[2 | 3 << 2 | 9 << 4, 0x01, 0x02, 0x03]);
    let info = TcpInfo::new(&b, AccEcnLayout::Bitfield);
    assert_eq!(info.ecn_mode(), Some(2)); // TCPI_ECN_MODE_ACCECN
    assert_eq!(info.accecn_opt_seen(), Some(3)); // FAIL_SEEN
    assert_eq!(info.accecn_fail_mode(), Some(9)); // ACE_FAIL_SEND | OPT_FAIL_RECV
    assert_eq!(info.options2(), Some(0x03_0201));
    // The same bytes read with the 6.18 layout give the u16 pair, not the bitfield.
    let old = TcpInfo::new(&b, AccEcnLayout::U16Pair);
    assert_eq!(
        old.accecn_fail_mode(),
        Some(u16::from_le_bytes([2 | 3 << 2 | 9 << 4, 0x01]))
    );
    assert_eq!(old.accecn_opt_seen(), Some(0x0302));
    // Every combination of the three small fields round-trips.
    for mode in 0..4u8 {
        for seen in 0..4u8 {
            for fail in 0..16u8 {
                b[ACCECN_TAIL] = mode | seen << 2 | fail << 4;
                let info = TcpInfo::new(&b, AccEcnLayout::Bitfield);
                assert_eq!(
                    (
                        info.ecn_mode(),
                        info.accecn_opt_seen(),
                        info.accecn_fail_mode()
                    ),
                    (Some(mode), Some(u16::from(seen)), Some(u16::from(fail)))
                );
            }
        }
    }
}

#[test]
fn longer_than_known_payload_decodes() {
    let bytes = pattern(FUTURE_SIZE);
    for layout in [AccEcnLayout::U16Pair, AccEcnLayout::Bitfield] {
        let info = TcpInfo::new(&bytes, layout);
        assert_eq!(
            info.bytes().len(),
            FUTURE_SIZE,
            "the raw payload keeps the extra bytes"
        );
        let long: Vec<_> = info.fields().collect();
        let known: Vec<_> = TcpInfo::new(&bytes[..LATEST_SIZE], layout)
            .fields()
            .collect();
        assert_eq!(long, known, "bytes past 280 are ignored");
    }
    // And through decode_connection: a 72-byte inet_diag_msg plus a 300-byte INET_DIAG_INFO.
    let mut payload = vec![0u8; 72];
    payload[0] = 2; // AF_INET
    payload[1] = 1; // ESTABLISHED
    let attr_len = u16::try_from(4 + FUTURE_SIZE).expect("fits");
    payload.extend_from_slice(&attr_len.to_ne_bytes());
    payload.extend_from_slice(&2u16.to_ne_bytes()); // INET_DIAG_INFO
    payload.extend_from_slice(&bytes);
    let v = decode_connection(&payload, AccEcnLayout::Bitfield).expect("decodes");
    let Value::Obj(fields) = v else {
        panic!("not an object")
    };
    let (_, tcp) = fields
        .iter()
        .find(|(n, _)| *n == "tcpInfo")
        .expect("tcpInfo");
    let Value::Obj(tcp) = tcp else {
        panic!("tcpInfo not an object")
    };
    assert_eq!(
        tcp.len(),
        expected_names(LATEST_SIZE, AccEcnLayout::Bitfield).len()
    );
}
