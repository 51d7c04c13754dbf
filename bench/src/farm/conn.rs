//! One farm connection: a client socket and the server socket that accepted it, plus the
//! `getsockopt` reads used for the churn log.

use std::io;
use std::mem::size_of;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::sys::cvt;

/// `TCP_CLOSE` from the kernel's `tcp_states.h`: where both ends land after a FIN exchange.
pub const TCP_CLOSE: u8 = 7;
/// Offset of `tcpi_bytes_acked` (u64, Linux 4.1+) in `struct tcp_info`.
const TCPI_BYTES_ACKED: usize = 120;
/// Offset of `tcpi_bytes_received` (u64, Linux 4.1+) in `struct tcp_info`.
const TCPI_BYTES_RECEIVED: usize = 128;
/// Bigger than any `struct tcp_info` so far (280 bytes in Linux 7.0).
const TCP_INFO_BUF: usize = 512;

/// Source address of the client socket number `serial` of worker `worker`:
/// `net.(worker % 254 + 1).(serial / 250 % 256).(serial % 250 + 1)` (`net` is 127 by default).
///
/// Each address carries few connections, so ephemeral ports never run out and a dump shows many
/// distinct peers.
pub fn client_ip(net: u8, worker: u32, serial: u64) -> Ipv4Addr {
    let b = |v: u64| u8::try_from(v).unwrap_or(u8::MAX);
    Ipv4Addr::new(
        net,
        b(u64::from(worker % 254) + 1),
        b(serial / 250 % 256),
        b(serial % 250 + 1),
    )
}

/// Both ends of one loopback connection, non-blocking and with `TCP_NODELAY`.
#[derive(Debug)]
pub struct Pair {
    /// The connecting end.
    pub client: TcpStream,
    /// The accepted end.
    pub server: TcpStream,
    /// Local address of `client` (remote address of `server`).
    pub client_addr: SocketAddrV4,
    /// Local address of `server` (remote address of `client`).
    pub server_addr: SocketAddrV4,
}

impl Pair {
    /// Connects from `src` to `listener` (at `server_addr`) and accepts the connection.
    ///
    /// Blocking connect then accept, one at a time: the accept queue then never holds more than
    /// one connection, so the listen backlog cannot overflow, and loopback connects take a few
    /// microseconds.
    ///
    /// # Errors
    /// Any socket call fails, or the accepted peer is not the client just connected.
    pub fn open(
        listener: &TcpListener,
        server_addr: SocketAddrV4,
        src: Ipv4Addr,
    ) -> io::Result<Self> {
        let client = connect_from(src, server_addr)?;
        let SocketAddr::V4(client_addr) = client.local_addr()? else {
            return Err(io::Error::other("client socket is not IPv4"));
        };
        let (server, peer) = listener.accept()?;
        if peer != SocketAddr::V4(client_addr) {
            return Err(io::Error::other(format!(
                "accepted {peer}, expected {client_addr}"
            )));
        }
        for end in [&client, &server] {
            // NODELAY: each change is a small write that must leave at once, not wait for an ACK.
            end.set_nodelay(true)?;
            end.set_nonblocking(true)?;
        }
        Ok(Self {
            client,
            server,
            client_addr,
            server_addr,
        })
    }
}

/// `socket` + `bind(src:0)` with `IP_BIND_ADDRESS_NO_PORT` + blocking `connect(dst)`.
fn connect_from(src: Ipv4Addr, dst: SocketAddrV4) -> io::Result<TcpStream> {
    // SAFETY: plain socket(2) call.
    let fd =
        cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // Defer the port choice to connect(), which picks it per 4-tuple instead of per address.
    setsockopt_int(&sock, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, 1)?;
    let local = sockaddr_in(SocketAddrV4::new(src, 0));
    // SAFETY: `local` is a valid sockaddr_in of the given length.
    cvt(unsafe {
        libc::bind(
            fd,
            (&raw const local).cast(),
            socklen::<libc::sockaddr_in>(),
        )
    })?;
    let remote = sockaddr_in(dst);
    loop {
        // SAFETY: `remote` is a valid sockaddr_in of the given length.
        let ret = unsafe {
            libc::connect(
                fd,
                (&raw const remote).cast(),
                socklen::<libc::sockaddr_in>(),
            )
        };
        match cvt(ret) {
            Ok(_) => return Ok(TcpStream::from(sock)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("connect {src} -> {dst}: {e}"),
                ))
            }
        }
    }
}

fn sockaddr_in(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::sa_family_t::try_from(libc::AF_INET).unwrap_or_default(),
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn socklen<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(size_of::<T>()).unwrap_or(libc::socklen_t::MAX)
}

fn setsockopt_int(fd: &impl AsRawFd, level: i32, name: i32, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` is a valid c_int of the given length.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            socklen::<libc::c_int>(),
        )
    };
    cvt(ret).map(drop)
}

/// Makes `close()` reset the connection (`SO_LINGER` on with a zero timeout) instead of a FIN
/// exchange, so no `TIME_WAIT` entry is left behind.
///
/// # Errors
/// `setsockopt` fails.
pub fn reset_on_close(fd: &impl AsRawFd) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `linger` is a valid struct linger of the given length.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            socklen::<libc::linger>(),
        )
    };
    cvt(ret).map(drop)
}

/// The few `tcp_info` fields the churn log needs; `None` when the kernel's struct is too short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    /// `tcpi_state`.
    pub state: u8,
    /// `tcpi_bytes_acked`, bytes.
    pub bytes_acked: Option<u64>,
    /// `tcpi_bytes_received`, bytes.
    pub bytes_received: Option<u64>,
}

/// `getsockopt(TCP_INFO)`, decoded by the returned length.
///
/// # Errors
/// `getsockopt` fails.
pub fn tcp_info(fd: &impl AsRawFd) -> io::Result<TcpInfo> {
    let mut buf = [0u8; TCP_INFO_BUF];
    let mut len = socklen::<[u8; TCP_INFO_BUF]>();
    // SAFETY: `buf` is writable for `len` bytes and `len` is a valid socklen_t.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            buf.as_mut_ptr().cast(),
            &raw mut len,
        )
    };
    cvt(ret)?;
    let got = &buf[..usize::try_from(len).unwrap_or(0).min(TCP_INFO_BUF)];
    let u64_at = |off: usize| {
        got.get(off..off + 8)
            .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or_default()))
    };
    Ok(TcpInfo {
        state: got.first().copied().unwrap_or(0),
        bytes_acked: u64_at(TCPI_BYTES_ACKED),
        bytes_received: u64_at(TCPI_BYTES_RECEIVED),
    })
}

/// `getsockopt(SO_COOKIE)` (Linux 4.16+): the socket cookie a collector keys connections by.
///
/// # Errors
/// `getsockopt` fails.
pub fn cookie(fd: &impl AsRawFd) -> io::Result<u64> {
    let mut value = 0u64;
    let mut len = socklen::<u64>();
    // SAFETY: `value` is writable for `len` bytes.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_COOKIE,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    cvt(ret).map(|_| value)
}

/// One socket the farm closed, with what `TCP_INFO` said just before `close()`.
#[derive(Debug, Clone)]
pub struct Closed {
    /// `SO_COOKIE` of the socket.
    pub cookie: u64,
    /// `"client"` or `"server"`.
    pub side: &'static str,
    /// Local address.
    pub local: SocketAddrV4,
    /// Remote address.
    pub remote: SocketAddrV4,
    /// The `TCP_INFO` read just before `close()`.
    pub info: TcpInfo,
    /// True if both ends had reached `TCP_CLOSE` (FINs exchanged and acknowledged), so the
    /// counters can no longer move and equal what the kernel reports when it destroys the socket.
    pub settled: bool,
    /// Wall-clock time of the close, nanoseconds since the Unix epoch.
    pub closed_at_ns: u128,
}

impl Closed {
    /// One JSON object, one line.
    pub fn to_json(&self) -> String {
        let opt = |v: Option<u64>| v.map_or("null".to_owned(), |v| v.to_string());
        format!(
            "{{\"cookie\":{},\"side\":\"{}\",\"local\":\"{}\",\"remote\":\"{}\",\"state\":{},\"bytes_acked\":{},\"bytes_received\":{},\"settled\":{},\"closed_at_ns\":{}}}",
            self.cookie,
            self.side,
            self.local,
            self.remote,
            self.info.state,
            opt(self.info.bytes_acked),
            opt(self.info.bytes_received),
            self.settled,
            self.closed_at_ns,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ips_stay_in_loopback_and_differ() {
        assert_eq!(client_ip(127, 0, 0), Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(client_ip(127, 0, 250), Ipv4Addr::new(127, 1, 1, 1));
        assert_eq!(client_ip(127, 253, 249), Ipv4Addr::new(127, 254, 0, 250));
        assert!(client_ip(127, 300, u64::MAX).is_loopback());
        assert_eq!(client_ip(10, 0, 0), Ipv4Addr::new(10, 1, 0, 1));
    }

    #[test]
    fn pair_reports_counters_and_cookie() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let SocketAddr::V4(server_addr) = listener.local_addr().unwrap() else {
            panic!()
        };
        let pair = Pair::open(&listener, server_addr, client_ip(127, 0, 7)).unwrap();
        assert_eq!(pair.client_addr.ip(), &client_ip(127, 0, 7));
        let info = tcp_info(&pair.client).unwrap();
        assert_eq!(info.state, 1, "ESTABLISHED");
        assert!(info.bytes_acked.is_some());
        assert_ne!(cookie(&pair.client).unwrap(), cookie(&pair.server).unwrap());
    }
}
