//! What a model tells the host about itself beside its effects: named
//! protocol events (a leader elected, an ISR shrink, a proposal logged but
//! not yet fsynced, ...) and BUGGIFY sites, FoundationDB's way of making a
//! model take rare but legal paths more often.
//!
//! Both go through [`crate::Ctx::event`] and [`crate::Ctx::buggify`]. A host
//! that hands no [`Probe`] to the context (unit tests, the default of
//! [`crate::Ctx::new`]) sees nothing and every site answers `false`, so the
//! models behave exactly as without the calls. With a probe, events are
//! collected for the host after each step (the host aims faults at them and
//! counts them), and buggify answers come from the probe's own seeded RNG:
//! the node's RNG is never touched, so a run with buggify off is the same
//! trace whether or not a model has sites.

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::node::NodeId;

/// A protocol event a model reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    /// ZooKeeper: a server becomes the leader (subject: itself).
    ZkLeaderElected,
    /// ZooKeeper: a follower appended a proposal to its transaction log and
    /// has not fsynced it yet (subject: the follower).
    ZkProposalLogged,
    /// ZooKeeper: the leader heard a follower's ACK of NEWLEADER, the end
    /// of its synchronisation (subject: the follower).
    ZkFollowerSynced,
    /// ZooKeeper: the leader starts synchronising a follower with a
    /// snapshot (SNAP; subject: the follower).
    ZkSnapshotSync,
    /// ZooKeeper: the leader expires a session (subject: the leader).
    ZkSessionExpired,
    /// Kafka: a partition's ISR lost members (subject: a replica removed).
    IsrShrink,
    /// Kafka: a partition's ISR gained a member (subject: the replica).
    IsrExpand,
    /// Kafka: a broker starts leading a partition (subject: the broker).
    LeaderChange,
    /// Kafka: a replica truncated its log (subject: the replica).
    Truncation,
    /// Kafka: a new controller took over (subject: the controller).
    ControllerChange,
    /// Kafka: a leader was elected from outside the ISR (subject: it).
    UncleanElection,
    /// Kafka: a partition leader's high watermark moved (subject: the
    /// leader).
    HwAdvance,
    /// Consumer groups: the coordinator starts a rebalance (subject: the
    /// coordinator).
    RebalanceStart,
    /// Consumer groups: a rebalance ended with a new generation (subject:
    /// the coordinator).
    RebalanceEnd,
    /// Consumer groups: the coordinator wrote an offset commit (subject:
    /// the coordinator).
    OffsetCommit,
    /// Raft: a voter granted its vote (subject: the candidate).
    RaftVoteGranted,
    /// Raft: a replica became leader of an epoch (subject: itself).
    RaftLeaderElected,
}

impl EventKind {
    /// Every event kind with its name in scenario files and what it means.
    pub fn all() -> &'static [(EventKind, &'static str, &'static str)] {
        use EventKind::*;
        &[
            (ZkLeaderElected, "zk-leader-elected", "a ZooKeeper server becomes leader (subject: the leader)"),
            (ZkProposalLogged, "zk-proposal-logged", "a ZooKeeper follower appended a proposal and has not fsynced it (subject: the follower)"),
            (ZkFollowerSynced, "zk-follower-synced", "the ZooKeeper leader heard a follower's NEWLEADER ack (subject: the follower)"),
            (ZkSnapshotSync, "zk-snapshot-sync", "the ZooKeeper leader starts a SNAP synchronisation (subject: the follower)"),
            (ZkSessionExpired, "zk-session-expired", "the ZooKeeper leader expires a session (subject: the leader)"),
            (IsrShrink, "isr-shrink", "a Kafka partition's ISR lost a member (subject: the replica removed)"),
            (IsrExpand, "isr-expand", "a Kafka partition's ISR gained a member (subject: the replica added)"),
            (LeaderChange, "leader-change", "a Kafka broker starts leading a partition (subject: the broker)"),
            (Truncation, "truncation", "a Kafka replica truncated its log (subject: the replica)"),
            (ControllerChange, "controller-change", "a new Kafka controller took over (subject: the controller)"),
            (UncleanElection, "unclean-election", "a Kafka leader was elected from outside the ISR (subject: the leader)"),
            (HwAdvance, "hw-advance", "a Kafka partition leader's high watermark moved (subject: the leader)"),
            (RebalanceStart, "rebalance-start", "a group coordinator starts a rebalance (subject: the coordinator)"),
            (RebalanceEnd, "rebalance-end", "a group's rebalance ended with a new generation (subject: the coordinator)"),
            (OffsetCommit, "offset-commit", "a group coordinator wrote an offset commit (subject: the coordinator)"),
            (RaftVoteGranted, "raft-vote-granted", "a Raft voter granted its vote (subject: the candidate)"),
            (RaftLeaderElected, "raft-leader-elected", "a Raft replica became leader of an epoch (subject: the leader)"),
        ]
    }

    /// The event's name in scenario files.
    pub fn name(self) -> &'static str {
        EventKind::all()
            .iter()
            .find(|(k, _, _)| *k == self)
            .map(|(_, n, _)| *n)
            .expect("every kind is listed")
    }

    /// The system the event belongs to: `zk`, `kafka`, `group` or `raft`.
    pub fn family(self) -> &'static str {
        use EventKind::*;
        match self {
            ZkLeaderElected | ZkProposalLogged | ZkFollowerSynced | ZkSnapshotSync
            | ZkSessionExpired => "zk",
            IsrShrink | IsrExpand | LeaderChange | Truncation | ControllerChange
            | UncleanElection | HwAdvance => "kafka",
            RebalanceStart | RebalanceEnd | OffsetCommit => "group",
            RaftVoteGranted | RaftLeaderElected => "raft",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::all()
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(k, _, _)| *k)
    }
}

/// One reported event: what, by whom, about whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtoEvent {
    /// What happened.
    pub kind: EventKind,
    /// The node that reported it.
    pub emitter: NodeId,
    /// The node it is about.
    pub subject: NodeId,
}

/// Every buggify site, with the rare but legal path it takes.
pub const SITES: &[(&str, &str)] = &[
    (
        "disk.fsync.slow",
        "an fsync takes ten times as long (a busy device; the host's disk)",
    ),
    (
        "group.heartbeat.late",
        "a group member's heartbeat thread skips a beat (a busy client)",
    ),
    (
        "kafka.fetch.one-batch",
        "a Kafka leader answers a fetch with its first batch only (a small fetch.max.bytes)",
    ),
    (
        "raft.fetch.one-batch",
        "a Raft leader answers a fetch with its first batch only",
    ),
    (
        "zk.snapshot.early",
        "a ZooKeeper server snapshots after a quarter of snapCount (ZooKeeper randomises it too)",
    ),
    (
        "zk.sync.snap-instead-of-diff",
        "a ZooKeeper leader synchronises a learner with a snapshot where a DIFF would do",
    ),
];

/// FoundationDB's odds: a site is switched on for a run with this
/// probability the first time it is reached, and an enabled site fires on
/// this share of its calls.
const SITE_ON: f64 = 0.25;
const SITE_FIRES: f64 = 0.25;

/// One buggify site's record in a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SiteCount {
    /// Whether the site is on in this run.
    pub enabled: bool,
    /// How often it was reached.
    pub reached: u64,
    /// How often it fired.
    pub fired: u64,
}

/// The host's side of the probe for one run.
pub struct Probe {
    /// Events reported since the host last drained them.
    pub events: Vec<ProtoEvent>,
    /// Per event kind, how often it was reported in the run.
    pub event_counts: BTreeMap<EventKind, u64>,
    /// Buggify: its RNG, when on.
    buggify: Option<ChaCha8Rng>,
    /// Per buggify site, whether it is on and how often it fired.
    pub sites: BTreeMap<&'static str, SiteCount>,
}

impl Probe {
    /// A probe; `buggify` carries the RNG of the buggify decisions when
    /// buggify is on for the run.
    pub fn new(buggify: Option<ChaCha8Rng>) -> Probe {
        Probe {
            events: Vec::new(),
            event_counts: BTreeMap::new(),
            buggify,
            sites: BTreeMap::new(),
        }
    }

    /// Whether buggify is on.
    pub fn buggify_on(&self) -> bool {
        self.buggify.is_some()
    }

    /// Records an event.
    pub fn report(&mut self, e: ProtoEvent) {
        *self.event_counts.entry(e.kind).or_insert(0) += 1;
        self.events.push(e);
    }

    /// Whether buggify site `site` fires now.
    pub fn buggify(&mut self, site: &'static str) -> bool {
        debug_assert!(
            SITES.iter().any(|(s, _)| *s == site),
            "buggify site `{site}` is not listed in probe::SITES"
        );
        let Some(rng) = self.buggify.as_mut() else {
            return false;
        };
        let count = match self.sites.get_mut(site) {
            Some(c) => c,
            None => {
                let enabled = rng.gen_bool(SITE_ON);
                self.sites.entry(site).or_insert(SiteCount {
                    enabled,
                    ..SiteCount::default()
                })
            }
        };
        count.reached += 1;
        let fires = count.enabled && rng.gen_bool(SITE_FIRES);
        if fires {
            count.fired += 1;
        }
        fires
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn without_buggify_no_site_fires_and_nothing_is_recorded() {
        let mut p = Probe::new(None);
        assert!((0..100).all(|_| !p.buggify("zk.snapshot.early")));
        assert!(p.sites.is_empty());
    }

    #[test]
    fn sites_are_switched_on_per_run_and_fire_on_a_share_of_calls() {
        let mut on = 0;
        for seed in 0..200 {
            let mut p = Probe::new(Some(ChaCha8Rng::seed_from_u64(seed)));
            let fired = (0..400).filter(|_| p.buggify("disk.fsync.slow")).count();
            let c = p.sites["disk.fsync.slow"];
            assert_eq!(c.reached, 400);
            assert_eq!(c.fired, fired as u64);
            if c.enabled {
                on += 1;
                assert!((50..150).contains(&fired), "fired {fired} of 400");
            } else {
                assert_eq!(fired, 0);
            }
        }
        assert!((25..80).contains(&on), "{on} of 200 runs");
    }

    #[test]
    fn every_event_name_parses_back() {
        for (k, name, _) in EventKind::all() {
            assert_eq!(EventKind::parse(name), Some(*k));
            assert_eq!(k.name(), *name);
        }
        assert_eq!(EventKind::parse("isr-grow"), None);
    }
}
