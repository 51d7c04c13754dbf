//! Bad input never panics and loses no other data (STYLE practice 10, M-Lab `TestParseGarbage`).
//!
//! - Every `testdata.zst` message cut at every length: `parse_diag`/`decode_connection` never
//!   panic, are `Err` below the 72-byte `inet_diag_msg`, and otherwise give `Err` or a subset of
//!   the attributes (each identical to the untruncated one).
//! - `NlMsgIter` over the testdata stream cut at every length, over 10,000 pseudo-random buffers
//!   (xorshift, fixed seed) and over randomly mutated real messages: no panic, it terminates, it
//!   yields every complete message before the damage and at most one `Err`, last.
//! - A datagram whose middle message has a corrupt rtattr length (intact `nlmsg_len`) still
//!   yields three messages and only the middle one fails to parse; an `nlmsg_len` past the end
//!   (or below the header size) yields the earlier messages, one `Err`, and ends.
//! - `RecordIter` over truncated and random batch buffers never panics and terminates.

use std::path::Path;

use tcpinfo_core::parse::attrs::Attrs;
use tcpinfo_core::parse::diag_msg::{parse_diag, INET_DIAG_MSG_LEN};
use tcpinfo_core::parse::nlmsg::{NlMsgIter, NLMSG_HDR_LEN};
use tcpinfo_core::parse::tcp_info::AccEcnLayout;
use tcpinfo_core::{
    decode_connection, write_record_line, ChangeRule, Fingerprinter, RecordIter, GO_ZERO_TIME,
    INDEX_ENTRY_LEN,
};

/// Pseudo-random buffers fed to the parsers.
const RANDOM_BUFFERS: usize = 10_000;
/// Largest pseudo-random buffer, bytes.
const MAX_RANDOM_LEN: usize = 2048;
/// Fixed seed: failures reproduce.
const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// Marsaglia's xorshift64: enough randomness for garbage, no `rand` crate.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).expect("fits")
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let r = self.next().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
}

fn testdata() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mlab/testdata.zst");
    zstd::decode_all(std::fs::File::open(path).expect("testdata.zst")).expect("zstd")
}

/// `(start, nlmsg_len)` of each message of a well-formed stream.
fn message_spans(stream: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut off = 0;
    while off < stream.len() {
        let len = u32::from_ne_bytes(stream[off..off + 4].try_into().expect("4 bytes")) as usize;
        spans.push((off, len));
        off = (off + len).next_multiple_of(4);
    }
    spans
}

/// Runs everything a poll does with one payload short of the socket: parse, decode,
/// fingerprint and encode. Must never panic, whatever the bytes.
fn exercise_payload(payload: &[u8], fp: &Fingerprinter) {
    for layout in [AccEcnLayout::U16Pair, AccEcnLayout::Bitfield] {
        let decoded = decode_connection(payload, layout);
        assert_eq!(decoded.is_ok(), parse_diag(payload).is_ok());
    }
    assert_eq!(fp.fingerprint(payload).is_ok(), parse_diag(payload).is_ok());
    if let Ok((msg, attrs)) = parse_diag(payload) {
        let mut line = Vec::new();
        write_record_line(&mut line, GO_ZERO_TIME, &msg, &attrs);
        assert_eq!(line.last(), Some(&b'\n'));
        assert!(
            !line[..line.len() - 1].contains(&b'\n'),
            "one line per record"
        );
        attrs
            .iter()
            .for_each(|(ty, p)| assert_eq!(attrs.get(ty), Some(p)));
    }
}

/// Iterates `buf` to the end, checking the iterator's contract; returns (oks, errs).
fn drain_iter(buf: &[u8], fp: &Fingerprinter) -> (usize, usize) {
    let (mut oks, mut errs) = (0, 0);
    let bound = buf.len() / NLMSG_HDR_LEN + 1;
    for item in NlMsgIter::new(buf) {
        assert_eq!(errs, 0, "nothing after an Err");
        match item {
            Ok(m) => {
                oks += 1;
                exercise_payload(m.payload, fp);
            }
            Err(e) => {
                assert_eq!(e.code(), "ERR_MALFORMED");
                errs += 1;
            }
        }
        assert!(
            oks + errs <= bound,
            "more items than a {}-byte buffer can hold",
            buf.len()
        );
    }
    (oks, errs)
}

#[test]
fn truncated_payloads_never_panic() {
    let stream = testdata();
    let fp = Fingerprinter::new(&ChangeRule::default()).expect("default rule");
    for (i, msg) in NlMsgIter::new(&stream).enumerate() {
        let payload = msg.expect("testdata is well formed").payload;
        let (_, full) = parse_diag(payload).expect("full message parses");
        let full: Vec<(u16, &[u8])> = full.iter().collect();
        for cut in 0..payload.len() {
            let short = &payload[..cut];
            let parsed = parse_diag(short);
            let decoded = decode_connection(short, AccEcnLayout::U16Pair);
            if cut < INET_DIAG_MSG_LEN {
                let err = parsed
                    .err()
                    .unwrap_or_else(|| panic!("message {i} cut at {cut}: Ok below 72 bytes"));
                assert_eq!(err.code(), "ERR_MALFORMED");
                assert!(decoded.is_err());
                continue;
            }
            assert_eq!(parsed.is_ok(), decoded.is_ok(), "message {i} cut at {cut}");
            if let Ok((msg, attrs)) = parsed {
                assert_eq!(msg.bytes(), &payload[..INET_DIAG_MSG_LEN]);
                let got: Vec<(u16, &[u8])> = attrs.iter().collect();
                // Never more attributes than uncut (as many only when the cut is in the
                // final padding), and those that survive are byte-identical.
                assert!(got.len() <= full.len(), "message {i} cut at {cut}");
                for a in &got {
                    assert!(
                        full.contains(a),
                        "message {i} cut at {cut}: attribute {} altered",
                        a.0
                    );
                }
                exercise_payload(short, &fp);
            }
        }
    }
}

#[test]
fn truncated_attribute_lists() {
    let stream = testdata();
    let payload = NlMsgIter::new(&stream)
        .next()
        .expect("one")
        .expect("ok")
        .payload;
    // The first message: attributes at 72 (SHUTDOWN, 5 B), 80 (TOS), 88 (TCLASS), 96 (MEMINFO, 20 B) …
    let ends: Vec<usize> = {
        let mut off = INET_DIAG_MSG_LEN;
        let mut ends = vec![off];
        while off < payload.len() {
            let len = usize::from(u16::from_ne_bytes([payload[off], payload[off + 1]]));
            off += len.next_multiple_of(4);
            ends.push(off.min(payload.len()));
        }
        ends
    };
    // Cut at an attribute boundary: Ok with exactly the attributes before it.
    for (n, &end) in ends.iter().enumerate() {
        let attrs = Attrs::parse(&payload[..end], INET_DIAG_MSG_LEN).expect("boundary cut parses");
        assert_eq!(attrs.iter().count(), n, "cut at {end}");
    }
    // Cut inside an attribute's payload: Err, never a short attribute.
    for w in ends.windows(2) {
        for cut in w[0] + 4..w[1] {
            let unpadded_end =
                w[0] + usize::from(u16::from_ne_bytes([payload[w[0]], payload[w[0] + 1]]));
            if cut < unpadded_end {
                assert!(
                    Attrs::parse(&payload[..cut], INET_DIAG_MSG_LEN).is_err(),
                    "cut at {cut}"
                );
            }
        }
    }
}

#[test]
fn truncated_streams_terminate() {
    let stream = testdata();
    let spans = message_spans(&stream);
    assert_eq!(spans.len(), 420);
    let fp = Fingerprinter::new(&ChangeRule::default()).expect("default rule");
    for cut in 0..=stream.len() {
        let buf = &stream[..cut];
        let complete = spans.iter().filter(|(s, l)| s + l <= cut).count();
        let inside = spans.iter().any(|(s, l)| *s < cut && cut < s + l);
        let (mut oks, mut errs) = (0, 0);
        for item in NlMsgIter::new(buf) {
            assert_eq!(errs, 0, "cut {cut}: an item after the Err");
            match item {
                Ok(_) => oks += 1,
                Err(_) => errs += 1,
            }
        }
        assert_eq!(
            oks, complete,
            "cut {cut}: every complete message before the cut"
        );
        assert_eq!(
            errs,
            usize::from(inside),
            "cut {cut}: one Err exactly when a message is cut"
        );
        // The full pipeline on a sample of the cuts (all of them would take too long).
        if cut % 997 == 0 {
            drain_iter(buf, &fp);
        }
    }
}

#[test]
fn random_buffers_never_panic() {
    let mut rng = XorShift(SEED);
    let fp = Fingerprinter::new(&ChangeRule::default()).expect("default rule");
    let mut oks = 0;
    for _ in 0..RANDOM_BUFFERS {
        let mut buf = vec![0u8; rng.below(MAX_RANDOM_LEN + 1)];
        rng.fill(&mut buf);
        // Half of the buffers get plausible headers, so that the message and attribute
        // parsers see random content too, not only an impossible first nlmsg_len.
        if rng.below(2) == 0 {
            let mut off = 0;
            while off + NLMSG_HDR_LEN <= buf.len() {
                let len = NLMSG_HDR_LEN + rng.below(buf.len() - off);
                buf[off..off + 4].copy_from_slice(&u32::try_from(len).expect("fits").to_ne_bytes());
                // Sometimes plausible rtattr headers after the inet_diag_msg, too.
                let mut a = off + NLMSG_HDR_LEN + INET_DIAG_MSG_LEN;
                while rng.below(4) != 0 && a + 4 <= (off + len).min(buf.len()) {
                    let alen = 4 + rng.below(64);
                    buf[a..a + 2]
                        .copy_from_slice(&u16::try_from(alen).expect("fits").to_ne_bytes());
                    buf[a + 2..a + 4].copy_from_slice(
                        &u16::try_from(rng.below(30)).expect("fits").to_ne_bytes(),
                    );
                    a += alen.next_multiple_of(4);
                }
                off = (off + len).next_multiple_of(4);
            }
        }
        oks += drain_iter(&buf, &fp).0;
        // Random bytes as every region of a batch: no panic, nothing out of bounds.
        let (third, two_thirds) = (buf.len() / 3, 2 * buf.len() / 3);
        let (index, payloads, lines) = (&buf[..third], &buf[third..two_thirds], &buf[two_thirds..]);
        for item in RecordIter::new(index, payloads, lines) {
            assert!(item.payload.len() <= payloads.len() && item.line.len() <= lines.len());
        }
    }
    assert!(
        oks > RANDOM_BUFFERS,
        "the plausible headers produced messages ({oks})"
    );
}

#[test]
fn mutated_real_messages_never_panic() {
    let stream = testdata();
    let spans = message_spans(&stream);
    let fp = Fingerprinter::new(&ChangeRule::default()).expect("default rule");
    let mut rng = XorShift(SEED ^ 1);
    for _ in 0..RANDOM_BUFFERS {
        let (start, len) = spans[rng.below(spans.len())];
        let mut msg = stream[start..start + len].to_vec();
        for _ in 0..=rng.below(4) {
            let at = rng.below(msg.len());
            msg[at] = u8::try_from(rng.next() & 0xFF).expect("byte");
        }
        drain_iter(&msg, &fp);
        if len > NLMSG_HDR_LEN {
            exercise_payload(&msg[NLMSG_HDR_LEN..], &fp);
        }
    }
}

/// Three consecutive messages of testdata as one datagram, and their spans in it.
fn three_messages() -> (Vec<u8>, Vec<(usize, usize)>) {
    let stream = testdata();
    let spans = message_spans(&stream);
    let end = spans[3].0;
    (stream[..end].to_vec(), spans[..3].to_vec())
}

#[test]
fn corrupt_rtattr_in_the_middle_message() {
    let (orig, spans) = three_messages();
    let (mid_start, _) = spans[1];
    let first_attr = mid_start + NLMSG_HDR_LEN + INET_DIAG_MSG_LEN;
    // Longer than the message, shorter than its own header, and zero.
    for bad_len in [u16::MAX, 2000, 3, 0] {
        let mut buf = orig.clone();
        buf[first_attr..first_attr + 2].copy_from_slice(&bad_len.to_ne_bytes());
        let msgs: Vec<_> = NlMsgIter::new(&buf)
            .map(|m| m.expect("nlmsg_len is intact"))
            .collect();
        assert_eq!(msgs.len(), 3, "rtattr length {bad_len}");
        let parsed: Vec<_> = msgs.iter().map(|m| parse_diag(m.payload)).collect();
        assert!(
            parsed[0].is_ok() && parsed[2].is_ok(),
            "rtattr length {bad_len}: neighbours parse"
        );
        let err = parsed[1]
            .as_ref()
            .err()
            .unwrap_or_else(|| panic!("rtattr length {bad_len}: middle parses"));
        assert_eq!(err.code(), "ERR_MALFORMED");
        assert!(decode_connection(msgs[1].payload, AccEcnLayout::U16Pair).is_err());
        // The neighbours are byte-identical to the originals.
        for i in [0, 2] {
            let (s, l) = spans[i];
            assert_eq!(msgs[i].payload, &orig[s + NLMSG_HDR_LEN..s + l]);
        }
    }
    // A corrupt length deeper in the list (the last attribute) fails the same way.
    let mut buf = orig.clone();
    let (s, l) = spans[1];
    let payload = &orig[s + NLMSG_HDR_LEN..s + l];
    let mut off = INET_DIAG_MSG_LEN;
    let mut last = off;
    while off < payload.len() {
        last = off;
        off +=
            usize::from(u16::from_ne_bytes([payload[off], payload[off + 1]])).next_multiple_of(4);
    }
    let at = s + NLMSG_HDR_LEN + last;
    buf[at..at + 2].copy_from_slice(&500u16.to_ne_bytes());
    let msgs: Vec<_> = NlMsgIter::new(&buf).map(|m| m.expect("intact")).collect();
    assert_eq!(msgs.len(), 3);
    assert!(
        parse_diag(msgs[0].payload).is_ok()
            && parse_diag(msgs[1].payload).is_err()
            && parse_diag(msgs[2].payload).is_ok()
    );
}

#[test]
fn nlmsg_len_past_the_end() {
    let (orig, spans) = three_messages();
    for (victim, bad) in [
        (2, u32::MAX),
        (2, 100_000),
        (1, u32::MAX),
        (1, 0),
        (2, 15),
        (0, 4),
        (2, 0),
    ] {
        let mut buf = orig.clone();
        let at = spans[victim].0;
        buf[at..at + 4].copy_from_slice(&bad.to_ne_bytes());
        let items: Vec<_> = NlMsgIter::new(&buf).collect();
        assert_eq!(
            items.len(),
            victim + 1,
            "message {victim} with nlmsg_len {bad}"
        );
        for (i, item) in items.iter().enumerate().take(victim) {
            let m = item.as_ref().expect("earlier messages are intact");
            let (s, l) = spans[i];
            assert_eq!(m.payload, &orig[s + NLMSG_HDR_LEN..s + l]);
        }
        let err = items[victim].as_ref().expect_err("the bad one is an Err");
        assert_eq!(err.code(), "ERR_MALFORMED");
    }
    // A header cut short after two good messages.
    let buf = &orig[..spans[2].0 + 3];
    let items: Vec<_> = NlMsgIter::new(buf).collect();
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[1].is_ok() && items[2].is_err());
}

#[test]
fn record_iter_on_truncated_and_mismatched_regions() {
    // Two records in well-formed regions, then every truncation of each region.
    let stream = testdata();
    let payload = NlMsgIter::new(&stream)
        .next()
        .expect("one")
        .expect("ok")
        .payload;
    let (msg, attrs) = parse_diag(payload).expect("parse");
    let mut line = Vec::new();
    write_record_line(&mut line, GO_ZERO_TIME, &msg, &attrs);
    let len32 = |n: usize| u32::try_from(n).expect("fits").to_le_bytes();
    let (mut index, mut payloads, mut lines) = (Vec::new(), Vec::new(), Vec::new());
    for kind in [0u8, 2] {
        index.extend_from_slice(&[kind, 1, msg.family(), msg.state()]);
        index.extend_from_slice(&len32(payloads.len()));
        index.extend_from_slice(&len32(payload.len()));
        index.extend_from_slice(&len32(lines.len()));
        index.extend_from_slice(&len32(line.len()));
        index.extend_from_slice(&[0; 4]);
        index.extend_from_slice(&msg.cookie().to_le_bytes());
        payloads.extend_from_slice(payload);
        lines.extend_from_slice(&line);
    }
    let all: Vec<_> = RecordIter::new(&index, &payloads, &lines).collect();
    assert_eq!(all.len(), 2);
    assert_eq!(
        (all[1].kind, all[1].payload, all[1].line, all[1].cookie),
        (2, payload, &line[..], msg.cookie())
    );
    for cut in 0..index.len() {
        let n = RecordIter::new(&index[..cut], &payloads, &lines).count();
        assert_eq!(
            n,
            cut / INDEX_ENTRY_LEN,
            "index cut {cut}: complete entries only"
        );
    }
    // Regions shorter than the index says: the record is still there, its bytes read as
    // empty instead of out of bounds.
    for cut in [0, 1, payload.len(), payloads.len() - 1] {
        let recs: Vec<_> = RecordIter::new(&index, &payloads[..cut], &lines).collect();
        assert_eq!(recs.len(), 2);
        assert!(recs[1].payload.is_empty(), "payload cut {cut}");
        assert_eq!(recs[1].line, &line[..]);
    }
    // Absurd offsets and lengths never read out of bounds.
    let mut bad = index.clone();
    bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    bad[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    let recs: Vec<_> = RecordIter::new(&bad, &payloads, &lines).collect();
    assert!(recs[0].payload.is_empty() && recs[0].line.is_empty());
}
