//! Exact `inet_diag` requests: one socket's record by its full `inet_diag_sockid`
//! (addresses, ports, interface and cookie), a hash lookup in the kernel instead of a
//! walk (`inet_diag_find_one_icsk`). Used by the BPF poll mode to fetch the records of
//! the sockets its iterator reported changed, so that they are byte-identical to what a
//! dump returns (the same `inet_sk_diag_fill`).
//!
//! Many requests go in one `sendmsg`; the kernel answers them synchronously inside that
//! call (netlink kernel input runs in the sender's context), so once `sendmsg` returns
//! every reply is queued (or was dropped when the receive buffer was full) and is
//! drained without blocking with `recvmmsg`. Each request gets exactly one reply: the
//! socket's `SOCK_DIAG_BY_FAMILY` message or an `NLMSG_ERROR` (`ENOENT`: it closed).

use std::os::fd::AsRawFd;

use netlink_sys::{Socket, SocketAddr};

use super::{set_rcvbuf, NETLINK_SOCK_DIAG};
use crate::error::{Error, Result};
use crate::parse::diag_msg::INET_DIAG_MSG_LEN;
use crate::parse::nlmsg::{NlMsgIter, NLMSG_ERROR, SOCK_DIAG_BY_FAMILY};

/// `nlmsghdr` + `struct inet_diag_req_v2`.
const REQ_LEN: usize = 16 + 56;
/// Length of `struct inet_diag_sockid`.
pub(crate) const SOCKID_LEN: usize = 48;
/// Requests per `sendmsg`, at most: their replies (~2.3 KiB of receive buffer each,
/// counting the skb) must fit the socket's receive buffer.
const MAX_BATCH: usize = 512;
/// Kernel receive buffer asked for (`SO_RCVBUFFORCE` when privileged).
const EXACT_RCVBUF_BYTES: usize = 4 << 20;
/// Receive-buffer bytes reserved per request when sizing a batch.
const RCVBUF_PER_REPLY: usize = 4096;
/// `recvmmsg` slots and their size: a reply is one datagram of ~0.5–1.5 KiB.
const SLOTS: usize = 64;
/// See [`SLOTS`].
const SLOT_BYTES: usize = 8192;
/// `IPPROTO_TCP`.
const IPPROTO_TCP: u8 = 6;
/// `NLM_F_REQUEST`, without `NLM_F_DUMP`: an exact request.
const NLM_F_REQUEST: u16 = 1;

/// One socket to fetch: its family and `inet_diag_sockid` bytes (ports and addresses in
/// network order, interface and cookie in host order, as in `inet_diag_msg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactId {
    /// `AF_INET` or `AF_INET6`.
    pub family: u8,
    /// The TCP state the caller saw (for filtering before the fetch).
    pub state: u8,
    /// `struct inet_diag_sockid`.
    pub id: [u8; SOCKID_LEN],
}

impl ExactId {
    /// Builds the id from its parts (ports in host order).
    #[expect(
        clippy::too_many_arguments,
        reason = "the fields of inet_diag_sockid, named at the one call site"
    )]
    pub fn new(
        family: u8,
        state: u8,
        sport: u16,
        dport: u16,
        src: &[u8; 16],
        dst: &[u8; 16],
        ifindex: u32,
        cookie: u64,
    ) -> Self {
        let mut id = [0u8; SOCKID_LEN];
        id[0..2].copy_from_slice(&sport.to_be_bytes());
        id[2..4].copy_from_slice(&dport.to_be_bytes());
        id[4..20].copy_from_slice(src);
        id[20..36].copy_from_slice(dst);
        id[36..40].copy_from_slice(&ifindex.to_ne_bytes());
        // idiag_cookie[0] is the low half.
        let halves = cookie.to_ne_bytes();
        let (lo, hi) = if cfg!(target_endian = "little") {
            (&halves[0..4], &halves[4..8])
        } else {
            (&halves[4..8], &halves[0..4])
        };
        id[40..44].copy_from_slice(lo);
        id[44..48].copy_from_slice(hi);
        Self { family, state, id }
    }

    /// A 72-byte `inet_diag_msg` with this id, family and state and zeros elsewhere, for
    /// running the filter before fetching.
    pub fn as_msg(&self) -> [u8; INET_DIAG_MSG_LEN] {
        let mut m = [0u8; INET_DIAG_MSG_LEN];
        m[0] = self.family;
        m[1] = self.state;
        m[4..4 + SOCKID_LEN].copy_from_slice(&self.id);
        m
    }
}

/// Counters of one fetch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FetchStats {
    /// Requests sent.
    pub requests: u32,
    /// Records received.
    pub records: u32,
    /// Sockets that were gone (`ENOENT`) or replaced (`ESTALE`: another socket has the
    /// address now, or a `SO_REUSEPORT` listener the lookup cannot single out).
    pub gone: u32,
    /// Other error replies.
    pub errors: u32,
    /// Requests without a reply (the receive buffer overflowed): to be retried.
    pub unanswered: u32,
    /// `sendmsg` + `recvmmsg` calls.
    pub syscalls: u32,
    /// Bytes received.
    pub bytes: u64,
}

/// A `NETLINK_SOCK_DIAG` socket for exact requests.
pub struct ExactSocket {
    sock: Socket,
    req: Vec<u8>,
    slots: Vec<u8>,
    /// Datagram lengths of the last `recvmmsg`, per slot.
    lens: Vec<usize>,
    seq: u32,
    batch: usize,
}

impl ExactSocket {
    /// Opens the socket and sizes its batches to its receive buffer.
    ///
    /// # Errors
    /// [`Error::Socket`] when the socket cannot be created or configured.
    pub fn open() -> Result<Self> {
        let mut sock = Socket::new(NETLINK_SOCK_DIAG).map_err(|e| Error::socket("socket", e))?;
        sock.bind_auto().map_err(|e| Error::socket("bind", e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| Error::socket("connect", e))?;
        set_rcvbuf(&sock, EXACT_RCVBUF_BYTES)?;
        let rcvbuf = sock.get_rx_buf_sz().unwrap_or(0);
        let batch = (rcvbuf / RCVBUF_PER_REPLY).clamp(8, MAX_BATCH);
        Ok(Self {
            sock,
            req: Vec::with_capacity(batch * REQ_LEN),
            slots: vec![0; SLOTS * SLOT_BYTES],
            lens: vec![0; SLOTS],
            seq: 0,
            batch,
        })
    }

    /// Fetches `ids` with attributes `ext`, calling `on_reply` with each record's payload.
    /// Ids whose request got no reply (receive buffer overflow) are pushed to `retry`.
    ///
    /// # Errors
    /// [`Error::Socket`] when `sendmsg` or `recvmmsg` fails; the replies received before
    /// stand, the rest of `ids` is pushed to `retry`.
    pub fn fetch(
        &mut self,
        ids: &[ExactId],
        ext: u8,
        stats: &mut FetchStats,
        retry: &mut Vec<ExactId>,
        mut on_reply: impl FnMut(&[u8]),
    ) -> Result<()> {
        for (k, chunk) in ids.chunks(self.batch).enumerate() {
            if let Err(e) = self.fetch_batch(chunk, ext, stats, retry, &mut on_reply) {
                retry.extend_from_slice(&ids[(k + 1) * self.batch.min(ids.len())..]);
                return Err(e);
            }
        }
        Ok(())
    }

    fn fetch_batch(
        &mut self,
        ids: &[ExactId],
        ext: u8,
        stats: &mut FetchStats,
        retry: &mut Vec<ExactId>,
        on_reply: &mut impl FnMut(&[u8]),
    ) -> Result<()> {
        let first = self.seq.wrapping_add(1);
        self.req.clear();
        for id in ids {
            self.seq = self.seq.wrapping_add(1);
            push_request(&mut self.req, id, ext, self.seq);
        }
        stats.requests += u32::try_from(ids.len()).unwrap_or(u32::MAX);
        // SAFETY: `req` is a live buffer of `req.len()` bytes for the whole call.
        let sent = unsafe {
            libc::send(
                self.sock.as_raw_fd(),
                self.req.as_ptr().cast(),
                self.req.len(),
                0,
            )
        };
        stats.syscalls += 1;
        if sent < 0 {
            retry.extend_from_slice(ids);
            return Err(Error::socket(
                "send exact requests",
                std::io::Error::last_os_error(),
            ));
        }
        let mut answered = vec![false; ids.len()];
        let mut result = Ok(());
        loop {
            match self.recv_some(stats) {
                Ok(0) => break,
                Ok(n) => {
                    for i in 0..n {
                        let (slot, len) = self.slot(i);
                        for msg in NlMsgIter::new(&slot[..len]).flatten() {
                            let k = msg.seq.wrapping_sub(first) as usize;
                            if k >= ids.len() {
                                continue; // a late reply of an earlier batch
                            }
                            answered[k] = true;
                            match msg.msg_type {
                                SOCK_DIAG_BY_FAMILY => {
                                    stats.records += 1;
                                    on_reply(msg.payload);
                                }
                                NLMSG_ERROR => {
                                    let errno = crate::parse::read_u32(msg.payload, 0)
                                        .map_or(0, |v| -i32::from_ne_bytes(v.to_ne_bytes()));
                                    if errno == libc::ENOENT || errno == libc::ESTALE {
                                        stats.gone += 1;
                                    } else {
                                        stats.errors += 1;
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        for (id, ok) in ids.iter().zip(answered) {
            if !ok {
                stats.unanswered += 1;
                retry.push(*id);
            }
        }
        result
    }

    /// Receives the queued replies into the slots without blocking; returns how many
    /// datagrams arrived (0: the queue is empty). An overrun (`ENOBUFS`) is skipped: the
    /// requests whose replies were dropped stay unanswered.
    fn recv_some(&mut self, stats: &mut FetchStats) -> Result<usize> {
        // SAFETY: all-zero `iovec`/`mmsghdr` are valid (null pointers, zero lengths).
        let mut iov: [libc::iovec; SLOTS] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; SLOTS] = unsafe { std::mem::zeroed() };
        let base = self.slots.as_mut_ptr();
        for (i, (v, h)) in iov.iter_mut().zip(hdrs.iter_mut()).enumerate() {
            // SAFETY: slot `i` lies inside `slots` (SLOTS × SLOT_BYTES bytes).
            v.iov_base = unsafe { base.add(i * SLOT_BYTES) }.cast();
            v.iov_len = SLOT_BYTES;
            h.msg_hdr.msg_iov = v;
            h.msg_hdr.msg_iovlen = 1;
        }
        loop {
            // SAFETY: `hdrs` points at `SLOTS` live iovecs over `slots`, all of which
            // outlive the call; no timeout pointer.
            let n = unsafe {
                libc::recvmmsg(
                    self.sock.as_raw_fd(),
                    hdrs.as_mut_ptr(),
                    libc::c_uint::try_from(SLOTS).unwrap_or(libc::c_uint::MAX),
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            stats.syscalls += 1;
            if n >= 0 {
                #[expect(clippy::cast_sign_loss, reason = "n >= 0 checked above")]
                let n = n as usize;
                for (len, h) in self.lens.iter_mut().zip(&hdrs[..n]) {
                    *len = h.msg_len as usize;
                    stats.bytes += u64::from(h.msg_len);
                }
                return Ok(n);
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR | libc::ENOBUFS) => {}
                Some(libc::EAGAIN) => return Ok(0),
                _ => return Err(Error::socket("recv exact replies", err)),
            }
        }
    }

    /// Slot `i` of the last `recvmmsg` and its datagram length.
    fn slot(&self, i: usize) -> (&[u8], usize) {
        let s = &self.slots[i * SLOT_BYTES..(i + 1) * SLOT_BYTES];
        let len = self.lens[i].min(SLOT_BYTES);
        (s, len)
    }
}

/// Appends one exact `SOCK_DIAG_BY_FAMILY` request for `id`.
fn push_request(buf: &mut Vec<u8>, id: &ExactId, ext: u8, seq: u32) {
    let at = buf.len();
    buf.resize(at + REQ_LEN, 0);
    let b = &mut buf[at..];
    b[0..4].copy_from_slice(&u32::try_from(REQ_LEN).unwrap_or(u32::MAX).to_ne_bytes());
    b[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    b[8..12].copy_from_slice(&seq.to_ne_bytes());
    // inet_diag_req_v2: family, protocol, ext, pad, states, id
    b[16] = id.family;
    b[17] = IPPROTO_TCP;
    b[18] = ext;
    b[20..24].copy_from_slice(&u32::MAX.to_ne_bytes());
    b[24..24 + SOCKID_LEN].copy_from_slice(&id.id);
}
