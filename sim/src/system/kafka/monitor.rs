//! Invariants of the brokers watched while the run goes on.
//!
//! - `hw-regression`: a leader's high watermark went back while it led
//!   one leader epoch in one incarnation of its broker: what Kafka
//!   promises. A follower's high watermark follows the leader's value and
//!   may go back (KAFKA-2334, KIP-207: a new leader may start below the
//!   old one's, and a follower takes the lower value), and a restart or a
//!   new epoch may start lower (the checkpoint lags; a new leader's high
//!   watermark is its follower value until it commits in its own epoch).
//! - `duplicate-leader`: two brokers led the same partition in the same
//!   leader epoch, or one broker led an epoch up to a high watermark and,
//!   restarted without the records below it, led the same epoch again.
//!   The second is watched per incarnation because ZooKeeper-mode Kafka
//!   lets a restarted broker lead its old epoch again: a controller that
//!   saw the bounce (a new registration, KIP-380's broker epoch) elects in
//!   a new epoch, but one elected after it (the old controller died, or
//!   was the bounced broker) finds the broker alive and leading and sends
//!   it its old LeaderAndIsr. Harmless with the log intact; with committed
//!   records lost, the followers truncate them away, because the epoch's
//!   leader says it ended there.
//! - `metadata-regression`: a broker's metadata cache went back to an older
//!   state of a partition (a lower leader epoch, or the same epoch and an
//!   older partition-state znode version) within one incarnation of the
//!   broker. Every state a controller announces was in ZooKeeper, where
//!   they only move forward, and a broker obeys only the newest controller
//!   epoch it heard of; an older state can come only from a zombie
//!   controller, and clients that ask this broker for metadata are sent
//!   back to a deposed leader.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use kzsim_model::kafka::{KafkaBroker, ReplicaPosition, Tp};
use kzsim_model::{Node, NodeId};

use crate::outcome::Violation;
use crate::system::{Findings, Monitor};

/// How many violations of each kind are kept (the rest are counted).
const KEEP: usize = 5;

/// What one broker's metadata cache held: its incarnation and, per
/// partition, the newest (leader epoch, znode version) seen in it.
type MetadataSeen = (u32, BTreeMap<Tp, (u32, i32)>);

/// The leader of one leader epoch of a partition, as last seen.
#[derive(Clone, Copy, Debug)]
struct EpochLeader {
    broker: NodeId,
    incarnation: u32,
    /// The highest high watermark it had as leader of the epoch.
    high_watermark: u64,
}

/// Per partition number: (true time in µs, the highest log start any of
/// its replicas had from then on), rising; shared with the end-of-run
/// queue check, which must not call deleted records lost.
pub type LogStarts = Arc<Mutex<BTreeMap<u32, Vec<(u64, u64)>>>>;

/// Watches every broker's replicas after each of its steps.
pub struct ReplicaMonitor {
    brokers: Vec<NodeId>,
    /// Per broker and partition it leads: the incarnation, the leader
    /// epoch and the highest HW seen while it led that epoch.
    hw: BTreeMap<NodeId, BTreeMap<Tp, (u32, u32, u64)>>,
    /// Per partition and leader epoch: the first broker seen leading it.
    leaders: BTreeMap<Tp, BTreeMap<u32, EpochLeader>>,
    /// Per broker: the incarnation and, per partition, the newest
    /// (leader epoch, znode version) its metadata cache held in it.
    meta: BTreeMap<NodeId, MetadataSeen>,
    log_starts: LogStarts,
    found: Findings,
}

impl ReplicaMonitor {
    /// A monitor of `brokers` (tests).
    #[cfg(test)]
    pub fn new(brokers: Vec<NodeId>) -> ReplicaMonitor {
        ReplicaMonitor::with_log_starts(brokers, LogStarts::default())
    }

    /// A monitor of `brokers` that records where log starts moved into
    /// `log_starts`.
    pub fn with_log_starts(brokers: Vec<NodeId>, log_starts: LogStarts) -> ReplicaMonitor {
        ReplicaMonitor {
            log_starts,
            brokers,
            hw: BTreeMap::new(),
            leaders: BTreeMap::new(),
            meta: BTreeMap::new(),
            found: Findings::new(KEEP),
        }
    }

    fn report(&mut self, kind: &str, detail: String) {
        self.found.report(kind, detail);
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
        self.observe(now_us, id, incarnation, b.replica_positions());
        self.observe_metadata(now_us, id, incarnation, b.metadata_versions());
    }

    fn violations(&self) -> Vec<Violation> {
        self.found.violations()
    }
}

impl ReplicaMonitor {
    /// Takes note of what broker `id`'s metadata cache says of each
    /// partition at `now_us`: `(leader epoch, znode version)`.
    pub fn observe_metadata<'a>(
        &mut self,
        now_us: u64,
        id: NodeId,
        incarnation: u32,
        versions: impl Iterator<Item = (&'a Tp, (u32, i32))>,
    ) {
        let (inc, seen) = self.meta.entry(id).or_default();
        if *inc != incarnation {
            // A new process starts with an empty cache.
            *inc = incarnation;
            seen.clear();
        }
        let mut back = Vec::new();
        for (tp, v) in versions {
            match seen.get_mut(tp) {
                Some(max) if v < *max => {
                    back.push(format!(
                        "t={}ms broker {id}: metadata of {tp} went back from leader epoch {} (znode version {}) to {} (version {})",
                        now_us / 1000,
                        max.0,
                        max.1,
                        v.0,
                        v.1
                    ));
                    *max = v;
                }
                Some(max) => *max = v,
                None => {
                    seen.insert(tp.clone(), v);
                }
            }
        }
        for detail in back {
            self.report("metadata-regression", detail);
        }
    }

    /// Takes note of where broker `id`'s replicas stand at `now_us`.
    pub fn observe<'a>(
        &mut self,
        now_us: u64,
        id: NodeId,
        incarnation: u32,
        positions: impl Iterator<Item = (&'a Tp, ReplicaPosition)>,
    ) {
        for (tp, pos) in positions {
            if pos.log_start > 0 {
                let mut starts = self.log_starts.lock().expect("log starts");
                let line = starts.entry(tp.partition).or_default();
                if line.last().is_none_or(|&(_, s)| pos.log_start > s) {
                    line.push((now_us, pos.log_start));
                }
            }
            let hw = pos.high_watermark;
            let seen = self.hw.entry(id).or_default();
            match (pos.leader, pos.leader_epoch) {
                (true, Some(epoch)) => match seen.get_mut(tp) {
                    Some((inc, e, max)) if *inc == incarnation && *e == epoch => {
                        if hw < *max {
                            let detail = format!(
                                "t={}ms broker {id}: high watermark of {tp} went back from {max} to {hw} while it led leader epoch {epoch}",
                                now_us / 1000
                            );
                            *max = hw;
                            self.report("hw-regression", detail);
                        } else {
                            *max = hw;
                        }
                    }
                    _ => {
                        seen.insert(tp.clone(), (incarnation, epoch, hw));
                    }
                },
                _ => {
                    seen.remove(tp);
                }
            }
            if let (true, Some(epoch)) = (pos.leader, pos.leader_epoch) {
                let leaders = self.leaders.entry(tp.clone()).or_default();
                let first = *leaders.entry(epoch).or_insert(EpochLeader {
                    broker: id,
                    incarnation,
                    high_watermark: hw,
                });
                if first.broker != id {
                    self.report(
                        "duplicate-leader",
                        format!(
                            "t={}ms: brokers {} and {id} both led {tp} in leader epoch {epoch}",
                            now_us / 1000,
                            first.broker
                        ),
                    );
                } else if first.incarnation != incarnation {
                    // The restarted broker leads the epoch again (a
                    // controller elected after the bounce cannot tell it
                    // from a steady leader). Legal only with every record
                    // the epoch had committed.
                    leaders.insert(
                        epoch,
                        EpochLeader {
                            broker: id,
                            incarnation,
                            high_watermark: hw.max(first.high_watermark.min(pos.log_end)),
                        },
                    );
                    if pos.log_end < first.high_watermark {
                        self.report(
                            "duplicate-leader",
                            format!(
                                "t={}ms: broker {id} led {tp} in leader epoch {epoch} up to high watermark {} and, restarted with its log ending at {}, leads the same epoch again (followers will truncate committed records to it)",
                                now_us / 1000,
                                first.high_watermark,
                                pos.log_end
                            ),
                        );
                    }
                } else if hw > first.high_watermark {
                    leaders.insert(
                        epoch,
                        EpochLeader {
                            high_watermark: hw,
                            ..first
                        },
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(leader: bool, epoch: u32, hw: u64) -> ReplicaPosition {
        ReplicaPosition {
            leader,
            leader_epoch: Some(epoch),
            high_watermark: hw,
            log_end: hw,
            log_start: 0,
        }
    }

    fn kinds(m: &ReplicaMonitor) -> Vec<String> {
        m.violations().into_iter().map(|v| v.kind).collect()
    }

    #[test]
    fn a_rising_hw_and_a_restart_from_a_lower_checkpoint_pass() {
        let tp = Tp::new("t", 0);
        let mut m = ReplicaMonitor::new(vec![1, 2]);
        for hw in [0, 3, 3, 7] {
            m.observe(0, 1, 1, [(&tp, pos(true, 0, hw))].into_iter());
        }
        // Restarted (incarnation 2) with an older checkpoint: allowed.
        m.observe(0, 1, 2, [(&tp, pos(false, 0, 2))].into_iter());
        // A new leader in a new epoch.
        m.observe(0, 2, 1, [(&tp, pos(true, 1, 7))].into_iter());
        assert!(kinds(&m).is_empty(), "{:?}", m.violations());
    }

    #[test]
    fn a_leader_hw_going_back_within_its_epoch_is_a_regression() {
        let tp = Tp::new("t", 0);
        let mut m = ReplicaMonitor::new(vec![1]);
        m.observe(0, 1, 1, [(&tp, pos(true, 1, 9))].into_iter());
        m.observe(5_000, 1, 1, [(&tp, pos(true, 1, 4))].into_iter());
        assert_eq!(kinds(&m), vec!["hw-regression"]);
    }

    #[test]
    fn follower_hws_and_new_epochs_may_start_lower() {
        let tp = Tp::new("t", 0);
        let mut m = ReplicaMonitor::new(vec![1]);
        // A follower takes the leader's value, which may be lower (KIP-207).
        m.observe(0, 1, 1, [(&tp, pos(false, 0, 9))].into_iter());
        m.observe(1_000, 1, 1, [(&tp, pos(false, 1, 4))].into_iter());
        // Leading epoch 2 from its follower value, then epoch 4 lower
        // still (a truncation in between, as a follower of epoch 3).
        m.observe(2_000, 1, 1, [(&tp, pos(true, 2, 6))].into_iter());
        m.observe(3_000, 1, 1, [(&tp, pos(true, 4, 5))].into_iter());
        assert!(kinds(&m).is_empty(), "{:?}", m.violations());
    }

    fn meta(m: &mut ReplicaMonitor, id: NodeId, inc: u32, epoch: u32, version: i32) {
        let tp = Tp::new("t", 0);
        m.observe_metadata(0, id, inc, [(&tp, (epoch, version))].into_iter());
    }

    #[test]
    fn metadata_moving_forward_or_restarting_empty_passes() {
        let mut m = ReplicaMonitor::new(vec![1, 2]);
        // ISR changes (same epoch, newer znode), a new leader, repeats.
        for (e, v) in [(0, 0), (0, 1), (0, 1), (1, 2), (3, 5)] {
            meta(&mut m, 1, 1, e, v);
        }
        // Restarted: the new process learns the cluster from scratch.
        meta(&mut m, 1, 2, 1, 2);
        meta(&mut m, 2, 1, 0, 0);
        assert!(kinds(&m).is_empty(), "{:?}", m.violations());
    }

    #[test]
    fn metadata_going_back_within_an_incarnation_is_a_regression() {
        let mut m = ReplicaMonitor::new(vec![1]);
        meta(&mut m, 1, 1, 4, 7);
        // A zombie controller's older state: an earlier leader epoch.
        meta(&mut m, 1, 1, 3, 6);
        assert_eq!(kinds(&m), vec!["metadata-regression"]);
        let mut m = ReplicaMonitor::new(vec![1]);
        meta(&mut m, 1, 1, 4, 7);
        // The same leader epoch with an older ISR.
        meta(&mut m, 1, 1, 4, 6);
        assert_eq!(kinds(&m), vec!["metadata-regression"]);
    }

    #[test]
    fn two_leaders_in_one_epoch_are_reported() {
        let tp = Tp::new("t", 0);
        let mut m = ReplicaMonitor::new(vec![1, 2]);
        m.observe(0, 1, 1, [(&tp, pos(true, 3, 0))].into_iter());
        m.observe(0, 2, 1, [(&tp, pos(true, 3, 0))].into_iter());
        assert_eq!(kinds(&m), vec!["duplicate-leader"]);
    }

    #[test]
    fn a_restarted_broker_leading_the_same_epoch_is_reported_only_without_its_committed_records() {
        let tp = Tp::new("t", 0);
        let mut m = ReplicaMonitor::new(vec![1, 2]);
        m.observe(0, 1, 1, [(&tp, pos(true, 3, 10))].into_iter());
        // Restarted with its log intact (a process kill): Kafka's
        // controller may hand it its old epoch again.
        let intact = ReplicaPosition {
            leader: true,
            leader_epoch: Some(3),
            high_watermark: 4,
            log_end: 12,
            log_start: 0,
        };
        m.observe(0, 1, 2, [(&tp, intact)].into_iter());
        assert!(kinds(&m).is_empty());
        // Restarted again, its log now ending below the epoch's high
        // watermark of 10: followers would truncate committed records.
        let short = ReplicaPosition {
            leader: true,
            leader_epoch: Some(3),
            high_watermark: 2,
            log_end: 7,
            log_start: 0,
        };
        m.observe(0, 1, 3, [(&tp, short)].into_iter());
        assert_eq!(kinds(&m), vec!["duplicate-leader"]);
    }
}
