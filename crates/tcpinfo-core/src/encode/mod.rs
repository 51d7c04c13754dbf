//! Encoding of reported connections as M-Lab `ArchivalRecord` JSON lines.

pub mod archival;
pub mod rfc3339;
