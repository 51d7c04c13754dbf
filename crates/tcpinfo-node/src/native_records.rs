//! A region of a batch's records crossing to JS as an external `Buffer`, without a copy,
//! whose memory goes back to the poller's [`RecordsPool`] when V8 collects the `Buffer`.
//!
//! napi-rs's own `Buffer` (from a `Vec<u8>`) frees the memory in its finalizer; here the
//! finalizer recycles it instead. At 10k changed sockets per poll that is 13 MiB per poll
//! that is neither reallocated nor faulted in again (docs/BENCHMARKS.md, `watch()`
//! overhead). This is the one place of the binding that calls raw napi.

use std::ffi::c_void;
use std::ptr;
use std::sync::Arc;

use napi::bindgen_prelude::{ToNapiValue, TypeName, ValueType};
use napi::sys;
use tcpinfo_core::RecordsPool;

/// A records region on its way to JS; owns the bytes until V8 releases the `Buffer`.
pub struct PooledBuffer {
    bytes: Vec<u8>,
    pool: Option<Arc<RecordsPool>>,
}

impl PooledBuffer {
    /// Bytes that return to `pool` once JS is done with them (`None`: just freed).
    pub fn new(bytes: Vec<u8>, pool: Option<Arc<RecordsPool>>) -> Self {
        Self { bytes, pool }
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.recycle(std::mem::take(&mut self.bytes));
        }
    }
}

impl TypeName for PooledBuffer {
    fn type_name() -> &'static str {
        "Buffer"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

/// Called by Node on the JS thread once the `Buffer` is unreachable.
unsafe extern "C" fn release(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the `Box<PooledBuffer>` leaked in `to_napi_value`, released
    // exactly once, here; dropping it recycles the bytes.
    drop(unsafe { Box::from_raw(hint.cast::<PooledBuffer>()) });
}

impl ToNapiValue for PooledBuffer {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let mut out = ptr::null_mut();
        let len = val.bytes.len();
        if len == 0 {
            // V8 wants a null data pointer for empty buffers; the Vec goes back to the pool.
            // SAFETY: plain napi call with a valid env and out-pointer.
            let status = unsafe { sys::napi_create_buffer(env, 0, ptr::null_mut(), &raw mut out) };
            return check(status, out);
        }
        // The heap block of the Vec does not move when the Vec itself moves into the box.
        let data = val.bytes.as_ptr().cast_mut().cast::<c_void>();
        let hint = Box::into_raw(Box::new(val));
        // SAFETY: `data` stays valid and unaliased until `release` runs with `hint`.
        let status = unsafe {
            sys::napi_create_external_buffer(
                env,
                len,
                data,
                Some(release),
                hint.cast(),
                &raw mut out,
            )
        };
        if status == sys::Status::napi_ok {
            return Ok(out);
        }
        // Runtimes without external buffers (Electron's sandbox): copy, then recycle ours.
        // SAFETY: `hint` was not taken by napi (the call failed), so it is still ours.
        let val = unsafe { Box::from_raw(hint) };
        // SAFETY: copies `len` readable bytes into a new JS-owned buffer.
        let status =
            unsafe { sys::napi_create_buffer_copy(env, len, data, ptr::null_mut(), &raw mut out) };
        drop(val);
        check(status, out)
    }
}

fn check(status: sys::napi_status, out: sys::napi_value) -> napi::Result<sys::napi_value> {
    if status == sys::Status::napi_ok {
        Ok(out)
    } else {
        Err(napi::Error::from_reason(format!(
            "[ERR_INTERNAL] could not create the records Buffer (napi status {status})"
        )))
    }
}

/// Gives a records region's memory back now instead of at V8's next garbage collection:
/// detaches the `ArrayBuffer` behind one of a batch's `Buffer`s (every view of it then
/// reads as empty), which runs the finalizer above and recycles the bytes into the pool.
///
/// Why: V8 frees external buffers only at a GC, which a consumer that allocates little JS
/// heap does not trigger while a 100k-socket first poll streams through in 16 MiB parts;
/// without this every part stays alive until then (docs/BENCHMARKS.md, `watch()` memory).
/// The caller passes only the `ArrayBuffer` of a batch region it owns whole.
#[napi_derive::napi(catch_unwind, ts_args_type = "region: ArrayBuffer")]
pub fn native_release_region(env: napi::Env, region: napi::Unknown<'_>) -> napi::Result<()> {
    use napi::JsValue as _;
    // SAFETY: plain napi call on a value of this call's env; napi checks that it is a
    // detachable ArrayBuffer and fails (status below) otherwise.
    let status = unsafe { sys::napi_detach_arraybuffer(env.raw(), region.raw()) };
    if status == sys::Status::napi_ok {
        return Ok(());
    }
    Err(napi::Error::from_reason(format!(
        "[ERR_INTERNAL] could not release a records region (napi status {status}): not a detachable ArrayBuffer"
    )))
}

/// Largest allocation glibc may serve from its heap instead of `mmap`: 1 MiB.
#[cfg(target_env = "gnu")]
const MMAP_THRESHOLD: libc::c_int = 1 << 20;

/// Makes glibc give freed records buffers (MiBs each) back to the kernel at once.
///
/// Why: glibc raises its `mmap` threshold to the size of each large block freed (up to
/// 32 MiB), so after a 100k-socket first poll (~125 MiB in parts) later buffers come
/// from the heap, and heap memory freed out of order stays resident: `watch()` held
/// 139 MB at 100k sockets in steady state against 66 MB with a fixed threshold
/// (docs/BENCHMARKS.md). Pooled buffers are reused, so the `mmap` per new buffer is rare.
/// A `MALLOC_MMAP_THRESHOLD_` set by the user wins; musl returns large blocks anyway.
pub fn release_large_buffers_to_the_os() {
    #[cfg(target_env = "gnu")]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only sets a tuning parameter; a failure (0) leaves glibc's default.
        let _tuned = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
    }
}
