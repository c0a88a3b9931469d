//! Which servers were deposed while they still served: the simulation's
//! ground truth for ZooKeeper's `sync` promise.
//!
//! A server that serves clients in an epoch older than the newest epoch a
//! leader has established (a quorum acknowledged its NEWLEADER) has been
//! deposed without knowing it yet: a leader cut off from its followers, or
//! a follower of one, until it notices the lost quorum. ZooKeeper promises
//! a read after `sync` every write completed before the sync began only
//! when the server that answers the sync is still in the quorum
//! (`Leader.processSync` has no quorum round: ZOOKEEPER-1675), so the
//! `stale-sync-read` check (see `checks`) waives the syncs such a server
//! answered, and only those.
//!
//! No server can tell this from inside; the monitor sees every server after
//! each of its steps and records the intervals.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use kzsim_model::zk::ZkServer;
use kzsim_model::{Node, NodeId};

use crate::outcome::Violation;
use crate::system::Monitor;

/// Per server, the intervals (µs of true time, end exclusive; `u64::MAX`
/// while open) during which it served clients in a deposed epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeposedTimeline {
    intervals: BTreeMap<NodeId, Vec<(u64, u64)>>,
}

impl DeposedTimeline {
    /// Records that `server` served while deposed over `[from, to)`.
    pub fn add(&mut self, server: NodeId, from: u64, to: u64) {
        self.intervals.entry(server).or_default().push((from, to));
    }

    /// Whether `server` served while deposed at some instant of
    /// `[from, to]`.
    pub fn deposed_during(&self, server: NodeId, from: u64, to: u64) -> bool {
        self.intervals
            .get(&server)
            .is_some_and(|v| v.iter().any(|&(a, b)| a <= to && from < b))
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }
}

/// The timeline shared between the monitor that writes it and the checks
/// that read it after the run.
pub type SharedTimeline = Arc<Mutex<DeposedTimeline>>;

/// Watches the servers' roles and epochs.
pub struct QuorumMonitor {
    servers: Vec<NodeId>,
    /// The newest epoch some leader has established.
    established: u64,
    /// Per server: the epoch it serves in, as of its last step (`None`
    /// when it does not serve).
    serving: BTreeMap<NodeId, Option<u64>>,
    /// Per server: since when it has been serving deposed.
    open: BTreeMap<NodeId, u64>,
    out: SharedTimeline,
}

impl QuorumMonitor {
    /// A monitor of `servers` writing into `out` (cleared).
    pub fn new(servers: Vec<NodeId>, out: SharedTimeline) -> QuorumMonitor {
        *out.lock().expect("timeline lock") = DeposedTimeline::default();
        QuorumMonitor {
            servers,
            established: 0,
            serving: BTreeMap::new(),
            open: BTreeMap::new(),
            out,
        }
    }

    /// Takes note of a server's state at `now_us`: the epoch it serves in
    /// (if it serves) and whether it leads an established epoch.
    pub fn observe(&mut self, now_us: u64, id: NodeId, serving: Option<u64>, leads: bool) {
        if leads {
            if let Some(e) = serving {
                self.established = self.established.max(e);
            }
        }
        self.serving.insert(id, serving);
        let mut out = self.out.lock().expect("timeline lock");
        for (&s, &epoch) in &self.serving {
            let deposed = epoch.is_some_and(|e| e < self.established);
            match (deposed, self.open.get(&s).copied()) {
                (true, None) => {
                    self.open.insert(s, now_us);
                    out.add(s, now_us, u64::MAX);
                }
                (false, Some(from)) => {
                    self.open.remove(&s);
                    if let Some(last) = out.intervals.get_mut(&s).and_then(|v| v.last_mut()) {
                        *last = (from, now_us);
                    }
                }
                _ => {}
            }
        }
    }
}

impl Monitor for QuorumMonitor {
    fn after_step(&mut self, now_us: u64, id: NodeId, _incarnation: u32, node: &dyn Node) {
        if !self.servers.contains(&id) {
            return;
        }
        let Some(s) = node.as_any().and_then(|a| a.downcast_ref::<ZkServer>()) else {
            return;
        };
        let serving = s.is_serving().then(|| s.epochs().1);
        self.observe(now_us, id, serving, s.is_leader());
    }

    fn violations(&self) -> Vec<Violation> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_serving_after_a_newer_epoch_is_established_is_deposed() {
        let t = SharedTimeline::default();
        let mut m = QuorumMonitor::new(vec![0, 1, 2], t.clone());
        m.observe(10, 0, Some(1), true);
        m.observe(11, 1, Some(1), false);
        // Server 2 leads epoch 2 while 0 still thinks it leads 1.
        m.observe(100, 2, Some(2), true);
        m.observe(150, 1, Some(2), false);
        // 0 notices and stops serving.
        m.observe(300, 0, None, false);
        let t = t.lock().unwrap();
        assert!(t.deposed_during(0, 120, 130));
        assert!(t.deposed_during(0, 0, 100));
        assert!(!t.deposed_during(0, 0, 99));
        assert!(!t.deposed_during(0, 300, 400));
        // 1 was deposed from 100 until it followed the new leader at 150.
        assert!(t.deposed_during(1, 120, 120));
        assert!(!t.deposed_during(1, 150, 400));
        assert!(!t.deposed_during(2, 0, 1000));
    }

    #[test]
    fn a_new_run_starts_with_an_empty_timeline() {
        let t = SharedTimeline::default();
        t.lock().unwrap().add(0, 1, 2);
        let _m = QuorumMonitor::new(vec![0], t.clone());
        assert!(t.lock().unwrap().is_empty());
    }
}
