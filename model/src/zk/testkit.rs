//! In-crate test harness.
