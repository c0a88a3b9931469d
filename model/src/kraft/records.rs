//! The metadata records the active controller writes to the Raft log, and
//! the controller RPCs of KRaft mode (broker registration and heartbeats,
//! AlterPartition, CreateTopics, AllocateProducerIds).
//!
//! Records are carried as JSON in the log's values (tagged by
//! [`crate::raft::data_value`]); they are few and small.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::kafka::Tp;
use crate::node::NodeId;

/// One partition's state as the metadata log holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PartitionRecord {
    /// The assigned replicas, the preferred first.
    pub replicas: Vec<NodeId>,
    /// The in-sync replicas.
    pub isr: Vec<NodeId>,
    /// KIP-966's eligible leader replicas: replicas that left the ISR
    /// while it was below min.insync.replicas and may still lead cleanly.
    pub elr: Vec<NodeId>,
    /// The leader (`None`: offline).
    pub leader: Option<NodeId>,
    /// Bumped on every leader change.
    pub leader_epoch: u32,
    /// Bumped on every change (AlterPartition checks it).
    pub partition_epoch: u32,
}

/// A metadata record.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// A broker (incarnation) registered; its broker epoch is this
    /// record's offset. A registration starts fenced.
    RegisterBroker {
        /// The broker.
        broker: NodeId,
        /// The process's random incarnation id.
        incarnation: u64,
    },
    /// The broker is fenced: not alive for elections, ISR or clients.
    FenceBroker {
        /// The broker.
        broker: NodeId,
        /// Its broker epoch.
        epoch: u64,
    },
    /// The broker caught up with the metadata log and is alive.
    UnfenceBroker {
        /// The broker.
        broker: NodeId,
        /// Its broker epoch.
        epoch: u64,
    },
    /// The broker is in a controlled shutdown.
    BrokerShuttingDown {
        /// The broker.
        broker: NodeId,
        /// Its broker epoch.
        epoch: u64,
    },
    /// A topic exists.
    Topic {
        /// Its name.
        name: String,
    },
    /// A partition exists, with its first state.
    Partition {
        /// The partition.
        tp: Tp,
        /// Its state.
        state: PartitionRecord,
    },
    /// A partition's state changed: only the fields that changed, as
    /// Kafka's PartitionChangeRecord carries them. Replaying it bumps the
    /// partition epoch, and the leader epoch when a leader is named, so
    /// the epochs come from the log, not from the writer.
    PartitionChange {
        /// The partition.
        tp: Tp,
        /// The new leader, if it changed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        leader: Option<NewLeader>,
        /// The new ISR, if it changed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        isr: Option<Vec<NodeId>>,
        /// The new ELR, if it changed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        elr: Option<Vec<NodeId>>,
    },
    /// A block of producer ids was handed to a broker: ids below `next`
    /// are taken.
    ProducerIds {
        /// The broker.
        broker: NodeId,
        /// The first id after the block.
        next: u64,
    },
    /// Nothing (KIP-835: the controller writes one when idle, so the
    /// quorum's liveness shows in the log).
    NoOp,
}

/// The leader a PartitionChange record names (Kafka's `leader` field,
/// whose -1 is [`NewLeader::Offline`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NewLeader {
    /// No leader: the partition is offline.
    Offline,
    /// This broker leads.
    Broker(NodeId),
}

impl NewLeader {
    /// The leader as the image holds it.
    pub fn node(self) -> Option<NodeId> {
        match self {
            NewLeader::Offline => None,
            NewLeader::Broker(b) => Some(b),
        }
    }
}

impl PartitionRecord {
    /// `self` with the change `leader`, `isr`, `elr` replayed onto it:
    /// the partition epoch always moves, the leader epoch when a leader
    /// is named (Kafka's `PartitionRegistration.merge`).
    pub fn merged(
        &self,
        leader: Option<NewLeader>,
        isr: Option<&[NodeId]>,
        elr: Option<&[NodeId]>,
    ) -> PartitionRecord {
        let mut n = self.clone();
        if let Some(l) = leader {
            n.leader = l.node();
            n.leader_epoch += 1;
        }
        if let Some(isr) = isr {
            n.isr = isr.to_vec();
        }
        if let Some(elr) = elr {
            n.elr = elr.to_vec();
        }
        n.partition_epoch += 1;
        n
    }
}

impl MetadataRecord {
    /// The PartitionChange record that takes `tp` from `old` to `new`
    /// (`None`: nothing changed). It names only what differs.
    pub fn partition_change(
        tp: &Tp,
        old: &PartitionRecord,
        new: &PartitionRecord,
    ) -> Option<MetadataRecord> {
        (old != new).then(|| MetadataRecord::PartitionChange {
            tp: tp.clone(),
            leader: (new.leader != old.leader).then_some(match new.leader {
                Some(b) => NewLeader::Broker(b),
                None => NewLeader::Offline,
            }),
            isr: (new.isr != old.isr).then(|| new.isr.clone()),
            elr: (new.elr != old.elr).then(|| new.elr.clone()),
        })
    }

    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("metadata records serialise")
    }

    /// A record from its bytes (`None`: not a record).
    pub fn decode(bytes: &[u8]) -> Option<MetadataRecord> {
        serde_json::from_slice(bytes).ok()
    }
}

/// Why the controller refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KraftError {
    /// Not the active controller (or not yet caught up).
    NotController,
    /// The broker epoch is not the current registration's.
    StaleBrokerEpoch,
    /// AlterPartition from a replica that does not lead that epoch.
    FencedLeaderEpoch,
    /// AlterPartition against an older partition epoch.
    InvalidUpdateVersion,
    /// AlterPartition adding a fenced or shutting-down replica (KIP-841).
    IneligibleReplica,
    /// The topic exists already.
    TopicExists,
    /// Not enough unfenced brokers for the replicas.
    InvalidReplicationFactor,
    /// A new incarnation while the broker's previous one still has a live
    /// session.
    DuplicateBrokerRegistration,
}

/// What a heartbeat's answer says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HeartbeatState {
    /// Whether the broker is fenced.
    pub fenced: bool,
    /// Whether its controlled shutdown may proceed.
    pub should_shutdown: bool,
}

/// The controller RPCs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KraftMsg {
    /// A broker process registers.
    BrokerRegistration {
        /// Matches the response.
        corr: u64,
        /// The broker.
        broker: NodeId,
        /// The process's incarnation id.
        incarnation: u64,
        /// KIP-966: the broker epoch of the previous incarnation if it shut
        /// down cleanly (`None`: an unclean shutdown, or a first start).
        clean_shutdown_epoch: Option<u64>,
    },
    /// Its answer: the broker epoch, and the metadata offset the broker
    /// must have applied before it acts on the metadata (the records
    /// written for its registration included).
    BrokerRegistrationResp {
        /// Matches the request.
        corr: u64,
        /// The broker epoch and the catch-up offset, or why not.
        result: Result<(u64, u64), KraftError>,
    },
    /// A broker's heartbeat.
    BrokerHeartbeat {
        /// Matches the response.
        corr: u64,
        /// The broker.
        broker: NodeId,
        /// Its broker epoch.
        broker_epoch: u64,
        /// How far it has applied the metadata log.
        metadata_offset: u64,
        /// It wants to shut down (controlled shutdown).
        want_shutdown: bool,
    },
    /// Its answer.
    BrokerHeartbeatResp {
        /// Matches the request.
        corr: u64,
        /// The state, or why not.
        result: Result<HeartbeatState, KraftError>,
    },
    /// A partition leader's ISR change (KIP-497).
    AlterPartition {
        /// Matches the response.
        corr: u64,
        /// The leader.
        broker: NodeId,
        /// Its broker epoch.
        broker_epoch: u64,
        /// The partition.
        tp: Tp,
        /// The leader epoch it leads.
        leader_epoch: u32,
        /// The partition epoch its state has.
        partition_epoch: u32,
        /// The proposed ISR.
        isr: Vec<NodeId>,
    },
    /// Its answer: the partition's new state.
    AlterPartitionResp {
        /// Matches the request.
        corr: u64,
        /// The partition.
        tp: Tp,
        /// The new state, or why not.
        result: Result<PartitionRecord, KraftError>,
    },
    /// An admin creates a topic with an explicit assignment.
    CreateTopics {
        /// Matches the response.
        corr: u64,
        /// The topic.
        topic: String,
        /// Partition -> replicas.
        assignment: BTreeMap<u32, Vec<NodeId>>,
    },
    /// Its answer.
    CreateTopicsResp {
        /// Matches the request.
        corr: u64,
        /// Done, or why not.
        result: Result<(), KraftError>,
    },
    /// A broker asks for a block of producer ids.
    AllocateProducerIds {
        /// Matches the response.
        corr: u64,
        /// The broker.
        broker: NodeId,
        /// Its broker epoch.
        broker_epoch: u64,
    },
    /// Its answer: the first id and the block's length.
    AllocateProducerIdsResp {
        /// Matches the request.
        corr: u64,
        /// The block, or why not.
        result: Result<(u64, u64), KraftError>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn state(leader: Option<NodeId>, isr: Vec<NodeId>, elr: Vec<NodeId>) -> PartitionRecord {
        PartitionRecord {
            replicas: vec![1, 2, 3],
            isr,
            elr,
            leader,
            leader_epoch: 4,
            partition_epoch: 7,
        }
    }

    #[test]
    fn a_change_names_only_what_changed() {
        let tp = Tp::new("t", 0);
        let old = state(Some(1), vec![1, 2, 3], vec![]);
        let mut new = old.clone();
        new.isr = vec![1, 3];
        new.partition_epoch += 1;
        let rec = MetadataRecord::partition_change(&tp, &old, &new).unwrap();
        assert_eq!(
            rec,
            MetadataRecord::PartitionChange {
                tp: tp.clone(),
                leader: None,
                isr: Some(vec![1, 3]),
                elr: None
            }
        );
        assert_eq!(MetadataRecord::decode(&rec.encode()), Some(rec));
        assert_eq!(MetadataRecord::partition_change(&tp, &old, &old), None);
    }

    #[test]
    fn an_offline_leader_survives_encoding() {
        let tp = Tp::new("t", 1);
        let old = state(Some(2), vec![2], vec![]);
        let mut new = old.clone();
        new.leader = None;
        new.leader_epoch += 1;
        new.partition_epoch += 1;
        let rec = MetadataRecord::partition_change(&tp, &old, &new).unwrap();
        let back = MetadataRecord::decode(&rec.encode()).unwrap();
        let MetadataRecord::PartitionChange {
            leader, isr, elr, ..
        } = back
        else {
            panic!("not a change: {back:?}");
        };
        assert_eq!(leader, Some(NewLeader::Offline));
        assert_eq!(old.merged(leader, isr.as_deref(), elr.as_deref()), new);
    }

    fn replicas() -> impl Strategy<Value = Vec<NodeId>> {
        proptest::sample::subsequence(vec![1u32, 2, 3], 0..=3)
    }

    proptest! {
        /// Replaying the change from `old` to `new` gives `new`, whenever
        /// `new`'s epochs follow Kafka's rule (partition epoch on every
        /// change, leader epoch on a leader change).
        #[test]
        fn replaying_a_change_gives_the_new_state(
            leader in proptest::option::of(1u32..=3),
            isr in replicas(),
            elr in replicas(),
            new_leader in proptest::option::of(1u32..=3),
            new_isr in replicas(),
            new_elr in replicas(),
        ) {
            let tp = Tp::new("t", 0);
            let old = state(leader, isr, elr);
            let mut new = old.clone();
            new.leader = new_leader;
            new.isr = new_isr;
            new.elr = new_elr;
            if new.leader != old.leader {
                new.leader_epoch += 1;
            }
            if new != old {
                new.partition_epoch += 1;
            }
            match MetadataRecord::partition_change(&tp, &old, &new) {
                None => prop_assert_eq!(&new, &old),
                Some(rec) => {
                    let back = MetadataRecord::decode(&rec.encode()).unwrap();
                    let MetadataRecord::PartitionChange { leader, isr, elr, .. } = back else {
                        panic!("not a change");
                    };
                    prop_assert_eq!(old.merged(leader, isr.as_deref(), elr.as_deref()), new);
                }
            }
        }
    }
}
