//! Sessions as ZooKeeper has them: how in-flight requests end when a
//! session's connection ends, a session that moved to another server
//! (SESSIONMOVED), the kinds of watches a client restores, and timeouts on
//! a monotonic clock.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::msg::{ClientReply, ClientRequest, Msg};
use crate::node::{Ctx, Effect, Input, Node, NodeId, ReqId};
use crate::time::SimTime;
use crate::zk::wire::ZkMsg;
use crate::zk::{ZkClient, ZkError, ZkOp, ZkReply, ZkRequest};

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

    fn from_server(&mut self, from: NodeId, m: ZkMsg) {
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

fn set(path: &str) -> ZkOp {
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
    h.request(1, set("/a"));
    let server = h.sent[0].0;
    h.from_server(
        server,
        ZkMsg::Connected {
            session: 0x100,
            timeout_ms: 3_000,
        },
    );
    h.request(2, set("/b"));
    assert_eq!(h.sent.len(), 3, "connect and two requests: {:?}", h.sent);
    // The server closed (or expired) the session and ends the connection.
    h.from_server(server, ZkMsg::ConnectRefused { expired: true });
    assert_eq!(h.result_of(1), Err(ZkError::ConnectionLoss));
    assert_eq!(h.result_of(2), Err(ZkError::ConnectionLoss));
    // The next request learns that the session is gone.
    h.request(3, set("/c"));
    assert_eq!(h.result_of(3), Err(ZkError::SessionExpired));
    assert_eq!(h.c.session(), 0);
}

/// A session the server refuses on reconnect: the requests made while
/// reconnecting were never sent and fail with SESSIONEXPIRED.
#[test]
fn requests_queued_for_a_refused_session_fail_with_session_expired() {
    let mut h = HandClient::new();
    h.request(1, set("/a"));
    let server = h.sent[0].0;
    h.from_server(
        server,
        ZkMsg::Connected {
            session: 0x100,
            timeout_ms: 3_000,
        },
    );
    h.request(2, set("/b"));
    h.step(Input::ConnLost { peer: server });
    assert_eq!(h.result_of(1), Err(ZkError::ConnectionLoss));
    assert_eq!(h.result_of(2), Err(ZkError::ConnectionLoss));
    // Reconnecting (the retry timer) with the session; a request waits.
    h.step(Input::Timer { timer: 3 });
    let (next, m) = h.sent.last().cloned().expect("connect");
    assert!(matches!(m, ZkMsg::Connect { session: 0x100, .. }), "{m:?}");
    h.request(3, set("/c"));
    h.from_server(next, ZkMsg::ConnectRefused { expired: true });
    assert_eq!(h.result_of(3), Err(ZkError::SessionExpired));
    // It was reported: the next request opens a new session.
    h.request(4, set("/d"));
    assert!(h.replies.iter().all(|(i, _)| *i != 4));
    assert!(matches!(
        h.sent.last(),
        Some((_, ZkMsg::Connect { session: 0, .. }))
    ));
}
