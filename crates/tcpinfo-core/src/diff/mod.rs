//! Change detection: which connections are new, changed or gone since the last poll.
//!
//! Per connection we keep a 24-byte slot (cookie, fingerprint, generation, flags) and a
//! 4-byte index entry, never a copy of the message. See `docs/internals/diff/design.md`.

pub mod fingerprint;
pub mod tracker;
