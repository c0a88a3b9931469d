//! One rebalance of the ZooKeeper-era consumer, as 0.8's
//! `ZKRebalancerListener.rebalance`: list the registrations, release
//! (commit, stop fetching, delete our owner znodes), claim the new range,
//! read its offsets; a claim that finds another member's znode fails the
//! attempt, which is retried after `rebalance_backoff_ms`.

use std::collections::{BTreeMap, BTreeSet};

use super::znodes::{ids_dir, parse_offset, range_assignment};
use super::{CommitKind, Purpose, Reb, ZkConsumer, TIMER_BACKOFF};
use crate::group::types::AssignedPartition;
use crate::node::Ctx;
use crate::time::SimTime;
use crate::zk::{CreateMode, ZkError, ZkOp, ZkReply, ZkResponse};

/// The phases of one rebalance attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Listing the registrations (and leaving a child watch).
    List,
    /// Committing, deleting our owner znodes.
    Release,
    /// Creating the owner znodes of the new range.
    Claim,
    /// Reading the offsets znodes of the new range.
    Offsets,
}

/// One rebalance attempt.
#[derive(Clone, Debug)]
pub(super) struct Attempt {
    pub(super) phase: Phase,
    /// ZooKeeper answers the phase still waits for.
    pub(super) waiting: usize,
    /// This member's new range.
    pub(super) range: Vec<u32>,
    /// Owner znodes this attempt holds (created, or found ours).
    pub(super) claimed: BTreeSet<u32>,
    /// Partitions taken over another member's owner znode (the bug).
    pub(super) foreign: BTreeSet<u32>,
    /// A claim or read failed: release and try again.
    pub(super) failed: bool,
    /// Committed offsets read in the offsets phase.
    pub(super) committed: BTreeMap<u32, Option<u64>>,
    /// The `cversion` of the ids directory in the listing the range was
    /// computed from: the group-wide round this attempt belongs to.
    pub(super) membership: i32,
    /// When the offsets znodes were read.
    pub(super) offsets_asked: SimTime,
}

/// A step of a rebalance attempt awaiting its ZooKeeper answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    List,
    ReleaseDelete(u32),
    /// Reading an owner znode this session may have created.
    ReleaseCheck(u32),
    ReleaseCheckedDelete(u32),
    Claim(u32),
    /// Reading an owner znode after a create found it (`exists`) or lost
    /// its answer.
    ClaimCheck(u32, bool),
    OffsetRead(u32),
    OffsetCreate(u32),
    OffsetReread(u32),
}

impl ZkConsumer {
    pub(super) fn maybe_start_rebalance(&mut self, cx: &mut Ctx<'_>) {
        if self.reb != Reb::Wanted || self.registered_session == 0 || self.busy() {
            return;
        }
        if !self.session_ok() {
            self.on_session_lost(cx);
            return;
        }
        self.att += 1;
        self.reb = Reb::Running;
        self.reb_again = false;
        self.attempt = Some(Attempt {
            phase: Phase::List,
            waiting: 0,
            range: Vec::new(),
            claimed: BTreeSet::new(),
            foreign: BTreeSet::new(),
            failed: false,
            committed: BTreeMap::new(),
            membership: 0,
            offsets_asked: SimTime::ZERO,
        });
        let op = ZkOp::GetChildren {
            path: ids_dir(&self.group),
            watch: true,
        };
        self.reb_call(op, Step::List, cx);
    }

    /// Handles one answer of the running attempt.
    pub(super) fn on_step(&mut self, step: Step, r: ZkReply, cx: &mut Ctx<'_>) {
        let me = self.consumer_id.clone();
        let session = self.registered_session;
        let bug = self.owner_race;
        let p_of = match step {
            Step::List => 0,
            Step::ReleaseDelete(p)
            | Step::ReleaseCheck(p)
            | Step::ReleaseCheckedDelete(p)
            | Step::Claim(p)
            | Step::ClaimCheck(p, _)
            | Step::OffsetRead(p)
            | Step::OffsetCreate(p)
            | Step::OffsetReread(p) => p,
        };
        let owner_path = self.owner_path(p_of);
        let offset_path = self.offset_path(p_of);
        let partitions = self.partitions;
        let Some(a) = self.attempt.as_mut() else {
            return;
        };
        a.waiting -= 1;
        let lost = r.result == Err(ZkError::ConnectionLoss);
        let mut next: Option<(ZkOp, Step)> = None;
        match step {
            Step::List => match r.result {
                Ok(ZkResponse::Children(ids, stat)) if ids.contains(&me) => {
                    a.range = range_assignment(&ids, &me, partitions);
                    a.membership = stat.cversion;
                }
                _ => a.failed = true,
            },
            Step::ReleaseDelete(p) | Step::ReleaseCheckedDelete(p) => {
                if lost {
                    self.maybe_mine.insert(p);
                }
            }
            Step::ReleaseCheck(p) => match r.result {
                Ok(ZkResponse::Data(d, st))
                    if d == me.as_bytes() && st.ephemeral_owner == session =>
                {
                    let op = ZkOp::Delete {
                        path: owner_path,
                        version: st.version,
                    };
                    next = Some((op, Step::ReleaseCheckedDelete(p)));
                }
                Err(ZkError::ConnectionLoss) => {
                    self.maybe_mine.insert(p);
                }
                _ => {}
            },
            Step::Claim(p) => match r.result {
                Ok(_) => {
                    a.claimed.insert(p);
                }
                Err(ZkError::NodeExists) | Err(ZkError::ConnectionLoss) => {
                    let op = ZkOp::GetData {
                        path: owner_path,
                        watch: false,
                    };
                    next = Some((op, Step::ClaimCheck(p, !lost)));
                }
                Err(_) => a.failed = true,
            },
            Step::ClaimCheck(p, exists) => match r.result {
                Ok(ZkResponse::Data(d, st))
                    if d == me.as_bytes() && st.ephemeral_owner == session =>
                {
                    a.claimed.insert(p);
                }
                Err(ZkError::ConnectionLoss) => {
                    self.maybe_mine.insert(p);
                    a.failed = true;
                }
                // Another member's znode (its release or its session's
                // expiry is still to come), or gone already.
                _ if exists && bug => {
                    a.foreign.insert(p);
                }
                _ => a.failed = true,
            },
            Step::OffsetRead(p) | Step::OffsetReread(p) => match r.result {
                Ok(ZkResponse::Data(d, _)) => {
                    a.committed.insert(p, parse_offset(&d));
                }
                Err(ZkError::NoNode) if step == Step::OffsetRead(p) => {
                    let op = ZkOp::Create {
                        path: offset_path,
                        data: Vec::new(),
                        mode: CreateMode::Persistent,
                    };
                    next = Some((op, Step::OffsetCreate(p)));
                }
                _ => a.failed = true,
            },
            Step::OffsetCreate(p) => match r.result {
                Ok(_) => {
                    a.committed.insert(p, None);
                }
                Err(ZkError::NodeExists) => {
                    let op = ZkOp::GetData {
                        path: offset_path,
                        watch: false,
                    };
                    next = Some((op, Step::OffsetReread(p)));
                }
                _ => a.failed = true,
            },
        }
        if let Some((op, step)) = next {
            self.reb_call(op, step, cx);
        }
    }

    /// Moves the running attempt on once its phase has all its answers.
    pub(super) fn reb_progress(&mut self, cx: &mut Ctx<'_>) {
        loop {
            let Some(a) = self.attempt.as_ref() else {
                return;
            };
            if a.waiting > 0 {
                return;
            }
            if !self.session_ok() {
                self.on_session_lost(cx);
                return;
            }
            match (a.phase, a.failed) {
                (Phase::List | Phase::Claim | Phase::Offsets, true) => {
                    self.fail_attempt(cx);
                    return;
                }
                (Phase::List, false) => self.begin_release(cx),
                (Phase::Release, _) => self.begin_claim(cx),
                (Phase::Claim, false) => self.begin_offsets(cx),
                (Phase::Offsets, false) => {
                    self.succeed();
                    return;
                }
            }
        }
    }

    /// Stops fetching, commits the processed positions, deletes our owner
    /// znodes (and checks those whose fate is unknown).
    fn begin_release(&mut self, cx: &mut Ctx<'_>) {
        if let Some(a) = self.attempt.as_mut() {
            a.phase = Phase::Release;
        }
        let offsets = self.positions();
        let owned: Vec<u32> = self.owned.iter().copied().collect();
        let foreign = std::mem::take(&mut self.owned_foreign);
        let revoked = self.owned();
        if offsets.is_empty() {
            self.events.revoked.extend(revoked);
        } else {
            // Reported with the release commit.
            self.revoking.extend(revoked);
        }
        self.owned.clear();
        self.set_fetching();
        if !offsets.is_empty() {
            let att = self.att;
            self.send_commit(CommitKind::Release(att), offsets, cx);
        }
        for p in owned {
            if foreign.contains(&p) {
                continue;
            }
            self.maybe_mine.remove(&p);
            let op = ZkOp::Delete {
                path: self.owner_path(p),
                version: -1,
            };
            self.reb_call(op, Step::ReleaseDelete(p), cx);
        }
        for p in std::mem::take(&mut self.maybe_mine) {
            let op = ZkOp::GetData {
                path: self.owner_path(p),
                watch: false,
            };
            self.reb_call(op, Step::ReleaseCheck(p), cx);
        }
    }

    fn begin_claim(&mut self, cx: &mut Ctx<'_>) {
        let Some(a) = self.attempt.as_mut() else {
            return;
        };
        a.phase = Phase::Claim;
        let range = a.range.clone();
        for p in range {
            let op = ZkOp::Create {
                path: self.owner_path(p),
                data: self.consumer_id.clone().into_bytes(),
                mode: CreateMode::Ephemeral,
            };
            self.reb_call(op, Step::Claim(p), cx);
        }
    }

    fn begin_offsets(&mut self, cx: &mut Ctx<'_>) {
        let Some(a) = self.attempt.as_mut() else {
            return;
        };
        a.phase = Phase::Offsets;
        a.offsets_asked = cx.now;
        let range = a.range.clone();
        for p in range {
            let op = ZkOp::GetData {
                path: self.offset_path(p),
                watch: false,
            };
            self.reb_call(op, Step::OffsetRead(p), cx);
        }
    }

    /// Releases what the failed attempt claimed, then backs off (or parks
    /// after too many failures).
    fn fail_attempt(&mut self, cx: &mut Ctx<'_>) {
        let Some(a) = self.attempt.take() else {
            return;
        };
        for p in a.claimed {
            let op = ZkOp::Delete {
                path: self.owner_path(p),
                version: -1,
            };
            self.zk_call_on_session(op, Purpose::Cleanup(p), cx);
        }
        self.retries += 1;
        if self.retries >= self.cfg.rebalance_max_retries {
            self.retries = 0;
            self.reb = Reb::Parked;
        } else {
            self.reb = Reb::Backoff;
            cx.set_timer_ms(TIMER_BACKOFF, self.cfg.rebalance_backoff_ms);
        }
    }

    /// Every claim holds: seek to the committed offsets and fetch.
    fn succeed(&mut self) {
        let Some(a) = self.attempt.take() else {
            return;
        };
        self.owned = a.range.iter().copied().collect();
        self.owned_foreign = a.foreign;
        let tps = self.owned();
        self.kc.assign(&tps);
        self.fetch_dirty = false;
        for &p in &a.range {
            let tp = self.tp(p);
            let committed = a.committed.get(&p).copied().flatten();
            let start = committed.unwrap_or(0);
            self.kc.seek(&tp, start);
            self.last_committed.remove(&p);
            if let Some(c) = committed {
                self.last_committed.insert(p, c);
            }
            self.events.assigned.push(AssignedPartition {
                tp,
                committed,
                start,
                member: self.consumer_id.clone(),
                generation: a.membership,
                asked: a.offsets_asked,
            });
        }
        self.generation = a.membership;
        self.retries = 0;
        self.reb = if self.reb_again {
            Reb::Wanted
        } else {
            Reb::Idle
        };
        self.reb_again = false;
    }
}
