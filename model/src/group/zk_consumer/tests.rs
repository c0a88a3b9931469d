//! Tests of the ZooKeeper-era consumer: the pure parts (range assignment,
//! paths, offsets), and runs in the small world of `test_world` (pauses,
//! cuts from ZooKeeper, crashes, the planted owner race).

use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::test_world::*;
use super::znodes::*;
use super::*;
use crate::group::types::AssignedPartition;
use crate::msg::ClientReply;

// ----- pure parts -----

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn range_splits_like_kafka_08() {
    let two = ids(&["g_c2-1", "g_c1-9"]);
    assert_eq!(range_assignment(&two, "g_c1-9", 4), vec![0, 1]);
    assert_eq!(range_assignment(&two, "g_c2-1", 4), vec![2, 3]);
    assert_eq!(range_assignment(&two, "g_c1-9", 5), vec![0, 1, 2]);
    assert_eq!(range_assignment(&two, "g_c2-1", 5), vec![3, 4]);
    let three = ids(&["a", "b", "c"]);
    let got: Vec<Vec<u32>> = ["a", "b", "c"]
        .iter()
        .map(|m| range_assignment(&three, m, 4))
        .collect();
    assert_eq!(got, vec![vec![0, 1], vec![2], vec![3]]);
    // More members than partitions: the last ones get nothing.
    assert_eq!(range_assignment(&three, "a", 1), vec![0]);
    assert!(range_assignment(&three, "c", 1).is_empty());
    // Not registered: nothing.
    assert!(range_assignment(&three, "z", 4).is_empty());
    // Every partition exactly once.
    for n in 0..10 {
        let members = ids(&["m1", "m2", "m3", "m4"]);
        let mut all: Vec<u32> = members
            .iter()
            .flat_map(|m| range_assignment(&members, m, n))
            .collect();
        all.sort();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
    }
}

#[test]
fn paths_and_offsets() {
    assert_eq!(ids_dir("g"), "/consumers/g/ids");
    assert_eq!(owners_dir("g", "t"), "/consumers/g/owners/t");
    assert_eq!(offsets_dir("g", "t"), "/consumers/g/offsets/t");
    let parents = parent_paths("g", "t");
    assert_eq!(parents.first().unwrap(), "/consumers");
    // Each parent comes after its own parent.
    for (i, p) in parents.iter().enumerate().skip(1) {
        let parent = &p[..p.rfind('/').unwrap()];
        assert!(parents[..i].iter().any(|q| q == parent), "{p}");
    }
    assert_eq!(parse_offset(b"42"), Some(42));
    assert_eq!(parse_offset(b"0"), Some(0));
    assert_eq!(parse_offset(b""), None);
    assert_eq!(parse_offset(b"x1"), None);
    assert_eq!(parse_offset(&[0xff, 0xfe]), None);
}

/// Two consumers split four partitions; the second waits for the first
/// (paused while it joins) to release before it claims; the positions A
/// committed on release are where B starts; nothing is read twice.
#[test]
fn two_consumers_split_four_partitions() {
    let mut w = World::setup(BugSet::none(), 5);
    let mut seen = Seen::default();
    w.add_consumer(A);
    assert!(w.run_until(2_000, |w| owned(w, A).len() == 4));
    drive(&mut w, &mut seen, 300, |w| owners_agree(w).unwrap());
    assert_eq!(seen.read.len(), 20, "A reads everything: {:?}", seen.read);
    // B joins while A is paused: B's claims find A's owner znodes.
    w.pause(A, 250);
    w.add_consumer(B);
    let mut double = false;
    drive(&mut w, &mut seen, 1_500, |w| {
        owners_agree(w).unwrap();
        double |= !owned(w, A).is_disjoint(&owned(w, B));
    });
    assert!(!double, "a partition had two owners");
    assert!(split(&w), "A {:?} B {:?}", owned(&w, A), owned(&w, B));
    let (ca, cb) = (w.consumer(A).unwrap(), w.consumer(B).unwrap());
    let (ia, ib) = (ca.consumer_id().to_string(), cb.consumer_id().to_string());
    let members = vec![ia.clone(), ib.clone()];
    let want_a: BTreeSet<u32> = range_assignment(&members, &ia, PARTS).into_iter().collect();
    assert_eq!(owned(&w, A), want_a);
    // A committed all it had read when it released; B starts there.
    let b_assigned = &seen.assigned[&B];
    assert!(!b_assigned.is_empty());
    for ap in b_assigned {
        assert_eq!(ap.committed, Some(5), "{ap:?}");
        assert_eq!(ap.start, 5);
    }
    assert!(seen
        .commits
        .iter()
        .any(|c| c.member == ia && c.outcome == CommitOutcome::Ok && c.offsets.len() == 4));
    assert!(seen.read.values().all(|&n| n == 1), "{:?}", seen.read);
    assert_eq!(w.zk_data("/consumers/g/offsets/t/0"), Some(b"5".to_vec()));
    // The workload's commit of B's partitions.
    let r = w.call(B, ClientRequest::Group(GroupRequest::Commit));
    let ClientReply::Group(GroupReply::Committed { commit, .. }) = r else {
        panic!("{r:?}");
    };
    assert_eq!(commit.outcome, CommitOutcome::Ok);
    assert_eq!(commit.member, ib);
    assert_eq!(commit.offsets.len(), 2);
}

/// With `zk_consumer_owner_race`, B takes A's partitions while A (paused)
/// still owns them: two owners.
#[test]
fn owner_race_bug_double_claims() {
    let mut bugs = BugSet::none();
    bugs.enable("zk_consumer_owner_race");
    let mut w = World::setup(bugs, 5);
    let mut seen = Seen::default();
    w.add_consumer(A);
    assert!(w.run_until(2_000, |w| owned(w, A).len() == 4));
    drive(&mut w, &mut seen, 100, |_| {});
    w.pause(A, 250);
    w.add_consumer(B);
    let mut double = BTreeSet::new();
    let mut disagree = None;
    drive(&mut w, &mut seen, 1_000, |w| {
        double.extend(owned(w, A).intersection(&owned(w, B)).copied());
        if disagree.is_none() {
            disagree = owners_agree(w).err();
        }
    });
    assert!(!double.is_empty(), "no double claim");
    assert!(disagree.is_some());
}

/// A consumer cut off from ZooKeeper past its session timeout loses its
/// session: the other takes everything, and once the cut heals the first
/// reports `lost`, registers again and the two split the partitions.
#[test]
fn session_expiry_drops_ownership_and_rejoins() {
    let mut w = World::setup(BugSet::none(), 5);
    let mut seen = Seen::default();
    w.add_consumer(A);
    w.add_consumer(B);
    drive(&mut w, &mut seen, 2_000, |_| {});
    assert!(split(&w), "A {:?} B {:?}", owned(&w, A), owned(&w, B));
    let gen_a = w.consumer(A).unwrap().generation();
    for z in ZK {
        w.block(A, z, true);
    }
    drive(&mut w, &mut seen, 2_000, |_| {});
    assert_eq!(owned(&w, B).len(), 4, "B {:?}", owned(&w, B));
    for z in ZK {
        w.block(A, z, false);
    }
    // As in 0.8, A fetches as a zombie until it hears that its session
    // expired; after that, owners agree with ZooKeeper.
    let mut zombie = true;
    drive(&mut w, &mut seen, 2_000, |w| {
        zombie &= w.consumer(A).unwrap().generation() == gen_a;
        if !zombie {
            owners_agree(w).unwrap();
        }
    });
    assert_eq!(seen.lost.get(&A), Some(&1), "{:?}", seen.lost);
    assert!(split(&w), "A {:?} B {:?}", owned(&w, A), owned(&w, B));
    assert!(w.consumer(A).unwrap().generation() > gen_a);
    // Nothing was lost: every record was read at least once.
    for p in 0..PARTS {
        for off in 0..5 {
            assert!(seen.read.contains_key(&(p, off)), "({p}, {off}) not read");
        }
    }
}

/// A crashed consumer's partitions move to the other once its session
/// expires, from the offsets it committed.
#[test]
fn crashed_member_partitions_move_after_expiry() {
    let mut w = World::setup(BugSet::none(), 3);
    let mut seen = Seen::default();
    w.add_consumer(A);
    w.add_consumer(B);
    drive(&mut w, &mut seen, 2_000, |_| {});
    assert!(split(&w));
    let r = w.call(B, ClientRequest::Group(GroupRequest::Commit));
    assert!(
        matches!(r, ClientReply::Group(GroupReply::Committed { ref commit, .. }) if commit.outcome == CommitOutcome::Ok),
        "{r:?}"
    );
    let b_parts = owned(&w, B);
    w.crash(B);
    seen.assigned.clear();
    drive(&mut w, &mut seen, 2_000, |w| owners_agree(w).unwrap());
    assert_eq!(owned(&w, A).len(), 4);
    let moved: Vec<&AssignedPartition> = seen.assigned[&A]
        .iter()
        .filter(|a| b_parts.contains(&a.tp.partition))
        .collect();
    assert_eq!(moved.len(), 2);
    for a in moved {
        assert_eq!((a.committed, a.start), (Some(3), 3), "{a:?}");
    }
}

/// The same run twice gives the same replies (consumer ids included).
#[test]
fn deterministic() {
    let run = || {
        let mut w = World::setup(BugSet::none(), 2);
        let mut seen = Seen::default();
        w.add_consumer(A);
        w.add_consumer(B);
        drive(&mut w, &mut seen, 1_000, |_| {});
        w.log
    };
    assert_eq!(run(), run());
}

/// Seeded runs with random pauses, cuts from ZooKeeper and crashes of
/// the two consumers: a consumer whose session is alive only owns
/// partitions whose owner znode names it; after healing the two split the
/// partitions and every record was read.
#[test]
fn random_faults_keep_owners_consistent() {
    for seed in std::env::var("ZKC_SEED").ok().map_or(1..=12u64, |s| {
        let s: u64 = s.parse().unwrap();
        s..=s
    }) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut w = World::setup_seeded(BugSet::none(), 4, seed);
        let mut seen = Seen::default();
        w.add_consumer(A);
        w.add_consumer(B);
        let mut cut: BTreeMap<NodeId, u64> = BTreeMap::new();
        for _ in 0..20 {
            let c = if rng.gen_bool(0.5) { A } else { B };
            match rng.gen_range(0..6) {
                0 => w.pause(c, rng.gen_range(50..900)),
                1 if !cut.contains_key(&c) => {
                    for z in ZK {
                        w.block(c, z, true);
                    }
                    cut.insert(c, w.now / 1000 + rng.gen_range(100..1500));
                }
                2 => {
                    w.crash(c);
                    w.add_consumer(c);
                }
                _ => {}
            }
            let gap = rng.gen_range(100..400);
            for _ in 0..gap / 10 {
                drive(&mut w, &mut seen, 10, |w| {
                    if let Err(e) = owners_agree_live(w, true) {
                        panic!("seed {seed}: {e}");
                    }
                });
                let now = w.now / 1000;
                let healed: Vec<NodeId> = cut
                    .iter()
                    .filter(|(_, &t)| t <= now)
                    .map(|(&c, _)| c)
                    .collect();
                for c in healed {
                    cut.remove(&c);
                    for z in ZK {
                        w.block(c, z, false);
                    }
                }
            }
        }
        for (c, _) in std::mem::take(&mut cut) {
            for z in ZK {
                w.block(c, z, false);
            }
        }
        drive(&mut w, &mut seen, 3_000, |w| {
            if let Err(e) = owners_agree_live(w, true) {
                panic!("seed {seed}: {e}");
            }
        });
        assert!(
            split(&w),
            "seed {seed}: A {:?} {} B {:?} {}",
            owned(&w, A),
            w.consumer(A).unwrap().role(),
            owned(&w, B),
            w.consumer(B).unwrap().role()
        );
        for p in 0..PARTS {
            for off in 0..4 {
                assert!(
                    seen.read.contains_key(&(p, off)),
                    "seed {seed}: ({p}, {off}) not read"
                );
            }
        }
    }
}

/// With `auto_commit`, a poll first commits what earlier polls returned
/// (reported in its events), and skips the commit when nothing moved.
#[test]
fn auto_commit_commits_processed_positions() {
    let mut w = World::setup(BugSet::none(), 5);
    let mut seen = Seen::default();
    let cfg = ZkConsumerConfig {
        auto_commit: true,
        ..ZkConsumerConfig::default()
    };
    w.add_consumer_with(A, cfg);
    assert!(w.run_until(2_000, |w| owned(w, A).len() == 4));
    drive(&mut w, &mut seen, 300, |_| {});
    assert_eq!(seen.read.len(), 20);
    let last = seen.commits.last().expect("auto-commits").clone();
    assert_eq!(last.outcome, CommitOutcome::Ok);
    let want: Vec<(Tp, u64)> = (0..PARTS).map(|p| (Tp::new("t", p), 5)).collect();
    assert_eq!(last.offsets, want);
    assert_eq!(seen.commits.iter().filter(|c| c.offsets == want).count(), 1);
    for p in 0..PARTS {
        let path = format!("/consumers/g/offsets/t/{p}");
        assert_eq!(w.zk_data(&path), Some(b"5".to_vec()));
    }
}
