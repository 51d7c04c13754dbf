//! Core errors to JS errors: the reason starts with the stable code in brackets
//! (`[ERR_SOCKET] …`); `src/native.ts` moves it to the error's `code` property.

/// Converts a core error, keeping its code.
pub fn to_napi(e: &tcpinfo_core::Error) -> napi::Error {
    napi::Error::from_reason(format!("[{}] {e}", e.code()))
}

/// A configuration error raised by the binding's own conversions.
pub fn config(message: &str) -> napi::Error {
    to_napi(&tcpinfo_core::Error::Config(message.to_owned()))
}

/// Converts a passive RTT error, keeping its code.
pub fn rtt_to_napi(e: &tcpinfo_rtt::Error) -> napi::Error {
    napi::Error::from_reason(format!("[{}] {e}", e.code()))
}
