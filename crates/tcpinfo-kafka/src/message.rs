//! From one poll's regions to Kafka messages: key = the connection's UUID, value = the
//! `ArchivalRecord` line as the archive writes it (without its newline) or the flat
//! `decoded` JSON, headers `host`, `netns`, `kind`; the partition follows Kafka's default
//! partitioner (murmur2 of the key), so a connection's records stay in one partition and
//! other producers keyed by UUID agree. Sampling ([`Sample`]) is applied here.

use std::sync::Arc;
use std::time::Instant;

use tcpinfo_archive_read::json_out::{write_flat_fields, write_json_string};
use tcpinfo_archive_read::write_iso_millis;
use tcpinfo_core::parse::tcp_info::AccEcnLayout;
use tcpinfo_core::{
    decode_record, RecordIter, RecordKind, Value, FLAG_FROM_DESTROY_EVENT, FLAG_HAS_RECORD,
    FLAG_UNSEEN,
};

use crate::config::{Format, ProducerConfig, Sample};

/// Version of the `decoded` value: changes only when a field changes meaning or goes away.
pub const DECODED_SCHEMA: u32 = 1;

/// A network namespace of a poll, as the records' index refers to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespace {
    /// Between the prefix and the cookie in its UUIDs (`''` for the host's namespace).
    pub uuid_tag: String,
    /// Its `netns` header.
    pub netns: String,
}

/// One poll, as the poller encoded it (`docs/internals/poll/batch-format.md`).
#[derive(Debug, Clone, Default)]
pub struct PollInput {
    /// One 32-byte entry per record.
    pub index: Vec<u8>,
    /// `ArchivalRecord` lines, back to back.
    pub lines: Vec<u8>,
    /// Netlink payloads; needed for [`Format::Decoded`] only (may be empty otherwise).
    pub payloads: Vec<u8>,
    /// Poll sequence number.
    pub seq: u64,
    /// Poll time, unix nanoseconds.
    pub timestamp_nanos: i64,
    /// The poll's namespace table; empty: every record is from the configured namespace.
    pub namespaces: Vec<Namespace>,
}

impl PollInput {
    /// Bytes held.
    pub fn len_bytes(&self) -> usize {
        self.index.len() + self.lines.len() + self.payloads.len()
    }
}

/// One message waiting for the broker.
#[derive(Debug, Clone)]
pub struct Msg {
    /// Arrival order across partitions (the oldest is dropped first).
    pub order: u64,
    /// Kafka's murmur2 of the key (partition = `hash % partitions`).
    pub hash: u32,
    /// The UUID.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// `opened`, `changed` or `closed`.
    pub kind: &'static str,
    /// The `netns` header.
    pub netns: Arc<str>,
    /// Record timestamp, unix ms (the poll's).
    pub timestamp_ms: i64,
    /// When it was queued (for the linger).
    pub queued_at: Instant,
}

impl Msg {
    /// Bytes counted against the buffer: key and value.
    pub fn size(&self) -> usize {
        self.key.len() + self.value.len()
    }
}

/// Kafka's `Utils.murmur2` (the Java client's default partitioner hashes keys with it).
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    #[expect(
        clippy::cast_possible_truncation,
        reason = "Java hashes the length as an int; keys are short"
    )]
    let mut h = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        if rest.len() == 3 {
            h ^= u32::from(rest[2]) << 16;
        }
        if rest.len() >= 2 {
            h ^= u32::from(rest[1]) << 8;
        }
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// The partition of a key hash among `partitions` (Java's `toPositive(h) % n`).
pub fn partition_of(hash: u32, partitions: usize) -> usize {
    (hash & 0x7fff_ffff) as usize % partitions.max(1)
}

/// Makes the messages of each poll.
#[derive(Debug)]
pub struct MessageBuilder {
    prefix: String,
    netns: Arc<str>,
    format: Format,
    sample: Sample,
    layout: AccEcnLayout,
    polls: u64,
    order: u64,
}

/// What one poll gave.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Built {
    /// Messages made.
    pub messages: u64,
    /// Records left out by sampling.
    pub sampled_out: u64,
}

impl MessageBuilder {
    /// A builder for `cfg`.
    pub fn new(cfg: &ProducerConfig) -> Self {
        Self {
            prefix: cfg.uuid_prefix.clone(),
            netns: Arc::from(cfg.netns.as_str()),
            format: cfg.format,
            sample: cfg.sample,
            layout: AccEcnLayout::running_kernel(),
            polls: 0,
            order: 0,
        }
    }

    /// Appends the messages of `poll` to `out`. Records without a line (closes found by
    /// the sweep, which the archive does not write either) are not exported.
    pub fn build(&mut self, poll: &PollInput, now: Instant, out: &mut Vec<Msg>) -> Built {
        let every = match self.sample {
            Sample::Every(n) => self.polls % u64::from(n.max(1)) == 0,
            Sample::OpensCloses => false,
        };
        self.polls += 1;
        let tables: Vec<(Arc<str>, &str)> = poll
            .namespaces
            .iter()
            .map(|n| {
                let header = if n.uuid_tag.is_empty() && n.netns.is_empty() {
                    Arc::clone(&self.netns)
                } else {
                    Arc::from(n.netns.as_str())
                };
                (header, n.uuid_tag.as_str())
            })
            .collect();
        let mut built = Built::default();
        let ts_ms = poll.timestamp_nanos.div_euclid(1_000_000);
        for rec in RecordIter::new(&poll.index, &poll.payloads, &poll.lines) {
            if rec.flags & FLAG_HAS_RECORD == 0 || rec.line.is_empty() {
                continue;
            }
            if rec.kind == RecordKind::Changed as u8 && !every {
                built.sampled_out += 1;
                continue;
            }
            let (netns, tag) = tables
                .get(rec.netns as usize)
                .map_or((&self.netns, ""), |(h, t)| (h, *t));
            let key = uuid(&self.prefix, tag, rec.cookie);
            let kind = match rec.kind {
                0 => "opened",
                2 => "closed",
                _ => "changed",
            };
            let value = match self.format {
                Format::Archival => rec.line.strip_suffix(b"\n").unwrap_or(rec.line).to_vec(),
                Format::Decoded => self.decoded(&rec, kind, &key, poll),
            };
            out.push(Msg {
                order: self.order,
                hash: murmur2(key.as_bytes()),
                key: key.into_bytes(),
                value,
                kind,
                netns: Arc::clone(netns),
                timestamp_ms: ts_ms,
                queued_at: now,
            });
            self.order += 1;
            built.messages += 1;
        }
        built
    }

    /// `{"schema":1,"kind":…,"seq":…,"timestamp":…,"uuid":…,"cookie":…,"family":…,
    /// "fromDestroyEvent":…,"unseen":…,<decoded fields, nested joined by _>}`.
    fn decoded(
        &self,
        rec: &tcpinfo_core::RecordView<'_>,
        kind: &str,
        uuid: &str,
        poll: &PollInput,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(2048);
        out.extend_from_slice(
            format!(
                "{{\"schema\":{DECODED_SCHEMA},\"kind\":\"{kind}\",\"seq\":{},\"timestamp\":\"",
                poll.seq
            )
            .as_bytes(),
        );
        write_iso_millis(&mut out, poll.timestamp_nanos);
        out.extend_from_slice(b"\",\"uuid\":");
        write_json_string(&mut out, uuid);
        out.extend_from_slice(b",\"cookie\":\"");
        out.extend_from_slice(rec.cookie.to_string().as_bytes());
        out.extend_from_slice(b"\",\"family\":");
        write_json_string(&mut out, &family_name(u32::from(rec.family)));
        out.extend_from_slice(
            format!(
                ",\"fromDestroyEvent\":{},\"unseen\":{}",
                rec.flags & FLAG_FROM_DESTROY_EVENT != 0,
                rec.flags & FLAG_UNSEEN != 0
            )
            .as_bytes(),
        );
        if let Some(Value::Obj(mut fields)) = decode_record(rec, self.layout) {
            for (k, v) in &mut fields {
                if let (&"id", Value::Obj(id)) = (&*k, v) {
                    for (ik, iv) in id.iter_mut() {
                        if let (&"family", Value::U32(f)) = (&*ik, &*iv) {
                            *iv = Value::Str(family_name(*f));
                        }
                    }
                }
            }
            write_flat_fields(&mut out, "", &fields);
        }
        out.push(b'}');
        out
    }
}

/// `<prefix>_<cookie %016X>`, or `<prefix>_<tag>_<cookie %016X>` (as `Batch.recordUuid`).
fn uuid(prefix: &str, tag: &str, cookie: u64) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(prefix.len() + tag.len() + 18);
    s.push_str(prefix);
    s.push('_');
    if !tag.is_empty() {
        s.push_str(tag);
        s.push('_');
    }
    for i in (0..16).rev() {
        s.push(char::from(HEX[((cookie >> (i * 4)) & 0xf) as usize]));
    }
    s
}

/// `inet`, `inet6`, else the number (as `familyName` in `src/uapi.ts`).
fn family_name(f: u32) -> String {
    match f {
        2 => "inet".into(),
        10 => "inet6".into(),
        n => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_as_the_ts_side() {
        assert_eq!(uuid("p", "", 0x62D84), "p_0000000000062D84");
        assert_eq!(
            uuid("host_1_unsafe", "n5", u64::MAX),
            "host_1_unsafe_n5_FFFFFFFFFFFFFFFF"
        );
    }

    /// Kafka's own vectors (`UtilsTest.testMurmur2`), as Java ints.
    #[test]
    fn murmur2_matches_kafka() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (data, want) in cases {
            assert_eq!(
                murmur2(data).cast_signed(),
                want,
                "{:?}",
                std::str::from_utf8(data)
            );
        }
        // Java: toPositive(-973932308) % 4 = (0x45f2f8ec) % 4.
        assert_eq!(partition_of(murmur2(b"21"), 4), 0x45f2_f8ec % 4);
    }
}
