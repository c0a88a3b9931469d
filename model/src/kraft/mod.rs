//! KRaft mode: the cluster metadata in a Raft quorum of controllers
//! ([`crate::raft`]) instead of ZooKeeper.
//!
//! - `records`: the metadata records (RegisterBroker, Fence/UnfenceBroker,
//!   TopicRecord, PartitionRecord, PartitionChangeRecord, ProducerIds,
//!   NoOp) and the controller RPCs (BrokerRegistration, BrokerHeartbeat,
//!   AlterPartition, CreateTopics, AllocateProducerIds).
//! - `image`: the metadata image built by applying committed records.
//! - `decide`: the active controller's partition decisions (ISR, ELR,
//!   leader election).
//! - `controller`: [`KraftController`], a voter that is the active
//!   controller while it leads the quorum and has replayed the log.
//! - `broker`: the broker's side ([`crate::kafka::KafkaBroker`] with
//!   `KafkaConfig::kraft` set): an observer of the metadata log whose
//!   replicas follow the records, registration and heartbeats, ISR changes
//!   through AlterPartition, producer-id blocks.

pub(crate) mod broker;
pub mod controller;
pub mod decide;
pub mod image;
pub mod records;

pub use controller::KraftController;
pub use image::MetadataImage;
pub use records::{KraftError, KraftMsg, MetadataRecord, PartitionRecord};

use crate::bugs::{BugInfo, BugSet};
use crate::node::NodeId;
use crate::raft::{RaftBugs, RaftConfig};

/// The KRaft planted bugs.
pub const BUGS: &[BugInfo] = &[
    BugInfo {
        name: "kraft_no_broker_fencing",
        component: "kraft",
        breaks: "a partition leader that cannot reach the active controller adopts its ISR shrink without the controller's answer; cut off with one follower, it keeps acknowledging acks=all writes on a partition the controller has moved away, and they are lost when it learns of the new leader",
        scenario: "kraft-broker-fenced",
        anomaly: "lost-write",
    },
    BugInfo {
        name: "kraft_stale_metadata_leader",
        component: "kraft",
        breaks: "a newly elected controller acts before it has replayed the metadata log to its own epoch's first record: it decides from the image as far as it had applied it (after a restart, its snapshot's), missing the last records the previous controller wrote, and goes on deciding from that image while the log says otherwise (refusing ISR changes whose partition epoch the log moved on, electing from ISRs the log has left)",
        scenario: "kraft-quorum-restart",
        anomaly: "metadata-divergence",
    },
];

/// Which KRaft planted bugs are on (the Raft ones included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KraftBugs {
    /// The quorum's bugs.
    pub raft: RaftBugs,
    /// `kraft_no_broker_fencing`.
    pub no_broker_fencing: bool,
    /// `kraft_stale_metadata_leader`.
    pub stale_metadata_leader: bool,
}

impl KraftBugs {
    /// The KRaft bugs enabled in `b`.
    pub fn from_set(b: &BugSet) -> KraftBugs {
        KraftBugs {
            raft: RaftBugs::from_set(b),
            no_broker_fencing: b.on("kraft_no_broker_fencing"),
            stale_metadata_leader: b.on("kraft_stale_metadata_leader"),
        }
    }
}

/// The KRaft settings of a cluster (Kafka's, scaled as kzsim's ZooKeeper
/// session is: 600 ms for Kafka's 18 s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KraftSettings {
    /// The controllers (`controller.quorum.voters`).
    pub voters: Vec<NodeId>,
    /// The quorum's timeouts.
    pub raft: RaftConfig,
    /// `broker.session.timeout.ms`: a broker silent this long is fenced
    /// (Kafka 9 s).
    pub broker_session_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms` (Kafka 2 s).
    pub broker_heartbeat_interval_ms: u64,
    /// The active controller's housekeeping tick.
    pub controller_tick_ms: u64,
    /// `metadata.max.idle.interval.ms`: a NoOp record when idle this long
    /// (Kafka 500 ms).
    pub max_idle_ms: u64,
    /// From activation to the first leader-imbalance check.
    pub first_rebalance_ms: u64,
    /// KIP-966's eligible leader replicas.
    pub eligible_leader_replicas: bool,
    /// An AlterPartition unanswered this long counts as failed.
    pub alter_partition_timeout_ms: u64,
}

impl KraftSettings {
    /// The defaults for the quorum `voters`.
    pub fn new(voters: Vec<NodeId>) -> KraftSettings {
        KraftSettings {
            raft: RaftConfig {
                voters: voters.clone(),
                ..RaftConfig::default()
            },
            voters,
            broker_session_timeout_ms: 600,
            broker_heartbeat_interval_ms: 130,
            controller_tick_ms: 25,
            max_idle_ms: 75,
            first_rebalance_ms: 170,
            eligible_leader_replicas: false,
            alter_partition_timeout_ms: 300,
        }
    }
}
