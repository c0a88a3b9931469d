//! Kafka brokers in ZooKeeper mode, as sans-IO state machines.
pub mod epoch;
pub mod log;
pub mod types;
