//! The poller against the real kernel: real TCP connections on 127.0.0.1, no mocks.
//!
//! - A new connection is reported `Opened` by the first poll after `connect`; after sending
//!   100,000 bytes a `Changed` record shows `bytesAcked >= 100,000`; after both ends close, a
//!   `Closed` record from the destroy event carries the final `tcp_info` — and nothing more is
//!   reported for it afterwards.
//! - A connection opened, used and closed between two polls still arrives as `Closed` with
//!   `FLAG_FROM_DESTROY_EVENT | FLAG_UNSEEN` and its final counters.
//! - Without destroy events, a closed connection is reported `Closed` without payload by the
//!   second complete poll that misses it (the sweep), not by the first.
//! - An idle connection is not reported again and again (the `last_*` fields are ignored).
//! - After an active close with the peer's end still open, the FIN_WAIT2 timewait minisocket
//!   (same cookie, no `tcp_info`) does not reopen the connection closed by its destroy event.
//! - `PollerThread` delivers batches on its own thread.
//! - In every batch, the framing is consistent (kinds, flags, counters) and every record's
//!   `ArchivalRecord` line is valid JSON whose `RawIDM` is the first 72 bytes of the record's
//!   payload and whose `Attributes` are the payload's attributes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value as Json;
use tcpinfo_core::parse::diag_msg::{parse_diag, INET_DIAG_MSG_LEN};
use tcpinfo_core::parse::tcp_info::AccEcnLayout;
use tcpinfo_core::{
    decode_connection, exclusion_program, Cidr, DumpEnd, DumpSocket, DumpSpec, DumpStats, Filter,
    PollBatch, Poller, PollerConfig, PollerThread, RecordKind, Value, DEFAULT_RECV_BUFFER_BYTES,
    FLAG_FROM_DESTROY_EVENT, FLAG_HAS_RECORD, FLAG_UNSEEN,
};

/// Bytes sent over each test connection.
const PAYLOAD_BYTES: usize = 100_000;
/// Poll interval given to the pollers (tests mostly call `poll()` themselves).
const INTERVAL: Duration = Duration::from_millis(10);
/// How long a test waits for something the kernel does asynchronously.
const PATIENCE: Duration = Duration::from_secs(3);
/// Pause between manual polls while waiting.
const STEP: Duration = Duration::from_millis(5);
/// Time for loopback FIN/ACK exchanges and the destroy-event workqueue to finish.
const SETTLE: Duration = Duration::from_millis(50);

const OPENED: u8 = RecordKind::Opened as u8;
const CHANGED: u8 = RecordKind::Changed as u8;
const CLOSED: u8 = RecordKind::Closed as u8;

/// One record of a batch, decoded enough to match it to a test connection.
#[derive(Debug, Clone)]
struct Rec {
    kind: u8,
    flags: u8,
    state: u8,
    cookie: u64,
    /// `(local port, remote port)`; `None` for a record without payload.
    ports: Option<(u16, u16)>,
    bytes_acked: Option<u64>,
    bytes_received: Option<u64>,
}

fn config() -> PollerConfig {
    PollerConfig {
        interval: INTERVAL,
        ..Default::default()
    }
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    match v {
        Value::Obj(fields) => fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v),
        _ => None,
    }
}

fn u64_of(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::U32(x) => Some(u64::from(*x)),
        Value::U64(x) => Some(*x),
        _ => None,
    }
}

/// Checks one record's `ArchivalRecord` line against its payload.
fn check_line(payload: &[u8], line: &[u8]) {
    assert_eq!(line.last(), Some(&b'\n'), "a line ends with \\n");
    let json: Json = serde_json::from_slice(line)
        .unwrap_or_else(|e| panic!("invalid JSON ({e}): {}", String::from_utf8_lossy(line)));
    let ts = json["Timestamp"].as_str().expect("Timestamp");
    assert!(ts.ends_with('Z') && ts.len() >= 20, "UTC RFC 3339: {ts}");
    let idm = STANDARD
        .decode(json["RawIDM"].as_str().expect("RawIDM"))
        .expect("base64");
    assert_eq!(
        idm,
        &payload[..INET_DIAG_MSG_LEN],
        "RawIDM is the first 72 bytes of the payload"
    );
    let (_, attrs) = parse_diag(payload).expect("payload parses");
    let list = json["Attributes"].as_array().expect("Attributes array");
    assert_eq!(
        list.len(),
        attrs.max_type().map_or(1, |m| usize::from(m) + 1)
    );
    for (ty, a) in list.iter().enumerate() {
        let ours = attrs.get(u16::try_from(ty).expect("type"));
        match a.as_str() {
            Some(b64) => assert_eq!(
                Some(STANDARD.decode(b64).expect("base64").as_slice()),
                ours,
                "attribute {ty}"
            ),
            None => assert!(a.is_null() && ours.is_none(), "attribute {ty}"),
        }
    }
}

/// Decodes every record of `batch`, checking framing, counters and lines on the way.
fn records(batch: &PollBatch) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut counts = [0u32; 3];
    for r in batch {
        counts[usize::from(r.kind)] += 1;
        let has = r.flags & FLAG_HAS_RECORD != 0;
        assert_eq!(has, !r.payload.is_empty(), "FLAG_HAS_RECORD iff payload");
        assert_eq!(has, !r.line.is_empty(), "FLAG_HAS_RECORD iff line");
        let mut rec = Rec {
            kind: r.kind,
            flags: r.flags,
            state: r.state,
            cookie: r.cookie,
            ports: None,
            bytes_acked: None,
            bytes_received: None,
        };
        if has {
            check_line(r.payload, r.line);
            let (msg, _) = parse_diag(r.payload).expect("payload parses");
            assert_eq!(
                (msg.cookie(), msg.family(), msg.state()),
                (r.cookie, r.family, r.state),
                "header matches payload"
            );
            let v = decode_connection(r.payload, AccEcnLayout::running_kernel()).expect("decodes");
            let id = field(&v, "id").expect("id");
            let port = |n| u16::try_from(u64_of(field(id, n)).expect("port")).expect("u16");
            rec.ports = Some((port("srcPort"), port("dstPort")));
            let tcp = field(&v, "tcpInfo");
            rec.bytes_acked = tcp.and_then(|t| u64_of(field(t, "bytesAcked")));
            rec.bytes_received = tcp.and_then(|t| u64_of(field(t, "bytesReceived")));
        } else {
            assert_eq!(r.kind, CLOSED, "only sweep closes come without payload");
            assert_eq!(r.flags, 0);
        }
        out.push(rec);
    }
    assert_eq!(
        counts,
        [batch.opened, batch.changed, batch.closed],
        "counters match the records"
    );
    out
}

/// A connected pair on 127.0.0.1 (port chosen by the kernel) and its listener.
struct Conn {
    listener: TcpListener,
    client: TcpStream,
    server: TcpStream,
}

impl Conn {
    fn open() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        Self {
            listener,
            client,
            server,
        }
    }

    fn server_port(&self) -> u16 {
        self.listener.local_addr().expect("addr").port()
    }

    fn client_port(&self) -> u16 {
        self.client.local_addr().expect("addr").port()
    }

    /// `(local, remote)` ports of the client socket, as in its records.
    fn client_ports(&self) -> (u16, u16) {
        (self.client_port(), self.server_port())
    }

    /// `(local, remote)` ports of the accepted socket.
    fn server_ports(&self) -> (u16, u16) {
        (self.server_port(), self.client_port())
    }

    /// Sends `n` bytes client → server and reads them all on the server.
    fn transfer(&mut self, n: usize) {
        let data = vec![0x5A; n];
        let mut got = vec![0; n];
        std::thread::scope(|s| {
            let client = &mut self.client;
            s.spawn(move || client.write_all(&data).expect("write"));
            self.server.read_exact(&mut got).expect("read");
        });
        assert!(got.iter().all(|b| *b == 0x5A));
    }

    /// Closes the client first (active close), then the server; keeps the listener.
    fn close(self) -> TcpListener {
        drop(self.client);
        drop(self.server);
        self.listener
    }
}

/// Polls until `pred` finds what it wants in a batch's records (which it may also check),
/// or panics after [`PATIENCE`].
fn poll_until<T>(poller: &mut Poller, what: &str, mut pred: impl FnMut(&[Rec]) -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let batch = poller.poll();
        if let Some(t) = pred(&records(&batch)) {
            return t;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(STEP);
    }
}

fn with_ports(recs: &[Rec], ports: (u16, u16)) -> Vec<Rec> {
    recs.iter()
        .filter(|r| r.ports == Some(ports))
        .cloned()
        .collect()
}

#[test]
fn connection_lifecycle_opened_changed_closed() {
    let mut poller = Poller::new(config()).expect("poller");
    records(&poller.poll()); // Everything already open is reported now, not below.
    let mut conn = Conn::open();
    let ports = conn.client_ports();

    // The first poll after connect: Opened, ESTABLISHED, both ends and the listener.
    let batch = poller.poll();
    assert!(batch.complete, "warnings: {:?}", batch.warnings);
    let recs = records(&batch);
    let opened = with_ports(&recs, ports);
    assert_eq!(opened.len(), 1, "{recs:?}");
    assert_eq!((opened[0].kind, opened[0].state), (OPENED, 1));
    let cookie = opened[0].cookie;
    let server = with_ports(&recs, conn.server_ports());
    assert_eq!(server.len(), 1);
    assert_eq!(server[0].kind, OPENED);
    let listener = with_ports(&recs, (conn.server_port(), 0));
    assert_eq!(
        (listener.len(), listener.first().map(|r| (r.kind, r.state))),
        (1, Some((OPENED, 10)))
    );

    // After sending: Changed, with the bytes acknowledged.
    conn.transfer(PAYLOAD_BYTES);
    let acked = poll_until(
        &mut poller,
        "a Changed record with bytesAcked >= N",
        |recs| {
            let mine = with_ports(recs, ports);
            assert!(mine.len() <= 1, "one record per connection per poll");
            let r = mine.first()?;
            assert_eq!((r.kind, r.cookie), (CHANGED, cookie));
            r.bytes_acked.filter(|b| *b >= PAYLOAD_BYTES as u64)
        },
    );
    assert!(acked >= PAYLOAD_BYTES as u64);

    // After closing both ends: Closed from the destroy event, with the final tcp_info.
    let _listener = conn.close();
    // Let the FIN/ACK exchange and the destroy-event work finish, so that the first poll
    // drains the event before a sweep could close the connection without it.
    std::thread::sleep(SETTLE);
    let closed = poll_until(
        &mut poller,
        "the Closed record of the destroy event",
        |recs| {
            let mine: Vec<&Rec> = recs.iter().filter(|r| r.cookie == cookie).collect();
            // FIN_WAIT states may be seen on the way (as Changed), before the Closed.
            assert!(
                mine.iter().all(|r| r.kind == CHANGED || r.kind == CLOSED),
                "{mine:?}"
            );
            mine.into_iter().find(|r| r.kind == CLOSED).cloned()
        },
    );
    assert_eq!(closed.kind, CLOSED);
    assert_eq!(
        closed.flags,
        FLAG_HAS_RECORD | FLAG_FROM_DESTROY_EVENT,
        "seen before, so not UNSEEN"
    );
    assert_eq!(closed.ports, Some(ports));
    let final_acked = closed
        .bytes_acked
        .expect("the destroy event carries tcp_info");
    assert!(
        final_acked >= PAYLOAD_BYTES as u64,
        "final bytesAcked {final_acked}"
    );

    // Nothing more for it: the sweep must not close it a second time.
    for _ in 0..3 {
        std::thread::sleep(STEP);
        let recs = records(&poller.poll());
        assert!(
            recs.iter().all(|r| r.cookie != cookie),
            "reported again after Closed: {recs:?}"
        );
    }
}

#[test]
fn connection_between_two_polls_arrives_closed_unseen() {
    let mut poller = Poller::new(config()).expect("poller");
    records(&poller.poll());
    let mut conn = Conn::open();
    let (client, server) = (conn.client_ports(), conn.server_ports());
    conn.transfer(PAYLOAD_BYTES);
    let _listener = conn.close();
    std::thread::sleep(SETTLE);

    let mut seen = Vec::new();
    poll_until(&mut poller, "Closed records of both ends", |recs| {
        for r in recs
            .iter()
            .filter(|r| r.ports == Some(client) || r.ports == Some(server))
        {
            assert_eq!(r.kind, CLOSED, "never in a dump, so never Opened: {r:?}");
            seen.push(r.clone());
        }
        (seen.len() >= 2).then_some(())
    });
    assert_eq!(seen.len(), 2, "one Closed per socket: {seen:?}");
    for r in &seen {
        assert_eq!(
            r.flags,
            FLAG_HAS_RECORD | FLAG_FROM_DESTROY_EVENT | FLAG_UNSEEN,
            "{r:?}"
        );
    }
    let c = seen
        .iter()
        .find(|r| r.ports == Some(client))
        .expect("client end");
    let s = seen
        .iter()
        .find(|r| r.ports == Some(server))
        .expect("server end");
    assert!(
        c.bytes_acked.expect("tcp_info") >= PAYLOAD_BYTES as u64,
        "{c:?}"
    );
    assert!(
        s.bytes_received.expect("tcp_info") >= PAYLOAD_BYTES as u64,
        "{s:?}"
    );
}

#[test]
fn without_destroy_events_the_sweep_closes_after_two_complete_polls() {
    let mut poller = Poller::new(PollerConfig {
        destroy_events: false,
        // Polls here are back to back: count polls only (the time grace has its unit test).
        close_grace: Duration::ZERO,
        ..config()
    })
    .expect("poller");
    records(&poller.poll());
    let mut conn = Conn::open();
    let ports = conn.client_ports();
    let recs = records(&poller.poll());
    let cookie = with_ports(&recs, ports)
        .first()
        .map(|r| (r.kind, r.cookie))
        .expect("Opened");
    assert_eq!(cookie.0, OPENED);
    let cookie = cookie.1;
    conn.transfer(1000);
    let _listener = conn.close();
    std::thread::sleep(SETTLE); // The client is in TIME_WAIT now, which the default states exclude.

    let mut complete = 0;
    let deadline = Instant::now() + PATIENCE;
    while complete < 2 {
        assert!(Instant::now() < deadline, "no complete polls");
        let batch = poller.poll();
        let mine: Vec<Rec> = records(&batch)
            .into_iter()
            .filter(|r| r.cookie == cookie)
            .collect();
        if !batch.complete {
            assert!(
                mine.is_empty(),
                "an incomplete poll never closes anything: {mine:?}"
            );
            continue;
        }
        complete += 1;
        if complete == 1 {
            assert!(
                mine.iter().all(|r| r.kind != CLOSED),
                "closed after one missed poll: {mine:?}"
            );
        } else {
            assert_eq!(mine.len(), 1, "{mine:?}");
            assert_eq!(
                (mine[0].kind, mine[0].flags, mine[0].state),
                (CLOSED, 0, 0),
                "bare close"
            );
            assert_eq!(mine[0].ports, None, "no payload");
        }
    }
    // And only once.
    let recs = records(&poller.poll());
    assert!(recs.iter().all(|r| r.cookie != cookie));
}

#[test]
fn first_poll_reports_open_sockets_and_idle_ones_stay_quiet() {
    let conn = Conn::open();
    let mut poller = Poller::new(config()).expect("poller");
    let batch = poller.poll();
    assert_eq!(batch.seq, 1);
    assert!(
        batch.complete && batch.warnings.is_empty(),
        "{:?}",
        batch.warnings
    );
    let recs = records(&batch);
    assert!(
        recs.iter().all(|r| r.kind == OPENED || r.kind == CLOSED),
        "first poll: {recs:?}"
    );
    assert!(
        batch.sockets_seen >= batch.opened,
        "{} seen, {} opened",
        batch.sockets_seen,
        batch.opened
    );
    assert!(batch.stats.tracked >= 3 && batch.stats.messages >= 3 && batch.stats.recv_calls >= 2);
    assert_eq!(batch.stats.malformed, 0);
    let ours = with_ports(&recs, conn.client_ports());
    assert_eq!(ours.len(), 1);
    let cookie = ours[0].cookie;

    // Idle: the last_* fields tick, but they don't count as a change.
    let mut reported = 0;
    for _ in 0..10 {
        std::thread::sleep(INTERVAL);
        let batch = poller.poll();
        reported += records(&batch)
            .iter()
            .filter(|r| r.cookie == cookie)
            .count();
    }
    assert!(
        reported <= 1,
        "an idle connection was reported {reported} times in 10 polls"
    );
    drop(conn);
}

#[test]
fn poller_thread_delivers_batches() {
    let (mut thread, mut rx) = PollerThread::spawn(config()).expect("spawn");
    let conn = Conn::open();
    let ports = conn.client_ports();
    let deadline = Instant::now() + PATIENCE;
    let mut last_seq = 0;
    let found = loop {
        assert!(
            Instant::now() < deadline,
            "no Opened record from the thread"
        );
        let batch = rx.blocking_recv().expect("no error").expect("thread alive");
        assert!(batch.seq > last_seq, "sequence numbers increase");
        last_seq = batch.seq;
        if let Some(r) = with_ports(&records(&batch), ports).first().cloned() {
            break r;
        }
    };
    assert_eq!(found.kind, OPENED);
    thread.stop();
    // The sender is gone once the thread has stopped: the queue drains, then ends.
    while let Ok(Some(_)) = rx.blocking_recv() {}
    drop(conn);
}

/// Regression: an active close while the peer keeps its end open leaves a FIN_WAIT2
/// *timewait minisocket* with the same cookie (no `tcp_info`, dumped because the default
/// states include FIN_WAIT2). After the destroy event of the full socket has closed the
/// connection, that minisocket must not open it a second time under the same UUID.
#[test]
fn half_closed_connection_is_not_reopened_by_its_timewait_socket() {
    let mut poller = Poller::new(config()).expect("poller");
    records(&poller.poll());
    let conn = Conn::open();
    let ports = conn.client_ports();
    let recs = records(&poller.poll());
    let cookie = with_ports(&recs, ports)
        .first()
        .map(|r| r.cookie)
        .expect("Opened");

    let Conn {
        listener,
        client,
        server,
    } = conn;
    drop(client); // FIN_WAIT1 → FIN_WAIT2: the full socket is replaced by a minisocket.
    std::thread::sleep(SETTLE);
    poll_until(
        &mut poller,
        "the Closed record of the destroy event",
        |recs| {
            recs.iter()
                .find(|r| r.cookie == cookie && r.kind == CLOSED)
                .map(|r| assert_eq!(r.flags & FLAG_FROM_DESTROY_EVENT, FLAG_FROM_DESTROY_EVENT))
        },
    );
    for _ in 0..5 {
        std::thread::sleep(STEP);
        let recs = records(&poller.poll());
        let again: Vec<&Rec> = recs.iter().filter(|r| r.cookie == cookie).collect();
        assert!(
            again.is_empty(),
            "reported after its Closed record: {again:?}"
        );
    }
    // The peer closes too: the minisocket moves to TIME_WAIT and leaves the dumps, silently.
    drop(server);
    std::thread::sleep(SETTLE);
    for _ in 0..3 {
        let recs = records(&poller.poll());
        assert!(recs.iter().all(|r| r.cookie != cookie), "{recs:?}");
        std::thread::sleep(STEP);
    }
    drop(listener);
}

/// A consumer that does not keep up makes the thread skip polls (counted, folded into the
/// next poll), not queue batches without bound: the byte budget holds after one batch.
#[test]
fn a_slow_consumer_makes_the_thread_skip_polls_instead_of_queueing() {
    let _conn = Conn::open(); // at least one socket, so the first batch has records
    let (mut thread, mut rx) = PollerThread::spawn(PollerConfig {
        interval: Duration::from_millis(2),
        max_queued_bytes: 1,
        ..config()
    })
    .expect("thread");
    std::thread::sleep(Duration::from_millis(150));
    let first = rx.blocking_recv().expect("no error").expect("first batch");
    assert!(
        !first.records.is_empty(),
        "the first poll reports every socket as opened"
    );
    assert_eq!(
        rx.queued_bytes(),
        0,
        "nothing else was queued while the first batch waited"
    );
    let second = rx.blocking_recv().expect("no error").expect("second batch");
    assert_eq!(
        second.seq,
        first.seq + 1,
        "skipped polls do not consume sequence numbers"
    );
    assert!(
        second.stats.skipped_polls >= 10,
        "about 75 ticks passed: {:?}",
        second.stats
    );
    thread.stop();
}

/// A consumer that gives its batches back gets the same memory in later polls: the
/// steady state allocates nothing (the napi binding recycles from the Buffer finalizer).
#[test]
fn records_buffers_given_back_are_reused_by_later_polls() {
    let _conn = Conn::open(); // at least one socket, so the first batch has records
    let mut poller = Poller::new(config()).expect("poller");
    let pool = poller.records_pool();
    let first = poller.poll();
    assert!(!first.records.is_empty());
    assert_eq!(first.stats.reused_buffers, 0, "nothing to reuse yet");
    let ptrs = [
        first.records.index.as_ptr(),
        first.records.payloads.as_ptr(),
        first.records.lines.as_ptr(),
    ];
    pool.recycle_records(first.records);
    assert_eq!(pool.len(), 3);
    // Every given-back buffer fits the next poll (it held at least what that poll asks for).
    let second = poller.poll();
    assert_eq!(second.stats.reused_buffers, 3, "{:?}", second.stats);
    let again = [
        second.records.index.as_ptr(),
        second.records.payloads.as_ptr(),
        second.records.lines.as_ptr(),
    ];
    assert!(
        again.iter().all(|p| ptrs.contains(p)),
        "the same allocations came back"
    );
    // Without giving back, nothing is reused.
    drop(second);
    while !pool.is_empty() {
        drop(pool.take(0));
    }
    assert_eq!(poller.poll().stats.reused_buffers, 0);
}

/// Local ports of the sockets one dump returns, filtered in the kernel by `bytecode`.
fn dumped_ports(bytecode: &[u8], family: u8) -> Vec<u16> {
    let mut sock = DumpSocket::open(DEFAULT_RECV_BUFFER_BYTES).expect("socket");
    let spec = DumpSpec {
        family,
        states: 0xFFF,
        ext: 0,
    };
    let mut ports = Vec::new();
    let mut stats = DumpStats::default();
    let end = sock
        .dump(spec, bytecode, &mut stats, |payload| {
            ports.push(parse_diag(payload).expect("parse").0.sport());
        })
        .expect("the kernel accepts the program");
    assert_eq!(end, DumpEnd::Done);
    ports
}

/// The filter program runs in the kernel: excluded sockets are not in the dump at all
/// (not just dropped by the user-space filter), and the rest are.
#[test]
fn excluded_sockets_are_filtered_out_by_the_kernel() {
    let conn = Conn::open();
    let (server, client) = (conn.server_port(), conn.client_port());
    let ports = |f: &Filter| dumped_ports(&exclusion_program(f).expect("a program"), 0);

    let unfiltered = dumped_ports(&[], 0);
    assert!(unfiltered.contains(&server) && unfiltered.contains(&client));

    let by_port = ports(&Filter {
        exclude_src_ports: vec![server, 1, 2],
        ..Filter::default()
    });
    assert!(
        !by_port.contains(&server),
        "listener and accepted socket excluded by port"
    );
    assert!(by_port.contains(&client), "the client side is not");

    let by_dst = ports(&Filter {
        exclude_dst: vec![Cidr::parse("127.0.0.0/8").expect("cidr")],
        ..Filter::default()
    });
    assert!(!by_dst.contains(&client), "peer 127.0.0.1 excluded");
    assert!(
        by_dst.contains(&server),
        "the listener (peer 0.0.0.0) stays"
    );

    let local = ports(&Filter {
        exclude_local: true,
        ..Filter::default()
    });
    assert!(
        !local.contains(&server) && !local.contains(&client),
        "loopback connections and listeners are local"
    );
    // AF_INET6 dumps carry v4-mapped sockets; the AF_INET conditions match them too.
    let local_only = Filter {
        exclude_local: true,
        ..Filter::default()
    };
    let v6 = dumped_ports(&exclusion_program(&local_only).expect("a program"), 10);
    assert!(v6.iter().all(|p| *p != server && *p != client));
}

/// A poller with every exclusion pushed down dumps without a warning, and reports the same
/// sockets as one that filters in user space only.
#[test]
fn kernel_filtered_poller_reports_what_user_space_filtering_reports() {
    let conn = Conn::open();
    let filter = Filter {
        exclude_src_ports: vec![conn.server_port()],
        exclude_dst: vec![Cidr::parse("192.0.2.0/24").expect("cidr")],
        ..Filter::default()
    };
    let cfg = |kernel_filter| PollerConfig {
        filter: filter.clone(),
        kernel_filter,
        ..config()
    };
    let mut pushed = Poller::new(cfg(true)).expect("poller");
    let mut user = Poller::new(cfg(false)).expect("poller");
    let a = pushed.poll();
    let b = user.poll();
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    let mine = |batch: &PollBatch| {
        let mut v: Vec<(u16, u16)> = records(batch)
            .into_iter()
            .filter_map(|r| r.ports)
            .filter(|p| [conn.client_port(), conn.server_port()].contains(&p.0))
            .collect();
        v.sort_unstable();
        v
    };
    assert_eq!(
        mine(&a),
        vec![conn.client_ports()],
        "only the client side is reported"
    );
    assert_eq!(mine(&a), mine(&b));
}
