//! The ZooKeeper-era consumer (Kafka 0.8's high-level consumer). (Being written.)

/// Settings of the ZooKeeper-era consumer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZkConsumerConfig {}

/// The ZooKeeper-era consumer node.
pub struct ZkConsumer {}
