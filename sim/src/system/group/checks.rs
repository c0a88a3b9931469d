//! The group checks (placeholder until the checker lands).
use crate::history::Operation;
use crate::outcome::Violation;

/// What the group checks found.
pub struct GroupReport {
    /// Violations.
    pub violations: Vec<Violation>,
    /// Records processed more than once.
    pub duplicates: u64,
    /// Records processed.
    pub processed: u64,
}

/// Checks a group history.
pub fn check(_ops: &[Operation], _partitions: u32, _quiet_from_us: u64) -> GroupReport {
    GroupReport {
        violations: vec![],
        duplicates: 0,
        processed: 0,
    }
}
