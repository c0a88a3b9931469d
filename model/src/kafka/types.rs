//! The Kafka vocabulary shared by brokers, clients and the workload: topic
//! partitions, record batches, error codes, the wire messages between
//! nodes, and the workload-facing requests and replies of the client nodes.

use crate::node::NodeId;

/// A leader epoch (bumped by the controller on every leader change and
/// controller-driven ISR change).
pub type LeaderEpoch = u32;

/// A topic partition.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Tp {
    /// The topic name.
    pub topic: String,
    /// The partition index.
    pub partition: u32,
}

impl Tp {
    /// A topic partition.
    pub fn new(topic: &str, partition: u32) -> Tp {
        Tp {
            topic: topic.to_string(),
            partition,
        }
    }
}

impl std::fmt::Display for Tp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A record batch as stored in the log and shipped by produce and fetch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Batch {
    /// Offset of the first record.
    pub base_offset: u64,
    /// The leader epoch of the leader that appended it.
    pub epoch: LeaderEpoch,
    /// Idempotent producer id, 0 when not idempotent.
    pub producer_id: u64,
    /// The producer epoch (bumped by the producer when it restarts its
    /// sequence numbers, KIP-360), 0 when not idempotent.
    pub producer_epoch: u16,
    /// Sequence number of the first record, `-1` when not idempotent.
    pub base_seq: i64,
    /// The record values.
    pub values: Vec<Vec<u8>>,
}

impl Batch {
    /// Offset one past the last record.
    pub fn next_offset(&self) -> u64 {
        self.base_offset + self.values.len() as u64
    }

    /// Sequence number of the last record (meaningless if not idempotent).
    pub fn last_seq(&self) -> i64 {
        self.base_seq + self.values.len() as i64 - 1
    }

    /// Serialises the batch (the payload of one checksummed log record).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.base_offset.to_le_bytes());
        out.extend_from_slice(&(self.epoch as u64).to_le_bytes());
        out.extend_from_slice(&self.producer_id.to_le_bytes());
        out.extend_from_slice(&(self.base_seq as u64).to_le_bytes());
        out.extend_from_slice(&u64::from(self.producer_epoch).to_le_bytes());
        out.extend_from_slice(&(self.values.len() as u64).to_le_bytes());
        for v in &self.values {
            out.extend_from_slice(&(v.len() as u64).to_le_bytes());
            out.extend_from_slice(v);
        }
        out
    }

    /// Parses a payload written by [`Batch::encode`]; `None` if malformed.
    pub fn decode(b: &[u8]) -> Option<Batch> {
        use crate::codec::get_u64;
        let base_offset = get_u64(b, 0)?;
        let epoch = u32::try_from(get_u64(b, 8)?).ok()?;
        let producer_id = get_u64(b, 16)?;
        let base_seq = get_u64(b, 24)? as i64;
        let producer_epoch = u16::try_from(get_u64(b, 32)?).ok()?;
        let n = get_u64(b, 40)? as usize;
        let mut pos = 48;
        let mut values = Vec::new();
        for _ in 0..n {
            let len = get_u64(b, pos)? as usize;
            pos += 8;
            values.push(b.get(pos..pos.checked_add(len)?)?.to_vec());
            pos += len;
        }
        (pos == b.len()).then_some(Batch {
            base_offset,
            epoch,
            producer_id,
            producer_epoch,
            base_seq,
            values,
        })
    }
}

/// A Kafka error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, thiserror::Error)]
pub enum KafkaError {
    /// The broker does not lead this partition (refresh metadata).
    #[error("NOT_LEADER_OR_FOLLOWER")]
    NotLeader,
    /// The broker does not know this partition.
    #[error("UNKNOWN_TOPIC_OR_PARTITION")]
    UnknownTopicOrPartition,
    /// The ISR is smaller than `min.insync.replicas`; nothing was appended.
    #[error("NOT_ENOUGH_REPLICAS")]
    NotEnoughReplicas,
    /// The batch was appended but the ISR shrank below
    /// `min.insync.replicas` before it committed (outcome: written locally,
    /// may or may not survive).
    #[error("NOT_ENOUGH_REPLICAS_AFTER_APPEND")]
    NotEnoughReplicasAfterAppend,
    /// The request did not complete within its timeout (outcome unknown).
    #[error("REQUEST_TIMED_OUT")]
    RequestTimedOut,
    /// The request's leader epoch is older than the broker's (KIP-320).
    #[error("FENCED_LEADER_EPOCH")]
    FencedLeaderEpoch,
    /// The request's leader epoch is newer than the broker's (KIP-320).
    #[error("UNKNOWN_LEADER_EPOCH")]
    UnknownLeaderEpoch,
    /// The fetch offset is outside the log.
    #[error("OFFSET_OUT_OF_RANGE")]
    OffsetOutOfRange,
    /// An idempotent batch's sequence number leaves a gap, repeats a
    /// batch older than the broker's window of 5, or a newer producer
    /// epoch does not start at 0.
    #[error("OUT_OF_ORDER_SEQUENCE_NUMBER")]
    OutOfOrderSequence,
    /// An idempotent batch from an older producer epoch than the broker
    /// has seen for its producer id (the Java client's
    /// InvalidProducerEpochException, ProducerFencedException before 2.7).
    #[error("INVALID_PRODUCER_EPOCH")]
    InvalidProducerEpoch,
    /// The broker has no state for the producer id and the batch does not
    /// start at sequence 0: the broker lost it (a truncation, a lost
    /// unflushed tail). Kafka 1.0 to 2.4 brokers answer so; later ones,
    /// as the model's, accept any sequence from an unknown producer, and
    /// only the producer's handling of it (the Java client's) remains.
    #[error("UNKNOWN_PRODUCER_ID")]
    UnknownProducerId,
    /// A LeaderAndIsr or UpdateMetadata from an older controller epoch.
    #[error("STALE_CONTROLLER_EPOCH")]
    StaleControllerEpoch,
    /// A LeaderAndIsr or UpdateMetadata meant for another incarnation of
    /// the broker (KIP-380), or one that came before it registered.
    #[error("STALE_BROKER_EPOCH")]
    StaleBrokerEpoch,
    /// The partition has no leader right now.
    #[error("LEADER_NOT_AVAILABLE")]
    LeaderNotAvailable,
    /// The broker is not ready (no ZooKeeper registration yet).
    #[error("BROKER_NOT_AVAILABLE")]
    BrokerNotAvailable,
    /// The connection broke before the answer (outcome unknown).
    #[error("NETWORK_EXCEPTION")]
    Network,
    /// The request went to a broker that is not the controller.
    #[error("NOT_CONTROLLER")]
    NotController,
}

impl KafkaError {
    /// Whether the error is a `RetriableException` in the Java client.
    /// The idempotent producer still retries OUT_OF_ORDER_SEQUENCE_NUMBER
    /// and UNKNOWN_PRODUCER_ID (see `producer`), which are not.
    pub fn retriable(self) -> bool {
        !matches!(
            self,
            KafkaError::OutOfOrderSequence
                | KafkaError::InvalidProducerEpoch
                | KafkaError::UnknownProducerId
        )
    }
}

/// How many acknowledgements a produce waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Acks {
    /// Fire and forget: no response.
    None,
    /// The leader appended it.
    Leader,
    /// Every ISR member has it (the high watermark passed it), and the ISR
    /// had at least `min.insync.replicas` members.
    All,
}

/// The leader and ISR of a partition, as the controller stores it in the
/// partition-state znode and sends it in LeaderAndIsr / UpdateMetadata.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartitionState {
    /// The leader, `None` when offline.
    pub leader: Option<NodeId>,
    /// The leader epoch.
    pub leader_epoch: LeaderEpoch,
    /// The in-sync replicas.
    pub isr: Vec<NodeId>,
    /// The epoch of the controller that last wrote it.
    pub controller_epoch: u32,
}

/// One partition in a LeaderAndIsr or UpdateMetadata request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartitionInfo {
    /// The partition.
    pub tp: Tp,
    /// Leader, epoch and ISR.
    pub state: PartitionState,
    /// The assigned replicas.
    pub replicas: Vec<NodeId>,
    /// The znode version of the partition state, for the leader's
    /// conditional ISR updates.
    pub zk_version: i32,
}

/// What a fetch returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FetchData {
    /// Batches from the fetch offset on (bounded).
    pub batches: Vec<Batch>,
    /// The leader's high watermark.
    pub high_watermark: u64,
    /// The leader's log end offset.
    pub log_end: u64,
    /// For a replica's fetch whose last fetched epoch the leader's log does
    /// not continue (KIP-595's diverging epoch, in Kafka 2.7+'s fetch, as
    /// KAFKA-10554 brought it to replication): the largest epoch the leader
    /// has at or below it and where that epoch ends. No batches come with
    /// it; the follower truncates and fetches again.
    pub diverging: Option<(LeaderEpoch, u64)>,
    /// The leader's log start offset (Kafka's fetch response carries it
    /// for every partition). A fetch below it returns no batches: the
    /// follower starts over there (`truncateFullyAndStartAt`), a consumer
    /// resets to it (OFFSET_OUT_OF_RANGE answered with
    /// `auto.offset.reset = earliest`'s ListOffsets in one round trip).
    pub log_start: u64,
}

/// A message between Kafka nodes (brokers and clients).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KafkaMsg {
    /// Producer -> leader: append a batch.
    Produce {
        /// Correlation id, echoed.
        corr: u64,
        /// The partition.
        tp: Tp,
        /// The acknowledgement level.
        acks: Acks,
        /// How long the leader may wait for replication.
        timeout_ms: u64,
        /// The batch (offsets assigned by the leader).
        batch: Batch,
    },
    /// Leader -> producer: the base offset of the appended batch, or why not.
    ProduceResp {
        /// Correlation id.
        corr: u64,
        /// Base offset or error.
        result: Result<u64, KafkaError>,
    },
    /// Follower or consumer -> leader: records from `offset` on.
    Fetch {
        /// Correlation id.
        corr: u64,
        /// The fetching replica, `None` for a consumer.
        replica: Option<NodeId>,
        /// The partition.
        tp: Tp,
        /// The fetcher's view of the leader epoch (KIP-320), if it sends one.
        current_leader_epoch: Option<LeaderEpoch>,
        /// First offset wanted.
        offset: u64,
        /// The epoch of the last batch in the fetching replica's log (its
        /// epoch cache's latest), sent by a follower that truncates on
        /// fetch (Kafka 2.7+); `None` from consumers and older followers.
        last_fetched_epoch: Option<LeaderEpoch>,
        /// The fetching replica's log start offset (the leader's low
        /// watermark for DeleteRecords); 0 from consumers.
        log_start: u64,
    },
    /// Leader -> fetcher.
    FetchResp {
        /// Correlation id.
        corr: u64,
        /// The data or an error.
        result: Result<FetchData, KafkaError>,
    },
    /// Follower or consumer -> leader: where does `epoch` end in your log?
    OffsetsForLeaderEpoch {
        /// Correlation id.
        corr: u64,
        /// The partition.
        tp: Tp,
        /// The asker's view of the current leader epoch, if any.
        current_leader_epoch: Option<LeaderEpoch>,
        /// The epoch asked about.
        epoch: LeaderEpoch,
    },
    /// Leader -> asker: the largest epoch `<=` the asked one and its end
    /// offset; `None` when the leader knows no such epoch.
    OffsetsForLeaderEpochResp {
        /// Correlation id.
        corr: u64,
        /// `(epoch, end offset)` or an error.
        result: Result<Option<(LeaderEpoch, u64)>, KafkaError>,
    },
    /// Controller -> broker: become leader or follower of these partitions.
    LeaderAndIsr {
        /// Correlation id, echoed in [`KafkaMsg::ControllerResp`].
        corr: u64,
        /// The controller's epoch.
        controller_epoch: u32,
        /// The receiver's broker epoch as the controller knows it: the
        /// creation zxid of its registration (KIP-380). A broker drops a
        /// request meant for another incarnation of itself.
        broker_epoch: u64,
        /// The partitions.
        partitions: Vec<PartitionInfo>,
    },
    /// Controller -> broker: the cluster metadata to serve to clients.
    UpdateMetadata {
        /// Correlation id, echoed in [`KafkaMsg::ControllerResp`].
        corr: u64,
        /// The controller's epoch.
        controller_epoch: u32,
        /// The receiver's broker epoch as the controller knows it (KIP-380).
        broker_epoch: u64,
        /// The live brokers.
        live: Vec<NodeId>,
        /// The partitions.
        partitions: Vec<PartitionInfo>,
    },
    /// Broker -> controller: the answer to a LeaderAndIsr or an
    /// UpdateMetadata (Kafka's LeaderAndIsrResponse / UpdateMetadataResponse),
    /// sent whether the request was obeyed or refused.
    ControllerResp {
        /// Correlation id of the request.
        corr: u64,
        /// Why it was refused (`STALE_CONTROLLER_EPOCH` or
        /// `STALE_BROKER_EPOCH`), if it was.
        result: Result<(), KafkaError>,
    },
    /// Client -> broker: the cluster metadata, please.
    Metadata {
        /// Correlation id.
        corr: u64,
    },
    /// Broker -> client.
    MetadataResp {
        /// Correlation id.
        corr: u64,
        /// The live brokers.
        live: Vec<NodeId>,
        /// The partitions.
        partitions: Vec<PartitionInfo>,
    },
    /// Producer -> broker: allocate a producer id.
    InitProducerId {
        /// Correlation id.
        corr: u64,
    },
    /// Broker -> producer.
    InitProducerIdResp {
        /// Correlation id.
        corr: u64,
        /// The id or an error.
        result: Result<u64, KafkaError>,
    },
    /// Broker -> controller: a broker shutting down asks the controller to
    /// move its leaderships away first (ControlledShutdownRequest).
    ControlledShutdown {
        /// Correlation id, echoed.
        corr: u64,
        /// The asking broker's epoch (its registration's creation zxid).
        broker_epoch: u64,
    },
    /// Controller -> broker: the partitions the broker still leads (none:
    /// it may stop), or why the request was refused.
    ControlledShutdownResp {
        /// Correlation id.
        corr: u64,
        /// The partitions still led, or the refusal.
        result: Result<Vec<Tp>, KafkaError>,
    },
    /// Admin -> partition leader (`AdminClient.deleteRecords`): move the
    /// log start offset up to `offset`, or to the high watermark when
    /// `None` (Kafka's -1).
    DeleteRecords {
        /// Correlation id.
        corr: u64,
        /// The partition.
        tp: Tp,
        /// The new log start, at most the high watermark.
        offset: Option<u64>,
    },
    /// Leader -> admin, once every live replica's log start reached the
    /// offset: the low watermark (the smallest of their starts), or why
    /// not (NOT_LEADER_OR_FOLLOWER, OFFSET_OUT_OF_RANGE past the high
    /// watermark, REQUEST_TIMED_OUT).
    DeleteRecordsResp {
        /// Correlation id.
        corr: u64,
        /// The low watermark, or the error.
        result: Result<u64, KafkaError>,
    },
}

/// A workload request to a Kafka client node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KafkaRequest {
    /// Producer: send `value` to `tp`. Replies [`KafkaReply::Sent`] with the
    /// record's offset, or [`KafkaReply::Error`].
    Send {
        /// The partition.
        tp: Tp,
        /// The value.
        value: Vec<u8>,
    },
    /// Consumer: consume these partitions from now on (from offset 0 for
    /// ones not consumed before). Replies [`KafkaReply::Assigned`].
    Assign(Vec<Tp>),
    /// Consumer: fetch once from each assigned partition's leader. Replies
    /// [`KafkaReply::Polled`].
    Poll,
}

/// A Kafka client node's answer to the workload.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KafkaReply {
    /// The record was acknowledged at this offset (under the producer's
    /// acks; with acks 0 the offset is unknown and reported as `None`).
    Sent {
        /// The offset.
        offset: Option<u64>,
    },
    /// The operation failed. `definite` is true when it surely did not take
    /// effect (record `fail`), false when the outcome is unknown (`info`).
    Error {
        /// The last error seen.
        error: KafkaError,
        /// Whether the operation surely did not happen.
        definite: bool,
    },
    /// The assignment is in place.
    Assigned,
    /// Records read, in offset order per partition.
    Polled {
        /// `(partition, offset, value)` triples.
        records: Vec<(Tp, u64, Vec<u8>)>,
        /// Partitions whose position was reset because the log was
        /// truncated below it (detected via the leader epoch, KIP-320).
        truncated: Vec<(Tp, u64)>,
    },
}
