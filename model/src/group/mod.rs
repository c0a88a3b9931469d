//! Consumer groups: the group coordinator that brokers host, the group
//! member (the consumer's ConsumerCoordinator and its fetcher), the
//! assignors, and the ZooKeeper-era consumer (Kafka 0.8's high-level
//! consumer).
//!
//! - `types`: generations, errors, the group protocol's messages, the
//!   member node's workload requests and replies.
//! - `records`: the group-metadata and offset-commit records that the
//!   coordinator writes to `__consumer_offsets`, and their encoding.
//! - `assignor`: `range` and `cooperative-sticky` (KIP-429).
//! - `coordinator`: Kafka's GroupCoordinator / GroupMetadataManager
//!   (classic protocol), held by each broker as a field of its own type.
//! - `member`: the group-member client node.
//! - `zk_consumer`: the ZooKeeper-era consumer (registrations, owner
//!   claims and offsets in ZooKeeper).
//!
//! The offsets topic `__consumer_offsets` is an ordinary replicated topic
//! of the brokers (created through ZooKeeper on the first FindCoordinator,
//! `offsets.topic.num.partitions` partitions, replication factor 3): a
//! commit survives exactly what an acks=all produced record survives. A
//! group's coordinator is the leader of partition
//! [`offsets_partition`]`(group, n)`.

pub mod assignor;
#[cfg(test)]
mod cluster_tests;
pub mod coordinator;
pub mod member;
pub mod records;
pub mod types;
pub mod zk_consumer;

pub use coordinator::{GroupCoordinator, GroupState, GroupView};
pub use member::{GroupMember, MemberConfig};
pub use types::*;
pub use zk_consumer::{ZkConsumer, ZkConsumerConfig};

use crate::bugs::{BugInfo, BugSet};

/// The offsets topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Java's `String.hashCode` of `s` (over its UTF-16 code units), which
/// Kafka uses to place a group: `abs(hashCode(group)) % n`.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// The partition of `__consumer_offsets` that holds `group`, out of `n`
/// (Kafka's `Utils.abs(groupId.hashCode) % groupMetadataTopicPartitionCount`,
/// where `Utils.abs(Integer.MIN_VALUE)` is 0).
pub fn offsets_partition(group: &str, n: u32) -> u32 {
    let h = java_string_hash(group);
    let abs = if h == i32::MIN { 0 } else { h.unsigned_abs() };
    abs % n.max(1)
}

/// The consumer-group planted bugs.
pub const BUGS: &[BugInfo] = &[
    BugInfo {
        name: "group_commit_ignores_generation",
        component: "group",
        breaks: "OffsetCommit is accepted without checking the generation and member id; a zombie member's commit moves the offset back (zombie-commit)",
        scenario: "group-coordinator-partition",
        anomaly: "zombie-commit",
    },
    BugInfo {
        name: "group_offsets_not_replicated",
        component: "group",
        breaks: "the coordinator answers a commit once its leader appended it (acks=1); a coordinator fail-over loses or rewinds committed offsets (offset-regression)",
        scenario: "group-coordinator-crash",
        anomaly: "offset-regression",
    },
    BugInfo {
        name: "group_no_revoke_commit",
        component: "group",
        breaks: "a member gives up partitions without committing what it processed (with auto-commit, up to an interval of records); whoever takes them next repeats what it had processed (duplicate-beyond-window)",
        scenario: "group-rolling-restart",
        anomaly: "duplicate-beyond-window",
    },
    BugInfo {
        name: "group_poll_timeout_ignored",
        component: "group",
        breaks: "no max.poll.interval.ms enforcement: a stuck member keeps its partitions and the group never rebalances around it (group-not-recovered)",
        scenario: "group-zombie-poll",
        anomaly: "group-not-recovered",
    },
    BugInfo {
        name: "group_cooperative_no_two_phase",
        component: "group",
        breaks: "the cooperative-sticky assignor hands a partition to its new owner in the round in which the old owner still holds it (group-split-brain)",
        scenario: "group-cooperative-churn",
        anomaly: "group-split-brain",
    },
    BugInfo {
        name: "zk_consumer_owner_race",
        component: "group",
        breaks: "the ZooKeeper-era consumer takes a partition before its previous owner's ephemeral owner node is gone (group-split-brain)",
        scenario: "group-zk-session-expiry",
        anomaly: "group-split-brain",
    },
];

/// The group bugs switched on for one node, read at construction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupBugs {
    /// `group_commit_ignores_generation`.
    pub commit_ignores_generation: bool,
    /// `group_offsets_not_replicated`.
    pub offsets_not_replicated: bool,
    /// `group_no_revoke_commit`.
    pub no_revoke_commit: bool,
    /// `group_poll_timeout_ignored`.
    pub poll_timeout_ignored: bool,
    /// `group_cooperative_no_two_phase`.
    pub cooperative_no_two_phase: bool,
    /// `zk_consumer_owner_race`.
    pub zk_consumer_owner_race: bool,
}

impl GroupBugs {
    /// Reads the switches from a bug set.
    pub fn from_set(b: &BugSet) -> GroupBugs {
        GroupBugs {
            commit_ignores_generation: b.on("group_commit_ignores_generation"),
            offsets_not_replicated: b.on("group_offsets_not_replicated"),
            no_revoke_commit: b.on("group_no_revoke_commit"),
            poll_timeout_ignored: b.on("group_poll_timeout_ignored"),
            cooperative_no_two_phase: b.on("group_cooperative_no_two_phase"),
            zk_consumer_owner_race: b.on("zk_consumer_owner_race"),
        }
    }
}

/// The coordinator's settings (the broker's `offsets.*` and
/// `group.*` knobs). Times are on the broker's clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// `offsets.topic.num.partitions`.
    pub offsets_partitions: u32,
    /// `offsets.topic.replication.factor`.
    pub offsets_replication_factor: usize,
    /// `group.initial.rebalance.delay.ms`: an empty group's first
    /// rebalance waits this long for more members.
    pub initial_rebalance_delay_ms: u64,
    /// `offsets.commit.timeout.ms`: how long a group or offset write may
    /// wait for acks=all.
    pub commit_timeout_ms: u64,
    /// How long loading a group from the offsets log takes once the
    /// broker becomes leader of its partition (answers
    /// COORDINATOR_LOAD_IN_PROGRESS until then).
    pub load_ms: u64,
    /// Smallest and largest session timeouts accepted
    /// (`group.min.session.timeout.ms`, `group.max.session.timeout.ms`).
    pub min_session_timeout_ms: u64,
    /// See `min_session_timeout_ms`.
    pub max_session_timeout_ms: u64,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            offsets_partitions: 3,
            offsets_replication_factor: 3,
            initial_rebalance_delay_ms: 100,
            commit_timeout_ms: 500,
            load_ms: 20,
            min_session_timeout_ms: 100,
            max_session_timeout_ms: 30_000,
        }
    }
}
