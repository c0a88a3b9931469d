//! The ZooKeeper client node the workload drives.
//!
//! It connects to one server of its list at a time (round robin), opens a
//! session or resumes its session there, pipelines requests in FIFO order,
//! pings every third of the session timeout, and treats silence for two
//! thirds of it as a lost connection. On a lost connection every
//! outstanding request fails with `ConnectionLoss` (for a write: outcome
//! unknown) and the client reconnects elsewhere with its session and last
//! seen zxid (a server behind that zxid refuses it). A server that reports
//! the session gone (closed or expired) also ends the connection: requests
//! already sent fail with `ConnectionLoss` as on any broken connection (they
//! may have run before the session ended), requests not yet sent and those
//! made after the client learned of the expiry fail with `SessionExpired`,
//! as ZooKeeper's ClientCnxn does; the next request opens a new session. A session found expired while no
//! request was outstanding (on a reconnect between requests) is reported
//! to the next request, as ZooKeeper's expired handle does, so the caller
//! always learns that its session (and its ephemerals) ended. Watches are
//! re-registered on reconnect.

use std::collections::{BTreeSet, VecDeque};

use crate::msg::{ClientReply, ClientRequest, Msg};
use crate::node::{Ctx, Input, Node, NodeId, ReqId};
use crate::time::SimTime;
use crate::zk::types::{
    SessionId, WatchEvent, WatchKind, ZkError, ZkOp, ZkReply, ZkRequest, ZkResponse, Zxid,
};
use crate::zk::wire::{WatchType, ZkMsg};

const TIMER_PING: u64 = 1;
const TIMER_CONNECT: u64 = 2;
const TIMER_RETRY: u64 = 3;
/// Delay before trying the next server after a failure.
const RETRY_MS: u64 = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    Connecting(NodeId),
    Connected(NodeId),
}

#[derive(Clone, Debug)]
struct Sent {
    xid: u64,
    id: ReqId,
    op: Option<ZkOp>,
}

/// A ZooKeeper client node.
pub struct ZkClient {
    servers: Vec<NodeId>,
    timeout_ms: u64,
    next: usize,
    state: State,
    session: SessionId,
    last_zxid: Zxid,
    next_xid: u64,
    sent: VecDeque<Sent>,
    queued: VecDeque<(ReqId, ZkRequest)>,
    events: Vec<WatchEvent>,
    watches: BTreeSet<(WatchType, String)>,
    last_heard: SimTime,
    last_server: NodeId,
    /// The session expired with no request outstanding to report it to.
    expired_unreported: bool,
}

impl ZkClient {
    /// Steps the client as a part of another node (a Kafka broker, an admin
    /// tool): its timers are shifted by `timer_base` into the host node's
    /// timer space, its other effects pass through, and its replies are
    /// handed back instead of going to a workload.
    pub fn step_embedded(
        &mut self,
        input: Input,
        timer_base: u64,
        cx: &mut Ctx<'_>,
    ) -> Vec<(ReqId, ZkReply)> {
        crate::node::step_embedded(self, input, timer_base, cx)
            .into_iter()
            .filter_map(|(id, r)| match r {
                ClientReply::Zk(r) => Some((id, r)),
                _ => None,
            })
            .collect()
    }

    /// A client of the ensemble `servers` asking for sessions of
    /// `session_timeout_ms`; `first` picks the first server tried (e.g. the
    /// client's index, to spread clients).
    pub fn new(servers: Vec<NodeId>, session_timeout_ms: u64, first: usize) -> ZkClient {
        assert!(!servers.is_empty());
        ZkClient {
            next: first % servers.len(),
            servers,
            timeout_ms: session_timeout_ms,
            state: State::Idle,
            session: 0,
            last_zxid: 0,
            next_xid: 1,
            sent: VecDeque::new(),
            queued: VecDeque::new(),
            events: Vec::new(),
            watches: BTreeSet::new(),
            last_heard: SimTime::ZERO,
            last_server: 0,
            expired_unreported: false,
        }
    }

    /// The current session (0 if none).
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The highest zxid seen in a reply.
    pub fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    fn reply(
        &mut self,
        id: ReqId,
        result: Result<ZkResponse, ZkError>,
        zxid: Zxid,
        cx: &mut Ctx<'_>,
    ) {
        let r = ZkReply {
            result,
            zxid,
            session: self.session,
            server: self.last_server,
            events: std::mem::take(&mut self.events),
        };
        cx.reply(id, ClientReply::Zk(r));
    }

    fn connect(&mut self, cx: &mut Ctx<'_>) {
        let server = self.servers[self.next % self.servers.len()];
        self.next += 1;
        self.state = State::Connecting(server);
        self.last_server = server;
        cx.send(
            server,
            Msg::Zk(ZkMsg::Connect {
                session: self.session,
                timeout_ms: self.timeout_ms,
                last_zxid: self.last_zxid,
                watches: self.watches.iter().cloned().collect(),
            }),
        );
        cx.set_mono_timer_ms(TIMER_CONNECT, (self.timeout_ms * 2 / 3).max(1));
    }

    fn send_req(&mut self, id: ReqId, req: ZkRequest, cx: &mut Ctx<'_>) {
        let State::Connected(server) = self.state else {
            return;
        };
        let xid = self.next_xid;
        self.next_xid += 1;
        let op = match req {
            ZkRequest::Op(op) => Some(op),
            ZkRequest::Close => None,
        };
        self.sent.push_back(Sent {
            xid,
            id,
            op: op.clone(),
        });
        cx.send(server, Msg::Zk(ZkMsg::ClientReq { xid, op }));
    }

    /// Fails everything outstanding and retries elsewhere if useful.
    fn lost(&mut self, err: ZkError, cx: &mut Ctx<'_>) {
        if let State::Connecting(s) | State::Connected(s) = self.state {
            cx.disconnect(s);
        }
        self.state = State::Idle;
        cx.cancel_timer(TIMER_CONNECT);
        cx.cancel_timer(TIMER_PING);
        if err == ZkError::SessionExpired {
            self.session = 0;
            self.watches.clear();
            // Only a request not yet sent learns of the expiry here; when
            // none is waiting, the next request is told.
            self.expired_unreported = self.queued.is_empty();
        }
        // As ClientCnxn's cleanup on a broken connection: requests already
        // sent end with CONNECTIONLOSS (they may have run before the
        // session ended), whatever ended the connection.
        let sent: Vec<Sent> = self.sent.drain(..).collect();
        for s in sent {
            self.reply(s.id, Err(ZkError::ConnectionLoss), 0, cx);
        }
        let queued: Vec<(ReqId, ZkRequest)> = self.queued.drain(..).collect();
        for (id, _) in queued {
            self.reply(id, Err(err), 0, cx);
        }
        if self.session != 0 {
            cx.set_mono_timer_ms(TIMER_RETRY, RETRY_MS);
        }
    }

    fn on_watch(&mut self, ev: WatchEvent) {
        let p = ev.path.clone();
        match ev.kind {
            WatchKind::NodeChildrenChanged => {
                self.watches.remove(&(WatchType::Child, p));
            }
            WatchKind::NodeDeleted => {
                self.watches.remove(&(WatchType::Child, p.clone()));
                self.watches.remove(&(WatchType::Data, p.clone()));
                self.watches.remove(&(WatchType::Exist, p));
            }
            WatchKind::NodeCreated | WatchKind::NodeDataChanged => {
                self.watches.remove(&(WatchType::Data, p.clone()));
                self.watches.remove(&(WatchType::Exist, p));
            }
        }
        self.events.push(ev);
    }

    fn on_msg(&mut self, from: NodeId, m: ZkMsg, cx: &mut Ctx<'_>) {
        let current = match self.state {
            State::Connecting(s) | State::Connected(s) => s,
            State::Idle => return,
        };
        if from != current {
            return;
        }
        self.last_heard = cx.mono;
        match m {
            ZkMsg::Connected {
                session,
                timeout_ms,
            } => {
                if self.state != State::Connecting(from) {
                    return;
                }
                self.state = State::Connected(from);
                self.session = session;
                // A session is named by its createSession zxid: never move
                // to a server that has not applied it.
                self.last_zxid = self.last_zxid.max(session);
                self.timeout_ms = timeout_ms;
                cx.cancel_timer(TIMER_CONNECT);
                cx.set_mono_timer_ms(TIMER_PING, (timeout_ms / 3).max(1));
                let queued: Vec<(ReqId, ZkRequest)> = self.queued.drain(..).collect();
                for (id, req) in queued {
                    self.send_req(id, req, cx);
                }
            }
            ZkMsg::ConnectRefused { expired } => {
                let err = if expired {
                    ZkError::SessionExpired
                } else {
                    ZkError::ConnectionLoss
                };
                self.lost(err, cx);
            }
            ZkMsg::ClientResp { xid, zxid, result } => {
                let Some(front) = self.sent.front() else {
                    return;
                };
                if front.xid != xid {
                    // Out of order: the server broke FIFO; treat as loss.
                    self.lost(ZkError::ConnectionLoss, cx);
                    return;
                }
                let s = self.sent.pop_front().expect("front");
                self.last_zxid = self.last_zxid.max(zxid);
                match (&s.op, &result) {
                    (Some(ZkOp::GetData { path, watch: true }), Ok(_)) => {
                        self.watches.insert((WatchType::Data, path.clone()));
                    }
                    // As ZooKeeper's ExistsWatchRegistration: a watch set
                    // by exists on a znode that exists is a data watch
                    // (NodeDataChanged, NodeDeleted), on one that does not
                    // an exists watch (NodeCreated); a reconnect restores it
                    // as what it is.
                    (Some(ZkOp::Exists { path, watch: true }), Ok(ZkResponse::Exists(Some(_)))) => {
                        self.watches.insert((WatchType::Data, path.clone()));
                    }
                    (Some(ZkOp::Exists { path, watch: true }), Ok(_)) => {
                        self.watches.insert((WatchType::Exist, path.clone()));
                    }
                    (Some(ZkOp::GetChildren { path, watch: true }), Ok(_)) => {
                        self.watches.insert((WatchType::Child, path.clone()));
                    }
                    _ => {}
                }
                let closed = s.op.is_none() && result.is_ok();
                let moved = result == Err(ZkError::SessionMoved);
                self.reply(s.id, result, zxid, cx);
                if moved {
                    // The server closes this stale connection; the session
                    // lives on elsewhere.
                    self.lost(ZkError::ConnectionLoss, cx);
                } else if closed {
                    self.session = 0;
                    self.watches.clear();
                    self.lost(ZkError::ConnectionLoss, cx);
                }
            }
            ZkMsg::WatchFired(ev) => self.on_watch(ev),
            _ => {}
        }
    }
}

impl Node for ZkClient {
    fn step(&mut self, input: Input, cx: &mut Ctx<'_>) {
        match input {
            Input::Client {
                id,
                req: ClientRequest::Zk(_),
            } if self.expired_unreported => {
                self.expired_unreported = false;
                self.reply(id, Err(ZkError::SessionExpired), 0, cx);
            }
            Input::Client {
                id,
                req: ClientRequest::Zk(req),
            } => match self.state {
                State::Connected(_) => self.send_req(id, req, cx),
                State::Connecting(_) => self.queued.push_back((id, req)),
                State::Idle => {
                    if matches!(req, ZkRequest::Close) && self.session == 0 {
                        self.reply(id, Ok(ZkResponse::Closed), 0, cx);
                        return;
                    }
                    self.queued.push_back((id, req));
                    cx.cancel_timer(TIMER_RETRY);
                    self.connect(cx);
                }
            },
            Input::Message {
                from,
                msg: Msg::Zk(m),
            } => self.on_msg(from, m, cx),
            Input::ConnLost { peer } => {
                if matches!(self.state, State::Connecting(s) | State::Connected(s) if s == peer) {
                    self.lost(ZkError::ConnectionLoss, cx);
                }
            }
            Input::Timer { timer } => match timer {
                TIMER_PING => {
                    if let State::Connected(s) = self.state {
                        if cx.mono.ms_since(self.last_heard) > self.timeout_ms * 2 / 3 {
                            self.lost(ZkError::ConnectionLoss, cx);
                        } else {
                            cx.send(s, Msg::Zk(ZkMsg::ClientPing));
                            cx.set_mono_timer_ms(TIMER_PING, (self.timeout_ms / 3).max(1));
                        }
                    }
                }
                TIMER_CONNECT => {
                    if matches!(self.state, State::Connecting(_)) {
                        self.lost(ZkError::ConnectionLoss, cx);
                    }
                }
                TIMER_RETRY
                    if self.state == State::Idle
                        && (self.session != 0 || !self.queued.is_empty()) =>
                {
                    self.connect(cx);
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn role(&self) -> String {
        format!("session={:#x} zxid={:#x}", self.session, self.last_zxid)
    }
}
