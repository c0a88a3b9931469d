//! Sessions as ZooKeeper has them: how in-flight requests end when a
//! session's connection ends, a session that moved to another server
//! (SESSIONMOVED), the kinds of watches a client restores, and timeouts on
//! a monotonic clock.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::bugs::BugSet;
use crate::msg::{ClientReply, ClientRequest, Msg};
use crate::node::{Ctx, Effect, Input, Node, NodeId, ReqId};
use crate::time::SimTime;
use crate::zk::testkit::{call_ok, create, set, World};
use crate::zk::txn::Txn;
use crate::zk::wire::ZkMsg;
use crate::zk::{CreateMode, WatchKind, ZkClient, ZkError, ZkOp, ZkReply, ZkRequest, ZkResponse};

/// A client driven by hand, its effects kept.
struct HandClient {
    c: ZkClient,
    rng: ChaCha8Rng,
    sent: Vec<(NodeId, ZkMsg)>,
    replies: Vec<(ReqId, ZkReply)>,
}

impl HandClient {
    fn new() -> HandClient {
        HandClient {
            c: ZkClient::new(vec![1, 2, 3], 3_000, 0),
            rng: ChaCha8Rng::seed_from_u64(1),
            sent: Vec::new(),
            replies: Vec::new(),
        }
    }

    fn step(&mut self, input: Input) {
        let mut effects = Vec::new();
        let mut cx = Ctx::new(SimTime::ZERO, 101, &mut self.rng, &mut effects);
        self.c.step(input, &mut cx);
        for e in effects {
            match e {
                Effect::Send {
                    to,
                    msg: Msg::Zk(m),
                } => self.sent.push((to, m)),
                Effect::Reply {
                    id,
                    reply: ClientReply::Zk(r),
                } => self.replies.push((id, r)),
                _ => {}
            }
        }
    }

    fn request(&mut self, id: ReqId, op: ZkOp) {
        self.step(Input::Client {
            id,
            req: ClientRequest::Zk(ZkRequest::Op(op)),
        });
    }

    fn receive(&mut self, from: NodeId, m: ZkMsg) {
        self.step(Input::Message {
            from,
            msg: Msg::Zk(m),
        });
    }

    fn result_of(&self, id: ReqId) -> Result<(), ZkError> {
        let r = self.replies.iter().find(|(i, _)| *i == id).expect("reply");
        r.1.result.clone().map(|_| ())
    }
}

fn set_op(path: &str) -> ZkOp {
    ZkOp::SetData {
        path: path.into(),
        data: b"x".to_vec(),
        version: -1,
    }
}

/// A session ended by the server while requests of it are in flight: those
/// requests end with CONNECTIONLOSS (they may have run before the session
/// ended), and only a request made after the client learned of the expiry
/// gets SESSIONEXPIRED.
#[test]
fn in_flight_requests_end_with_connection_loss_when_the_session_ends() {
    let mut h = HandClient::new();
    h.request(1, set_op("/a"));
    let server = h.sent[0].0;
    h.receive(
        server,
        ZkMsg::Connected {
            session: 0x100,
            timeout_ms: 3_000,
        },
    );
    h.request(2, set_op("/b"));
    assert_eq!(h.sent.len(), 3, "connect and two requests: {:?}", h.sent);
    // The server closed (or expired) the session and ends the connection.
    h.receive(server, ZkMsg::ConnectRefused { expired: true });
    assert_eq!(h.result_of(1), Err(ZkError::ConnectionLoss));
    assert_eq!(h.result_of(2), Err(ZkError::ConnectionLoss));
    // The next request learns that the session is gone.
    h.request(3, set_op("/c"));
    assert_eq!(h.result_of(3), Err(ZkError::SessionExpired));
    assert_eq!(h.c.session(), 0);
}

/// A session the server refuses on reconnect: the requests made while
/// reconnecting were never sent and fail with SESSIONEXPIRED.
#[test]
fn requests_queued_for_a_refused_session_fail_with_session_expired() {
    let mut h = HandClient::new();
    h.request(1, set_op("/a"));
    let server = h.sent[0].0;
    h.receive(
        server,
        ZkMsg::Connected {
            session: 0x100,
            timeout_ms: 3_000,
        },
    );
    h.request(2, set_op("/b"));
    h.step(Input::ConnLost { peer: server });
    assert_eq!(h.result_of(1), Err(ZkError::ConnectionLoss));
    assert_eq!(h.result_of(2), Err(ZkError::ConnectionLoss));
    // Reconnecting (the retry timer) with the session; a request waits.
    h.step(Input::Timer { timer: 3 });
    let (next, m) = h.sent.last().cloned().expect("connect");
    assert!(matches!(m, ZkMsg::Connect { session: 0x100, .. }), "{m:?}");
    h.request(3, set_op("/c"));
    h.receive(next, ZkMsg::ConnectRefused { expired: true });
    assert_eq!(h.result_of(3), Err(ZkError::SessionExpired));
    // It was reported: the next request opens a new session.
    h.request(4, set_op("/d"));
    assert!(h.replies.iter().all(|(i, _)| *i != 4));
    assert!(matches!(
        h.sent.last(),
        Some((_, ZkMsg::Connect { session: 0, .. }))
    ));
}

fn exists(path: &str) -> ZkRequest {
    ZkRequest::Op(ZkOp::Exists {
        path: path.into(),
        watch: true,
    })
}

/// Moves client `c` off the server it is connected to (crashing that
/// server, waiting out a new election if it led) and collects, with a sync
/// on the new server, the watch events that arrive on reconnecting.
fn move_client(w: &mut World, c: NodeId, server: NodeId) -> Vec<(WatchKind, String)> {
    let leader = w.leader();
    w.crash(server);
    if leader == Some(server) {
        w.await_leader(10_000);
    }
    let r = call_ok(w, c, ZkRequest::Op(ZkOp::Sync { path: "/".into() }));
    assert_ne!(r.server, server);
    w.restart(server);
    r.events.iter().map(|e| (e.kind, e.path.clone())).collect()
}

/// `exists` with a watch on a znode that exists sets a data watch: it fires
/// NodeDataChanged, and a reconnect restores it as a data watch (no
/// NodeCreated for a znode that is there); on a missing znode it is an
/// exists watch that fires NodeCreated, restored as such.
#[test]
fn exists_watches_keep_their_kind_across_a_reconnect() {
    let mut w = World::new(3, 2, 1500, BugSet::none());
    w.await_leader(5000);
    call_ok(&mut w, 101, create("/e", b"", CreateMode::Persistent));
    let r = call_ok(&mut w, 102, exists("/e"));
    assert!(matches!(r.result, Ok(ZkResponse::Exists(Some(_)))));
    let r2 = call_ok(&mut w, 102, exists("/missing"));
    assert_eq!(r2.result, Ok(ZkResponse::Exists(None)));
    let events = move_client(&mut w, 102, r.server);
    assert!(
        events.is_empty(),
        "spurious events on reconnect: {events:?}"
    );
    call_ok(&mut w, 101, set("/e", b"new", -1));
    call_ok(&mut w, 101, create("/missing", b"", CreateMode::Persistent));
    let r = call_ok(&mut w, 102, ZkRequest::Op(ZkOp::Sync { path: "/".into() }));
    let kinds: Vec<(WatchKind, String)> =
        r.events.iter().map(|e| (e.kind, e.path.clone())).collect();
    assert_eq!(
        kinds,
        vec![
            (WatchKind::NodeDataChanged, "/e".to_string()),
            (WatchKind::NodeCreated, "/missing".to_string()),
        ]
    );
}

/// A data watch set by `exists` on a server: deleting the znode fires
/// NodeDeleted; creating a znode watched while missing fires NodeCreated.
#[test]
fn exists_watch_kinds_on_one_server() {
    let mut w = World::new(3, 2, 1500, BugSet::none());
    w.await_leader(5000);
    call_ok(&mut w, 101, create("/d", b"", CreateMode::Persistent));
    call_ok(&mut w, 102, exists("/d"));
    call_ok(&mut w, 101, delete("/d"));
    let r = call_ok(&mut w, 102, ZkRequest::Op(ZkOp::Sync { path: "/".into() }));
    let kinds: Vec<WatchKind> = r.events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![WatchKind::NodeDeleted]);
}

fn delete(path: &str) -> ZkRequest {
    ZkRequest::Op(ZkOp::Delete {
        path: path.into(),
        version: -1,
    })
}

/// A session that moves to another server: the leader records the new
/// server as the session's owner on the reconnect's revalidation, and a
/// write still on its way through the old server is not applied: it
/// becomes an error txn SESSIONMOVED (the client, which left that
/// connection, had it end with CONNECTIONLOSS).
#[test]
fn a_write_through_the_server_a_session_left_is_refused_as_session_moved() {
    let mut w = World::new(3, 1, 1500, BugSet::none());
    let leader = w.await_leader(5000);
    let r = call_ok(&mut w, 101, create("/x", b"0", CreateMode::Persistent));
    let old = r.server;
    assert_ne!(old, leader, "the client starts on a follower");
    let session = r.session;
    // The old server's way to the leader is slow (not slow enough for the
    // leader to drop it).
    w.link_us.insert((old, leader), 150_000);
    let id = w.submit(101, set("/x", b"moved", -1));
    w.run_ms(5);
    // The client loses its connection to the old server and moves on.
    w.block(101, old, true);
    let r = call_ok(&mut w, 101, ZkRequest::Op(ZkOp::Sync { path: "/".into() }));
    assert_eq!(r.session, session);
    assert_ne!(r.server, old);
    assert_eq!(w.replies[&id].result, Err(ZkError::ConnectionLoss));
    w.run_ms(400);
    for s in w.servers.values() {
        assert_eq!(s.tree().get("/x").expect("/x").data, b"0".to_vec());
    }
    let refused = w.servers[&leader]
        .log
        .entries
        .iter()
        .any(|e| e.hdr.session == session && e.txn == Txn::Error(ZkError::SessionMoved));
    assert!(refused, "no SESSIONMOVED txn in the leader's log");
    // The session goes on through its new server.
    let r = call_ok(&mut w, 101, set("/x", b"new", -1));
    assert!(r.result.is_ok(), "{:?}", r.result);
}

/// The client on a SESSIONMOVED answer: that request failed definitely,
/// the connection is stale (the server closes it), so the requests behind
/// it end with CONNECTIONLOSS, and the session is kept.
#[test]
fn the_client_closes_a_connection_answered_session_moved() {
    let mut h = HandClient::new();
    h.request(1, set_op("/a"));
    let server = h.sent[0].0;
    h.receive(
        server,
        ZkMsg::Connected {
            session: 0x100,
            timeout_ms: 3_000,
        },
    );
    h.request(2, set_op("/b"));
    let xid = h
        .sent
        .iter()
        .find_map(|(_, m)| match m {
            ZkMsg::ClientReq { xid, .. } => Some(*xid),
            _ => None,
        })
        .expect("sent");
    h.receive(
        server,
        ZkMsg::ClientResp {
            xid,
            zxid: 0x1_0000_0005,
            result: Err(ZkError::SessionMoved),
        },
    );
    assert_eq!(h.result_of(1), Err(ZkError::SessionMoved));
    assert_eq!(h.result_of(2), Err(ZkError::ConnectionLoss));
    assert_eq!(h.c.session(), 0x100);
}
