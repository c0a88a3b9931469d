//! The consumer-group vocabulary: generations, member ids, error codes, the
//! group wire messages (Kafka's classic group protocol: FindCoordinator,
//! JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
//! OffsetFetch), and the workload-facing requests and replies of a
//! group-member client node.

use crate::kafka::Tp;
use crate::node::NodeId;
use crate::time::SimTime;

/// A group generation; [`NO_GENERATION`] when a member has none.
pub type Generation = i32;

/// The generation of a member outside any generation (Kafka's `-1`).
pub const NO_GENERATION: Generation = -1;

/// A group member id (Kafka's `consumer-<client>-<uuid>` strings); empty
/// for a member joining for the first time.
pub type MemberId = String;

/// A group error code (the subset of Kafka's the classic protocol uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, thiserror::Error)]
pub enum GroupError {
    /// The broker is not the group's coordinator (find it again).
    #[error("NOT_COORDINATOR")]
    NotCoordinator,
    /// The coordinator is still loading the group from the offsets log.
    #[error("COORDINATOR_LOAD_IN_PROGRESS")]
    CoordinatorLoadInProgress,
    /// No coordinator right now (the offsets partition has no leader, or
    /// the offsets topic is being created).
    #[error("COORDINATOR_NOT_AVAILABLE")]
    CoordinatorNotAvailable,
    /// The request's generation is not the group's.
    #[error("ILLEGAL_GENERATION")]
    IllegalGeneration,
    /// The member is not in the group (expired, left, or never joined).
    #[error("UNKNOWN_MEMBER_ID")]
    UnknownMemberId,
    /// The group is rebalancing: rejoin.
    #[error("REBALANCE_IN_PROGRESS")]
    RebalanceInProgress,
    /// The member supports none of the group's protocols.
    #[error("INCONSISTENT_GROUP_PROTOCOL")]
    InconsistentGroupProtocol,
    /// A ZooKeeper-era consumer could not claim a partition yet.
    #[error("PARTITION_CLAIM_PENDING")]
    ClaimPending,
    /// The coordinator's write of the group or offsets did not complete in
    /// time (outcome unknown).
    #[error("REQUEST_TIMED_OUT")]
    RequestTimedOut,
    /// The connection broke before the answer (outcome unknown).
    #[error("NETWORK_EXCEPTION")]
    Network,
    /// The offsets partition lost too many replicas for an acks=all write.
    #[error("NOT_ENOUGH_REPLICAS")]
    NotEnoughReplicas,
}

impl GroupError {
    /// Whether the error leaves a write's outcome unknown (it may have
    /// been appended to the offsets log and survive).
    pub fn indeterminate(self) -> bool {
        matches!(
            self,
            GroupError::RequestTimedOut | GroupError::Network | GroupError::NotEnoughReplicas
        )
    }
}

/// A partition assignment strategy (`partition.assignment.strategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Assignor {
    /// Kafka's `range`: eager (every member revokes everything before it
    /// rejoins), partitions of each topic split in ranges by member id.
    Range,
    /// Kafka's `cooperative-sticky` (KIP-429): a member keeps what it still
    /// owns; a partition that moves is first revoked in one round and
    /// assigned in the next.
    CooperativeSticky,
}

impl Assignor {
    /// The protocol name in JoinGroup.
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// Whether the strategy is cooperative (incremental).
    pub fn cooperative(self) -> bool {
        matches!(self, Assignor::CooperativeSticky)
    }
}

/// A member's subscription as it sends it in JoinGroup (the consumer
/// protocol's metadata): the topics, and (KIP-429) what it owns now.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Subscription {
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Partitions the member owns as it joins (cooperative protocols).
    pub owned: Vec<Tp>,
    /// The generation of the assignment it owns them in.
    pub owned_generation: Generation,
}

/// What a JoinGroup answers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JoinResult {
    /// The new generation.
    pub generation: Generation,
    /// The protocol (assignor) the group chose.
    pub protocol: Assignor,
    /// The group leader's member id.
    pub leader: MemberId,
    /// The receiver's member id (assigned by the coordinator on first join).
    pub member_id: MemberId,
    /// Every member with its subscription: only in the leader's answer.
    pub members: Vec<(MemberId, Subscription)>,
}

/// A message of the group protocol.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GroupMsg {
    /// Client -> any broker: which broker coordinates `group`?
    FindCoordinator {
        /// Correlation id, echoed.
        corr: u64,
        /// The group id.
        group: String,
    },
    /// The coordinator's node id, or why none.
    FindCoordinatorResp {
        /// Correlation id.
        corr: u64,
        /// The coordinator or an error.
        result: Result<NodeId, GroupError>,
    },
    /// Member -> coordinator: join (or rejoin) the group.
    JoinGroup {
        /// Correlation id.
        corr: u64,
        /// The group id.
        group: String,
        /// Empty on the first join.
        member_id: MemberId,
        /// `session.timeout.ms`.
        session_timeout_ms: u64,
        /// `max.poll.interval.ms`, the rebalance timeout.
        rebalance_timeout_ms: u64,
        /// Supported protocols in preference order, with the subscription.
        protocols: Vec<Assignor>,
        /// The subscription.
        subscription: Subscription,
    },
    /// Coordinator -> member, when the join phase ends.
    JoinGroupResp {
        /// Correlation id.
        corr: u64,
        /// The generation, or an error.
        result: Result<JoinResult, GroupError>,
    },
    /// Member -> coordinator: fetch my assignment (the leader sends
    /// everyone's).
    SyncGroup {
        /// Correlation id.
        corr: u64,
        /// The group id.
        group: String,
        /// The generation joined.
        generation: Generation,
        /// The member id.
        member_id: MemberId,
        /// The leader's assignment of every member; empty for others.
        assignments: Vec<(MemberId, Vec<Tp>)>,
    },
    /// Coordinator -> member: its assignment.
    SyncGroupResp {
        /// Correlation id.
        corr: u64,
        /// The member's partitions, or an error.
        result: Result<Vec<Tp>, GroupError>,
    },
    /// Member -> coordinator: still alive in `generation`.
    Heartbeat {
        /// Correlation id.
        corr: u64,
        /// The group id.
        group: String,
        /// The member's generation.
        generation: Generation,
        /// The member id.
        member_id: MemberId,
    },
    /// Coordinator -> member.
    HeartbeatResp {
        /// Correlation id.
        corr: u64,
        /// Ok, or REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID.
        result: Result<(), GroupError>,
    },
    /// Member -> coordinator: leaving the group.
    LeaveGroup {
        /// Correlation id.
        corr: u64,
        /// The group id.
        group: String,
        /// The member id.
        member_id: MemberId,
    },
    /// Coordinator -> member.
    LeaveGroupResp {
        /// Correlation id.
        corr: u64,
        /// Ok or an error.
        result: Result<(), GroupError>,
    },
    /// Member -> coordinator: commit these positions.
    OffsetCommit {
        /// Correlation id.
        corr: u64,
        /// The group id.
        group: String,
        /// The member's generation ([`NO_GENERATION`] for a standalone
        /// consumer's commit to an empty group).
        generation: Generation,
        /// The member id.
        member_id: MemberId,
        /// Partition -> next offset to consume.
        offsets: Vec<(Tp, u64)>,
    },
    /// Coordinator -> member, once the commit is in the offsets log under
    /// acks=all (or refused).
    OffsetCommitResp {
        /// Correlation id.
        corr: u64,
        /// Ok or an error.
        result: Result<(), GroupError>,
    },
    /// Member -> coordinator: the committed offsets of these partitions.
    OffsetFetch {
        /// Correlation id.
        corr: u64,
        /// The group id.
        group: String,
        /// The partitions.
        tps: Vec<Tp>,
    },
    /// Coordinator -> member.
    OffsetFetchResp {
        /// Correlation id.
        corr: u64,
        /// Per partition the committed offset (`None`: none), or an error.
        result: Result<Vec<(Tp, Option<u64>)>, GroupError>,
    },
}

impl GroupMsg {
    /// The correlation id of any group message.
    pub fn corr(&self) -> u64 {
        match self {
            GroupMsg::FindCoordinator { corr, .. }
            | GroupMsg::FindCoordinatorResp { corr, .. }
            | GroupMsg::JoinGroup { corr, .. }
            | GroupMsg::JoinGroupResp { corr, .. }
            | GroupMsg::SyncGroup { corr, .. }
            | GroupMsg::SyncGroupResp { corr, .. }
            | GroupMsg::Heartbeat { corr, .. }
            | GroupMsg::HeartbeatResp { corr, .. }
            | GroupMsg::LeaveGroup { corr, .. }
            | GroupMsg::LeaveGroupResp { corr, .. }
            | GroupMsg::OffsetCommit { corr, .. }
            | GroupMsg::OffsetCommitResp { corr, .. }
            | GroupMsg::OffsetFetch { corr, .. }
            | GroupMsg::OffsetFetchResp { corr, .. } => *corr,
        }
    }
}

/// A workload request to a group-member client node (the application's
/// calls into its consumer).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GroupRequest {
    /// `poll()`: take part in any rebalance (revoking, committing what was
    /// processed, rejoining, fetching committed positions), then fetch once
    /// from the owned partitions. The records returned are processed by
    /// the application before its next call. Replies [`GroupReply::Polled`].
    Poll,
    /// `commitSync()`: commit the positions of everything processed.
    /// Replies [`GroupReply::Committed`].
    Commit,
}

/// How a commit ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CommitOutcome {
    /// The coordinator acknowledged it.
    Ok,
    /// It surely did not take effect (refused, or never sent).
    Failed(GroupError),
    /// It may or may not have taken effect.
    Unknown(GroupError),
}

/// One commit a member made, as the history records it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CommitRecord {
    /// The member id it carried.
    pub member: MemberId,
    /// The generation it carried.
    pub generation: Generation,
    /// Partition -> next offset to consume.
    pub offsets: Vec<(Tp, u64)>,
    /// How it ended.
    pub outcome: CommitOutcome,
    /// When the member began it: a commit made inside another call (a
    /// revocation, an auto-commit) may have started before that call.
    pub started: SimTime,
}

/// Where an assigned partition's position came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AssignedPartition {
    /// The partition.
    pub tp: Tp,
    /// The committed offset OffsetFetch (or the offsets znode) returned,
    /// `None` when the group had none.
    pub committed: Option<u64>,
    /// The position consumption starts from (`committed`, or
    /// `auto.offset.reset = earliest` when none).
    pub start: u64,
    /// The member id and generation (round) it was assigned in: a report
    /// of it may come in a later call, after the member left them.
    pub member: MemberId,
    /// See `member`.
    pub generation: Generation,
    /// When the member asked for the committed offset: every commit
    /// acknowledged before then must be in `committed`.
    pub asked: SimTime,
}

/// What changed in a member during one call, for the history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct GroupEvents {
    /// Commits made inside the call (revocation, auto-commit).
    pub commits: Vec<CommitRecord>,
    /// Partitions given up inside the call.
    pub revoked: Vec<Tp>,
    /// Partitions taken inside the call, with their start positions.
    pub assigned: Vec<AssignedPartition>,
    /// Positions reset inside the call (log truncated below the position,
    /// detected through the leader epoch), with the new position.
    pub resets: Vec<(Tp, u64)>,
    /// The member found it was no longer in the group (expired, fenced,
    /// poll timeout), with why.
    pub lost: Option<GroupError>,
}

/// A group member's answer to the workload.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GroupReply {
    /// The records fetched (to be processed), and what changed.
    Polled {
        /// The member id after the call.
        member: MemberId,
        /// The generation of the member's assignment after the call.
        generation: Generation,
        /// Partitions owned after the call.
        owned: Vec<Tp>,
        /// `(partition, offset, value)` in offset order per partition.
        records: Vec<(Tp, u64, Vec<u8>)>,
        /// What happened inside the call.
        events: GroupEvents,
    },
    /// The answer to [`GroupRequest::Commit`].
    Committed {
        /// The commit (member, generation, offsets, outcome).
        commit: CommitRecord,
        /// What else happened inside the call.
        events: GroupEvents,
    },
}
