//! The table of tracked connections, keyed by socket cookie.

use rustc_hash::FxHashMap;

/// What we remember of one connection between polls: 16 bytes.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    fingerprint: u64,
    /// Poll generation in which the connection was last seen.
    seen_gen: u32,
    family: u8,
    /// Missing from one complete poll; closed if missing from the next one too.
    missing_once: bool,
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
#[derive(Debug, Default)]
pub struct Tracker {
    map: FxHashMap<u64, Entry>,
    gen: u32,
}

impl Tracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a new poll generation.
    pub fn begin_poll(&mut self) {
        self.gen = self.gen.wrapping_add(1);
    }

    /// Records that `cookie` was seen in the current poll with `fingerprint`.
    pub fn observe(&mut self, cookie: u64, family: u8, fingerprint: u64) -> Observation {
        let gen = self.gen;
        match self.map.entry(cookie) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Entry {
                    fingerprint,
                    seen_gen: gen,
                    family,
                    missing_once: false,
                });
                Observation::Opened
            }
            std::collections::hash_map::Entry::Occupied(mut o) => {
                let e = o.get_mut();
                e.seen_gen = gen;
                e.missing_once = false;
                if e.fingerprint == fingerprint {
                    Observation::Unchanged
                } else {
                    e.fingerprint = fingerprint;
                    Observation::Changed
                }
            }
        }
    }

    /// Forgets `cookie` after its destroy event; returns whether it was tracked.
    pub fn remove(&mut self, cookie: u64) -> bool {
        self.map.remove(&cookie).is_some()
    }

    /// After a poll, finds connections of the completely dumped `families` that were not
    /// seen. A connection is declared gone only when missing from two consecutive complete
    /// polls: the destroy event of a socket freed just before a dump may still be in
    /// flight, and it carries the final counters we would otherwise lose.
    pub fn sweep(&mut self, complete_families: &[u8], out: &mut Vec<Vanished>) {
        let gen = self.gen;
        self.map.retain(|&cookie, e| {
            if e.seen_gen == gen || !complete_families.contains(&e.family) {
                return true;
            }
            if e.missing_once {
                out.push(Vanished {
                    cookie,
                    family: e.family,
                });
                return false;
            }
            e.missing_once = true;
            true
        });
    }

    /// Number of tracked connections.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no connection is tracked.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_16_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 16);
    }

    #[test]
    fn open_change_vanish() {
        let mut t = Tracker::new();
        let mut gone = Vec::new();
        t.begin_poll();
        assert_eq!(t.observe(1, 2, 10), Observation::Opened);
        assert_eq!(t.observe(2, 10, 20), Observation::Opened);
        t.sweep(&[2, 10], &mut gone);
        t.begin_poll();
        assert_eq!(t.observe(1, 2, 10), Observation::Unchanged);
        t.sweep(&[2, 10], &mut gone);
        assert!(gone.is_empty(), "one missed poll is not a close");
        t.begin_poll();
        assert_eq!(t.observe(1, 2, 11), Observation::Changed);
        t.sweep(&[2], &mut gone);
        assert!(
            gone.is_empty(),
            "AF_INET6 dump incomplete: its sockets are kept"
        );
        t.begin_poll();
        t.observe(1, 2, 11);
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
}
