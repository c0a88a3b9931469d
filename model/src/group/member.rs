//! The group-member client node: Kafka's consumer with its
//! ConsumerCoordinator (classic protocol) and an embedded fetcher (a
//! [`KafkaConsumer`]).
//!
//! - Coordinator discovery (FindCoordinator to any broker), JoinGroup,
//!   SyncGroup (the leader runs the assignor), heartbeats every
//!   `heartbeat.interval.ms` from the moment the join answered
//!   (REBALANCE_IN_PROGRESS: rejoin; ILLEGAL_GENERATION /
//!   UNKNOWN_MEMBER_ID: the member is out and its partitions are lost).
//! - `max.poll.interval.ms`: when the application has not called poll for
//!   that long, the heartbeat side sends LeaveGroup and forgets its member
//!   id and generation (the real heartbeat thread does this); the next
//!   poll finds its partitions lost and joins as a new member.
//! - Each poll first takes the rebalance as far as it can: eager
//!   (`range`): commit what was processed, give everything up, rejoin;
//!   cooperative (`cooperative-sticky`, KIP-429): keep fetching owned
//!   partitions while the rebalance runs, commit and revoke only what the
//!   new assignment takes away, then rejoin so it can move. Newly assigned
//!   partitions start from OffsetFetch's committed offsets, or from the
//!   log start when there is none (`auto.offset.reset = earliest`). A poll
//!   waits on a rebalance at most `poll_timeout_ms`, then fetches what it
//!   owns.
//! - Commits: `commitSync` of the positions of everything processed (the
//!   records earlier polls returned), retried on retriable errors until
//!   `commit_timeout_ms`; with `auto_commit` the same commit runs at the
//!   start of a poll every `auto_commit_interval_ms`. A fenced member
//!   (lost, or no generation) refuses a commit itself, as the Java client
//!   does; one that does not know yet sends it with its old generation.

use std::collections::{BTreeMap, VecDeque};

use crate::bugs::BugSet;
use crate::group::assignor;
use crate::group::types::{
    AssignedPartition, Assignor, CommitOutcome, CommitRecord, Generation, GroupError, GroupEvents,
    GroupMsg, GroupReply, GroupRequest, JoinResult, MemberId, Subscription, NO_GENERATION,
};
use crate::group::GroupBugs;
use crate::kafka::{ConsumerConfig, KafkaConsumer, KafkaReply, KafkaRequest, Tp};
use crate::msg::{ClientReply, ClientRequest, Msg};
use crate::node::{Ctx, Input, Node, NodeId, ReqId};
use crate::time::SimTime;

const TIMER_TICK: u64 = 1;
/// The embedded fetcher's timers are shifted by this.
const TIMER_FETCH_BASE: u64 = 100;
/// The member's own duties run on this period (ms).
const TICK_MS: u64 = 10;
/// The request id of the embedded fetcher's polls.
const FETCH_REQ: ReqId = 1;

/// Member settings (the consumer's `group.*`, `session.timeout.ms`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberConfig {
    /// `group.id`.
    pub group: String,
    /// The subscribed topic.
    pub topic: String,
    /// Its partition count (the leader's assignor needs it).
    pub partitions: u32,
    /// `partition.assignment.strategy`.
    pub assignor: Assignor,
    /// `session.timeout.ms`.
    pub session_timeout_ms: u64,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u64,
    /// `max.poll.interval.ms` (also the rebalance timeout).
    pub max_poll_interval_ms: u64,
    /// How long a request to the coordinator may go unanswered.
    pub request_timeout_ms: u64,
    /// How long a poll waits on a rebalance before it fetches what it owns.
    pub poll_timeout_ms: u64,
    /// How long commitSync retries.
    pub commit_timeout_ms: u64,
    /// `retry.backoff.ms`.
    pub retry_backoff_ms: u64,
    /// `enable.auto.commit`.
    pub auto_commit: bool,
    /// `auto.commit.interval.ms`.
    pub auto_commit_interval_ms: u64,
    /// The fetcher's settings.
    pub fetch: ConsumerConfig,
}

impl Default for MemberConfig {
    fn default() -> Self {
        MemberConfig {
            group: "kzsim".into(),
            topic: "jepsen".into(),
            partitions: 1,
            assignor: Assignor::Range,
            session_timeout_ms: 1_000,
            heartbeat_interval_ms: 100,
            max_poll_interval_ms: 1_500,
            request_timeout_ms: 300,
            poll_timeout_ms: 200,
            commit_timeout_ms: 1_000,
            retry_backoff_ms: 50,
            auto_commit: false,
            auto_commit_interval_ms: 200,
            fetch: ConsumerConfig::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Not in a generation: join next.
    Idle,
    /// JoinGroup sent.
    Joining,
    /// SyncGroup sent for this generation.
    Syncing(Generation),
    /// The assignment of a generation arrived; the next call applies it.
    Assigned(Generation, Vec<Tp>),
    /// Committed offsets of newly assigned partitions asked for.
    FetchingOffsets(Generation, Vec<Tp>),
    /// Consuming.
    Stable,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    Find,
    Join,
    Sync,
    Heartbeat,
    Commit,
    OffsetFetch,
}

/// Why a commit runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CommitWhy {
    /// The application's commitSync.
    Explicit,
    /// Before giving partitions up.
    Revoke,
    /// Auto-commit at the start of a poll.
    Auto,
}

#[derive(Clone, Debug)]
struct Commit {
    why: CommitWhy,
    record: CommitRecord,
    deadline: SimTime,
    /// Some attempt may have been applied.
    maybe: bool,
    /// The last error seen.
    last_error: GroupError,
    in_flight: bool,
    retry_at: SimTime,
}

#[derive(Clone, Debug)]
struct Call {
    id: ReqId,
    req: GroupRequest,
    /// A poll stops waiting on a rebalance at this time.
    deadline: SimTime,
    /// The fetcher's poll is in flight.
    fetching: bool,
    /// An explicit commit was made (or refused) for this call.
    committed: Option<CommitRecord>,
    /// This poll's auto-commit ran.
    auto_done: bool,
}

/// A group-member client node.
pub struct GroupMember {
    brokers: Vec<NodeId>,
    cfg: MemberConfig,
    bugs: GroupBugs,
    fetcher: KafkaConsumer,
    next_corr: u64,
    next_broker: usize,
    coordinator: Option<NodeId>,
    inflight: BTreeMap<u64, (Pending, NodeId, SimTime)>,
    member_id: MemberId,
    /// The generation of the owned assignment.
    generation: Generation,
    /// When the last OffsetFetch was sent.
    offsets_asked: SimTime,
    /// The generation last joined (heartbeats carry it).
    joined: Generation,
    phase: Phase,
    owned: Vec<Tp>,
    need_rejoin: bool,
    /// The member found it is out of the group; the next poll applies it.
    lost: Option<GroupError>,
    last_poll: SimTime,
    last_heartbeat: SimTime,
    last_auto_commit: SimTime,
    retry_at: SimTime,
    commit: Option<Commit>,
    call: Option<Call>,
    queued: VecDeque<(ReqId, GroupRequest)>,
    events: GroupEvents,
    /// Partitions given up whose revocation commit is still running: they
    /// are reported revoked with that commit, so a report of a revocation
    /// always comes with (or after) the commit made for it.
    revoking: Vec<Tp>,
    started: bool,
}

impl GroupMember {
    /// A member bootstrapping from `brokers`.
    pub fn new(brokers: Vec<NodeId>, cfg: MemberConfig, bugs: &BugSet) -> GroupMember {
        assert!(!brokers.is_empty());
        GroupMember {
            fetcher: KafkaConsumer::new(brokers.clone(), cfg.fetch.clone(), bugs),
            brokers,
            cfg,
            bugs: GroupBugs::from_set(bugs),
            next_corr: 1,
            next_broker: 0,
            coordinator: None,
            inflight: BTreeMap::new(),
            member_id: MemberId::new(),
            generation: NO_GENERATION,
            joined: NO_GENERATION,
            offsets_asked: SimTime::ZERO,
            phase: Phase::Idle,
            owned: Vec::new(),
            need_rejoin: false,
            lost: None,
            last_poll: SimTime::ZERO,
            last_heartbeat: SimTime::ZERO,
            last_auto_commit: SimTime::ZERO,
            retry_at: SimTime::ZERO,
            commit: None,
            call: None,
            queued: VecDeque::new(),
            events: GroupEvents::default(),
            revoking: Vec::new(),
            started: false,
        }
    }

    /// The member id (empty when it has none).
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The generation of the owned assignment.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// The partitions owned.
    pub fn owned(&self) -> &[Tp] {
        &self.owned
    }

    fn corr(&mut self) -> u64 {
        self.next_corr += 1;
        self.next_corr
    }

    fn request(
        &mut self,
        to: NodeId,
        p: Pending,
        m: impl FnOnce(u64) -> GroupMsg,
        cx: &mut Ctx<'_>,
    ) {
        let corr = self.corr();
        self.inflight.insert(corr, (p, to, cx.now));
        cx.send(to, Msg::Group(m(corr)));
    }

    fn in_flight(&self, p: &Pending) -> bool {
        self.inflight.values().any(|(q, _, _)| q == p)
    }

    fn coordinator_lost(&mut self) {
        self.coordinator = None;
        // Requests to it will not be answered usefully: a join or sync
        // must be sent again to the next coordinator.
        let gone: Vec<u64> = self
            .inflight
            .iter()
            .filter(|(_, (p, _, _))| *p != Pending::Find)
            .map(|(c, _)| *c)
            .collect();
        for c in gone {
            let (p, _, _) = self.inflight.remove(&c).expect("listed");
            self.abandon(p);
        }
    }

    /// A request that will never be answered.
    fn abandon(&mut self, p: Pending) {
        match p {
            Pending::Join => self.phase = Phase::Idle,
            Pending::Sync => self.phase = Phase::Idle,
            Pending::OffsetFetch => {
                if let Phase::FetchingOffsets(g, a) = &self.phase {
                    self.phase = Phase::Assigned(*g, a.clone());
                    // Owned partitions were kept; re-derive on the retry.
                    let keep = self.owned.clone();
                    if let Phase::Assigned(_, a) = &mut self.phase {
                        for tp in keep {
                            if !a.contains(&tp) {
                                a.push(tp);
                            }
                        }
                        a.sort();
                    }
                }
            }
            Pending::Commit => {
                if let Some(c) = &mut self.commit {
                    c.in_flight = false;
                    c.maybe = true;
                    c.last_error = GroupError::RequestTimedOut;
                }
            }
            Pending::Heartbeat | Pending::Find => {}
        }
    }

    fn find_coordinator(&mut self, cx: &mut Ctx<'_>) {
        if self.in_flight(&Pending::Find) || cx.now < self.retry_at {
            return;
        }
        self.next_broker += 1;
        let b = self.brokers[self.next_broker % self.brokers.len()];
        let group = self.cfg.group.clone();
        self.request(
            b,
            Pending::Find,
            |corr| GroupMsg::FindCoordinator { corr, group },
            cx,
        );
    }

    fn positions(&self, tps: &[Tp]) -> Vec<(Tp, u64)> {
        self.fetcher
            .positions()
            .filter(|(tp, _)| tps.contains(tp))
            .map(|(tp, o)| (tp.clone(), o))
            .collect()
    }

    /// Starts a commit of the positions of `tps`.
    fn start_commit(&mut self, why: CommitWhy, tps: &[Tp], cx: &mut Ctx<'_>) {
        let record = CommitRecord {
            member: self.member_id.clone(),
            generation: self.generation,
            offsets: self.positions(tps),
            outcome: CommitOutcome::Ok,
            started: cx.now,
        };
        let fenced = self.lost.is_some() || self.generation == NO_GENERATION;
        let mut c = Commit {
            why,
            record,
            deadline: cx.now.plus_ms(self.cfg.commit_timeout_ms),
            maybe: false,
            last_error: GroupError::UnknownMemberId,
            in_flight: false,
            retry_at: cx.now,
        };
        if fenced || c.record.offsets.is_empty() {
            // Refused by the client itself (CommitFailedException), or
            // nothing to commit.
            c.record.outcome = if c.record.offsets.is_empty() {
                CommitOutcome::Ok
            } else {
                CommitOutcome::Failed(self.lost.unwrap_or(GroupError::UnknownMemberId))
            };
            self.commit = Some(c);
            self.finish_commit();
            return;
        }
        self.commit = Some(c);
        self.send_commit(cx);
    }

    fn send_commit(&mut self, cx: &mut Ctx<'_>) {
        let Some(c) = &self.commit else { return };
        if c.in_flight || cx.now < c.retry_at {
            return;
        }
        let Some(to) = self.coordinator else {
            self.find_coordinator(cx);
            return;
        };
        let (group, generation, member_id, offsets) = (
            self.cfg.group.clone(),
            c.record.generation,
            c.record.member.clone(),
            c.record.offsets.clone(),
        );
        self.commit.as_mut().expect("commit").in_flight = true;
        self.request(
            to,
            Pending::Commit,
            |corr| GroupMsg::OffsetCommit {
                corr,
                group,
                generation,
                member_id,
                offsets,
            },
            cx,
        );
    }

    /// A commit attempt ended.
    fn on_commit_result(&mut self, result: Result<(), GroupError>, cx: &mut Ctx<'_>) {
        let Some(c) = &mut self.commit else { return };
        c.in_flight = false;
        match result {
            Ok(()) => {
                c.record.outcome = CommitOutcome::Ok;
                self.finish_commit();
            }
            Err(e) => {
                c.last_error = e;
                if e.indeterminate() {
                    c.maybe = true;
                }
                let retriable = matches!(
                    e,
                    GroupError::NotCoordinator
                        | GroupError::CoordinatorNotAvailable
                        | GroupError::CoordinatorLoadInProgress
                        | GroupError::RequestTimedOut
                        | GroupError::Network
                        | GroupError::NotEnoughReplicas
                );
                if matches!(
                    e,
                    GroupError::NotCoordinator | GroupError::CoordinatorNotAvailable
                ) {
                    self.coordinator_lost();
                }
                let c = self.commit.as_mut().expect("commit");
                if retriable && cx.now < c.deadline {
                    c.retry_at = cx.now.plus_ms(self.cfg.retry_backoff_ms);
                    return;
                }
                c.record.outcome = if c.maybe {
                    CommitOutcome::Unknown(e)
                } else {
                    CommitOutcome::Failed(e)
                };
                match e {
                    // As Kafka's client: a commit fenced after the member
                    // joined a newer generation (or while it is joining)
                    // only fails; the member is not reset.
                    GroupError::IllegalGeneration | GroupError::UnknownMemberId
                        if self.joined != c.record.generation
                            || !matches!(self.phase, Phase::Stable | Phase::Idle) => {}
                    GroupError::IllegalGeneration | GroupError::UnknownMemberId => {
                        self.lost = Some(e)
                    }
                    GroupError::RebalanceInProgress => self.need_rejoin = true,
                    _ => {}
                }
                self.finish_commit();
            }
        }
    }

    /// Records the finished commit where the history will see it.
    fn finish_commit(&mut self) {
        let Some(c) = self.commit.take() else { return };
        match c.why {
            CommitWhy::Explicit => {
                if let Some(call) = &mut self.call {
                    call.committed = Some(c.record);
                }
            }
            CommitWhy::Revoke | CommitWhy::Auto => {
                if !c.record.offsets.is_empty() {
                    self.events.commits.push(c.record);
                }
            }
        }
        let revoked = std::mem::take(&mut self.revoking);
        self.events.revoked.extend(revoked);
    }

    fn commit_deadline_passed(&mut self, now: SimTime) {
        let Some(c) = &mut self.commit else { return };
        if !c.in_flight && now >= c.deadline {
            c.record.outcome = if c.maybe {
                CommitOutcome::Unknown(c.last_error)
            } else {
                CommitOutcome::Failed(c.last_error)
            };
            self.finish_commit();
        }
    }

    fn send_join(&mut self, cx: &mut Ctx<'_>) {
        let Some(to) = self.coordinator else {
            self.find_coordinator(cx);
            return;
        };
        if cx.now < self.retry_at {
            return;
        }
        let cooperative = self.cfg.assignor.cooperative();
        let subscription = Subscription {
            topics: vec![self.cfg.topic.clone()],
            owned: if cooperative {
                self.owned.clone()
            } else {
                Vec::new()
            },
            owned_generation: self.generation,
        };
        let (group, member_id) = (self.cfg.group.clone(), self.member_id.clone());
        let (session, rebalance) = (self.cfg.session_timeout_ms, self.cfg.max_poll_interval_ms);
        let protocols = vec![self.cfg.assignor];
        self.phase = Phase::Joining;
        self.need_rejoin = false;
        self.request(
            to,
            Pending::Join,
            |corr| GroupMsg::JoinGroup {
                corr,
                group,
                member_id,
                session_timeout_ms: session,
                rebalance_timeout_ms: rebalance,
                protocols,
                subscription,
            },
            cx,
        );
    }

    fn on_joined(&mut self, j: JoinResult, cx: &mut Ctx<'_>) {
        self.member_id = j.member_id.clone();
        self.joined = j.generation;
        self.last_heartbeat = cx.now;
        let assignments: Vec<(MemberId, Vec<Tp>)> = if j.leader == j.member_id {
            let topics = BTreeMap::from([(self.cfg.topic.clone(), self.cfg.partitions)]);
            assignor::assign(
                j.protocol,
                &j.members,
                &topics,
                self.bugs.cooperative_no_two_phase,
            )
            .into_iter()
            .collect()
        } else {
            Vec::new()
        };
        let Some(to) = self.coordinator else {
            self.phase = Phase::Idle;
            return;
        };
        let (group, generation, member_id) =
            (self.cfg.group.clone(), j.generation, j.member_id.clone());
        self.phase = Phase::Syncing(generation);
        self.request(
            to,
            Pending::Sync,
            |corr| GroupMsg::SyncGroup {
                corr,
                group,
                generation,
                member_id,
                assignments,
            },
            cx,
        );
    }

    /// Drops every owned partition without committing (they are lost).
    fn drop_all(&mut self, why: GroupError) {
        if let Some(c) = self.commit.as_mut() {
            // Abandoned: it may yet be applied if it was sent.
            c.record.outcome = if c.in_flight || c.maybe {
                CommitOutcome::Unknown(why)
            } else {
                CommitOutcome::Failed(why)
            };
            self.finish_commit();
        }
        self.events.lost = Some(why);
        self.owned.clear();
        self.fetcher.assign(&[]);
        self.generation = NO_GENERATION;
        self.joined = NO_GENERATION;
        if why == GroupError::UnknownMemberId {
            self.member_id.clear();
        }
        self.phase = Phase::Idle;
    }

    fn give_up(&mut self, tps: &[Tp]) {
        self.owned.retain(|tp| !tps.contains(tp));
        let revoking = self
            .commit
            .as_ref()
            .is_some_and(|c| c.why == CommitWhy::Revoke);
        if revoking {
            self.revoking.extend(tps.iter().cloned());
        } else {
            self.events.revoked.extend(tps.iter().cloned());
        }
        let keep = self.owned.clone();
        self.fetcher.assign(&keep);
    }

    /// Takes the current call as far as it can go; replies when done.
    fn drive(&mut self, cx: &mut Ctx<'_>) {
        loop {
            let Some(call) = &self.call else { return };
            if call.fetching {
                return;
            }
            let deadline = call.deadline;
            if self.commit.is_some() {
                self.send_commit(cx);
                return;
            }
            match call.req {
                GroupRequest::Commit => {
                    if call.committed.is_some() {
                        self.reply(cx);
                        continue;
                    }
                    let owned = self.owned.clone();
                    self.start_commit(CommitWhy::Explicit, &owned, cx);
                    if self.commit.is_some() {
                        return;
                    }
                }
                GroupRequest::Poll => {
                    // A cooperative member goes on fetching what it owns
                    // while a rebalance runs (KIP-429: poll does not wait
                    // for the join); an eager one owns nothing then and
                    // waits for it, up to the poll's timeout.
                    let stable = self.advance_rebalance(cx);
                    let keeps_fetching = self.cfg.assignor.cooperative() && !self.owned.is_empty();
                    if !stable && !keeps_fetching && cx.now < deadline {
                        return;
                    }
                    if self.commit.is_some() {
                        return;
                    }
                    let call = self.call.as_mut().expect("call");
                    if self.cfg.auto_commit
                        && !call.auto_done
                        && self.phase == Phase::Stable
                        && cx.now.ms_since(self.last_auto_commit)
                            >= self.cfg.auto_commit_interval_ms
                    {
                        call.auto_done = true;
                        self.last_auto_commit = cx.now;
                        let owned = self.owned.clone();
                        self.start_commit(CommitWhy::Auto, &owned, cx);
                        continue;
                    }
                    call.fetching = true;
                    let replies = self.fetcher.step_embedded(
                        Input::Client {
                            id: FETCH_REQ,
                            req: ClientRequest::Kafka(KafkaRequest::Poll),
                        },
                        TIMER_FETCH_BASE,
                        cx,
                    );
                    self.on_fetched(replies, cx);
                    return;
                }
            }
        }
    }

    /// Moves the rebalance on; true when the member is Stable.
    fn advance_rebalance(&mut self, cx: &mut Ctx<'_>) -> bool {
        if let Some(e) = self.lost.take() {
            self.drop_all(e);
        }
        if self.coordinator.is_none() {
            self.find_coordinator(cx);
            return false;
        }
        let cooperative = self.cfg.assignor.cooperative();
        match self.phase.clone() {
            Phase::Stable if !self.need_rejoin => true,
            Phase::Stable | Phase::Idle => {
                if !cooperative && !self.owned.is_empty() {
                    // Eager: commit what was processed, then give it all up.
                    let owned = self.owned.clone();
                    if !self.bugs.no_revoke_commit {
                        self.start_commit(CommitWhy::Revoke, &owned, cx);
                    }
                    self.give_up(&owned);
                    if self.commit.is_some() {
                        self.phase = Phase::Idle;
                        return false;
                    }
                }
                self.send_join(cx);
                false
            }
            Phase::Joining | Phase::Syncing(_) | Phase::FetchingOffsets(..) => false,
            Phase::Assigned(generation, assignment) => {
                let revoked: Vec<Tp> = self
                    .owned
                    .iter()
                    .filter(|tp| !assignment.contains(tp))
                    .cloned()
                    .collect();
                if !revoked.is_empty() {
                    if !self.bugs.no_revoke_commit {
                        self.start_commit(CommitWhy::Revoke, &revoked, cx);
                    }
                    self.give_up(&revoked);
                    if cooperative {
                        // Rejoin so the revoked partitions can move.
                        self.need_rejoin = true;
                    }
                }
                self.generation = generation;
                let added: Vec<Tp> = assignment
                    .iter()
                    .filter(|tp| !self.owned.contains(tp))
                    .cloned()
                    .collect();
                if added.is_empty() {
                    self.phase = Phase::Stable;
                    return self.commit.is_none() && !self.need_rejoin;
                }
                let Some(to) = self.coordinator else {
                    return false;
                };
                self.phase = Phase::FetchingOffsets(generation, added.clone());
                self.offsets_asked = cx.now;
                let group = self.cfg.group.clone();
                self.request(
                    to,
                    Pending::OffsetFetch,
                    |corr| GroupMsg::OffsetFetch {
                        corr,
                        group,
                        tps: added,
                    },
                    cx,
                );
                false
            }
        }
    }

    fn on_fetched(&mut self, replies: Vec<(ReqId, KafkaReply)>, cx: &mut Ctx<'_>) {
        for (_, r) in replies {
            let Some(call) = &mut self.call else { continue };
            if !call.fetching {
                continue;
            }
            call.fetching = false;
            let KafkaReply::Polled { records, truncated } = r else {
                continue;
            };
            self.events.resets.extend(truncated);
            let owned = self.owned.clone();
            // Records of partitions given up meanwhile are not processed.
            let records = records
                .into_iter()
                .filter(|(tp, _, _)| owned.contains(tp))
                .collect();
            let call = self.call.take().expect("call");
            let events = std::mem::take(&mut self.events);
            cx.reply(
                call.id,
                ClientReply::Group(GroupReply::Polled {
                    member: self.member_id.clone(),
                    generation: self.generation,
                    owned,
                    records,
                    events,
                }),
            );
            self.next_call(cx);
        }
    }

    /// Answers a finished commit call.
    fn reply(&mut self, cx: &mut Ctx<'_>) {
        let Some(call) = self.call.take() else { return };
        // Only what the commit itself did: assignment changes stay for
        // the next poll, which reports the partitions it owns.
        let events = GroupEvents {
            commits: std::mem::take(&mut self.events.commits),
            ..GroupEvents::default()
        };
        let commit = call.committed.expect("committed");
        cx.reply(
            call.id,
            ClientReply::Group(GroupReply::Committed { commit, events }),
        );
        self.next_call(cx);
    }

    fn next_call(&mut self, cx: &mut Ctx<'_>) {
        if let Some((id, req)) = self.queued.pop_front() {
            self.begin(id, req, cx);
        }
    }

    fn begin(&mut self, id: ReqId, req: GroupRequest, cx: &mut Ctx<'_>) {
        if self.call.is_some() {
            self.queued.push_back((id, req));
            return;
        }
        if req == GroupRequest::Poll {
            self.last_poll = cx.now;
        }
        self.call = Some(Call {
            id,
            req,
            deadline: cx.now.plus_ms(self.cfg.poll_timeout_ms),
            fetching: false,
            committed: None,
            auto_done: false,
        });
        self.drive(cx);
    }

    fn on_group_msg(&mut self, from: NodeId, m: GroupMsg, cx: &mut Ctx<'_>) {
        let corr = m.corr();
        match self.inflight.get(&corr) {
            Some((_, to, _)) if *to == from => {}
            _ => return,
        }
        self.inflight.remove(&corr);
        match m {
            GroupMsg::FindCoordinatorResp { result, .. } => match result {
                Ok(c) => self.coordinator = Some(c),
                Err(_) => self.retry_at = cx.now.plus_ms(self.cfg.retry_backoff_ms),
            },
            GroupMsg::JoinGroupResp { result, .. } => match result {
                Ok(j) => self.on_joined(j, cx),
                Err(e) => {
                    self.phase = Phase::Idle;
                    self.retry_at = cx.now.plus_ms(self.cfg.retry_backoff_ms);
                    match e {
                        GroupError::UnknownMemberId => self.lost = Some(e),
                        GroupError::NotCoordinator
                        | GroupError::CoordinatorNotAvailable
                        | GroupError::CoordinatorLoadInProgress => self.coordinator_lost(),
                        _ => {}
                    }
                }
            },
            GroupMsg::SyncGroupResp { result, .. } => match (result, &self.phase) {
                (Ok(a), Phase::Syncing(g)) => {
                    let mut a = a;
                    a.sort();
                    self.phase = Phase::Assigned(*g, a);
                }
                (Ok(_), _) => {}
                (Err(e), _) => {
                    self.phase = Phase::Idle;
                    match e {
                        GroupError::UnknownMemberId | GroupError::IllegalGeneration => {
                            self.lost = Some(e)
                        }
                        GroupError::NotCoordinator | GroupError::CoordinatorNotAvailable => {
                            self.coordinator_lost()
                        }
                        _ => {}
                    }
                }
            },
            GroupMsg::HeartbeatResp { result, .. } => match result {
                Ok(()) => {}
                Err(GroupError::RebalanceInProgress) => self.need_rejoin = true,
                Err(e @ (GroupError::IllegalGeneration | GroupError::UnknownMemberId)) => {
                    // Only if still in the generation the heartbeat was for.
                    if self.phase != Phase::Joining {
                        self.lost = Some(e)
                    }
                }
                Err(_) => self.coordinator_lost(),
            },
            GroupMsg::LeaveGroupResp { .. } => {}
            GroupMsg::OffsetCommitResp { result, .. } => self.on_commit_result(result, cx),
            GroupMsg::OffsetFetchResp { result, .. } => {
                let Phase::FetchingOffsets(g, added) = self.phase.clone() else {
                    return;
                };
                match result {
                    Ok(offsets) => {
                        for tp in &added {
                            let committed =
                                offsets.iter().find(|(t, _)| t == tp).and_then(|(_, o)| *o);
                            let start = committed.unwrap_or(0);
                            self.fetcher.seek(tp, start);
                            self.owned.push(tp.clone());
                            self.events.assigned.push(AssignedPartition {
                                tp: tp.clone(),
                                committed,
                                start,
                                member: self.member_id.clone(),
                                generation: g,
                                asked: self.offsets_asked,
                            });
                        }
                        self.owned.sort();
                        let owned = self.owned.clone();
                        self.fetcher.assign(&owned);
                        self.generation = g;
                        self.phase = Phase::Stable;
                    }
                    Err(e) => {
                        if matches!(
                            e,
                            GroupError::NotCoordinator | GroupError::CoordinatorNotAvailable
                        ) {
                            self.coordinator_lost();
                        }
                        let mut all = self.owned.clone();
                        all.extend(added);
                        all.sort();
                        self.phase = Phase::Assigned(g, all);
                        self.retry_at = cx.now.plus_ms(self.cfg.retry_backoff_ms);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_tick(&mut self, cx: &mut Ctx<'_>) {
        cx.set_timer_ms(TIMER_TICK, TICK_MS);
        let now = cx.now;
        // Requests gone unanswered.
        let join_timeout = self.cfg.max_poll_interval_ms + self.cfg.request_timeout_ms;
        let expired: Vec<u64> = self
            .inflight
            .iter()
            .filter(|(_, (p, _, at))| {
                let limit = if *p == Pending::Join {
                    join_timeout
                } else {
                    self.cfg.request_timeout_ms
                };
                now.ms_since(*at) > limit
            })
            .map(|(c, _)| *c)
            .collect();
        for c in expired {
            let (p, _, _) = self.inflight.remove(&c).expect("listed");
            if p != Pending::Find && p != Pending::Heartbeat {
                self.coordinator = None;
            }
            self.abandon(p);
        }
        self.commit_deadline_passed(now);
        // The heartbeat thread: poll timeout first, then the heartbeat.
        let in_group = !self.member_id.is_empty()
            && !matches!(self.phase, Phase::Idle | Phase::Joining)
            && self.lost.is_none();
        if in_group
            && !self.bugs.poll_timeout_ignored
            && now.ms_since(self.last_poll) > self.cfg.max_poll_interval_ms
            && !self
                .call
                .as_ref()
                .is_some_and(|c| c.req == GroupRequest::Poll)
        {
            if let Some(to) = self.coordinator {
                let (group, member_id) = (self.cfg.group.clone(), self.member_id.clone());
                self.request(
                    to,
                    Pending::Heartbeat,
                    |corr| GroupMsg::LeaveGroup {
                        corr,
                        group,
                        member_id,
                    },
                    cx,
                );
            }
            self.lost = Some(GroupError::UnknownMemberId);
            self.generation = NO_GENERATION;
        } else if in_group
            && now.ms_since(self.last_heartbeat) >= self.cfg.heartbeat_interval_ms
            && !self.in_flight(&Pending::Heartbeat)
            // BUGGIFY: the heartbeat thread runs late (a busy client).
            && !cx.buggify("group.heartbeat.late")
        {
            if let Some(to) = self.coordinator {
                self.last_heartbeat = now;
                let (group, member_id, generation) =
                    (self.cfg.group.clone(), self.member_id.clone(), self.joined);
                self.request(
                    to,
                    Pending::Heartbeat,
                    |corr| GroupMsg::Heartbeat {
                        corr,
                        group,
                        generation,
                        member_id,
                    },
                    cx,
                );
            }
        }
        self.drive(cx);
    }
}

impl Node for GroupMember {
    fn step(&mut self, input: Input, cx: &mut Ctx<'_>) {
        match input {
            Input::Start { .. } => {
                self.started = true;
                cx.set_timer_ms(TIMER_TICK, TICK_MS);
            }
            _ if !self.started => {}
            Input::Client {
                id,
                req: ClientRequest::Group(req),
            } => self.begin(id, req, cx),
            Input::Client { .. } => {}
            Input::Message {
                from,
                msg: Msg::Group(m),
            } => {
                self.on_group_msg(from, m, cx);
                self.drive(cx);
            }
            Input::Message {
                from,
                msg: Msg::Kafka(m),
            } => {
                let r = self.fetcher.step_embedded(
                    Input::Message {
                        from,
                        msg: Msg::Kafka(m),
                    },
                    TIMER_FETCH_BASE,
                    cx,
                );
                self.on_fetched(r, cx);
            }
            Input::Message { .. } => {}
            Input::ConnLost { peer } => {
                let gone: Vec<u64> = self
                    .inflight
                    .iter()
                    .filter(|(_, (_, to, _))| *to == peer)
                    .map(|(c, _)| *c)
                    .collect();
                for c in gone {
                    let (p, _, _) = self.inflight.remove(&c).expect("listed");
                    if p == Pending::Commit {
                        if let Some(c) = &mut self.commit {
                            c.maybe = true;
                            c.last_error = GroupError::Network;
                        }
                    }
                    self.abandon(p);
                }
                if self.coordinator == Some(peer) {
                    self.coordinator = None;
                }
                let r = self
                    .fetcher
                    .step_embedded(Input::ConnLost { peer }, TIMER_FETCH_BASE, cx);
                self.on_fetched(r, cx);
                self.drive(cx);
            }
            Input::ConnUp { peer } => {
                let r = self
                    .fetcher
                    .step_embedded(Input::ConnUp { peer }, TIMER_FETCH_BASE, cx);
                self.on_fetched(r, cx);
            }
            Input::Timer { timer: TIMER_TICK } => self.on_tick(cx),
            Input::Timer { timer } if timer >= TIMER_FETCH_BASE => {
                let r = self.fetcher.step_embedded(
                    Input::Timer {
                        timer: timer - TIMER_FETCH_BASE,
                    },
                    TIMER_FETCH_BASE,
                    cx,
                );
                self.on_fetched(r, cx);
            }
            Input::Timer { .. } | Input::Disk { .. } => {}
        }
    }

    fn role(&self) -> String {
        format!(
            "member {} g{} {:?} owns {:?}",
            self.member_id, self.generation, self.phase, self.owned
        )
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
