//! Invariants of the brokers watched while the run goes on.
//!
//! - `hw-regression`: a replica's high watermark went back within one
//!   incarnation of its broker (a restart may start lower: the checkpoint
//!   lags). Committed records were un-committed.
//! - `duplicate-leader`: two brokers led the same partition in the same
//!   leader epoch.

use std::collections::BTreeMap;

use kzsim_model::kafka::{KafkaBroker, Tp};
use kzsim_model::{Node, NodeId};

use crate::outcome::Violation;
use crate::system::Monitor;

/// How many violations of each kind are kept (the rest are counted).
const KEEP: usize = 5;

/// Watches every broker's replicas after each of its steps.
pub struct ReplicaMonitor {
    brokers: Vec<NodeId>,
    /// Per (broker, partition): the incarnation and the highest HW seen in it.
    hw: BTreeMap<(NodeId, Tp), (u32, u64)>,
    /// Per (partition, leader epoch): the first broker seen leading it.
    leaders: BTreeMap<(Tp, u32), NodeId>,
    found: Vec<Violation>,
    dropped: usize,
}

impl ReplicaMonitor {
    /// A monitor of `brokers`.
    pub fn new(brokers: Vec<NodeId>) -> ReplicaMonitor {
        ReplicaMonitor {
            brokers,
            hw: BTreeMap::new(),
            leaders: BTreeMap::new(),
            found: Vec::new(),
            dropped: 0,
        }
    }

    fn report(&mut self, kind: &str, detail: String) {
        if self.found.iter().filter(|v| v.kind == kind).count() < KEEP {
            self.found.push(Violation::new(kind, detail, vec![]));
        } else {
            self.dropped += 1;
        }
    }
}

impl Monitor for ReplicaMonitor {
    fn after_step(&mut self, now_us: u64, id: NodeId, incarnation: u32, node: &dyn Node) {
        if !self.brokers.contains(&id) {
            return;
        }
        let Some(b) = node.as_any().and_then(|a| a.downcast_ref::<KafkaBroker>()) else {
            return;
        };
        let mut seen = Vec::new();
        for (tp, pos) in b.replica_positions() {
            seen.push((tp.clone(), pos));
        }
        for (tp, pos) in seen {
            let key = (id, tp.clone());
            match self.hw.get(&key).copied() {
                Some((inc, max)) if inc == incarnation && pos.high_watermark < max => {
                    self.report(
                        "hw-regression",
                        format!(
                            "t={}ms broker {id}: high watermark of {tp} went back from {max} to {}",
                            now_us / 1000,
                            pos.high_watermark
                        ),
                    );
                    self.hw.insert(key, (incarnation, pos.high_watermark));
                }
                Some((inc, max)) if inc == incarnation && pos.high_watermark <= max => {}
                _ => {
                    self.hw.insert(key, (incarnation, pos.high_watermark));
                }
            }
            if let (true, Some(epoch)) = (pos.leader, pos.leader_epoch) {
                let first = *self.leaders.entry((tp.clone(), epoch)).or_insert(id);
                if first != id {
                    self.report(
                        "duplicate-leader",
                        format!(
                            "t={}ms: brokers {first} and {id} both led {tp} in leader epoch {epoch}",
                            now_us / 1000
                        ),
                    );
                }
            }
        }
    }

    fn violations(&self) -> Vec<Violation> {
        let mut out = self.found.clone();
        if self.dropped > 0 {
            if let Some(last) = out.last_mut() {
                last.detail
                    .push_str(&format!(" (and {} more like these)", self.dropped));
            }
        }
        out
    }
}
