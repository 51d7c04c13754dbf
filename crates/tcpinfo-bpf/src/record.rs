//! The iterator's binary records, mirroring the structs of `bpf/changed.bpf.c`
//! (native byte order, written with `bpf_seq_write`).
//!
//! Every record starts with `cookie: u64, kind: u8, family: u8, state: u8, pad: u8,
//! ifindex: u32` (16 bytes); `kind` gives its length.

use crate::error::BpfError;

/// `KIND_CHANGED`: a new or changed full socket, 56 bytes.
pub(crate) const KIND_CHANGED: u8 = 1;
/// `KIND_SEEN`: an unchanged socket of an `emit_all` walk, 16 bytes.
pub(crate) const KIND_SEEN: u8 = 2;
/// `KIND_MINI`: a timewait or request minisocket (not fingerprinted), 56 bytes.
pub(crate) const KIND_MINI: u8 = 3;
/// `KIND_END`: the walk's trailer with its counters, 32 bytes.
pub(crate) const KIND_END: u8 = 4;
/// `END_MAGIC`: the trailer's first word.
pub(crate) const END_MAGIC: u64 = 0x7463_7069_6665_6e64;
/// `rec_hdr.pad` bit of a changed or dirty record: see [`SocketId::sticky`].
pub(crate) const EV_STICKY: u8 = 1;
const HDR_LEN: usize = 16;
/// A `struct rec_full`: also the value of the `dirty` map.
pub(crate) const FULL_LEN: usize = 56;
const END_LEN: usize = 32;

/// A socket as an exact `inet_diag` request names it (`struct inet_diag_sockid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketId {
    /// Socket cookie (`idiag_cookie`).
    pub cookie: u64,
    /// `AF_INET` or `AF_INET6`.
    pub family: u8,
    /// TCP state as inet_diag reports it (a timewait socket's substate).
    pub state: u8,
    /// Bound device (`idiag_if`).
    pub ifindex: u32,
    /// Local port, host order (`idiag_sport` is big-endian on the wire).
    pub sport: u16,
    /// Remote port, host order.
    pub dport: u16,
    /// Local address (`idiag_src`; an IPv4 address in the first 4 bytes).
    pub src: [u8; 16],
    /// Remote address (`idiag_dst`).
    pub dst: [u8; 16],
    /// The socket has a running chrono or RTO recovery (`EV_STICKY`): its `tcp_info`
    /// (busy/limited times, `total_rto_time`) grows with the clock, without events.
    pub sticky: bool,
    /// Dirty entries: when the last event marked it (µs of `CLOCK_MONOTONIC`, low 32
    /// bits); 0 in walk records.
    pub marked_us: u32,
}

/// One record of a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// A full socket that is new or whose fingerprint changed.
    Changed(SocketId),
    /// A full socket that did not change (only in `emit_all` walks).
    Seen {
        /// Socket cookie.
        cookie: u64,
        /// `AF_INET` or `AF_INET6`.
        family: u8,
    },
    /// A timewait or request minisocket (reported on every walk: no storage).
    Mini(SocketId),
    /// A socket an event marked dirty since the last drain (event mode).
    Dirty {
        /// Its id as the event saw it (`state` then, the tuple, `sticky`).
        id: SocketId,
        /// A request or timewait minisocket (no fingerprint, no `tcp_info`).
        mini: bool,
    },
    /// The end of the walk: sockets walked (after the state and family masks) and
    /// records emitted, as the program counted them.
    End {
        /// Sockets the program looked at.
        walked: u64,
        /// Records it wrote (changed and minisockets).
        emitted: u64,
    },
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(w)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(w)
}

/// Parses the record at the start of `b`: `Ok(None)` when `b` holds only part of it.
///
/// # Errors
/// [`BpfError::Malformed`] for an unknown kind.
pub(crate) fn parse(b: &[u8]) -> Result<Option<(Entry, usize)>, BpfError> {
    if b.len() < HDR_LEN {
        return Ok(None);
    }
    let kind = b[8];
    let need = match kind {
        KIND_CHANGED | KIND_MINI => FULL_LEN,
        KIND_SEEN => HDR_LEN,
        KIND_END => END_LEN,
        k => return Err(BpfError::Malformed(format!("unknown record kind {k}"))),
    };
    if b.len() < need {
        return Ok(None);
    }
    let cookie = u64_at(b, 0);
    let family = b[9];
    let entry = match kind {
        KIND_SEEN => Entry::Seen { cookie, family },
        KIND_END => {
            if cookie != END_MAGIC {
                return Err(BpfError::Malformed("trailer without its magic".into()));
            }
            Entry::End {
                walked: u64_at(b, 16),
                emitted: u64_at(b, 24),
            }
        }
        _ => {
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&b[24..40]);
            dst.copy_from_slice(&b[40..56]);
            let id = SocketId {
                cookie,
                family,
                state: b[10],
                ifindex: u32_at(b, 12),
                sport: u16::from_be_bytes([b[16], b[17]]),
                dport: u16::from_be_bytes([b[18], b[19]]),
                src,
                dst,
                sticky: b[11] & EV_STICKY != 0,
                marked_us: u32_at(b, 20),
            };
            if kind == KIND_MINI {
                Entry::Mini(id)
            } else {
                Entry::Changed(id)
            }
        }
    };
    Ok(Some((entry, need)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rustfmt::skip]
    fn changed() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&0x1122_3344_5566_7788u64.to_ne_bytes()); // cookie
        b.extend_from_slice(&[KIND_CHANGED, 2, 1, 0]);                 // kind, family, state, pad
        b.extend_from_slice(&7u32.to_ne_bytes());                       // ifindex
        b.extend_from_slice(&[0x1f, 0x90, 0xc3, 0x50, 0, 0, 0, 0]);     // sport 8080, dport 50000, pad
        b.extend_from_slice(&[127, 0, 0, 1]); b.extend_from_slice(&[0; 12]);
        b.extend_from_slice(&[10, 0, 0, 2]); b.extend_from_slice(&[0; 12]);
        b
    }

    #[test]
    fn a_changed_record_parses_to_its_socket_id() {
        let (e, n) = parse(&changed()).unwrap().unwrap();
        assert_eq!(n, 56);
        let Entry::Changed(id) = e else {
            panic!("{e:?}")
        };
        assert_eq!(
            (id.cookie, id.family, id.state, id.ifindex),
            (0x1122_3344_5566_7788, 2, 1, 7)
        );
        assert_eq!((id.sport, id.dport), (8080, 50000));
        assert_eq!(&id.src[..4], &[127, 0, 0, 1]);
        assert_eq!(&id.dst[..4], &[10, 0, 0, 2]);
    }

    /// A record cut anywhere is "need more", never an error or a panic.
    #[test]
    fn every_truncation_asks_for_more() {
        let b = changed();
        for n in 0..b.len() {
            assert!(parse(&b[..n]).unwrap().is_none(), "{n}");
        }
    }

    #[test]
    fn unknown_kinds_and_a_trailer_without_magic_are_malformed() {
        let mut b = changed();
        b[8] = 99;
        assert!(matches!(parse(&b), Err(BpfError::Malformed(_))));
        let mut end = vec![0u8; 32];
        end[8] = KIND_END;
        assert!(matches!(parse(&end), Err(BpfError::Malformed(_))));
        end[..8].copy_from_slice(&END_MAGIC.to_ne_bytes());
        end[16..24].copy_from_slice(&5u64.to_ne_bytes());
        assert_eq!(
            parse(&end).unwrap().unwrap().0,
            Entry::End {
                walked: 5,
                emitted: 0
            }
        );
    }
}
