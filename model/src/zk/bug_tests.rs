//! Fault runs (random crashes, restarts, isolations, power losses, torn
//! writes, dropped connections, message jitter) and the planted bugs: each
//! switch has a test showing the faithful protocol keeps its promise where
//! the bug breaks it.

use std::collections::{BTreeMap, BTreeSet};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::bugs::BugSet;
use crate::node::Node;
use crate::node::{NodeId, ReqId};
use crate::zk::testkit::{assert_converged, call_ok, create, get, set, World};
use crate::zk::ZkRequest;
use crate::zk::{CreateMode, ZkOp, ZkResponse};

/// One run of random crashes, restarts, isolations and power losses
/// while two clients write unique znodes; after healing, every server
/// must hold the same tree and every acknowledged create.
fn fault_run(seed: u64, bugs: BugSet) -> Result<usize, String> {
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: u32 = if seed.is_multiple_of(2) { 3 } else { 5 };
    let mut w = World::new(n, 3, 800, bugs);
    w.rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    w.jitter_us = 3_000;
    w.torn_writes = true;
    w.await_leader(5000);
    // Client 103 holds an ephemeral and dies at some point: its session
    // must expire everywhere.
    let doomed = call_ok(&mut w, 103, create("/doomed", b"", CreateMode::Ephemeral));
    let doomed_session = doomed.session;
    let death_round = rng.gen_range(0..20);
    // A register /r: 101 writes increasing values; 102 syncs then reads,
    // and must see at least every value acknowledged before its sync.
    call_ok(
        &mut w,
        101,
        create("/r", &0u64.to_le_bytes(), CreateMode::Persistent),
    );
    let mut reg_writes: BTreeMap<ReqId, u64> = BTreeMap::new();
    let mut sync_reads: BTreeMap<ReqId, u64> = BTreeMap::new();
    let mut reg_acked_max = 0u64;
    let mut reg_next = 0u64;
    let mut pending: BTreeMap<ReqId, String> = BTreeMap::new();
    let mut acked: Vec<String> = Vec::new();
    let mut down: BTreeSet<NodeId> = BTreeSet::new();
    let mut isolated: Option<NodeId> = None;
    let mut k = 0;
    for round in 0..20 {
        if round == death_round {
            w.crash(103);
        }
        if rng.gen_bool(0.3) {
            w.drop_random_conn();
        }
        reg_next += 1;
        let id = w.submit(101, set("/r", &reg_next.to_le_bytes(), -1));
        reg_writes.insert(id, reg_next);
        w.submit(102, ZkRequest::Op(ZkOp::Sync { path: "/r".into() }));
        let id = w.submit(102, get("/r", false));
        sync_reads.insert(id, reg_acked_max);
        for c in [101, 102] {
            for _ in 0..3 {
                k += 1;
                let p = format!("/k{k}");
                let id = w.submit(c, create(&p, b"", CreateMode::Persistent));
                pending.insert(id, p);
            }
        }
        w.run_ms(rng.gen_range(0..6));
        if let Some(i) = isolated.take() {
            w.isolate(i, false);
            w.isolate_from_servers(i, false);
        }
        match rng.gen_range(0..6) {
            0 | 1 if (down.len() as u32) < (n - 1) / 2 => {
                let v = w
                    .leader()
                    .filter(|_| rng.gen_bool(0.5))
                    .unwrap_or(rng.gen_range(1..=n));
                if down.insert(v) {
                    w.crash(v);
                }
            }
            2 => {
                if let Some(&v) = down.iter().next() {
                    down.remove(&v);
                    w.restart(v);
                }
            }
            3 if down.is_empty() => {
                let v = w.leader().unwrap_or(1);
                if rng.gen_bool(0.5) {
                    w.isolate(v, true);
                } else {
                    w.isolate_from_servers(v, true);
                }
                isolated = Some(v);
            }
            4 if rng.gen_bool(0.3) => {
                // Power loss of the whole ensemble.
                for id in 1..=n {
                    if !down.contains(&id) {
                        w.crash(id);
                    }
                }
                for id in 1..=n {
                    w.restart(id);
                }
                down.clear();
            }
            _ => {}
        }
        let dur = rng.gen_range(100..900);
        if std::env::var("ZK_TRACE").as_deref() == Ok("2") {
            for _ in 0..dur / 20 {
                w.run_ms(20);
                eprintln!("  t={} {:?}", w.now / 1000, w.roles());
            }
            w.run_ms(dur % 20);
        } else {
            w.run_ms(dur);
        }
        if std::env::var("ZK_TRACE").is_ok() {
            eprintln!(
                "round {round} t={}ms down={down:?} iso={isolated:?} acked={} {:?}",
                w.now / 1000,
                acked.len(),
                w.roles()
            );
        }
        let done: Vec<ReqId> = pending
            .keys()
            .copied()
            .filter(|id| w.replies.contains_key(id))
            .collect();
        for id in done {
            let p = pending.remove(&id).unwrap();
            let rep = w.replies.remove(&id).unwrap();
            if std::env::var("ZK_TRACE").is_ok() {
                eprintln!("   reply {p}: {:?} from {}", rep.result, rep.server);
            }
            if rep.result.is_ok() {
                acked.push(p);
            }
        }
        let done: Vec<ReqId> = reg_writes
            .keys()
            .copied()
            .filter(|id| w.replies.contains_key(id))
            .collect();
        for id in done {
            let v = reg_writes.remove(&id).unwrap();
            if w.replies.remove(&id).unwrap().result.is_ok() {
                reg_acked_max = reg_acked_max.max(v);
            }
        }
        let done: Vec<ReqId> = sync_reads
            .keys()
            .copied()
            .filter(|id| w.replies.contains_key(id))
            .collect();
        for id in done {
            let floor = sync_reads.remove(&id).unwrap();
            if let Ok(ZkResponse::Data(d, _)) = w.replies.remove(&id).unwrap().result {
                let v = u64::from_le_bytes(d[..8].try_into().unwrap());
                if v < floor {
                    return Err(format!("seed {seed}: sync+read saw {v} < acked {floor}"));
                }
            }
        }
    }
    if let Some(i) = isolated.take() {
        w.isolate(i, false);
        w.isolate_from_servers(i, false);
    }
    for v in std::mem::take(&mut down) {
        w.restart(v);
    }
    w.run_ms(8000);
    if w.leader().is_none() {
        return Err(format!("seed {seed}: no leader: {:?}", w.roles()));
    }
    let d = w.digests();
    let first = *d.values().next().unwrap();
    if !d.values().all(|x| *x == first) {
        return Err(format!("seed {seed}: trees differ: {:?}", w.roles()));
    }
    for s in w.servers.values() {
        if s.tree().get("/doomed").is_some() || s.tree().has_session(doomed_session) {
            return Err(format!(
                "seed {seed}: dead session survives on {}",
                s.role()
            ));
        }
        for p in &acked {
            if s.tree().get(p).is_none() {
                return Err(format!("seed {seed}: acked {p} missing on {}", s.role()));
            }
        }
    }
    Ok(acked.len())
}

#[test]
#[ignore]
fn trace_one_seed() {
    let seed: u64 = std::env::var("ZK_SEED").unwrap().parse().unwrap();
    eprintln!("{:?}", fault_run(seed, BugSet::none()));
}

#[test]
#[ignore]
fn fault_stats() {
    let mut v: Vec<(usize, u64)> = (0..500u64)
        .map(|s| (fault_run(s, BugSet::none()).unwrap(), s))
        .collect();
    v.sort();
    let mean = v.iter().map(|x| x.0).sum::<usize>() / v.len();
    eprintln!("min {:?} mean {mean} max {:?}", &v[..5], v.last());
}

#[test]
fn random_faults_keep_acked_writes_and_converge() {
    for seed in 0..60u64 {
        let acked = fault_run(seed, BugSet::none()).unwrap();
        assert!(acked > 10, "seed {seed}: only {acked} acked");
    }
}

/// The durability bugs are caught by the same runs.
#[test]
fn planted_durability_bugs_are_caught() {
    let bug = "zk_commit_without_quorum";
    let mut b = BugSet::none();
    b.enable(bug);
    let found = (0..60u64).find(|&s| fault_run(s, b.clone()).is_err());
    assert!(found.is_some(), "{bug} not found in 60 seeds");
}

/// 2 leads epoch 1 with followers 1 and 3; 3 crashes, `/x` commits on
/// {1, 2}; then 2 crashes and 3 returns. The faithful election picks 1
/// (same epoch, higher zxid); with `zk_vote_ignores_zxid` 3 wins on its
/// id and truncates `/x` away.
fn stale_server_returns(bugs: BugSet) -> bool {
    let mut w = World::new(3, 1, 1000, bugs);
    w.crash(3);
    assert_eq!(w.await_leader(5000), 2);
    w.restart(3);
    w.run_ms(1000);
    call_ok(&mut w, 101, create("/a", b"", CreateMode::Persistent));
    w.run_ms(100);
    w.crash(3);
    let r = call_ok(&mut w, 101, create("/x", b"", CreateMode::Persistent));
    assert!(r.result.is_ok());
    w.crash(2);
    w.restart(3);
    w.run_ms(3000);
    w.restart(2);
    w.run_ms(3000);
    assert_converged(&w);
    w.servers.values().all(|s| s.tree().get("/x").is_some())
}

#[test]
fn vote_ordering_keeps_committed_txns_and_the_bug_loses_them() {
    assert!(stale_server_returns(BugSet::none()));
    let mut b = BugSet::none();
    b.enable("zk_vote_ignores_zxid");
    assert!(!stale_server_returns(b));
}

/// Writes `/x` (followers have slow disks) and cuts the power of the whole
/// ensemble the moment the client has its answer; the old leader stays
/// down. Faithful: a quorum
/// fsynced `/x` before it was acknowledged, so a follower still has it.
/// With `zk_ack_before_fsync` the followers acked from the page cache.
fn power_loss_right_after_ack(bugs: BugSet) -> bool {
    let mut w = World::new(3, 1, 1000, bugs);
    let l = w.await_leader(5000);
    // Followers' disks are slow.
    for id in (1..=3).filter(|&i| i != l) {
        w.disk_us_of.insert(id, 20_000);
    }
    call_ok(&mut w, 101, create("/a", b"", CreateMode::Persistent));
    w.run_ms(50);
    // Make sure the client talks to the leader.
    let r = call_ok(&mut w, 101, get("/a", false));
    if r.server != l {
        w.crash(r.server);
        w.restart(r.server);
        w.run_ms(500);
        call_ok(&mut w, 101, get("/a", false));
    }
    let r = call_ok(&mut w, 101, create("/x", b"", CreateMode::Persistent));
    assert!(r.result.is_ok());
    for id in 1..=3 {
        w.crash(id);
    }
    for id in (1..=3).filter(|&i| i != l) {
        w.restart(id);
    }
    w.await_leader(10_000);
    w.run_ms(500);
    w.servers.values().all(|s| s.tree().get("/x").is_some())
}

#[test]
fn acks_wait_for_fsync_and_the_bug_loses_a_write_on_power_loss() {
    assert!(power_loss_right_after_ack(BugSet::none()));
    let mut b = BugSet::none();
    b.enable("zk_ack_before_fsync");
    assert!(!power_loss_right_after_ack(b));
}

/// A client on one server keeps its session alive; the leader never
/// expires it. With `zk_expiry_on_follower` a follower the client does not
/// talk to expires it locally and its ephemeral vanishes there only.
fn ephemeral_everywhere_after_a_while(bugs: BugSet) -> bool {
    let mut w = World::new(3, 1, 600, bugs);
    w.await_leader(5000);
    call_ok(&mut w, 101, create("/e", b"", CreateMode::Ephemeral));
    w.run_ms(3000);
    w.servers.values().all(|s| s.tree().get("/e").is_some())
}

#[test]
fn sessions_expire_only_through_the_leader_and_the_bug_diverges() {
    assert!(ephemeral_everywhere_after_a_while(BugSet::none()));
    let mut b = BugSet::none();
    b.enable("zk_expiry_on_follower");
    assert!(!ephemeral_everywhere_after_a_while(b));
}

/// 3 misses `/a` and `/d` while down, is synced by DIFF, logs `/p`, then the
/// whole ensemble loses power. Faithful: 3 persisted the DIFF before its
/// NEWLEADER ack, so every server keeps `/d`. With
/// `zk_newleader_ack_before_persist` 3's log has a hole; it wins the tie on
/// its id and leads without `/d`.
fn power_loss_after_diff_sync(bugs: BugSet) -> bool {
    let mut w = World::new(3, 1, 1000, bugs);
    w.crash(3);
    assert_eq!(w.await_leader(5000), 2);
    call_ok(&mut w, 101, create("/a", b"", CreateMode::Persistent));
    call_ok(&mut w, 101, create("/d", b"", CreateMode::Persistent));
    w.restart(3);
    w.run_ms(1000);
    call_ok(&mut w, 101, create("/p", b"", CreateMode::Persistent));
    w.run_ms(100);
    for id in 1..=3 {
        w.crash(id);
    }
    for id in 1..=3 {
        w.restart(id);
    }
    w.await_leader(10_000);
    w.run_ms(1000);
    let d = w.digests();
    let first = *d.values().next().unwrap();
    d.values().all(|x| *x == first) && w.servers.values().all(|s| s.tree().get("/d").is_some())
}

#[test]
fn newleader_ack_waits_for_the_synced_history_and_the_bug_loses_it() {
    assert!(power_loss_after_diff_sync(BugSet::none()));
    let mut b = BugSet::none();
    b.enable("zk_newleader_ack_before_persist");
    assert!(!power_loss_after_diff_sync(b));
}

/// The leader's link to follower 1 is slow. Client 102 (on server 2) writes
/// `/s`; then client 101 (on server 1) syncs and reads it. Faithful: the
/// sync completes after the leader's COMMIT of `/s` reached server 1. With
/// `zk_sync_not_through_leader` the read after sync is stale.
fn sync_then_read_on_a_slow_follower(bugs: BugSet) -> bool {
    let mut w = World::new(3, 2, 2000, bugs);
    assert_eq!(w.await_leader(5000), 3);
    call_ok(&mut w, 101, get("/", false));
    call_ok(&mut w, 102, get("/", false));
    w.link_us.insert((3, 1), 50_000);
    w.run_ms(200);
    let r = call_ok(&mut w, 102, create("/s", b"v", CreateMode::Persistent));
    assert_eq!(r.server, 2);
    let r = call_ok(&mut w, 101, ZkRequest::Op(ZkOp::Sync { path: "/s".into() }));
    assert_eq!(r.server, 1);
    call_ok(&mut w, 101, get("/s", false)).result.is_ok()
}

#[test]
fn sync_goes_through_the_leader_and_the_bug_reads_stale() {
    assert!(sync_then_read_on_a_slow_follower(BugSet::none()));
    let mut b = BugSet::none();
    b.enable("zk_sync_not_through_leader");
    assert!(!sync_then_read_on_a_slow_follower(b));
}

/// Epoch 2 is established by {1, 2}; 1 crashes before any epoch-2 txn, 2
/// logs `/x` alone and crashes; 1 and 3 come back and elect 3, which
/// commits `/y`; then 2 returns. Faithful: 1 remembers it accepted epoch 2,
/// so 3 leads epoch 3 and 2's uncommitted `/x` is truncated. With
/// `zk_epoch_not_persisted` 1 forgets, epoch 2 is used twice, `/x` and `/y`
/// share a zxid and 2 keeps `/x`: the trees diverge.
fn epoch_reused_after_restart(bugs: BugSet) -> bool {
    let mut w = World::new(3, 2, 2000, bugs);
    assert_eq!(w.await_leader(5000), 3);
    call_ok(&mut w, 101, create("/a", b"", CreateMode::Persistent));
    call_ok(&mut w, 102, get("/a", false));
    w.crash(3);
    assert_eq!(w.await_leader(10_000), 2);
    // A client connected to 2.
    let mut on2 = None;
    for _ in 0..10 {
        for c in [101, 102] {
            if on2.is_none() && call_ok(&mut w, c, get("/a", false)).server == 2 {
                on2 = Some(c);
            }
        }
    }
    let on2 = on2.expect("a client on server 2");
    let other = if on2 == 101 { 102 } else { 101 };
    w.crash(1);
    w.submit(on2, create("/x", b"", CreateMode::Persistent));
    w.run_ms(30);
    w.crash(2);
    w.restart(1);
    w.restart(3);
    w.await_leader(10_000);
    let r = call_ok(&mut w, other, create("/y", b"", CreateMode::Persistent));
    assert!(r.result.is_ok());
    w.restart(2);
    w.run_ms(3000);
    let d = w.digests();
    let first = *d.values().next().unwrap();
    d.values().all(|x| *x == first) && w.servers.values().all(|s| s.tree().get("/x").is_none())
}

#[test]
fn epochs_are_persisted_and_the_bug_reuses_an_epoch() {
    assert!(epoch_reused_after_restart(BugSet::none()));
    let mut b = BugSet::none();
    b.enable("zk_epoch_not_persisted");
    assert!(!epoch_reused_after_restart(b));
}

#[test]
#[ignore]
fn bug_hunt() {
    let bug = std::env::var("ZK_BUG").unwrap();
    let mut b = BugSet::none();
    b.enable(&bug);
    let found: Vec<u64> = (0..300u64)
        .filter(|&s| fault_run(s, b.clone()).is_err())
        .collect();
    eprintln!(
        "{bug}: {} of 300 seeds fail, first {:?}",
        found.len(),
        found.first()
    );
}
