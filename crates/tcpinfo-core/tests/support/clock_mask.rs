//! Comparing records of two pollers (BPF and netlink mode) byte for byte: the fields that
//! move with the clock between their reads are zeroed first.

use tcpinfo_core::parse::attrs::INET_DIAG_INFO;

/// `tcpi_last_data_sent` .. `tcpi_last_ack_recv`: bytes 44..60 of `tcp_info`.
const LAST_FIELDS: std::ops::Range<usize> = 44..60;
/// `idiag_expires`: bytes 52..56 of `inet_diag_msg`.
const EXPIRES: std::ops::Range<usize> = 52..56;

/// A record's netlink payload with the fields that move with the clock zeroed.
pub fn masked(payload: &[u8]) -> Vec<u8> {
    let mut m = payload.to_vec();
    m[EXPIRES].fill(0);
    let mut at = 72;
    while at + 4 <= m.len() {
        let len = usize::from(u16::from_ne_bytes([m[at], m[at + 1]]));
        let ty = u16::from_ne_bytes([m[at + 2], m[at + 3]]);
        if len < 4 || at + len > m.len() {
            break;
        }
        if ty == INET_DIAG_INFO && len - 4 >= LAST_FIELDS.end {
            m[at + 4 + LAST_FIELDS.start..at + 4 + LAST_FIELDS.end].fill(0);
        }
        at += (len + 3) & !3;
    }
    m
}
