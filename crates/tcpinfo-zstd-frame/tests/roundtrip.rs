//! Every frame the encoder writes is decoded by libzstd (the `zstd` crate) and, in
//! batches, by the `zstd` CLI (`zstd -t`, `zstd -dc`): fixture lines one and several per
//! frame, and random, adversarial and edge-case inputs.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;

use common::fixture_lines;
use tcpinfo_zstd_frame::{Error, FrameEncoder, MAX_INPUT};

/// Encodes `src` as one frame and checks libzstd decodes it to `src`; returns the frame.
fn roundtrip(enc: &mut FrameEncoder, src: &[u8]) -> Vec<u8> {
    let mut out = b"x".to_vec();
    let n = enc.compress(src, &mut out).expect("compress");
    assert_eq!(n, out.len() - 1);
    let frame = out.split_off(1);
    let back = zstd::bulk::decompress(&frame, src.len() + 1)
        .unwrap_or_else(|e| panic!("libzstd rejects the frame of {} bytes: {e}", src.len()));
    assert!(
        back == src,
        "frame of {} bytes decodes to other bytes",
        src.len()
    );
    frame
}

/// Checks the `zstd` CLI tests and decodes the concatenated `frames` to `expect`.
fn cli_check(frames: &[u8], expect: &[u8]) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("zstd-frame-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(format!("{}.zst", NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, frames).expect("write");
    let t = Command::new("zstd")
        .arg("-tq")
        .arg(&path)
        .status()
        .expect("zstd CLI");
    assert!(t.success(), "zstd -t fails on {}", path.display());
    let mut child = Command::new("zstd")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("zstd -dc");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = frames.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("zstd -dc output");
    feeder.join().expect("feeder").expect("feed");
    assert!(out.status.success());
    assert!(out.stdout == expect, "zstd -dc output differs");
    std::fs::remove_file(&path).expect("rm");
}

#[test]
fn fixture_lines_one_per_frame() {
    let lines = fixture_lines();
    let mut enc = FrameEncoder::new().with_checksum(true);
    let (mut all_frames, mut all) = (Vec::new(), Vec::new());
    let (mut in_bytes, mut out_bytes) = (0, 0);
    for line in &lines {
        let f = roundtrip(&mut enc, line);
        in_bytes += line.len();
        out_bytes += f.len();
        all_frames.extend_from_slice(&f);
        all.extend_from_slice(line);
    }
    cli_check(&all_frames, &all);
    // Compresses: well below the raw input (the target is libzstd level -1's size or less,
    // measured by the bench example).
    assert!(
        out_bytes * 10 < in_bytes * 8,
        "{out_bytes} B from {in_bytes} B"
    );
}

#[test]
fn fixture_lines_several_per_frame() {
    let lines = fixture_lines();
    let mut enc = FrameEncoder::new();
    for per in [2, 3, 7, 30, 200] {
        let (mut frames, mut all) = (Vec::new(), Vec::new());
        for group in lines.chunks(per) {
            let src = group.concat();
            if src.len() > MAX_INPUT {
                continue;
            }
            frames.extend_from_slice(&roundtrip(&mut enc, &src));
            all.extend_from_slice(&src);
        }
        cli_check(&frames, &all);
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}

#[test]
fn edge_cases() {
    for checksum in [false, true] {
        edge_cases_with(checksum);
    }
}

fn edge_cases_with(checksum: bool) {
    let mut enc = FrameEncoder::new().with_checksum(checksum);
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"a".to_vec(),
        b"\n".to_vec(),
        vec![0xFF],
        b"abcd".to_vec(),
        b"abcde".to_vec(),
        b"aaaaa".to_vec(),
    ];
    for len in [
        2, 3, 4, 5, 8, 31, 32, 33, 255, 256, 257, 1023, 1024, 1025, 4096, 65535,
    ] {
        cases.push(vec![b'A'; len]);
        cases.push(vec![0; len]);
        cases.push(
            (0..len)
                .map(|i| u8::try_from(i % 251).unwrap_or(0))
                .collect(),
        );
        cases.push((0..len).map(|i| b"ABCDEFGHabcdefgh+/"[i % 18]).collect());
    }
    let line = &fixture_lines()[5];
    let mut with_outsider = line.clone();
    with_outsider[100] = 0xC3;
    cases.push(with_outsider);
    let mut with_tab = line.clone();
    with_tab[200] = b'\t';
    cases.push(with_tab);
    cases.push(line.repeat(100)); // long repeats
    cases.push(line.repeat(MAX_INPUT / line.len() + 1)[..MAX_INPUT].to_vec());
    let (mut frames, mut all) = (Vec::new(), Vec::new());
    for c in &cases {
        frames.extend_from_slice(&roundtrip(&mut enc, c));
        all.extend_from_slice(c);
    }
    cli_check(&frames, &all);
    let mut out = Vec::new();
    assert_eq!(
        enc.compress(&vec![0; MAX_INPUT + 1], &mut out),
        Err(Error::TooLarge { len: MAX_INPUT + 1 })
    );
    assert!(out.is_empty());
}

#[test]
fn random_inputs() {
    let lines = fixture_lines();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut enc = FrameEncoder::new().with_checksum(true);
    let mut plain = FrameEncoder::new();
    let (mut frames, mut all) = (Vec::new(), Vec::new());
    for round in 0..3000 {
        let len = match round % 4 {
            0 => rng.below(64),
            1 => rng.below(2000),
            _ => rng.below(20_000),
        };
        let src: Vec<u8> = match round % 5 {
            // Random bytes.
            0 => (0..len).map(|_| rng.next().to_le_bytes()[0]).collect(),
            // Bytes from a small alphabet (long matches, short offsets).
            1 => (0..len).map(|_| b"AB/="[rng.below(4)]).collect(),
            // Printable ASCII with runs.
            2 => {
                let mut v = Vec::with_capacity(len);
                while v.len() < len {
                    let b = 0x20 + u8::try_from(rng.below(95)).unwrap_or(0);
                    let run = 1 + rng.below(12);
                    v.extend(std::iter::repeat_n(b, run));
                }
                v.truncate(len);
                v
            }
            // Spliced fixture lines with random mutations.
            _ => {
                let mut v = Vec::with_capacity(len);
                while v.len() < len {
                    let l = &lines[rng.below(lines.len())];
                    let a = rng.below(l.len());
                    v.extend_from_slice(&l[a..]);
                }
                v.truncate(len);
                for _ in 0..rng.below(4) {
                    if !v.is_empty() {
                        let i = rng.below(v.len());
                        v[i] = rng.next().to_le_bytes()[0];
                    }
                }
                v
            }
        };
        let f = if round % 2 == 0 {
            roundtrip(&mut enc, &src)
        } else {
            roundtrip(&mut plain, &src)
        };
        if round % 10 == 0 {
            frames.extend_from_slice(&f);
            all.extend_from_slice(&src);
        }
    }
    cli_check(&frames, &all);
}

#[test]
fn generation_counter_wraps() {
    // Past 65535 frames the hash table is cleared and reused; frames stay valid.
    let line = &fixture_lines()[3];
    let mut enc = FrameEncoder::new();
    let mut out = Vec::new();
    for i in 0..70_000 {
        out.clear();
        let src = if i % 2 == 0 { &line[..] } else { &line[10..] };
        enc.compress(src, &mut out).expect("compress");
        if i % 997 == 0 || (65_530..65_540).contains(&i) {
            assert_eq!(
                zstd::bulk::decompress(&out, src.len()).expect("decode"),
                src
            );
        }
    }
}

#[test]
fn a_damaged_frame_fails_its_checksum() {
    let line = &fixture_lines()[7];
    let mut enc = FrameEncoder::new().with_checksum(true);
    let mut frame = Vec::new();
    enc.compress(line, &mut frame).expect("compress");
    // The last byte of the checksum: libzstd decodes the content and then rejects it.
    let at = frame.len() - 1;
    frame[at] ^= 0x40;
    assert!(zstd::bulk::decompress(&frame, line.len()).is_err());
}

#[test]
fn huffman_literals_in_every_size_format() {
    // Bytes drawn at random from the fixture lines barely match, so nearly all of them
    // are Huffman-coded literals (their distribution is the table's: uniform base64 is
    // not smaller coded, the table giving `A`, a zero byte's digit, short codes): one
    // stream (≤ 1023), four streams with 10-, 14- and 18-bit sizes.
    let text: Vec<u8> = fixture_lines().concat();
    let mut rng = Rng(42);
    let mut enc = FrameEncoder::new().with_checksum(true);
    let (mut frames, mut all) = (Vec::new(), Vec::new());
    for len in [
        40, 500, 1023, 1024, 1100, 5000, 16_383, 16_384, 20_000, MAX_INPUT,
    ] {
        let src: Vec<u8> = (0..len).map(|_| text[rng.below(text.len())]).collect();
        let f = roundtrip(&mut enc, &src);
        // A raw block would make the frame len + 13 bytes (header 6, block header 3,
        // checksum 4); 40 bytes stay raw (the table description alone is 54).
        assert!(
            len < 100 || f.len() < len + 13,
            "{len} B of fixture bytes into {} B: not Huffman-coded",
            f.len()
        );
        frames.extend_from_slice(&f);
        all.extend_from_slice(&src);
    }
    cli_check(&frames, &all);
}
