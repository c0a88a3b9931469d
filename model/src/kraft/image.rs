//! The metadata image: the cluster as the metadata log's records so far
//! describe it. The controllers and every broker build one by applying
//! the committed records in order; the active controller also applies its
//! own records as it writes them.

use std::collections::{BTreeMap, BTreeSet};

use crate::kafka::{PartitionInfo, PartitionState, Tp};
use crate::kraft::records::{MetadataRecord, PartitionRecord};
use crate::node::NodeId;
use crate::raft::{data_of, RaftCore};

/// A broker's registration.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct BrokerRegistration {
    /// Its broker epoch (the offset of its RegisterBroker record).
    pub epoch: u64,
    /// The process's incarnation id.
    pub incarnation: u64,
    /// Whether it is fenced.
    pub fenced: bool,
    /// Whether it is in a controlled shutdown.
    pub shutting_down: bool,
}

/// The cluster's metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataImage {
    /// Registered brokers.
    pub brokers: BTreeMap<NodeId, BrokerRegistration>,
    /// Topics.
    pub topics: BTreeSet<String>,
    /// Partitions.
    pub partitions: BTreeMap<Tp, PartitionRecord>,
    /// The next free producer id.
    pub next_producer_id: u64,
    /// The next offset to apply.
    pub applied: u64,
    /// The offset of the last record that changed anything (not a NoOp).
    pub last_change: Option<u64>,
}

/// The image as a snapshot holds it.
#[derive(serde::Serialize, serde::Deserialize)]
struct ImageSnapshot {
    brokers: Vec<(NodeId, BrokerRegistration)>,
    topics: Vec<String>,
    partitions: Vec<(Tp, PartitionRecord)>,
    next_producer_id: u64,
    applied: u64,
    last_change: Option<u64>,
}

impl MetadataImage {
    /// The image's bytes, for a snapshot of the metadata log.
    pub fn encode(&self) -> Vec<u8> {
        let s = ImageSnapshot {
            brokers: self.brokers.iter().map(|(b, r)| (*b, r.clone())).collect(),
            topics: self.topics.iter().cloned().collect(),
            partitions: self
                .partitions
                .iter()
                .map(|(t, p)| (t.clone(), p.clone()))
                .collect(),
            next_producer_id: self.next_producer_id,
            applied: self.applied,
            last_change: self.last_change,
        };
        serde_json::to_vec(&s).expect("images serialise")
    }

    /// An image from a snapshot's bytes (`None`: not an image).
    pub fn decode(bytes: &[u8]) -> Option<MetadataImage> {
        let s: ImageSnapshot = serde_json::from_slice(bytes).ok()?;
        Some(MetadataImage {
            brokers: s.brokers.into_iter().collect(),
            topics: s.topics.into_iter().collect(),
            partitions: s.partitions.into_iter().collect(),
            next_producer_id: s.next_producer_id,
            applied: s.applied,
            last_change: s.last_change,
        })
    }

    /// Applies the record at `offset`.
    pub fn apply(&mut self, offset: u64, r: &MetadataRecord) {
        self.applied = offset + 1;
        if *r != MetadataRecord::NoOp {
            self.last_change = Some(offset);
        }
        match r {
            MetadataRecord::RegisterBroker {
                broker,
                incarnation,
            } => {
                self.brokers.insert(
                    *broker,
                    BrokerRegistration {
                        epoch: offset,
                        incarnation: *incarnation,
                        fenced: true,
                        shutting_down: false,
                    },
                );
            }
            MetadataRecord::FenceBroker { broker, epoch }
            | MetadataRecord::UnfenceBroker { broker, epoch }
            | MetadataRecord::BrokerShuttingDown { broker, epoch } => {
                if let Some(b) = self.brokers.get_mut(broker).filter(|b| b.epoch == *epoch) {
                    match r {
                        MetadataRecord::FenceBroker { .. } => {
                            b.fenced = true;
                            b.shutting_down = false;
                        }
                        MetadataRecord::UnfenceBroker { .. } => b.fenced = false,
                        _ => b.shutting_down = true,
                    }
                }
            }
            MetadataRecord::Topic { name } => {
                self.topics.insert(name.clone());
            }
            MetadataRecord::Partition { tp, state } => {
                self.partitions.insert(tp.clone(), state.clone());
            }
            MetadataRecord::PartitionChange {
                tp,
                leader,
                isr,
                elr,
            } => {
                if let Some(p) = self.partitions.get_mut(tp) {
                    *p = p.merged(*leader, isr.as_deref(), elr.as_deref());
                }
            }
            MetadataRecord::ProducerIds { next, .. } => {
                self.next_producer_id = self.next_producer_id.max(*next);
            }
            MetadataRecord::NoOp => {}
        }
    }

    /// Applies what `core` has committed past what is applied; returns
    /// whether anything changed. A log cut below what is applied (which
    /// only a broken quorum does) is left to the monitors.
    pub fn catch_up(&mut self, core: &RaftCore) -> bool {
        self.catch_up_with(core, |_, _| {})
    }

    /// As [`MetadataImage::catch_up`], handing every record applied (with
    /// its offset) to `also`.
    pub fn catch_up_with(
        &mut self,
        core: &RaftCore,
        mut also: impl FnMut(u64, &MetadataRecord),
    ) -> bool {
        let hw = core.high_watermark();
        if self.applied >= hw {
            return false;
        }
        let mut changed = false;
        for b in core.read(self.applied, hw, usize::MAX) {
            for (i, v) in b.values.iter().enumerate() {
                let offset = b.base_offset + i as u64;
                if offset < self.applied || offset >= hw {
                    continue;
                }
                match data_of(v).and_then(MetadataRecord::decode) {
                    Some(r) => {
                        changed |= r != MetadataRecord::NoOp;
                        self.apply(offset, &r);
                        also(offset, &r);
                    }
                    None => self.applied = offset + 1,
                }
            }
        }
        changed
    }

    /// Follows `core` after a step: a snapshot it installed (loaded at
    /// start, or fetched from the leader) replaces the image, the records
    /// committed since are applied, and the image is snapshotted when the
    /// core says one is due. Whether anything changed.
    pub fn follow(&mut self, core: &mut RaftCore, cx: &mut crate::node::Ctx<'_>) -> bool {
        let mut changed = false;
        if let Some(s) = core.take_installed() {
            if let Some(img) = MetadataImage::decode(&s.data) {
                *self = img;
                changed = true;
            }
        }
        changed |= self.catch_up(core);
        if core.snapshot_due(self.applied) {
            core.save_snapshot(self.applied, self.encode(), cx);
        }
        changed
    }

    /// Whether `b` is registered, unfenced and not shutting down.
    pub fn is_active(&self, b: NodeId) -> bool {
        self.brokers
            .get(&b)
            .is_some_and(|r| !r.fenced && !r.shutting_down)
    }

    /// The unfenced brokers (shutting-down ones included: they still serve).
    pub fn unfenced(&self) -> Vec<NodeId> {
        self.brokers
            .iter()
            .filter(|(_, r)| !r.fenced)
            .map(|(&b, _)| b)
            .collect()
    }

    /// A partition as the broker-side code knows it (the partition epoch
    /// standing where ZooKeeper mode has the znode version).
    pub fn partition_info(&self, tp: &Tp) -> Option<PartitionInfo> {
        self.partitions.get(tp).map(|p| PartitionInfo {
            tp: tp.clone(),
            state: PartitionState {
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                isr: p.isr.clone(),
                controller_epoch: 0,
            },
            replicas: p.replicas.clone(),
            zk_version: p.partition_epoch as i32,
        })
    }

    /// The image without the offsets: what brokers and the controller must
    /// agree on once the log is quiet.
    pub fn content(
        &self,
    ) -> (
        &BTreeMap<NodeId, BrokerRegistration>,
        &BTreeMap<Tp, PartitionRecord>,
    ) {
        (&self.brokers, &self.partitions)
    }
}
