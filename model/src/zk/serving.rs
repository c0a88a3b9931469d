//! Client sessions on one server: connection handshakes (new session via a
//! createSession txn, or revalidating a moved session with the leader),
//! the per-session FIFO request pipeline, sync, and watch delivery.
//!
//! Ordering: a session's requests are answered in order. A read is answered
//! from the local tree when every earlier request of the session is done; a
//! write is forwarded to the leader and answered when its transaction is
//! applied here. Watch events a transaction triggers are sent before any
//! reply that follows that transaction, on the same FIFO connection.
//!
//! A write the leader refused because the session moved to another server
//! is answered `SessionMoved`, and the connection it came on is dropped as
//! stale (the client closes it on that reply).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::msg::Msg;
use crate::node::{Ctx, NodeId};
use crate::zk::leader::SyncTarget;
use crate::zk::server::{Role, ZkServer};
use crate::zk::tree::Change;
use crate::zk::txn::{LoggedTxn, Txn};
use crate::zk::types::{SessionId, ZkError, ZkOp, ZkResponse, Zxid};
use crate::zk::watches::WatchManager;
use crate::zk::wire::{WatchType, ZkMsg};

/// One queued request of a session.
#[derive(Clone, Debug)]
enum Pending {
    /// A read, answered locally when it reaches the head.
    Read { xid: u64, op: ZkOp },
    /// A write (or a close), answered when its txn is applied here (`done`
    /// holds the txn zxid and result) and every earlier request is answered.
    Write {
        xid: u64,
        close: bool,
        done: Option<(Zxid, Result<ZkResponse, ZkError>)>,
    },
    /// A sync, answered when the leader's sync point is reached here
    /// (`done`: the point) and every earlier request of the session is
    /// answered. The reply carries the point, as ZooKeeper's does (its
    /// SYNC is ordered right behind the point's COMMIT): commits applied
    /// since belong to requests after it, some perhaps of this session.
    Sync { xid: u64, done: Option<Zxid> },
}

/// Where a client connection is.
#[derive(Clone, Debug)]
enum ConnState {
    /// Waiting for our createSession txn to commit.
    Creating,
    /// Waiting for the leader to confirm the session.
    Revalidating {
        session: SessionId,
        last_zxid: Zxid,
        watches: Vec<(WatchType, String)>,
    },
    /// Session open here.
    Active,
}

/// A client connected to this server.
#[derive(Clone, Debug)]
struct Conn {
    session: SessionId,
    state: ConnState,
    timeout_ms: u64,
    queue: VecDeque<Pending>,
}

/// The client-facing state of a server.
#[derive(Debug, Default)]
pub(super) struct Serving {
    conns: BTreeMap<NodeId, Conn>,
    sessions: BTreeMap<SessionId, NodeId>,
    watches: WatchManager,
    touched: BTreeSet<SessionId>,
}

impl Serving {
    /// Drops every client connection (the server left its serving role).
    pub(super) fn close_all(&mut self, cx: &mut Ctx<'_>) {
        for &c in self.conns.keys() {
            cx.disconnect(c);
        }
        self.conns.clear();
        self.sessions.clear();
        self.watches = WatchManager::default();
        self.touched.clear();
    }

    /// Sessions touched since the last ping to the leader.
    pub(super) fn take_touched(&mut self) -> Vec<SessionId> {
        std::mem::take(&mut self.touched).into_iter().collect()
    }

    /// Records activity of a session.
    pub(super) fn touch(&mut self, s: SessionId) {
        self.touched.insert(s);
    }

    fn drop_conn(&mut self, client: NodeId) {
        if let Some(c) = self.conns.remove(&client) {
            if c.session != 0 && self.sessions.get(&c.session) == Some(&client) {
                self.sessions.remove(&c.session);
                self.watches.remove_session(c.session);
            }
        }
    }
}

fn send(cx: &mut Ctx<'_>, to: NodeId, m: ZkMsg) {
    cx.send(to, Msg::Zk(m));
}

impl ZkServer {
    fn touch_session(&mut self, s: SessionId, cx: &mut Ctx<'_>) {
        let now = cx.mono;
        match self.role {
            Role::Leading(_) => {
                self.leader_touch(s, now);
            }
            _ => self.follower_touch(s, now),
        }
    }

    pub(super) fn on_client_msg(&mut self, from: NodeId, m: ZkMsg, cx: &mut Ctx<'_>) {
        match m {
            ZkMsg::Connect {
                session,
                timeout_ms,
                last_zxid,
                watches,
            } => {
                self.serving.drop_conn(from);
                if !self.is_serving() || last_zxid > self.tree.last_zxid() {
                    // The client closes the connection on this answer (a
                    // close here could drop the answer in flight).
                    send(cx, from, ZkMsg::ConnectRefused { expired: false });
                    return;
                }
                let timeout_ms = timeout_ms.clamp(
                    self.cfg.min_session_timeout_ms,
                    self.cfg.max_session_timeout_ms,
                );
                if session == 0 {
                    self.serving.conns.insert(
                        from,
                        Conn {
                            session: 0,
                            state: ConnState::Creating,
                            timeout_ms,
                            queue: VecDeque::new(),
                        },
                    );
                    match self.role {
                        Role::Leading(_) => {
                            self.leader_create_session(timeout_ms, self.id, from, cx)
                        }
                        Role::Following(ref f) => {
                            let l = f.leader;
                            send(
                                cx,
                                l,
                                ZkMsg::CreateSession {
                                    timeout_ms,
                                    client: from,
                                },
                            );
                        }
                        _ => {}
                    }
                } else {
                    self.serving.conns.insert(
                        from,
                        Conn {
                            session: 0,
                            state: ConnState::Revalidating {
                                session,
                                last_zxid,
                                watches,
                            },
                            timeout_ms,
                            queue: VecDeque::new(),
                        },
                    );
                    match self.role {
                        Role::Leading(_) => {
                            let valid = self.leader_revalidate(session, self.id, cx.mono);
                            self.on_revalidated(session, valid, cx);
                        }
                        Role::Following(ref f) => {
                            let l = f.leader;
                            send(cx, l, ZkMsg::Revalidate { session });
                        }
                        _ => {}
                    }
                }
            }
            ZkMsg::ClientPing => {
                let Some(c) = self.serving.conns.get(&from) else {
                    return;
                };
                if matches!(c.state, ConnState::Active) {
                    let s = c.session;
                    self.touch_session(s, cx);
                }
                send(cx, from, ZkMsg::ClientPong);
            }
            ZkMsg::ClientReq { xid, op } => {
                let Some(c) = self.serving.conns.get_mut(&from) else {
                    cx.disconnect(from);
                    return;
                };
                if !matches!(c.state, ConnState::Active) {
                    self.serving.drop_conn(from);
                    cx.disconnect(from);
                    return;
                }
                let s = c.session;
                match op {
                    Some(ZkOp::Sync { .. }) => {
                        c.queue.push_back(Pending::Sync { xid, done: None });
                        self.submit_sync(s, xid, cx);
                    }
                    Some(op) if !op.is_write() => {
                        c.queue.push_back(Pending::Read { xid, op });
                    }
                    op => {
                        c.queue.push_back(Pending::Write {
                            xid,
                            close: op.is_none(),
                            done: None,
                        });
                        self.submit_write(s, xid, op, cx);
                    }
                }
                self.touch_session(s, cx);
                self.drain(from, cx);
            }
            _ => {}
        }
    }

    fn submit_write(&mut self, s: SessionId, xid: u64, op: Option<ZkOp>, cx: &mut Ctx<'_>) {
        match self.role {
            Role::Leading(_) => self.leader_request(s, xid, op, self.id, cx),
            Role::Following(ref f) => {
                let l = f.leader;
                send(
                    cx,
                    l,
                    ZkMsg::Request {
                        session: s,
                        cxid: xid,
                        op,
                    },
                );
            }
            _ => {}
        }
    }

    fn submit_sync(&mut self, s: SessionId, xid: u64, cx: &mut Ctx<'_>) {
        match self.role {
            Role::Leading(_) => self.leader_sync(SyncTarget::Local(s, xid), cx),
            Role::Following(ref f) => {
                if self.bugs.sync_not_through_leader {
                    // Planted bug: answer from local state at once.
                    let point = self.tree.last_zxid();
                    self.on_sync_done(s, xid, point, cx);
                } else {
                    let l = f.leader;
                    send(
                        cx,
                        l,
                        ZkMsg::SyncReq {
                            session: s,
                            cxid: xid,
                        },
                    );
                }
            }
            _ => {}
        }
    }

    /// Answers the reads and completed syncs at the head of a client's
    /// queue.
    fn drain(&mut self, client: NodeId, cx: &mut Ctx<'_>) {
        loop {
            let Some(c) = self.serving.conns.get_mut(&client) else {
                return;
            };
            let s = c.session;
            match c.queue.front() {
                Some(Pending::Read { .. }) => {
                    let Some(Pending::Read { xid, op }) = c.queue.pop_front() else {
                        return;
                    };
                    let result = self.read(s, &op);
                    let zxid = self.tree.last_zxid();
                    send(cx, client, ZkMsg::ClientResp { xid, zxid, result });
                }
                Some(Pending::Sync { xid, done: Some(_) }) => {
                    // As every reply, it carries the server's last
                    // processed zxid when it is sent (at least the sync
                    // point: the follower applied the commits that came
                    // before the leader's answer).
                    let (xid, zxid) = (*xid, self.tree.last_zxid());
                    c.queue.pop_front();
                    send(
                        cx,
                        client,
                        ZkMsg::ClientResp {
                            xid,
                            zxid,
                            result: Ok(ZkResponse::Synced),
                        },
                    );
                }
                Some(Pending::Write { done: Some(_), .. }) => {
                    let Some(Pending::Write {
                        xid,
                        close,
                        done: Some((zxid, result)),
                    }) = c.queue.pop_front()
                    else {
                        return;
                    };
                    let moved = result == Err(ZkError::SessionMoved);
                    send(cx, client, ZkMsg::ClientResp { xid, zxid, result });
                    if close || moved {
                        // The client closes the connection on this reply;
                        // after SESSIONMOVED the connection is stale (as
                        // FinalRequestProcessor's sendCloseSession), and
                        // anything more on it is refused.
                        self.serving.drop_conn(client);
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    /// Records the outcome of a session's write; true if it was queued here.
    fn complete_write(
        &mut self,
        s: SessionId,
        cxid: u64,
        outcome: (Zxid, Result<ZkResponse, ZkError>),
        cx: &mut Ctx<'_>,
    ) -> bool {
        let Some(&client) = self.serving.sessions.get(&s) else {
            return false;
        };
        let Some(c) = self.serving.conns.get_mut(&client) else {
            return false;
        };
        let slot = c.queue.iter_mut().find_map(|p| match p {
            Pending::Write { xid, done, .. } if *xid == cxid && done.is_none() => Some(done),
            _ => None,
        });
        let Some(slot) = slot else {
            return false;
        };
        *slot = Some(outcome);
        self.drain(client, cx);
        true
    }

    fn read(&mut self, s: SessionId, op: &ZkOp) -> Result<ZkResponse, ZkError> {
        match op {
            ZkOp::GetData { path, watch } => {
                let n = self.tree.get(path).ok_or(ZkError::NoNode)?;
                let r = ZkResponse::Data(n.data.clone(), n.stat);
                if *watch {
                    self.serving.watches.add(WatchType::Data, path, s);
                }
                Ok(r)
            }
            ZkOp::Exists { path, watch } => {
                let stat = self.tree.get(path).map(|n| n.stat);
                if *watch {
                    // A data watch on a znode that exists, else an exists
                    // watch (ZooKeeper's DataTree.statNode / exists).
                    let kind = if stat.is_some() {
                        WatchType::Data
                    } else {
                        WatchType::Exist
                    };
                    self.serving.watches.add(kind, path, s);
                }
                Ok(ZkResponse::Exists(stat))
            }
            ZkOp::GetChildren { path, watch } => {
                let (names, stat) = self.tree.children_and_stat(path)?;
                let r = ZkResponse::Children(names, stat);
                if *watch {
                    self.serving.watches.add(WatchType::Child, path, s);
                }
                Ok(r)
            }
            _ => Err(ZkError::BadArguments),
        }
    }

    /// Replies and watch events after a transaction is applied here.
    pub(super) fn after_apply(
        &mut self,
        lt: &LoggedTxn,
        result: Result<ZkResponse, ZkError>,
        changes: &[Change],
        cx: &mut Ctx<'_>,
    ) {
        let zxid = lt.zxid();
        // ZooKeeper queues a change's watch events on each connection
        // before the reply to the request that made it (FinalRequestProcessor
        // triggers the watches, then answers), so a client sees the event
        // before any reply reflecting the change. The planted bug answers
        // first.
        let fired = self.serving.watches.trigger(changes, zxid);
        let late = self.bugs.watch_after_reply;
        if !late {
            self.send_watch_events(fired.clone(), cx);
        }
        self.answer_applied(lt, result, cx);
        if late {
            self.send_watch_events(fired, cx);
        }
    }

    fn send_watch_events(
        &mut self,
        fired: Vec<(SessionId, crate::zk::WatchEvent)>,
        cx: &mut Ctx<'_>,
    ) {
        for (s, ev) in fired {
            if let Some(&c) = self.serving.sessions.get(&s) {
                send(cx, c, ZkMsg::WatchFired(ev));
            }
        }
    }

    /// The reply (or session event) for an applied transaction.
    fn answer_applied(
        &mut self,
        lt: &LoggedTxn,
        result: Result<ZkResponse, ZkError>,
        cx: &mut Ctx<'_>,
    ) {
        let zxid = lt.zxid();
        let s = lt.hdr.session;
        match &lt.txn {
            Txn::CreateSession { origin, client, .. } if *origin == self.id => {
                let Some(c) = self.serving.conns.get_mut(client) else {
                    return;
                };
                if !matches!(c.state, ConnState::Creating) {
                    return;
                }
                c.state = ConnState::Active;
                c.session = s;
                let timeout_ms = c.timeout_ms;
                self.serving.sessions.insert(s, *client);
                send(
                    cx,
                    *client,
                    ZkMsg::Connected {
                        session: s,
                        timeout_ms,
                    },
                );
            }
            Txn::CloseSession => {
                let asked =
                    lt.hdr.cxid != 0 && self.complete_write(s, lt.hdr.cxid, (zxid, result), cx);
                if !asked {
                    self.session_gone(s, cx);
                }
            }
            _ => {
                self.complete_write(s, lt.hdr.cxid, (zxid, result), cx);
            }
        }
    }

    /// A session ended (expired): tell its client and close the connection.
    pub(super) fn session_gone(&mut self, s: SessionId, cx: &mut Ctx<'_>) {
        if let Some(&client) = self.serving.sessions.get(&s) {
            // The client closes the connection on this message.
            send(cx, client, ZkMsg::ConnectRefused { expired: true });
            self.serving.drop_conn(client);
        }
    }

    /// The leader's sync point for `(session, cxid)` is applied here.
    pub(super) fn on_sync_done(&mut self, s: SessionId, cxid: u64, point: Zxid, cx: &mut Ctx<'_>) {
        let Some(&client) = self.serving.sessions.get(&s) else {
            return;
        };
        let Some(c) = self.serving.conns.get_mut(&client) else {
            return;
        };
        for p in c.queue.iter_mut() {
            if let Pending::Sync { xid, done } = p {
                if *xid == cxid {
                    *done = Some(point);
                }
            }
        }
        self.drain(client, cx);
    }

    /// The leader answered whether a moved session is alive.
    pub(super) fn on_revalidated(&mut self, s: SessionId, valid: bool, cx: &mut Ctx<'_>) {
        let found = self.serving.conns.iter().find_map(|(k, c)| match &c.state {
            ConnState::Revalidating { session, .. } if *session == s => Some(*k),
            _ => None,
        });
        let Some(client) = found else { return };
        if !valid || !self.tree.has_session(s) {
            send(cx, client, ZkMsg::ConnectRefused { expired: true });
            self.serving.drop_conn(client);
            return;
        }
        if let Some(&old) = self.serving.sessions.get(&s) {
            if old != client {
                self.serving.drop_conn(old);
                cx.disconnect(old);
            }
        }
        let c = self.serving.conns.get_mut(&client).expect("conn");
        let ConnState::Revalidating {
            last_zxid, watches, ..
        } = std::mem::replace(&mut c.state, ConnState::Active)
        else {
            return;
        };
        c.session = s;
        let timeout_ms = self
            .tree
            .sessions()
            .get(&s)
            .copied()
            .unwrap_or(c.timeout_ms);
        self.serving.sessions.insert(s, client);
        send(
            cx,
            client,
            ZkMsg::Connected {
                session: s,
                timeout_ms,
            },
        );
        for (kind, path) in watches {
            if let Some(ev) = self
                .serving
                .watches
                .restore(&self.tree, kind, &path, s, last_zxid)
            {
                send(cx, client, ZkMsg::WatchFired(ev));
            }
        }
    }

    /// A client connection broke.
    pub(super) fn on_client_lost(&mut self, client: NodeId) {
        self.serving.drop_conn(client);
    }
}
