//! Beacon (placeholder while the crate is laid out).

pub mod alarm;
