//! Kafka brokers and their clients, as sans-IO state machines running
//! beside a [`crate::zk`] ensemble in the same world (ZooKeeper mode), or
//! beside a [`crate::kraft`] controller quorum (KRaft mode, with
//! `KafkaConfig::kraft` set; the broker's KRaft side is in
//! `crate::kraft::broker`). The replication is the same in both modes.
//!
//! - `types`: topic partitions, batches, errors, wire messages, the
//!   workload's requests and replies.
//! - `log`: the segmented partition log on the simulated disk (CRC per
//!   batch, flush policy, recovery, high-watermark checkpoint) and the
//!   idempotent-producer state (per producer id its epoch and last 5
//!   batches, rebuilt from the log); `epoch`: the leader-epoch cache.
//! - `zkdata`: the znodes (paths and encodings).
//! - `broker`: the broker node (embedded ZooKeeper session, registration,
//!   controller election, LeaderAndIsr / UpdateMetadata, metadata);
//!   `replica`: leader and follower (produce, fetch, ISR, high watermark,
//!   epoch truncation); `controller`: the controller duties; `channel`:
//!   the controller's request queue to each broker.
//! - `producer`, `consumer`: the client nodes the workload drives (the
//!   producer pipelines up to `max_in_flight` batches per partition and
//!   bumps its epoch when the broker lost its sequences, as the Java
//!   client does).
//!
//! # Using it from a host
//!
//! - A ZooKeeper ensemble (`ZkServer`s) runs on its own node ids.
//! - Brokers: `KafkaBroker::new(id, KafkaConfig { zk_servers, .. }, &bugs)`;
//!   deliver `Input::Start { files }` on every (re)boot. A broker halts
//!   (fail-stop) on any disk error, as Kafka does with a single log dir.
//! - Topics are created as Kafka's `kafka-topics.sh --zookeeper` did: a
//!   ZooKeeper client creates `/brokers/topics/<topic>` (persistent) with
//!   [`zkdata::encode_assignment`] of partition -> replica list; the
//!   controller picks it up and elects leaders.
//! - Producer: `KafkaProducer::new(brokers, ProducerConfig::default())`;
//!   `ClientRequest::Kafka(KafkaRequest::Send { tp, value })` ->
//!   `ClientReply::Kafka(KafkaReply::Sent { offset })` or
//!   `KafkaReply::Error { error, definite }` (`definite: false` = `info`).
//! - Consumer: `KafkaConsumer::new(brokers, ConsumerConfig::default())`;
//!   `KafkaRequest::Assign(tps)` -> `Assigned`; `KafkaRequest::Poll` ->
//!   `Polled { records: [(tp, offset, value)], truncated }`.
//! - Checks after a run: `KafkaBroker::replica_view(tp)` (log, HW, role,
//!   leader epoch) and `KafkaBroker::is_controller()`.
//!
//! # Simplifications (deliberate, for now)
//!
//! - ZooKeeper watches are replaced by polling: the controller re-reads
//!   the registrations, topics and partition states every `tick_ms`, and
//!   non-controllers poll `/controller`. Decisions are the same; they come
//!   up to one tick later.
//! - A follower fetches each partition with its own request, and the
//!   leader answers an empty fetch at once (no long poll); the follower
//!   waits `replica_fetch_wait_ms` before the next one.
//! - Producer ids are unique without a `/latest_producer_id_block` znode:
//!   the broker's registration zxid in the high bits, a counter below.
//! - `max_in_flight` counts batches in flight per partition, where Kafka's
//!   `max.in.flight.requests.per.connection` counts requests per broker
//!   connection (a request may carry batches of several partitions).
//! - The broker answers an unknown producer id with a non-zero sequence
//!   with UNKNOWN_PRODUCER_ID as Kafka 1.0 to 2.4 did; newer brokers
//!   accept it. DUPLICATE_SEQUENCE_NUMBER, which no current broker sends
//!   for produce, is not modelled.
//! - No retention, compaction, transactions, or consumer groups; the log
//!   starts at offset 0. `flush.ms` is checked on the tick.

pub mod admin;
pub mod broker;
mod channel;
pub mod consumer;
mod controller;
pub mod epoch;
mod follower;
pub mod log;
pub mod producer;
pub(crate) mod replica;
pub mod shutdown;
pub mod truncation;
pub mod types;
pub mod zkdata;

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod protocol_tests;
#[cfg(test)]
pub(crate) mod testkit;

pub use admin::KafkaAdmin;
pub use broker::{KafkaBroker, ReplicaPosition, ReplicaView};
pub use consumer::{ConsumerConfig, KafkaConsumer};
pub use log::LogConfig;
pub use producer::{KafkaProducer, ProducerConfig};
pub use types::*;

use crate::bugs::{BugInfo, BugSet};
use crate::node::NodeId;

/// The Kafka planted bugs.
pub const BUGS: &[BugInfo] = &[
    BugInfo {
        name: "kafka_truncate_to_hw_on_restart",
        component: "kafka",
        breaks: "Kafka before KIP-101: a restarted broker, made a follower, cuts its log to the high watermark it recovered from its checkpoint, which lags the leader's; committed records go, and if the leader fails before they are fetched again this replica, still in the ISR, leads without them and hands their offsets out again",
        scenario: "kafka-follower-bounce",
        anomaly: "inconsistent-offsets",
    },
    BugInfo {
        name: "kafka_no_epoch_truncation",
        component: "kafka",
        breaks: "a new follower truncates to its high watermark instead of asking the leader where its epoch ends (KIP-101/279); replicas diverge",
        scenario: "kafka-fast-failover",
        anomaly: "replica-divergence",
    },
    BugInfo {
        name: "kafka_single_round_truncation",
        component: "kafka",
        breaks: "Kafka before 2.0 (KAFKA-6361, fixed by KIP-279): a follower whose leader answers OffsetsForLeaderEpoch with an epoch the follower never had truncates once, to the smaller end, and fetches on; after fast fail-overs a divergent tail below that point stays (its followers ask OffsetsForLeaderEpoch, as every Kafka before 2.7 did)",
        scenario: "kafka-unclean-failover",
        anomaly: "replica-divergence",
    },
    BugInfo {
        name: "kafka_epoch_cache_not_truncated",
        component: "kafka",
        breaks: "KAFKA-10706: a truncation at or past the log end skips the leader-epoch cache, so a replica that became leader and appended nothing keeps an entry for that epoch at its log end; as a follower it then fetches with that epoch forever, told each time that it diverged, and never rejoins the ISR",
        scenario: "kafka-idle-leader",
        anomaly: "under-replicated",
    },
    BugInfo {
        name: "kafka_no_fetch_epoch_fencing",
        component: "kafka",
        breaks: "fetches carry no leader epoch (KIP-320); a zombie follower or a consumer reads from a stale leader",
        scenario: "kafka-zombie-follower",
        anomaly: "replica-divergence",
    },
    BugInfo {
        name: "kafka_unclean_election",
        component: "kafka",
        breaks: "unclean.leader.election.enable = true, Kafka's default before 0.11 (KIP-106), not a code bug: with no ISR member alive the controller elects an out-of-sync replica (the 2013 Jepsen loss); records below the high watermark are truncated and their offsets reused by new records",
        scenario: "kafka-lone-leader",
        anomaly: "inconsistent-offsets",
    },
    BugInfo {
        name: "kafka_ignore_min_isr",
        component: "kafka",
        breaks: "the leader acknowledges acks=all writes with an ISR smaller than min.insync.replicas",
        scenario: "kafka-lone-leader",
        anomaly: "lost-write",
    },
    BugInfo {
        name: "kafka_no_controller_epoch_fencing",
        component: "kafka",
        breaks: "brokers obey LeaderAndIsr / UpdateMetadata from a zombie controller with a stale epoch; a zombie's queued UpdateMetadata sets their metadata back to a deposed leader",
        scenario: "kafka-zombie-controller",
        anomaly: "metadata-regression",
    },
    BugInfo {
        name: "kafka_no_idempotent_dedup",
        component: "kafka",
        breaks: "the broker ignores producer ids and sequence numbers, as with idempotence off (enable.idempotence = false, the producer's default before Kafka 3.0): a batch retried after a lost answer is appended twice",
        scenario: "kafka-leader-crash",
        anomaly: "duplicate",
    },
    BugInfo {
        name: "kafka_dedup_window_one",
        component: "kafka",
        breaks: "the broker checks a retry against its producer's last batch only, not the last 5 (KAFKA-5793's family): a retried pipelined batch older than the last gets OUT_OF_ORDER_SEQUENCE_NUMBER, the producer takes it for lost broker state, bumps its epoch and sends it again from sequence 0",
        scenario: "kafka-producer-pipeline",
        anomaly: "duplicate",
    },
    BugInfo {
        name: "kafka_retry_reorders_inflight",
        component: "kafka",
        breaks: "after an error the producer re-sends all of a partition's unacknowledged batches at once, newest first, and takes the OUT_OF_ORDER_SEQUENCE_NUMBER this draws for lost broker state: it bumps its epoch and renumbers them from 0 while older attempts are still in flight (KAFKA-5793 / KAFKA-8483's family)",
        scenario: "kafka-producer-pipeline",
        anomaly: "duplicate",
    },
    BugInfo {
        name: "kafka_min_isr_checked_after_append",
        component: "kafka",
        breaks: "the leader checks min.insync.replicas after appending an acks=all batch instead of before (Kafka's Partition.appendRecordsToLeader refuses first): with the ISR too small it answers NOT_ENOUGH_REPLICAS, which says the batch was not written, for a batch now in its log; the client retries the refusal until its delivery timeout and fails the record, and when the ISR grows back the record is committed and read, an aborted read",
        scenario: "kafka-min-isr-outage",
        anomaly: "G1a",
    },
];

/// The planted bugs switched on for one broker, read at construction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KafkaBugs {
    /// `kafka_truncate_to_hw_on_restart`.
    pub truncate_to_hw_on_restart: bool,
    /// `kafka_no_epoch_truncation`.
    pub no_epoch_truncation: bool,
    /// `kafka_single_round_truncation`.
    pub single_round_truncation: bool,
    /// `kafka_epoch_cache_not_truncated`.
    pub epoch_cache_not_truncated: bool,
    /// `kafka_no_fetch_epoch_fencing`.
    pub no_fetch_epoch_fencing: bool,
    /// `kafka_unclean_election`.
    pub unclean_election: bool,
    /// `kafka_ignore_min_isr`.
    pub ignore_min_isr: bool,
    /// `kafka_no_controller_epoch_fencing`.
    pub no_controller_epoch_fencing: bool,
    /// `kafka_no_idempotent_dedup`.
    pub no_idempotent_dedup: bool,
    /// `kafka_dedup_window_one`.
    pub dedup_window_one: bool,
    /// `kafka_retry_reorders_inflight` (read by the producer).
    pub retry_reorders_inflight: bool,
    /// `kafka_min_isr_checked_after_append`.
    pub min_isr_checked_after_append: bool,
}

impl KafkaBugs {
    /// Reads the switches from a bug set.
    pub fn from_set(b: &BugSet) -> KafkaBugs {
        KafkaBugs {
            truncate_to_hw_on_restart: b.on("kafka_truncate_to_hw_on_restart"),
            no_epoch_truncation: b.on("kafka_no_epoch_truncation"),
            single_round_truncation: b.on("kafka_single_round_truncation"),
            epoch_cache_not_truncated: b.on("kafka_epoch_cache_not_truncated"),
            no_fetch_epoch_fencing: b.on("kafka_no_fetch_epoch_fencing"),
            unclean_election: b.on("kafka_unclean_election"),
            ignore_min_isr: b.on("kafka_ignore_min_isr"),
            no_controller_epoch_fencing: b.on("kafka_no_controller_epoch_fencing"),
            no_idempotent_dedup: b.on("kafka_no_idempotent_dedup"),
            dedup_window_one: b.on("kafka_dedup_window_one"),
            retry_reorders_inflight: b.on("kafka_retry_reorders_inflight"),
            min_isr_checked_after_append: b.on("kafka_min_isr_checked_after_append"),
        }
    }
}

/// Broker configuration (the `server.properties` knobs that matter here).
/// All times are on the broker's own clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaConfig {
    /// The ZooKeeper ensemble's node ids (`zookeeper.connect`).
    pub zk_servers: Vec<NodeId>,
    /// The ZooKeeper session timeout asked for.
    pub zk_session_timeout_ms: u64,
    /// A follower not caught up for this long leaves the ISR
    /// (`replica.lag.time.max.ms`: 30 s in Kafka against an 18 s
    /// ZooKeeper session, kept in that ratio: 1,000 ms against 600 ms, so a
    /// dead broker's session expires, and the controller takes it out of
    /// the ISR, before its leaders would).
    pub replica_lag_time_max_ms: u64,
    /// acks=all needs an ISR at least this big (`min.insync.replicas`).
    pub min_insync_replicas: usize,
    /// Elect out-of-sync replicas when no ISR member is alive
    /// (`unclean.leader.election.enable`).
    pub unclean_leader_election: bool,
    /// Log settings (segment size, flush policy).
    pub log: LogConfig,
    /// Period of the housekeeping tick: controller polling, ISR checks,
    /// `flush.ms`, produce timeouts.
    pub tick_ms: u64,
    /// A follower's wait after an empty fetch (`replica.fetch.wait.max.ms`).
    pub replica_fetch_wait_ms: u64,
    /// Period of the high-watermark checkpoint
    /// (`replica.high.watermark.checkpoint.interval.ms`, 5 s in Kafka).
    pub hw_checkpoint_ms: u64,
    /// Period of the recovery-point checkpoint
    /// (`log.flush.offset.checkpoint.interval.ms`, 60 s in Kafka: twelve
    /// high-watermark periods, kept in that ratio).
    pub recovery_point_checkpoint_ms: u64,
    /// A broker asked to stop first asks the controller to move its
    /// leaderships away (`controlled.shutdown.enable`, on by default).
    pub controlled_shutdown: bool,
    /// ControlledShutdown attempts before an unclean stop
    /// (`controlled.shutdown.max.retries`, 3).
    pub controlled_shutdown_max_retries: u32,
    /// The wait between attempts (`controlled.shutdown.retry.backoff.ms`:
    /// 5 s in Kafka, scaled as the session timeout is, 18 s to 600 ms).
    pub controlled_shutdown_retry_backoff_ms: u64,
    /// How long an attempt waits for the controller's answer
    /// (`controller.socket.timeout.ms`, 30 s in Kafka, scaled the same).
    pub controlled_shutdown_timeout_ms: u64,
    /// Move leadership back to the preferred replica (the first assigned)
    /// when a broker's share of partitions led by someone else passes
    /// `leader_imbalance_per_broker_percentage`
    /// (`auto.leader.rebalance.enable`, on by default as in Kafka).
    pub auto_leader_rebalance: bool,
    /// How often the controller checks the leader imbalance
    /// (`leader.imbalance.check.interval.seconds`: 300 s in Kafka, whose
    /// first check comes 5 s after a controller's election; here both are
    /// scaled as the session timeout is, 18 s to 600 ms).
    pub leader_imbalance_check_interval_ms: u64,
    /// The imbalance a broker may have before its partitions are moved back
    /// (`leader.imbalance.per.broker.percentage`, 10).
    pub leader_imbalance_per_broker_percentage: u64,
    /// How often size-based retention runs
    /// (`log.retention.check.interval.ms`: 300 s in Kafka, scaled as the
    /// session timeout is, 18 s to 600 ms); only with
    /// [`LogConfig::retention_bytes`] set.
    pub log_retention_check_interval_ms: u64,
    /// Followers truncate on the fetch response's diverging epoch
    /// (`inter.broker.protocol.version` 2.7+, the default) rather than
    /// asking OffsetsForLeaderEpoch before their first fetch.
    pub truncation_on_fetch: bool,
    /// The group coordinator's settings (`offsets.*`, `group.*`).
    pub group: crate::group::CoordinatorConfig,
    /// KRaft mode: the metadata comes from this controller quorum, not
    /// from ZooKeeper (`zk_servers` is then empty).
    pub kraft: Option<crate::kraft::KraftSettings>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            zk_servers: Vec::new(),
            zk_session_timeout_ms: 600,
            replica_lag_time_max_ms: 1_000,
            min_insync_replicas: 1,
            unclean_leader_election: false,
            log: LogConfig::default(),
            tick_ms: 50,
            replica_fetch_wait_ms: 10,
            hw_checkpoint_ms: 200,
            recovery_point_checkpoint_ms: 2_400,
            truncation_on_fetch: true,
            controlled_shutdown: true,
            controlled_shutdown_max_retries: 3,
            controlled_shutdown_retry_backoff_ms: 170,
            controlled_shutdown_timeout_ms: 1_000,
            auto_leader_rebalance: true,
            leader_imbalance_check_interval_ms: 10_000,
            leader_imbalance_per_broker_percentage: 10,
            log_retention_check_interval_ms: 10_000,
            group: crate::group::CoordinatorConfig::default(),
            kraft: None,
        }
    }
}
