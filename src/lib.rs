//! Beacon (placeholder while the crate is laid out).

pub mod emergency;
