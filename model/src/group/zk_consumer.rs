//! The ZooKeeper-era consumer: Kafka 0.8's high-level consumer
//! (`ZookeeperConsumerConnector` with its `ZKRebalancerListener`) as a
//! client node.
//!
//! The group lives in ZooKeeper, with no coordinator:
//!
//! - `/consumers/<group>/ids/<consumer id>`: an EPHEMERAL registration per
//!   member (its subscription as data). Every member watches the children
//!   of `ids`; a change makes every member rebalance.
//! - `/consumers/<group>/owners/<topic>/<p>`: an EPHEMERAL claim of
//!   partition `p`, holding the owner's consumer id.
//! - `/consumers/<group>/offsets/<topic>/<p>`: PERSISTENT, the next offset
//!   to consume as decimal text (empty: nothing committed).
//!
//! A rebalance (range assignment, as 0.8) lists the registrations, computes
//! this member's range of partitions, releases what it owns (commits the
//! processed positions, stops fetching, deletes its owner znodes), then
//! claims its new range. A claim that finds the owner znode held by
//! another member (whose release, or whose session's expiry, has not
//! happened yet) fails the whole attempt: what this attempt claimed is
//! released and the rebalance is tried again after `rebalance_backoff_ms`.
//! Only when every claim holds does it read the offsets znodes, seek and
//! start fetching (through an embedded [`KafkaConsumer`]). With the
//! planted bug `zk_consumer_owner_race` a claim that finds another owner's
//! znode counts as taken anyway, so two members fetch the partition.
//!
//! The embedded [`ZkClient`] hands watch events over only with the reply
//! to a request, so the member sends a cheap read every `tick_ms` when it
//! has nothing else outstanding. A changed ZooKeeper session (or a
//! `SessionExpired` answer) means the ephemerals are gone: the member
//! drops everything it owned (reported in `revoked`, with `lost` set to
//! UNKNOWN_MEMBER_ID), registers again under the same consumer id and
//! rebalances.
//!
//! The parts: `znodes` (paths, offsets encoding, range assignment),
//! `rebalance` (one attempt's phases), `work` (the workload's `Poll` and
//! `Commit`); this file holds the node, its registration and session, and
//! commits.
//!
//! # Simplifications against 0.8
//!
//! - One consumer thread per member, one topic with a fixed partition
//!   count (no topic or broker watches); owner znodes hold the consumer id
//!   (0.8 wrote the thread id `<consumer id>-<n>`).
//! - Claims come before the offset reads (0.8 read the offsets first); a
//!   claim that finds a znode holding our own id on our session counts as
//!   ours (0.8's `createEphemeralPathExpectConflict`), and releases only
//!   delete znodes this session created (0.8 deleted by path).
//! - A commit writes all its offsets in one `multi` (0.8 wrote each znode
//!   by itself), so a commit has one outcome; an offsets znode is created
//!   empty when its partition is first claimed. A release always commits
//!   the processed positions (0.8 did only with `auto.commit.enable`);
//!   `auto_commit` here commits the processed positions at the start of
//!   every poll (0.8 committed on a timer).
//! - After `rebalance_max_retries` failed attempts the member does not die
//!   (0.8 threw `ConsumerRebalanceFailedException`): it tries again on the
//!   next watch event or tick.
//! - As in 0.8, a member cut off from ZooKeeper keeps fetching what it owns
//!   until it learns that its session expired.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::bugs::BugSet;
use crate::group::types::{
    CommitOutcome, CommitRecord, Generation, GroupError, GroupEvents, GroupReply, GroupRequest,
};
use crate::group::GroupBugs;
use crate::kafka::{ConsumerConfig, KafkaConsumer, Tp};
use crate::msg::{ClientRequest, Msg};
use crate::node::{Ctx, Input, Node, NodeId, ReqId};
use crate::time::SimTime;
use crate::zk::{CreateMode, WatchKind, ZkClient, ZkError, ZkOp, ZkReply, ZkRequest, ZkResponse};

use rebalance::{Attempt, Step};
use work::{Stage, Work};
pub use znodes::range_assignment;
use znodes::{ids_dir, offsets_dir, owners_dir, parent_paths};

/// Drains watch events and checks the session.
const TIMER_TICK: u64 = 1;
/// The pause between rebalance attempts.
const TIMER_BACKOFF: u64 = 2;
/// The deadline of a workload request waiting for a rebalance.
const TIMER_REQ: u64 = 3;
/// The embedded ZooKeeper client's timers are shifted by this.
const TIMER_ZK_BASE: u64 = 100;
/// The embedded Kafka consumer's timers are shifted by this.
const TIMER_KC_BASE: u64 = 200;

/// Settings of the ZooKeeper-era consumer (0.8's consumer properties).
/// Times are on the member's clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkConsumerConfig {
    /// `zookeeper.session.timeout.ms`: the session timeout asked for.
    pub zk_session_timeout_ms: u64,
    /// `rebalance.backoff.ms`: the pause after a failed rebalance attempt.
    pub rebalance_backoff_ms: u64,
    /// `rebalance.max.retries`: attempts in a row before pausing until the
    /// next watch event or tick.
    pub rebalance_max_retries: u32,
    /// How long a fetch waits for the brokers, and how long a workload
    /// request waits for a rebalance in progress.
    pub request_timeout_ms: u64,
    /// Commit the processed positions at the start of every poll
    /// (`auto.commit.enable`).
    pub auto_commit: bool,
    /// Period of the housekeeping tick: it asks ZooKeeper for pending watch
    /// events (they ride on replies), checks the session, and restarts a
    /// registration or a rebalance that gave up.
    pub tick_ms: u64,
}

impl Default for ZkConsumerConfig {
    fn default() -> Self {
        ZkConsumerConfig {
            zk_session_timeout_ms: 600,
            rebalance_backoff_ms: 50,
            rebalance_max_retries: 20,
            request_timeout_ms: 200,
            auto_commit: false,
            tick_ms: 50,
        }
    }
}

/// The rebalance state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reb {
    /// Nothing to do.
    Idle,
    /// A rebalance is due; it starts once no fetch or commit is running.
    Wanted,
    /// An attempt is running (see `ZkConsumer::attempt`).
    Running,
    /// Waiting `rebalance_backoff_ms` before the next attempt.
    Backoff,
    /// `rebalance_max_retries` attempts failed: the next tick or watch
    /// event starts again.
    Parked,
}

/// Which commit a ZooKeeper `multi` carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CommitKind {
    /// The workload's `Commit`.
    User,
    /// `auto_commit` at the start of a poll.
    Auto,
    /// The release of rebalance attempt `att`.
    Release(u64),
}

/// Why a ZooKeeper request was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Purpose {
    /// A persistent parent; any outcome is fine.
    Parent,
    /// The registration.
    Register,
    /// Whether the registration is ours after a NodeExists or lost answer.
    RegisterCheck,
    /// The tick's read (drains watch events).
    Tick,
    /// A commit.
    Commit {
        kind: CommitKind,
        offsets: Vec<(Tp, u64)>,
        generation: Generation,
        started: SimTime,
    },
    /// A step of rebalance attempt `att`.
    Reb { att: u64, step: Step },
    /// Deleting an owner znode of a failed attempt.
    Cleanup(u32),
}

pub struct ZkConsumer {
    zk_servers: Vec<NodeId>,
    group: String,
    topic: String,
    partitions: u32,
    cfg: ZkConsumerConfig,
    owner_race: bool,
    zk: ZkClient,
    kc: KafkaConsumer,
    consumer_id: String,
    next_zk_req: ReqId,
    zk_pending: BTreeMap<ReqId, Purpose>,
    /// The session our registration belongs to (0: unregistered).
    registered_session: u64,
    registering: bool,
    tick_pending: bool,
    reb: Reb,
    /// A watch event arrived during the running attempt.
    reb_again: bool,
    /// Failed attempts in a row.
    retries: u32,
    /// The number of the latest attempt (stale answers are ignored).
    att: u64,
    attempt: Option<Attempt>,
    /// The round of the last successful rebalance: the `cversion` of the
    /// ids directory in the listing it was computed from (members that
    /// read the same membership share it, as a coordinator's generation).
    generation: Generation,
    /// Partitions owned (fetched).
    owned: BTreeSet<u32>,
    /// Owned partitions whose owner znode is another member's (the bug).
    owned_foreign: BTreeSet<u32>,
    /// Owner znodes this session may hold whose create or delete lost its
    /// answer; the next release checks and deletes them.
    maybe_mine: BTreeSet<u32>,
    /// The last committed position per partition (auto-commit skips a
    /// poll when nothing moved).
    last_committed: BTreeMap<u32, u64>,
    /// The Kafka consumer's assignment must be set to `owned` once its
    /// poll ends.
    fetch_dirty: bool,
    next_kc_req: ReqId,
    kc_poll: Option<ReqId>,
    work: Option<Work>,
    queued: VecDeque<(ReqId, GroupRequest)>,
    /// What happened since the last reply.
    events: GroupEvents,
    /// Partitions released whose release commit is still running: they are
    /// reported revoked with that commit.
    revoking: Vec<Tp>,
}

impl ZkConsumer {
    /// A member of `group` consuming `topic` (`partitions` partitions)
    /// with the ZooKeeper ensemble `zk_servers` and the brokers `brokers`.
    /// With the planted bug `zk_consumer_owner_race` it fetches a
    /// partition whose owner znode another member still holds.
    pub fn new(
        zk_servers: Vec<NodeId>,
        brokers: Vec<NodeId>,
        group: &str,
        topic: &str,
        partitions: u32,
        cfg: ZkConsumerConfig,
        bugs: &BugSet,
    ) -> ZkConsumer {
        assert!(!zk_servers.is_empty() && !brokers.is_empty());
        let kc = KafkaConsumer::new(
            brokers,
            ConsumerConfig {
                poll_timeout_ms: cfg.request_timeout_ms,
                ..ConsumerConfig::default()
            },
            bugs,
        );
        ZkConsumer {
            zk: ZkClient::new(zk_servers.clone(), cfg.zk_session_timeout_ms, 0),
            zk_servers,
            group: group.to_string(),
            topic: topic.to_string(),
            partitions,
            owner_race: GroupBugs::from_set(bugs).zk_consumer_owner_race,
            cfg,
            kc,
            consumer_id: String::new(),
            next_zk_req: 1,
            zk_pending: BTreeMap::new(),
            registered_session: 0,
            registering: false,
            tick_pending: false,
            reb: Reb::Idle,
            reb_again: false,
            retries: 0,
            att: 0,
            attempt: None,
            generation: 0,
            owned: BTreeSet::new(),
            owned_foreign: BTreeSet::new(),
            maybe_mine: BTreeSet::new(),
            last_committed: BTreeMap::new(),
            fetch_dirty: false,
            next_kc_req: 1,
            kc_poll: None,
            work: None,
            queued: VecDeque::new(),
            events: GroupEvents::default(),
            revoking: Vec::new(),
        }
    }

    /// The partitions this member owns (fetches) now.
    pub fn owned(&self) -> Vec<Tp> {
        self.owned.iter().map(|&p| self.tp(p)).collect()
    }

    /// This incarnation's consumer id (`<group>_c<node>-<random>`; empty
    /// before the start).
    pub fn consumer_id(&self) -> &str {
        &self.consumer_id
    }

    /// The round of the last successful rebalance (the `cversion` of the
    /// membership listing it used; the generation its replies report).
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// The ZooKeeper session the registration belongs to (0 while
    /// unregistered).
    pub fn zk_session(&self) -> u64 {
        self.registered_session
    }

    /// Whether the member is registered and not rebalancing.
    pub fn stable(&self) -> bool {
        !self.rebalancing()
    }

    fn tp(&self, p: u32) -> Tp {
        Tp::new(&self.topic, p)
    }

    fn owner_path(&self, p: u32) -> String {
        format!("{}/{p}", owners_dir(&self.group, &self.topic))
    }

    fn offset_path(&self, p: u32) -> String {
        format!("{}/{p}", offsets_dir(&self.group, &self.topic))
    }

    fn my_path(&self) -> String {
        format!("{}/{}", ids_dir(&self.group), self.consumer_id)
    }

    fn rebalancing(&self) -> bool {
        self.registered_session == 0 || self.reb != Reb::Idle
    }

    /// Whether the registered session is still the ZooKeeper client's.
    fn session_ok(&self) -> bool {
        self.registered_session != 0 && self.zk.session() == self.registered_session
    }

    /// A fetch or a commit of the workload is running.
    fn busy(&self) -> bool {
        self.kc_poll.is_some()
            || self
                .work
                .as_ref()
                .is_some_and(|w| matches!(w.stage, Stage::AutoCommit | Stage::Committing))
    }

    // ----- ZooKeeper plumbing -----

    fn drive_zk(&mut self, input: Input, cx: &mut Ctx<'_>) {
        for (id, r) in self.zk.step_embedded(input, TIMER_ZK_BASE, cx) {
            self.on_watch_events(&r);
            let Some(p) = self.zk_pending.remove(&id) else {
                continue;
            };
            let expired = r.result == Err(ZkError::SessionExpired)
                || (r.session != 0 && r.session != self.registered_session);
            if self.registered_session != 0 && expired {
                self.on_session_lost(cx);
            }
            self.on_zk_reply(p, r, cx);
        }
    }

    fn zk_call(&mut self, op: ZkOp, purpose: Purpose, cx: &mut Ctx<'_>) {
        let id = self.next_zk_req;
        self.next_zk_req += 1;
        self.zk_pending.insert(id, purpose);
        self.drive_zk(
            Input::Client {
                id,
                req: ClientRequest::Zk(ZkRequest::Op(op)),
            },
            cx,
        );
    }

    /// Sends only while the registered session is the client's: a
    /// request made after it expired would run on a new session (where a
    /// delete by path could remove another member's owner znode). When it
    /// is gone, the session loss is handled instead.
    fn zk_call_on_session(&mut self, op: ZkOp, purpose: Purpose, cx: &mut Ctx<'_>) -> bool {
        if !self.session_ok() {
            self.on_session_lost(cx);
            return false;
        }
        self.zk_call(op, purpose, cx);
        true
    }

    /// A rebalance step of the running attempt; counts as awaited.
    fn reb_call(&mut self, op: ZkOp, step: Step, cx: &mut Ctx<'_>) {
        let att = self.att;
        if let Some(a) = self.attempt.as_mut() {
            a.waiting += 1;
        }
        // Not sent: the session is gone, and the attempt with it.
        self.zk_call_on_session(op, Purpose::Reb { att, step }, cx);
    }

    fn on_watch_events(&mut self, r: &ZkReply) {
        let ids = ids_dir(&self.group);
        let changed = r
            .events
            .iter()
            .any(|e| e.kind == WatchKind::NodeChildrenChanged && e.path == ids);
        if changed && self.registered_session != 0 {
            match self.reb {
                Reb::Idle | Reb::Parked => self.reb = Reb::Wanted,
                Reb::Running => self.reb_again = true,
                Reb::Wanted | Reb::Backoff => {}
            }
        }
    }

    // ----- registration and session -----

    fn start_registration(&mut self, cx: &mut Ctx<'_>) {
        if self.registering {
            return;
        }
        self.registering = true;
        for path in parent_paths(&self.group, &self.topic) {
            let op = ZkOp::Create {
                path,
                data: Vec::new(),
                mode: CreateMode::Persistent,
            };
            self.zk_call(op, Purpose::Parent, cx);
        }
        let data = format!(
            "{{\"version\":1,\"subscription\":{{\"{}\":1}},\"pattern\":\"static\"}}",
            self.topic
        );
        let op = ZkOp::Create {
            path: self.my_path(),
            data: data.into_bytes(),
            mode: CreateMode::Ephemeral,
        };
        self.zk_call(op, Purpose::Register, cx);
    }

    fn registered(&mut self, session: u64) {
        self.registering = false;
        self.registered_session = session;
        self.reb = Reb::Wanted;
        self.retries = 0;
    }

    /// The session ended: the registration and owner znodes are gone.
    fn on_session_lost(&mut self, cx: &mut Ctx<'_>) {
        if self.registered_session == 0 {
            return;
        }
        self.registered_session = 0;
        self.registering = false;
        self.events.lost = Some(GroupError::UnknownMemberId);
        let owned: Vec<Tp> = self.owned();
        let revoking = std::mem::take(&mut self.revoking);
        self.events.revoked.extend(revoking);
        self.events.revoked.extend(owned);
        self.owned.clear();
        self.owned_foreign.clear();
        self.maybe_mine.clear();
        self.set_fetching();
        self.attempt = None;
        self.att += 1;
        self.reb = Reb::Idle;
        self.reb_again = false;
        cx.cancel_timer(TIMER_BACKOFF);
        self.start_registration(cx);
    }

    /// Points the Kafka consumer at `owned` (after its poll, if one runs).
    fn set_fetching(&mut self) {
        if self.kc.polling() || self.kc_poll.is_some() {
            self.fetch_dirty = true;
        } else {
            let tps = self.owned();
            self.kc.assign(&tps);
            self.fetch_dirty = false;
        }
    }

    fn on_tick(&mut self, cx: &mut Ctx<'_>) {
        cx.set_timer_ms(TIMER_TICK, self.cfg.tick_ms);
        if self.registered_session != 0 && self.zk.session() != self.registered_session {
            self.on_session_lost(cx);
        }
        if self.registered_session == 0 {
            self.start_registration(cx);
            return;
        }
        if self.reb == Reb::Parked {
            self.reb = Reb::Wanted;
        }
        if !self.tick_pending && self.zk_pending.is_empty() {
            self.tick_pending = true;
            let op = ZkOp::Exists {
                path: self.my_path(),
                watch: false,
            };
            self.zk_call(op, Purpose::Tick, cx);
        }
    }

    fn on_zk_reply(&mut self, p: Purpose, r: ZkReply, cx: &mut Ctx<'_>) {
        match p {
            Purpose::Parent | Purpose::Cleanup(_) if r.result == Err(ZkError::ConnectionLoss) => {
                if let Purpose::Cleanup(part) = p {
                    if self.session_ok() {
                        self.maybe_mine.insert(part);
                    }
                }
            }
            Purpose::Parent | Purpose::Cleanup(_) => {}
            Purpose::Tick => self.tick_pending = false,
            Purpose::Register => match r.result {
                Ok(_) if r.session != 0 => self.registered(r.session),
                Err(ZkError::NodeExists) | Err(ZkError::ConnectionLoss) => {
                    let op = ZkOp::Exists {
                        path: self.my_path(),
                        watch: false,
                    };
                    self.zk_call(op, Purpose::RegisterCheck, cx);
                }
                _ => self.registering = false,
            },
            Purpose::RegisterCheck => match r.result {
                Ok(ZkResponse::Exists(Some(st)))
                    if r.session != 0 && st.ephemeral_owner == r.session =>
                {
                    self.registered(r.session)
                }
                // Not ours or gone: the next tick registers again.
                _ => self.registering = false,
            },
            Purpose::Commit {
                kind,
                offsets,
                generation,
                started,
            } => self.on_commit_reply(kind, offsets, (generation, started), r, cx),
            Purpose::Reb { att, step } => {
                if att == self.att && self.attempt.is_some() {
                    self.on_step(step, r, cx);
                    self.reb_progress(cx);
                }
            }
        }
    }

    // ----- commits -----

    /// The processed positions of the owned partitions.
    fn positions(&self) -> Vec<(Tp, u64)> {
        self.owned
            .iter()
            .map(|&p| {
                let tp = self.tp(p);
                let pos = self.kc.position(&tp).unwrap_or(0);
                (tp, pos)
            })
            .collect()
    }

    fn send_commit(&mut self, kind: CommitKind, offsets: Vec<(Tp, u64)>, cx: &mut Ctx<'_>) {
        let ops = offsets
            .iter()
            .map(|(tp, off)| ZkOp::SetData {
                path: self.offset_path(tp.partition),
                data: off.to_string().into_bytes(),
                version: -1,
            })
            .collect();
        let generation = self.generation;
        if !self.session_ok() {
            // It never runs: report it failed.
            self.on_session_lost(cx);
            let r = ZkReply {
                result: Err(ZkError::SessionExpired),
                zxid: 0,
                session: 0,
                server: 0,
                events: Vec::new(),
            };
            self.on_commit_reply(kind, offsets, (generation, cx.now), r, cx);
            return;
        }
        if let CommitKind::Release(_) = kind {
            if let Some(a) = self.attempt.as_mut() {
                a.waiting += 1;
            }
        }
        let purpose = Purpose::Commit {
            kind,
            offsets,
            generation,
            started: cx.now,
        };
        self.zk_call(ZkOp::Multi(ops), purpose, cx);
    }

    fn on_commit_reply(
        &mut self,
        kind: CommitKind,
        offsets: Vec<(Tp, u64)>,
        (generation, started): (Generation, SimTime),
        r: ZkReply,
        cx: &mut Ctx<'_>,
    ) {
        let outcome = match r.result {
            Ok(_) => {
                for (tp, off) in &offsets {
                    self.last_committed.insert(tp.partition, *off);
                }
                CommitOutcome::Ok
            }
            Err(ZkError::ConnectionLoss) => CommitOutcome::Unknown(GroupError::Network),
            // SessionExpired: it did not run. Any other error (an offsets
            // znode missing) failed the whole multi.
            Err(_) => CommitOutcome::Failed(GroupError::UnknownMemberId),
        };
        let record = CommitRecord {
            member: self.consumer_id.clone(),
            generation,
            offsets,
            outcome,
            started,
        };
        match kind {
            CommitKind::User => {
                // Only what the commit itself did: assignment changes stay
                // for the next poll, which reports the partitions it owns.
                let events = GroupEvents {
                    commits: std::mem::take(&mut self.events.commits),
                    ..GroupEvents::default()
                };
                self.finish_work(
                    GroupReply::Committed {
                        commit: record,
                        events,
                    },
                    cx,
                );
            }
            CommitKind::Auto => {
                self.events.commits.push(record);
                if let Some(w) = self.work.as_mut() {
                    w.stage = Stage::Waiting;
                    w.auto_done = true;
                }
            }
            CommitKind::Release(att) => {
                self.events.commits.push(record);
                let revoked = std::mem::take(&mut self.revoking);
                self.events.revoked.extend(revoked);
                if att == self.att {
                    if let Some(a) = self.attempt.as_mut() {
                        a.waiting -= 1;
                    }
                    self.reb_progress(cx);
                }
            }
        }
    }
}

impl Node for ZkConsumer {
    fn step(&mut self, input: Input, cx: &mut Ctx<'_>) {
        match input {
            Input::Start { .. } => {
                let nonce = rand::Rng::gen::<u32>(cx.rng);
                self.consumer_id = format!("{}_c{}-{nonce}", self.group, cx.me);
                self.zk = ZkClient::new(
                    self.zk_servers.clone(),
                    self.cfg.zk_session_timeout_ms,
                    cx.me as usize,
                );
                self.start_registration(cx);
                cx.set_timer_ms(TIMER_TICK, self.cfg.tick_ms);
            }
            _ if self.consumer_id.is_empty() => {}
            Input::Message {
                msg: Msg::Zk(_), ..
            } => self.drive_zk(input, cx),
            Input::Message {
                msg: Msg::Kafka(_), ..
            } => self.drive_kc(input, cx),
            Input::ConnUp { peer } | Input::ConnLost { peer }
                if self.zk_servers.contains(&peer) =>
            {
                self.drive_zk(input, cx)
            }
            Input::ConnUp { .. } | Input::ConnLost { .. } => self.drive_kc(input, cx),
            Input::Timer { timer } => match timer {
                TIMER_TICK => self.on_tick(cx),
                TIMER_BACKOFF if self.reb == Reb::Backoff => self.reb = Reb::Wanted,
                TIMER_REQ => {
                    if let Some(w) = self.work.as_mut() {
                        w.deadline_passed = true;
                    }
                }
                t if (TIMER_ZK_BASE..TIMER_KC_BASE).contains(&t) => self.drive_zk(
                    Input::Timer {
                        timer: t - TIMER_ZK_BASE,
                    },
                    cx,
                ),
                t if t >= TIMER_KC_BASE => self.drive_kc(
                    Input::Timer {
                        timer: t - TIMER_KC_BASE,
                    },
                    cx,
                ),
                _ => {}
            },
            Input::Client {
                id,
                req: ClientRequest::Group(req),
            } => self.queued.push_back((id, req)),
            Input::Message { .. } | Input::Client { .. } | Input::Disk { .. } => {}
        }
        self.advance_work(cx);
    }

    fn role(&self) -> String {
        let owned: Vec<String> = self.owned.iter().map(|p| p.to_string()).collect();
        format!(
            "zk-consumer {} session={:#x} gen={} {:?} owned=[{}]",
            self.consumer_id,
            self.registered_session,
            self.generation,
            self.reb,
            owned.join(",")
        )
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

mod rebalance;
mod work;
mod znodes;

#[cfg(test)]
mod test_world;
#[cfg(test)]
mod tests;
