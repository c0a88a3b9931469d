//! The ZAB leader: discovery (FOLLOWERINFO, LEADERINFO, ACKEPOCH),
//! synchronisation (DIFF / TRUNC / SNAP, NEWLEADER, UPTODATE), broadcast
//! (PROPOSAL, ACK, COMMIT), sync points, pings, and the session tracker
//! that expires sessions with closeSession transactions.

use std::collections::{BTreeMap, BTreeSet};

use crate::msg::Msg;
use crate::node::{Ctx, NodeId};
use crate::probe::EventKind;
use crate::time::SimTime;
use crate::zk::server::{Deferred, Role, ZkServer, TIMER_TICK};
use crate::zk::storage::encode_snapshot;
use crate::zk::tree::DataTree;
use crate::zk::txn::{apply, encode_txn, prep, LoggedTxn, Txn, TxnHeader};
use crate::zk::types::{make_zxid, SessionId, ZkError, ZkOp, Zxid};
use crate::zk::wire::ZkMsg;

/// How far a learner got in the handshake on its current connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Stage {
    /// FOLLOWERINFO received.
    Info,
    /// ACKEPOCH received.
    EpochAcked,
    /// Sync and NEWLEADER sent; proposals are forwarded.
    Synced,
    /// NEWLEADER acknowledged.
    NewLeaderAcked,
    /// UPTODATE sent.
    UpToDate,
}

/// The leader's view of one learner.
#[derive(Clone, Debug)]
pub(super) struct LearnerView {
    pub(super) stage: Stage,
    /// The highest ping round this learner echoed.
    round: u64,
    pub(super) last_heard: SimTime,
    pub(super) last_zxid: Zxid,
}

/// Who waits for a sync point.
#[derive(Clone, Copy, Debug)]
pub(super) enum SyncTarget {
    /// A learner's client.
    Learner(NodeId, SessionId, u64),
    /// One of our own clients.
    Local(SessionId, u64),
}

/// Leader state for one epoch.
pub(super) struct Leader {
    /// The new epoch (0 until decided).
    pub(super) epoch: u64,
    pub(super) epoch_accepted: bool,
    pub(super) epoch_quorum: bool,
    pub(super) established: bool,
    started_at: SimTime,
    infos: BTreeMap<NodeId, u64>,
    epoch_acks: BTreeSet<NodeId>,
    newleader_acks: BTreeSet<NodeId>,
    pub(super) learners: BTreeMap<NodeId, LearnerView>,
    /// Outstanding proposals and who acked them.
    proposals: BTreeMap<Zxid, BTreeSet<NodeId>>,
    counter: u64,
    /// Committed tree plus every outstanding proposal.
    spec: DataTree,
    /// Syncs waiting for (commit point, ping round confirmed by a quorum).
    pending_syncs: Vec<(Zxid, u64, SyncTarget)>,
    /// The latest ping round started.
    ping_round: u64,
    /// Session expiry deadlines (leader clock).
    tracker: BTreeMap<SessionId, SimTime>,
    closing: BTreeSet<SessionId>,
    /// The server each session is connected through, as ZooKeeper's
    /// session tracker records it (set by createSession and by the
    /// revalidation of a reconnect, or by the first request when this
    /// leader has not seen one): a write through any other server is
    /// refused with SESSIONMOVED.
    owners: BTreeMap<SessionId, NodeId>,
}

impl ZkServer {
    fn leader(&mut self) -> Option<&mut Leader> {
        match &mut self.role {
            Role::Leading(l) => Some(l),
            _ => None,
        }
    }

    pub(super) fn become_leader(&mut self, cx: &mut Ctx<'_>) {
        cx.event(EventKind::ZkLeaderElected, cx.me);
        tracing::info!(
            "zk: LEADING (accepted epoch {}, last zxid {:#x})",
            self.accepted_epoch,
            self.log.last_zxid()
        );
        let mut infos = BTreeMap::new();
        infos.insert(self.id, self.accepted_epoch);
        self.role = Role::Leading(Box::new(Leader {
            epoch: 0,
            epoch_accepted: false,
            epoch_quorum: false,
            established: false,
            started_at: cx.mono,
            infos,
            epoch_acks: BTreeSet::new(),
            newleader_acks: BTreeSet::new(),
            learners: BTreeMap::new(),
            proposals: BTreeMap::new(),
            counter: 0,
            spec: DataTree::new(),
            pending_syncs: Vec::new(),
            ping_round: 0,
            tracker: BTreeMap::new(),
            closing: BTreeSet::new(),
            owners: BTreeMap::new(),
        }));
        cx.set_mono_timer_ms(TIMER_TICK, self.cfg.tick_ms);
        self.leader_check_info_quorum(cx);
    }

    fn leader_check_info_quorum(&mut self, cx: &mut Ctx<'_>) {
        let quorum = self.quorum();
        let Some(l) = self.leader() else { return };
        if l.epoch != 0 || l.infos.len() < quorum {
            return;
        }
        let epoch = l.infos.values().copied().max().unwrap_or(0) + 1;
        l.epoch = epoch;
        self.set_accepted_epoch(epoch, cx);
        self.disk
            .after_all(Deferred::LeaderEpochAccepted { gen: self.role_gen });
    }

    pub(super) fn leader_epoch_accepted(&mut self, cx: &mut Ctx<'_>) {
        let me = self.id;
        let Some(l) = self.leader() else { return };
        l.epoch_accepted = true;
        l.epoch_acks.insert(me);
        let epoch = l.epoch;
        for (&p, v) in &l.learners {
            if v.stage == Stage::Info {
                cx.send(p, Msg::Zk(ZkMsg::LeaderInfo { new_epoch: epoch }));
            }
        }
        self.leader_check_epoch_quorum(cx);
    }

    fn leader_check_epoch_quorum(&mut self, cx: &mut Ctx<'_>) {
        let quorum = self.quorum();
        let Some(l) = self.leader() else { return };
        if l.epoch_quorum || l.epoch_acks.len() < quorum {
            return;
        }
        l.epoch_quorum = true;
        let epoch = l.epoch;
        let ready: Vec<NodeId> = l
            .learners
            .iter()
            .filter(|(_, v)| v.stage == Stage::EpochAcked)
            .map(|(p, _)| *p)
            .collect();
        self.set_current_epoch(epoch, cx);
        self.disk
            .after_all(Deferred::LeaderEpochCurrent { gen: self.role_gen });
        for p in ready {
            self.leader_sync_learner(p, cx);
        }
    }

    pub(super) fn leader_epoch_current(&mut self, cx: &mut Ctx<'_>) {
        let me = self.id;
        if let Some(l) = self.leader() {
            l.newleader_acks.insert(me);
        }
        self.leader_check_newleader_quorum(cx);
    }

    /// Sends a learner what it needs to match our committed history, then
    /// NEWLEADER, then the outstanding proposals. As
    /// `LearnerHandler.syncFollower`: a DIFF (after a TRUNC to the common
    /// point if the learner has txns we do not) when the in-memory committed
    /// log reaches back to the learner's last zxid, or when the txn log on
    /// disk still covers it and the txns weigh little enough next to a
    /// snapshot (`snapshotSizeFactor`); a SNAP of the committed tree
    /// otherwise.
    fn leader_sync_learner(&mut self, p: NodeId, cx: &mut Ctx<'_>) {
        let committed = self.tree.last_zxid();
        let base = self.log.base;
        let mem_lo = self.committed_log_start();
        let disk_lo = self.log_floor();
        let factor_pct = self.cfg.snapshot_size_factor_pct;
        let Some(l) = self.leader() else { return };
        let epoch = l.epoch;
        let Some(view) = l.learners.get_mut(&p) else {
            return;
        };
        let f = view.last_zxid;
        view.stage = Stage::Synced;
        // The largest point of our committed history at or below f.
        let upto = f.min(committed);
        let point = self
            .log
            .entries
            .iter()
            .map(|e| e.zxid())
            .take_while(|&z| z <= upto)
            .last()
            .unwrap_or(base);
        let diff = || -> Vec<LoggedTxn> {
            self.log
                .after(point)
                .iter()
                .take_while(|e| e.zxid() <= committed)
                .cloned()
                .collect()
        };
        let mut txns = None;
        let mut from_disk = false;
        if f >= base && point >= mem_lo {
            txns = Some(diff());
        } else if f >= base && factor_pct > 0 && point >= disk_lo {
            let t = diff();
            let bytes: u64 = t.iter().map(|e| encode_txn(e).len() as u64).sum();
            let snap_bytes = encode_snapshot(&self.tree).len() as u64;
            if bytes * 100 <= snap_bytes * factor_pct {
                txns = Some(t);
                from_disk = true;
            }
        }
        // BUGGIFY: a snapshot instead of a DIFF, which a leader may always
        // send.
        if txns.is_some() && cx.buggify("zk.sync.snap-instead-of-diff") {
            txns = None;
        }
        let msg = match txns {
            Some(txns) => {
                tracing::debug!(
                    "zk: DIFF to learner {p} (last zxid {f:#x}): {} txns from {}{}",
                    txns.len(),
                    if from_disk {
                        "the txn log"
                    } else {
                        "the committed log"
                    },
                    if point != f {
                        format!(", after TRUNC to {point:#x}")
                    } else {
                        String::new()
                    }
                );
                ZkMsg::Sync {
                    snap: None,
                    trunc: (point != f).then_some(point),
                    txns,
                }
            }
            None => {
                cx.event(EventKind::ZkSnapshotSync, p);
                tracing::info!(
                    "zk: SNAP to learner {p}: its last zxid {f:#x} is before what a DIFF can reach (committed log from {mem_lo:#x}, txn log from {disk_lo:#x}); sending the tree at {committed:#x}"
                );
                ZkMsg::Sync {
                    snap: Some(Box::new(self.tree.clone())),
                    trunc: None,
                    txns: Vec::new(),
                }
            }
        };
        cx.send(p, Msg::Zk(msg));
        cx.send(
            p,
            Msg::Zk(ZkMsg::NewLeader {
                zxid: make_zxid(epoch, 0),
            }),
        );
        for e in self.log.after(committed) {
            cx.send(p, Msg::Zk(ZkMsg::Proposal(e.clone())));
        }
    }

    /// The zxid the in-memory committed log starts after: the last
    /// `commit_log_count` committed txns, and none from before the snapshot
    /// this server loaded at start (its committed log holds only what it
    /// replayed and committed since).
    pub(super) fn committed_log_start(&self) -> Zxid {
        let committed = self.tree.last_zxid();
        let n = self.log.entries.partition_point(|e| e.zxid() <= committed);
        let keep = self.cfg.commit_log_count.max(1) as usize;
        let lo = if n > keep {
            self.log.entries[n - keep - 1].zxid()
        } else {
            self.log.base
        };
        lo.max(self.mem_floor)
    }

    fn leader_check_newleader_quorum(&mut self, cx: &mut Ctx<'_>) {
        let quorum = self.quorum();
        let now = cx.mono;
        let tree_sessions: Vec<(SessionId, u64)> =
            self.tree.sessions().iter().map(|(s, t)| (*s, *t)).collect();
        let spec = self.tree.clone();
        let Some(l) = self.leader() else { return };
        if l.established || l.newleader_acks.len() < quorum {
            return;
        }
        l.established = true;
        tracing::info!(
            "zk: established epoch {} as leader with a quorum of NEWLEADER acks {:?}",
            l.epoch,
            l.newleader_acks
        );
        l.spec = spec;
        for (s, t) in tree_sessions {
            l.tracker.insert(s, now.plus_ms(t));
        }
        for (&p, v) in l.learners.iter_mut() {
            if v.stage == Stage::NewLeaderAcked {
                v.stage = Stage::UpToDate;
                cx.send(p, Msg::Zk(ZkMsg::UpToDate));
            }
        }
    }

    pub(super) fn leader_on_msg(&mut self, from: NodeId, m: ZkMsg, cx: &mut Ctx<'_>) {
        let now = cx.mono;
        let my_epoch = self.current_epoch;
        let my_last = self.log.last_zxid();
        // Planted bug zk_vote_ignores_zxid: the leader also trusts the
        // election and skips the "follower is ahead" check.
        let check_ahead = !self.bugs.vote_ignores_zxid;
        let Some(l) = self.leader() else { return };
        if let Some(v) = l.learners.get_mut(&from) {
            v.last_heard = now;
        }
        match m {
            ZkMsg::FollowerInfo {
                accepted_epoch,
                last_zxid,
            } => {
                // A new connection: the handshake starts over and acks given
                // on the old one no longer count.
                for acks in l.proposals.values_mut() {
                    acks.remove(&from);
                }
                l.learners.insert(
                    from,
                    LearnerView {
                        stage: Stage::Info,
                        round: 0,
                        last_heard: now,
                        last_zxid,
                    },
                );
                l.infos.insert(from, accepted_epoch);
                if l.epoch_accepted {
                    let e = l.epoch;
                    cx.send(from, Msg::Zk(ZkMsg::LeaderInfo { new_epoch: e }));
                } else {
                    self.leader_check_info_quorum(cx);
                }
            }
            ZkMsg::AckEpoch {
                current_epoch,
                last_zxid,
            } => {
                if l.learners.get(&from).map(|v| v.stage) != Some(Stage::Info) {
                    return;
                }
                // As Leader.waitForEpochAck: an ACKEPOCH of -1 (the epoch was
                // already accepted) is not counted, nor compared with ours.
                if let Some(current_epoch) = current_epoch {
                    if check_ahead
                        && !l.epoch_quorum
                        && (current_epoch > my_epoch
                            || (current_epoch == my_epoch && last_zxid > my_last))
                    {
                        // The learner is ahead of us: drop it (ZooKeeper's
                        // learner handler fails); without a quorum we time
                        // out and elect again, and its vote then wins.
                        tracing::warn!(
                            "zk: learner {from} is ahead (epoch {current_epoch}, zxid {last_zxid:#x} > epoch {my_epoch}, zxid {my_last:#x}); dropping it"
                        );
                        l.learners.remove(&from);
                        cx.disconnect(from);
                        return;
                    }
                    l.epoch_acks.insert(from);
                }
                if let Some(v) = l.learners.get_mut(&from) {
                    v.stage = Stage::EpochAcked;
                    v.last_zxid = last_zxid;
                }
                if l.epoch_quorum {
                    self.leader_sync_learner(from, cx);
                } else {
                    self.leader_check_epoch_quorum(cx);
                }
            }
            ZkMsg::Ack { zxid } => {
                let Some(v) = l.learners.get_mut(&from) else {
                    return;
                };
                if v.stage < Stage::Synced {
                    return;
                }
                if zxid == make_zxid(l.epoch, 0) {
                    if v.stage == Stage::Synced {
                        v.stage = Stage::NewLeaderAcked;
                        l.newleader_acks.insert(from);
                        cx.event(EventKind::ZkFollowerSynced, from);
                        if l.established {
                            v.stage = Stage::UpToDate;
                            cx.send(from, Msg::Zk(ZkMsg::UpToDate));
                        } else {
                            self.leader_check_newleader_quorum(cx);
                        }
                    }
                } else {
                    self.leader_ack(from, zxid, cx);
                }
            }
            ZkMsg::Ping { sessions, round } => {
                if let Some(v) = l.learners.get_mut(&from) {
                    v.round = v.round.max(round);
                }
                for s in sessions {
                    self.leader_touch(s, now);
                }
                self.leader_check_syncs(cx);
            }
            ZkMsg::Request { session, cxid, op } => {
                self.leader_request(session, cxid, op, from, cx)
            }
            ZkMsg::CreateSession { timeout_ms, client } => {
                self.leader_create_session(timeout_ms, from, client, cx)
            }
            ZkMsg::SyncReq { session, cxid } => {
                self.leader_sync(SyncTarget::Learner(from, session, cxid), cx)
            }
            ZkMsg::Revalidate { session } => {
                let valid = self.leader_revalidate(session, from, now);
                cx.send(from, Msg::Zk(ZkMsg::RevalidateReply { session, valid }));
            }
            _ => {}
        }
    }

    pub(super) fn leader_peer_lost(&mut self, peer: NodeId) {
        if let Some(l) = self.leader() {
            l.learners.remove(&peer);
        }
    }

    /// Counts an ACK and commits what has a quorum, in zxid order.
    pub(super) fn leader_ack(&mut self, from: NodeId, zxid: Zxid, cx: &mut Ctx<'_>) {
        let commit_alone = self.bugs.commit_without_quorum;
        let quorum = self.quorum();
        let me = self.id;
        let Some(l) = self.leader() else { return };
        if let Some(acks) = l.proposals.get_mut(&zxid) {
            acks.insert(from);
        }
        loop {
            let Some(l) = self.leader() else { return };
            let Some((&z, acks)) = l.proposals.first_key_value() else {
                break;
            };
            // Any quorum commits, the leader's own ack not required (the
            // planted bug commits on the leader's ack alone).
            let enough = if commit_alone {
                acks.contains(&me)
            } else {
                acks.len() >= quorum
            };
            if !enough {
                break;
            }
            l.proposals.remove(&z);
            for (&p, v) in &l.learners {
                if v.stage >= Stage::Synced {
                    cx.send(p, Msg::Zk(ZkMsg::Commit { zxid: z }));
                }
            }
            let Some(pos) = self.log.position(z) else {
                break;
            };
            let lt = self.log.entries[pos].clone();
            self.apply_committed(&lt, cx);
        }
        self.leader_check_syncs(cx);
    }

    /// The highest ping round a quorum (the leader included) has echoed.
    fn confirmed_round(&self) -> u64 {
        let Role::Leading(l) = &self.role else {
            return 0;
        };
        let mut rounds: Vec<u64> = l
            .learners
            .values()
            .filter(|v| v.stage >= Stage::NewLeaderAcked)
            .map(|v| v.round)
            .collect();
        rounds.push(u64::MAX);
        rounds.sort_unstable_by(|a, b| b.cmp(a));
        rounds.get(self.quorum() - 1).copied().unwrap_or(0)
    }

    /// Answers the syncs whose commit point is applied and whose leadership
    /// check (a ping round started after they arrived) a quorum confirmed.
    fn leader_check_syncs(&mut self, cx: &mut Ctx<'_>) {
        let confirmed = self.confirmed_round();
        let committed = self.tree.last_zxid();
        let Some(l) = self.leader() else { return };
        if l.pending_syncs.is_empty() {
            return;
        }
        let (done, rest): (Vec<_>, Vec<_>) = l
            .pending_syncs
            .drain(..)
            .partition(|(upto, round, _)| *upto <= committed && *round <= confirmed);
        l.pending_syncs = rest;
        for (point, _, t) in done {
            self.fire_sync(t, point, cx);
        }
    }

    fn fire_sync(&mut self, t: SyncTarget, point: Zxid, cx: &mut Ctx<'_>) {
        match t {
            SyncTarget::Learner(p, session, cxid) => cx.send(
                p,
                Msg::Zk(ZkMsg::SyncDone {
                    session,
                    cxid,
                    point,
                }),
            ),
            SyncTarget::Local(session, cxid) => self.on_sync_done(session, cxid, point, cx),
        }
    }

    /// Proposes a transaction; `session == 0` with a CreateSession body
    /// names the session after the zxid.
    fn leader_propose(&mut self, session: SessionId, cxid: u64, txn: Txn, cx: &mut Ctx<'_>) {
        let gen = self.role_gen;
        let Some(l) = self.leader() else { return };
        l.counter += 1;
        let zxid = make_zxid(l.epoch, l.counter);
        let session = if matches!(txn, Txn::CreateSession { .. }) {
            zxid
        } else {
            session
        };
        let lt = LoggedTxn {
            hdr: TxnHeader {
                zxid,
                session,
                cxid,
            },
            txn,
        };
        let _ = apply(&mut l.spec, &lt, &mut Vec::new());
        l.proposals.insert(zxid, BTreeSet::new());
        for (&p, v) in &l.learners {
            if v.stage >= Stage::Synced {
                cx.send(p, Msg::Zk(ZkMsg::Proposal(lt.clone())));
            }
        }
        self.log_append(lt, cx);
        self.log_fsync(cx);
        self.disk.after_all(Deferred::SelfAck { gen, zxid });
    }

    /// A client write (or close, `op == None`) from any server; `origin`
    /// is the server the client is connected to.
    pub(super) fn leader_request(
        &mut self,
        session: SessionId,
        cxid: u64,
        op: Option<ZkOp>,
        origin: NodeId,
        cx: &mut Ctx<'_>,
    ) {
        let Some(l) = self.leader() else { return };
        if !l.established {
            return;
        }
        // As SessionTrackerImpl.checkSession in PrepRequestProcessor: a
        // request through a server the session has left becomes an error
        // txn, applied as nothing, answered SESSIONMOVED.
        let owner = if l.spec.has_session(session) {
            *l.owners.entry(session).or_insert(origin)
        } else {
            origin
        };
        if owner != origin {
            tracing::info!(
                "zk: session {session:#x} moved to {owner}; request {cxid} through {origin} refused"
            );
            self.leader_propose(session, cxid, Txn::Error(ZkError::SessionMoved), cx);
            return;
        }
        let txn = match op {
            None => {
                if l.spec.has_session(session) {
                    l.closing.insert(session);
                    Txn::CloseSession
                } else {
                    Txn::Error(ZkError::SessionExpired)
                }
            }
            Some(op) => prep(&l.spec, session, &op),
        };
        self.leader_propose(session, cxid, txn, cx);
    }

    /// A new session for `client` connected to server `origin`.
    pub(super) fn leader_create_session(
        &mut self,
        timeout_ms: u64,
        origin: NodeId,
        client: NodeId,
        cx: &mut Ctx<'_>,
    ) {
        if !self.leader().is_some_and(|l| l.established) {
            return;
        }
        let t = Txn::CreateSession {
            timeout_ms,
            origin,
            client,
        };
        self.leader_propose(0, 0, t, cx);
    }

    /// Registers a sync point. A learner's sync is answered once every
    /// proposal issued so far has committed, as `Leader.processSync` does;
    /// a sync from a client of the leader itself at once (in its session's
    /// order), as ZooKeeper's request pipeline does. With
    /// `sync_quorum_confirmed` it also waits until a quorum has answered a
    /// ping sent after the sync arrived, so that a leader deposed without
    /// knowing it (e.g. while paused or cut off) cannot answer from its
    /// stale state; real ZooKeeper has no such round (ZOOKEEPER-1675).
    pub(super) fn leader_sync(&mut self, t: SyncTarget, cx: &mut Ctx<'_>) {
        let committed = self.tree.last_zxid();
        let confirm = self.cfg.sync_quorum_confirmed;
        let Some(l) = self.leader() else { return };
        if !l.established {
            return;
        }
        let upto = l.proposals.last_key_value().map_or(committed, |(z, _)| *z);
        if !confirm {
            match t {
                // A client's own sync on the leader is no LearnerSyncRequest:
                // it goes down the request pipeline like a read, answered
                // after its session's earlier requests (the FIFO queue),
                // from the leader's committed state.
                SyncTarget::Local(session, cxid) => self.on_sync_done(session, cxid, committed, cx),
                SyncTarget::Learner(..) => {
                    l.pending_syncs.push((upto, 0, t));
                    self.leader_check_syncs(cx);
                }
            }
            return;
        }
        l.ping_round += 1;
        let round = l.ping_round;
        for (&p, v) in &l.learners {
            if v.stage >= Stage::Synced {
                cx.send(
                    p,
                    Msg::Zk(ZkMsg::Ping {
                        sessions: vec![],
                        round,
                    }),
                );
            }
        }
        l.pending_syncs.push((upto, round, t));
        self.leader_check_syncs(cx);
    }

    /// A client reconnected its session through server `owner`: extends
    /// the session's deadline and makes `owner` the session's server (as
    /// ZooKeeper's revalidateSession and setOwner); false if the session
    /// is unknown or closing.
    pub(super) fn leader_revalidate(
        &mut self,
        session: SessionId,
        owner: NodeId,
        now: SimTime,
    ) -> bool {
        let valid = self.leader_touch(session, now);
        if valid {
            if let Some(l) = self.leader() {
                l.owners.insert(session, owner);
            }
        }
        valid
    }

    /// Extends a session's deadline; false if it is unknown or closing.
    pub(super) fn leader_touch(&mut self, session: SessionId, now: SimTime) -> bool {
        let timeout = self.tree.sessions().get(&session).copied();
        let Some(l) = self.leader() else { return false };
        if !l.established || l.closing.contains(&session) {
            return false;
        }
        match (l.tracker.get_mut(&session), timeout) {
            (Some(deadline), Some(t)) => {
                *deadline = (*deadline).max(now.plus_ms(t));
                true
            }
            _ => false,
        }
    }

    /// Session bookkeeping after a commit.
    pub(super) fn leader_after_apply(&mut self, lt: &LoggedTxn, cx: &mut Ctx<'_>) {
        let now = cx.mono;
        let Some(l) = self.leader() else { return };
        match &lt.txn {
            Txn::CreateSession {
                timeout_ms, origin, ..
            } => {
                l.tracker.insert(lt.hdr.session, now.plus_ms(*timeout_ms));
                l.owners.insert(lt.hdr.session, *origin);
            }
            Txn::CloseSession => {
                l.tracker.remove(&lt.hdr.session);
                l.closing.remove(&lt.hdr.session);
                l.owners.remove(&lt.hdr.session);
            }
            _ => {}
        }
    }

    pub(super) fn leader_tick(&mut self, cx: &mut Ctx<'_>) {
        let now = cx.mono;
        let tick = self.cfg.tick_ms;
        let init_ms = self.cfg.init_limit * tick;
        let sync_ms = self.cfg.sync_limit * tick;
        let quorum = self.quorum();
        cx.set_mono_timer_ms(TIMER_TICK, tick);
        let Some(l) = self.leader() else { return };
        if !l.established {
            if now.ms_since(l.started_at) > init_ms {
                self.go_looking(cx);
            }
            return;
        }
        let silent: Vec<NodeId> = l
            .learners
            .iter()
            .filter(|(_, v)| now.ms_since(v.last_heard) > sync_ms)
            .map(|(p, _)| *p)
            .collect();
        for p in silent {
            l.learners.remove(&p);
            cx.disconnect(p);
        }
        let synced = 1 + l
            .learners
            .values()
            .filter(|v| v.stage >= Stage::NewLeaderAcked)
            .count();
        if synced < quorum {
            self.go_looking(cx);
            return;
        }
        let round = l.ping_round;
        for (&p, v) in &l.learners {
            if v.stage >= Stage::Synced {
                cx.send(
                    p,
                    Msg::Zk(ZkMsg::Ping {
                        sessions: vec![],
                        round,
                    }),
                );
            }
        }
        let expired: Vec<SessionId> = l
            .tracker
            .iter()
            .filter(|(s, d)| **d <= now && !l.closing.contains(s))
            .map(|(s, _)| *s)
            .collect();
        for s in expired {
            tracing::info!("zk: session {s:#x} expired; proposing closeSession");
            cx.event(EventKind::ZkSessionExpired, cx.me);
            if let Some(l) = self.leader() {
                l.closing.insert(s);
            }
            self.leader_propose(s, 0, Txn::CloseSession, cx);
        }
    }
}
