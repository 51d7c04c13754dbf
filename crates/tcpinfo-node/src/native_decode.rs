//! Lazy decoding: a batch's records to plain JS objects, one call per batch.

use napi::bindgen_prelude::{BigInt, Buffer, Env, Object, ToNapiValue};
use napi::sys;
use napi_derive::napi;
use tcpinfo_core::{decode_record, parse::tcp_info::AccEcnLayout, RecordIter, Value};

/// Decodes the payload of every record of a batch (its `index` and `payloads`
/// regions). Records without payload, and malformed ones, decode to `null`. With
/// `tcpInfoPlaceholder`, a record's `tcpInfo` is `true` instead of an object, keeping its
/// place among the keys: the TS side builds it from the `tcp_info` bytes (far cheaper
/// than ~80 properties set through napi) and puts it there.
#[napi(ts_return_type = "Array<Record<string, unknown> | null>")]
pub fn native_decode_records(
    index: &[u8],
    payloads: &[u8],
    tcp_info_placeholder: Option<bool>,
) -> Vec<Option<JsValue>> {
    let layout = AccEcnLayout::running_kernel();
    let placeholder = tcp_info_placeholder.unwrap_or(false);
    RecordIter::new(index, payloads, &[])
        .map(|r| {
            decode_record(&r, layout).map(|mut v| {
                if let (true, Value::Obj(fields)) = (placeholder, &mut v) {
                    for (k, f) in fields.iter_mut() {
                        if *k == "tcpInfo" {
                            *f = Value::Bool(true);
                        }
                    }
                }
                JsValue(v)
            })
        })
        .collect()
}

/// The UUID prefix: the content of `file` if given, else `<hostname>_<boot time>_unsafe`.
#[napi]
pub fn native_uuid_prefix(file: Option<String>) -> napi::Result<String> {
    match file {
        Some(f) => {
            tcpinfo_core::read_uuid_prefix(f.as_ref()).map_err(|e| crate::native_error::to_napi(&e))
        }
        None => Ok(tcpinfo_core::default_uuid_prefix()),
    }
}

/// The running kernel's release string.
#[napi]
pub fn native_kernel_release() -> String {
    tcpinfo_core::kernel_release()
}

/// Whether the reader of the pipe `fd` writes to has gone (see `tcpinfo_core::output_closed`).
#[napi]
pub fn native_output_closed(fd: i32) -> bool {
    tcpinfo_core::output_closed(fd)
}

/// A decoded value on its way to JS.
pub struct JsValue(Value);

impl ToNapiValue for JsValue {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        // SAFETY (all arms): `env` is the live environment napi handed to this call.
        unsafe {
            match val.0 {
                Value::U32(n) => u32::to_napi_value(env, n),
                Value::U64(n) => BigInt::to_napi_value(env, BigInt::from(n)),
                Value::Bool(b) => bool::to_napi_value(env, b),
                Value::Str(s) => String::to_napi_value(env, s),
                Value::Bytes(b) => Buffer::to_napi_value(env, b.into()),
                Value::List(items) => {
                    Vec::to_napi_value(env, items.into_iter().map(JsValue).collect::<Vec<_>>())
                }
                Value::Obj(fields) => {
                    let mut obj = Object::new(&Env::from_raw(env))?;
                    for (k, v) in fields {
                        obj.set(k, JsValue(v))?;
                    }
                    Object::to_napi_value(env, obj)
                }
            }
        }
    }
}
