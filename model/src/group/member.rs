//! The group member. (Being written.)

/// Member settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberConfig {}

/// The member node.
pub struct GroupMember {}
