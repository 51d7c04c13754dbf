//! Change detection: which connections are new, changed or gone since the last poll.
//!
//! Per connection we keep a 16-byte [`tracker::Entry`] (fingerprint, generation, family),
//! never a copy of the message. See `docs/internals/diff/design.md`.

pub mod fingerprint;
pub mod tracker;
