//! M-Lab connection UUIDs: `<prefix>_<cookie as %016X>`.
//!
//! The prefix comes from a prefix file (M-Lab's `-uuid-prefix-file`), else it is
//! `<hostname>_<boot time in unix seconds>_unsafe`, as M-Lab's `uuid` package does when
//! no prefix file exists.

use std::path::Path;

/// The fallback prefix: `<hostname>_<boot time>_unsafe`.
pub fn default_uuid_prefix() -> String {
    format!(
        "{}_{}_unsafe",
        crate::host::hostname(),
        crate::host::boot_time().unwrap_or(0)
    )
}

/// Reads a prefix file (its content, trimmed).
///
/// # Errors
/// [`crate::Error::Config`] when the file cannot be read or is empty.
pub fn read_uuid_prefix(path: &Path) -> crate::Result<String> {
    let s = std::fs::read_to_string(path).map_err(|e| {
        crate::Error::Config(format!(
            "cannot read UUID prefix file {}: {e}",
            path.display()
        ))
    })?;
    let s = s.trim();
    if s.is_empty() {
        return Err(crate::Error::Config(format!(
            "UUID prefix file {} is empty",
            path.display()
        )));
    }
    Ok(s.to_owned())
}

/// The UUID of the connection with `cookie`.
pub fn uuid_for_cookie(prefix: &str, cookie: u64) -> String {
    format!("{prefix}_{cookie:016X}")
}
