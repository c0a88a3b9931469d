//! The group coordinator a broker hosts (Kafka's GroupCoordinator and
//! GroupMetadataManager, classic protocol), for the groups whose
//! `__consumer_offsets` partition the broker leads.
//!
//! - Membership: JoinGroup (the coordinator names new members; the join
//!   phase ends when every member has rejoined, or at the largest
//!   rebalance timeout, removing those that did not; an empty group's
//!   first rebalance waits `group.initial.rebalance.delay.ms`), SyncGroup
//!   (the leader's assignment, stored as a group-metadata record with
//!   acks=all before anyone gets an answer), Heartbeat (session expiry on
//!   the broker's tick), LeaveGroup.
//! - Offsets: OffsetCommit checks the member and generation as Kafka does
//!   (an empty group takes commits with no generation; CompletingRebalance
//!   answers REBALANCE_IN_PROGRESS; PreparingRebalance still takes the
//!   current generation's, so members can commit as they revoke), then
//!   appends offset records with acks=all and answers once they commit.
//!   OffsetFetch answers from what committed.
//! - Loading: when the broker becomes leader of an offsets partition the
//!   coordinator answers COORDINATOR_LOAD_IN_PROGRESS for `load_ms`, then
//!   replays the partition's log (the latest record of each key wins) and
//!   serves its groups; when leadership goes, the groups are unloaded.
//!
//! The coordinator never touches the log itself: it asks the broker for
//! appends ([`Append`]) and hears back through
//! [`GroupCoordinator::on_append_done`].

use std::collections::BTreeMap;

use rand::Rng;

use crate::group::records::{GroupRecord, MemberRecord};
use crate::group::types::{
    Assignor, Generation, GroupError, GroupMsg, JoinResult, MemberId, Subscription,
};
use crate::group::{offsets_partition, CoordinatorConfig, GroupBugs};
use crate::kafka::{Batch, KafkaError, Tp};
use crate::msg::Msg;
use crate::node::{Ctx, NodeId};
use crate::probe::EventKind;
use crate::time::SimTime;

/// A group's state (Kafka's GroupState).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupState {
    /// No members (offsets may still be kept).
    Empty,
    /// Waiting for the members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Unloaded or deleted.
    Dead,
}

/// A read-only view of a group, for checks after a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupView {
    /// The state.
    pub state: GroupState,
    /// The generation.
    pub generation: Generation,
    /// Member id -> assignment.
    pub members: BTreeMap<MemberId, Vec<Tp>>,
    /// Committed offsets.
    pub offsets: BTreeMap<Tp, u64>,
}

/// An append the coordinator asks its broker for: `values` to the
/// offsets partition `partition`, answered through
/// [`GroupCoordinator::on_append_done`] with `token`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Append {
    /// The `__consumer_offsets` partition.
    pub partition: u32,
    /// The encoded records.
    pub values: Vec<Vec<u8>>,
    /// Echoed in the completion.
    pub token: u64,
    /// acks=all (the faithful default) or the leader's append only.
    pub acks_all: bool,
    /// How long the write may wait for replication.
    pub timeout_ms: u64,
}

#[derive(Clone, Debug)]
struct Member {
    client: NodeId,
    session_timeout_ms: u64,
    rebalance_timeout_ms: u64,
    protocols: Vec<Assignor>,
    subscription: Subscription,
    assignment: Vec<Tp>,
    last_heartbeat: SimTime,
    awaiting_join: Option<u64>,
    awaiting_sync: Option<u64>,
}

#[derive(Clone, Debug)]
struct Group {
    partition: u32,
    state: GroupState,
    generation: Generation,
    protocol: Option<Assignor>,
    leader: MemberId,
    members: BTreeMap<MemberId, Member>,
    offsets: BTreeMap<Tp, u64>,
    /// The join phase ends at this time at the latest.
    join_deadline: SimTime,
    /// An empty group's first rebalance does not end before this.
    join_not_before: SimTime,
}

impl Group {
    fn new(partition: u32) -> Group {
        Group {
            partition,
            state: GroupState::Empty,
            generation: 0,
            protocol: None,
            leader: MemberId::new(),
            members: BTreeMap::new(),
            offsets: BTreeMap::new(),
            join_deadline: SimTime::ZERO,
            join_not_before: SimTime::ZERO,
        }
    }
}

#[derive(Clone, Debug)]
enum Write {
    Commit {
        group: String,
        client: NodeId,
        corr: u64,
        offsets: Vec<(Tp, u64)>,
    },
    Store {
        group: String,
        generation: Generation,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Load {
    Loading { until: SimTime, epoch: u32 },
    Loaded { epoch: u32 },
}

/// The group coordinator of one broker.
pub struct GroupCoordinator {
    cfg: CoordinatorConfig,
    bugs: GroupBugs,
    loads: BTreeMap<u32, Load>,
    groups: BTreeMap<String, Group>,
    writes: BTreeMap<u64, Write>,
    next_token: u64,
}

fn send(cx: &mut Ctx<'_>, to: NodeId, m: GroupMsg) {
    cx.send(to, Msg::Group(m));
}

/// The error a member hears for a failed append: definite ones only when
/// nothing was appended.
fn append_error(e: KafkaError) -> GroupError {
    match e {
        // Refused before anything was appended.
        KafkaError::NotEnoughReplicas => GroupError::CoordinatorNotAvailable,
        KafkaError::UnknownTopicOrPartition => GroupError::NotCoordinator,
        // Anything else (appended, then leadership moved or the write
        // timed out) may survive: the member cannot know.
        _ => GroupError::RequestTimedOut,
    }
}

impl GroupCoordinator {
    /// A coordinator with settings `cfg` and the planted bugs `bugs`.
    pub fn new(cfg: CoordinatorConfig, bugs: GroupBugs) -> GroupCoordinator {
        GroupCoordinator {
            cfg,
            bugs,
            loads: BTreeMap::new(),
            groups: BTreeMap::new(),
            writes: BTreeMap::new(),
            next_token: 1,
        }
    }

    /// The settings.
    pub fn config(&self) -> &CoordinatorConfig {
        &self.cfg
    }

    /// The groups this coordinator serves, for checks after a run.
    pub fn groups(&self) -> BTreeMap<String, GroupView> {
        self.groups
            .iter()
            .map(|(id, g)| {
                (
                    id.clone(),
                    GroupView {
                        state: g.state,
                        generation: g.generation,
                        members: g
                            .members
                            .iter()
                            .map(|(m, x)| (m.clone(), x.assignment.clone()))
                            .collect(),
                        offsets: g.offsets.clone(),
                    },
                )
            })
            .collect()
    }

    /// Whether it coordinates a group now (has a group loaded).
    pub fn coordinates(&self) -> bool {
        !self.groups.is_empty()
    }

    /// Whether the coordinator serves (has loaded) offsets partition `p`.
    pub fn serves(&self, p: u32) -> bool {
        matches!(self.loads.get(&p), Some(Load::Loaded { .. }))
    }

    /// The broker now leads these offsets partitions (partition -> leader
    /// epoch): new ones start loading, lost ones are unloaded.
    pub fn set_leadership(&mut self, led: &BTreeMap<u32, u32>, now: SimTime, cx: &mut Ctx<'_>) {
        let gone: Vec<u32> = self
            .loads
            .iter()
            .filter(|(p, l)| {
                let epoch = match l {
                    Load::Loading { epoch, .. } | Load::Loaded { epoch } => *epoch,
                };
                led.get(p) != Some(&epoch)
            })
            .map(|(p, _)| *p)
            .collect();
        for p in gone {
            self.unload(p, cx);
        }
        for (&p, &epoch) in led {
            self.loads.entry(p).or_insert(Load::Loading {
                until: now.plus_ms(self.cfg.load_ms),
                epoch,
            });
        }
    }

    /// Offsets partitions whose load is due: the broker answers each with
    /// [`GroupCoordinator::load`].
    pub fn due_loads(&self, now: SimTime) -> Vec<u32> {
        self.loads
            .iter()
            .filter(|(_, l)| matches!(l, Load::Loading { until, .. } if now >= *until))
            .map(|(p, _)| *p)
            .collect()
    }

    /// Replays offsets partition `p`'s log and starts serving its groups.
    pub fn load(&mut self, p: u32, batches: &[Batch], now: SimTime) {
        let Some(Load::Loading { epoch, .. }) = self.loads.get(&p).copied() else {
            return;
        };
        self.loads.insert(p, Load::Loaded { epoch });
        for b in batches {
            for v in &b.values {
                let Some(rec) = GroupRecord::decode(v) else {
                    continue;
                };
                let g = self
                    .groups
                    .entry(rec.group().to_string())
                    .or_insert_with(|| Group::new(p));
                match rec {
                    GroupRecord::Offset { tp, offset, .. } => {
                        g.offsets.insert(tp, offset);
                    }
                    GroupRecord::Group {
                        generation,
                        protocol,
                        leader,
                        members,
                        ..
                    } => {
                        g.generation = generation;
                        g.protocol = protocol;
                        g.leader = leader;
                        g.state = if members.is_empty() {
                            GroupState::Empty
                        } else {
                            GroupState::Stable
                        };
                        g.members = members
                            .into_iter()
                            .map(|m| {
                                (
                                    m.id,
                                    Member {
                                        client: 0,
                                        session_timeout_ms: m.session_timeout_ms,
                                        rebalance_timeout_ms: m.rebalance_timeout_ms,
                                        protocols: protocol.into_iter().collect(),
                                        subscription: m.subscription,
                                        assignment: m.assignment,
                                        // Every loaded member gets a full
                                        // session from now, as Kafka
                                        // schedules their expiry on load.
                                        last_heartbeat: now,
                                        awaiting_join: None,
                                        awaiting_sync: None,
                                    },
                                )
                            })
                            .collect();
                    }
                }
            }
        }
    }

    fn unload(&mut self, p: u32, cx: &mut Ctx<'_>) {
        self.loads.remove(&p);
        let ids: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.partition == p)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let g = self.groups.remove(&id).expect("listed");
            for m in g.members.values() {
                if let Some(corr) = m.awaiting_join {
                    send(
                        cx,
                        m.client,
                        GroupMsg::JoinGroupResp {
                            corr,
                            result: Err(GroupError::NotCoordinator),
                        },
                    );
                }
                if let Some(corr) = m.awaiting_sync {
                    send(
                        cx,
                        m.client,
                        GroupMsg::SyncGroupResp {
                            corr,
                            result: Err(GroupError::NotCoordinator),
                        },
                    );
                }
            }
        }
    }

    /// Whether `group` can be served here now, or the error to answer.
    fn check_serving(&self, group: &str) -> Result<u32, GroupError> {
        let p = offsets_partition(group, self.cfg.offsets_partitions);
        match self.loads.get(&p) {
            Some(Load::Loaded { .. }) => Ok(p),
            Some(Load::Loading { .. }) => Err(GroupError::CoordinatorLoadInProgress),
            None => Err(GroupError::NotCoordinator),
        }
    }

    fn group_mut(&mut self, group: &str, p: u32) -> &mut Group {
        self.groups
            .entry(group.to_string())
            .or_insert_with(|| Group::new(p))
    }

    /// Handles a group request from `from`; appends it needs go to `out`.
    pub fn on_msg(&mut self, from: NodeId, m: GroupMsg, cx: &mut Ctx<'_>, out: &mut Vec<Append>) {
        let now = cx.now;
        match m {
            GroupMsg::JoinGroup {
                corr,
                group,
                member_id,
                session_timeout_ms,
                rebalance_timeout_ms,
                protocols,
                subscription,
            } => {
                let result = self.join(
                    from,
                    corr,
                    &group,
                    member_id,
                    (session_timeout_ms, rebalance_timeout_ms),
                    protocols,
                    subscription,
                    cx,
                );
                match result {
                    Err(e) => send(
                        cx,
                        from,
                        GroupMsg::JoinGroupResp {
                            corr,
                            result: Err(e),
                        },
                    ),
                    Ok(()) => self.maybe_complete_join(&group, now, cx, out),
                }
            }
            GroupMsg::SyncGroup {
                corr,
                group,
                generation,
                member_id,
                assignments,
            } => {
                if let Err(e) = self.sync(
                    from,
                    corr,
                    &group,
                    generation,
                    &member_id,
                    assignments,
                    cx,
                    out,
                ) {
                    send(
                        cx,
                        from,
                        GroupMsg::SyncGroupResp {
                            corr,
                            result: Err(e),
                        },
                    );
                }
            }
            GroupMsg::Heartbeat {
                corr,
                group,
                generation,
                member_id,
            } => {
                let result = self.heartbeat(&group, generation, &member_id, now);
                send(cx, from, GroupMsg::HeartbeatResp { corr, result });
            }
            GroupMsg::LeaveGroup {
                corr,
                group,
                member_id,
            } => {
                let result = self.check_serving(&group).and_then(|p| {
                    let g = self.group_mut(&group, p);
                    if g.members.contains_key(&member_id) {
                        Ok(())
                    } else {
                        Err(GroupError::UnknownMemberId)
                    }
                });
                if result.is_ok() {
                    self.remove_member(&group, &member_id, now, cx, out);
                }
                send(cx, from, GroupMsg::LeaveGroupResp { corr, result });
            }
            GroupMsg::OffsetCommit {
                corr,
                group,
                generation,
                member_id,
                offsets,
            } => {
                let check = self.check_commit(&group, generation, &member_id, now);
                match check {
                    Err(e) => send(
                        cx,
                        from,
                        GroupMsg::OffsetCommitResp {
                            corr,
                            result: Err(e),
                        },
                    ),
                    Ok(p) => {
                        let values = offsets
                            .iter()
                            .map(|(tp, o)| {
                                GroupRecord::Offset {
                                    group: group.clone(),
                                    tp: tp.clone(),
                                    offset: *o,
                                }
                                .encode()
                            })
                            .collect();
                        cx.event(EventKind::OffsetCommit, cx.me);
                        self.write(
                            p,
                            values,
                            Write::Commit {
                                group,
                                client: from,
                                corr,
                                offsets,
                            },
                            out,
                        );
                    }
                }
            }
            GroupMsg::OffsetFetch { corr, group, tps } => {
                let result = self.check_serving(&group).map(|_| {
                    let offsets = self.groups.get(&group).map(|g| &g.offsets);
                    tps.iter()
                        .map(|tp| (tp.clone(), offsets.and_then(|o| o.get(tp)).copied()))
                        .collect()
                });
                send(cx, from, GroupMsg::OffsetFetchResp { corr, result });
            }
            // Answers and FindCoordinator are not the coordinator's.
            _ => {}
        }
    }

    fn write(&mut self, p: u32, values: Vec<Vec<u8>>, w: Write, out: &mut Vec<Append>) {
        let token = self.next_token;
        self.next_token += 1;
        self.writes.insert(token, w);
        out.push(Append {
            partition: p,
            values,
            token,
            acks_all: !self.bugs.offsets_not_replicated,
            timeout_ms: self.cfg.commit_timeout_ms,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn join(
        &mut self,
        from: NodeId,
        corr: u64,
        group: &str,
        member_id: MemberId,
        (session_timeout_ms, rebalance_timeout_ms): (u64, u64),
        protocols: Vec<Assignor>,
        subscription: Subscription,
        cx: &mut Ctx<'_>,
    ) -> Result<(), GroupError> {
        let p = self.check_serving(group)?;
        if session_timeout_ms < self.cfg.min_session_timeout_ms
            || session_timeout_ms > self.cfg.max_session_timeout_ms
        {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        let now = cx.now;
        let new_member = member_id.is_empty();
        let id = if new_member {
            format!("c{from}-{:08x}", cx.rng.gen::<u32>())
        } else {
            member_id
        };
        let initial_delay = self.cfg.initial_rebalance_delay_ms;
        let g = self.group_mut(group, p);
        if !new_member && !g.members.contains_key(&id) {
            return Err(GroupError::UnknownMemberId);
        }
        if let Some(proto) = g.protocol {
            if !g.members.is_empty() && !protocols.contains(&proto) {
                return Err(GroupError::InconsistentGroupProtocol);
            }
        }
        let m = g.members.entry(id.clone()).or_insert_with(|| Member {
            client: from,
            session_timeout_ms,
            rebalance_timeout_ms,
            protocols: protocols.clone(),
            subscription: subscription.clone(),
            assignment: Vec::new(),
            last_heartbeat: now,
            awaiting_join: None,
            awaiting_sync: None,
        });
        if let Some(old) = m.awaiting_join.take() {
            // A retried join replaces the earlier one.
            send(
                cx,
                m.client,
                GroupMsg::JoinGroupResp {
                    corr: old,
                    result: Err(GroupError::RebalanceInProgress),
                },
            );
        }
        m.client = from;
        m.session_timeout_ms = session_timeout_ms;
        m.rebalance_timeout_ms = rebalance_timeout_ms;
        m.protocols = protocols;
        m.subscription = subscription;
        m.last_heartbeat = now;
        m.awaiting_join = Some(corr);
        match g.state {
            GroupState::PreparingRebalance => {}
            GroupState::Empty | GroupState::Dead => {
                Self::prepare(g, now, cx);
                g.join_not_before = now.plus_ms(initial_delay);
            }
            GroupState::Stable | GroupState::CompletingRebalance => {
                Self::prepare(g, now, cx);
                Self::fail_syncs(g, cx);
            }
        }
        Ok(())
    }

    /// Enters PreparingRebalance: the join phase lasts at most the largest
    /// rebalance timeout of the members.
    fn prepare(g: &mut Group, now: SimTime, cx: &mut Ctx<'_>) {
        cx.event(EventKind::RebalanceStart, cx.me);
        g.state = GroupState::PreparingRebalance;
        let t = g
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0);
        g.join_deadline = now.plus_ms(t);
        g.join_not_before = now;
    }

    fn fail_syncs(g: &mut Group, cx: &mut Ctx<'_>) {
        for m in g.members.values_mut() {
            if let Some(corr) = m.awaiting_sync.take() {
                send(
                    cx,
                    m.client,
                    GroupMsg::SyncGroupResp {
                        corr,
                        result: Err(GroupError::RebalanceInProgress),
                    },
                );
            }
        }
    }

    /// Ends the join phase if every member has rejoined (after any
    /// initial delay) or the deadline passed: members that did not rejoin
    /// are removed, the generation advances, and the joiners hear back.
    fn maybe_complete_join(
        &mut self,
        group: &str,
        now: SimTime,
        cx: &mut Ctx<'_>,
        out: &mut Vec<Append>,
    ) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if g.state != GroupState::PreparingRebalance {
            return;
        }
        let all_joined = g.members.values().all(|m| m.awaiting_join.is_some());
        if !(all_joined && now >= g.join_not_before) && now < g.join_deadline {
            return;
        }
        g.members.retain(|_, m| m.awaiting_join.is_some());
        g.generation += 1;
        cx.event(EventKind::RebalanceEnd, cx.me);
        tracing::info!(
            "group {group}: generation {} with members {:?}",
            g.generation,
            g.members.keys().collect::<Vec<_>>()
        );
        if g.members.is_empty() {
            g.state = GroupState::Empty;
            g.protocol = None;
            g.leader.clear();
            let rec = GroupRecord::Group {
                group: group.to_string(),
                generation: g.generation,
                protocol: None,
                leader: String::new(),
                members: vec![],
            };
            let (p, generation) = (g.partition, g.generation);
            self.write(
                p,
                vec![rec.encode()],
                Write::Store {
                    group: group.to_string(),
                    generation,
                },
                out,
            );
            return;
        }
        // The first protocol every member supports, in the first member's
        // order of preference.
        let first = g.members.values().next().expect("members");
        let protocol = first
            .protocols
            .iter()
            .copied()
            .find(|p| g.members.values().all(|m| m.protocols.contains(p)))
            .unwrap_or(Assignor::Range);
        g.protocol = Some(protocol);
        if !g.members.contains_key(&g.leader) {
            g.leader = g.members.keys().next().expect("members").clone();
        }
        g.state = GroupState::CompletingRebalance;
        let everyone: Vec<(MemberId, Subscription)> = g
            .members
            .iter()
            .map(|(id, m)| (id.clone(), m.subscription.clone()))
            .collect();
        let (generation, leader) = (g.generation, g.leader.clone());
        for (id, m) in g.members.iter_mut() {
            let corr = m.awaiting_join.take().expect("joined");
            m.last_heartbeat = now;
            let members = if *id == leader {
                everyone.clone()
            } else {
                Vec::new()
            };
            send(
                cx,
                m.client,
                GroupMsg::JoinGroupResp {
                    corr,
                    result: Ok(JoinResult {
                        generation,
                        protocol,
                        leader: leader.clone(),
                        member_id: id.clone(),
                        members,
                    }),
                },
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn sync(
        &mut self,
        from: NodeId,
        corr: u64,
        group: &str,
        generation: Generation,
        member_id: &str,
        assignments: Vec<(MemberId, Vec<Tp>)>,
        cx: &mut Ctx<'_>,
        out: &mut Vec<Append>,
    ) -> Result<(), GroupError> {
        let p = self.check_serving(group)?;
        let now = cx.now;
        let g = self.group_mut(group, p);
        let Some(m) = g.members.get_mut(member_id) else {
            return Err(GroupError::UnknownMemberId);
        };
        if generation != g.generation {
            return Err(GroupError::IllegalGeneration);
        }
        m.last_heartbeat = now;
        match g.state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            GroupState::Stable => {
                let a = m.assignment.clone();
                send(
                    cx,
                    from,
                    GroupMsg::SyncGroupResp {
                        corr,
                        result: Ok(a),
                    },
                );
                Ok(())
            }
            GroupState::CompletingRebalance => {
                m.client = from;
                m.awaiting_sync = Some(corr);
                if member_id == g.leader {
                    for m in g.members.values_mut() {
                        m.assignment.clear();
                    }
                    for (id, tps) in assignments {
                        if let Some(m) = g.members.get_mut(&id) {
                            m.assignment = tps;
                        }
                    }
                    let rec = GroupRecord::Group {
                        group: group.to_string(),
                        generation: g.generation,
                        protocol: g.protocol,
                        leader: g.leader.clone(),
                        members: g
                            .members
                            .iter()
                            .map(|(id, m)| MemberRecord {
                                id: id.clone(),
                                session_timeout_ms: m.session_timeout_ms,
                                rebalance_timeout_ms: m.rebalance_timeout_ms,
                                subscription: m.subscription.clone(),
                                assignment: m.assignment.clone(),
                            })
                            .collect(),
                    };
                    let gen = g.generation;
                    self.write(
                        p,
                        vec![rec.encode()],
                        Write::Store {
                            group: group.to_string(),
                            generation: gen,
                        },
                        out,
                    );
                }
                Ok(())
            }
            GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMemberId),
        }
    }

    fn heartbeat(
        &mut self,
        group: &str,
        generation: Generation,
        member_id: &str,
        now: SimTime,
    ) -> Result<(), GroupError> {
        let p = self.check_serving(group)?;
        let g = self.group_mut(group, p);
        let state = g.state;
        let current = g.generation;
        let Some(m) = g.members.get_mut(member_id) else {
            return Err(GroupError::UnknownMemberId);
        };
        match state {
            GroupState::PreparingRebalance => {
                m.last_heartbeat = now;
                Err(GroupError::RebalanceInProgress)
            }
            _ if generation != current => Err(GroupError::IllegalGeneration),
            GroupState::CompletingRebalance | GroupState::Stable => {
                m.last_heartbeat = now;
                Ok(())
            }
            GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMemberId),
        }
    }

    /// Kafka's checks before an offset commit is written; the partition
    /// to write it to.
    fn check_commit(
        &mut self,
        group: &str,
        generation: Generation,
        member_id: &str,
        now: SimTime,
    ) -> Result<u32, GroupError> {
        let p = self.check_serving(group)?;
        if self.bugs.commit_ignores_generation {
            return Ok(p);
        }
        let g = self.group_mut(group, p);
        if generation < 0 && g.state == GroupState::Empty {
            // A standalone consumer's commit.
            return Ok(p);
        }
        if g.state == GroupState::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        let current = g.generation;
        let Some(m) = g.members.get_mut(member_id) else {
            return Err(GroupError::UnknownMemberId);
        };
        if generation != current {
            return Err(GroupError::IllegalGeneration);
        }
        m.last_heartbeat = now;
        Ok(p)
    }

    fn remove_member(
        &mut self,
        group: &str,
        member_id: &str,
        now: SimTime,
        cx: &mut Ctx<'_>,
        out: &mut Vec<Append>,
    ) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let Some(m) = g.members.remove(member_id) else {
            return;
        };
        if let Some(corr) = m.awaiting_join {
            send(
                cx,
                m.client,
                GroupMsg::JoinGroupResp {
                    corr,
                    result: Err(GroupError::UnknownMemberId),
                },
            );
        }
        match g.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                Self::prepare(g, now, cx);
                Self::fail_syncs(g, cx);
            }
            _ => {}
        }
        self.maybe_complete_join(group, now, cx, out);
    }

    /// The periodic duties: session expiry and join deadlines.
    pub fn tick(&mut self, cx: &mut Ctx<'_>, out: &mut Vec<Append>) {
        let now = cx.now;
        let mut expired = Vec::new();
        for (gid, g) in &self.groups {
            if !self.serves(g.partition) {
                continue;
            }
            for (mid, m) in &g.members {
                let alive = m.awaiting_join.is_some()
                    || now.ms_since(m.last_heartbeat) <= m.session_timeout_ms;
                if !alive {
                    expired.push((gid.clone(), mid.clone()));
                }
            }
        }
        for (g, m) in expired {
            self.remove_member(&g, &m, now, cx, out);
        }
        let preparing: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.state == GroupState::PreparingRebalance && self.serves(g.partition))
            .map(|(id, _)| id.clone())
            .collect();
        for g in preparing {
            self.maybe_complete_join(&g, now, cx, out);
        }
    }

    /// An append asked for with `token` completed (`Ok`: committed under
    /// the write's acks) or failed.
    pub fn on_append_done(
        &mut self,
        token: u64,
        result: Result<u64, KafkaError>,
        cx: &mut Ctx<'_>,
        out: &mut Vec<Append>,
    ) {
        let Some(w) = self.writes.remove(&token) else {
            return;
        };
        let now = cx.now;
        match w {
            Write::Commit {
                group,
                client,
                corr,
                offsets,
            } => {
                let result = match result {
                    Ok(_) => {
                        if let Some(g) = self.groups.get_mut(&group) {
                            for (tp, o) in offsets {
                                g.offsets.insert(tp, o);
                            }
                        }
                        Ok(())
                    }
                    Err(e) => Err(append_error(e)),
                };
                send(cx, client, GroupMsg::OffsetCommitResp { corr, result });
            }
            Write::Store { group, generation } => {
                let Some(g) = self.groups.get_mut(&group) else {
                    return;
                };
                if g.generation != generation {
                    return;
                }
                match result {
                    Ok(_) if g.state == GroupState::CompletingRebalance => {
                        g.state = GroupState::Stable;
                        for m in g.members.values_mut() {
                            if let Some(corr) = m.awaiting_sync.take() {
                                send(
                                    cx,
                                    m.client,
                                    GroupMsg::SyncGroupResp {
                                        corr,
                                        result: Ok(m.assignment.clone()),
                                    },
                                );
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // Kafka answers the pending syncs with the error
                        // and rebalances again.
                        let err = append_error(e);
                        for m in g.members.values_mut() {
                            m.assignment.clear();
                            if let Some(corr) = m.awaiting_sync.take() {
                                send(
                                    cx,
                                    m.client,
                                    GroupMsg::SyncGroupResp {
                                        corr,
                                        result: Err(err),
                                    },
                                );
                            }
                        }
                        if g.state == GroupState::CompletingRebalance {
                            Self::prepare(g, now, cx);
                        }
                        self.maybe_complete_join(&group, now, cx, out);
                    }
                }
            }
        }
    }
}
