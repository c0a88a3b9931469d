//! The ZooKeeper-era consumer (stub until the real one lands).
use crate::bugs::BugSet;
use crate::node::{Ctx, Input, Node, NodeId};

/// Settings of the ZooKeeper-era consumer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZkConsumerConfig {
    /// Session timeout.
    pub zk_session_timeout_ms: u64,
    /// Auto-commit.
    pub auto_commit: bool,
}

/// The ZooKeeper-era consumer node.
pub struct ZkConsumer {}

impl ZkConsumer {
    /// A consumer.
    pub fn new(
        _zk: Vec<NodeId>,
        _brokers: Vec<NodeId>,
        _group: &str,
        _topic: &str,
        _partitions: u32,
        _cfg: ZkConsumerConfig,
        _bugs: &BugSet,
    ) -> ZkConsumer {
        ZkConsumer {}
    }
}

impl Node for ZkConsumer {
    fn step(&mut self, _input: Input, _cx: &mut Ctx<'_>) {}
}
