//! The group coordinator. (Being written.)

/// A group's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    /// No members.
    Empty,
}

/// A read-only view of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupView {}

/// The coordinator.
pub struct GroupCoordinator {}
