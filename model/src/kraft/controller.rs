//! The KRaft controller node: a voter of the metadata quorum. While it
//! leads the quorum and has replayed the log past its own epoch's first
//! record, it is the active controller: it registers brokers, tracks their
//! heartbeats and fences the silent ones, elects partition leaders, checks
//! and applies AlterPartition, creates topics and hands out producer-id
//! blocks, each decision written as metadata records. It answers a request
//! once the records it wrote for it are committed.

use std::collections::BTreeMap;

use crate::disk::DiskOpId;
use crate::kafka::KafkaConfig;
use crate::kafka::Tp;
use crate::kraft::decide::{forget_unclean, initial, recompute, ElectionRules};
use crate::kraft::image::MetadataImage;
use crate::kraft::records::{
    HeartbeatState, KraftError, KraftMsg, MetadataRecord, PartitionRecord,
};
use crate::kraft::{KraftBugs, KraftSettings};
use crate::msg::Msg;
use crate::node::{Ctx, Input, Node, NodeId, TimerId};
use crate::probe::EventKind;
use crate::raft::{data_value, RaftConfig, RaftCore};
use crate::time::SimTime;

/// The controller's housekeeping tick.
const T_TICK: TimerId = 10;
/// Producer ids per block.
pub const PRODUCER_ID_BLOCK: u64 = 1_000;

/// An answer waiting for the records written for it to commit.
struct Pending {
    end: u64,
    to: NodeId,
    msg: KraftMsg,
}

/// A KRaft controller.
pub struct KraftController {
    id: NodeId,
    cfg: KafkaConfig,
    k: KraftSettings,
    core: RaftCore,
    /// The committed records applied.
    committed: MetadataImage,
    /// While active: the committed image and the records written since.
    working: MetadataImage,
    active: bool,
    /// When each broker last heartbeat (the active controller's memory).
    heartbeats: BTreeMap<NodeId, SimTime>,
    pending: Vec<Pending>,
    last_write: SimTime,
    rebalance_at: SimTime,
    /// The planted `kraft_stale_metadata_leader`.
    stale_metadata_leader: bool,
}

impl KraftController {
    /// Controller `id` of the quorum `cfg.kraft`'s voters; the cluster's
    /// settings (unclean election, min.insync.replicas, leader rebalance)
    /// come from `cfg`.
    pub fn new(id: NodeId, cfg: KafkaConfig, bugs: KraftBugs) -> KraftController {
        let k = cfg
            .kraft
            .clone()
            .expect("a KRaft controller needs KRaft settings");
        let raft = RaftConfig {
            voters: k.voters.clone(),
            ..k.raft.clone()
        };
        KraftController {
            id,
            core: RaftCore::new(id, raft, bugs.raft),
            cfg,
            k,
            committed: MetadataImage::default(),
            working: MetadataImage::default(),
            active: false,
            heartbeats: BTreeMap::new(),
            pending: Vec::new(),
            last_write: SimTime::ZERO,
            rebalance_at: SimTime::ZERO,
            stale_metadata_leader: bugs.stale_metadata_leader,
        }
    }

    /// The Raft replica.
    pub fn raft(&self) -> &RaftCore {
        &self.core
    }

    /// The committed metadata image.
    pub fn image(&self) -> &MetadataImage {
        &self.committed
    }

    /// The image this controller decides from: while active, the
    /// committed image and the records it wrote since.
    pub fn working_image(&self) -> &MetadataImage {
        &self.working
    }

    /// Whether this is the active controller.
    pub fn is_active(&self) -> bool {
        self.active
    }

    fn rules(&self) -> ElectionRules {
        ElectionRules {
            unclean: self.cfg.unclean_leader_election,
            elr: self.k.eligible_leader_replicas,
            min_isr: self.cfg.min_insync_replicas,
        }
    }

    /// Writes records (applied to the working image at once); returns the
    /// offset after them, `None` when not the leader.
    fn write(&mut self, recs: Vec<MetadataRecord>, cx: &mut Ctx<'_>) -> Option<u64> {
        if recs.is_empty() {
            return Some(self.core.log().leo());
        }
        let values = recs.iter().map(|r| data_value(&r.encode())).collect();
        let base = self.core.propose(values, cx)?;
        for (i, r) in recs.iter().enumerate() {
            self.working.apply(base + i as u64, r);
        }
        self.last_write = cx.now;
        Some(base + recs.len() as u64)
    }

    /// Writes the partition changes that the working image now calls for.
    fn reconcile(&mut self, only: Option<NodeId>, cx: &mut Ctx<'_>) {
        let rules = self.rules();
        let mut unclean = Vec::new();
        let changes: Vec<MetadataRecord> =
            self.working
                .partitions
                .iter()
                .filter(|(_, p)| only.is_none_or(|b| p.replicas.contains(&b)))
                .filter_map(|(tp, p)| {
                    let n = recompute(p, &self.working, rules);
                    if let Some(l) = n.leader.filter(|l| {
                        n.leader != p.leader && !p.isr.contains(l) && !p.elr.contains(l)
                    }) {
                        unclean.push(l);
                    }
                    MetadataRecord::partition_change(tp, p, &n)
                })
                .collect();
        for l in unclean {
            cx.event(EventKind::UncleanElection, l);
        }
        self.write(changes, cx);
    }

    fn answer(&mut self, to: NodeId, end: Option<u64>, msg: KraftMsg, cx: &mut Ctx<'_>) {
        match end {
            Some(end) if end > self.core.high_watermark() => {
                self.pending.push(Pending { end, to, msg })
            }
            _ => cx.send(to, Msg::Kraft(msg)),
        }
    }

    /// Answers a registration with the broker epoch and the offset the
    /// broker must apply before acting: everything written so far, once
    /// it is committed.
    fn answer_registration(&mut self, to: NodeId, corr: u64, epoch: u64, cx: &mut Ctx<'_>) {
        let end = self.core.log().leo();
        let msg = KraftMsg::BrokerRegistrationResp {
            corr,
            result: Ok((epoch, end)),
        };
        self.answer(to, Some(end), msg, cx);
    }

    fn on_rpc(&mut self, from: NodeId, m: KraftMsg, cx: &mut Ctx<'_>) {
        use KraftError::*;
        if !self.active {
            let msg = match m {
                KraftMsg::BrokerRegistration { corr, .. } => KraftMsg::BrokerRegistrationResp {
                    corr,
                    result: Err(NotController),
                },
                KraftMsg::BrokerHeartbeat { corr, .. } => KraftMsg::BrokerHeartbeatResp {
                    corr,
                    result: Err(NotController),
                },
                KraftMsg::AlterPartition { corr, tp, .. } => KraftMsg::AlterPartitionResp {
                    corr,
                    tp,
                    result: Err(NotController),
                },
                KraftMsg::CreateTopics { corr, .. } => KraftMsg::CreateTopicsResp {
                    corr,
                    result: Err(NotController),
                },
                KraftMsg::AllocateProducerIds { corr, .. } => KraftMsg::AllocateProducerIdsResp {
                    corr,
                    result: Err(NotController),
                },
                _ => return,
            };
            cx.send(from, Msg::Kraft(msg));
            return;
        }
        match m {
            KraftMsg::BrokerRegistration {
                corr,
                broker,
                incarnation,
                clean_shutdown_epoch,
            } => {
                if let Some(r) = self.working.brokers.get(&broker) {
                    if r.incarnation == incarnation {
                        // A retry: the registration stands; the broker
                        // catches up with everything written so far.
                        let epoch = r.epoch;
                        self.answer_registration(from, corr, epoch, cx);
                        return;
                    }
                }
                // Kafka's DuplicateBrokerRegistration: a new incarnation
                // waits until the old one's session is over (fenced), so
                // its leaderships have moved before the new process reads
                // the metadata.
                let live_session = self.working.brokers.get(&broker).is_some_and(|r| {
                    !r.fenced
                        && self.heartbeats.get(&broker).is_some_and(|t| {
                            cx.now.ms_since(*t) <= self.k.broker_session_timeout_ms
                        })
                });
                if live_session {
                    let msg = KraftMsg::BrokerRegistrationResp {
                        corr,
                        result: Err(DuplicateBrokerRegistration),
                    };
                    cx.send(from, Msg::Kraft(msg));
                    return;
                }
                let old = self.working.brokers.get(&broker).map(|r| r.epoch);
                let Some(end) = self.write(
                    vec![MetadataRecord::RegisterBroker {
                        broker,
                        incarnation,
                    }],
                    cx,
                ) else {
                    return;
                };
                let epoch = end - 1;
                tracing::info!("kraft: controller: broker {broker} registered with epoch {epoch}");
                self.heartbeats.insert(broker, cx.now);
                let unclean = old.is_some() && clean_shutdown_epoch != old;
                if self.k.eligible_leader_replicas && unclean {
                    let changes: Vec<MetadataRecord> = self
                        .working
                        .partitions
                        .iter()
                        .filter_map(|(tp, p)| {
                            MetadataRecord::partition_change(tp, p, &forget_unclean(p, broker))
                        })
                        .collect();
                    self.write(changes, cx);
                }
                self.reconcile(Some(broker), cx);
                // The broker acts only once it has applied the records
                // written for its registration: its old incarnation's
                // leaderships moved away.
                self.answer_registration(from, corr, epoch, cx);
            }
            KraftMsg::BrokerHeartbeat {
                corr,
                broker,
                broker_epoch,
                metadata_offset,
                want_shutdown,
            } => {
                let Some(r) = self
                    .working
                    .brokers
                    .get(&broker)
                    .filter(|r| r.epoch == broker_epoch)
                    .cloned()
                else {
                    cx.send(
                        from,
                        Msg::Kraft(KraftMsg::BrokerHeartbeatResp {
                            corr,
                            result: Err(StaleBrokerEpoch),
                        }),
                    );
                    return;
                };
                self.heartbeats.insert(broker, cx.now);
                let mut end = None;
                if want_shutdown {
                    if !r.fenced && !r.shutting_down {
                        tracing::info!("kraft: controller: broker {broker} is shutting down");
                        end = self.write(
                            vec![MetadataRecord::BrokerShuttingDown {
                                broker,
                                epoch: broker_epoch,
                            }],
                            cx,
                        );
                        self.reconcile(Some(broker), cx);
                    }
                } else if r.fenced && metadata_offset > broker_epoch {
                    tracing::info!("kraft: controller: unfencing broker {broker}");
                    end = self.write(
                        vec![MetadataRecord::UnfenceBroker {
                            broker,
                            epoch: broker_epoch,
                        }],
                        cx,
                    );
                    self.reconcile(Some(broker), cx);
                }
                let leads = self.working.partitions.values().any(|p| {
                    p.leader == Some(broker)
                        && p.replicas.len() > 1
                        && recompute(p, &self.working, self.rules()).leader == Some(broker)
                        && p.isr
                            .iter()
                            .any(|&o| o != broker && self.working.is_active(o))
                });
                let should_shutdown = want_shutdown && !leads;
                if should_shutdown && !self.working.brokers[&broker].fenced {
                    end = self.write(
                        vec![MetadataRecord::FenceBroker {
                            broker,
                            epoch: broker_epoch,
                        }],
                        cx,
                    );
                    self.reconcile(Some(broker), cx);
                }
                let fenced = self.working.brokers[&broker].fenced && !should_shutdown;
                let end = end.map(|_| self.core.log().leo());
                self.answer(
                    from,
                    end,
                    KraftMsg::BrokerHeartbeatResp {
                        corr,
                        result: Ok(HeartbeatState {
                            fenced,
                            should_shutdown,
                        }),
                    },
                    cx,
                );
            }
            KraftMsg::AlterPartition {
                corr,
                broker,
                broker_epoch,
                tp,
                leader_epoch,
                partition_epoch,
                isr,
            } => {
                let result = self.check_alter_partition(
                    broker,
                    broker_epoch,
                    &tp,
                    leader_epoch,
                    partition_epoch,
                    &isr,
                );
                let (end, result) = match result {
                    Ok((old, state)) => {
                        let rec = MetadataRecord::partition_change(&tp, &old, &state);
                        let end = self.write(rec.into_iter().collect(), cx);
                        (end, Ok(state))
                    }
                    Err(e) => (None, Err(e)),
                };
                self.answer(
                    from,
                    end,
                    KraftMsg::AlterPartitionResp { corr, tp, result },
                    cx,
                );
            }
            KraftMsg::CreateTopics {
                corr,
                topic,
                assignment,
            } => {
                if self.working.topics.contains(&topic) {
                    let msg = KraftMsg::CreateTopicsResp {
                        corr,
                        result: Err(TopicExists),
                    };
                    self.answer(from, Some(self.core.log().leo()), msg, cx);
                    return;
                }
                let mut recs = vec![MetadataRecord::Topic {
                    name: topic.clone(),
                }];
                for (p, replicas) in &assignment {
                    let Some(state) = initial(replicas, &self.working) else {
                        let msg = KraftMsg::CreateTopicsResp {
                            corr,
                            result: Err(InvalidReplicationFactor),
                        };
                        cx.send(from, Msg::Kraft(msg));
                        return;
                    };
                    recs.push(MetadataRecord::Partition {
                        tp: Tp::new(&topic, *p),
                        state,
                    });
                }
                tracing::info!("kraft: controller: creating topic {topic}");
                let end = self.write(recs, cx);
                self.answer(
                    from,
                    end,
                    KraftMsg::CreateTopicsResp {
                        corr,
                        result: Ok(()),
                    },
                    cx,
                );
            }
            KraftMsg::AllocateProducerIds {
                corr,
                broker,
                broker_epoch,
            } => {
                let ok = self
                    .working
                    .brokers
                    .get(&broker)
                    .is_some_and(|r| r.epoch == broker_epoch && !r.fenced);
                if !ok {
                    let msg = KraftMsg::AllocateProducerIdsResp {
                        corr,
                        result: Err(StaleBrokerEpoch),
                    };
                    cx.send(from, Msg::Kraft(msg));
                    return;
                }
                let start = self.working.next_producer_id.max(1);
                let end = self.write(
                    vec![MetadataRecord::ProducerIds {
                        broker,
                        next: start + PRODUCER_ID_BLOCK,
                    }],
                    cx,
                );
                let msg = KraftMsg::AllocateProducerIdsResp {
                    corr,
                    result: Ok((start, PRODUCER_ID_BLOCK)),
                };
                self.answer(from, end, msg, cx);
            }
            _ => {}
        }
    }

    /// KIP-497's checks of an AlterPartition, and the state it leads from
    /// and to.
    fn check_alter_partition(
        &self,
        broker: NodeId,
        broker_epoch: u64,
        tp: &Tp,
        leader_epoch: u32,
        partition_epoch: u32,
        isr: &[NodeId],
    ) -> Result<(PartitionRecord, PartitionRecord), KraftError> {
        use KraftError::*;
        let reg = self.working.brokers.get(&broker);
        if reg.is_none_or(|r| r.epoch != broker_epoch || r.fenced) {
            return Err(StaleBrokerEpoch);
        }
        let p = self.working.partitions.get(tp).ok_or(FencedLeaderEpoch)?;
        if p.leader != Some(broker) || p.leader_epoch != leader_epoch {
            return Err(FencedLeaderEpoch);
        }
        if p.partition_epoch != partition_epoch {
            return Err(InvalidUpdateVersion);
        }
        if !isr.contains(&broker)
            || isr
                .iter()
                .any(|r| !p.isr.contains(r) && !self.working.is_active(*r))
            || isr.iter().any(|r| !p.replicas.contains(r))
        {
            return Err(IneligibleReplica);
        }
        let mut n = p.clone();
        n.isr = isr.to_vec();
        if self.k.eligible_leader_replicas {
            if n.isr.len() < self.cfg.min_insync_replicas {
                for d in p.isr.iter().filter(|d| !n.isr.contains(d)) {
                    if !n.elr.contains(d) {
                        n.elr.push(*d);
                    }
                }
            }
            n.elr.retain(|e| !n.isr.contains(e));
            if n.isr.len() >= self.cfg.min_insync_replicas {
                n.elr.clear();
            }
        }
        n.partition_epoch += 1;
        Ok((p.clone(), n))
    }

    /// The active controller's periodic duties: fence silent brokers, elect
    /// leaders where needed, move leadership back to preferred replicas,
    /// and write a NoOp when idle.
    fn tick(&mut self, cx: &mut Ctx<'_>) {
        cx.set_timer_ms(T_TICK, self.k.controller_tick_ms);
        if !self.active {
            return;
        }
        let timeout = self.k.broker_session_timeout_ms;
        let silent: Vec<(NodeId, u64)> = self
            .working
            .brokers
            .iter()
            .filter(|(_, r)| !r.fenced)
            .filter(|(b, _)| {
                self.heartbeats
                    .get(b)
                    .is_none_or(|t| cx.now.ms_since(*t) > timeout)
            })
            .map(|(&b, r)| (b, r.epoch))
            .collect();
        for (broker, epoch) in silent {
            tracing::info!("kraft: controller: fencing broker {broker} (no heartbeat)");
            self.write(vec![MetadataRecord::FenceBroker { broker, epoch }], cx);
        }
        self.reconcile(None, cx);
        if self.cfg.auto_leader_rebalance && cx.now >= self.rebalance_at {
            self.rebalance_at = cx.now.plus_ms(self.cfg.leader_imbalance_check_interval_ms);
            self.rebalance(cx);
        }
        if cx.now.ms_since(self.last_write) >= self.k.max_idle_ms {
            self.write(vec![MetadataRecord::NoOp], cx);
        }
    }

    /// Moves leadership back to preferred replicas that are active and in
    /// the ISR, for brokers whose imbalance is over the threshold.
    fn rebalance(&mut self, cx: &mut Ctx<'_>) {
        let pct = self.cfg.leader_imbalance_per_broker_percentage;
        let mut by_preferred: BTreeMap<NodeId, Vec<(Tp, bool)>> = BTreeMap::new();
        for (tp, p) in &self.working.partitions {
            if let Some(&pref) = p.replicas.first() {
                by_preferred
                    .entry(pref)
                    .or_default()
                    .push((tp.clone(), p.leader != Some(pref)));
            }
        }
        let mut recs = Vec::new();
        for (pref, parts) in by_preferred {
            let moved = parts.iter().filter(|p| p.1).count() as u64;
            if moved * 100 <= pct * parts.len() as u64 || !self.working.is_active(pref) {
                continue;
            }
            for (tp, m) in parts {
                let p = &self.working.partitions[&tp];
                if m && p.isr.contains(&pref) {
                    tracing::info!("kraft: controller: moving {tp}'s leadership back to {pref}");
                    let mut n = p.clone();
                    n.leader = Some(pref);
                    n.leader_epoch += 1;
                    n.partition_epoch += 1;
                    recs.extend(MetadataRecord::partition_change(&tp, p, &n));
                }
            }
        }
        self.write(recs, cx);
    }

    /// After every step: apply what committed, take or leave the active
    /// role, answer what is committed.
    fn after_step(&mut self, cx: &mut Ctx<'_>) {
        let changed = self.committed.follow(&mut self.core, cx);
        let leader = self.core.is_leader();
        if self.active && !leader {
            tracing::info!("kraft: controller {}: no longer active", self.id);
            self.active = false;
            for p in std::mem::take(&mut self.pending) {
                let msg = not_controller(p.msg);
                cx.send(p.to, Msg::Kraft(msg));
            }
        }
        if !self.active && leader {
            // The planted `kraft_stale_metadata_leader` takes the role at
            // once, with the image as far as this node had applied it.
            let replayed = self.stale_metadata_leader
                || self
                    .core
                    .epoch_start()
                    .is_some_and(|s| self.committed.applied > s);
            if replayed {
                tracing::info!(
                    "kraft: controller {}: active in epoch {} at offset {}",
                    self.id,
                    self.core.epoch(),
                    self.committed.applied
                );
                self.active = true;
                cx.event(EventKind::ControllerChange, cx.me);
                self.working = self.committed.clone();
                self.heartbeats = self.working.brokers.keys().map(|&b| (b, cx.now)).collect();
                self.last_write = cx.now;
                self.rebalance_at = cx.now.plus_ms(self.k.first_rebalance_ms);
            }
        }
        if !self.active && changed {
            self.working = self.committed.clone();
        }
        let hw = self.core.high_watermark();
        if self.pending.iter().any(|p| p.end <= hw) {
            let (due, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|p| p.end <= hw);
            self.pending = wait;
            for p in due {
                cx.send(p.to, Msg::Kraft(p.msg));
            }
        }
    }

    fn on_disk(&mut self, op: DiskOpId, ok: bool, cx: &mut Ctx<'_>) {
        if !ok {
            cx.halt(format!("controller {}: metadata log dir failed", self.id));
        } else if self.core.owns_op(op) {
            self.core.on_disk_done(op, cx);
        }
    }
}

/// The NOT_CONTROLLER answer to a request whose answer was waiting.
fn not_controller(m: KraftMsg) -> KraftMsg {
    let e = Err(KraftError::NotController);
    match m {
        KraftMsg::BrokerRegistrationResp { corr, .. } => {
            KraftMsg::BrokerRegistrationResp { corr, result: e }
        }
        KraftMsg::BrokerHeartbeatResp { corr, .. } => KraftMsg::BrokerHeartbeatResp {
            corr,
            result: Err(KraftError::NotController),
        },
        KraftMsg::AlterPartitionResp { corr, tp, .. } => KraftMsg::AlterPartitionResp {
            corr,
            tp,
            result: Err(KraftError::NotController),
        },
        KraftMsg::CreateTopicsResp { corr, .. } => KraftMsg::CreateTopicsResp {
            corr,
            result: Err(KraftError::NotController),
        },
        KraftMsg::AllocateProducerIdsResp { corr, .. } => KraftMsg::AllocateProducerIdsResp {
            corr,
            result: Err(KraftError::NotController),
        },
        other => other,
    }
}

impl Node for KraftController {
    fn step(&mut self, input: Input, cx: &mut Ctx<'_>) {
        match input {
            Input::Start { files } => {
                self.core.start(&files, cx);
                if let Some(f) = self.core.failure() {
                    cx.halt(format!("controller {}: {f}", self.id));
                    return;
                }
                cx.set_timer_ms(T_TICK, self.k.controller_tick_ms);
            }
            Input::Message {
                from,
                msg: Msg::Raft(m),
            } => self.core.on_message(from, m, cx),
            Input::Message {
                from,
                msg: Msg::Kraft(m),
            } => self.on_rpc(from, m, cx),
            Input::Message { .. } | Input::ConnUp { .. } | Input::Client { .. } => {}
            Input::ConnLost { peer } => self.core.on_conn_lost(peer, cx),
            Input::Timer { timer } if self.core.owns_timer(timer) => self.core.on_timer(timer, cx),
            Input::Timer { timer: T_TICK } => self.tick(cx),
            Input::Timer { .. } => {}
            Input::Disk { op, result } => self.on_disk(op, result.is_ok(), cx),
        }
        self.after_step(cx);
    }

    fn shutdown(&mut self, cx: &mut Ctx<'_>) {
        self.core.shutdown(cx);
        cx.exit("controller shut down");
    }

    fn role(&self) -> String {
        format!(
            "{}{}",
            if self.active { "active " } else { "" },
            self.core.summary()
        )
    }

    fn is_leader(&self) -> bool {
        self.core.is_leader()
    }

    fn is_controller(&self) -> bool {
        self.active
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
