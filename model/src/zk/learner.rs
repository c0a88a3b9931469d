//! The ZAB follower (learner): the handshake it runs on every new connection
//! to its leader (FOLLOWERINFO, ACKEPOCH after persisting acceptedEpoch,
//! sync, then on NEWLEADER: the synced txns fsynced, then currentEpoch
//! written and fsynced, then the ACK),
//! then broadcast (log, fsync, ACK each proposal; apply on COMMIT in zxid
//! order) and the leader liveness check.

use std::collections::BTreeMap;

use crate::msg::Msg;
use crate::node::{Ctx, NodeId};
use crate::probe::EventKind;
use crate::time::SimTime;
use crate::zk::server::{Deferred, Role, ZkServer, TIMER_TICK};
use crate::zk::txn::{apply, LoggedTxn};
use crate::zk::types::{zxid_epoch, SessionId, Zxid};
use crate::zk::wire::ZkMsg;

/// Where a follower is in the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// FOLLOWERINFO sent, waiting for LEADERINFO.
    Discovery,
    /// Receiving the sync.
    Syncing,
    /// UPTODATE received: serving clients.
    Broadcast,
}

/// Follower state for one connection to the leader.
pub(super) struct Follower {
    pub(super) leader: NodeId,
    pub(super) phase: Phase,
    pub(super) new_epoch: u64,
    last_heard: SimTime,
    /// Logged proposals awaiting COMMIT.
    pending: BTreeMap<Zxid, LoggedTxn>,
    /// Planted bug `zk_expiry_on_follower`: local session deadlines.
    local_expiry: BTreeMap<SessionId, SimTime>,
}

impl Follower {
    /// Whether the follower serves clients.
    pub(super) fn serving(&self) -> bool {
        self.phase == Phase::Broadcast
    }
}

impl ZkServer {
    fn follower(&mut self) -> Option<&mut Follower> {
        match &mut self.role {
            Role::Following(f) => Some(f),
            _ => None,
        }
    }

    pub(super) fn become_follower(&mut self, leader: NodeId, cx: &mut Ctx<'_>) {
        tracing::info!(
            "zk: FOLLOWING {leader} (accepted epoch {}, last zxid {:#x})",
            self.accepted_epoch,
            self.log.last_zxid()
        );
        self.role = Role::Following(Box::new(Follower {
            leader,
            phase: Phase::Discovery,
            new_epoch: 0,
            last_heard: cx.mono,
            pending: BTreeMap::new(),
            local_expiry: BTreeMap::new(),
        }));
        cx.send(
            leader,
            Msg::Zk(ZkMsg::FollowerInfo {
                accepted_epoch: self.accepted_epoch,
                last_zxid: self.log.last_zxid(),
            }),
        );
        cx.set_mono_timer_ms(TIMER_TICK, self.cfg.tick_ms);
    }

    fn send_after_durable(&mut self, to: NodeId, msg: ZkMsg) {
        self.disk.after_all(Deferred::Send {
            gen: self.role_gen,
            to,
            msg,
        });
    }

    pub(super) fn follower_on_msg(&mut self, m: ZkMsg, cx: &mut Ctx<'_>) {
        let now = cx.mono;
        let bugs = self.bugs;
        let last_logged = self.log.last_zxid();
        let Some(f) = self.follower() else { return };
        f.last_heard = now;
        let leader = f.leader;
        match m {
            ZkMsg::LeaderInfo { new_epoch } => {
                if f.phase != Phase::Discovery {
                    return;
                }
                f.new_epoch = new_epoch;
                if new_epoch < self.accepted_epoch {
                    // Learner.registerWithLeader throws here: this server
                    // cannot follow a leader whose epoch is below one it
                    // accepted, and waits for the next election.
                    tracing::info!(
                        "zk: leader's epoch {new_epoch} is less than accepted epoch {}",
                        self.accepted_epoch
                    );
                    self.go_looking(cx);
                    return;
                }
                // As Learner.registerWithLeader: a new epoch is accepted
                // (and persisted before the ack); one already accepted is
                // acknowledged with -1, which the leader does not count.
                let current_epoch = if new_epoch > self.accepted_epoch {
                    self.set_accepted_epoch(new_epoch, cx);
                    Some(self.current_epoch)
                } else {
                    tracing::info!("zk: epoch {new_epoch} already accepted; ACKEPOCH with -1");
                    None
                };
                let ack = ZkMsg::AckEpoch {
                    current_epoch,
                    last_zxid: self.log.last_zxid(),
                };
                self.send_after_durable(leader, ack);
            }
            ZkMsg::Sync { snap, trunc, txns } => {
                f.phase = Phase::Syncing;
                f.pending.clear();
                if let Some(tree) = &snap {
                    tracing::info!(
                        "zk: loading SNAP from leader {leader} at zxid {:#x} (log ended at {last_logged:#x})",
                        tree.last_zxid()
                    );
                }
                if bugs.newleader_ack_before_persist {
                    // Planted bug (ZOOKEEPER-3911): the synced history lives
                    // in memory only until a later snapshot; the log goes on
                    // from where it was (or restarts empty after a SNAP).
                    if let Some(tree) = snap {
                        let z = tree.last_zxid();
                        for req in self.log.reset(z) {
                            self.disk_op(req, cx);
                        }
                        self.base_tree = Some((*tree).clone());
                        self.tree = *tree;
                        self.trunc_gen += 1;
                    } else if let Some(t) = trunc {
                        if !self.truncate_log(t, cx) {
                            self.halt(format!("cannot truncate the log to {t:#x}"), cx);
                            return;
                        }
                    }
                    for t in txns {
                        if t.zxid() > self.tree.last_zxid() {
                            let _ = apply(&mut self.tree, &t, &mut Vec::new());
                        }
                    }
                    return;
                }
                if let Some(tree) = snap {
                    self.install_base(*tree, cx);
                } else if let Some(t) = trunc {
                    if !self.truncate_log(t, cx) {
                        self.halt(format!("cannot truncate the log to {t:#x}"), cx);
                        return;
                    }
                }
                for t in txns {
                    if t.zxid() > self.log.last_zxid() {
                        let _ = apply(&mut self.tree, &t, &mut Vec::new());
                        self.log_append(t, cx);
                    }
                }
                self.log_fsync(cx);
            }
            ZkMsg::NewLeader { zxid } => {
                let epoch = zxid_epoch(zxid);
                f.new_epoch = epoch;
                let ack = ZkMsg::Ack { zxid };
                if bugs.newleader_ack_before_persist {
                    self.set_current_epoch(epoch, cx);
                    cx.send(leader, Msg::Zk(ack));
                } else if bugs.epoch_before_txns {
                    // Planted bug (ZOOKEEPER-4643): currentEpoch is written
                    // and fsynced while the synced txns' fsync may still be
                    // in flight; a power loss can keep the epoch and lose
                    // the txns.
                    self.set_current_epoch(epoch, cx);
                    self.send_after_durable(leader, ack);
                } else {
                    // As Learner.syncWithLeader since ZOOKEEPER-4643/4646:
                    // the synced txns are fsynced, then currentEpoch is
                    // written and fsynced, then NEWLEADER is acked.
                    self.disk.after_all(Deferred::FollowerEpochCurrent {
                        gen: self.role_gen,
                        epoch,
                    });
                    self.send_after_durable(leader, ack);
                }
            }
            ZkMsg::UpToDate => {
                f.phase = Phase::Broadcast;
                if bugs.expiry_on_follower {
                    let deadlines: Vec<(SessionId, SimTime)> = self
                        .tree
                        .sessions()
                        .iter()
                        .map(|(s, t)| (*s, now.plus_ms(*t)))
                        .collect();
                    if let Some(f) = self.follower() {
                        f.local_expiry = deadlines.into_iter().collect();
                    }
                }
            }
            ZkMsg::Proposal(lt) => {
                let z = lt.zxid();
                if z <= last_logged {
                    return;
                }
                f.pending.insert(z, lt.clone());
                self.log_append(lt, cx);
                cx.event(EventKind::ZkProposalLogged, cx.me);
                self.log_fsync(cx);
                let ack = ZkMsg::Ack { zxid: z };
                if bugs.ack_before_fsync {
                    cx.send(leader, Msg::Zk(ack));
                } else {
                    self.send_after_durable(leader, ack);
                }
            }
            ZkMsg::Commit { zxid } => {
                // As FollowerZooKeeperServer.commit: a COMMIT with nothing
                // pending is ignored; one that is not for the next pending
                // proposal means the histories differ: stop.
                let Some((&next, _)) = f.pending.first_key_value() else {
                    tracing::warn!("zk: COMMIT {zxid:#x} without a pending proposal; ignored");
                    return;
                };
                if next != zxid {
                    self.halt(
                        format!(
                            "COMMIT of zxid {zxid:#x} but the next pending proposal is {next:#x}"
                        ),
                        cx,
                    );
                    return;
                }
                if let Some(lt) = f.pending.remove(&next) {
                    self.apply_committed(&lt, cx);
                }
            }
            ZkMsg::Ping { round, .. } => {
                let sessions = self.serving.take_touched();
                cx.send(leader, Msg::Zk(ZkMsg::Ping { sessions, round }));
            }
            ZkMsg::SyncDone {
                session,
                cxid,
                point,
            } => self.on_sync_done(session, cxid, point, cx),
            ZkMsg::RevalidateReply { session, valid } => self.on_revalidated(session, valid, cx),
            _ => {}
        }
    }

    /// Records a client's activity for the next ping to the leader.
    pub(super) fn follower_touch(&mut self, session: SessionId, now: SimTime) {
        let timeout = self.tree.sessions().get(&session).copied();
        self.serving.touch(session);
        if let (Some(f), Some(t)) = (self.follower(), timeout) {
            if let Some(d) = f.local_expiry.get_mut(&session) {
                *d = now.plus_ms(t);
            }
        }
    }

    /// Planted-bug bookkeeping after a commit.
    pub(super) fn follower_after_apply(&mut self, lt: &LoggedTxn, cx: &mut Ctx<'_>) {
        let now = cx.mono;
        if !self.bugs.expiry_on_follower {
            return;
        }
        let timeout = self.tree.sessions().get(&lt.hdr.session).copied();
        if let Some(f) = self.follower() {
            match timeout {
                Some(t) => {
                    f.local_expiry
                        .entry(lt.hdr.session)
                        .or_insert(now.plus_ms(t));
                }
                None => {
                    f.local_expiry.remove(&lt.hdr.session);
                }
            }
        }
    }

    pub(super) fn follower_tick(&mut self, cx: &mut Ctx<'_>) {
        let now = cx.mono;
        let tick = self.cfg.tick_ms;
        let limit_ms = tick
            * if self.follower().is_some_and(|f| f.serving()) {
                self.cfg.sync_limit
            } else {
                self.cfg.init_limit
            };
        cx.set_mono_timer_ms(TIMER_TICK, tick);
        let Some(f) = self.follower() else { return };
        if now.ms_since(f.last_heard) > limit_ms {
            self.go_looking(cx);
            return;
        }
        // Planted bug: expire sessions locally, without a transaction.
        let expired: Vec<SessionId> = f
            .local_expiry
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(s, _)| *s)
            .collect();
        for s in expired {
            if let Some(f) = self.follower() {
                f.local_expiry.remove(&s);
            }
            let z = self.tree.last_zxid();
            let mut changes = Vec::new();
            self.tree.apply_close_session(s, z, &mut changes);
            self.session_gone(s, cx);
        }
    }
}
