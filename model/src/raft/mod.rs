//! Raft as KRaft runs it (KIP-595, with KIP-996's pre-vote and
//! check-quorum), as a sans-IO state machine another node embeds: the
//! KRaft controllers as voters, the brokers as observers.
//!
//! - `types`: the wire messages and the log's record tags.
//! - `quorum_state`: the `quorum-state` file (epoch, vote, leader), fsynced
//!   before a vote is granted or an epoch is taken.
//! - `core`: [`RaftCore`], the replica: its roles, persistence, timers and
//!   disk; `election`: pre-vote, vote, BeginQuorumEpoch, EndQuorumEpoch and
//!   check-quorum; `replication`: pull replication (the leader learns the
//!   voters' offsets from their fetches), the diverging epoch and the high
//!   watermark.
//!
//! The log is Kafka's own partition log ([`crate::kafka::log::PartitionLog`])
//! of `__cluster_metadata-0`: batches with their epoch, the epoch cache,
//! checksummed segments recovered at start. Replicas fsync what they
//! append before it counts: a leader counts only its fsynced end toward the
//! high watermark, a follower fetches again (reporting its new end) only
//! after its fsync completed.
//!
//! - `snapshot`: the host's image saved every `snapshot_every_records`
//!   records, the log start moved past it, FetchSnapshot for a replica
//!   behind the leader's log start.
//!
//! # Simplifications (deliberate, for now)
//!
//! - A snapshot travels in one FetchSnapshot response (the images are
//!   small), not in chunks.
//! - Static voters (no KIP-853 reconfiguration).

pub mod core;
mod election;
pub mod quorum_state;
mod replication;
pub mod snapshot;
pub mod types;

#[cfg(test)]
mod tests;

pub use self::core::{RaftConfig, RaftCore, RaftRole, RaftView};
pub use quorum_state::{QuorumState, QUORUM_STATE_FILE};
pub use snapshot::Snapshot;
pub use types::{data_of, data_value, Epoch, RaftError, RaftFetchData, RaftMsg};

use crate::bugs::{BugInfo, BugSet};

/// The Raft planted bugs.
pub const BUGS: &[BugInfo] = &[
    BugInfo {
        name: "raft_vote_ignores_log",
        component: "raft",
        breaks: "a voter grants a vote without the up-to-date check on the candidate's last epoch and offset; a candidate missing committed records is elected and its followers truncate them",
        scenario: "kraft-controller-crash",
        anomaly: "raft-committed-lost",
    },
    BugInfo {
        name: "raft_votedfor_not_persisted",
        component: "raft",
        breaks: "a voter answers a vote before its quorum-state file is fsynced; a machine crash forgets the vote and it votes again in the same epoch, electing two leaders",
        scenario: "kraft-quorum-state-loss",
        anomaly: "raft-two-leaders",
    },
    BugInfo {
        name: "raft_hw_counts_unflushed",
        component: "raft",
        breaks: "the leader counts its own unflushed log end toward the high watermark; a record is committed with fewer than a majority of durable copies, and a power loss of the leader and one follower loses it",
        scenario: "kraft-slow-disks",
        anomaly: "raft-hw-without-majority",
    },
    BugInfo {
        name: "raft_no_diverging_epoch",
        component: "raft",
        breaks: "the leader answers a fetch without checking the fetcher's last fetched epoch, so a follower appends past a divergence instead of truncating; voters disagree on committed records",
        scenario: "kraft-controller-partition",
        anomaly: "raft-divergence",
    },
];

/// Which Raft planted bugs are on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RaftBugs {
    /// `raft_vote_ignores_log`.
    pub vote_ignores_log: bool,
    /// `raft_votedfor_not_persisted`.
    pub votedfor_not_persisted: bool,
    /// `raft_hw_counts_unflushed`.
    pub hw_counts_unflushed: bool,
    /// `raft_no_diverging_epoch`.
    pub no_diverging_epoch: bool,
}

impl RaftBugs {
    /// The Raft bugs enabled in `b`.
    pub fn from_set(b: &BugSet) -> RaftBugs {
        RaftBugs {
            vote_ignores_log: b.on("raft_vote_ignores_log"),
            votedfor_not_persisted: b.on("raft_votedfor_not_persisted"),
            hw_counts_unflushed: b.on("raft_hw_counts_unflushed"),
            no_diverging_epoch: b.on("raft_no_diverging_epoch"),
        }
    }
}
