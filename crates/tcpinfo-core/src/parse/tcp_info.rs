//! Mirrors `struct tcp_info` from `include/uapi/linux/tcp.h` (Linux 7.0, 280 bytes).
//!
//! The kernel sends `sizeof(struct tcp_info)` of the running kernel: 104 bytes (2.6.10)
//! up to 280 (6.18+). A field past the received length is `None` — never a made-up zero.
//! Longer payloads from newer kernels are accepted; the extra bytes are ignored here and
//! still archived raw. Offsets and units: `shared/reference/KERNEL-UAPI.md` §1.

use super::{read_u16, read_u32, read_u64};

/// Every size `struct tcp_info` has had in mainline, oldest first.
pub const KNOWN_SIZES: [usize; 13] = [
    104, 120, 136, 144, 160, 168, 192, 200, 224, 232, 240, 248, 280,
];

/// The two incompatible layouts of bytes 276..280 (both 280 bytes long).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccEcnLayout {
    /// Linux 6.18–6.19: `__u16 tcpi_accecn_fail_mode; __u16 tcpi_accecn_opt_seen`.
    U16Pair,
    /// Linux 7.0+: bitfield `ecn_mode:2, accecn_opt_seen:2, accecn_fail_mode:4, options2:24`.
    Bitfield,
}

impl AccEcnLayout {
    /// The layout used by a kernel release string such as `"6.18.44-foo"`.
    pub fn for_release(release: &str) -> Self {
        let mut parts = release
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|p| p.parse::<u32>().ok());
        match parts.next() {
            Some(major) if major >= 7 => AccEcnLayout::Bitfield,
            _ => AccEcnLayout::U16Pair,
        }
    }

    /// The layout of the running kernel (`uname -r`).
    pub fn running_kernel() -> Self {
        Self::for_release(&crate::host::kernel_release())
    }
}

/// The numeric kind of a `tcp_info` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValue {
    /// An 8-bit value (or a bitfield).
    U8(u8),
    /// A 16-bit value.
    U16(u16),
    /// A 32-bit value.
    U32(u32),
    /// A 64-bit counter.
    U64(u64),
    /// A one-bit flag.
    Bool(bool),
}

/// One plain (non-bitfield) field of `struct tcp_info`.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    /// camelCase name used in the JS API, e.g. `bytesAcked`.
    pub name: &'static str,
    /// Kernel name, e.g. `tcpi_bytes_acked`.
    pub kernel_name: &'static str,
    /// Byte offset.
    pub offset: usize,
    /// Byte size: 1, 2, 4 or 8.
    pub size: usize,
    /// Unit, e.g. `"us"`, `"bytes"`, `"segments"`.
    pub unit: &'static str,
}

/// A borrowed, length-aware `tcp_info`.
#[derive(Debug, Clone, Copy)]
pub struct TcpInfo<'a> {
    bytes: &'a [u8],
    layout: AccEcnLayout,
}

fn read_sized(b: &[u8], off: usize, size: usize) -> Option<FieldValue> {
    match size {
        1 => b.get(off).map(|v| FieldValue::U8(*v)),
        2 => read_u16(b, off).map(FieldValue::U16),
        4 => read_u32(b, off).map(FieldValue::U32),
        _ => read_u64(b, off).map(FieldValue::U64),
    }
}

macro_rules! tcp_info_fields {
    ($( $(#[doc = $doc:literal])* $fn:ident: $ty:ident @ $off:literal, $size:literal, $js:literal, $unit:literal; )*) => {
        /// The plain fields of `struct tcp_info` in offset order (bitfields excluded).
        pub const FIELDS: &[FieldSpec] = &[
            $( FieldSpec { name: $js, kernel_name: concat!("tcpi_", stringify!($fn)), offset: $off, size: $size, unit: $unit }, )*
        ];

        impl TcpInfo<'_> {
            $(
                $(#[doc = $doc])*
                #[doc = concat!("\n\n`tcpi_", stringify!($fn), "` at offset ", stringify!($off), ", unit: ", $unit, ".")]
                pub fn $fn(&self) -> Option<$ty> {
                    match read_sized(self.bytes, $off, $size)? {
                        FieldValue::U8(v) => $ty::try_from(v).ok(),
                        FieldValue::U16(v) => $ty::try_from(v).ok(),
                        FieldValue::U32(v) => $ty::try_from(v).ok(),
                        FieldValue::U64(v) => $ty::try_from(v).ok(),
                        FieldValue::Bool(_) => None,
                    }
                }
            )*
        }
    };
}

tcp_info_fields! {
    /// TCP state (same numbering as `idiag_state`).
    state: u8 @ 0, 1, "state", "enum";
    /// Congestion-avoidance state (`enum tcp_ca_state`: 0 Open … 4 Loss).
    ca_state: u8 @ 1, 1, "caState", "enum";
    /// Consecutive RTO retransmits at the current sequence.
    retransmits: u8 @ 2, 1, "retransmits", "count";
    /// Unanswered zero-window or keepalive probes.
    probes: u8 @ 3, 1, "probes", "count";
    /// RTO exponential backoff.
    backoff: u8 @ 4, 1, "backoff", "count";
    /// `TCPI_OPT_*` bits: 1 timestamps, 2 SACK, 4 wscale, 8 ECN, 16 ECN seen, 32 SYN data, 64 usec ts, 128 TFO child.
    options: u8 @ 5, 1, "options", "bits";
    /// Retransmission timeout.
    rto: u32 @ 8, 4, "rto", "us";
    /// Delayed-ACK timeout.
    ato: u32 @ 12, 4, "ato", "us";
    /// Sender MSS.
    snd_mss: u32 @ 16, 4, "sndMss", "bytes";
    /// Estimated receiver MSS.
    rcv_mss: u32 @ 20, 4, "rcvMss", "bytes";
    /// Packets in flight (LISTEN: accept queue length).
    unacked: u32 @ 24, 4, "unacked", "segments";
    /// SACKed packets (LISTEN: max backlog).
    sacked: u32 @ 28, 4, "sacked", "segments";
    /// Packets marked lost.
    lost: u32 @ 32, 4, "lost", "segments";
    /// Retransmitted packets in flight.
    retrans: u32 @ 36, 4, "retrans", "segments";
    /// Always 0 since FACK was removed.
    fackets: u32 @ 40, 4, "fackets", "segments";
    /// Time since the last data was sent.
    last_data_sent: u32 @ 44, 4, "lastDataSent", "ms";
    /// Never filled by the kernel (always 0).
    last_ack_sent: u32 @ 48, 4, "lastAckSent", "ms";
    /// Time since the last data was received.
    last_data_recv: u32 @ 52, 4, "lastDataRecv", "ms";
    /// Time since the last ACK was received.
    last_ack_recv: u32 @ 56, 4, "lastAckRecv", "ms";
    /// Path MTU.
    pmtu: u32 @ 60, 4, "pmtu", "bytes";
    /// Receiver slow-start threshold.
    rcv_ssthresh: u32 @ 64, 4, "rcvSsthresh", "bytes";
    /// Smoothed RTT.
    rtt: u32 @ 68, 4, "rtt", "us";
    /// RTT variance.
    rttvar: u32 @ 72, 4, "rttvar", "us";
    /// Slow-start threshold (0x7fffffff = infinite).
    snd_ssthresh: u32 @ 76, 4, "sndSsthresh", "segments";
    /// Congestion window.
    snd_cwnd: u32 @ 80, 4, "sndCwnd", "segments";
    /// Advertised MSS.
    advmss: u32 @ 84, 4, "advmss", "bytes";
    /// Reordering degree.
    reordering: u32 @ 88, 4, "reordering", "segments";
    /// Receiver-side RTT estimate.
    rcv_rtt: u32 @ 92, 4, "rcvRtt", "us";
    /// Receive space (`rcvq_space.space`).
    rcv_space: u32 @ 96, 4, "rcvSpace", "bytes";
    /// Retransmitted segments over the connection's life.
    total_retrans: u32 @ 100, 4, "totalRetrans", "segments";
    /// Pacing rate (`u64::MAX` = unlimited). Linux 3.15+.
    pacing_rate: u64 @ 104, 8, "pacingRate", "bytes/s";
    /// Maximum pacing rate (`u64::MAX` = unlimited). Linux 3.15+.
    max_pacing_rate: u64 @ 112, 8, "maxPacingRate", "bytes/s";
    /// Bytes acknowledged by the peer. Linux 4.1+.
    bytes_acked: u64 @ 120, 8, "bytesAcked", "bytes";
    /// Bytes received. Linux 4.1+.
    bytes_received: u64 @ 128, 8, "bytesReceived", "bytes";
    /// Segments sent, including pure ACKs and retransmits. Linux 4.2+.
    segs_out: u32 @ 136, 4, "segsOut", "segments";
    /// Segments received. Linux 4.2+.
    segs_in: u32 @ 140, 4, "segsIn", "segments";
    /// Bytes written but not yet sent. Linux 4.6+.
    notsent_bytes: u32 @ 144, 4, "notsentBytes", "bytes";
    /// Minimum RTT seen (`u32::MAX` = none yet). Linux 4.6+.
    min_rtt: u32 @ 148, 4, "minRtt", "us";
    /// Segments received carrying data. Linux 4.6+.
    data_segs_in: u32 @ 152, 4, "dataSegsIn", "segments";
    /// Segments sent carrying data. Linux 4.6+.
    data_segs_out: u32 @ 156, 4, "dataSegsOut", "segments";
    /// Latest delivery-rate sample. Linux 4.9+.
    delivery_rate: u64 @ 160, 8, "deliveryRate", "bytes/s";
    /// Time busy sending data. Linux 4.10+.
    busy_time: u64 @ 168, 8, "busyTime", "us";
    /// Time limited by the receive window. Linux 4.10+.
    rwnd_limited: u64 @ 176, 8, "rwndLimited", "us";
    /// Time limited by the send buffer. Linux 4.10+.
    sndbuf_limited: u64 @ 184, 8, "sndbufLimited", "us";
    /// Segments delivered, including retransmits. Linux 4.18+.
    delivered: u32 @ 192, 4, "delivered", "segments";
    /// Segments delivered with ECE. Linux 4.18+.
    delivered_ce: u32 @ 196, 4, "deliveredCe", "segments";
    /// Bytes sent, including retransmits. Linux 4.19+.
    bytes_sent: u64 @ 200, 8, "bytesSent", "bytes";
    /// Bytes retransmitted. Linux 4.19+.
    bytes_retrans: u64 @ 208, 8, "bytesRetrans", "bytes";
    /// Duplicate segments reported by DSACK. Linux 4.19+.
    dsack_dups: u32 @ 216, 4, "dsackDups", "count";
    /// Reordering events seen. Linux 4.19+.
    reord_seen: u32 @ 220, 4, "reordSeen", "count";
    /// Out-of-order packets received. Linux 5.4+.
    rcv_ooopack: u32 @ 224, 4, "rcvOoopack", "segments";
    /// Peer's advertised window (scaled). Linux 5.4+.
    snd_wnd: u32 @ 228, 4, "sndWnd", "bytes";
    /// Local advertised window (scaled). Linux 6.2+.
    rcv_wnd: u32 @ 232, 4, "rcvWnd", "bytes";
    /// PLB and timeout rehashes. Linux 6.2+.
    rehash: u32 @ 236, 4, "rehash", "count";
    /// RTO timeouts, including SYN/SYN-ACK. Linux 6.7+.
    total_rto: u16 @ 240, 2, "totalRto", "count";
    /// RTO recoveries, including an unfinished one. Linux 6.7+.
    total_rto_recoveries: u16 @ 242, 2, "totalRtoRecoveries", "count";
    /// Time spent in RTO recovery. Linux 6.7+.
    total_rto_time: u32 @ 244, 4, "totalRtoTime", "ms";
    /// Segments received with CE. Linux 6.18+.
    received_ce: u32 @ 248, 4, "receivedCe", "segments";
    /// AccECN: bytes delivered with ECT(1) (wraps at 2^32). Linux 6.18+.
    delivered_e1_bytes: u32 @ 252, 4, "deliveredE1Bytes", "bytes";
    /// AccECN: bytes delivered with ECT(0) (wraps). Linux 6.18+.
    delivered_e0_bytes: u32 @ 256, 4, "deliveredE0Bytes", "bytes";
    /// AccECN: bytes delivered with CE (wraps). Linux 6.18+.
    delivered_ce_bytes: u32 @ 260, 4, "deliveredCeBytes", "bytes";
    /// AccECN: bytes received with ECT(1) (wraps). Linux 6.18+.
    received_e1_bytes: u32 @ 264, 4, "receivedE1Bytes", "bytes";
    /// AccECN: bytes received with ECT(0) (wraps). Linux 6.18+.
    received_e0_bytes: u32 @ 268, 4, "receivedE0Bytes", "bytes";
    /// AccECN: bytes received with CE (wraps). Linux 6.18+.
    received_ce_bytes: u32 @ 272, 4, "receivedCeBytes", "bytes";
}

/// Offset of the AccECN mode/option bytes whose layout depends on the kernel.
const ACCECN_TAIL_OFF: usize = 276;
/// `tcp_info` length from which `tcpi_delivery_rate_app_limited` exists (Linux 4.9).
const APP_LIMITED_MIN_LEN: usize = 168;
/// `tcp_info` length from which `tcpi_fastopen_client_fail` exists (Linux 5.5 shares 232 with 5.4).
const FASTOPEN_FAIL_MIN_LEN: usize = 232;

impl<'a> TcpInfo<'a> {
    /// Views a `tcp_info` payload of any length, with the AccECN layout of the kernel
    /// that produced it.
    pub fn new(bytes: &'a [u8], layout: AccEcnLayout) -> Self {
        Self { bytes, layout }
    }

    /// The payload as received.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// `tcpi_snd_wscale` (low nibble of byte 6): send window scale shift.
    pub fn snd_wscale(&self) -> Option<u8> {
        self.bytes.get(6).map(|b| b & 0x0F)
    }

    /// `tcpi_rcv_wscale` (high nibble of byte 6): receive window scale shift.
    pub fn rcv_wscale(&self) -> Option<u8> {
        self.bytes.get(6).map(|b| b >> 4)
    }

    /// `tcpi_delivery_rate_app_limited` (byte 7 bit 0). Linux 4.9+.
    pub fn delivery_rate_app_limited(&self) -> Option<bool> {
        (self.bytes.len() >= APP_LIMITED_MIN_LEN).then(|| self.bytes[7] & 1 == 1)
    }

    /// `tcpi_fastopen_client_fail` (byte 7 bits 1–2). Linux 5.5+ (reads 0 on 5.4).
    pub fn fastopen_client_fail(&self) -> Option<u8> {
        (self.bytes.len() >= FASTOPEN_FAIL_MIN_LEN).then(|| (self.bytes[7] >> 1) & 0x3)
    }

    /// `tcpi_accecn_fail_mode`: `ACE_FAIL_*`/`OPT_FAIL_*` bits. Linux 6.18+.
    pub fn accecn_fail_mode(&self) -> Option<u16> {
        match self.layout {
            AccEcnLayout::U16Pair => read_u16(self.bytes, ACCECN_TAIL_OFF),
            AccEcnLayout::Bitfield => self.tail_u32().map(|v| ((v >> 4) & 0xF) as u16),
        }
    }

    /// `tcpi_accecn_opt_seen`: 0 not seen, 1 empty, 2 counter, 3 fail. Linux 6.18+.
    pub fn accecn_opt_seen(&self) -> Option<u16> {
        match self.layout {
            AccEcnLayout::U16Pair => read_u16(self.bytes, ACCECN_TAIL_OFF + 2),
            AccEcnLayout::Bitfield => self.tail_u32().map(|v| ((v >> 2) & 0x3) as u16),
        }
    }

    /// `tcpi_ecn_mode`: 0 disabled, 1 RFC 3168, 2 AccECN, 3 pending. Linux 7.0+ only.
    pub fn ecn_mode(&self) -> Option<u8> {
        match self.layout {
            AccEcnLayout::U16Pair => None,
            AccEcnLayout::Bitfield => self.tail_u32().map(|v| (v & 0x3) as u8),
        }
    }

    /// `tcpi_options2` (24 bits, none defined upstream yet). Linux 7.0+ only.
    pub fn options2(&self) -> Option<u32> {
        match self.layout {
            AccEcnLayout::U16Pair => None,
            AccEcnLayout::Bitfield => self.tail_u32().map(|v| v >> 8),
        }
    }

    fn tail_u32(&self) -> Option<u32> {
        read_u32(self.bytes, ACCECN_TAIL_OFF)
    }

    /// Every field present in this payload, as `(camelCase name, value)`, in offset order.
    /// Fields the kernel did not send are not yielded.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, FieldValue)> + '_ {
        let plain = FIELDS
            .iter()
            .filter_map(|f| read_sized(self.bytes, f.offset, f.size).map(|v| (f.name, v)));
        let bits = [
            ("sndWscale", self.snd_wscale().map(FieldValue::U8)),
            ("rcvWscale", self.rcv_wscale().map(FieldValue::U8)),
            (
                "deliveryRateAppLimited",
                self.delivery_rate_app_limited().map(FieldValue::Bool),
            ),
            (
                "fastopenClientFail",
                self.fastopen_client_fail().map(FieldValue::U8),
            ),
            (
                "accecnFailMode",
                self.accecn_fail_mode().map(FieldValue::U16),
            ),
            ("accecnOptSeen", self.accecn_opt_seen().map(FieldValue::U16)),
            ("ecnMode", self.ecn_mode().map(FieldValue::U8)),
            ("options2", self.options2().map(FieldValue::U32)),
        ];
        plain.chain(bits.into_iter().filter_map(|(n, v)| v.map(|v| (n, v))))
    }
}
