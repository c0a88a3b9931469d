//! Ensemble tests on the in-crate test world: election, commits on every
//! server, leader crash and re-election, whole-ensemble power loss, session
//! expiry, watches, moving sessions, multi and sync, log corruption.

use crate::bugs::BugSet;
use crate::node::Node;
use crate::node::NodeId;
use crate::zk::testkit::{assert_converged, call_ok, create, data_of, get, set, World};
use crate::zk::ZkRequest;
use crate::zk::{CreateMode, WatchKind, ZkError, ZkOp, ZkResponse};

#[test]
fn three_servers_elect_a_leader_and_commit_everywhere() {
    let mut w = World::new(3, 2, 1000, BugSet::none());
    let l = w.await_leader(5000);
    assert!(
        w.servers.values().filter(|s| s.is_leader()).count() == 1,
        "{l}"
    );
    let r = call_ok(&mut w, 101, create("/a", b"0", CreateMode::Persistent));
    assert_eq!(r.result, Ok(ZkResponse::Created("/a".into())));
    for i in 1..=20u8 {
        let r = call_ok(&mut w, 102, set("/a", &[i], i as i32 - 1));
        assert!(matches!(r.result, Ok(ZkResponse::Stat(s)) if s.version == i as i32));
    }
    assert_eq!(
        call_ok(&mut w, 101, set("/a", b"x", 3)).result,
        Err(ZkError::BadVersion)
    );
    w.run_ms(500);
    assert_converged(&w);
    for s in w.servers.values() {
        assert_eq!(s.tree().get("/a").unwrap().data, vec![20]);
    }
}

#[test]
fn leader_crash_reelects_without_losing_committed_txns() {
    let mut w = World::new(3, 1, 1000, BugSet::none());
    let l1 = w.await_leader(5000);
    let mut acked = Vec::new();
    for i in 0..30 {
        let p = format!("/n{i}");
        call_ok(&mut w, 101, create(&p, b"", CreateMode::Persistent));
        acked.push(p);
    }
    w.crash(l1);
    let l2 = w.await_leader(10_000);
    assert_ne!(l1, l2);
    for i in 30..40 {
        let p = format!("/n{i}");
        let r = call_ok(&mut w, 101, create(&p, b"", CreateMode::Persistent));
        if r.result.is_ok() {
            acked.push(p);
        }
    }
    w.restart(l1);
    w.run_ms(3000);
    assert_converged(&w);
    assert_eq!(w.servers.len(), 3);
    for s in w.servers.values() {
        for p in &acked {
            assert!(s.tree().get(p).is_some(), "{p} missing on {}", s.role());
        }
    }
}

#[test]
fn five_servers_tolerate_two_crashes_and_a_whole_power_loss() {
    let mut w = World::new(5, 1, 1000, BugSet::none());
    let l = w.await_leader(5000);
    for i in 0..10 {
        call_ok(
            &mut w,
            101,
            create(&format!("/p{i}"), b"", CreateMode::Persistent),
        );
    }
    let others: Vec<NodeId> = (1..=5).filter(|&x| x != l).take(2).collect();
    for &o in &others {
        w.crash(o);
    }
    w.run_ms(200);
    for i in 10..20 {
        call_ok(
            &mut w,
            101,
            create(&format!("/p{i}"), b"", CreateMode::Persistent),
        );
    }
    // Whole-ensemble power loss: everything unsynced is gone.
    for id in 1..=5 {
        if !others.contains(&id) {
            w.crash(id);
        }
    }
    for id in 1..=5 {
        w.restart(id);
    }
    w.await_leader(10_000);
    w.run_ms(2000);
    assert_converged(&w);
    for s in w.servers.values() {
        for i in 0..20 {
            assert!(s.tree().get(&format!("/p{i}")).is_some());
        }
    }
}

#[test]
fn session_expiry_deletes_ephemerals_on_every_server() {
    let mut w = World::new(3, 2, 600, BugSet::none());
    w.await_leader(5000);
    let r = call_ok(&mut w, 101, create("/eph", b"", CreateMode::Ephemeral));
    assert!(r.result.is_ok());
    let s = r.session;
    call_ok(&mut w, 101, create("/q", b"", CreateMode::Persistent));
    let r = call_ok(
        &mut w,
        101,
        create("/q/lock-", b"", CreateMode::EphemeralSequential),
    );
    assert_eq!(
        r.result,
        Ok(ZkResponse::Created("/q/lock-0000000000".into()))
    );
    w.run_ms(2000);
    // Still alive: the client pings.
    for sv in w.servers.values() {
        assert!(sv.tree().get("/eph").is_some());
    }
    // The client process stops; its session expires.
    w.crash(101);
    w.run_ms(3000);
    for sv in w.servers.values() {
        assert!(sv.tree().get("/eph").is_none(), "{}", sv.role());
        assert!(sv.tree().get("/q/lock-0000000000").is_none());
        assert!(!sv.tree().has_session(s));
    }
    assert_converged(&w);
    let r = call_ok(
        &mut w,
        102,
        create("/q/lock-", b"", CreateMode::EphemeralSequential),
    );
    assert_eq!(
        r.result,
        Ok(ZkResponse::Created("/q/lock-0000000002".into()))
    );
}

#[test]
fn watches_fire_before_the_reply_that_shows_the_change() {
    let mut w = World::new(3, 2, 1000, BugSet::none());
    w.await_leader(5000);
    call_ok(&mut w, 101, create("/w", b"old", CreateMode::Persistent));
    let r = call_ok(&mut w, 102, get("/w", true));
    assert_eq!(data_of(&r), b"old");
    let r = call_ok(
        &mut w,
        102,
        ZkRequest::Op(ZkOp::GetChildren {
            path: "/".into(),
            watch: true,
        }),
    );
    assert!(r.result.is_ok());
    call_ok(&mut w, 101, set("/w", b"new", -1));
    call_ok(&mut w, 101, create("/w2", b"", CreateMode::Persistent));
    // A sync makes sure 102's server has applied both writes.
    let synced = call_ok(&mut w, 102, ZkRequest::Op(ZkOp::Sync { path: "/w".into() }));
    // Both events arrived before the sync's reply (they ride on it).
    let kinds: Vec<(WatchKind, String)> = synced
        .events
        .iter()
        .map(|e| (e.kind, e.path.clone()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (WatchKind::NodeDataChanged, "/w".to_string()),
            (WatchKind::NodeChildrenChanged, "/".to_string()),
        ]
    );
    assert!(synced.events[0].zxid < synced.events[1].zxid);
    let r = call_ok(&mut w, 102, get("/w", false));
    assert_eq!(data_of(&r), b"new");
    // One-shot: a second change fires nothing.
    call_ok(&mut w, 101, set("/w", b"newer", -1));
    let r = call_ok(&mut w, 102, ZkRequest::Op(ZkOp::Sync { path: "/w".into() }));
    assert!(r.events.is_empty());
}

#[test]
fn client_moves_to_another_server_and_keeps_its_session() {
    let mut w = World::new(3, 1, 1500, BugSet::none());
    let l = w.await_leader(5000);
    let r = call_ok(&mut w, 101, create("/mine", b"", CreateMode::Ephemeral));
    let session = r.session;
    let server = r.server;
    assert!(server != 0);
    w.crash(server);
    if server == l {
        w.await_leader(10_000);
    }
    let r = call_ok(&mut w, 101, get("/mine", false));
    assert_eq!(r.session, session);
    assert_ne!(r.server, server);
    assert!(r.result.is_ok());
    w.restart(server);
    w.run_ms(2000);
    assert_converged(&w);
    assert!(w.servers.values().all(|s| s.tree().get("/mine").is_some()));
}

#[test]
fn multi_and_sync_through_the_leader() {
    let mut w = World::new(3, 2, 1000, BugSet::none());
    w.await_leader(5000);
    let r = call_ok(
        &mut w,
        101,
        ZkRequest::Op(ZkOp::Multi(vec![
            ZkOp::Create {
                path: "/m".into(),
                data: vec![],
                mode: CreateMode::Persistent,
            },
            ZkOp::Create {
                path: "/m/x".into(),
                data: vec![],
                mode: CreateMode::Persistent,
            },
        ])),
    );
    assert!(matches!(r.result, Ok(ZkResponse::Multi(_))));
    let r = call_ok(
        &mut w,
        101,
        ZkRequest::Op(ZkOp::Multi(vec![
            ZkOp::Delete {
                path: "/m/x".into(),
                version: -1,
            },
            ZkOp::Delete {
                path: "/nope".into(),
                version: -1,
            },
        ])),
    );
    assert_eq!(r.result, Err(ZkError::NoNode));
    let r = call_ok(&mut w, 102, ZkRequest::Op(ZkOp::Sync { path: "/".into() }));
    assert_eq!(r.result, Ok(ZkResponse::Synced));
    let r = call_ok(
        &mut w,
        102,
        ZkRequest::Op(ZkOp::GetChildren {
            path: "/m".into(),
            watch: false,
        }),
    );
    match r.result {
        Ok(ZkResponse::Children(names, stat)) => {
            assert_eq!(names, vec!["x".to_string()]);
            assert_eq!(stat.num_children, 1);
        }
        other => panic!("not a listing: {other:?}"),
    }
}

/// A corrupt record inside server 2's log (not a torn tail): 2 refuses to
/// start, as ZooKeeper does, instead of truncating committed history or
/// rebuilding from a snapshot; the other two go on serving.
#[test]
fn a_corrupt_log_record_halts_the_server() {
    let mut w = World::new(3, 1, 2000, BugSet::none());
    w.halts_expected = true;
    assert_eq!(w.await_leader(5000), 3);
    for i in 0..10 {
        let p = format!("/s{i}");
        call_ok(&mut w, 101, create(&p, b"", CreateMode::Persistent));
    }
    w.run_ms(200);
    w.crash(2);
    assert!(w.files(2).iter().any(|f| f == "txnlog"));
    // A byte of the third log record.
    w.corrupt(2, "txnlog", 60);
    w.restart(2);
    w.run_ms(500);
    assert_eq!(w.halts.len(), 1, "{:?}", w.halts);
    let (who, why) = &w.halts[0];
    assert_eq!(*who, 2);
    assert!(why.contains("fails its checksum"), "{why}");
    assert!(w.servers[&2].is_halted());
    assert!(w.servers[&2]
        .halt_reason()
        .is_some_and(|r| r.contains("not a torn tail")));
    let r = call_ok(&mut w, 101, create("/after", b"", CreateMode::Persistent));
    assert!(r.result.is_ok());
}

/// Server 1 lags (its link from the leader is slow). Client 103 writes via
/// the leader and is then cut off from it: server 1, behind the client's
/// last zxid, refuses it, and the client lands on server 2 and reads its
/// own write.
#[test]
fn a_server_behind_the_client_refuses_it() {
    let mut w = World::new(3, 3, 2000, BugSet::none());
    assert_eq!(w.await_leader(5000), 3);
    call_ok(&mut w, 103, create("/v", b"0", CreateMode::Persistent));
    w.run_ms(100);
    w.link_us.insert((3, 1), 300_000);
    w.run_ms(100);
    for i in 1..=5u8 {
        let r = call_ok(&mut w, 103, set("/v", &[i], -1));
        assert_eq!(r.server, 3);
    }
    w.block(103, 3, true);
    let r = call_ok(&mut w, 103, get("/v", false));
    assert_eq!(r.server, 2, "moved to the up-to-date follower");
    assert_eq!(data_of(&r), vec![5]);
}

/// Pipelined requests of one session (sync, write, read, write, close) are
/// all answered, in order, and the read sees the write before it.
#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut w = World::new(3, 2, 1000, BugSet::none());
    w.await_leader(5000);
    call_ok(&mut w, 101, create("/p", b"0", CreateMode::Persistent));
    call_ok(&mut w, 101, create("/e", b"", CreateMode::Ephemeral));
    let ids = [
        w.submit(101, ZkRequest::Op(ZkOp::Sync { path: "/".into() })),
        w.submit(101, set("/p", b"1", -1)),
        w.submit(101, get("/p", false)),
        w.submit(101, set("/p", b"2", 1)),
        w.submit(101, ZkRequest::Close),
    ];
    w.run_ms(1000);
    let replies: Vec<_> = ids.iter().map(|id| w.replies.remove(id).unwrap()).collect();
    assert_eq!(replies[0].result, Ok(ZkResponse::Synced));
    assert!(
        matches!(replies[1].result, Ok(ZkResponse::Stat(s)) if s.version == 1),
        "{replies:?}"
    );
    assert_eq!(data_of(&replies[2]), b"1");
    assert!(replies[3].result.is_ok());
    assert_eq!(replies[4].result, Ok(ZkResponse::Closed));
    let zxids: Vec<_> = replies.iter().map(|r| r.zxid).collect();
    assert!(zxids.windows(2).all(|p| p[0] <= p[1]), "{zxids:?}");
    w.run_ms(200);
    for s in w.servers.values() {
        assert!(s.tree().get("/e").is_none(), "closed session's ephemeral");
    }
    // The next request opens a new session.
    let r = call_ok(&mut w, 101, get("/p", false));
    assert_ne!(r.session, replies[0].session);
    assert_eq!(data_of(&r), b"2");
}

/// The same seed gives the same run: replies and trees are identical.
#[test]
fn runs_are_deterministic() {
    let run = || {
        let mut w = World::new(3, 2, 1000, BugSet::none());
        w.await_leader(5000);
        let mut out = Vec::new();
        for i in 0..10u8 {
            let c = if i % 2 == 0 { 101 } else { 102 };
            let r = call_ok(
                &mut w,
                c,
                create("/d-", &[i], CreateMode::PersistentSequential),
            );
            out.push(format!("{r:?}"));
        }
        w.crash(w.leader().unwrap());
        w.await_leader(10_000);
        out.push(format!("{:?}", w.digests()));
        out
    };
    assert_eq!(run(), run());
}

/// A failed fsync stops the server (fail-stop), as ZooKeeper does.
#[test]
fn a_disk_error_halts_the_server() {
    use crate::disk::DiskError;
    use crate::node::{Ctx, Effect, Input};
    use crate::time::SimTime;
    use crate::zk::{ZkConfig, ZkServer};
    use rand::SeedableRng;
    let mut s = ZkServer::new(1, vec![1, 2, 3], ZkConfig::default(), &BugSet::none());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut effects = Vec::new();
    let mut cx = Ctx::new(SimTime::ZERO, 1, &mut rng, &mut effects);
    s.step(
        Input::Start {
            files: Default::default(),
        },
        &mut cx,
    );
    let op = effects
        .iter()
        .find_map(|e| match e {
            Effect::Disk { op, .. } => Some(*op),
            _ => None,
        })
        .expect("a fresh server writes its base");
    effects.clear();
    let mut cx = Ctx::new(SimTime::ZERO, 1, &mut rng, &mut effects);
    s.step(
        Input::Disk {
            op,
            result: Err(DiskError::Io),
        },
        &mut cx,
    );
    assert!(effects.iter().any(|e| matches!(e, Effect::Halt { .. })));
    assert!(s.is_halted());
}

/// Regression: a session found expired on a reconnect between requests
/// (nothing outstanding to fail) was forgotten silently, and the next
/// request ran on a new session as if nothing had happened: the caller
/// never learnt that its ephemerals (a lock node) were gone.
#[test]
fn session_expired_between_requests_is_reported_to_the_next_one() {
    let mut w = World::new(3, 1, 600, BugSet::none());
    w.await_leader(5000);
    let r = call_ok(&mut w, 101, create("/eph", b"", CreateMode::Ephemeral));
    let s = r.session;
    w.isolate(101, true);
    w.run_ms(3000);
    assert!(w.servers.values().all(|sv| !sv.tree().has_session(s)));
    w.isolate(101, false);
    // The client's reconnect attempts learn that the session expired.
    w.run_ms(500);
    let r = w.call(101, get("/eph", false));
    assert_eq!(r.result, Err(ZkError::SessionExpired));
    let r = call_ok(&mut w, 101, get("/", false));
    assert!(r.result.is_ok());
    assert_ne!(r.session, s);
}
