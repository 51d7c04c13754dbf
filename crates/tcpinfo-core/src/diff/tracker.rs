//! The table of tracked connections, keyed by socket cookie.
//!
//! The kernel dumps its socket hash table in the same order every poll, so entries are
//! kept in a `Vec` in dump order and a cursor predicts the next cookie: in steady state a
//! lookup is one sequential compare, with no hashing and no cache miss. A hash index
//! (cookie → slot) resynchronises the cursor on a miss and finds new and closed
//! connections. When the order drifts (many misses) or many slots are dead, the vector is
//! rebuilt in the last poll's order. Measured effect: `docs/BENCHMARKS.md`.
//!
//! Memory per connection: a 32-byte [`Slot`] plus a 4-byte slot number in the index
//! (a `hashbrown::HashTable<u32>` whose keys live in the slots), about 42 bytes at the
//! index's usual load, under the 64-byte budget of issue #3 even with `Vec` growth slack.
//! 8 of the 32 bytes keep the owner ([`Owner`]): the kernel's destroy message reports
//! uid and inode as 0, and a closed connection's record should say whose it was.

use std::collections::VecDeque;
use std::hash::BuildHasher as _;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use crate::parse::diag_msg::AF_INET6;

/// What we remember of one connection between polls: 32 bytes.
#[derive(Debug, Clone, Copy)]
struct Slot {
    cookie: u64,
    fingerprint: u64,
    /// Poll generation in which the connection was last seen.
    seen_gen: u32,
    /// `pos` (bits 0–28: position in the last poll's order, for re-sorting) and the
    /// flags below.
    meta: u32,
    owner: Owner,
}

/// Who owned a socket, as the dumps reported it (`idiag_uid`, `idiag_inode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owner {
    /// `idiag_uid`.
    pub uid: u32,
    /// `idiag_inode` (0 once the socket is orphaned; the last non-zero one is kept).
    pub inode: u32,
}

/// The connection is IPv6 (`AF_INET6`); otherwise IPv4.
const META_V6: u32 = 1 << 29;
/// Missing from one complete poll; closed if missing long enough.
const META_MISSING: u32 = 1 << 30;
/// Removed; the slot is reclaimed at the next compaction.
const META_DEAD: u32 = 1 << 31;
/// Bits of `meta` holding the position.
const META_POS: u32 = META_V6 - 1;

impl Slot {
    fn dead(self) -> bool {
        self.meta & META_DEAD != 0
    }
    fn missing(self) -> bool {
        self.meta & META_MISSING != 0
    }
    fn pos(self) -> u32 {
        self.meta & META_POS
    }
    fn family(self) -> u8 {
        if self.meta & META_V6 != 0 {
            AF_INET6
        } else {
            crate::parse::diag_msg::AF_INET
        }
    }
}

/// The result of observing one connection in a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// First time this cookie is seen.
    Opened,
    /// Seen before, and its fingerprint differs.
    Changed,
    /// Seen before with the same fingerprint.
    Unchanged,
}

/// A connection found gone by the sweep (no destroy event was received for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vanished {
    /// The socket cookie.
    pub cookie: u64,
    /// Its address family.
    pub family: u8,
}

/// Tracks connections across polls.
#[derive(Default)]
pub struct Tracker {
    slots: Vec<Slot>,
    /// Slot numbers, hashed by their slot's cookie.
    index: HashTable<u32>,
    gen: u32,
    cursor: usize,
    /// Observations of this poll (the next `pos`).
    observed: u32,
    /// Observations of this poll that missed the cursor.
    misses: u32,
    dead: usize,
    /// Start times (unix ns) of the most recent polls, newest last.
    poll_times: VecDeque<i64>,
    /// Minimum time a connection must have been missing before the sweep closes it.
    close_grace_nanos: i64,
}

/// Rebuild when more than 1/`DRIFT_DIVISOR` of a poll's lookups missed the cursor.
const DRIFT_DIVISOR: u32 = 8;
/// Compact when more than 1/`DEAD_DIVISOR` of the slots are dead.
const DEAD_DIVISOR: usize = 4;
/// Poll start times remembered for the close grace; older polls count as long ago.
const POLL_TIMES_KEPT: usize = 1024;

impl Tracker {
    /// An empty tracker whose sweep waits at least `close_grace_nanos` after a connection
    /// was last seen before closing it.
    pub fn new(close_grace_nanos: i64) -> Self {
        Self {
            close_grace_nanos,
            ..Self::default()
        }
    }

    /// Starts a new poll generation at `now_nanos` (unix ns).
    pub fn begin_poll(&mut self, now_nanos: i64) {
        if self.poll_times.len() == POLL_TIMES_KEPT {
            self.poll_times.pop_front();
        }
        self.poll_times.push_back(now_nanos);
        self.gen = self.gen.wrapping_add(1);
        self.cursor = 0;
        self.observed = 0;
        self.misses = 0;
    }

    /// Records that `cookie` was seen in the current poll with `fingerprint`, owned by
    /// `owner` (remembered for the close record; an inode of 0 never replaces a known one).
    pub fn observe(
        &mut self,
        cookie: u64,
        family: u8,
        fingerprint: u64,
        owner: Owner,
    ) -> Observation {
        let pos = self.observed & META_POS;
        self.observed += 1;
        let hit = self
            .slots
            .get(self.cursor)
            .is_some_and(|s| s.cookie == cookie && !s.dead());
        let idx = if hit {
            self.cursor
        } else {
            self.misses += 1;
            if let Some(i) = self.find(cookie) {
                i
            } else {
                let i = self.slots.len();
                let v6 = if family == AF_INET6 { META_V6 } else { 0 };
                self.slots.push(Slot {
                    cookie,
                    fingerprint,
                    seen_gen: self.gen,
                    meta: pos | v6,
                    owner,
                });
                let slots = &self.slots;
                self.index.insert_unique(hash(cookie), slot_index(i), |&j| {
                    hash(slots[j as usize].cookie)
                });
                self.cursor = i + 1;
                return Observation::Opened;
            }
        };
        self.cursor = idx + 1;
        let s = &mut self.slots[idx];
        s.seen_gen = self.gen;
        s.meta = (s.meta & META_V6) | pos;
        if s.fingerprint == fingerprint {
            Observation::Unchanged
        } else {
            s.fingerprint = fingerprint;
            // Only on a change: an orphaned socket's inode drops to 0, which is a change.
            if owner.inode != 0 {
                s.owner = owner;
            }
            Observation::Changed
        }
    }

    /// Records that `cookie` still exists in the current poll without telling its
    /// fingerprint (the BPF mode's sweep walks report unchanged sockets this way). An
    /// unknown cookie is ignored.
    pub fn touch(&mut self, cookie: u64) {
        let hit = self
            .slots
            .get(self.cursor)
            .is_some_and(|s| s.cookie == cookie && !s.dead());
        let idx = if hit {
            self.cursor
        } else if let Some(i) = self.find(cookie) {
            self.misses += 1;
            i
        } else {
            return;
        };
        let pos = self.observed & META_POS;
        self.observed += 1;
        self.cursor = idx + 1;
        let s = &mut self.slots[idx];
        s.seen_gen = self.gen;
        s.meta = (s.meta & META_V6) | pos;
    }

    fn find(&self, cookie: u64) -> Option<usize> {
        let slots = &self.slots;
        self.index
            .find(hash(cookie), |&j| slots[j as usize].cookie == cookie)
            .map(|&j| j as usize)
    }

    /// Removes `cookie` from the index and marks its slot dead; returns its owner.
    fn kill(&mut self, cookie: u64) -> Option<Owner> {
        let slots = &self.slots;
        let Ok(entry) = self
            .index
            .find_entry(hash(cookie), |&j| slots[j as usize].cookie == cookie)
        else {
            return None;
        };
        let (j, _) = entry.remove();
        let slot = &mut self.slots[j as usize];
        slot.meta |= META_DEAD;
        self.dead += 1;
        Some(slot.owner)
    }

    /// Forgets `cookie` after its destroy event; returns its owner if it was tracked.
    pub fn remove(&mut self, cookie: u64) -> Option<Owner> {
        self.kill(cookie)
    }

    /// After a poll, finds connections of the completely dumped `families` that were not
    /// seen. A connection is declared gone only when missing from two consecutive complete
    /// polls *and* for at least the close grace: the destroy event of a socket freed just
    /// before a dump may still be in flight (a kernel workqueue delivers it), and it
    /// carries the final counters we would otherwise lose.
    pub fn sweep(&mut self, complete_families: &[u8], out: &mut Vec<Vanished>) {
        let gen = self.gen;
        let now = self.poll_times.back().copied().unwrap_or(0);
        for i in 0..self.slots.len() {
            let s = self.slots[i];
            if s.dead() || s.seen_gen == gen || !complete_families.contains(&s.family()) {
                continue;
            }
            // Start of the first poll that missed it: the one after `seen_gen`.
            let age = gen.wrapping_sub(s.seen_gen) as usize;
            let missed_since = self
                .poll_times
                .len()
                .checked_sub(age)
                .and_then(|k| self.poll_times.get(k));
            let grace_over = missed_since.is_none_or(|t| now - t >= self.close_grace_nanos);
            if s.missing() && grace_over {
                out.push(Vanished {
                    cookie: s.cookie,
                    family: s.family(),
                });
                self.kill(s.cookie);
            } else {
                self.slots[i].meta |= META_MISSING;
            }
        }
        let drifted = self.misses > self.observed / DRIFT_DIVISOR && self.observed > 0;
        if drifted || self.dead > self.slots.len() / DEAD_DIVISOR {
            self.rebuild();
        }
    }

    /// Reports every live connection as vanished and forgets them all (their network
    /// namespace is gone: no later dump or event can tell about them).
    pub fn drain_all(&mut self, out: &mut Vec<Vanished>) {
        out.extend(self.slots.iter().filter(|s| !s.dead()).map(|s| Vanished {
            cookie: s.cookie,
            family: s.family(),
        }));
        self.slots = Vec::new();
        self.index = HashTable::new();
        self.dead = 0;
    }

    /// Drops dead slots and re-sorts the live ones into the last poll's order.
    fn rebuild(&mut self) {
        let gen = self.gen;
        self.slots.retain(|s| !s.dead());
        // Unseen slots (missing once) go last, after everything seen this poll.
        self.slots
            .sort_unstable_by_key(|s| (s.seen_gen != gen, s.pos()));
        self.slots
            .shrink_to(self.slots.len() + self.slots.len() / DEAD_DIVISOR);
        self.index.clear();
        let slots = &self.slots;
        for (i, s) in slots.iter().enumerate() {
            self.index
                .insert_unique(hash(s.cookie), slot_index(i), |&j| {
                    hash(slots[j as usize].cookie)
                });
        }
        self.dead = 0;
    }

    /// Heap bytes held: slot vector capacity plus the index's buckets and control bytes.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
    }

    /// Whether `cookie` is tracked.
    pub fn contains(&self, cookie: u64) -> bool {
        self.find(cookie).is_some()
    }

    /// Number of tracked connections.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no connection is tracked.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("tracked", &self.index.len())
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

fn hash(cookie: u64) -> u64 {
    FxBuildHasher.hash_one(cookie)
}

fn slot_index(i: usize) -> u32 {
    // More than 4 billion tracked sockets cannot exist (each needs a file or a kernel sock).
    u32::try_from(i).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The owner seen by the dumps survives until the close, and an orphan's inode of 0
    /// does not erase it.
    #[test]
    fn remove_returns_the_last_known_owner() {
        let mut t = Tracker::new(0);
        t.begin_poll(0);
        let owner = Owner {
            uid: 1000,
            inode: 42,
        };
        t.observe(7, 2, 1, owner);
        t.begin_poll(1);
        t.observe(
            7,
            2,
            2,
            Owner {
                uid: 1000,
                inode: 0,
            },
        );
        assert_eq!(t.remove(7), Some(owner));
        assert_eq!(t.remove(7), None);
    }

    #[test]
    fn slot_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 32);
    }

    #[test]
    fn open_change_vanish() {
        let mut t = Tracker::new(0);
        let mut gone = Vec::new();
        t.begin_poll(0);
        assert_eq!(t.observe(1, 2, 10, Owner::default()), Observation::Opened);
        assert_eq!(t.observe(2, 10, 20, Owner::default()), Observation::Opened);
        t.sweep(&[2, 10], &mut gone);
        t.begin_poll(0);
        assert_eq!(
            t.observe(1, 2, 10, Owner::default()),
            Observation::Unchanged
        );
        t.sweep(&[2, 10], &mut gone);
        assert!(gone.is_empty(), "one missed poll is not a close");
        t.begin_poll(0);
        assert_eq!(t.observe(1, 2, 11, Owner::default()), Observation::Changed);
        t.sweep(&[2], &mut gone);
        assert!(
            gone.is_empty(),
            "AF_INET6 dump incomplete: its sockets are kept"
        );
        t.begin_poll(0);
        t.observe(1, 2, 11, Owner::default());
        t.sweep(&[2, 10], &mut gone);
        assert_eq!(
            gone,
            vec![Vanished {
                cookie: 2,
                family: 10
            }]
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn any_order_gives_the_same_answers() {
        let mut t = Tracker::new(0);
        let mut gone = Vec::new();
        t.begin_poll(0);
        for c in 0..100u64 {
            assert_eq!(t.observe(c, 2, c, Owner::default()), Observation::Opened);
        }
        t.sweep(&[2], &mut gone);
        // Reversed order, a few changed, one new in the middle, one removed by an event.
        assert!(t.remove(50).is_some());
        assert!(t.remove(50).is_none());
        t.begin_poll(0);
        for c in (0..100u64).rev() {
            if c == 50 {
                continue;
            }
            let fp = if c % 10 == 0 { c + 1 } else { c };
            let want = if c % 10 == 0 {
                Observation::Changed
            } else {
                Observation::Unchanged
            };
            assert_eq!(t.observe(c, 2, fp, Owner::default()), want, "cookie {c}");
            if c == 70 {
                assert_eq!(t.observe(1000, 2, 0, Owner::default()), Observation::Opened);
            }
        }
        t.sweep(&[2], &mut gone);
        assert!(gone.is_empty());
        assert_eq!(t.len(), 100);
        // After the rebuild the same reversed order hits the cursor every time.
        t.begin_poll(0);
        for c in (0..100u64).rev().filter(|c| *c != 50) {
            t.observe(c, 2, if c % 10 == 0 { c + 1 } else { c }, Owner::default());
            if c == 70 {
                t.observe(1000, 2, 0, Owner::default());
            }
        }
        assert_eq!(t.misses, 0);
        t.sweep(&[2], &mut gone);
        assert!(gone.is_empty());
    }

    /// A poll whose dump of a family was interrupted (`NLM_F_DUMP_INTR`, or a failed or
    /// unparsable dump) leaves that family out of `complete_families`: a connection missing
    /// from such dumps is never declared gone, however long; two complete polls past the
    /// grace still close it.
    #[test]
    fn connections_missing_from_incomplete_dumps_are_not_swept() {
        const MS: i64 = 1_000_000;
        let mut t = Tracker::new(100 * MS);
        let mut gone = Vec::new();
        t.begin_poll(0);
        t.observe(7, 2, 0, Owner::default());
        t.observe(8, 10, 0, Owner::default());
        t.sweep(&[2, 10], &mut gone);
        for now in 1..50 {
            t.begin_poll(now * 10 * MS);
            t.observe(8, 10, 0, Owner::default());
            // Family 2 interrupted in every poll: only family 10 is complete.
            t.sweep(&[10], &mut gone);
        }
        assert!(gone.is_empty(), "no close inferred from incomplete dumps");
        assert_eq!(t.len(), 2);
        for now in [500, 510] {
            t.begin_poll(now * MS);
            t.observe(8, 10, 0, Owner::default());
            t.sweep(&[2, 10], &mut gone);
        }
        assert_eq!(
            gone,
            vec![Vanished {
                cookie: 7,
                family: 2
            }]
        );
    }

    #[test]
    fn sweep_waits_for_the_close_grace() {
        const MS: i64 = 1_000_000;
        let mut t = Tracker::new(100 * MS);
        let mut gone = Vec::new();
        t.begin_poll(0);
        t.observe(7, 2, 0, Owner::default());
        t.sweep(&[2], &mut gone);
        for now in [10, 20, 50, 105] {
            t.begin_poll(now * MS);
            t.sweep(&[2], &mut gone);
            assert!(
                gone.is_empty(),
                "missing since 10 ms, now {now} ms: too early"
            );
        }
        t.begin_poll(110 * MS);
        t.sweep(&[2], &mut gone);
        assert_eq!(
            gone,
            vec![Vanished {
                cookie: 7,
                family: 2
            }]
        );
    }

    #[test]
    fn per_connection_state_is_at_most_64_bytes() {
        let mut t = Tracker::new(0);
        let mut gone = Vec::new();
        for n in [1_000u64, 10_000, 100_000, 131_073] {
            let mut t2 = Tracker::new(0);
            t2.begin_poll(0);
            for c in 0..n {
                t2.observe(c + 1, 2, c, Owner::default());
            }
            t2.sweep(&[2], &mut gone);
            let n = usize::try_from(n).unwrap();
            assert!(
                t2.heap_bytes() <= 64 * n,
                "{n} connections: {} bytes",
                t2.heap_bytes()
            );
        }
        t.begin_poll(0);
        assert!(t.is_empty());
    }

    #[test]
    fn churn_keeps_memory_bounded() {
        let mut t = Tracker::new(0);
        let mut gone = Vec::new();
        for round in 0..1000u64 {
            t.begin_poll(0);
            for c in round * 10..round * 10 + 100 {
                t.observe(c, 2, 0, Owner::default());
            }
            t.sweep(&[2], &mut gone);
        }
        assert_eq!(t.len(), 110, "100 seen plus 10 missing once");
        assert!(
            t.slots.len() <= 110 + 100 / DEAD_DIVISOR + 20,
            "dead slots are reclaimed: {}",
            t.slots.len()
        );
        assert_eq!(gone.len(), 9990 - 10);
    }
}
