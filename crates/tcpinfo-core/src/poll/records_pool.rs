//! Records buffers handed back by consumers and reused by later polls.
//!
//! Why: a batch of 10k changed sockets fills ~13 MiB. Allocating that anew each poll
//! (and growing it by doubling) costs a chain of `realloc` copies plus one page fault per
//! fresh 4 KiB page, on the poller thread, every poll; when the consumer is JS, the
//! buffers are freed later by V8 on another thread, so the allocator rarely hands the
//! same pages back. A consumer that returns its buffers here (the napi binding does it
//! from each `Buffer`'s finalizer) makes the steady state free of allocation and faults.
//!
//! A batch's three regions (index, payloads, lines) differ in size by 40×, and JS returns
//! them one by one, so the pool holds single buffers and hands out the best fit.
//! Bounded: at most `max_buffers` buffers and `max_bytes` of capacity are kept; anything
//! beyond is freed. A consumer that never returns buffers costs nothing.

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::batch::Records;

/// A bounded set of empty, reusable buffers. Shared (`Arc`) between the poller and its
/// consumer; every method takes `&self` and is thread-safe.
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

    /// An empty buffer with room for `capacity` bytes: the smallest pooled one that is big
    /// enough (its pages are mapped already), else a new one with 1/8 more room, so that
    /// batches a little bigger than the last one still fit.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        self.take_counted(capacity).0
    }

    /// [`Self::take`], and whether the buffer came from the pool.
    fn take_counted(&self, capacity: usize) -> (Vec<u8>, bool) {
        let mut free = self.lock();
        let best = free
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= capacity)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i);
        match best {
            Some(i) => (free.swap_remove(i), true),
            None => (Vec::with_capacity(capacity + capacity / 8), false),
        }
    }

    /// Empty regions for a batch, with room for `[index, payloads, lines]` bytes, and how
    /// many of the three came from the pool.
    pub fn take_records(&self, capacities: [usize; 3]) -> (Records, u32) {
        let [(index, a), (payloads, b), (lines, c)] = capacities.map(|n| self.take_counted(n));
        let reused = u32::from(a) + u32::from(b) + u32::from(c);
        (
            Records {
                index,
                payloads,
                lines,
            },
            reused,
        )
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

    /// Gives a batch's three regions back.
    pub fn recycle_records(&self, records: Records) {
        self.recycle(records.index);
        self.recycle(records.payloads);
        self.recycle(records.lines);
    }

    /// Frees the pooled buffers bigger than `max_capacity`: what a burst (a first poll of
    /// every socket, a wave of changes) left behind once batches are small again.
    pub fn trim(&self, max_capacity: usize) {
        self.lock().retain(|b| b.capacity() <= max_capacity);
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

    fn lock(&self) -> MutexGuard<'_, Vec<Vec<u8>>> {
        // The list is valid even if a holder panicked: every operation is one push or remove.
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
    fn hands_out_the_best_fit() {
        let pool = RecordsPool::new(8, 1 << 20);
        for cap in [50_000, 1_000, 10_000] {
            pool.recycle(Vec::with_capacity(cap));
        }
        assert!((10_000..50_000).contains(&pool.take(5_000).capacity()));
        assert!((1_000..10_000).contains(&pool.take(10).capacity()));
        let fresh = pool.take(60_000);
        assert!(fresh.capacity() >= 60_000);
        assert_eq!(
            pool.len(),
            1,
            "the 50k buffer is still there: too small for 60k"
        );
    }

    #[test]
    fn batch_regions_round_trip() {
        let pool = RecordsPool::new(8, 1 << 20);
        let hint = [64, 5000, 8000];
        let (r, reused) = pool.take_records(hint);
        assert_eq!(reused, 0);
        let ptrs = (r.index.as_ptr(), r.payloads.as_ptr(), r.lines.as_ptr());
        pool.recycle_records(r);
        assert_eq!(pool.len(), 3);
        let (again, reused) = pool.take_records(hint);
        assert_eq!(reused, 3);
        assert_eq!(
            (
                again.index.as_ptr(),
                again.payloads.as_ptr(),
                again.lines.as_ptr()
            ),
            ptrs,
            "each region gets its own buffer back"
        );
    }

    #[test]
    fn trim_frees_the_big_ones() {
        let pool = RecordsPool::new(8, 1 << 30);
        for cap in [100, 10_000, 1_000_000] {
            pool.recycle(Vec::with_capacity(cap));
        }
        pool.trim(50_000);
        assert_eq!(pool.len(), 2);
        assert!(pool.held_bytes() < 50_000);
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
