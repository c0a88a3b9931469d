//! End-to-end tests of the group coordinator and the group member in the
//! Kafka test world: three brokers (each hosting a coordinator) beside a
//! ZooKeeper ensemble, a producer and group members.

use std::collections::{BTreeMap, BTreeSet};

use crate::bugs::BugSet;
use crate::group::types::{CommitOutcome, GroupReply, GroupRequest};
use crate::group::{offsets_partition, GroupMember, MemberConfig, OFFSETS_TOPIC};
use crate::kafka::testkit::{Cluster, BROKERS, PRODUCER};
use crate::kafka::{KafkaReply, KafkaRequest, ProducerConfig, Tp};
use crate::msg::{ClientReply, ClientRequest};
use crate::node::NodeId;

const GROUP: &str = "g";
const TOPIC: &str = "t";
const PARTITIONS: u32 = 4;
const A: NodeId = 102;
const B: NodeId = 103;

/// A cluster with topic `t` (4 partitions on every broker) and members
/// `members` booted, each with `cfg` (group `g`, topic `t`).
fn setup(bugs: BugSet, members: &[NodeId], cfg: &MemberConfig) -> Cluster {
    let mut c = Cluster::new(bugs.clone(), ProducerConfig::default());
    assert!(
        c.run_until(5_000, |c| c.controllers().len() == 1
            && BROKERS
                .iter()
                .all(|&b| c.broker(b).is_some_and(|x| x.is_registered()))),
        "no controller"
    );
    let assignment = (0..PARTITIONS).map(|p| (p, BROKERS.to_vec())).collect();
    c.create_topic(TOPIC, assignment);
    assert!(c.run_until(3_000, |c| (0..PARTITIONS)
        .all(|p| c.leaders(&Tp::new(TOPIC, p)).len() == 1)));
    for &m in members {
        boot(&mut c, m, cfg, &bugs);
    }
    c
}

/// Boots member `m` of group `g` over topic `t` with `cfg` (a fresh
/// incarnation after a crash).
fn boot(c: &mut Cluster, m: NodeId, cfg: &MemberConfig, bugs: &BugSet) {
    let cfg = MemberConfig {
        group: GROUP.into(),
        topic: TOPIC.into(),
        partitions: PARTITIONS,
        ..cfg.clone()
    };
    c.boot_node(m, Box::new(GroupMember::new(BROKERS.to_vec(), cfg, bugs)));
}

/// Polls `m` until it has returned `n` records (at most 50 polls).
fn read(c: &mut Cluster, m: NodeId, n: usize) -> Vec<(u32, u64)> {
    let mut got = Vec::new();
    for _ in 0..50 {
        got.extend(poll(c, m).2);
        if got.len() >= n {
            break;
        }
        c.run_ms(10);
    }
    got
}

/// Polls `members` until one reports being assigned partition `p`;
/// returns that assignment's `(start, committed)`.
fn next_assignment(c: &mut Cluster, members: &[NodeId], p: u32) -> Option<(u64, Option<u64>)> {
    for _ in 0..300 {
        for &m in members {
            match c.call(m, ClientRequest::Group(GroupRequest::Poll)) {
                ClientReply::Group(GroupReply::Polled { events, .. }) => {
                    if let Some(a) = events.assigned.iter().find(|a| a.tp.partition == p) {
                        return Some((a.start, a.committed));
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        c.run_ms(20);
    }
    None
}

fn produce(c: &mut Cluster, p: u32, v: &str) {
    let r = c.call(
        PRODUCER,
        ClientRequest::Kafka(KafkaRequest::Send {
            tp: Tp::new(TOPIC, p),
            value: v.as_bytes().to_vec(),
        }),
    );
    assert!(
        matches!(r, ClientReply::Kafka(KafkaReply::Sent { .. })),
        "{r:?}"
    );
}

/// One poll by `m`: (generation, owned partitions, records as (p, offset)).
fn poll(c: &mut Cluster, m: NodeId) -> (i32, Vec<u32>, Vec<(u32, u64)>) {
    match c.call(m, ClientRequest::Group(GroupRequest::Poll)) {
        ClientReply::Group(GroupReply::Polled {
            generation,
            owned,
            records,
            ..
        }) => (
            generation,
            owned.iter().map(|t| t.partition).collect(),
            records.iter().map(|(t, o, _)| (t.partition, *o)).collect(),
        ),
        other => panic!("{other:?}"),
    }
}

fn commit(c: &mut Cluster, m: NodeId) -> CommitOutcome {
    match c.call(m, ClientRequest::Group(GroupRequest::Commit)) {
        ClientReply::Group(GroupReply::Committed { commit, .. }) => commit.outcome,
        other => panic!("{other:?}"),
    }
}

/// Polls every member in turn until each owns something and together they
/// own every partition exactly once, in one generation.
fn settle(c: &mut Cluster, members: &[NodeId]) -> BTreeMap<NodeId, (i32, Vec<u32>)> {
    for _ in 0..200 {
        let mut seen = BTreeMap::new();
        for &m in members {
            let (g, owned, _) = poll(c, m);
            seen.insert(m, (g, owned));
        }
        let gens: BTreeSet<i32> = seen.values().map(|v| v.0).collect();
        let mut all: Vec<u32> = seen.values().flat_map(|v| v.1.clone()).collect();
        all.sort();
        if gens.len() == 1
            && gens.iter().all(|&g| g > 0)
            && seen.values().all(|v| !v.1.is_empty())
            && all == (0..PARTITIONS).collect::<Vec<_>>()
        {
            return seen;
        }
        c.run_ms(20);
    }
    panic!("the group did not settle");
}

/// The broker that leads the group's offsets partition.
fn coordinator(c: &Cluster) -> NodeId {
    let n = c.kcfg.group.offsets_partitions;
    let tp = Tp::new(OFFSETS_TOPIC, offsets_partition(GROUP, n));
    let leaders = c.leaders(&tp);
    assert_eq!(leaders.len(), 1, "{leaders:?}");
    leaders[0]
}

#[test]
fn two_members_split_the_partitions_and_commits_survive_a_member_restart() {
    let mut c = setup(BugSet::default(), &[A, B], &MemberConfig::default());
    let s = settle(&mut c, &[A, B]);
    assert_eq!(s[&A].1.len() + s[&B].1.len(), PARTITIONS as usize);
    // The offsets topic exists with the configured partitions.
    let n = c.kcfg.group.offsets_partitions;
    for p in 0..n {
        assert_eq!(c.leaders(&Tp::new(OFFSETS_TOPIC, p)).len(), 1);
    }
    let mine = s[&A].1[0];
    for i in 0..3 {
        produce(&mut c, mine, &format!("v{i}"));
    }
    assert_eq!(read(&mut c, A, 3), vec![(mine, 0), (mine, 1), (mine, 2)]);
    assert_eq!(commit(&mut c, A), CommitOutcome::Ok);
    // A restarts as a new member: whoever owns `mine` next starts at 3.
    c.crash(A);
    boot(&mut c, A, &MemberConfig::default(), &BugSet::none());
    assert_eq!(next_assignment(&mut c, &[A, B], mine), Some((3, Some(3))));
}

#[test]
fn a_commit_survives_the_coordinator_broker_crashing() {
    let mut c = setup(BugSet::default(), &[A], &MemberConfig::default());
    settle(&mut c, &[A]);
    produce(&mut c, 0, "x");
    produce(&mut c, 0, "y");
    assert_eq!(read(&mut c, A, 2).len(), 2);
    assert_eq!(commit(&mut c, A), CommitOutcome::Ok);
    let old = coordinator(&c);
    c.crash(old);
    assert!(c.run_until(5_000, |c| {
        let n = c.kcfg.group.offsets_partitions;
        let tp = Tp::new(OFFSETS_TOPIC, offsets_partition(GROUP, n));
        c.leaders(&tp).iter().any(|&l| l != old)
    }));
    // A fresh member (the old one crashes too) reads the committed offset
    // from the new coordinator, which loaded it from the log.
    c.crash(A);
    boot(&mut c, A, &MemberConfig::default(), &BugSet::none());
    assert_eq!(next_assignment(&mut c, &[A], 0), Some((2, Some(2))));
    assert_ne!(coordinator(&c), old);
}

/// A member paused past its session (not past max.poll.interval.ms) is
/// expired; on waking, its commit of the old generation is refused,
/// unless the planted bug accepts it.
fn zombie_commit(bugs: BugSet) -> CommitOutcome {
    let cfg = MemberConfig {
        max_poll_interval_ms: 10_000,
        ..MemberConfig::default()
    };
    let mut c = setup(bugs, &[A, B], &cfg);
    settle(&mut c, &[A, B]);
    for p in 0..PARTITIONS {
        produce(&mut c, p, "r");
    }
    for _ in 0..5 {
        poll(&mut c, A);
        c.run_ms(10);
    }
    c.pause(A, 2_500);
    // B takes everything over meanwhile.
    let mut owned = Vec::new();
    for _ in 0..150 {
        owned = poll(&mut c, B).1;
        if owned.len() == PARTITIONS as usize {
            break;
        }
        c.run_ms(20);
    }
    assert_eq!(owned.len(), PARTITIONS as usize, "B never took over");
    // Still paused: the commit is handled when A wakes, before it hears
    // that it was expired.
    commit(&mut c, A)
}

#[test]
fn a_zombie_members_commit_is_refused() {
    let outcome = zombie_commit(BugSet::default());
    assert!(matches!(outcome, CommitOutcome::Failed(_)), "{outcome:?}");
}

#[test]
fn with_the_planted_bug_a_zombie_members_commit_is_accepted() {
    let mut bugs = BugSet::none();
    bugs.enable("group_commit_ignores_generation");
    let outcome = zombie_commit(bugs);
    assert_eq!(outcome, CommitOutcome::Ok);
}

/// A member whose application stops polling leaves the group after
/// max.poll.interval.ms; the other member takes its partitions.
#[test]
fn a_member_that_stops_polling_leaves_the_group() {
    let mut c = setup(BugSet::default(), &[A, B], &MemberConfig::default());
    settle(&mut c, &[A, B]);
    let mut owned = Vec::new();
    for _ in 0..200 {
        owned = poll(&mut c, B).1;
        if owned.len() == PARTITIONS as usize {
            break;
        }
        c.run_ms(20);
    }
    assert_eq!(owned, (0..PARTITIONS).collect::<Vec<_>>());
}
