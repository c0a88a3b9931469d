//! The messages that cross the simulated network, and client requests/replies.
//!
//! One enum per direction for the whole world, with a variant per protocol,
//! so that systems running side by side (Kafka beside ZooKeeper) share one
//! network and one trace.

use crate::demo::{DemoMsg, DemoReply, DemoRequest};
use crate::group::{GroupMsg, GroupReply, GroupRequest};
use crate::kafka::{KafkaMsg, KafkaReply, KafkaRequest};
use crate::zk::{ZkMsg, ZkReply, ZkRequest};

/// A message between nodes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Msg {
    /// The demo replicated-register protocol (engine tests).
    Demo(DemoMsg),
    /// The ZooKeeper ensemble (election, ZAB, client protocol).
    Zk(ZkMsg),
    /// Kafka brokers and clients (replication, control, client protocol).
    Kafka(KafkaMsg),
    /// The consumer-group protocol (members and coordinators).
    Group(GroupMsg),
    /// The KRaft metadata quorum (KIP-595).
    Raft(crate::raft::RaftMsg),
    /// KRaft's controller RPCs (registration, heartbeats, AlterPartition).
    Kraft(crate::kraft::KraftMsg),
}

/// A request from the workload to a client node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClientRequest {
    /// Demo register operations.
    Demo(DemoRequest),
    /// A ZooKeeper client operation (see [`crate::zk::ZkRequest`]).
    Zk(ZkRequest),
    /// A Kafka producer or consumer operation (see [`crate::kafka::KafkaRequest`]).
    Kafka(KafkaRequest),
    /// A group member's operation (see [`crate::group::GroupRequest`]).
    Group(GroupRequest),
}

/// A client node's answer to the workload.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClientReply {
    /// Demo register replies.
    Demo(DemoReply),
    /// A ZooKeeper client's answer (see [`crate::zk::ZkReply`]).
    Zk(ZkReply),
    /// A Kafka client's answer (see [`crate::kafka::KafkaReply`]).
    Kafka(KafkaReply),
    /// A group member's answer (see [`crate::group::GroupReply`]).
    Group(GroupReply),
}
