//! The Kafka broker node in ZooKeeper mode.
//!
//! A broker embeds a [`ZkClient`] as an inner state machine: it drives it
//! with requests of its own (through the client's ordinary
//! `Input::Client` door, capturing its replies), routes `Msg::Zk` from the
//! ensemble and connection events with ZooKeeper servers to it, and
//! forwards its sends and (renumbered) timers to the host. With that
//! session the broker registers the ephemeral `/brokers/ids/<id>`, competes
//! for the ephemeral `/controller` (bumping `/controller_epoch` when it
//! wins), and the leaders among its replicas update ISRs in the
//! partition-state znodes. Re-registers when its session changes (expiry).
//!
//! The replica logic (produce, fetch, ISR, high watermark, truncation) is
//! in `replica`, the controller's duties in `controller`.

use std::collections::{BTreeMap, BTreeSet};

use crate::bugs::BugSet;
use crate::disk::{DiskRequest, FileName};
use crate::group::coordinator::Append;
use crate::group::{GroupBugs, GroupCoordinator, GroupError, GroupMsg, GroupView, OFFSETS_TOPIC};
use crate::kafka::controller::Controller;
use crate::kafka::log::PartitionLog;
use crate::kafka::replica::{FetchParams, Replica};
use crate::kafka::shutdown::{ShutdownState, CLEAN_SHUTDOWN_FILE};
use crate::kafka::types::Acks;
use crate::kafka::types::{Batch, KafkaError, KafkaMsg, PartitionInfo, Tp};
use crate::kafka::zkdata;
use crate::kafka::{KafkaBugs, KafkaConfig};
use crate::msg::{ClientRequest, Msg};
use crate::node::{Ctx, Input, Node, NodeId, ReqId};
use crate::probe::EventKind;
use crate::time::SimTime;
use crate::zk::{CreateMode, ZkClient, ZkError, ZkOp, ZkReply, ZkRequest, ZkResponse};

/// The housekeeping tick.
pub(crate) const TIMER_TICK: u64 = 1;
/// The embedded ZooKeeper client's timers are shifted by this.
const TIMER_ZK_BASE: u64 = 100;
/// Follower fetch timers: this plus the partition's slot.
pub(crate) const TIMER_FETCH_BASE: u64 = 1_000;

/// Why the broker sent a ZooKeeper request (its reply is handled by that).
#[derive(Clone, Debug)]
pub(crate) enum ZkPurpose {
    /// Create a persistent parent; any outcome is fine.
    Ignore,
    /// Create `/brokers/ids/<id>`.
    Register,
    /// Exists on our registration after a NodeExists or lost reply.
    RegisterCheck,
    /// Read `/controller`.
    ControllerRead,
    /// Create `/controller`.
    ControllerCreate,
    /// Read `/controller_epoch` after winning `/controller`.
    EpochRead,
    /// Write the bumped `/controller_epoch`.
    EpochWrite(u32),
    /// A leader's conditional ISR update.
    IsrWrite {
        /// The partition.
        tp: Tp,
        /// The leader epoch it was made in.
        epoch: u32,
        /// The proposed ISR.
        isr: Vec<NodeId>,
    },
    /// Re-read of a partition state after a failed ISR update.
    IsrReread(Tp),
    /// Close of the session at the end of a graceful shutdown.
    Close,
    /// A controller request (handled in `controller`).
    Ctl(crate::kafka::controller::CtlPurpose),
    /// Create `/brokers/topics/__consumer_offsets`.
    OffsetsTopic,
}

/// A read-only view of one replica, for checks after a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaView {
    /// Whether this broker leads the partition.
    pub leader: bool,
    /// The leader epoch it knows.
    pub leader_epoch: Option<u32>,
    /// The ISR it knows (the leader's is authoritative).
    pub isr: Vec<NodeId>,
    /// Its high watermark.
    pub high_watermark: u64,
    /// Its log end offset.
    pub log_end: u64,
    /// Its log start offset: records below it are gone or unreadable.
    pub log_start: u64,
    /// Its batches (the first may begin below the log start).
    pub batches: Vec<Batch>,
}

/// Where a replica stands, cheap enough to read after every step (no copy
/// of the log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaPosition {
    /// Whether this broker leads the partition.
    pub leader: bool,
    /// The leader epoch it knows.
    pub leader_epoch: Option<u32>,
    /// Its high watermark.
    pub high_watermark: u64,
    /// Its log end offset.
    pub log_end: u64,
    /// Its log start offset.
    pub log_start: u64,
}

/// A Kafka broker.
pub struct KafkaBroker {
    pub(crate) id: NodeId,
    pub(crate) cfg: KafkaConfig,
    pub(crate) bugs: KafkaBugs,
    /// The ZooKeeper session (ZooKeeper mode).
    zk: Option<ZkClient>,
    /// The metadata log and the controller RPCs (KRaft mode).
    pub(crate) kraft: Option<crate::kraft::broker::KraftLink>,
    next_zk_req: ReqId,
    zk_pending: BTreeMap<ReqId, ZkPurpose>,
    pub(crate) started: bool,
    pub(crate) files: BTreeMap<FileName, Vec<u8>>,
    /// The ZooKeeper session our registration belongs to (0: unregistered).
    pub(crate) registered_session: u64,
    registering: bool,
    /// The zxid of our registration: the high bits of producer ids.
    pub(crate) reg_zxid: u64,
    next_pid: u64,
    /// The highest controller epoch obeyed.
    pub(crate) controller_epoch: u32,
    pub(crate) replicas: BTreeMap<Tp, Replica>,
    fetch_slots: BTreeMap<Tp, u64>,
    /// Metadata from the controller: live brokers and partitions.
    pub(crate) meta_live: Vec<NodeId>,
    pub(crate) meta: BTreeMap<Tp, PartitionInfo>,
    pub(crate) controller: Option<Controller>,
    controller_busy: bool,
    next_op: u64,
    pub(crate) next_corr: u64,
    last_hw_checkpoint: SimTime,
    /// When the recovery points were last checkpointed.
    last_recovery_checkpoint: SimTime,
    /// When size-based retention last ran.
    last_retention_check: SimTime,
    /// Outstanding fsyncs of log flushes: the partition and the log end
    /// each covers.
    sync_ops: BTreeMap<u64, (Tp, u64)>,
    /// Answers to this broker's own appends (its coordinator's), by token.
    pub(crate) local_acks: Vec<(u64, Result<u64, KafkaError>)>,
    /// The group coordinator for the offsets partitions this broker leads.
    coordinator: GroupCoordinator,
    /// A create of the offsets topic's znode is in flight.
    creating_offsets_topic: bool,
    /// The controller whose requests this broker last obeyed.
    pub(crate) known_controller: Option<NodeId>,
    /// A graceful shutdown in progress (see `shutdown`).
    pub(crate) shutdown: Option<ShutdownState>,
    /// The logs being opened at start follow a clean shutdown.
    clean_start: bool,
}

impl KafkaBroker {
    /// A broker with id `id` (not one of the ZooKeeper servers' ids).
    pub fn new(id: NodeId, cfg: KafkaConfig, bugs: &BugSet) -> KafkaBroker {
        let kraft = cfg.kraft.clone().map(|k| {
            crate::kraft::broker::KraftLink::new(id, k, crate::kraft::KraftBugs::from_set(bugs))
        });
        assert!(
            kraft.is_some() || !cfg.zk_servers.is_empty(),
            "zookeeper.connect is empty"
        );
        let zk = kraft.is_none().then(|| {
            ZkClient::new(
                cfg.zk_servers.clone(),
                cfg.zk_session_timeout_ms,
                id as usize,
            )
        });
        let cfg_group = cfg.group.clone();
        KafkaBroker {
            id,
            bugs: KafkaBugs::from_set(bugs),
            cfg,
            zk,
            kraft,
            next_zk_req: 1,
            zk_pending: BTreeMap::new(),
            started: false,
            files: BTreeMap::new(),
            registered_session: 0,
            registering: false,
            reg_zxid: 0,
            next_pid: 0,
            controller_epoch: 0,
            replicas: BTreeMap::new(),
            fetch_slots: BTreeMap::new(),
            meta_live: Vec::new(),
            meta: BTreeMap::new(),
            controller: None,
            controller_busy: false,
            next_op: 1,
            next_corr: 1,
            last_hw_checkpoint: SimTime::ZERO,
            last_recovery_checkpoint: SimTime::ZERO,
            last_retention_check: SimTime::ZERO,
            sync_ops: BTreeMap::new(),
            local_acks: Vec::new(),
            coordinator: GroupCoordinator::new(cfg_group, GroupBugs::from_set(bugs)),
            creating_offsets_topic: false,
            known_controller: None,
            shutdown: None,
            clean_start: false,
        }
    }

    /// Whether this broker is the controller (as it believes).
    pub fn is_controller(&self) -> bool {
        self.controller.is_some()
    }

    /// The controller epoch this broker obeys.
    pub fn controller_epoch(&self) -> u32 {
        self.controller_epoch
    }

    /// Whether the broker is registered in ZooKeeper.
    pub fn is_registered(&self) -> bool {
        self.registered_session != 0
    }

    /// A view of the replica of `tp`, if this broker hosts one.
    pub fn replica_view(&self, tp: &Tp) -> Option<ReplicaView> {
        self.replicas.get(tp).map(|r| r.view())
    }

    /// Where each hosted replica stands, in partition order.
    pub fn replica_positions(&self) -> impl Iterator<Item = (&Tp, ReplicaPosition)> + '_ {
        self.replicas.iter().map(|(tp, r)| {
            let v = r.position();
            (tp, v)
        })
    }

    /// KRaft mode: the broker's replica of the metadata log (an observer).
    pub fn metadata_quorum(&self) -> Option<&crate::raft::RaftCore> {
        self.kraft.as_ref().map(|k| &k.core)
    }

    /// KRaft mode: the broker's metadata image.
    pub fn metadata_image(&self) -> Option<&crate::kraft::MetadataImage> {
        self.kraft.as_ref().map(|k| &k.image)
    }

    /// KRaft mode: whether the broker is registered and not fenced, as the
    /// controller last told it.
    pub fn kraft_unfenced(&self) -> bool {
        self.kraft
            .as_ref()
            .is_some_and(|k| k.broker_epoch.is_some() && !k.fenced)
    }

    /// The partitions hosted here.
    pub fn hosted(&self) -> Vec<Tp> {
        self.replicas.keys().cloned().collect()
    }

    // ----- plumbing -----

    /// Issues disk requests and returns their operation ids.
    pub(crate) fn disk_all_tracked(
        &mut self,
        reqs: Vec<DiskRequest>,
        cx: &mut Ctx<'_>,
    ) -> BTreeSet<u64> {
        let first = self.next_op;
        self.disk_all(reqs, cx);
        (first..self.next_op).collect()
    }

    /// Issues disk requests produced by a log.
    pub(crate) fn disk_all(&mut self, reqs: Vec<DiskRequest>, cx: &mut Ctx<'_>) {
        for r in reqs {
            let op = self.next_op;
            self.next_op += 1;
            if let DiskRequest::Fsync { file } = &r {
                // A log's flush: note what it covers.
                let flushed = self.replicas.iter_mut().find_map(|(tp, rep)| {
                    rep.log
                        .take_flush_mark(file.as_str())
                        .map(|end| (tp.clone(), end))
                });
                if let Some(f) = flushed {
                    self.sync_ops.insert(op, f);
                }
            }
            cx.disk(op, r);
        }
    }

    /// The fetch timer of `tp`.
    pub(crate) fn fetch_timer(&mut self, tp: &Tp) -> u64 {
        let n = self.fetch_slots.len() as u64;
        TIMER_FETCH_BASE + *self.fetch_slots.entry(tp.clone()).or_insert(n)
    }

    /// Steps the embedded ZooKeeper client and handles its replies.
    pub(crate) fn drive_zk(&mut self, input: Input, cx: &mut Ctx<'_>) {
        let Some(zk) = self.zk.as_mut() else {
            return;
        };
        let replies = zk.step_embedded(input, TIMER_ZK_BASE, cx);
        for (id, r) in replies {
            if let Some(p) = self.zk_pending.remove(&id) {
                self.on_zk_reply(p, r, cx);
            }
        }
    }

    /// Sends a ZooKeeper operation on the broker's session.
    pub(crate) fn zk_call(&mut self, op: ZkOp, purpose: ZkPurpose, cx: &mut Ctx<'_>) {
        self.zk_request(ZkRequest::Op(op), purpose, cx);
    }

    /// Sends a request (an operation, or the session's close) through the
    /// embedded ZooKeeper client.
    pub(crate) fn zk_request(&mut self, req: ZkRequest, purpose: ZkPurpose, cx: &mut Ctx<'_>) {
        let id = self.next_zk_req;
        self.next_zk_req += 1;
        self.zk_pending.insert(id, purpose);
        self.drive_zk(
            Input::Client {
                id,
                req: ClientRequest::Zk(req),
            },
            cx,
        );
    }

    fn create(
        &mut self,
        path: &str,
        data: Vec<u8>,
        mode: CreateMode,
        p: ZkPurpose,
        cx: &mut Ctx<'_>,
    ) {
        let op = ZkOp::Create {
            path: path.to_string(),
            data,
            mode,
        };
        self.zk_call(op, p, cx);
    }

    // ----- lifecycle -----

    fn on_start(&mut self, files: BTreeMap<FileName, Vec<u8>>, cx: &mut Ctx<'_>) {
        self.started = true;
        self.files = files;
        // Kafka skips recovery after a clean shutdown, and deletes the
        // marker once the logs are loaded.
        self.clean_start = self.files.contains_key(CLEAN_SHUTDOWN_FILE);
        // Recover every log found on disk (Kafka opens all logs at startup).
        let mut tps = BTreeSet::new();
        for name in self.files.keys() {
            let Some(rest) = name.strip_prefix("kafka/") else {
                continue;
            };
            let Some((dir, _)) = rest.split_once('/') else {
                continue;
            };
            if let Some((topic, p)) = dir.rsplit_once('-') {
                if topic == crate::raft::core::METADATA_TOPIC {
                    continue;
                }
                if let Ok(p) = p.parse() {
                    tps.insert(Tp::new(topic, p));
                }
            }
        }
        for tp in tps {
            self.open_replica(&tp, cx);
        }
        if self.clean_start {
            self.clean_start = false;
            self.disk_all(
                vec![DiskRequest::Delete {
                    file: CLEAN_SHUTDOWN_FILE.into(),
                }],
                cx,
            );
        }
        self.last_hw_checkpoint = cx.now;
        self.last_recovery_checkpoint = cx.now;
        self.last_retention_check = cx.now;
        if self.kraft.is_some() {
            let files = std::mem::take(&mut self.files);
            self.kraft_start(&files, cx);
            self.files = files;
        } else {
            self.start_registration(cx);
        }
        cx.set_timer_ms(TIMER_TICK, self.cfg.tick_ms);
    }

    /// The replica of `tp`, recovering its log from the boot files if new.
    pub(crate) fn open_replica(&mut self, tp: &Tp, cx: &mut Ctx<'_>) {
        if self.replicas.contains_key(tp) {
            return;
        }
        let mut out = Vec::new();
        let opened = PartitionLog::open(
            tp,
            &self.files,
            self.cfg.log.clone(),
            crate::kafka::log::LogBugs {
                epoch_cache_not_truncated: self.bugs.epoch_cache_not_truncated,
            },
            self.clean_start,
            &mut out,
        );
        let log = match opened {
            Ok((log, _rec)) => log,
            Err(e) => {
                // Kafka: the log directory goes offline, and with its only
                // log directory gone the broker shuts down.
                cx.halt(format!("broker {}: log dir failed: {e}", self.id));
                return;
            }
        };
        self.disk_all(out, cx);
        let mut replica = Replica::new(tp.clone(), log);
        replica.cut_to_checkpoint = self.bugs.truncate_to_hw_on_restart;
        self.replicas.insert(tp.clone(), replica);
    }

    fn start_registration(&mut self, cx: &mut Ctx<'_>) {
        if self.registering {
            return;
        }
        self.registering = true;
        for p in zkdata::PARENTS {
            self.create(p, Vec::new(), CreateMode::Persistent, ZkPurpose::Ignore, cx);
        }
        let me = zkdata::broker_path(self.id);
        self.create(
            &me,
            zkdata::encode_u32(self.id),
            CreateMode::Ephemeral,
            ZkPurpose::Register,
            cx,
        );
    }

    fn on_tick(&mut self, cx: &mut Ctx<'_>) {
        cx.set_timer_ms(TIMER_TICK, self.cfg.tick_ms);
        self.shutdown_tick(cx);
        if self.shutdown.as_ref().is_some_and(|s| s.stopping()) {
            return;
        }
        let session = self.zk.as_ref().map(|z| z.session());
        if self.kraft.is_some() {
            self.kraft_tick(cx);
        } else if self.registered_session != 0 && session != Some(self.registered_session) {
            // A changed session means ours expired: everything tied to it
            // is gone.
            self.registered_session = 0;
            self.resign();
        }
        if self.kraft.is_some() {
        } else if self.registered_session == 0 {
            self.start_registration(cx);
        } else if self.controller.is_some() {
            self.channel_tick(cx);
            self.controller_tick(cx);
        } else if !self.controller_busy {
            self.controller_busy = true;
            self.zk_call(
                ZkOp::GetData {
                    path: zkdata::CONTROLLER.into(),
                    watch: false,
                },
                ZkPurpose::ControllerRead,
                cx,
            );
        }
        self.replica_tick(cx);
        let mut appends = Vec::new();
        self.coordinator.tick(cx, &mut appends);
        self.run_appends(appends, cx);
        if cx.now.ms_since(self.last_hw_checkpoint) >= self.cfg.hw_checkpoint_ms {
            self.last_hw_checkpoint = cx.now;
            self.checkpoint_all(Replica::checkpoint_hw, cx);
        }
        if cx.now.ms_since(self.last_recovery_checkpoint) >= self.cfg.recovery_point_checkpoint_ms {
            self.last_recovery_checkpoint = cx.now;
            self.checkpoint_all(Replica::checkpoint_recovery_point, cx);
            // `log.flush.start.offset.checkpoint.interval.ms`: Kafka's
            // default equals the recovery point's, 60 s.
            self.checkpoint_all(Replica::checkpoint_log_start, cx);
        }
        if self.cfg.log.retention_bytes.is_some()
            && cx.now.ms_since(self.last_retention_check)
                >= self.cfg.log_retention_check_interval_ms
        {
            self.last_retention_check = cx.now;
            self.checkpoint_all(Replica::apply_retention, cx);
        }
    }

    /// Runs one periodic log duty (a kind of checkpoint, or retention)
    /// for every hosted replica.
    fn checkpoint_all(&mut self, write: fn(&mut Replica, &mut Vec<DiskRequest>), cx: &mut Ctx<'_>) {
        let mut out = Vec::new();
        for r in self.replicas.values_mut() {
            write(r, &mut out);
        }
        self.disk_all(out, cx);
    }

    /// Reads `/controller_epoch`, the step after winning `/controller`.
    fn read_controller_epoch(&mut self, cx: &mut Ctx<'_>) {
        self.zk_call(
            ZkOp::GetData {
                path: zkdata::CONTROLLER_EPOCH.into(),
                watch: false,
            },
            ZkPurpose::EpochRead,
            cx,
        );
    }

    pub(crate) fn resign(&mut self) {
        if let Some(c) = &self.controller {
            tracing::info!("kafka: resigning as controller (epoch {})", c.epoch);
        }
        self.controller = None;
        self.controller_busy = false;
    }

    // ----- ZooKeeper replies -----

    fn on_zk_reply(&mut self, p: ZkPurpose, r: ZkReply, cx: &mut Ctx<'_>) {
        match p {
            ZkPurpose::Ignore => {}
            ZkPurpose::Close => self.on_zk_closed(cx),
            ZkPurpose::Register => match r.result {
                Ok(_) => self.registered(r.session, r.zxid),
                Err(ZkError::NodeExists) | Err(ZkError::ConnectionLoss) => {
                    self.zk_call(
                        ZkOp::Exists {
                            path: zkdata::broker_path(self.id),
                            watch: false,
                        },
                        ZkPurpose::RegisterCheck,
                        cx,
                    );
                }
                Err(_) => self.registering = false,
            },
            ZkPurpose::RegisterCheck => match r.result {
                Ok(ZkResponse::Exists(Some(st)))
                    if st.ephemeral_owner == r.session && r.session != 0 =>
                {
                    self.registered(r.session, st.czxid)
                }
                // Not ours (an old session's, until it expires) or gone:
                // try again on a later tick.
                _ => self.registering = false,
            },
            ZkPurpose::ControllerRead => match r.result {
                // `/controller` is ours: our create went through but its
                // answer was lost (Kafka's registerControllerAndIncrement-
                // ControllerEpoch treats a NodeExists with its own id as
                // its own election): carry on with the epoch.
                Ok(ZkResponse::Data(d, st))
                    if self.registered_session != 0
                        && st.ephemeral_owner == self.registered_session
                        && zkdata::decode_u32(&d) == Some(self.id) =>
                {
                    self.read_controller_epoch(cx);
                }
                Err(ZkError::NoNode) if self.registered_session != 0 => {
                    self.create(
                        zkdata::CONTROLLER,
                        zkdata::encode_u32(self.id),
                        CreateMode::Ephemeral,
                        ZkPurpose::ControllerCreate,
                        cx,
                    );
                }
                _ => self.controller_busy = false,
            },
            ZkPurpose::ControllerCreate => match r.result {
                Ok(_) if r.session == self.registered_session => {
                    self.read_controller_epoch(cx);
                }
                _ => self.controller_busy = false,
            },
            ZkPurpose::EpochRead => match r.result {
                Ok(ZkResponse::Data(d, st)) => {
                    let e = zkdata::decode_u32(&d).unwrap_or(0) + 1;
                    self.zk_call(
                        ZkOp::SetData {
                            path: zkdata::CONTROLLER_EPOCH.into(),
                            data: zkdata::encode_u32(e),
                            version: st.version,
                        },
                        ZkPurpose::EpochWrite(e),
                        cx,
                    );
                }
                Err(ZkError::NoNode) => {
                    self.create(
                        zkdata::CONTROLLER_EPOCH,
                        zkdata::encode_u32(1),
                        CreateMode::Persistent,
                        ZkPurpose::EpochWrite(1),
                        cx,
                    );
                }
                _ => self.controller_busy = false,
            },
            ZkPurpose::EpochWrite(e) => {
                let version = match r.result {
                    Ok(ZkResponse::Stat(st)) => Some(st.version),
                    Ok(ZkResponse::Created(_)) => Some(0),
                    _ => None,
                };
                match version {
                    Some(v) if r.session == self.registered_session => {
                        self.controller_busy = false;
                        self.controller_epoch = self.controller_epoch.max(e);
                        tracing::info!("kafka: became controller with controller epoch {e}");
                        cx.event(EventKind::ControllerChange, cx.me);
                        self.controller = Some(Controller::new(e, v));
                        self.controller_tick(cx);
                    }
                    // Lost the race or the reply: we hold /controller but
                    // not the epoch; read and bump again on a later tick.
                    _ if r.session == self.registered_session => {
                        self.read_controller_epoch(cx);
                    }
                    _ => self.controller_busy = false,
                }
            }
            ZkPurpose::IsrWrite { tp, epoch, isr } => self.on_isr_written(tp, epoch, isr, r, cx),
            ZkPurpose::IsrReread(tp) => self.on_isr_reread(tp, r, cx),
            ZkPurpose::Ctl(c) => self.on_ctl_reply(c, r, cx),
            ZkPurpose::OffsetsTopic => self.creating_offsets_topic = false,
        }
    }

    fn registered(&mut self, session: u64, zxid: u64) {
        self.registering = false;
        self.registered_session = session;
        self.reg_zxid = zxid;
        self.next_pid = 0;
    }

    // ----- controller requests and client requests -----

    fn stale_controller(&self, epoch: u32) -> bool {
        epoch < self.controller_epoch && !self.bugs.no_controller_epoch_fencing
    }

    /// Whether a controller request addressed to `broker_epoch` is meant
    /// for an older incarnation of this broker (KIP-380:
    /// STALE_BROKER_EPOCH), or arrives before this process ever registered
    /// (Kafka processes requests only after its first registration). A
    /// newer epoch is accepted, as Kafka's `isBrokerEpochStale` does: the
    /// controller can learn of a re-registration before the broker has
    /// read its own answer.
    fn stale_broker_epoch(&self, broker_epoch: u64) -> bool {
        self.reg_zxid == 0 || broker_epoch < self.reg_zxid
    }

    /// This broker's epoch: the creation zxid of its registration (0 when
    /// not registered).
    pub fn broker_epoch(&self) -> u64 {
        if self.registered_session == 0 {
            0
        } else {
            self.reg_zxid
        }
    }

    /// Whether a controller request with these epochs is to be obeyed;
    /// if it is, its controller epoch is the newest this broker knows of.
    fn accept_control_request(
        &mut self,
        controller_epoch: u32,
        broker_epoch: u64,
    ) -> Result<(), KafkaError> {
        if self.stale_controller(controller_epoch) {
            return Err(KafkaError::StaleControllerEpoch);
        }
        if self.stale_broker_epoch(broker_epoch) {
            return Err(KafkaError::StaleBrokerEpoch);
        }
        self.controller_epoch = self.controller_epoch.max(controller_epoch);
        Ok(())
    }

    /// Answers a controller request (not one from our own controller,
    /// which is handled in the step that made it).
    fn answer_controller(
        &mut self,
        controller: NodeId,
        corr: u64,
        result: Result<(), KafkaError>,
        cx: &mut Ctx<'_>,
    ) {
        if controller != self.id {
            cx.send(
                controller,
                Msg::Kafka(KafkaMsg::ControllerResp { corr, result }),
            );
        }
    }

    /// What this broker's metadata cache says of each partition: its
    /// leader epoch and the version of its partition-state znode, in
    /// partition order.
    pub fn metadata_versions(&self) -> impl Iterator<Item = (&Tp, (u32, i32))> + '_ {
        self.meta
            .iter()
            .map(|(tp, i)| (tp, (i.state.leader_epoch, i.zk_version)))
    }

    /// A controller request from this broker's own controller.
    pub(crate) fn on_kafka_local(&mut self, m: KafkaMsg, cx: &mut Ctx<'_>) {
        let me = self.id;
        self.on_kafka(me, m, cx);
    }

    fn on_kafka(&mut self, from: NodeId, m: KafkaMsg, cx: &mut Ctx<'_>) {
        match m {
            KafkaMsg::LeaderAndIsr {
                corr,
                controller_epoch,
                broker_epoch,
                partitions,
            } => {
                let result = self.accept_control_request(controller_epoch, broker_epoch);
                if result.is_ok() {
                    self.known_controller = Some(from);
                    for p in partitions {
                        if p.replicas.contains(&self.id) {
                            self.open_replica(&p.tp, cx);
                            self.become_leader_or_follower(p, cx);
                        }
                    }
                }
                self.answer_controller(from, corr, result, cx);
            }
            KafkaMsg::UpdateMetadata {
                corr,
                controller_epoch,
                broker_epoch,
                live,
                partitions,
            } => {
                let result = self.accept_control_request(controller_epoch, broker_epoch);
                if result.is_ok() {
                    self.known_controller = Some(from);
                    self.meta_live = live;
                    for p in partitions {
                        self.meta.insert(p.tp.clone(), p);
                    }
                }
                self.answer_controller(from, corr, result, cx);
            }
            KafkaMsg::ControllerResp { corr, .. } => self.channel_answered(from, corr, cx),
            KafkaMsg::Metadata { corr } => cx.send(
                from,
                Msg::Kafka(KafkaMsg::MetadataResp {
                    corr,
                    live: self.meta_live.clone(),
                    partitions: self.meta.values().cloned().collect(),
                }),
            ),
            KafkaMsg::InitProducerId { corr } => {
                let result = if self.kraft.is_some() {
                    self.kraft_producer_id(cx)
                } else if self.registered_session == 0 || self.next_pid >= 0xFFFF {
                    Err(KafkaError::BrokerNotAvailable)
                } else {
                    // Unique: the zxid of our registration is unique in the
                    // cluster, and we hand out at most 2^16 ids per session.
                    self.next_pid += 1;
                    Ok((self.reg_zxid << 16) | self.next_pid)
                };
                cx.send(
                    from,
                    Msg::Kafka(KafkaMsg::InitProducerIdResp { corr, result }),
                );
            }
            KafkaMsg::Produce {
                corr,
                tp,
                acks,
                timeout_ms,
                batch,
            } => self.on_produce(from, corr, tp, acks, timeout_ms, batch, cx),
            KafkaMsg::Fetch {
                corr,
                replica,
                tp,
                current_leader_epoch,
                offset,
                last_fetched_epoch,
                log_start,
            } => self.on_fetch(
                from,
                corr,
                FetchParams {
                    replica,
                    tp,
                    current: current_leader_epoch,
                    offset,
                    last_fetched_epoch,
                    log_start,
                },
                cx,
            ),
            KafkaMsg::DeleteRecords { corr, tp, offset } => {
                self.on_delete_records(from, corr, tp, offset, cx)
            }
            KafkaMsg::FetchResp { corr, result } => self.on_fetch_resp(from, corr, result, cx),
            KafkaMsg::OffsetsForLeaderEpoch {
                corr,
                tp,
                current_leader_epoch,
                epoch,
            } => self.on_offsets_for_epoch(from, corr, tp, current_leader_epoch, epoch, cx),
            KafkaMsg::OffsetsForLeaderEpochResp { corr, result } => {
                self.on_offsets_for_epoch_resp(from, corr, result, cx)
            }
            KafkaMsg::ControlledShutdown { corr, broker_epoch } => {
                self.on_controlled_shutdown(from, corr, broker_epoch, cx)
            }
            KafkaMsg::ControlledShutdownResp { corr, result } => {
                self.on_controlled_shutdown_resp(corr, result, cx)
            }
            KafkaMsg::ProduceResp { .. }
            | KafkaMsg::MetadataResp { .. }
            | KafkaMsg::InitProducerIdResp { .. }
            | KafkaMsg::DeleteRecordsResp { .. } => {}
        }
    }
}

impl Node for KafkaBroker {
    fn step(&mut self, input: Input, cx: &mut Ctx<'_>) {
        if !self.handles_while_stopping(&input) {
            return;
        }
        self.step_inner(input, cx);
        if self.started && self.kraft.is_some() {
            self.kraft_sync(cx);
        }
        if self.started && self.shutdown.as_ref().is_none_or(|s| !s.stopping()) {
            self.drive_coordinator(cx);
        }
    }

    fn shutdown(&mut self, cx: &mut Ctx<'_>) {
        self.begin_shutdown(cx);
    }

    fn role(&self) -> String {
        self.role_summary()
    }

    fn is_leader(&self) -> bool {
        // For faults that target "the leader": a broker leading a partition.
        self.replicas.values().any(|r| r.is_leader())
    }

    fn is_controller(&self) -> bool {
        self.controller.is_some()
    }

    fn is_group_coordinator(&self) -> bool {
        self.coordinator.coordinates()
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

impl KafkaBroker {
    fn step_inner(&mut self, input: Input, cx: &mut Ctx<'_>) {
        match input {
            Input::Start { files } => self.on_start(files, cx),
            _ if !self.started => {}
            Input::Message {
                from,
                msg: Msg::Zk(m),
            } => self.drive_zk(
                Input::Message {
                    from,
                    msg: Msg::Zk(m),
                },
                cx,
            ),
            Input::Message {
                from,
                msg: Msg::Kafka(m),
            } => self.on_kafka(from, m, cx),
            Input::Message {
                from,
                msg: Msg::Group(m),
            } => self.on_group(from, m, cx),
            Input::Message {
                from,
                msg: Msg::Raft(m),
            } => {
                if let Some(k) = self.kraft.as_mut() {
                    k.core.on_message(from, m, cx);
                }
            }
            Input::Message {
                msg: Msg::Kraft(m), ..
            } => {
                if self.kraft.is_some() {
                    self.on_kraft(m, cx);
                }
            }
            Input::Message { .. } => {}
            Input::ConnUp { peer } | Input::ConnLost { peer }
                if self.cfg.zk_servers.contains(&peer) =>
            {
                self.drive_zk(input, cx)
            }
            Input::ConnLost { peer } => {
                if let Some(k) = self.kraft.as_mut() {
                    k.core.on_conn_lost(peer, cx);
                }
                self.channel_conn_lost(peer);
                self.on_conn_lost(peer, cx)
            }
            Input::ConnUp { .. } => {}
            Input::Timer { timer } => match timer {
                TIMER_TICK => self.on_tick(cx),
                t if self.kraft_owns_timer(t) => {
                    if let Some(k) = self.kraft.as_mut() {
                        k.core.on_timer(t, cx);
                    }
                }
                t if (TIMER_ZK_BASE..TIMER_FETCH_BASE).contains(&t) => self.drive_zk(
                    Input::Timer {
                        timer: t - TIMER_ZK_BASE,
                    },
                    cx,
                ),
                t => {
                    let tp = self
                        .fetch_slots
                        .iter()
                        .find(|(_, s)| **s == t - TIMER_FETCH_BASE)
                        .map(|(tp, _)| tp.clone());
                    if let Some(tp) = tp {
                        self.on_fetch_timer(tp, cx);
                    }
                }
            },
            Input::Disk { op, result } => match result {
                Err(e) => cx.halt(format!("broker {}: log dir failed: {e}", self.id)),
                Ok(_) if self.kraft.as_ref().is_some_and(|k| k.core.owns_op(op)) => {
                    if let Some(k) = self.kraft.as_mut() {
                        k.core.on_disk_done(op, cx);
                    }
                }
                Ok(_) => {
                    if let Some((tp, end)) = self.sync_ops.remove(&op) {
                        self.on_log_synced(tp, end, cx);
                    }
                    self.shutdown_disk_done(op, cx);
                }
            },
            Input::Client { .. } => {}
        }
    }

    fn role_summary(&self) -> String {
        let leads = self
            .replicas
            .values()
            .filter(|r| r.is_leader())
            .map(|r| r.tp.to_string())
            .collect::<Vec<_>>()
            .join(",");
        if let Some(k) = &self.kraft {
            return format!(
                "{}be={} leads=[{leads}] {}",
                if k.fenced { "fenced " } else { "" },
                k.broker_epoch.map_or("-".to_string(), |e| e.to_string()),
                k.core.summary()
            );
        }
        format!(
            "{}ce={} leads=[{leads}]",
            if self.controller.is_some() {
                "controller "
            } else {
                ""
            },
            self.controller_epoch
        )
    }
}

// ----- the group coordinator's host -----

impl KafkaBroker {
    /// The groups this broker coordinates, for checks after a run.
    pub fn groups(&self) -> BTreeMap<String, GroupView> {
        self.coordinator.groups()
    }

    /// The offsets partitions this broker leads, with their leader epochs.
    fn offsets_leadership(&self) -> BTreeMap<u32, u32> {
        self.replicas
            .iter()
            .filter(|(tp, r)| tp.topic == OFFSETS_TOPIC && r.is_leader())
            .map(|(tp, r)| {
                let epoch = r.info.as_ref().map(|i| i.state.leader_epoch).unwrap_or(0);
                (tp.partition, epoch)
            })
            .collect()
    }

    /// After every step: tell the coordinator which offsets partitions
    /// this broker leads, load those whose load is due, and hand it the
    /// answers to its appends.
    fn drive_coordinator(&mut self, cx: &mut Ctx<'_>) {
        let led = self.offsets_leadership();
        let now = cx.now;
        self.coordinator.set_leadership(&led, now, cx);
        for p in self.coordinator.due_loads(now) {
            let tp = Tp::new(OFFSETS_TOPIC, p);
            let batches = self
                .replicas
                .get(&tp)
                .map(|r| r.log.batches().to_vec())
                .unwrap_or_default();
            self.coordinator.load(p, &batches, now);
        }
        while !self.local_acks.is_empty() {
            let acks = std::mem::take(&mut self.local_acks);
            let mut appends = Vec::new();
            for (token, result) in acks {
                self.coordinator
                    .on_append_done(token, result, cx, &mut appends);
            }
            self.run_appends(appends, cx);
        }
    }

    fn run_appends(&mut self, appends: Vec<Append>, cx: &mut Ctx<'_>) {
        for a in appends {
            let acks = if a.acks_all { Acks::All } else { Acks::Leader };
            self.append_local(
                Tp::new(OFFSETS_TOPIC, a.partition),
                a.values,
                a.token,
                acks,
                a.timeout_ms,
                cx,
            );
        }
    }

    fn on_group(&mut self, from: NodeId, m: GroupMsg, cx: &mut Ctx<'_>) {
        if let GroupMsg::FindCoordinator { corr, group } = m {
            let result = self.find_coordinator(&group, cx);
            cx.send(
                from,
                Msg::Group(GroupMsg::FindCoordinatorResp { corr, result }),
            );
            return;
        }
        let mut appends = Vec::new();
        self.coordinator.on_msg(from, m, cx, &mut appends);
        self.run_appends(appends, cx);
    }

    /// The leader of the group's offsets partition, as this broker's
    /// metadata knows it; creates the offsets topic through ZooKeeper
    /// when it does not exist yet (Kafka's auto-creation of internal
    /// topics), with replicas spread over the live brokers.
    fn find_coordinator(&mut self, group: &str, cx: &mut Ctx<'_>) -> Result<NodeId, GroupError> {
        let n = self.coordinator.config().offsets_partitions;
        let p = crate::group::offsets_partition(group, n);
        if let Some(info) = self.meta.get(&Tp::new(OFFSETS_TOPIC, p)) {
            return info.state.leader.ok_or(GroupError::CoordinatorNotAvailable);
        }
        let rf = self.coordinator.config().offsets_replication_factor;
        let mut live = self.meta_live.clone();
        live.sort();
        if live.len() < rf {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let assignment: BTreeMap<u32, Vec<NodeId>> = (0..n)
            .map(|p| {
                let replicas = (0..rf)
                    .map(|i| live[(p as usize + i) % live.len()])
                    .collect();
                (p, replicas)
            })
            .collect();
        if self.kraft.is_some() {
            self.kraft_create_topic(OFFSETS_TOPIC, assignment, cx);
        } else if self.registered_session != 0 && !self.creating_offsets_topic {
            self.creating_offsets_topic = true;
            self.create(
                &zkdata::topic_path(OFFSETS_TOPIC),
                zkdata::encode_assignment(&assignment),
                CreateMode::Persistent,
                ZkPurpose::OffsetsTopic,
                cx,
            );
        }
        Err(GroupError::CoordinatorNotAvailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::Stat;
    use rand::SeedableRng;

    /// A broker whose `/controller` create went through but whose answer
    /// was lost finds its own ephemeral `/controller` on the next read and
    /// carries on with the epoch, as Kafka does on a NodeExists with its
    /// own id; someone else's `/controller` leaves it a follower.
    #[test]
    fn a_broker_that_finds_its_own_controller_znode_takes_office() {
        let cfg = KafkaConfig {
            zk_servers: vec![0, 1, 2],
            ..KafkaConfig::default()
        };
        for (owner, id, takes) in [(7, 3, true), (8, 3, false), (7, 4, false)] {
            let mut b = KafkaBroker::new(3, cfg.clone(), &BugSet::none());
            b.registered_session = 7;
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
            let mut effects = Vec::new();
            let mut cx = Ctx::new(SimTime::ZERO, 3, &mut rng, &mut effects);
            let reply = ZkReply {
                result: Ok(ZkResponse::Data(
                    zkdata::encode_u32(id),
                    Stat {
                        ephemeral_owner: owner,
                        ..Stat::default()
                    },
                )),
                zxid: 1,
                session: 7,
                server: 0,
                events: Vec::new(),
            };
            b.on_zk_reply(ZkPurpose::ControllerRead, reply, &mut cx);
            let reads_epoch = b
                .zk_pending
                .values()
                .any(|p| matches!(p, ZkPurpose::EpochRead));
            assert_eq!(reads_epoch, takes, "owner {owner}, id {id}");
        }
    }
}
