//! The metadata quorum's invariants, after every step of a controller or
//! a broker (an observer):
//!
//! - `raft-hw-regression`: a replica's high watermark went back within one
//!   incarnation.
//! - `raft-epoch-regression`: a replica's epoch went back within one
//!   incarnation.
//! - `raft-two-leaders`: two replicas led the same epoch.
//! - `raft-hw-without-majority`: a leader's high watermark reached an
//!   offset that fewer than a majority of voters held on disk (fsynced).
//! - `raft-committed-lost`: a voter truncated its log below the committed
//!   offset (what any replica's high watermark reached).
//! - `raft-divergence`: a replica's committed records differ from what
//!   another's were at the same offsets.
//! - `metadata-divergence`: the active controller, with everything it
//!   wrote committed and applied, decides from an image (brokers and
//!   partitions) other than the one its metadata log builds.

use std::collections::BTreeMap;

use kzsim_model::kraft::KraftController;
use kzsim_model::raft::RaftCore;
use kzsim_model::{Node, NodeId};

use crate::outcome::Violation;
use crate::system::kraft::checks::first_difference;
use crate::system::kraft::{fingerprint, quorum_member};
use crate::system::{Findings, Monitor};

/// How many violations of each kind are kept.
const KEEP: usize = 5;

/// What was last seen of one replica.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    incarnation: u32,
    epoch: u32,
    hw: u64,
    log_end: u64,
    durable_end: u64,
    /// Its log below this was compared with the committed log.
    checked_to: u64,
    /// Its log below this is known to hold the committed records.
    agree_to: u64,
}

/// Watches the metadata quorum.
pub struct RaftMonitor {
    voters: Vec<NodeId>,
    seen: BTreeMap<NodeId, Seen>,
    /// Per epoch: the first replica seen leading it.
    leaders: BTreeMap<u32, NodeId>,
    /// The committed log: per offset, the fingerprint of its record.
    committed: Vec<u64>,
    found: Findings,
}

impl RaftMonitor {
    /// A monitor of a quorum of `voters` (other replicas are observers).
    pub fn new(voters: Vec<NodeId>) -> RaftMonitor {
        RaftMonitor {
            voters,
            seen: BTreeMap::new(),
            leaders: BTreeMap::new(),
            committed: Vec::new(),
            found: Findings::new(KEEP),
        }
    }

    fn report(&mut self, kind: &str, detail: String) {
        self.found.report(kind, detail);
    }

    /// Compares `core`'s log in `from..to` with the committed log and
    /// extends it.
    fn check_committed(&mut self, t: u64, id: NodeId, core: &RaftCore, from: u64, to: u64) {
        for b in core.read(from, to, usize::MAX) {
            for (i, v) in b.values.iter().enumerate() {
                let off = b.base_offset + i as u64;
                if off < from || off >= to {
                    continue;
                }
                let f = fingerprint(b.epoch, v);
                match self.committed.get(off as usize) {
                    Some(&c) if c != f => {
                        self.report(
                            "raft-divergence",
                            format!(
                                "t={t}ms replica {id}: committed record at offset {off} (epoch {}) differs from the one committed there before",
                                b.epoch
                            ),
                        );
                        return;
                    }
                    Some(_) => {}
                    None if off as usize == self.committed.len() => self.committed.push(f),
                    None => return,
                }
            }
        }
    }

    /// How far from `from` the replica's log holds the committed records
    /// (compared up to `log_end` and the committed log's end).
    fn agreeing_prefix(&self, core: &RaftCore, from: u64, log_end: u64) -> u64 {
        let to = log_end.min(self.committed.len() as u64);
        if to <= from {
            return from;
        }
        let mut at = from;
        for b in core.read(from, to, usize::MAX) {
            for (i, v) in b.values.iter().enumerate() {
                let off = b.base_offset + i as u64;
                if off < at {
                    continue;
                }
                if off >= to || self.committed[off as usize] != fingerprint(b.epoch, v) {
                    return at;
                }
                at = off + 1;
            }
        }
        at
    }

    fn observe(&mut self, now_us: u64, id: NodeId, incarnation: u32, core: &RaftCore) {
        let t = now_us / 1000;
        let v = core.view();
        let mut s = self.seen.get(&id).copied().unwrap_or_default();
        if s.incarnation != incarnation {
            s = Seen {
                incarnation,
                ..Seen::default()
            };
        }
        if v.epoch < s.epoch {
            self.report(
                "raft-epoch-regression",
                format!(
                    "t={t}ms replica {id}: epoch went back from {} to {}",
                    s.epoch, v.epoch
                ),
            );
        }
        if v.high_watermark < s.hw {
            self.report(
                "raft-hw-regression",
                format!(
                    "t={t}ms replica {id}: high watermark went back from {} to {}",
                    s.hw, v.high_watermark
                ),
            );
        }
        let voter = self.voters.contains(&id);
        if voter && v.log_end < s.agree_to {
            self.report(
                "raft-committed-lost",
                format!(
                    "t={t}ms voter {id}: truncated its log from {} to {}, below {}, up to where it held committed records",
                    s.log_end, v.log_end, s.agree_to
                ),
            );
        }
        s.agree_to = s.agree_to.min(v.log_end);
        if voter {
            s.agree_to = self.agreeing_prefix(core, s.agree_to, v.log_end);
        }
        if v.leader {
            let first = *self.leaders.entry(v.epoch).or_insert(id);
            if first != id {
                self.report(
                    "raft-two-leaders",
                    format!(
                        "t={t}ms replicas {first} and {id} both led epoch {}",
                        v.epoch
                    ),
                );
            }
        }
        if v.leader && v.high_watermark > s.hw {
            // A majority of voters must hold it on disk.
            let h = v.high_watermark;
            let holders = self
                .voters
                .iter()
                .filter(|&&x| {
                    if x == id {
                        v.durable_end >= h
                    } else {
                        self.seen.get(&x).is_some_and(|o| o.durable_end >= h)
                    }
                })
                .count();
            if holders < self.voters.len() / 2 + 1 {
                self.report(
                    "raft-hw-without-majority",
                    format!(
                        "t={t}ms leader {id} of epoch {}: high watermark {h} held on disk by {holders} of {} voters",
                        v.epoch,
                        self.voters.len()
                    ),
                );
            }
        }
        // Truncation moves what was compared back.
        let checked = s.checked_to.min(v.log_end);
        if v.high_watermark > checked {
            self.check_committed(t, id, core, checked, v.high_watermark);
        }
        s.epoch = v.epoch;
        s.hw = v.high_watermark;
        s.log_end = v.log_end;
        s.durable_end = v.durable_end;
        s.checked_to = v.high_watermark.max(checked);
        self.seen.insert(id, s);
    }
}

impl RaftMonitor {
    /// The active controller decides from the image its log builds, once
    /// everything it wrote is applied.
    fn check_working_image(&mut self, now_us: u64, id: NodeId, c: &KraftController) {
        let img = c.image();
        if !c.is_active() || c.raft().log().leo() > img.applied {
            return;
        }
        let work = c.working_image();
        if work.content() != img.content() {
            let what = first_difference(work, img);
            self.report(
                "metadata-divergence",
                format!(
                    "t={}ms: active controller {id} decides from an image its metadata log (applied to {}) does not build: {what}",
                    now_us / 1000,
                    img.applied
                ),
            );
        }
    }
}

impl Monitor for RaftMonitor {
    fn after_step(&mut self, now_us: u64, id: NodeId, incarnation: u32, node: &dyn Node) {
        if let Some((core, _)) = quorum_member(node) {
            self.observe(now_us, id, incarnation, core);
        }
        if let Some(c) = node
            .as_any()
            .and_then(|a| a.downcast_ref::<KraftController>())
        {
            self.check_working_image(now_us, id, c);
        }
    }

    fn violations(&self) -> Vec<Violation> {
        self.found.violations()
    }
}

/// Two monitors as one.
pub struct Both(pub Box<dyn Monitor>, pub Box<dyn Monitor>);

impl Monitor for Both {
    fn after_step(&mut self, now_us: u64, id: NodeId, incarnation: u32, node: &dyn Node) {
        self.0.after_step(now_us, id, incarnation, node);
        self.1.after_step(now_us, id, incarnation, node);
    }

    fn violations(&self) -> Vec<Violation> {
        let mut v = self.0.violations();
        v.extend(self.1.violations());
        v
    }
}
