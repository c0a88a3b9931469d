//! The broker's side of KRaft mode: an observer of the metadata log whose
//! replicas follow the committed records (the LeaderAndIsr of ZooKeeper
//! mode becomes a partition record), registration and heartbeats to the
//! active controller, AlterPartition for ISR changes, producer-id blocks,
//! and the controlled shutdown through the heartbeat.

use std::collections::BTreeMap;

use rand::Rng;

use crate::disk::FileName;
use crate::kafka::broker::KafkaBroker;
use crate::kafka::replica::IsrOutcome;
use crate::kafka::{KafkaError, Tp};
use crate::kraft::image::MetadataImage;
use crate::kraft::records::{KraftError, KraftMsg};
use crate::kraft::{KraftBugs, KraftSettings};
use crate::msg::Msg;
use crate::node::{Ctx, NodeId};
use crate::raft::{RaftConfig, RaftCore};
use crate::time::SimTime;

/// The broker's raft timers start here.
pub(crate) const TIMER_RAFT_BASE: u64 = 90;

/// What a broker in KRaft mode holds beside its replicas.
pub(crate) struct KraftLink {
    pub(crate) settings: KraftSettings,
    pub(crate) bugs: KraftBugs,
    /// The metadata log, as an observer.
    pub(crate) core: RaftCore,
    /// The committed records applied.
    pub(crate) image: MetadataImage,
    /// This process's incarnation id.
    incarnation: u64,
    /// The broker epoch of the previous incarnation, if it shut down
    /// cleanly (KIP-966).
    clean_shutdown_epoch: Option<u64>,
    /// The broker epoch, once registered.
    pub(crate) broker_epoch: Option<u64>,
    /// The registration in flight: its correlation id and when sent.
    registering: Option<(u64, SimTime)>,
    /// The heartbeat in flight: its correlation id, when sent, and
    /// whether it asked to shut down.
    heartbeat: Option<(u64, SimTime, bool)>,
    last_heartbeat: SimTime,
    /// Whether the controller says this broker is fenced.
    pub(crate) fenced: bool,
    /// AlterPartitions in flight: correlation id -> partition, leader
    /// epoch, proposed ISR, when sent.
    alters: BTreeMap<u64, (Tp, u32, Vec<NodeId>, SimTime)>,
    /// The producer-id block: next id and end.
    pids: Option<(u64, u64)>,
    pids_inflight: Option<(u64, SimTime)>,
    /// The topic creation in flight (the offsets topic).
    creating: Option<(u64, SimTime)>,
    /// Controllers tried in turn while none is known.
    next_controller: usize,
    /// The metadata has been applied to the replicas since the broker
    /// caught up past its registration.
    recovered: bool,
    /// The metadata offset to apply before acting (from the registration).
    catch_up_to: u64,
}

impl KraftLink {
    /// The link of broker `id`.
    pub(crate) fn new(id: NodeId, settings: KraftSettings, bugs: KraftBugs) -> KraftLink {
        let raft = RaftConfig {
            voters: settings.voters.clone(),
            timer_base: TIMER_RAFT_BASE,
            ..settings.raft.clone()
        };
        KraftLink {
            core: RaftCore::new(id, raft, bugs.raft),
            settings,
            bugs,
            image: MetadataImage::default(),
            incarnation: 0,
            clean_shutdown_epoch: None,
            broker_epoch: None,
            registering: None,
            heartbeat: None,
            last_heartbeat: SimTime::ZERO,
            fenced: true,
            alters: BTreeMap::new(),
            pids: None,
            pids_inflight: None,
            creating: None,
            next_controller: 0,
            recovered: false,
            catch_up_to: 0,
        }
    }

    /// The active controller as the metadata quorum's leader, or the next
    /// controller to try.
    fn controller(&mut self) -> NodeId {
        if let Some(l) = self.core.leader() {
            return l;
        }
        self.next_controller += 1;
        self.settings.voters[self.next_controller % self.settings.voters.len()]
    }
}

impl KafkaBroker {
    fn link(&mut self) -> &mut KraftLink {
        self.kraft.as_mut().expect("KRaft mode")
    }

    fn kraft_send(&mut self, m: KraftMsg, cx: &mut Ctx<'_>) {
        let to = self.link().controller();
        cx.send(to, Msg::Kraft(m));
    }

    /// KRaft start: the metadata log is recovered, the previous clean
    /// shutdown's broker epoch read, and the registration sent.
    pub(crate) fn kraft_start(&mut self, files: &BTreeMap<FileName, Vec<u8>>, cx: &mut Ctx<'_>) {
        let clean = files
            .get(crate::kafka::shutdown::CLEAN_SHUTDOWN_FILE)
            .and_then(|b| b.get(..8))
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
        let incarnation = cx.rng.gen::<u64>() | 1;
        let link = self.link();
        link.clean_shutdown_epoch = clean;
        link.incarnation = incarnation;
        link.core.start(files, cx);
        let id = self.id;
        if let Some(f) = self.link().core.failure() {
            cx.halt(format!("broker {id}: {f}"));
            return;
        }
        self.kraft_register(cx);
    }

    fn kraft_register(&mut self, cx: &mut Ctx<'_>) {
        let corr = self.next_corr;
        self.next_corr += 1;
        let id = self.id;
        let link = self.link();
        link.registering = Some((corr, cx.now));
        let m = KraftMsg::BrokerRegistration {
            corr,
            broker: id,
            incarnation: link.incarnation,
            clean_shutdown_epoch: link.clean_shutdown_epoch,
        };
        self.kraft_send(m, cx);
    }

    /// Sends a heartbeat (asking to shut down when `shutdown`).
    pub(crate) fn kraft_heartbeat(&mut self, shutdown: bool, cx: &mut Ctx<'_>) -> Option<u64> {
        let epoch = self.link().broker_epoch?;
        let corr = self.next_corr;
        self.next_corr += 1;
        let id = self.id;
        let link = self.link();
        link.heartbeat = Some((corr, cx.now, shutdown));
        link.last_heartbeat = cx.now;
        let m = KraftMsg::BrokerHeartbeat {
            corr,
            broker: id,
            broker_epoch: epoch,
            metadata_offset: link.image.applied,
            want_shutdown: shutdown,
        };
        self.kraft_send(m, cx);
        Some(corr)
    }

    /// The KRaft part of the housekeeping tick: registration, heartbeats,
    /// and requests that went unanswered.
    pub(crate) fn kraft_tick(&mut self, cx: &mut Ctx<'_>) {
        let now = cx.now;
        let interval = self.link().settings.broker_heartbeat_interval_ms;
        let timeout = self.link().settings.alter_partition_timeout_ms;
        let shutting = self.shutdown.is_some();
        let link = self.link();
        if link
            .registering
            .is_some_and(|(_, t)| now.ms_since(t) >= timeout)
        {
            link.registering = None;
        }
        if link
            .heartbeat
            .is_some_and(|(_, t, _)| now.ms_since(t) >= timeout)
        {
            link.heartbeat = None;
        }
        if link
            .pids_inflight
            .is_some_and(|(_, t)| now.ms_since(t) >= timeout)
        {
            link.pids_inflight = None;
        }
        if link
            .creating
            .is_some_and(|(_, t)| now.ms_since(t) >= timeout)
        {
            link.creating = None;
        }
        let late: Vec<u64> = link
            .alters
            .iter()
            .filter(|(_, a)| now.ms_since(a.3) >= timeout)
            .map(|(&c, _)| c)
            .collect();
        for c in late {
            self.alter_unanswered(c, cx);
        }
        let link = self.link();
        if link.broker_epoch.is_none() {
            if link.registering.is_none() {
                self.kraft_register(cx);
            }
        } else if link.heartbeat.is_none()
            && now.ms_since(link.last_heartbeat) >= interval
            && !shutting
        {
            self.kraft_heartbeat(false, cx);
        }
    }

    /// An AlterPartition went without an answer (timeout, lost connection,
    /// no controller).
    fn alter_unanswered(&mut self, corr: u64, cx: &mut Ctx<'_>) {
        let adopt = self.link().bugs.no_broker_fencing;
        if let Some((tp, epoch, isr, _)) = self.link().alters.remove(&corr) {
            let outcome = if adopt {
                IsrOutcome::AdoptLocally(isr)
            } else {
                IsrOutcome::Unknown
            };
            self.on_alter_partition_outcome(&tp, epoch, outcome, cx);
        }
    }

    /// Proposes an ISR change to the active controller.
    pub(crate) fn kraft_alter_partition(
        &mut self,
        tp: &Tp,
        leader_epoch: u32,
        partition_epoch: u32,
        isr: Vec<NodeId>,
        cx: &mut Ctx<'_>,
    ) {
        let Some(epoch) = self.link().broker_epoch else {
            self.on_alter_partition_outcome(tp, leader_epoch, IsrOutcome::Unknown, cx);
            return;
        };
        let corr = self.next_corr;
        self.next_corr += 1;
        let id = self.id;
        self.link()
            .alters
            .insert(corr, (tp.clone(), leader_epoch, isr.clone(), cx.now));
        let m = KraftMsg::AlterPartition {
            corr,
            broker: id,
            broker_epoch: epoch,
            tp: tp.clone(),
            leader_epoch,
            partition_epoch,
            isr,
        };
        self.kraft_send(m, cx);
    }

    /// A controller's answer.
    pub(crate) fn on_kraft(&mut self, m: KraftMsg, cx: &mut Ctx<'_>) {
        match m {
            KraftMsg::BrokerRegistrationResp { corr, result } => {
                let link = self.link();
                if link.registering.map(|r| r.0) != Some(corr) {
                    return;
                }
                link.registering = None;
                if let Ok((epoch, catch_up)) = result {
                    tracing::info!("kafka: broker registered with broker epoch {epoch}");
                    link.broker_epoch = Some(epoch);
                    link.catch_up_to = catch_up;
                    link.last_heartbeat = cx.now;
                    link.pids = None;
                    self.registered_session = 1;
                    self.reg_zxid = epoch;
                }
            }
            KraftMsg::BrokerHeartbeatResp { corr, result } => {
                let link = self.link();
                let Some((c, _, shutdown)) = link.heartbeat else {
                    return;
                };
                if c != corr {
                    return;
                }
                link.heartbeat = None;
                match result {
                    Ok(st) => {
                        link.fenced = st.fenced;
                        if shutdown {
                            let left = if st.should_shutdown {
                                Vec::new()
                            } else {
                                self.hosted()
                            };
                            self.on_controlled_shutdown_resp(corr, Ok(left), cx);
                        }
                    }
                    Err(e) => {
                        if e == KraftError::StaleBrokerEpoch {
                            // Our registration is gone: register again.
                            link.broker_epoch = None;
                            self.registered_session = 0;
                        }
                        if shutdown {
                            self.on_controlled_shutdown_resp(
                                corr,
                                Err(KafkaError::NotController),
                                cx,
                            );
                        }
                    }
                }
            }
            KraftMsg::AlterPartitionResp { corr, tp, result } => {
                let Some((_, epoch, isr, _)) = self.link().alters.remove(&corr) else {
                    return;
                };
                let outcome = match result {
                    Ok(p) => IsrOutcome::Applied {
                        isr: p.isr,
                        version: p.partition_epoch,
                    },
                    Err(KraftError::NotController) => {
                        if self.link().bugs.no_broker_fencing {
                            IsrOutcome::AdoptLocally(isr)
                        } else {
                            IsrOutcome::Unknown
                        }
                    }
                    Err(_) => IsrOutcome::Rejected,
                };
                self.on_alter_partition_outcome(&tp, epoch, outcome, cx);
            }
            KraftMsg::AllocateProducerIdsResp { corr, result } => {
                let link = self.link();
                if link.pids_inflight.map(|p| p.0) != Some(corr) {
                    return;
                }
                link.pids_inflight = None;
                if let Ok((start, len)) = result {
                    link.pids = Some((start, start + len));
                }
            }
            KraftMsg::CreateTopicsResp { corr, .. } => {
                let link = self.link();
                if link.creating.map(|c| c.0) == Some(corr) {
                    link.creating = None;
                }
            }
            _ => {}
        }
    }

    /// A producer id from the broker's block; asks for a new block when it
    /// is used up (the producer retries meanwhile).
    pub(crate) fn kraft_producer_id(&mut self, cx: &mut Ctx<'_>) -> Result<u64, KafkaError> {
        let link = self.link();
        if let Some((next, end)) = link.pids {
            if next < end {
                link.pids = Some((next + 1, end));
                return Ok(next);
            }
        }
        let Some(epoch) = link.broker_epoch else {
            return Err(KafkaError::BrokerNotAvailable);
        };
        if link.pids_inflight.is_none() {
            let corr = self.next_corr;
            self.next_corr += 1;
            let id = self.id;
            self.link().pids_inflight = Some((corr, cx.now));
            self.kraft_send(
                KraftMsg::AllocateProducerIds {
                    corr,
                    broker: id,
                    broker_epoch: epoch,
                },
                cx,
            );
        }
        Err(KafkaError::BrokerNotAvailable)
    }

    /// Asks the controller to create a topic (the offsets topic).
    pub(crate) fn kraft_create_topic(
        &mut self,
        topic: &str,
        assignment: BTreeMap<u32, Vec<NodeId>>,
        cx: &mut Ctx<'_>,
    ) {
        if self.link().creating.is_some() {
            return;
        }
        let corr = self.next_corr;
        self.next_corr += 1;
        self.link().creating = Some((corr, cx.now));
        self.kraft_send(
            KraftMsg::CreateTopics {
                corr,
                topic: topic.to_string(),
                assignment,
            },
            cx,
        );
    }

    /// After every step: apply what the metadata log committed, and make
    /// the replicas follow it.
    pub(crate) fn kraft_sync(&mut self, cx: &mut Ctx<'_>) {
        let link = self.link();
        let changed = link.image.follow(&mut link.core, cx);
        // Kafka's RECOVERY state: a starting broker acts on the metadata
        // only once it has caught up past its own registration (whose
        // records moved its old incarnation's leaderships away).
        let caught_up = link
            .broker_epoch
            .is_some_and(|e| link.image.applied > e && link.image.applied >= link.catch_up_to);
        let first = caught_up && !link.recovered;
        if first {
            link.recovered = true;
        }
        if !(first || changed && caught_up) {
            return;
        }
        let image = link.image.clone();
        self.meta_live = image.unfenced();
        let me = self.id;
        for tp in image.partitions.keys() {
            let info = image.partition_info(tp).expect("partition");
            self.meta.insert(tp.clone(), info.clone());
            if !info.replicas.contains(&me) {
                continue;
            }
            self.open_replica(tp, cx);
            let known = self
                .replicas
                .get(tp)
                .and_then(|r| r.info.as_ref())
                .map(|i| (i.state.leader_epoch, i.zk_version));
            match known {
                Some((e, _)) if info.state.leader_epoch == e => {
                    self.apply_same_epoch_state(info, cx)
                }
                Some((e, _)) if info.state.leader_epoch < e => {}
                _ => self.become_leader_or_follower(info, cx),
            }
        }
    }

    /// Whether the broker's metadata-log timers and disk operations are
    /// this one's.
    pub(crate) fn kraft_owns_timer(&self, t: u64) -> bool {
        self.kraft.as_ref().is_some_and(|k| k.core.owns_timer(t))
    }
}
