//! The addon's global allocator: the system allocator (glibc) for every thread, except
//! threads that opt in with [`use_mimalloc_on_this_thread`], whose allocations come from
//! mimalloc. A block is freed by the allocator that owns it, whichever thread frees it.
//!
//! Why two allocators: the Kafka producer thread builds and drops about nine small
//! allocations per exported record (rskafka's owned `Record`: key, value, three header
//! names and values, the header map), 200k+ records per second, and glibc's slow paths for
//! such bulk frees (`malloc_consolidate`, `unlink_chunk`) were a third of that thread's CPU.
//! mimalloc for the whole process made the thread much faster but raised the collector's
//! peak RSS at 100k sockets from 153 MB to 188–216 MB (MiB-sized batch regions kept in its
//! segments), against glibc with a fixed `mmap` threshold (see `release_large_buffers_to_the_os`
//! in the binding). So only the threads that allocate like the producer use it
//! (`docs/BENCHMARKS.md`, "Kafka sink").

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};

use libmimalloc_sys as mi;

thread_local! {
    /// Whether this thread allocates from mimalloc (no destructor: usable until the thread ends).
    static MIMALLOC_HERE: Cell<bool> = const { Cell::new(false) };
}

/// Set once any thread has opted in: until then no block can be mimalloc's, and frees skip
/// the ownership check.
static MIMALLOC_USED: AtomicBool = AtomicBool::new(false);

/// Makes the calling thread's later allocations come from mimalloc (when the process's
/// global allocator is [`SplitAlloc`]; otherwise it has no effect).
pub fn use_mimalloc_on_this_thread() {
    MIMALLOC_USED.store(true, Ordering::Release);
    MIMALLOC_HERE.with(|here| here.set(true));
}

/// Whether blocks allocated on the calling thread now come from mimalloc.
pub fn mimalloc_on_this_thread() -> bool {
    MIMALLOC_HERE.try_with(Cell::get).unwrap_or(false)
}

/// The global allocator: declare it with `#[global_allocator]` in the final artifact.
pub struct SplitAlloc;

/// Whether `p` is a mimalloc block ("relatively fast": a lookup in mimalloc's segment map).
fn mimalloc_owns(p: *mut u8) -> bool {
    // SAFETY: `mi_is_in_heap_region` only compares the address with mimalloc's regions; any
    // pointer may be passed.
    MIMALLOC_USED.load(Ordering::Acquire)
        && unsafe { mi::mi_is_in_heap_region(p.cast_const().cast::<c_void>()) }
}

// SAFETY: every block is allocated by exactly one of the two allocators and returned to
// the same one: frees and reallocations ask mimalloc whether it owns the block.
unsafe impl GlobalAlloc for SplitAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if mimalloc_on_this_thread() {
            // SAFETY: mimalloc accepts any size and power-of-two alignment.
            unsafe { mi::mi_malloc_aligned(layout.size(), layout.align()).cast() }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc(layout) }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if mimalloc_on_this_thread() {
            // SAFETY: as in `alloc`.
            unsafe { mi::mi_zalloc_aligned(layout.size(), layout.align()).cast() }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if mimalloc_owns(ptr) {
            // SAFETY: a live mimalloc block (mimalloc frees from any thread).
            unsafe { mi::mi_free(ptr.cast()) }
        } else {
            // SAFETY: a live block of the system allocator with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if mimalloc_owns(ptr) {
            // SAFETY: a live mimalloc block; the alignment is the block's own.
            unsafe { mi::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast() }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_go_back_to_their_own_allocator_from_any_thread() {
        let a = SplitAlloc;
        let small = Layout::from_size_align(40, 8).unwrap();
        let big = Layout::from_size_align(3 << 20, 64).unwrap();
        // SAFETY: each block is allocated, written, resized and freed once, with its layout.
        unsafe {
            let from_system = a.alloc(small);
            assert!(!mimalloc_owns(from_system));
            let (from_mi, big_mi) = std::thread::spawn(move || {
                use_mimalloc_on_this_thread();
                let p = SplitAlloc.alloc(small) as usize;
                let q = SplitAlloc.alloc_zeroed(big) as usize;
                (p, q)
            })
            .join()
            .unwrap();
            let (from_mi, big_mi) = (from_mi as *mut u8, big_mi as *mut u8);
            assert!(mimalloc_owns(from_mi) && mimalloc_owns(big_mi));
            assert!(!mimalloc_on_this_thread());
            assert_eq!(*big_mi.add((3 << 20) - 1), 0);
            from_mi.write_bytes(7, 40);
            let grown = a.realloc(from_mi, small, 4000);
            assert!(mimalloc_owns(grown));
            assert_eq!(*grown.add(39), 7);
            let grown_system = a.realloc(from_system, small, 4000);
            assert!(!mimalloc_owns(grown_system));
            let bigger = Layout::from_size_align(4000, 8).unwrap();
            a.dealloc(grown, bigger);
            a.dealloc(grown_system, bigger);
            a.dealloc(big_mi, big);
        }
    }
}
