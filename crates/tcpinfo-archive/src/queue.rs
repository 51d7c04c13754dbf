//! The bounded queue between the producer (`write`, on the caller's thread) and the
//! writer thread, limited in items and bytes. `push` never blocks; the writer decides
//! what to do when it is full (see `writer.rs`); `wait_for_room` lets a caller wait.

use std::collections::VecDeque;
use std::sync::mpsc::SyncSender;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::writer::{Rotate, WriteBatch};

/// Work for the writer thread.
pub(crate) enum Msg {
    Batch(WriteBatch),
    Rotate(Rotate),
    /// Flush every file now; answers when done.
    Flush(SyncSender<()>),
    /// Finish every file (until the deadline) and stop; answers with the files left open.
    Close(Instant, SyncSender<u64>),
}

pub(crate) struct Queue {
    state: Mutex<State>,
    not_empty: Condvar,
    room: Condvar,
    max_items: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct State {
    items: VecDeque<(Msg, usize)>,
    bytes: usize,
}

impl Queue {
    pub fn new(max_items: usize, max_bytes: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            not_empty: Condvar::new(),
            room: Condvar::new(),
            max_items,
            max_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic on the writer thread must not take the producer down with it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the queue takes another batch now: it is under both limits. A batch is
    /// taken whole whatever its size, so the queue holds at most `max_bytes` plus one
    /// batch: a caller that waits whenever this is false (see `ArchiveWriter::write`)
    /// never has a batch refused, however the sizes of its batches vary.
    pub fn accepts(&self) -> bool {
        let s = self.lock();
        s.items.len() < self.max_items && s.bytes < self.max_bytes
    }

    /// Queues `msg` (accounted as `bytes`), limits or not: the caller checked [`Self::accepts`].
    pub fn push(&self, msg: Msg, bytes: usize) {
        let mut s = self.lock();
        s.items.push_back((msg, bytes));
        s.bytes += bytes;
        drop(s);
        self.not_empty.notify_one();
    }

    /// The next message, waiting until `deadline` at most.
    pub fn pop_until(&self, deadline: Instant) -> Option<Msg> {
        let mut s = self.lock();
        loop {
            if let Some((msg, bytes)) = s.items.pop_front() {
                s.bytes -= bytes;
                drop(s);
                self.room.notify_all();
                return Some(msg);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            s = self
                .not_empty
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Waits until the queue is at most half full (items and bytes), or `timeout`.
    /// Returns whether it is.
    pub fn wait_for_room(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        loop {
            if s.items.len() <= self.max_items / 2 && s.bytes <= self.max_bytes / 2 {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            s = self
                .room
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// (items, bytes) queued.
    pub fn depth(&self) -> (u64, u64) {
        let s = self.lock();
        (s.items.len() as u64, s.bytes as u64)
    }
}
