//! The controller's duties (ZooKeeper mode), run by the broker that holds
//! the ephemeral `/controller` and bumped `/controller_epoch`.
//!
//! Every tick the controller reads the cluster from ZooKeeper (the live
//! broker registrations with their creation zxids, the topics and their
//! assignments, every partition state) and then reconciles:
//! - a partition without state gets one: the first live assigned replica
//!   leads, the live assigned replicas form the ISR;
//! - a partition whose leader is gone gets the first live ISR member as
//!   leader (an out-of-sync live replica only with
//!   `unclean.leader.election.enable`), or goes offline; dead replicas
//!   leave the ISR; every such change bumps the leader epoch;
//! - a broker whose registration is new (or re-created by a restart, seen
//!   from its creation zxid, as KIP-380 broker epochs do) first counts as
//!   failed, then gets LeaderAndIsr for all its partitions.
//!
//! Writes are ZooKeeper multis guarded by a check of `/controller_epoch`'s
//! version, so a controller that lost its office cannot write (KAFKA-6082);
//! a failed check makes it resign. After a write it sends LeaderAndIsr to
//! the partition's replicas and UpdateMetadata to every live broker, both
//! carrying its epoch, through its per-broker channels (`channel`). ISR
//! changes made by leaders are picked up by the next read and announced
//! with UpdateMetadata.

use std::collections::{BTreeMap, BTreeSet};

use crate::kafka::broker::{KafkaBroker, ZkPurpose};
use crate::kafka::channel::Channels;
use crate::kafka::types::{KafkaMsg, PartitionInfo, PartitionState, Tp};
use crate::kafka::zkdata;
use crate::node::{Ctx, NodeId};
use crate::probe::EventKind;
use crate::time::SimTime;
use crate::zk::{CreateMode, ZkError, ZkOp, ZkReply, ZkResponse};

/// Why the controller sent a ZooKeeper request.
#[derive(Clone, Debug)]
pub(crate) enum CtlPurpose {
    EpochCheck,
    Brokers,
    BrokerStat(NodeId),
    Topics,
    TopicData(String),
    State(Tp),
    Write { tp: Tp, state: PartitionState },
    Parent,
}

/// The controller's view, rebuilt from ZooKeeper every cycle.
pub(crate) struct Controller {
    pub(crate) epoch: u32,
    epoch_version: i32,
    outstanding: usize,
    writes: usize,
    cycle_ok: bool,
    /// Registrations read this cycle: broker -> creation zxid.
    live: BTreeMap<NodeId, u64>,
    /// Registrations already handled: broker -> creation zxid.
    known: BTreeMap<NodeId, u64>,
    /// Brokers currently considered alive.
    alive: BTreeSet<NodeId>,
    /// The request queue to each live broker.
    pub(crate) channels: Channels,
    topics: BTreeMap<String, BTreeMap<u32, Vec<NodeId>>>,
    states: BTreeMap<Tp, (PartitionState, i32)>,
    announced: BTreeMap<Tp, i32>,
    /// The leader epoch last sent in LeaderAndIsr, per partition.
    sent_lai: BTreeMap<Tp, u32>,
    /// When the next leader-imbalance check is due (set on the first
    /// reconcile: Kafka's first check comes a while after the election).
    rebalance_at: Option<SimTime>,
    /// Brokers in a controlled shutdown (see `shutdown`).
    shutting_down: BTreeSet<NodeId>,
    /// ControlledShutdown requests to answer: broker, correlation id, and
    /// whether a reconcile has acted on it (it is answered once that
    /// reconcile's writes are done).
    shutdown_requests: Vec<(NodeId, u64, bool)>,
    /// The live brokers last announced in UpdateMetadata.
    announced_live: BTreeSet<NodeId>,
}

impl Controller {
    pub(crate) fn new(epoch: u32, epoch_version: i32) -> Controller {
        Controller {
            epoch,
            epoch_version,
            outstanding: 0,
            writes: 0,
            cycle_ok: true,
            live: BTreeMap::new(),
            known: BTreeMap::new(),
            alive: BTreeSet::new(),
            channels: Channels::default(),
            topics: BTreeMap::new(),
            states: BTreeMap::new(),
            announced: BTreeMap::new(),
            sent_lai: BTreeMap::new(),
            rebalance_at: None,
            shutting_down: BTreeSet::new(),
            shutdown_requests: Vec::new(),
            announced_live: BTreeSet::new(),
        }
    }

    fn replicas_of(&self, tp: &Tp) -> Vec<NodeId> {
        self.topics
            .get(&tp.topic)
            .and_then(|a| a.get(&tp.partition))
            .cloned()
            .unwrap_or_default()
    }

    fn info(&self, tp: &Tp) -> Option<PartitionInfo> {
        let (state, v) = self.states.get(tp)?;
        Some(PartitionInfo {
            tp: tp.clone(),
            state: state.clone(),
            replicas: self.replicas_of(tp),
            zk_version: *v,
        })
    }

    fn partitions(&self) -> Vec<Tp> {
        self.topics
            .iter()
            .flat_map(|(t, a)| a.keys().map(move |p| Tp::new(t, *p)))
            .collect()
    }

    /// The creation zxid of `broker`'s registration as last read, if it is
    /// registered.
    pub(crate) fn registration(&self, broker: NodeId) -> Option<u64> {
        self.known.get(&broker).or(self.live.get(&broker)).copied()
    }

    /// `broker` asked for a controlled shutdown (correlation id `corr`).
    pub(crate) fn begin_broker_shutdown(&mut self, broker: NodeId, corr: u64) {
        self.shutting_down.insert(broker);
        self.shutdown_requests.push((broker, corr, false));
    }

    /// The partitions `broker` leads whose replication factor is above one
    /// (what Kafka's controlled shutdown answers with).
    fn led_by(&self, broker: NodeId) -> Vec<Tp> {
        self.states
            .iter()
            .filter(|(tp, (s, _))| s.leader == Some(broker) && self.replicas_of(tp).len() > 1)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// Kafka's `checkAndTriggerAutoLeaderRebalance`: the partitions of every
    /// broker whose share of preferred partitions led by another broker
    /// (or by none) is above `pct` percent, restricted to those whose
    /// preferred replica is alive and in the ISR (the only replica the
    /// preferred-replica election may choose).
    fn imbalanced(&self, alive: &BTreeSet<NodeId>, pct: u64) -> BTreeSet<Tp> {
        let mut by_preferred: BTreeMap<NodeId, Vec<(Tp, bool)>> = BTreeMap::new();
        for tp in self.partitions() {
            let Some(&preferred) = self.replicas_of(&tp).first() else {
                continue;
            };
            let Some((st, _)) = self.states.get(&tp) else {
                continue;
            };
            let moved = st.leader != Some(preferred);
            by_preferred.entry(preferred).or_default().push((tp, moved));
        }
        let mut out = BTreeSet::new();
        for (preferred, parts) in by_preferred {
            let moved = parts.iter().filter(|p| p.1).count() as u64;
            if moved * 100 <= pct * parts.len() as u64 {
                continue;
            }
            for (tp, m) in parts {
                let in_isr = self.states[&tp].0.isr.contains(&preferred);
                if m && alive.contains(&preferred) && in_isr {
                    out.insert(tp);
                }
            }
        }
        out
    }
}

/// The delay from a controller's election to its first leader-imbalance
/// check (Kafka's 5 s, scaled as its 18 s session is to 600 ms).
const FIRST_REBALANCE_MS: u64 = 170;

impl KafkaBroker {
    fn ctl_call(&mut self, op: ZkOp, p: CtlPurpose, cx: &mut Ctx<'_>) {
        if let Some(c) = self.controller.as_mut() {
            c.outstanding += 1;
        }
        self.zk_call(op, ZkPurpose::Ctl(p), cx);
    }

    fn get(path: &str) -> ZkOp {
        ZkOp::GetData {
            path: path.to_string(),
            watch: false,
        }
    }

    /// Starts a read cycle unless one (or a write) is in flight.
    pub(crate) fn controller_tick(&mut self, cx: &mut Ctx<'_>) {
        let Some(c) = self.controller.as_mut() else {
            return;
        };
        if c.outstanding > 0 || c.writes > 0 {
            return;
        }
        c.cycle_ok = true;
        c.live.clear();
        let parts = c.partitions();
        self.ctl_call(
            Self::get(zkdata::CONTROLLER_EPOCH),
            CtlPurpose::EpochCheck,
            cx,
        );
        self.ctl_call(
            ZkOp::GetChildren {
                path: zkdata::BROKER_IDS.into(),
                watch: false,
            },
            CtlPurpose::Brokers,
            cx,
        );
        self.ctl_call(
            ZkOp::GetChildren {
                path: zkdata::TOPICS.into(),
                watch: false,
            },
            CtlPurpose::Topics,
            cx,
        );
        for tp in parts {
            let path = zkdata::state_paths(&tp)[2].clone();
            self.ctl_call(Self::get(&path), CtlPurpose::State(tp), cx);
        }
    }

    pub(crate) fn on_ctl_reply(&mut self, p: CtlPurpose, r: ZkReply, cx: &mut Ctx<'_>) {
        if self.controller.is_none() {
            return;
        }
        if r.result == Err(ZkError::SessionExpired) || r.session != self.registered_session {
            self.resign();
            return;
        }
        match p {
            CtlPurpose::Parent => return,
            CtlPurpose::Write { tp, state } => {
                self.on_ctl_write(tp, state, r, cx);
                return;
            }
            _ => {}
        }
        let c = self.controller.as_mut().expect("controller");
        c.outstanding -= 1;
        let mut follow = Vec::new();
        match (p, r.result) {
            (CtlPurpose::EpochCheck, Ok(ZkResponse::Data(_, st))) => {
                if st.version != c.epoch_version {
                    // Another controller bumped the epoch: we are a zombie.
                    self.resign();
                    return;
                }
            }
            (CtlPurpose::Brokers, Ok(ZkResponse::Children(ids, _))) => {
                for id in ids.iter().filter_map(|s| s.parse::<NodeId>().ok()) {
                    follow.push((
                        ZkOp::Exists {
                            path: zkdata::broker_path(id),
                            watch: false,
                        },
                        CtlPurpose::BrokerStat(id),
                    ));
                }
            }
            (CtlPurpose::BrokerStat(id), Ok(ZkResponse::Exists(st))) => {
                if let Some(st) = st {
                    c.live.insert(id, st.czxid);
                }
            }
            (CtlPurpose::Topics, Ok(ZkResponse::Children(ts, _))) => {
                for t in ts {
                    if !c.topics.contains_key(&t) {
                        let path = zkdata::topic_path(&t);
                        follow.push((Self::get(&path), CtlPurpose::TopicData(t)));
                    }
                }
            }
            (CtlPurpose::TopicData(t), Ok(ZkResponse::Data(d, _))) => {
                if let Some(a) = zkdata::decode_assignment(&d) {
                    // Read the new topic's partition states in this cycle,
                    // so the reconcile sees them.
                    for p in a.keys() {
                        let tp = Tp::new(&t, *p);
                        let path = zkdata::state_paths(&tp)[2].clone();
                        follow.push((Self::get(&path), CtlPurpose::State(tp)));
                    }
                    c.topics.insert(t, a);
                }
            }
            (CtlPurpose::State(tp), Ok(ZkResponse::Data(d, st))) => {
                if let Some(s) = zkdata::decode_state(&d) {
                    c.states.insert(tp, (s, st.version));
                }
            }
            (CtlPurpose::State(tp), Err(ZkError::NoNode)) => {
                c.states.remove(&tp);
            }
            (CtlPurpose::TopicData(_), Err(ZkError::NoNode)) => {}
            _ => c.cycle_ok = false,
        }
        for (op, p) in follow {
            self.ctl_call(op, p, cx);
        }
        let c = self.controller.as_ref().expect("controller");
        if c.outstanding == 0 && c.cycle_ok {
            self.reconcile(cx);
        }
    }

    fn reconcile(&mut self, cx: &mut Ctx<'_>) {
        let unclean = self.cfg.unclean_leader_election || self.bugs.unclean_election;
        let c = self.controller.as_mut().expect("controller");
        // A registration with a new creation zxid is a restart: the old
        // incarnation failed (handled now), the new one starts next cycle.
        let bounced: BTreeSet<NodeId> = c
            .live
            .iter()
            .filter(|(id, z)| c.known.get(id).is_some_and(|k| k != *z))
            .map(|(id, _)| *id)
            .collect();
        let alive: BTreeSet<NodeId> = c
            .live
            .keys()
            .copied()
            .filter(|id| !bounced.contains(id))
            .collect();
        let newly: Vec<NodeId> = alive
            .iter()
            .copied()
            .filter(|id| !c.known.contains_key(id))
            .collect();
        // Dead and re-registered brokers lose their queues (removeBroker).
        c.channels.retain(&alive);
        c.known = c
            .live
            .iter()
            .filter(|(id, _)| alive.contains(id))
            .map(|(id, z)| (*id, *z))
            .collect();
        // A broker whose registration went or was re-created is done with
        // its controlled shutdown.
        c.shutting_down.retain(|b| alive.contains(b));
        for r in c.shutdown_requests.iter_mut() {
            r.2 = true;
        }
        let leaving = c.shutting_down.clone();
        // The live brokers announced and elected from: not shutting down.
        let eligible: BTreeSet<NodeId> = alive.difference(&leaving).copied().collect();
        let live_changed = c.announced_live != eligible;
        c.announced_live = eligible.clone();
        c.alive = alive.clone();
        let epoch = c.epoch;
        let rebalance_at = *c
            .rebalance_at
            .get_or_insert(cx.now.plus_ms(FIRST_REBALANCE_MS));
        let to_preferred = if self.cfg.auto_leader_rebalance && cx.now >= rebalance_at {
            c.rebalance_at = Some(cx.now.plus_ms(self.cfg.leader_imbalance_check_interval_ms));
            c.imbalanced(&eligible, self.cfg.leader_imbalance_per_broker_percentage)
        } else {
            BTreeSet::new()
        };
        let mut writes = Vec::new();
        for tp in c.partitions() {
            let replicas = c.replicas_of(&tp);
            let next = match c.states.get(&tp) {
                None => {
                    let isr: Vec<NodeId> = replicas
                        .iter()
                        .copied()
                        .filter(|r| alive.contains(r))
                        .collect();
                    isr.first().copied().map(|l| {
                        (
                            PartitionState {
                                leader: Some(l),
                                leader_epoch: 0,
                                isr,
                                controller_epoch: epoch,
                            },
                            None,
                        )
                    })
                }
                Some((st, v)) => {
                    // Shutting-down brokers leave the ISR, unless one is
                    // its last member (Kafka's OfflineReplica transition
                    // keeps a single-member ISR as it is).
                    let isr_alive: Vec<NodeId> = st
                        .isr
                        .iter()
                        .copied()
                        .filter(|r| eligible.contains(r))
                        .collect();
                    let isr_alive = if isr_alive.is_empty() {
                        st.isr
                            .iter()
                            .copied()
                            .filter(|r| alive.contains(r))
                            .collect()
                    } else {
                        isr_alive
                    };
                    let leader_ok = st.leader.is_some_and(|l| alive.contains(&l));
                    let mut n = st.clone();
                    n.leader_epoch += 1;
                    n.controller_epoch = epoch;
                    // The leader is shutting down: Kafka's
                    // ControlledShutdownPartitionLeaderElectionStrategy,
                    // or no change when no other ISR member can lead.
                    let moved_off = st.leader.filter(|l| leaving.contains(l)).and_then(|_| {
                        replicas
                            .iter()
                            .copied()
                            .find(|r| eligible.contains(r) && isr_alive.contains(r))
                    });
                    let changed = if let (true, Some(l)) = (leader_ok, moved_off) {
                        tracing::info!(
                            "kafka: controller: controlled shutdown moves {tp}'s leadership to {l}"
                        );
                        n.leader = Some(l);
                        n.isr = isr_alive;
                        true
                    } else if !leader_ok {
                        let clean = replicas
                            .iter()
                            .copied()
                            .find(|r| isr_alive.contains(r) && eligible.contains(r));
                        let dirty = replicas.iter().copied().find(|r| eligible.contains(r));
                        match (clean, dirty) {
                            (Some(l), _) => {
                                n.leader = Some(l);
                                n.isr = isr_alive;
                                true
                            }
                            (None, Some(l)) if unclean => {
                                cx.event(EventKind::UncleanElection, l);
                                n.leader = Some(l);
                                n.isr = vec![l];
                                true
                            }
                            _ => {
                                // Offline: keep the ISR so a clean leader
                                // can come back.
                                let was = st.leader.is_some();
                                n.leader = None;
                                was
                            }
                        }
                    } else if isr_alive.len() < st.isr.len() {
                        n.isr = isr_alive;
                        true
                    } else if to_preferred.contains(&tp) {
                        // The preferred-replica election: the ISR stays.
                        tracing::info!(
                            "kafka: controller: moving {tp}'s leadership back to its preferred replica {}",
                            replicas[0]
                        );
                        n.leader = Some(replicas[0]);
                        true
                    } else {
                        false
                    };
                    changed.then_some((n, Some(*v)))
                }
            };
            if let Some((state, version)) = next {
                writes.push((tp, state, version));
            }
        }
        c.writes += writes.len();
        let check_v = c.epoch_version;
        // Announce leaders' ISR changes and new brokers.
        let stale: Vec<PartitionInfo> = c
            .states
            .iter()
            .filter(|(tp, (_, v))| c.announced.get(*tp) != Some(v))
            .filter_map(|(tp, _)| c.info(tp))
            .collect();
        for i in &stale {
            c.announced.insert(i.tp.clone(), i.zk_version);
        }
        let all: Vec<PartitionInfo> = c.states.keys().filter_map(|tp| c.info(tp)).collect();
        let for_new: Vec<(NodeId, Vec<PartitionInfo>)> = newly
            .iter()
            .map(|&b| {
                (
                    b,
                    all.iter()
                        .filter(|i| i.replicas.contains(&b))
                        .cloned()
                        .collect(),
                )
            })
            .collect();
        // States whose leader epoch the replicas were not told about (a
        // write whose reply was lost, or a new controller): tell them.
        let lai_due: Vec<PartitionInfo> = c
            .states
            .iter()
            .filter(|(tp, (s, _))| c.sent_lai.get(*tp) != Some(&s.leader_epoch))
            .filter_map(|(tp, _)| c.info(tp))
            .collect();
        for i in &lai_due {
            c.sent_lai.insert(i.tp.clone(), i.state.leader_epoch);
        }
        let live: Vec<NodeId> = eligible.iter().copied().collect();
        // As onBrokerStartup / onBrokerFailure: every change of the live
        // brokers reaches every live broker, with the partitions that
        // changed (none, if only the live set did).
        if !stale.is_empty() || live_changed {
            for &b in &live {
                if !newly.contains(&b) {
                    self.send_update_metadata(b, epoch, &live, stale.clone(), cx);
                }
            }
        }
        for (b, parts) in for_new {
            self.send_update_metadata(b, epoch, &live, all.clone(), cx);
            if !parts.is_empty() {
                self.send_leader_and_isr(b, epoch, parts, cx);
            }
        }
        for i in lai_due {
            for &b in &i.replicas {
                if alive.contains(&b) && !newly.contains(&b) {
                    self.send_leader_and_isr(b, epoch, vec![i.clone()], cx);
                }
            }
        }
        for (tp, state, version) in writes {
            let [parts, p, path] = zkdata::state_paths(&tp);
            let data = zkdata::encode_state(&state);
            let write = match version {
                None => {
                    for parent in [parts, p] {
                        self.zk_call(
                            ZkOp::Create {
                                path: parent,
                                data: Vec::new(),
                                mode: CreateMode::Persistent,
                            },
                            ZkPurpose::Ctl(CtlPurpose::Parent),
                            cx,
                        );
                    }
                    ZkOp::Create {
                        path,
                        data,
                        mode: CreateMode::Persistent,
                    }
                }
                Some(v) => ZkOp::SetData {
                    path,
                    data,
                    version: v,
                },
            };
            let op = ZkOp::Multi(vec![
                ZkOp::Check {
                    path: zkdata::CONTROLLER_EPOCH.into(),
                    version: check_v,
                },
                write,
            ]);
            self.zk_call(op, ZkPurpose::Ctl(CtlPurpose::Write { tp, state }), cx);
        }
        self.answer_due_shutdowns(cx);
    }

    /// Answers the ControlledShutdown requests a finished reconcile acted
    /// on, with the partitions each broker still leads.
    fn answer_due_shutdowns(&mut self, cx: &mut Ctx<'_>) {
        let Some(c) = self.controller.as_mut() else {
            return;
        };
        if c.writes > 0 {
            return;
        }
        let (due, keep): (Vec<_>, Vec<_>) = c.shutdown_requests.drain(..).partition(|r| r.2);
        c.shutdown_requests = keep;
        let answers: Vec<(NodeId, u64, Vec<Tp>)> = due
            .into_iter()
            .map(|(b, corr, _)| (b, corr, c.led_by(b)))
            .collect();
        for (b, corr, left) in answers {
            self.answer_controlled_shutdown(b, corr, Ok(left), cx);
        }
    }

    /// The broker epoch of `to` in the controller's last read of the
    /// registrations (0 if it is not registered).
    fn known_broker_epoch(&self, to: NodeId) -> u64 {
        self.controller
            .as_ref()
            .and_then(|c| c.live.get(&to))
            .copied()
            .unwrap_or(0)
    }

    fn send_leader_and_isr(
        &mut self,
        to: NodeId,
        epoch: u32,
        partitions: Vec<PartitionInfo>,
        cx: &mut Ctx<'_>,
    ) {
        let msg = KafkaMsg::LeaderAndIsr {
            corr: 0,
            controller_epoch: epoch,
            broker_epoch: self.known_broker_epoch(to),
            partitions,
        };
        if to == self.id {
            self.on_kafka_local(msg, cx);
        } else {
            self.channel_send(to, msg, cx);
        }
    }

    fn send_update_metadata(
        &mut self,
        to: NodeId,
        epoch: u32,
        live: &[NodeId],
        partitions: Vec<PartitionInfo>,
        cx: &mut Ctx<'_>,
    ) {
        let msg = KafkaMsg::UpdateMetadata {
            corr: 0,
            controller_epoch: epoch,
            broker_epoch: self.known_broker_epoch(to),
            live: live.to_vec(),
            partitions,
        };
        if to == self.id {
            // The controller's own broker learns it directly.
            self.on_kafka_local(msg, cx);
        } else {
            self.channel_send(to, msg, cx);
        }
    }

    fn on_ctl_write(&mut self, tp: Tp, state: PartitionState, r: ZkReply, cx: &mut Ctx<'_>) {
        let c = self.controller.as_mut().expect("controller");
        c.writes -= 1;
        let version = match &r.result {
            Ok(ZkResponse::Multi(rs)) => match rs.get(1) {
                Some(ZkResponse::Stat(st)) => st.version,
                _ => 0,
            },
            // BadVersion: the state or the epoch moved; the next cycle
            // re-reads (and resigns if the epoch is not ours).
            _ => {
                self.answer_due_shutdowns(cx);
                return;
            }
        };
        c.states.insert(tp.clone(), (state, version));
        c.announced.insert(tp.clone(), version);
        let epoch = c.epoch;
        let info = c.info(&tp).expect("state");
        let alive: Vec<NodeId> = c.alive.iter().copied().collect();
        let live: Vec<NodeId> = c.announced_live.iter().copied().collect();
        c.sent_lai.insert(tp.clone(), info.state.leader_epoch);
        for &b in &info.replicas {
            if alive.contains(&b) {
                self.send_leader_and_isr(b, epoch, vec![info.clone()], cx);
            }
        }
        for &b in &live {
            self.send_update_metadata(b, epoch, &live, vec![info.clone()], cx);
        }
        self.answer_due_shutdowns(cx);
    }
}
