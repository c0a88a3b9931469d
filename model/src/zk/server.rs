//! The ZooKeeper server (a ZAB peer): durable state, recovery, the role
//! state machine (looking, following, leading) and the input dispatch.
//!
//! The leader and learner halves live in `leader` and `learner`, client
//! sessions in `serving`; this file holds what all roles share: the log,
//! the tree, the epochs, disk I/O with its durability barrier, commits, and
//! fast leader election.

use std::collections::{BTreeMap, BTreeSet};

use crate::bugs::BugSet;
use crate::disk::{DiskRequest, FileName};
use crate::msg::Msg;
use crate::node::{Ctx, Input, Node, NodeId};
use crate::zk::election::{Election, ElectionStep};
use crate::zk::leader::Leader;
use crate::zk::learner::Follower;
use crate::zk::serving::Serving;
use crate::zk::storage::{
    encode_epoch, encode_snapshot, recover, snap_file, DiskQueue, TxnLog, ACCEPTED_EPOCH_FILE,
    CURRENT_EPOCH_FILE, LOG_FILE,
};
use crate::zk::tree::DataTree;
use crate::zk::txn::{apply, LoggedTxn};
use crate::zk::types::{zxid_epoch, Zxid};
use crate::zk::wire::{PeerState, Vote, ZkMsg};
use crate::zk::{ZkBugs, ZkConfig};

/// Timer: re-send election notifications.
pub(super) const TIMER_ELECTION: u64 = 1;
/// Timer: finalize wait after an election quorum.
pub(super) const TIMER_FINALIZE: u64 = 2;
/// Timer: the role's tick (pings, liveness, session expiry).
pub(super) const TIMER_TICK: u64 = 3;

/// Work that waits for every disk operation issued before it.
#[derive(Debug)]
pub(super) enum Deferred {
    /// Send `msg` to `to` if still in role generation `gen`.
    Send { gen: u64, to: NodeId, msg: ZkMsg },
    /// Leader: its accepted epoch is durable; announce LEADERINFO.
    LeaderEpochAccepted { gen: u64 },
    /// Leader: its current epoch is durable; count its NEWLEADER ack.
    LeaderEpochCurrent { gen: u64 },
    /// Follower: the history synced before NEWLEADER is durable; write and
    /// fsync currentEpoch before anything queued after this (the ACK).
    FollowerEpochCurrent { gen: u64, epoch: u64 },
    /// Leader: its own log holds `zxid` durably.
    SelfAck { gen: u64, zxid: Zxid },
    /// A snapshot installed as a new base is durable: issue the held log
    /// operations (the reset to the new base and what followed).
    ReleaseLog,
    /// Write a periodic snapshot started at `zxid` (its log prefix is
    /// durable now). It is fuzzy: serialised now, from the tree as it is,
    /// which may hold txns applied since `zxid`.
    WriteSnap {
        gen: Zxid,
        zxid: Zxid,
        trunc_gen: u64,
        role_gen: u64,
        /// Planted bug `zk_snap_zxid_at_end`: the tree when the snapshot
        /// started, labelled with the zxid reached when it is written.
        early: Option<Box<DataTree>>,
    },
    /// A new periodic snapshot is durable: delete older ones.
    PruneSnaps { gen: Zxid },
    /// The epoch files read at start are durable: start electing.
    Recovered,
}

/// The role a server plays.
pub(super) enum Role {
    /// Before `Start`.
    Down,
    /// Electing.
    Looking(Election),
    /// Following a leader.
    Following(Box<Follower>),
    /// Leading.
    Leading(Box<Leader>),
}

/// A ZooKeeper server. Build with [`ZkServer::new`]; the host then delivers
/// `Input::Start` with the durable files.
pub struct ZkServer {
    pub(super) id: NodeId,
    pub(super) ensemble: Vec<NodeId>,
    pub(super) cfg: ZkConfig,
    pub(super) bugs: ZkBugs,
    pub(super) halted: bool,
    /// Why the server halted.
    pub(super) halt_reason: Option<String>,
    pub(super) accepted_epoch: u64,
    pub(super) current_epoch: u64,
    pub(super) log: TxnLog,
    /// The applied (committed, on a leader or follower) state.
    pub(super) tree: DataTree,
    /// The tree at the log's base, to rebuild after a truncation.
    pub(super) base_tree: Option<DataTree>,
    pub(super) snaps: BTreeSet<(Zxid, Zxid)>,
    pub(super) since_snap: u64,
    pub(super) trunc_gen: u64,
    pub(super) disk: DiskQueue<Deferred>,
    /// Log operations held until a newly installed base snapshot is durable.
    pub(super) log_hold: Option<Vec<DiskRequest>>,
    pub(super) role: Role,
    /// Bumped on every role change; stale deferred work is dropped.
    pub(super) role_gen: u64,
    pub(super) logical_clock: u64,
    /// The vote this server follows or leads by.
    pub(super) decided: Vote,
    pub(super) notify_ms: u64,
    pub(super) serving: Serving,
    /// Snapshot file names that existed at start (rewritten only after a
    /// delete, so a stale longer file cannot leave trailing bytes).
    pub(super) stale_snaps: BTreeSet<FileName>,
    /// FOLLOWERINFO that arrived before we decided to lead (a learner that
    /// decided first); handled if we become leader, refused otherwise.
    pub(super) early_infos: BTreeMap<NodeId, ZkMsg>,
    /// The zxid of the snapshot this server loaded at start (or installed
    /// since): its in-memory committed log holds nothing before it.
    pub(super) mem_floor: Zxid,
}

impl ZkServer {
    /// A server `id` of `ensemble` (all server ids, itself included).
    pub fn new(id: NodeId, ensemble: Vec<NodeId>, config: ZkConfig, bugs: &BugSet) -> ZkServer {
        assert!(ensemble.contains(&id), "server must be in its ensemble");
        ZkServer {
            id,
            ensemble,
            notify_ms: config.notify_ms,
            cfg: config,
            bugs: ZkBugs::from_set(bugs),
            halted: false,
            halt_reason: None,
            accepted_epoch: 0,
            current_epoch: 0,
            log: TxnLog::default(),
            tree: DataTree::new(),
            base_tree: None,
            snaps: BTreeSet::new(),
            since_snap: 0,
            trunc_gen: 0,
            disk: DiskQueue::default(),
            log_hold: None,
            role: Role::Down,
            role_gen: 0,
            logical_clock: 0,
            decided: Vote {
                leader: id,
                zxid: 0,
                peer_epoch: 0,
            },
            serving: Serving::default(),
            early_infos: BTreeMap::new(),
            stale_snaps: BTreeSet::new(),
            mem_floor: 0,
        }
    }

    /// The applied data tree (for checks after a run).
    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    /// The last logged zxid.
    pub fn last_logged_zxid(&self) -> Zxid {
        self.log.last_zxid()
    }

    /// The (accepted, current) epochs.
    pub fn epochs(&self) -> (u64, u64) {
        (self.accepted_epoch, self.current_epoch)
    }

    /// Whether this server leads an established epoch.
    pub fn is_leader(&self) -> bool {
        matches!(&self.role, Role::Leading(l) if l.established)
    }

    /// Whether this server serves clients (established leader, or follower
    /// after UPTODATE).
    pub fn is_serving(&self) -> bool {
        match &self.role {
            Role::Leading(l) => l.established,
            Role::Following(f) => f.serving(),
            _ => false,
        }
    }

    /// Whether the server stopped itself (a disk error, or state it
    /// refuses to run on: see [`ZkServer::halt_reason`]).
    pub fn is_halted(&self) -> bool {
        self.halted
    }

    /// Why the server stopped itself, if it did.
    pub fn halt_reason(&self) -> Option<&str> {
        self.halt_reason.as_deref()
    }

    /// Stops the server for good (fail-stop, as ZooKeeper exits): every
    /// later input is ignored; the host restarts the process from its disk.
    pub(super) fn halt(&mut self, reason: impl Into<String>, cx: &mut Ctx<'_>) {
        let reason = reason.into();
        tracing::error!("zk: halting: {reason}");
        self.halted = true;
        cx.halt(format!("zk server {}: {reason}", self.id));
        self.halt_reason = Some(reason);
    }

    pub(super) fn quorum(&self) -> usize {
        self.ensemble.len() / 2 + 1
    }

    pub(super) fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let me = self.id;
        self.ensemble.iter().copied().filter(move |&p| p != me)
    }

    // ----- disk -----

    /// Issues a disk request (log requests are held while a new base
    /// snapshot is not yet durable).
    pub(super) fn disk_op(&mut self, req: DiskRequest, cx: &mut Ctx<'_>) {
        if req.file() == LOG_FILE {
            if let Some(held) = self.log_hold.as_mut() {
                held.push(req);
                return;
            }
        }
        let op = self.disk.issue();
        cx.disk(op, req);
    }

    pub(super) fn log_append(&mut self, t: LoggedTxn, cx: &mut Ctx<'_>) {
        let req = self.log.append(t);
        self.disk_op(req, cx);
    }

    pub(super) fn log_fsync(&mut self, cx: &mut Ctx<'_>) {
        self.disk_op(
            DiskRequest::Fsync {
                file: LOG_FILE.into(),
            },
            cx,
        );
    }

    /// Writes a whole snapshot file (deleting a stale one of that name).
    fn write_snap_file(&mut self, file: FileName, data: Vec<u8>, cx: &mut Ctx<'_>) {
        if self.stale_snaps.remove(&file) {
            self.disk_op(DiskRequest::Delete { file: file.clone() }, cx);
        }
        self.disk_op(
            DiskRequest::WriteAt {
                file: file.clone(),
                offset: 0,
                data,
            },
            cx,
        );
        self.fsync_file(&file, cx);
    }

    fn fsync_file(&mut self, file: &str, cx: &mut Ctx<'_>) {
        self.disk_op(DiskRequest::Fsync { file: file.into() }, cx);
    }

    /// Persists an epoch file (skipped under `zk_epoch_not_persisted`).
    pub(super) fn persist_epoch(&mut self, file: &str, epoch: u64, cx: &mut Ctx<'_>) {
        if self.bugs.epoch_not_persisted {
            return;
        }
        self.disk_op(
            DiskRequest::Append {
                file: file.into(),
                data: encode_epoch(epoch),
            },
            cx,
        );
        self.fsync_file(file, cx);
    }

    pub(super) fn set_accepted_epoch(&mut self, e: u64, cx: &mut Ctx<'_>) {
        self.accepted_epoch = e;
        self.persist_epoch(ACCEPTED_EPOCH_FILE, e, cx);
    }

    pub(super) fn set_current_epoch(&mut self, e: u64, cx: &mut Ctx<'_>) {
        self.current_epoch = e;
        self.persist_epoch(CURRENT_EPOCH_FILE, e, cx);
    }

    /// Makes `tree` the new base: writes it as `snap.<z>.<z>`, and once that
    /// is durable resets the log to `Base(z)` (log writes wait meanwhile).
    pub(super) fn install_base(&mut self, tree: DataTree, cx: &mut Ctx<'_>) {
        let z = tree.last_zxid();
        let file: FileName = snap_file(z, z);
        self.write_snap_file(file, encode_snapshot(&tree), cx);
        self.snaps.insert((z, z));
        let mut held = self.log_hold.take().unwrap_or_default();
        held.extend(self.log.reset(z));
        held.push(DiskRequest::Fsync {
            file: LOG_FILE.into(),
        });
        self.log_hold = Some(held);
        self.disk.after_all(Deferred::ReleaseLog);
        self.base_tree = Some(tree.clone());
        self.tree = tree;
        self.trunc_gen += 1;
        self.since_snap = 0;
        self.mem_floor = z;
    }

    /// Where the txn log still counts as present: the log before the oldest
    /// of the `snap_retain_count` newest snapshots of this log is purged
    /// (`autopurge.snapRetainCount`). The model keeps those entries for
    /// TRUNC but never sends them as a DIFF.
    pub(super) fn log_floor(&self) -> Zxid {
        let gen = self.log.base;
        let keep = self.cfg.snap_retain_count.max(1) as usize;
        let mine: Vec<Zxid> = self
            .snaps
            .iter()
            .filter(|(g, _)| *g == gen)
            .map(|(_, z)| *z)
            .collect();
        if mine.len() < keep {
            return gen;
        }
        mine[mine.len() - keep].max(gen)
    }

    fn on_disk_done(&mut self, op: u64, cx: &mut Ctx<'_>) {
        self.disk.done(op);
        while let Some(a) = self.disk.pop_ready() {
            self.run_deferred(a, cx);
        }
    }

    fn run_deferred(&mut self, a: Deferred, cx: &mut Ctx<'_>) {
        match a {
            Deferred::Send { gen, to, msg } if gen == self.role_gen => {
                cx.send(to, Msg::Zk(msg));
            }
            Deferred::LeaderEpochAccepted { gen } if gen == self.role_gen => {
                self.leader_epoch_accepted(cx)
            }
            Deferred::LeaderEpochCurrent { gen } if gen == self.role_gen => {
                self.leader_epoch_current(cx)
            }
            Deferred::FollowerEpochCurrent { gen, epoch } if gen == self.role_gen => {
                self.set_current_epoch(epoch, cx);
                // What was queued behind (the NEWLEADER ack) now also waits
                // for the epoch file.
                self.disk.rebarrier();
            }
            Deferred::SelfAck { gen, zxid } if gen == self.role_gen => {
                self.leader_ack(self.id, zxid, cx)
            }
            Deferred::ReleaseLog => {
                if let Some(held) = self.log_hold.take() {
                    for req in held {
                        self.disk_op(req, cx);
                    }
                    self.disk.rebarrier();
                }
            }
            Deferred::WriteSnap {
                gen,
                zxid,
                trunc_gen,
                role_gen,
                early,
            } if trunc_gen == self.trunc_gen
                && role_gen == self.role_gen
                && gen == self.log.base
                && !self.snaps.contains(&(gen, zxid)) =>
            {
                // Fuzzy: the tree now, labelled with the zxid the snapshot
                // started at. (Only in the same role: going LOOKING applies
                // logged txns that may never commit.)
                let (zxid, bytes) = match early {
                    // Planted bug: the contents at the start, the label at
                    // the end; replay skips what lies between.
                    Some(t) => {
                        let end = self.tree.last_zxid();
                        (end, encode_snapshot(&t.labelled_at(end)))
                    }
                    None => (zxid, encode_snapshot(&self.tree.labelled_at(zxid))),
                };
                if self.snaps.contains(&(gen, zxid)) {
                    return;
                }
                self.write_snap_file(snap_file(gen, zxid), bytes, cx);
                self.snaps.insert((gen, zxid));
                self.disk.after_all(Deferred::PruneSnaps { gen });
            }
            Deferred::Recovered => self.go_looking(cx),
            Deferred::PruneSnaps { gen } => {
                let mut same: Vec<Zxid> = self
                    .snaps
                    .iter()
                    .filter(|(g, z)| *g == gen && *z != gen)
                    .map(|(_, z)| *z)
                    .collect();
                same.sort_unstable();
                let drop = same
                    .len()
                    .saturating_sub(self.cfg.snap_retain_count.max(1) as usize);
                for z in same.into_iter().take(drop) {
                    self.snaps.remove(&(gen, z));
                    self.disk_op(
                        DiskRequest::Delete {
                            file: snap_file(gen, z),
                        },
                        cx,
                    );
                }
            }
            _ => {}
        }
    }

    /// Drops logged entries after `t` and rebuilds the tree (TRUNC).
    pub(super) fn truncate_log(&mut self, t: Zxid, cx: &mut Ctx<'_>) -> bool {
        if t < self.log.base {
            return false;
        }
        let Some(base) = self.base_tree.clone() else {
            return false;
        };
        tracing::info!(
            "zk: TRUNC to zxid {t:#x} (log ended at {:#x})",
            self.log.last_zxid()
        );
        let req = self.log.truncate_after(t);
        self.disk_op(req, cx);
        self.log_fsync(cx);
        self.trunc_gen += 1;
        // Snapshots stay, as ZooKeeper's FileTxnSnapLog.truncateLog
        // truncates the txn log only. Faithfully none lies past `t`: a
        // periodic snapshot holds committed txns only, which the leader's
        // history holds too. A snapshot of an uncommitted tail (planted bug
        // `zk_trunc_keeps_snapshot`, ZooKeeper's loadData snapshot) stays
        // too, and a restart loads it.
        if let Some(&(_, z)) = self
            .snaps
            .iter()
            .rev()
            .find(|(g, z)| *g == self.log.base && *z > t)
        {
            tracing::warn!("zk: TRUNC to {t:#x} leaves a snapshot at {z:#x} past it");
        }
        let mut tree = base;
        for e in self.log.entries.clone() {
            let _ = apply(&mut tree, &e, &mut Vec::new());
        }
        self.tree = tree;
        true
    }

    /// Applies a committed transaction: tree, client replies and watches,
    /// session tracking, periodic snapshots.
    pub(super) fn apply_committed(&mut self, lt: &LoggedTxn, cx: &mut Ctx<'_>) {
        if lt.zxid() <= self.tree.last_zxid() {
            return;
        }
        let mut changes = Vec::new();
        let result = apply(&mut self.tree, lt, &mut changes);
        self.leader_after_apply(lt, cx);
        self.follower_after_apply(lt, cx);
        self.after_apply(lt, result, &changes, cx);
        self.since_snap += 1;
        // BUGGIFY: a snapshot early (ZooKeeper randomises snapCount too).
        let early = self.since_snap * 4 >= self.cfg.snap_count
            && self.since_snap < self.cfg.snap_count
            && cx.buggify("zk.snapshot.early");
        if self.since_snap >= self.cfg.snap_count || early {
            self.since_snap = 0;
            self.disk.after_all(Deferred::WriteSnap {
                gen: self.log.base,
                zxid: self.tree.last_zxid(),
                trunc_gen: self.trunc_gen,
                role_gen: self.role_gen,
                early: self
                    .bugs
                    .snap_zxid_at_end
                    .then(|| Box::new(self.tree.clone())),
            });
        }
    }

    // ----- roles and election -----

    fn own_vote(&self) -> Vote {
        Vote {
            leader: self.id,
            zxid: self.log.last_zxid(),
            peer_epoch: self.current_epoch,
        }
    }

    /// Leaves the current role: closes client sessions and ZAB connections.
    fn leave_role(&mut self, cx: &mut Ctx<'_>) {
        self.role_gen += 1;
        self.serving.close_all(cx);
        match &self.role {
            Role::Following(f) => cx.disconnect(f.leader),
            Role::Leading(l) => {
                for &p in l.learners.keys() {
                    cx.disconnect(p);
                }
            }
            _ => {}
        }
        cx.cancel_timer(TIMER_TICK);
        cx.cancel_timer(TIMER_FINALIZE);
        cx.cancel_timer(TIMER_ELECTION);
    }

    /// Goes back to leader election.
    pub(super) fn go_looking(&mut self, cx: &mut Ctx<'_>) {
        tracing::info!("zk: LOOKING (election round {})", self.logical_clock + 1);
        self.leave_role(cx);
        // The in-memory tree catches up with everything logged, as a restart
        // would (the next leader's sync truncates what must go).
        for e in self.log.after(self.tree.last_zxid()).to_vec() {
            let _ = apply(&mut self.tree, &e, &mut Vec::new());
        }
        self.logical_clock += 1;
        let own = self.own_vote();
        self.role = Role::Looking(Election::new(
            self.id,
            self.logical_clock,
            own,
            self.bugs.vote_ignores_zxid,
        ));
        self.notify_ms = self.cfg.notify_ms;
        self.broadcast_vote(cx);
        cx.set_mono_timer_ms(TIMER_ELECTION, self.notify_ms);
    }

    fn my_notification(&self) -> ZkMsg {
        match &self.role {
            Role::Looking(e) => ZkMsg::Notification {
                vote: e.vote,
                election_epoch: e.logical_clock,
                state: PeerState::Looking,
            },
            Role::Following(_) => ZkMsg::Notification {
                vote: self.decided,
                election_epoch: self.logical_clock,
                state: PeerState::Following,
            },
            _ => ZkMsg::Notification {
                vote: self.decided,
                election_epoch: self.logical_clock,
                state: PeerState::Leading,
            },
        }
    }

    fn broadcast_vote(&mut self, cx: &mut Ctx<'_>) {
        let n = self.my_notification();
        for p in self.peers().collect::<Vec<_>>() {
            cx.send(p, Msg::Zk(n.clone()));
        }
    }

    fn on_notification(
        &mut self,
        from: NodeId,
        vote: Vote,
        election_epoch: u64,
        state: PeerState,
        cx: &mut Ctx<'_>,
    ) {
        let own = self.own_vote();
        let quorum = self.quorum();
        let me = self.id;
        let Role::Looking(e) = &mut self.role else {
            if state == PeerState::Looking {
                cx.send(from, Msg::Zk(self.my_notification()));
            }
            return;
        };
        match e.on_notification(me, from, vote, election_epoch, state, own, quorum) {
            ElectionStep::Nothing => {}
            ElectionStep::Broadcast => self.broadcast_vote(cx),
            ElectionStep::ReplyTo(p) => cx.send(p, Msg::Zk(self.my_notification())),
            ElectionStep::QuorumReached { changed } => {
                if changed {
                    self.broadcast_vote(cx);
                }
                cx.set_mono_timer_ms(TIMER_FINALIZE, self.cfg.finalize_wait_ms);
            }
            ElectionStep::Join(v) => self.decide(v, cx),
        }
    }

    fn decide(&mut self, v: Vote, cx: &mut Ctx<'_>) {
        if let Role::Looking(e) = &self.role {
            self.logical_clock = e.logical_clock;
        }
        self.decided = v;
        self.role_gen += 1;
        cx.cancel_timer(TIMER_ELECTION);
        cx.cancel_timer(TIMER_FINALIZE);
        let early = std::mem::take(&mut self.early_infos);
        if v.leader == self.id {
            self.become_leader(cx);
            for (p, m) in early {
                self.leader_on_msg(p, m, cx);
            }
        } else {
            for p in early.into_keys() {
                cx.disconnect(p);
            }
            self.become_follower(v.leader, cx);
        }
    }

    fn on_timer(&mut self, timer: u64, cx: &mut Ctx<'_>) {
        match timer {
            TIMER_ELECTION => {
                if matches!(self.role, Role::Looking(_)) {
                    self.broadcast_vote(cx);
                    self.notify_ms = (self.notify_ms * 2).min(self.cfg.max_notify_ms);
                    cx.set_mono_timer_ms(TIMER_ELECTION, self.notify_ms);
                }
            }
            TIMER_FINALIZE => {
                if let Role::Looking(e) = &self.role {
                    if e.has_quorum(self.quorum()) {
                        let v = e.vote;
                        self.decide(v, cx);
                    }
                }
            }
            TIMER_TICK => match &self.role {
                Role::Leading(_) => self.leader_tick(cx),
                Role::Following(_) => self.follower_tick(cx),
                _ => {}
            },
            _ => {}
        }
    }

    fn on_peer_msg(&mut self, from: NodeId, m: ZkMsg, cx: &mut Ctx<'_>) {
        if let ZkMsg::Notification {
            vote,
            election_epoch,
            state,
        } = m
        {
            self.on_notification(from, vote, election_epoch, state, cx);
            return;
        }
        match &self.role {
            Role::Leading(_) => self.leader_on_msg(from, m, cx),
            Role::Following(f) if f.leader == from => self.follower_on_msg(m, cx),
            Role::Looking(_) if matches!(m, ZkMsg::FollowerInfo { .. }) => {
                // A learner decided before us; we may be about to lead.
                self.early_infos.insert(from, m);
            }
            _ => {
                if matches!(m, ZkMsg::FollowerInfo { .. }) {
                    // Not leading: refuse the learner connection.
                    cx.disconnect(from);
                }
            }
        }
    }

    fn on_peer_lost(&mut self, peer: NodeId, cx: &mut Ctx<'_>) {
        self.early_infos.remove(&peer);
        match &self.role {
            Role::Following(f) if f.leader == peer => self.go_looking(cx),
            Role::Leading(_) => self.leader_peer_lost(peer),
            _ => {}
        }
    }

    fn start(&mut self, files: BTreeMap<FileName, Vec<u8>>, cx: &mut Ctx<'_>) {
        self.stale_snaps = files
            .keys()
            .filter(|f| f.starts_with("snap."))
            .cloned()
            .collect();
        let r = match recover(&files) {
            Ok(r) => r,
            Err(e) => {
                // As ZooKeeper refuses to start on these: no silent repair.
                self.halt(format!("refusing to start: {e}"), cx);
                return;
            }
        };
        for req in r.fixups {
            self.disk_op(req, cx);
        }
        self.log = r.log;
        self.mem_floor = r.loaded_zxid;
        self.tree = r.tree;
        self.base_tree = r.base_tree;
        self.snaps = r.snaps;
        if r.rebase {
            let t = self.tree.clone();
            self.install_base(t, cx);
            if !r.replay.is_empty() {
                for e in r.replay {
                    let _ = apply(&mut self.tree, &e, &mut Vec::new());
                    self.log_append(e, cx);
                }
                self.log_fsync(cx);
            }
        }
        if self.bugs.trunc_keeps_snapshot {
            // Planted bug (ZOOKEEPER-1549): as ZooKeeper 3.4's loadData, a
            // snapshot of everything replayed, uncommitted tail included.
            let (gen, z) = (self.log.base, self.tree.last_zxid());
            if z > gen && !self.snaps.contains(&(gen, z)) {
                let bytes = encode_snapshot(&self.tree);
                self.write_snap_file(snap_file(gen, z), bytes, cx);
                self.snaps.insert((gen, z));
            }
        }
        let derived = zxid_epoch(self.log.last_zxid().max(self.tree.last_zxid()));
        if self.bugs.epoch_not_persisted {
            self.accepted_epoch = derived;
            self.current_epoch = derived;
        } else {
            // An epoch file whose last record is torn reads back as an
            // older epoch; the log proves we already followed a leader of
            // `derived`, so never go below it. (Here the model's follower
            // may log a proposal of the new epoch while its currentEpoch
            // write is still in flight, which ZooKeeper's single sync
            // thread never does, so this is not refused.)
            self.current_epoch = r.current_epoch.unwrap_or(derived).max(derived);
            self.accepted_epoch = r
                .accepted_epoch
                .unwrap_or(self.current_epoch)
                .max(self.current_epoch);
        }
        // ZooKeeper writes an epoch file atomically (AtomicFileWritingIdiom:
        // a temporary file, fsynced, renamed over it), so the value it
        // reads back at start is durable. Here an epoch write still in the
        // page cache survives a process kill and reads back before it is
        // durable; a server that voted and acknowledged by it, then lost
        // power, would come back with currentEpoch above acceptedEpoch.
        // So the files read are made durable before the server acts on
        // them.
        for file in [ACCEPTED_EPOCH_FILE, CURRENT_EPOCH_FILE] {
            if files.contains_key(file) {
                self.fsync_file(file, cx);
            }
        }
        self.disk.after_all(Deferred::Recovered);
    }
}

impl Node for ZkServer {
    fn step(&mut self, input: Input, cx: &mut Ctx<'_>) {
        if self.halted {
            return;
        }
        match input {
            Input::Start { files } => self.start(files, cx),
            // Also while down: a start waits for its epoch files' fsync.
            Input::Disk { op, result } => match result {
                Ok(_) => self.on_disk_done(op, cx),
                // As ZooKeeper does on a failed log write or fsync.
                Err(e) => self.halt(format!("disk error: {e}"), cx),
            },
            _ if matches!(self.role, Role::Down) => {}
            Input::Message {
                from,
                msg: Msg::Zk(m),
            } => {
                if self.ensemble.contains(&from) {
                    self.on_peer_msg(from, m, cx);
                } else {
                    self.on_client_msg(from, m, cx);
                }
            }
            Input::ConnLost { peer } => {
                if self.ensemble.contains(&peer) {
                    self.on_peer_lost(peer, cx);
                } else {
                    self.on_client_lost(peer);
                }
            }
            Input::Timer { timer } => self.on_timer(timer, cx),
            Input::Message { .. } | Input::ConnUp { .. } | Input::Client { .. } => {}
        }
        // Deferred work queued while no disk operation was pending is due now.
        while !self.halted {
            let Some(a) = self.disk.pop_ready() else {
                break;
            };
            self.run_deferred(a, cx);
        }
    }

    fn is_leader(&self) -> bool {
        ZkServer::is_leader(self)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn role(&self) -> String {
        let r = match &self.role {
            Role::Down => "down".to_string(),
            Role::Looking(e) => format!("looking r{}", e.logical_clock),
            Role::Following(f) => {
                format!("follower of {} e{} {:?}", f.leader, f.new_epoch, f.phase)
            }
            Role::Leading(l) => format!(
                "leader e{}{}",
                l.epoch,
                if l.established { "" } else { " (syncing)" }
            ),
        };
        format!(
            "{r} zxid={:#x} logged={:#x}",
            self.tree.last_zxid(),
            self.log.last_zxid()
        )
    }
}
