//! One partition replica on a broker, as leader or follower.
//!
//! The leader appends produce batches, tracks each follower's log end
//! offset from its fetches, keeps the high watermark at the minimum log end
//! offset of the ISR (never moving it back), shrinks the ISR when a
//! follower has not caught up for `replica.lag.time.max.ms` and expands it
//! when one catches up (both through a versioned setData of the
//! partition-state znode; the new ISR counts only once ZooKeeper took it),
//! fences fetches carrying another leader epoch (KIP-320), and answers
//! OffsetsForLeaderEpoch from its epoch cache.
//!
//! The follower side (truncation, then fetching) is in `follower`.

use std::collections::BTreeMap;

use crate::disk::DiskRequest;
use crate::kafka::broker::{KafkaBroker, ReplicaView, ZkPurpose};
use crate::kafka::log::{PartitionLog, SeqCheck, PRODUCER_BATCHES};
use crate::kafka::types::{
    Acks, Batch, FetchData, KafkaError, KafkaMsg, LeaderEpoch, PartitionInfo, PartitionState, Tp,
};
use crate::kafka::zkdata;
use crate::msg::Msg;
use crate::node::{Ctx, NodeId};
use crate::probe::EventKind;
use crate::time::SimTime;
use crate::zk::{ZkError, ZkOp, ZkReply, ZkResponse};

/// Most batches returned by one fetch.
const MAX_FETCH_BATCHES: usize = 16;

/// How long a DeleteRecords waits for the followers' log starts (Kafka:
/// the request's timeout, 30 s by default, scaled as the session is).
const DELETE_RECORDS_TIMEOUT_MS: u64 = 1_000;

/// Sends a DeleteRecords answer.
fn answer_delete(cx: &mut Ctx<'_>, to: NodeId, corr: u64, result: Result<u64, KafkaError>) {
    cx.send(to, Msg::Kafka(KafkaMsg::DeleteRecordsResp { corr, result }));
}

/// A fetch request as the leader reads it.
#[derive(Clone, Debug)]
pub(crate) struct FetchParams {
    /// The fetching replica, `None` for a consumer.
    pub(crate) replica: Option<NodeId>,
    /// The partition.
    pub(crate) tp: Tp,
    /// The fetcher's view of the leader epoch (KIP-320).
    pub(crate) current: Option<LeaderEpoch>,
    /// The first offset wanted.
    pub(crate) offset: u64,
    /// The epoch of the fetcher's last batch (a follower truncating on
    /// fetch), checked against the leader's log.
    pub(crate) last_fetched_epoch: Option<LeaderEpoch>,
    /// The fetching replica's log start offset.
    pub(crate) log_start: u64,
}

#[derive(Clone, Debug)]
struct Progress {
    leo: u64,
    /// The follower's log start, from its last fetch.
    log_start: u64,
    last_caught_up: SimTime,
    last_fetch: SimTime,
    leader_leo_at_last_fetch: u64,
}

#[derive(Clone, Debug)]
struct Waiting {
    from: NodeId,
    corr: u64,
    required: u64,
    /// acks=1 waiting only for the leader's own append-path flush.
    leader_only: bool,
    base: u64,
    deadline: SimTime,
}

/// What became of a KRaft AlterPartition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum IsrOutcome {
    /// Committed: the new ISR and partition epoch.
    Applied {
        /// The ISR.
        isr: Vec<NodeId>,
        /// The partition epoch.
        version: u32,
    },
    /// Refused (stale epochs, ineligible replica).
    Rejected,
    /// No answer, or no controller.
    Unknown,
    /// The planted `kraft_no_broker_fencing`: adopted without an answer.
    AdoptLocally(Vec<NodeId>),
}

#[derive(Clone, Debug, Default)]
pub(crate) struct LeaderState {
    progress: BTreeMap<NodeId, Progress>,
    /// An ISR write (or the re-read after a failed one) is in flight.
    isr_pending: bool,
    /// The ISR last proposed while it may or may not be in ZooKeeper yet.
    /// The high watermark counts its members too (KIP-497's "maximal
    /// ISR"): a follower being added must hold every record committed from
    /// the moment the write could land, or it joins an ISR whose committed
    /// records it lacks, and can be elected without them.
    proposed_isr: Option<Vec<NodeId>>,
    waiting: Vec<Waiting>,
    /// DeleteRecords answered once the low watermark reaches their offset.
    deletes: Vec<WaitingDelete>,
}

/// A DeleteRecords request waiting for the replicas' log starts
/// (Kafka's DelayedDeleteRecords).
#[derive(Clone, Debug)]
struct WaitingDelete {
    from: NodeId,
    corr: u64,
    offset: u64,
    deadline: SimTime,
}

impl LeaderState {
    /// The ISR the high watermark is computed over: the committed ISR and
    /// any proposed members.
    fn maximal_isr(&self, isr: &[NodeId]) -> Vec<NodeId> {
        let mut all = isr.to_vec();
        for x in self.proposed_isr.iter().flatten() {
            if !all.contains(x) {
                all.push(*x);
            }
        }
        all
    }
}

#[derive(Clone, Debug)]
pub(crate) struct FollowerState {
    pub(crate) leader: NodeId,
    pub(crate) truncating: bool,
    pub(crate) asked_epoch: LeaderEpoch,
    pub(crate) inflight: Option<u64>,
    /// Appended fetched records whose append-path flush has not finished:
    /// the next fetch (which tells the leader our log end) waits for it.
    pub(crate) awaiting_sync: bool,
}

#[derive(Clone, Debug)]
pub(crate) enum Role {
    None,
    Leader(LeaderState),
    Follower(FollowerState),
}

/// A partition replica hosted by a broker.
pub(crate) struct Replica {
    pub(crate) tp: Tp,
    pub(crate) log: PartitionLog,
    pub(crate) info: Option<PartitionInfo>,
    pub(crate) role: Role,
    hw_checkpointed: Option<u64>,
    /// The recovery point last checkpointed (to skip rewriting the same).
    recovery_point_checkpointed: Option<u64>,
    /// The log start offset last checkpointed.
    log_start_checkpointed: Option<u64>,
    /// `kafka_truncate_to_hw_on_restart`: the first time this process
    /// makes the replica a follower, it cuts the log to the high watermark
    /// it recovered from the checkpoint, as Kafka before KIP-101 did in
    /// `ReplicaManager.makeFollowers`.
    pub(crate) cut_to_checkpoint: bool,
}

impl Replica {
    pub(crate) fn new(tp: Tp, log: PartitionLog) -> Replica {
        Replica {
            tp,
            log,
            info: None,
            role: Role::None,
            hw_checkpointed: None,
            recovery_point_checkpointed: None,
            log_start_checkpointed: None,
            cut_to_checkpoint: false,
        }
    }

    pub(crate) fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }

    pub(crate) fn epoch(&self) -> LeaderEpoch {
        self.info
            .as_ref()
            .map(|i| i.state.leader_epoch)
            .unwrap_or(0)
    }

    pub(crate) fn position(&self) -> crate::kafka::broker::ReplicaPosition {
        crate::kafka::broker::ReplicaPosition {
            leader: self.is_leader(),
            leader_epoch: self.info.as_ref().map(|i| i.state.leader_epoch),
            high_watermark: self.log.hw(),
            log_end: self.log.leo(),
            log_start: self.log.log_start(),
        }
    }

    pub(crate) fn view(&self) -> ReplicaView {
        ReplicaView {
            leader: self.is_leader(),
            leader_epoch: self.info.as_ref().map(|i| i.state.leader_epoch),
            isr: self
                .info
                .as_ref()
                .map(|i| i.state.isr.clone())
                .unwrap_or_default(),
            high_watermark: self.log.hw(),
            log_end: self.log.leo(),
            log_start: self.log.log_start(),
            batches: self.log.batches().to_vec(),
        }
    }

    pub(crate) fn checkpoint_recovery_point(&mut self, out: &mut Vec<DiskRequest>) {
        if self.recovery_point_checkpointed != Some(self.log.recovery_point()) {
            self.recovery_point_checkpointed = Some(self.log.recovery_point());
            self.log.checkpoint_recovery_point(out);
        }
    }

    /// Kafka checkpoints a log's start only where it is past the first
    /// segment's base (otherwise recovery finds it there).
    pub(crate) fn checkpoint_log_start(&mut self, out: &mut Vec<DiskRequest>) {
        let start = self.log.log_start();
        if start > self.log.first_segment_base() && self.log_start_checkpointed != Some(start) {
            self.log_start_checkpointed = Some(start);
            self.log.checkpoint_log_start(out);
        }
    }

    /// Size-based retention, for every topic but the internal ones
    /// (`__consumer_offsets` is compacted in Kafka, never deleted by size).
    pub(crate) fn apply_retention(&mut self, out: &mut Vec<DiskRequest>) {
        if !self.tp.topic.starts_with("__") {
            self.log.apply_retention(out);
        }
    }

    pub(crate) fn checkpoint_hw(&mut self, out: &mut Vec<DiskRequest>) {
        if self.hw_checkpointed != Some(self.log.hw()) {
            self.hw_checkpointed = Some(self.log.hw());
            self.log.checkpoint_hw(out);
        }
    }

    /// KIP-320 check of a request's view of the leader epoch.
    fn fence(&self, current: Option<LeaderEpoch>, disabled: bool) -> Result<(), KafkaError> {
        match current {
            Some(e) if !disabled && e < self.epoch() => Err(KafkaError::FencedLeaderEpoch),
            Some(e) if !disabled && e > self.epoch() => Err(KafkaError::UnknownLeaderEpoch),
            _ => Ok(()),
        }
    }
}

/// The leader's high watermark: the smallest log end offset among the ISR
/// (the leader's own for `me`, a follower's last fetch offset for the
/// others, 0 if it has not fetched yet), never below the current one.
pub(crate) fn high_watermark(
    me: NodeId,
    leader_leo: u64,
    isr: &[NodeId],
    follower_leos: &BTreeMap<NodeId, u64>,
    current: u64,
) -> u64 {
    let min = isr
        .iter()
        .map(|x| {
            if *x == me {
                leader_leo
            } else {
                follower_leos.get(x).copied().unwrap_or(0)
            }
        })
        .min()
        .unwrap_or(leader_leo);
    min.max(current).min(leader_leo)
}

/// The replicas whose log end holds the leader's high watermark back, as
/// Kafka's `Partition.maybeIncrementLeaderHW` picks them: the maximal ISR,
/// and any follower (given as `(id, log end, last caught up)`) that is
/// caught up (at the leader's log end `leo`, or within `lag_ms` of having
/// been) and alive in the leader's metadata (`live`), being about to join
/// the ISR (KAFKA-4485, with KAFKA-15021's eligibility check).
pub(crate) fn hw_holders(
    maximal_isr: Vec<NodeId>,
    followers: impl Iterator<Item = (NodeId, u64, SimTime)>,
    leo: u64,
    now: SimTime,
    lag_ms: u64,
    live: &[NodeId],
) -> Vec<NodeId> {
    let mut holders = maximal_isr;
    for (id, f_leo, last_caught_up) in followers {
        let caught_up = f_leo >= leo || now.ms_since(last_caught_up) <= lag_ms;
        if !holders.contains(&id) && caught_up && live.contains(&id) {
            holders.push(id);
        }
    }
    holders
}

fn produce_resp(cx: &mut Ctx<'_>, to: NodeId, corr: u64, result: Result<u64, KafkaError>) {
    cx.send(to, Msg::Kafka(KafkaMsg::ProduceResp { corr, result }));
}

impl KafkaBroker {
    /// Answers a produce: over the network, or, for this broker's own
    /// appends (its group coordinator's), into `local_acks`.
    /// DeleteRecords (`ReplicaManager.deleteRecords`): a leader moves its
    /// log start to `offset` (its high watermark when `None`; past it is
    /// OFFSET_OUT_OF_RANGE) and answers once the low watermark, the
    /// smallest log start of itself and its live followers, reaches it.
    pub(crate) fn on_delete_records(
        &mut self,
        from: NodeId,
        corr: u64,
        tp: Tp,
        offset: Option<u64>,
        cx: &mut Ctx<'_>,
    ) {
        let deadline = cx.now.plus_ms(DELETE_RECORDS_TIMEOUT_MS);
        let Some(r) = self.replicas.get_mut(&tp) else {
            return answer_delete(cx, from, corr, Err(KafkaError::UnknownTopicOrPartition));
        };
        let hw = r.log.hw();
        let Role::Leader(ls) = &mut r.role else {
            return answer_delete(cx, from, corr, Err(KafkaError::NotLeader));
        };
        let offset = offset.unwrap_or(hw);
        if offset > hw {
            return answer_delete(cx, from, corr, Err(KafkaError::OffsetOutOfRange));
        }
        ls.deletes.push(WaitingDelete {
            from,
            corr,
            offset,
            deadline,
        });
        let mut out = Vec::new();
        if r.log.increment_log_start(offset, &mut out) {
            tracing::info!("kafka: {tp}: DeleteRecords moves the log start to {offset}");
        }
        self.disk_all(out, cx);
        self.complete_deletes(&tp, cx);
    }

    /// Answers the DeleteRecords of `tp` whose offset the low watermark
    /// reached (Kafka's `lowWatermarkIfLeader`: the leader's log start and
    /// those of followers on live brokers).
    fn complete_deletes(&mut self, tp: &Tp, cx: &mut Ctx<'_>) {
        let Some(r) = self.replicas.get_mut(tp) else {
            return;
        };
        let (Role::Leader(ls), Some(info)) = (&mut r.role, &r.info) else {
            return;
        };
        if ls.deletes.is_empty() {
            return;
        }
        let low = ls
            .progress
            .iter()
            .filter(|(id, _)| self.meta_live.contains(id) && info.replicas.contains(id))
            .map(|(_, p)| p.log_start)
            .fold(r.log.log_start(), u64::min);
        let (done, left): (Vec<WaitingDelete>, Vec<WaitingDelete>) =
            ls.deletes.drain(..).partition(|d| d.offset <= low);
        ls.deletes = left;
        for d in done {
            answer_delete(cx, d.from, d.corr, Ok(low));
        }
    }

    fn answer_produce(
        &mut self,
        to: NodeId,
        corr: u64,
        result: Result<u64, KafkaError>,
        cx: &mut Ctx<'_>,
    ) {
        if to == self.id {
            self.local_acks.push((corr, result));
        } else {
            produce_resp(cx, to, corr, result);
        }
    }

    /// Appends `values` to `tp` for this broker's own use (the group
    /// coordinator's records), as an ordinary produce that this broker
    /// sent itself: the answer comes back in `local_acks` with `token`.
    pub(crate) fn append_local(
        &mut self,
        tp: Tp,
        values: Vec<Vec<u8>>,
        token: u64,
        acks: Acks,
        timeout_ms: u64,
        cx: &mut Ctx<'_>,
    ) {
        let me = self.id;
        let batch = Batch {
            base_offset: 0,
            epoch: 0,
            producer_id: 0,
            producer_epoch: 0,
            base_seq: -1,
            values,
        };
        self.on_produce(me, token, tp, acks, timeout_ms, batch, cx);
    }

    /// Applies one partition of a LeaderAndIsr (already controller-fenced).
    pub(crate) fn become_leader_or_follower(&mut self, p: PartitionInfo, cx: &mut Ctx<'_>) {
        let me = self.id;
        let truncates_on_fetch = self.truncates_on_fetch();
        let tp = p.tp.clone();
        let r = self.replicas.get_mut(&tp).expect("opened");
        if r.info
            .as_ref()
            .is_some_and(|i| p.state.leader_epoch <= i.state.leader_epoch)
        {
            return;
        }
        if r.is_leader() && p.state.leader == Some(me) {
            // A new epoch that keeps us leading (Kafka's makeLeader with
            // isNewLeader false): the epoch starts at our log end, the
            // followers' positions stay, and produces waiting for
            // replication go on waiting.
            tracing::info!(
                "kafka: {tp}: still leader at leader epoch {}, ISR {:?}",
                p.state.leader_epoch,
                p.state.isr
            );
            if let Some(old) = &r.info {
                isr_events(&old.state.isr, &p.state.isr, cx);
            }
            let mut out = Vec::new();
            r.log.start_epoch(p.state.leader_epoch, &mut out);
            if let Role::Leader(ls) = &mut r.role {
                ls.isr_pending = false;
                ls.proposed_isr = None;
                ls.progress.retain(|x, _| p.replicas.contains(x));
                for &x in p.replicas.iter().filter(|&&x| x != me) {
                    let prog = ls.progress.entry(x).or_insert(Progress {
                        leo: 0,
                        log_start: 0,
                        last_caught_up: cx.now,
                        last_fetch: cx.now,
                        leader_leo_at_last_fetch: 0,
                    });
                    if p.state.isr.contains(&x) {
                        prog.last_caught_up = cx.now;
                    }
                }
            }
            r.info = Some(p);
            self.disk_all(out, cx);
            self.maybe_advance_hw(&tp, cx);
            return;
        }
        if let Role::Leader(ls) = std::mem::replace(&mut r.role, Role::None) {
            for w in ls.waiting {
                self.answer_produce(w.from, w.corr, Err(KafkaError::NotLeader), cx);
            }
            for d in ls.deletes {
                answer_delete(cx, d.from, d.corr, Err(KafkaError::NotLeader));
            }
        }
        let r = self.replicas.get_mut(&tp).expect("opened");
        tracing::info!(
            "kafka: {tp}: leader {} at leader epoch {}, ISR {:?}",
            p.state.leader.map_or("none".to_string(), |l| l.to_string()),
            p.state.leader_epoch,
            p.state.isr
        );
        r.info = Some(p.clone());
        match p.state.leader {
            Some(l) if l == me => {
                cx.event(EventKind::LeaderChange, me);
                r.cut_to_checkpoint = false;
                let mut out = Vec::new();
                r.log.start_epoch(p.state.leader_epoch, &mut out);
                let progress = p
                    .replicas
                    .iter()
                    .filter(|&&x| x != me)
                    .map(|&x| {
                        (
                            x,
                            Progress {
                                leo: 0,
                                log_start: 0,
                                last_caught_up: cx.now,
                                last_fetch: cx.now,
                                leader_leo_at_last_fetch: 0,
                            },
                        )
                    })
                    .collect();
                r.role = Role::Leader(LeaderState {
                    progress,
                    ..LeaderState::default()
                });
                self.disk_all(out, cx);
                self.maybe_advance_hw(&tp, cx);
            }
            Some(l) => {
                if std::mem::take(&mut r.cut_to_checkpoint) {
                    let hw = r.log.hw();
                    let mut out = Vec::new();
                    let leo_before = r.log.leo();
                    r.log.truncate_to(hw, &mut out);
                    if r.log.leo() < leo_before {
                        cx.event(EventKind::Truncation, cx.me);
                    }
                    self.disk_all(out, cx);
                }
                let r = self.replicas.get_mut(&tp).expect("opened");
                // Kafka 2.7+ followers with an epoch go straight to
                // fetching and truncate on the leader's diverging epoch;
                // older ones ask OffsetsForLeaderEpoch first.
                let on_fetch = truncates_on_fetch && r.log.latest_epoch().is_some();
                r.role = Role::Follower(FollowerState {
                    leader: l,
                    truncating: !on_fetch,
                    asked_epoch: 0,
                    inflight: None,
                    awaiting_sync: false,
                });
                if on_fetch {
                    self.send_fetch(&tp, cx);
                } else {
                    self.start_follower(&tp, cx);
                }
            }
            None => {}
        }
    }

    pub(crate) fn on_offsets_for_epoch(
        &mut self,
        from: NodeId,
        corr: u64,
        tp: Tp,
        current: Option<LeaderEpoch>,
        epoch: LeaderEpoch,
        cx: &mut Ctx<'_>,
    ) {
        let disabled = self.bugs.no_fetch_epoch_fencing;
        let result = match self.replicas.get(&tp) {
            None => Err(KafkaError::UnknownTopicOrPartition),
            Some(r) if !r.is_leader() => Err(KafkaError::NotLeader),
            Some(r) => r
                .fence(current, disabled)
                .map(|()| r.log.epochs().end_offset_for(epoch, r.log.leo())),
        };
        cx.send(
            from,
            Msg::Kafka(KafkaMsg::OffsetsForLeaderEpochResp { corr, result }),
        );
    }

    pub(crate) fn on_fetch(&mut self, from: NodeId, corr: u64, f: FetchParams, cx: &mut Ctx<'_>) {
        // BUGGIFY: a fetch answered with less than there is (as a small
        // fetch.max.bytes or replica.fetch.max.bytes would).
        let short = cx.buggify("kafka.fetch.one-batch");
        let result = self.serve_fetch(&f, cx.now, short);
        let diverged = matches!(&result, Ok(d) if d.diverging.is_some());
        cx.send(from, Msg::Kafka(KafkaMsg::FetchResp { corr, result }));
        if let (Some(follower), false) = (f.replica, diverged) {
            self.complete_deletes(&f.tp, cx);
            self.maybe_expand_isr(&f.tp, follower, cx);
            self.maybe_advance_hw(&f.tp, cx);
        }
    }

    fn serve_fetch(
        &mut self,
        f: &FetchParams,
        now: SimTime,
        short: bool,
    ) -> Result<FetchData, KafkaError> {
        let fetcher_start = f.log_start;
        let disabled = self.bugs.no_fetch_epoch_fencing;
        let (replica, offset) = (f.replica, f.offset);
        let r = self
            .replicas
            .get_mut(&f.tp)
            .ok_or(KafkaError::UnknownTopicOrPartition)?;
        r.fence(f.current, disabled)?;
        let leo = r.log.leo();
        let hw = r.log.hw();
        let log_start = r.log.log_start();
        let Role::Leader(ls) = &mut r.role else {
            return Err(KafkaError::NotLeader);
        };
        if let Some(fetched) = f.last_fetched_epoch {
            // Kafka's Partition.fetchRecords: the fetcher's last epoch must
            // end, in our log, at or after its fetch offset; if not, it
            // diverged, and the answer says where (no records, and the
            // fetch does not count as the follower's progress).
            match r.log.epochs().end_offset_for(fetched, leo) {
                None => return Err(KafkaError::OffsetOutOfRange),
                Some((epoch, end)) if epoch < fetched || end < offset => {
                    return Ok(FetchData {
                        batches: Vec::new(),
                        high_watermark: hw,
                        log_end: leo,
                        diverging: Some((epoch, end)),
                        log_start,
                    });
                }
                Some(_) => {}
            }
        }
        if offset > leo {
            return Err(KafkaError::OffsetOutOfRange);
        }
        if offset < log_start {
            // Below the log start: nothing to read, and not progress.
            return Ok(FetchData {
                batches: Vec::new(),
                high_watermark: hw,
                log_end: leo,
                diverging: None,
                log_start,
            });
        }
        let until = match replica {
            Some(f) => {
                let p = ls.progress.get_mut(&f).ok_or(KafkaError::NotLeader)?;
                p.leo = offset;
                p.log_start = fetcher_start;
                if offset >= leo {
                    p.last_caught_up = now;
                } else if offset >= p.leader_leo_at_last_fetch {
                    p.last_caught_up = p.last_caught_up.max(p.last_fetch);
                }
                p.last_fetch = now;
                p.leader_leo_at_last_fetch = leo;
                leo
            }
            None => hw,
        };
        let mut batches = r.log.read(offset, until, MAX_FETCH_BATCHES);
        if short {
            batches.truncate(1);
        }
        if replica.is_none() {
            // A consumer sees only committed records.
            for b in &mut batches {
                let keep = until.saturating_sub(b.base_offset) as usize;
                b.values.truncate(keep);
            }
            batches.retain(|b| !b.values.is_empty());
        }
        Ok(FetchData {
            batches,
            high_watermark: hw,
            log_end: leo,
            diverging: None,
            log_start,
        })
    }

    fn maybe_expand_isr(&mut self, tp: &Tp, follower: NodeId, cx: &mut Ctx<'_>) {
        let Some(r) = self.replicas.get(tp) else {
            return;
        };
        let (Role::Leader(ls), Some(info)) = (&r.role, &r.info) else {
            return;
        };
        // KAFKA-14140 (Kafka 3.3): only a broker the metadata shows alive
        // (registered) may join the ISR, so a follower whose session
        // expired, or that is still re-registering, cannot be elected from
        // it. The planted fencing bug is Kafka before 2.1, without it.
        let alive = self.meta_live.contains(&follower) || self.bugs.no_fetch_epoch_fencing;
        if ls.isr_pending || info.state.isr.contains(&follower) || !alive {
            return;
        }
        let Some(p) = ls.progress.get(&follower) else {
            return;
        };
        let epoch_start = r.log.epochs().entries().last().map(|e| e.1).unwrap_or(0);
        if p.leo >= r.log.hw() && p.leo >= epoch_start {
            let mut isr = info.state.isr.clone();
            isr.push(follower);
            isr.sort();
            self.propose_isr(tp, isr, cx);
        }
    }

    fn propose_isr(&mut self, tp: &Tp, isr: Vec<NodeId>, cx: &mut Ctx<'_>) {
        let me = self.id;
        let r = self.replicas.get_mut(tp).expect("replica");
        let (Role::Leader(ls), Some(info)) = (&mut r.role, &r.info) else {
            return;
        };
        tracing::info!(
            "kafka: {tp}: proposing ISR {isr:?} (was {:?})",
            info.state.isr
        );
        ls.isr_pending = true;
        ls.proposed_isr = Some(isr.clone());
        let state = PartitionState {
            leader: Some(me),
            leader_epoch: info.state.leader_epoch,
            isr: isr.clone(),
            controller_epoch: info.state.controller_epoch,
        };
        let op = ZkOp::SetData {
            path: zkdata::state_paths(tp)[2].clone(),
            data: zkdata::encode_state(&state),
            version: info.zk_version,
        };
        let epoch = info.state.leader_epoch;
        if self.kraft.is_some() {
            // KRaft: AlterPartition to the active controller (KIP-497).
            let version = info.zk_version as u32;
            self.kraft_alter_partition(tp, epoch, version, isr, cx);
            return;
        }
        self.zk_call(
            op,
            ZkPurpose::IsrWrite {
                tp: tp.clone(),
                epoch,
                isr,
            },
            cx,
        );
    }

    pub(crate) fn on_isr_written(
        &mut self,
        tp: Tp,
        epoch: LeaderEpoch,
        isr: Vec<NodeId>,
        reply: ZkReply,
        cx: &mut Ctx<'_>,
    ) {
        let Some(r) = self.replicas.get_mut(&tp) else {
            return;
        };
        if r.epoch() != epoch {
            return;
        }
        let (Role::Leader(ls), Some(info)) = (&mut r.role, &mut r.info) else {
            return;
        };
        ls.isr_pending = false;
        match reply.result {
            Ok(ZkResponse::Stat(st)) => {
                isr_events(&info.state.isr, &isr, cx);
                info.state.isr = isr;
                info.zk_version = st.version;
                ls.proposed_isr = None;
                self.maybe_advance_hw(&tp, cx);
            }
            // Not written (BadVersion), or not known (the connection or the
            // session went): read what ZooKeeper holds. Until then an
            // unknown write may have landed, so its members still count.
            result => {
                if result == Err(ZkError::BadVersion) {
                    ls.proposed_isr = None;
                }
                ls.isr_pending = true;
                self.zk_call(
                    ZkOp::GetData {
                        path: zkdata::state_paths(&tp)[2].clone(),
                        watch: false,
                    },
                    ZkPurpose::IsrReread(tp),
                    cx,
                );
            }
        }
    }

    /// The outcome of a KRaft AlterPartition for `tp` proposed in leader
    /// epoch `epoch`.
    pub(crate) fn on_alter_partition_outcome(
        &mut self,
        tp: &Tp,
        epoch: LeaderEpoch,
        outcome: IsrOutcome,
        cx: &mut Ctx<'_>,
    ) {
        let Some(r) = self.replicas.get_mut(tp) else {
            return;
        };
        if r.epoch() != epoch {
            return;
        }
        let (Role::Leader(ls), Some(info)) = (&mut r.role, &mut r.info) else {
            return;
        };
        ls.isr_pending = false;
        match outcome {
            IsrOutcome::Applied { isr, version } => {
                if version as i32 > info.zk_version {
                    isr_events(&info.state.isr, &isr, cx);
                    info.state.isr = isr;
                    info.zk_version = version as i32;
                }
                ls.proposed_isr = None;
            }
            // Refused: the metadata log will say what holds.
            IsrOutcome::Rejected => ls.proposed_isr = None,
            // Not known to have landed: its members still count until the
            // metadata says otherwise; the next tick proposes again.
            IsrOutcome::Unknown => {}
            // The planted bug: take the proposal as if it were committed.
            IsrOutcome::AdoptLocally(isr) => {
                isr_events(&info.state.isr, &isr, cx);
                info.state.isr = isr;
                ls.proposed_isr = None;
            }
        }
        self.maybe_advance_hw(tp, cx);
    }

    /// KRaft: a partition record of the same leader epoch as the replica's
    /// (an ISR change, the leader's own or the controller's): adopt it.
    pub(crate) fn apply_same_epoch_state(&mut self, p: PartitionInfo, cx: &mut Ctx<'_>) {
        let tp = p.tp.clone();
        let Some(r) = self.replicas.get_mut(&tp) else {
            return;
        };
        let Some(info) = &mut r.info else {
            return;
        };
        if p.state.leader_epoch != info.state.leader_epoch || p.zk_version <= info.zk_version {
            return;
        }
        if matches!(r.role, Role::Leader(_)) {
            isr_events(&info.state.isr, &p.state.isr, cx);
        }
        info.state.isr = p.state.isr.clone();
        info.zk_version = p.zk_version;
        if let Role::Leader(ls) = &mut r.role {
            if ls.proposed_isr.as_ref() == Some(&p.state.isr) {
                ls.proposed_isr = None;
                ls.isr_pending = false;
            }
        }
        self.maybe_advance_hw(&tp, cx);
    }

    pub(crate) fn on_isr_reread(&mut self, tp: Tp, reply: ZkReply, cx: &mut Ctx<'_>) {
        let me = self.id;
        let Some(r) = self.replicas.get_mut(&tp) else {
            return;
        };
        let my_epoch = r.epoch();
        let (Role::Leader(ls), Some(info)) = (&mut r.role, &mut r.info) else {
            return;
        };
        ls.isr_pending = false;
        if let Ok(ZkResponse::Data(d, st)) = reply.result {
            if let Some(s) = zkdata::decode_state(&d) {
                // Still ours in this epoch: adopt what ZooKeeper holds. If
                // not, the controller has moved on and will tell us.
                if s.leader == Some(me) && s.leader_epoch == my_epoch {
                    isr_events(&info.state.isr, &s.isr, cx);
                    info.state.isr = s.isr;
                    info.zk_version = st.version;
                    ls.proposed_isr = None;
                    self.maybe_advance_hw(&tp, cx);
                }
            }
        }
    }

    /// Moves the leader's high watermark to the ISR's minimum log end
    /// offset (never back) and completes acks=all produces below it.
    pub(crate) fn maybe_advance_hw(&mut self, tp: &Tp, cx: &mut Ctx<'_>) {
        let me = self.id;
        let min_isr = self.cfg.min_insync_replicas;
        let ignore_min_isr = self.bugs.ignore_min_isr;
        let lag = self.cfg.replica_lag_time_max_ms;
        let Some(r) = self.replicas.get_mut(tp) else {
            return;
        };
        let (Role::Leader(ls), Some(info)) = (&mut r.role, &r.info) else {
            return;
        };
        // The leader's own records count once its append-path flush (if
        // the flush policy asks for one) is on disk.
        let leo = r.log.ack_leo();
        let follower_leos: BTreeMap<NodeId, u64> =
            ls.progress.iter().map(|(id, p)| (*id, p.leo)).collect();
        // The replicas that hold the high watermark back: the maximal ISR,
        // and (KAFKA-4485, with KAFKA-15021's eligibility) any follower
        // caught up within `replica.lag.time.max.ms` that is alive in the
        // metadata, which is about to join the ISR.
        let holders = hw_holders(
            ls.maximal_isr(&info.state.isr),
            ls.progress
                .iter()
                .map(|(id, p)| (*id, p.leo, p.last_caught_up)),
            leo,
            cx.now,
            lag,
            &self.meta_live,
        );
        let isr_len = info.state.isr.len();
        // KAFKA-15583 (Kafka 3.7): no advance while the committed ISR is
        // below `min.insync.replicas` (or the replica count, if smaller).
        let under_min_isr = isr_len < min_isr.min(info.replicas.len()) && !ignore_min_isr;
        if !under_min_isr {
            let before = r.log.hw();
            let hw = high_watermark(me, leo, &holders, &follower_leos, before);
            r.log.set_hw(hw);
            if r.log.hw() > before {
                cx.event(EventKind::HwAdvance, me);
            }
        }
        let hw = r.log.hw();
        let (done, left): (Vec<Waiting>, Vec<Waiting>) = ls
            .waiting
            .drain(..)
            .partition(|w| w.required <= if w.leader_only { leo } else { hw });
        ls.waiting = left;
        for w in done {
            let result = if w.leader_only {
                Ok(w.base)
            } else if isr_len < min_isr && !ignore_min_isr {
                Err(KafkaError::NotEnoughReplicasAfterAppend)
            } else {
                Ok(w.base)
            };
            self.answer_produce(w.from, w.corr, result, cx);
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_produce(
        &mut self,
        from: NodeId,
        corr: u64,
        tp: Tp,
        acks: Acks,
        timeout_ms: u64,
        mut batch: Batch,
        cx: &mut Ctx<'_>,
    ) {
        let min_isr = self.cfg.min_insync_replicas;
        let bugs = self.bugs;
        let now = cx.now;
        let refuse = |b: &mut KafkaBroker, cx: &mut Ctx<'_>, e| {
            if acks != Acks::None {
                b.answer_produce(from, corr, Err(e), cx);
            }
        };
        let Some(r) = self.replicas.get_mut(&tp) else {
            return refuse(self, cx, KafkaError::UnknownTopicOrPartition);
        };
        let epoch = r.epoch();
        let (Role::Leader(_), Some(info)) = (&r.role, &r.info) else {
            return refuse(self, cx, KafkaError::NotLeader);
        };
        if batch.values.is_empty() {
            return refuse(self, cx, KafkaError::OutOfOrderSequence);
        }
        let under_min_isr =
            acks == Acks::All && info.state.isr.len() < min_isr && !bugs.ignore_min_isr;
        if under_min_isr && !bugs.min_isr_checked_after_append {
            return refuse(self, cx, KafkaError::NotEnoughReplicas);
        }
        let n = batch.values.len() as u64;
        let window = if bugs.dedup_window_one {
            1
        } else {
            PRODUCER_BATCHES
        };
        let check = r.log.check_sequence(
            batch.producer_id,
            batch.producer_epoch,
            batch.base_seq,
            batch.values.len(),
            window,
        );
        let base = match check {
            SeqCheck::OutOfOrder => return refuse(self, cx, KafkaError::OutOfOrderSequence),
            SeqCheck::InvalidEpoch => return refuse(self, cx, KafkaError::InvalidProducerEpoch),
            SeqCheck::Duplicate(off) if !bugs.no_idempotent_dedup => off,
            _ => {
                batch.epoch = epoch;
                let mut out = Vec::new();
                let base = r.log.append(batch, now, &mut out);
                self.disk_all(out, cx);
                base
            }
        };
        if under_min_isr {
            // `kafka_min_isr_checked_after_append`: the refusal's code for
            // a batch now in the log.
            return refuse(self, cx, KafkaError::NotEnoughReplicas);
        }
        match acks {
            Acks::None => {}
            Acks::Leader | Acks::All => {
                let r = self.replicas.get_mut(&tp).expect("replica");
                if let Role::Leader(ls) = &mut r.role {
                    ls.waiting.push(Waiting {
                        from,
                        corr,
                        required: base + n,
                        leader_only: acks == Acks::Leader,
                        base,
                        deadline: now.plus_ms(timeout_ms),
                    });
                }
                self.maybe_advance_hw(&tp, cx);
            }
        }
    }

    /// The fsync of a flush of `tp`'s log covering records below `end`
    /// completed: a leader may now count them, a follower waiting for it
    /// fetches on.
    pub(crate) fn on_log_synced(&mut self, tp: Tp, end: u64, cx: &mut Ctx<'_>) {
        let Some(r) = self.replicas.get_mut(&tp) else {
            return;
        };
        r.log.note_synced(end);
        let pending = r.log.sync_pending();
        match &mut r.role {
            Role::Leader(_) => self.maybe_advance_hw(&tp, cx),
            Role::Follower(fs) if fs.awaiting_sync && !pending => {
                fs.awaiting_sync = false;
                if fs.inflight.is_none() {
                    self.send_fetch(&tp, cx);
                }
            }
            _ => {}
        }
    }

    /// Periodic replica duties: ISR shrink, produce timeouts, `flush.ms`.
    pub(crate) fn replica_tick(&mut self, cx: &mut Ctx<'_>) {
        let me = self.id;
        let lag = self.cfg.replica_lag_time_max_ms;
        let now = cx.now;
        let mut shrink = Vec::new();
        let mut out = Vec::new();
        let mut timed_out = Vec::new();
        let mut deletes_late = Vec::new();
        for (tp, r) in self.replicas.iter_mut() {
            r.log.maybe_flush(now, &mut out);
            let (Role::Leader(ls), Some(info)) = (&mut r.role, &r.info) else {
                continue;
            };
            let (expired, left): (Vec<Waiting>, Vec<Waiting>) =
                ls.waiting.drain(..).partition(|w| now >= w.deadline);
            ls.waiting = left;
            ls.deletes.retain(|d| {
                let late = now >= d.deadline;
                if late {
                    deletes_late.push((d.from, d.corr));
                }
                !late
            });
            for w in expired {
                timed_out.push((w.from, w.corr));
            }
            if ls.isr_pending {
                continue;
            }
            let keep: Vec<NodeId> = info
                .state
                .isr
                .iter()
                .copied()
                .filter(|&x| {
                    x == me
                        || ls
                            .progress
                            .get(&x)
                            .is_some_and(|p| now.ms_since(p.last_caught_up) <= lag)
                })
                .collect();
            if keep.len() < info.state.isr.len() {
                shrink.push((tp.clone(), keep));
            }
        }
        self.disk_all(out, cx);
        for (from, corr) in deletes_late {
            answer_delete(cx, from, corr, Err(KafkaError::RequestTimedOut));
        }
        for (from, corr) in timed_out {
            self.answer_produce(from, corr, Err(KafkaError::RequestTimedOut), cx);
        }
        for (tp, isr) in shrink {
            self.propose_isr(&tp, isr, cx);
        }
    }
}

/// Reports a partition leader's ISR going from `old` to `new`: a shrink for
/// every member that left, an expansion for every one that joined.
fn isr_events(old: &[NodeId], new: &[NodeId], cx: &mut Ctx<'_>) {
    for &r in old.iter().filter(|r| !new.contains(r)) {
        cx.event(EventKind::IsrShrink, r);
    }
    for &r in new.iter().filter(|r| !old.contains(r)) {
        cx.event(EventKind::IsrExpand, r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follower_being_added_to_the_isr_holds_the_high_watermark_back() {
        // Leader 1, ISR {1, 2}; 3 caught up and is being added (the write
        // may land at any moment). 2 has fetched to 9, 3 only to 6.
        let ls = LeaderState {
            proposed_isr: Some(vec![1, 2, 3]),
            ..LeaderState::default()
        };
        let isr = ls.maximal_isr(&[1, 2]);
        assert_eq!(isr, vec![1, 2, 3]);
        let leos = BTreeMap::from([(2, 9), (3, 6)]);
        // Over the committed ISR alone it would commit 7 and 8, which 3
        // lacks, and 3 may be in the ISR already.
        assert_eq!(high_watermark(1, 9, &[1, 2], &leos, 6), 9);
        assert_eq!(high_watermark(1, 9, &isr, &leos, 6), 6);
        // A proposed shrink adds nobody.
        let shrink = LeaderState {
            proposed_isr: Some(vec![1]),
            ..LeaderState::default()
        };
        assert_eq!(shrink.maximal_isr(&[1, 2]), vec![1, 2]);
    }

    #[test]
    fn a_caught_up_live_follower_outside_the_isr_holds_the_high_watermark() {
        let now = SimTime::from_ms(1_000);
        let followers = || {
            [
                // Caught up 100 ms ago: about to join.
                (2, 5, SimTime::from_ms(900)),
                // Last caught up 500 ms ago: lagging.
                (3, 4, SimTime::from_ms(500)),
            ]
            .into_iter()
        };
        let h = hw_holders(vec![1], followers(), 9, now, 300, &[1, 2, 3]);
        assert_eq!(h, vec![1, 2]);
        let leos = BTreeMap::from([(2, 5), (3, 4)]);
        assert_eq!(high_watermark(1, 9, &h, &leos, 0), 5);
        // Not alive in the metadata (KAFKA-15021): it does not count.
        let h = hw_holders(vec![1], followers(), 9, now, 300, &[1, 3]);
        assert_eq!(h, vec![1]);
        // A follower at the leader's log end is caught up at once.
        let h = hw_holders(
            vec![1],
            [(3, 9, SimTime::ZERO)].into_iter(),
            9,
            now,
            300,
            &[1, 3],
        );
        assert_eq!(h, vec![1, 3]);
    }

    #[test]
    fn high_watermark_is_the_isr_minimum_and_never_goes_back() {
        let leos = BTreeMap::from([(2, 7), (3, 4)]);
        assert_eq!(high_watermark(1, 9, &[1, 2, 3], &leos, 0), 4);
        // A follower outside the ISR does not hold it back.
        assert_eq!(high_watermark(1, 9, &[1, 2], &leos, 0), 7);
        // A single-member ISR commits at the leader's log end.
        assert_eq!(high_watermark(1, 9, &[1], &leos, 0), 9);
        // An ISR member that has not fetched yet holds it at the current.
        assert_eq!(high_watermark(1, 9, &[1, 4], &leos, 5), 5);
        // Never backwards, never past the leader's log end.
        assert_eq!(high_watermark(1, 9, &[1, 2, 3], &leos, 6), 6);
        assert_eq!(high_watermark(1, 3, &[1], &leos, 3), 3);
    }
}
