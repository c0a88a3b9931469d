//! The KRaft quorum's wire messages (KIP-595) and the records of its log.
//!
//! Every entry of the Raft log is one value of a Kafka [`Batch`]: the log is
//! an ordinary partition log (`__cluster_metadata-0`), as in Kafka. A value
//! starts with a tag byte: [`TAG_LEADER_CHANGE`] for the control record a new
//! leader writes at the start of its epoch, [`TAG_DATA`] for the state
//! machine's records (opaque here).

use crate::kafka::Batch;
use crate::node::NodeId;

/// A Raft epoch (Kafka's leader epoch of the metadata partition).
pub type Epoch = u32;

/// The tag of the control record a leader writes first in its epoch.
pub const TAG_LEADER_CHANGE: u8 = 0;
/// The tag of a state-machine record.
pub const TAG_DATA: u8 = 1;

/// A log value holding a state-machine record.
pub fn data_value(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 1);
    v.push(TAG_DATA);
    v.extend_from_slice(payload);
    v
}

/// The state-machine record in a log value, `None` for a control record.
pub fn data_of(value: &[u8]) -> Option<&[u8]> {
    match value.split_first() {
        Some((&TAG_DATA, rest)) => Some(rest),
        _ => None,
    }
}

/// Why a quorum request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RaftError {
    /// The request's epoch is older than the receiver's
    /// (FENCED_LEADER_EPOCH); the response names the newer epoch.
    FencedLeaderEpoch,
    /// The receiver does not lead that epoch (NOT_LEADER_OR_FOLLOWER).
    NotLeader,
    /// The request's epoch is newer than any the receiver knows
    /// (UNKNOWN_LEADER_EPOCH).
    UnknownLeaderEpoch,
}

/// What a leader returns for a fetch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RaftFetchData {
    /// Batches from the fetch offset on (none when diverging).
    pub batches: Vec<Batch>,
    /// The leader's high watermark.
    pub high_watermark: u64,
    /// KIP-595's diverging epoch: the fetcher's last fetched epoch does not
    /// end where it thinks on the leader; the largest epoch the leader has
    /// at or below it, and where that epoch ends. The fetcher truncates.
    pub diverging: Option<(Epoch, u64)>,
    /// The fetch offset is below the leader's log start: the end and epoch
    /// of the leader's snapshot, to fetch with FetchSnapshot.
    pub snapshot: Option<(u64, Epoch)>,
}

/// The quorum protocol (KIP-595, with KIP-996's pre-vote).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RaftMsg {
    /// A (pre-)vote request: the candidate's proposed epoch and the end of
    /// its log, for the up-to-date check.
    Vote {
        /// The epoch the candidate campaigns in.
        epoch: Epoch,
        /// The candidate.
        candidate: NodeId,
        /// The epoch of the candidate's last record (0: empty log).
        last_epoch: Epoch,
        /// The candidate's log end offset.
        last_offset: u64,
        /// A pre-vote (KIP-996): changes no state on the voter.
        pre_vote: bool,
    },
    /// The answer to a vote.
    VoteResp {
        /// The voter's epoch.
        epoch: Epoch,
        /// The leader the voter knows in its epoch.
        leader: Option<NodeId>,
        /// Whether the vote was granted.
        granted: bool,
        /// Whether it answers a pre-vote.
        pre_vote: bool,
    },
    /// A new leader announces its epoch to the voters.
    BeginQuorumEpoch {
        /// The new epoch.
        epoch: Epoch,
        /// Its leader.
        leader: NodeId,
    },
    /// A leader steps down gracefully (shutdown), naming the voters best
    /// placed to succeed it, most caught up first.
    EndQuorumEpoch {
        /// The epoch that ends.
        epoch: Epoch,
        /// Its leader.
        leader: NodeId,
        /// Preferred successors, in order.
        successors: Vec<NodeId>,
    },
    /// A follower's or observer's fetch of the log.
    Fetch {
        /// Matches the response.
        corr: u64,
        /// The epoch the fetcher believes current.
        epoch: Epoch,
        /// The fetcher.
        replica: NodeId,
        /// The fetcher's log end offset (what it holds durably).
        offset: u64,
        /// The epoch of the fetcher's last record (0: none).
        last_fetched_epoch: Epoch,
    },
    /// The answer to a fetch.
    FetchResp {
        /// Matches the request.
        corr: u64,
        /// The responder's epoch.
        epoch: Epoch,
        /// The leader the responder knows in its epoch.
        leader: Option<NodeId>,
        /// Records, or why not.
        result: Result<RaftFetchData, RaftError>,
    },
    /// A fetch of the leader's newest snapshot (KIP-630).
    FetchSnapshot {
        /// Matches the response.
        corr: u64,
        /// The epoch the fetcher believes current.
        epoch: Epoch,
        /// The fetcher.
        replica: NodeId,
    },
    /// The answer: the snapshot (whole: the images are small).
    FetchSnapshotResp {
        /// Matches the request.
        corr: u64,
        /// The responder's epoch.
        epoch: Epoch,
        /// The leader the responder knows in its epoch.
        leader: Option<NodeId>,
        /// The snapshot, or why not.
        result: Result<crate::raft::snapshot::Snapshot, RaftError>,
    },
}
