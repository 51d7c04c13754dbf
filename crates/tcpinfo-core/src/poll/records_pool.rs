//! Records buffers handed back by consumers and reused by later polls.
//!
//! Why: a batch of 10k changed sockets frames ~13 MiB. Allocating that anew each poll
//! (and growing it by doubling) costs a chain of `realloc` copies plus one page fault per
//! fresh 4 KiB page, on the poller thread, every poll; when the consumer is JS, the
//! buffer is freed later by V8 on another thread, so the allocator rarely hands the
//! same pages back. A consumer that returns its buffers here (the napi binding does it
//! from the `Buffer` finalizer) makes the steady state fault-free.
//!
//! Bounded: at most `max_buffers` buffers and `max_bytes` of capacity are kept; anything
//! beyond is freed. A consumer that never returns buffers costs nothing but the pool's
//! empty `Vec`.

use std::sync::{Mutex, PoisonError};

/// A bounded stack of empty, reusable records buffers. Shared (`Arc`) between the poller
/// and its consumer; every method takes `&self` and is thread-safe.
#[derive(Debug)]
pub struct RecordsPool {
    free: Mutex<Vec<Vec<u8>>>,
    max_buffers: usize,
    max_bytes: usize,
}

impl RecordsPool {
    /// A pool keeping at most `max_buffers` buffers of at most `max_bytes` capacity in all.
    pub fn new(max_buffers: usize, max_bytes: usize) -> Self {
        Self {
            free: Mutex::new(Vec::with_capacity(max_buffers)),
            max_buffers,
            max_bytes,
        }
    }

    /// An empty buffer with room for `capacity` bytes: the most recently returned one when
    /// it is big enough (its pages are still mapped and likely cached), else a new one.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        let reused = self.lock().pop();
        match reused {
            Some(buf) if buf.capacity() >= capacity => buf,
            // Too small: growing it would copy nothing useful; a fresh allocation is as cheap.
            _ => Vec::with_capacity(capacity),
        }
    }

    /// Gives a buffer back for reuse; it is freed instead when the pool is full.
    pub fn recycle(&self, mut buf: Vec<u8>) {
        if buf.capacity() == 0 {
            return;
        }
        buf.clear();
        let mut free = self.lock();
        let held: usize = free.iter().map(Vec::capacity).sum();
        if free.len() < self.max_buffers && held + buf.capacity() <= self.max_bytes {
            free.push(buf);
        }
    }

    /// Buffers held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no buffer is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Capacity held now, bytes.
    pub fn held_bytes(&self) -> usize {
        self.lock().iter().map(Vec::capacity).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // The stack is valid even if a holder panicked: every operation is one push or pop.
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_the_same_allocation() {
        let pool = RecordsPool::new(4, 1 << 20);
        let mut a = pool.take(1000);
        a.extend_from_slice(&[7; 500]);
        let ptr = a.as_ptr();
        pool.recycle(a);
        let b = pool.take(800);
        assert_eq!(b.as_ptr(), ptr);
        assert!(b.is_empty());
        assert!(pool.is_empty());
    }

    #[test]
    fn too_small_buffer_is_replaced() {
        let pool = RecordsPool::new(4, 1 << 20);
        pool.recycle(Vec::with_capacity(100));
        let b = pool.take(10_000);
        assert!(b.capacity() >= 10_000);
        assert!(pool.is_empty(), "the small buffer was dropped, not kept");
    }

    #[test]
    fn bounded_by_count_and_bytes() {
        let pool = RecordsPool::new(2, 3000);
        for _ in 0..5 {
            pool.recycle(Vec::with_capacity(1000));
        }
        assert_eq!(pool.len(), 2);
        let pool = RecordsPool::new(10, 2500);
        for _ in 0..5 {
            pool.recycle(Vec::with_capacity(1000));
        }
        assert_eq!(pool.len(), 2);
        assert!(pool.held_bytes() <= 2500);
        pool.recycle(Vec::new());
        assert_eq!(pool.len(), 2, "empty vectors are not kept");
    }
}
