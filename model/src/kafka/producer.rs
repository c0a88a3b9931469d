//! The producer client node the workload drives, as Kafka's Java producer
//! (`Sender`, `RecordAccumulator`, `TransactionManager`) behaves with
//! `enable.idempotence` (2.5 and later, KIP-360).
//!
//! - Each `Send` is queued on its partition. Batches of up to `batch_max`
//!   queued records are formed when they can be sent, and up to
//!   `max_in_flight` batches per partition are in flight at once
//!   (`max.in.flight.requests.per.connection`, at most 5 with idempotence:
//!   the broker remembers a producer's last 5 batches), each sent without
//!   waiting for the previous one's answer.
//! - An idempotent producer first gets a producer id from a broker; each
//!   batch carries the id, the producer epoch and its base sequence,
//!   numbered per partition from 0 when the batch is first sent. A
//!   duplicate retry is answered by the leader with the original offset.
//! - Retries: a failed batch is re-sent with its sequence numbers, and only
//!   once it is the partition's oldest unacknowledged batch (the Java
//!   client re-enqueues batches in sequence order and drains a retried
//!   batch only when it is the first in flight, so in-flight requests drop
//!   to one until the retries are through). No new batch is sent while a
//!   retry waits. A request timeout closes the connection, failing every
//!   request on it, as Java's NetworkClient does.
//! - OUT_OF_ORDER_SEQUENCE_NUMBER is retried when the batch's predecessor
//!   is still unacknowledged (it was refused only because the predecessor
//!   has not landed yet). For the partition's next expected batch it means
//!   the broker lost sequences the producer had acknowledged; so does
//!   UNKNOWN_PRODUCER_ID. Then the producer bumps its epoch locally (an
//!   idempotent producer owns its id, `bumpIdempotentProducerEpoch`) once
//!   none of the partition's requests is outstanding, renumbers the
//!   partition's unacknowledged batches from 0 under the new epoch and
//!   retries them. Other partitions move to the new epoch (from 0) when
//!   their in-flight batches are done.
//! - A batch whose delivery timeout passes is failed. If it had been sent,
//!   its sequence is unresolved: nothing new is sent on the partition until
//!   the batches after it are done; then if none of them was acknowledged
//!   past it the epoch is bumped (`maybeResolveSequences`).
//!
//! Replies: `Sent { offset }` (acks 0: `None`) only when acknowledged, or
//! `Error { error, definite }`, where `definite` means the records surely
//! were not written (never sent, or every attempt refused before append
//! and none outstanding).

use std::collections::{BTreeMap, VecDeque};

use crate::kafka::types::{
    Acks, Batch, KafkaError, KafkaMsg, KafkaReply, KafkaRequest, LeaderEpoch, PartitionInfo, Tp,
};
use crate::kafka::KafkaBugs;
use crate::msg::{ClientReply, ClientRequest, Msg};
use crate::node::{Ctx, Input, Node, NodeId, ReqId};
use crate::time::SimTime;

const TIMER_TICK: u64 = 1;

/// The largest producer epoch (a Java `short`); past it a new id is asked.
const MAX_PRODUCER_EPOCH: u16 = i16::MAX as u16;

/// Producer settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerConfig {
    /// `acks`.
    pub acks: Acks,
    /// `enable.idempotence`.
    pub idempotent: bool,
    /// How long the leader may wait for replication, and how long the
    /// producer waits for an answer (`request.timeout.ms`).
    pub request_timeout_ms: u64,
    /// Give up on a record this long after it was sent to the producer
    /// (`delivery.timeout.ms`).
    pub delivery_timeout_ms: u64,
    /// Pause before a retry (`retry.backoff.ms`).
    pub retry_backoff_ms: u64,
    /// Most records per batch.
    pub batch_max: usize,
    /// Most batches in flight per partition
    /// (`max.in.flight.requests.per.connection`, 5; 1 to 5 with
    /// idempotence).
    pub max_in_flight: usize,
    /// Planted bugs of the client (`kafka_retry_reorders_inflight`).
    pub bugs: KafkaBugs,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            idempotent: true,
            request_timeout_ms: 500,
            delivery_timeout_ms: 3_000,
            retry_backoff_ms: 20,
            batch_max: 8,
            max_in_flight: 5,
            bugs: KafkaBugs::default(),
        }
    }
}

#[derive(Clone, Debug)]
struct Record {
    id: ReqId,
    value: Vec<u8>,
    deadline: SimTime,
}

/// A batch that has been sent at least once and is not done.
#[derive(Clone, Debug)]
struct InFlight {
    records: Vec<Record>,
    producer_id: u64,
    producer_epoch: u16,
    base_seq: i64,
    /// Outstanding request: (correlation id, broker, sent at).
    sent: Option<(u64, NodeId, SimTime)>,
    /// Some attempt ended without telling whether it was appended
    /// (timeout, broken connection, appended but not replicated).
    maybe_written: bool,
    /// Renumbered by an epoch bump (`sequenceHasBeenReset`).
    seq_reset: bool,
    last_error: KafkaError,
    retry_at: SimTime,
}

impl InFlight {
    fn last_seq(&self) -> i64 {
        self.base_seq + self.records.len() as i64 - 1
    }
}

/// One partition's records and sequence state (the accumulator's deque
/// and `TxnPartitionEntry`).
#[derive(Clone, Debug)]
struct Part {
    /// Records not yet in a batch.
    queue: VecDeque<Record>,
    /// Sent, unfinished batches in sequence order.
    batches: VecDeque<InFlight>,
    /// The producer id and epoch the partition's sequences count under.
    pid_epoch: Option<(u64, u16)>,
    next_seq: i64,
    last_acked: i64,
    /// Last sequence of a batch given up on with its outcome unknown.
    unresolved: Option<i64>,
    /// The partition's sequences must restart under a new epoch.
    bump: bool,
    last_error: KafkaError,
}

impl Default for Part {
    fn default() -> Self {
        Part {
            queue: VecDeque::new(),
            batches: VecDeque::new(),
            pid_epoch: None,
            next_seq: 0,
            last_acked: -1,
            unresolved: None,
            bump: false,
            last_error: KafkaError::LeaderNotAvailable,
        }
    }
}

impl Part {
    fn outstanding(&self) -> bool {
        self.batches.iter().any(|b| b.sent.is_some())
    }

    fn idle(&self) -> bool {
        self.queue.is_empty() && self.batches.is_empty()
    }
}

/// A Kafka producer node.
pub struct KafkaProducer {
    brokers: Vec<NodeId>,
    cfg: ProducerConfig,
    next_broker: usize,
    next_corr: u64,
    meta: BTreeMap<Tp, PartitionInfo>,
    /// The newest leader epoch seen per partition (the client's
    /// `lastSeenLeaderEpochs`), kept when the metadata is dropped.
    seen_epochs: BTreeMap<Tp, LeaderEpoch>,
    meta_req: Option<(u64, NodeId, SimTime)>,
    meta_at: Option<SimTime>,
    /// Producer id and epoch.
    pid: Option<(u64, u16)>,
    pid_req: Option<(u64, NodeId, SimTime)>,
    parts: BTreeMap<Tp, Part>,
    ticking: bool,
}

fn reply(cx: &mut Ctx<'_>, id: ReqId, r: KafkaReply) {
    cx.reply(id, ClientReply::Kafka(r));
}

fn fail_records(cx: &mut Ctx<'_>, records: Vec<Record>, error: KafkaError, definite: bool) {
    for r in records {
        reply(cx, r.id, KafkaReply::Error { error, definite });
    }
}

impl KafkaProducer {
    /// A producer bootstrapping from `brokers`.
    pub fn new(brokers: Vec<NodeId>, mut cfg: ProducerConfig) -> KafkaProducer {
        assert!(!brokers.is_empty());
        cfg.max_in_flight = cfg.max_in_flight.max(1);
        if cfg.idempotent {
            // Kafka refuses more with idempotence (the broker's window).
            cfg.max_in_flight = cfg.max_in_flight.min(crate::kafka::log::PRODUCER_BATCHES);
        }
        KafkaProducer {
            brokers,
            cfg,
            next_broker: 0,
            next_corr: 1,
            meta: BTreeMap::new(),
            seen_epochs: BTreeMap::new(),
            meta_req: None,
            meta_at: None,
            pid: None,
            pid_req: None,
            parts: BTreeMap::new(),
            ticking: false,
        }
    }

    /// The producer id in use, if any.
    pub fn producer_id(&self) -> Option<u64> {
        self.pid.map(|p| p.0)
    }

    /// The producer epoch in use, if any.
    pub fn producer_epoch(&self) -> Option<u16> {
        self.pid.map(|p| p.1)
    }

    /// How many batches of `tp` are sent and not done.
    pub fn in_flight(&self, tp: &Tp) -> usize {
        self.parts.get(tp).map_or(0, |p| p.batches.len())
    }

    fn corr(&mut self) -> u64 {
        self.next_corr += 1;
        self.next_corr
    }

    fn any_broker(&mut self) -> NodeId {
        self.next_broker += 1;
        self.brokers[self.next_broker % self.brokers.len()]
    }

    fn refresh_metadata(&mut self, cx: &mut Ctx<'_>) {
        if self.meta_req.is_some()
            || (self
                .meta_at
                .is_some_and(|t| cx.now.ms_since(t) < self.cfg.retry_backoff_ms))
        {
            return;
        }
        self.meta_at = Some(cx.now);
        let corr = self.corr();
        let b = self.any_broker();
        self.meta_req = Some((corr, b, cx.now));
        cx.send(b, Msg::Kafka(KafkaMsg::Metadata { corr }));
    }

    fn ensure_tick(&mut self, cx: &mut Ctx<'_>) {
        if !self.ticking {
            self.ticking = true;
            cx.set_timer_ms(TIMER_TICK, 10);
        }
    }

    /// Sends (or retries) what can be sent.
    fn pump(&mut self, cx: &mut Ctx<'_>) {
        let tps: Vec<Tp> = self.parts.keys().cloned().collect();
        for tp in &tps {
            self.expire(tp, cx);
        }
        if self.cfg.idempotent && self.pid.is_none() {
            if self.pid_req.is_none() && self.parts.values().any(|p| !p.idle()) {
                let corr = self.corr();
                let b = self.any_broker();
                self.pid_req = Some((corr, b, cx.now));
                cx.send(b, Msg::Kafka(KafkaMsg::InitProducerId { corr }));
                self.ensure_tick(cx);
            }
            return;
        }
        for tp in &tps {
            if self.cfg.idempotent {
                self.maybe_bump(tp);
            }
            self.send_ready(tp, cx);
        }
    }

    /// Fails what passed its delivery timeout.
    fn expire(&mut self, tp: &Tp, cx: &mut Ctx<'_>) {
        let now = cx.now;
        let idempotent = self.cfg.idempotent;
        let part = self.parts.get_mut(tp).expect("part");
        while part.queue.front().is_some_and(|r| now >= r.deadline) {
            let r = part.queue.pop_front().expect("record");
            fail_records(cx, vec![r], part.last_error, true);
        }
        let mut i = 0;
        while i < part.batches.len() {
            let b = &part.batches[i];
            if !b.records.iter().any(|r| now >= r.deadline) {
                i += 1;
                continue;
            }
            let b = part.batches.remove(i).expect("batch");
            let unknown = b.maybe_written || b.sent.is_some();
            if unknown && idempotent {
                part.unresolved = part.unresolved.max(Some(b.last_seq()));
            } else if idempotent {
                // A hole in the sequence: restart it.
                part.bump = true;
            }
            fail_records(cx, b.records, b.last_error, !unknown);
        }
    }

    /// Resolves an unresolved sequence once nothing after it is left, and
    /// bumps the epoch when the partition asks for it and has nothing
    /// outstanding (with `kafka_retry_reorders_inflight`: at once).
    fn maybe_bump(&mut self, tp: &Tp) {
        let reckless = self.cfg.bugs.retry_reorders_inflight;
        let Some(global) = self.pid else {
            return;
        };
        let part = self.parts.get_mut(tp).expect("part");
        if let Some(u) = part.unresolved {
            if part.batches.is_empty() {
                if part.last_acked >= u {
                    part.unresolved = None;
                } else {
                    part.bump = true;
                }
            }
        }
        if part.pid_epoch.is_none() || (part.pid_epoch != Some(global) && part.batches.is_empty()) {
            // First use, or moving to a new epoch after its batches are done
            // (`maybeUpdateProducerIdAndEpoch`).
            part.pid_epoch = Some(global);
            part.next_seq = 0;
            part.last_acked = -1;
            part.unresolved = None;
            part.bump = false;
            return;
        }
        if !part.bump || (part.outstanding() && !reckless) {
            return;
        }
        let mut new = global;
        if part.pid_epoch == Some(global) {
            // Bump (other partitions of the old epoch follow when idle).
            if global.1 >= MAX_PRODUCER_EPOCH {
                self.pid = None;
                return;
            }
            new = (global.0, global.1 + 1);
            self.pid = Some(new);
        }
        let part = self.parts.get_mut(tp).expect("part");
        part.pid_epoch = Some(new);
        let mut seq = 0;
        for b in part.batches.iter_mut() {
            b.producer_id = new.0;
            b.producer_epoch = new.1;
            b.base_seq = seq;
            b.seq_reset = true;
            // The bug forgets attempts still in flight.
            b.sent = None;
            seq += b.records.len() as i64;
        }
        part.next_seq = seq;
        part.last_acked = -1;
        part.unresolved = None;
        part.bump = false;
    }

    /// Sends the partition's retries and new batches, as far as the rules
    /// let it.
    fn send_ready(&mut self, tp: &Tp, cx: &mut Ctx<'_>) {
        let now = cx.now;
        let idempotent = self.cfg.idempotent;
        let reckless = self.cfg.bugs.retry_reorders_inflight;
        let part = &self.parts[tp];
        if part.idle() {
            return;
        }
        if idempotent && part.bump {
            // Waits for the outstanding requests, then renumbers.
            self.ensure_tick(cx);
            return;
        }
        let Some(leader) = self.meta.get(tp).and_then(|i| i.state.leader) else {
            self.refresh_metadata(cx);
            self.ensure_tick(cx);
            return;
        };
        // Retries: the oldest unacknowledged batch only (the Java client's
        // drain), or, without idempotence or with the bug, all of them
        // (the bug newest first).
        let waiting: Vec<usize> = part
            .batches
            .iter()
            .enumerate()
            .filter(|(_, b)| b.sent.is_none())
            .map(|(i, _)| i)
            .collect();
        let mut retry: Vec<usize> = if reckless || !idempotent {
            waiting
                .iter()
                .copied()
                .filter(|&i| now >= part.batches[i].retry_at)
                .collect()
        } else {
            waiting
                .first()
                .copied()
                .filter(|&i| i == 0 && now >= part.batches[i].retry_at)
                .into_iter()
                .collect()
        };
        if reckless {
            retry.reverse();
        }
        let retry_pending = !waiting.is_empty();
        for i in retry {
            self.send_batch(tp, i, leader, cx);
        }
        // New batches: not while a retry waits, a sequence is unresolved,
        // or older-epoch batches are unfinished.
        loop {
            let part = &self.parts[tp];
            let stale = idempotent && part.pid_epoch != self.pid;
            if retry_pending
                || part.queue.is_empty()
                || part.batches.len() >= self.cfg.max_in_flight
                || (idempotent && part.unresolved.is_some())
                || stale
            {
                break;
            }
            let n = part.queue.len().min(self.cfg.batch_max.max(1));
            let part = self.parts.get_mut(tp).expect("part");
            let records: Vec<Record> = part.queue.drain(..n).collect();
            let ((producer_id, producer_epoch), base_seq) = match part.pid_epoch {
                Some(pe) if idempotent => {
                    let base = part.next_seq;
                    part.next_seq += records.len() as i64;
                    (pe, base)
                }
                _ => ((0, 0), -1),
            };
            part.batches.push_back(InFlight {
                records,
                producer_id,
                producer_epoch,
                base_seq,
                sent: None,
                maybe_written: false,
                seq_reset: false,
                last_error: KafkaError::LeaderNotAvailable,
                retry_at: now,
            });
            let i = part.batches.len() - 1;
            self.send_batch(tp, i, leader, cx);
        }
        self.ensure_tick(cx);
    }

    fn send_batch(&mut self, tp: &Tp, i: usize, leader: NodeId, cx: &mut Ctx<'_>) {
        let corr = self.corr();
        let acks = self.cfg.acks;
        let timeout_ms = self.cfg.request_timeout_ms;
        let part = self.parts.get_mut(tp).expect("part");
        let f = &mut part.batches[i];
        let batch = Batch {
            base_offset: 0,
            epoch: 0,
            producer_id: f.producer_id,
            producer_epoch: f.producer_epoch,
            base_seq: f.base_seq,
            values: f.records.iter().map(|r| r.value.clone()).collect(),
        };
        f.sent = Some((corr, leader, cx.now));
        cx.send(
            leader,
            Msg::Kafka(KafkaMsg::Produce {
                corr,
                tp: tp.clone(),
                acks,
                timeout_ms,
                batch,
            }),
        );
        if acks == Acks::None {
            let f = part.batches.remove(i).expect("batch");
            for r in f.records {
                reply(cx, r.id, KafkaReply::Sent { offset: None });
            }
        }
    }

    /// Batch `i` of `tp` was acknowledged at `base`.
    fn acked(&mut self, tp: &Tp, i: usize, base: u64, cx: &mut Ctx<'_>) {
        let part = self.parts.get_mut(tp).expect("part");
        let f = part.batches.remove(i).expect("batch");
        if part.pid_epoch == Some((f.producer_id, f.producer_epoch)) {
            part.last_acked = part.last_acked.max(f.last_seq());
        }
        for (k, r) in f.records.into_iter().enumerate() {
            reply(
                cx,
                r.id,
                KafkaReply::Sent {
                    offset: Some(base + k as u64),
                },
            );
        }
    }

    /// Batch `i` of `tp` failed with `e` (TransactionManager.canRetry and
    /// handleFailedBatch for an idempotent producer).
    fn failed(&mut self, tp: &Tp, i: usize, e: KafkaError, cx: &mut Ctx<'_>) {
        let backoff = self.cfg.retry_backoff_ms;
        let idempotent = self.cfg.idempotent;
        let reckless = self.cfg.bugs.retry_reorders_inflight;
        let part = self.parts.get_mut(tp).expect("part");
        part.last_error = e;
        let f = &mut part.batches[i];
        f.sent = None;
        f.last_error = e;
        f.retry_at = cx.now.plus_ms(backoff);
        // What a refusal leaves open: NOT_LEADER_OR_FOLLOWER also answers
        // a produce the leader had appended before it lost leadership (its
        // waiting produces fail so), and the record may live on in the new
        // leader's log; only refusals made before any append (not enough
        // replicas, sequence and epoch errors) say it was not written.
        if matches!(
            e,
            KafkaError::RequestTimedOut
                | KafkaError::Network
                | KafkaError::NotEnoughReplicasAfterAppend
                | KafkaError::NotLeader
        ) {
            f.maybe_written = true;
        }
        let (base, last, reset) = (f.base_seq, f.last_seq(), f.seq_reset);
        match e {
            KafkaError::OutOfOrderSequence if idempotent => {
                let next = base == part.last_acked + 1;
                match part.unresolved {
                    _ if reckless => part.bump = true,
                    None if reset || !next => {}
                    None => part.bump = true,
                    Some(u) if base == u + 1 => part.bump = true,
                    Some(_) => {}
                }
            }
            KafkaError::UnknownProducerId if idempotent => {
                if !reset || reckless {
                    part.bump = true;
                }
            }
            e if !e.retriable() => {
                // INVALID_PRODUCER_EPOCH (or a sequence error without
                // idempotence): fail the batch and restart the sequence.
                let f = part.batches.remove(i).expect("batch");
                if f.maybe_written {
                    part.unresolved = part.unresolved.max(Some(last));
                } else {
                    part.bump = true;
                }
                fail_records(cx, f.records, e, !f.maybe_written);
            }
            KafkaError::NotEnoughReplicas
            | KafkaError::NotEnoughReplicasAfterAppend
            | KafkaError::RequestTimedOut => {}
            _ => {
                self.meta.remove(tp);
                self.refresh_metadata(cx);
            }
        }
        self.ensure_tick(cx);
    }

    /// Fails every outstanding request to `broker` with `e`.
    fn fail_outstanding(&mut self, broker: NodeId, e: KafkaError, cx: &mut Ctx<'_>) {
        let lost: Vec<(Tp, u64)> = self
            .parts
            .iter()
            .flat_map(|(tp, p)| {
                p.batches
                    .iter()
                    .filter_map(|b| b.sent.filter(|s| s.1 == broker).map(|s| (tp.clone(), s.0)))
            })
            .collect();
        for (tp, corr) in lost {
            if let Some(i) = self.find(&tp, corr, broker) {
                self.failed(&tp, i, e, cx);
            }
        }
    }

    fn find(&self, tp: &Tp, corr: u64, from: NodeId) -> Option<usize> {
        self.parts[tp]
            .batches
            .iter()
            .position(|b| b.sent.is_some_and(|s| s.0 == corr && s.1 == from))
    }

    fn on_msg(&mut self, from: NodeId, m: KafkaMsg, cx: &mut Ctx<'_>) {
        match m {
            KafkaMsg::MetadataResp {
                corr, partitions, ..
            } => {
                if self.meta_req.map(|r| r.0) != Some(corr) {
                    return;
                }
                self.meta_req = None;
                for p in partitions {
                    // KIP-320 (the client's `Metadata.updateLatestMetadata`):
                    // metadata with an older leader epoch than the one
                    // already seen is stale (a broker the controller has
                    // not reached yet); keep what is known.
                    let seen = self.seen_epochs.entry(p.tp.clone()).or_insert(0);
                    if p.state.leader_epoch >= *seen {
                        *seen = p.state.leader_epoch;
                        self.meta.insert(p.tp.clone(), p);
                    }
                }
                self.pump(cx);
            }
            KafkaMsg::InitProducerIdResp { corr, result } => {
                if self.pid_req.map(|r| r.0) != Some(corr) {
                    return;
                }
                self.pid_req = None;
                if let Ok(pid) = result {
                    self.pid = Some((pid, 0));
                }
                self.ensure_tick(cx);
                self.pump(cx);
            }
            KafkaMsg::ProduceResp { corr, result } => {
                let Some((tp, i)) = self
                    .parts
                    .keys()
                    .find_map(|tp| self.find(tp, corr, from).map(|i| (tp.clone(), i)))
                else {
                    return;
                };
                match result {
                    Ok(base) => self.acked(&tp, i, base, cx),
                    Err(e) => self.failed(&tp, i, e, cx),
                }
                self.pump(cx);
            }
            _ => {}
        }
    }

    fn on_tick(&mut self, cx: &mut Ctx<'_>) {
        self.ticking = false;
        let now = cx.now;
        let timeout = self.cfg.request_timeout_ms;
        let late =
            |s: Option<(u64, NodeId, SimTime)>| s.is_some_and(|s| now.ms_since(s.2) > timeout);
        if late(self.meta_req) {
            self.meta_req = None;
        }
        if late(self.pid_req) {
            self.pid_req = None;
        }
        let mut timed_out: Vec<NodeId> = self
            .parts
            .values()
            .flat_map(|p| p.batches.iter().filter(|b| late(b.sent)))
            .filter_map(|b| b.sent.map(|s| s.1))
            .collect();
        timed_out.sort_unstable();
        timed_out.dedup();
        for broker in timed_out {
            // Java's NetworkClient closes a connection whose request timed
            // out, failing everything in flight on it.
            cx.disconnect(broker);
            self.fail_outstanding(broker, KafkaError::RequestTimedOut, cx);
        }
        self.pump(cx);
        if self.parts.values().any(|p| !p.idle()) {
            self.ensure_tick(cx);
        }
    }
}

impl Node for KafkaProducer {
    fn step(&mut self, input: Input, cx: &mut Ctx<'_>) {
        match input {
            Input::Client {
                id,
                req: ClientRequest::Kafka(KafkaRequest::Send { tp, value }),
            } => {
                let deadline = cx.now.plus_ms(self.cfg.delivery_timeout_ms);
                self.parts.entry(tp).or_default().queue.push_back(Record {
                    id,
                    value,
                    deadline,
                });
                self.pump(cx);
                self.ensure_tick(cx);
            }
            Input::Client { id, .. } => reply(
                cx,
                id,
                KafkaReply::Error {
                    error: KafkaError::BrokerNotAvailable,
                    definite: true,
                },
            ),
            Input::Message {
                from,
                msg: Msg::Kafka(m),
            } => self.on_msg(from, m, cx),
            Input::ConnLost { peer } => {
                self.fail_outstanding(peer, KafkaError::Network, cx);
                if self.meta_req.is_some_and(|r| r.1 == peer) {
                    self.meta_req = None;
                }
                if self.pid_req.is_some_and(|r| r.1 == peer) {
                    self.pid_req = None;
                }
                self.ensure_tick(cx);
            }
            Input::Timer { timer: TIMER_TICK } => self.on_tick(cx),
            _ => {}
        }
    }

    fn role(&self) -> String {
        match self.pid {
            Some((id, epoch)) => format!("producer pid={id} epoch={epoch}"),
            None => "producer pid=None".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The producer alone: inputs in, its produce requests and replies out.

    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::kafka::types::PartitionState;
    use crate::node::Effect;

    const LEADER: NodeId = 11;

    struct Probe {
        p: KafkaProducer,
        now: SimTime,
        rng: ChaCha8Rng,
        next_id: ReqId,
        /// (corr, batch) of every produce sent, in order.
        sent: Vec<(u64, Batch)>,
        replies: Vec<(ReqId, KafkaReply)>,
    }

    fn tp() -> Tp {
        Tp::new("t", 0)
    }

    impl Probe {
        fn new(cfg: ProducerConfig) -> Probe {
            let mut p = Probe {
                p: KafkaProducer::new(vec![LEADER], cfg),
                now: SimTime::from_ms(1),
                rng: ChaCha8Rng::seed_from_u64(1),
                next_id: 1,
                sent: Vec::new(),
                replies: Vec::new(),
            };
            p.send("first");
            // Answer the producer id and metadata requests.
            p.msg(KafkaMsg::InitProducerIdResp {
                corr: 2,
                result: Ok(77),
            });
            p.meta();
            p
        }

        /// Answers the outstanding metadata request: we lead.
        fn meta(&mut self) {
            self.meta_with(LEADER, 1);
        }

        /// Answers the outstanding metadata request: `leader` leads in
        /// `leader_epoch`.
        fn meta_with(&mut self, leader: NodeId, leader_epoch: u32) {
            let corr = self.p.meta_req.map(|r| r.0).expect("metadata asked");
            self.msg(KafkaMsg::MetadataResp {
                corr,
                live: vec![LEADER],
                partitions: vec![PartitionInfo {
                    tp: tp(),
                    state: PartitionState {
                        leader: Some(leader),
                        leader_epoch,
                        isr: vec![leader],
                        controller_epoch: 1,
                    },
                    replicas: vec![leader],
                    zk_version: 0,
                }],
            });
        }

        fn step(&mut self, input: Input) {
            let mut effects = Vec::new();
            let mut cx = Ctx::new(self.now, 200, &mut self.rng, &mut effects);
            self.p.step(input, &mut cx);
            for e in effects {
                match e {
                    Effect::Send {
                        msg: Msg::Kafka(KafkaMsg::Produce { corr, batch, .. }),
                        ..
                    } => self.sent.push((corr, batch)),
                    Effect::Reply {
                        id,
                        reply: ClientReply::Kafka(r),
                    } => self.replies.push((id, r)),
                    _ => {}
                }
            }
        }

        fn send(&mut self, v: &str) -> ReqId {
            let id = self.next_id;
            self.next_id += 1;
            self.step(Input::Client {
                id,
                req: ClientRequest::Kafka(KafkaRequest::Send {
                    tp: tp(),
                    value: v.as_bytes().to_vec(),
                }),
            });
            id
        }

        fn msg(&mut self, m: KafkaMsg) {
            self.step(Input::Message {
                from: LEADER,
                msg: Msg::Kafka(m),
            });
        }

        fn answer(&mut self, corr: u64, result: Result<u64, KafkaError>) {
            self.msg(KafkaMsg::ProduceResp { corr, result });
        }

        fn later(&mut self, ms: u64) {
            self.now = self.now.plus_ms(ms);
            self.step(Input::Timer { timer: TIMER_TICK });
        }

        /// (producer epoch, base sequence, first value) of the sends from
        /// index `from` on.
        fn sends_from(&self, from: usize) -> Vec<(u16, i64, String)> {
            self.sent[from..]
                .iter()
                .map(|(_, b)| {
                    (
                        b.producer_epoch,
                        b.base_seq,
                        String::from_utf8(b.values[0].clone()).unwrap(),
                    )
                })
                .collect()
        }
    }

    fn one_per_batch() -> ProducerConfig {
        ProducerConfig {
            batch_max: 1,
            ..ProducerConfig::default()
        }
    }

    #[test]
    fn pipelines_five_batches_without_waiting() {
        let mut p = Probe::new(one_per_batch());
        for v in ["b", "c", "d", "e", "f", "g"] {
            p.send(v);
        }
        // Five in flight, each with its own sequence range; the sixth waits.
        assert_eq!(p.p.in_flight(&tp()), 5);
        let s = p.sends_from(0);
        assert_eq!(
            s.iter().map(|x| x.1).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        assert!(s.iter().all(|x| x.0 == 0));
        // The first answer lets the sixth go.
        let c0 = p.sent[0].0;
        p.answer(c0, Ok(0));
        assert_eq!(p.sends_from(5), vec![(0, 5, "f".to_string())]);
        assert_eq!(p.replies, vec![(1, KafkaReply::Sent { offset: Some(0) })]);
    }

    #[test]
    fn retries_in_sequence_order_one_at_a_time() {
        let mut p = Probe::new(one_per_batch());
        for v in ["b", "c", "d"] {
            p.send(v);
        }
        // The connection breaks with four batches in flight.
        p.step(Input::ConnLost { peer: LEADER });
        assert!(p.replies.is_empty());
        p.later(30);
        p.meta();
        // Only the oldest is retried, with its own sequence number.
        assert_eq!(p.sends_from(4), vec![(0, 0, "first".to_string())]);
        let c = p.sent[4].0;
        p.answer(c, Ok(0));
        assert_eq!(p.sends_from(5), vec![(0, 1, "b".to_string())]);
        // Then the next, and so on; none is new until the retries are done.
        let c = p.sent[5].0;
        p.answer(c, Ok(1));
        assert_eq!(p.sends_from(6), vec![(0, 2, "c".to_string())]);
        let c = p.sent[6].0;
        p.answer(c, Ok(2));
        assert_eq!(p.sends_from(7), vec![(0, 3, "d".to_string())]);
        let c = p.sent[7].0;
        p.answer(c, Ok(3));
        // An OUT_OF_ORDER_SEQUENCE for a batch whose predecessor is not
        // acknowledged yet ("f" pipelined behind an "e" that was refused)
        // is retried as it is, without a new epoch, after "e".
        p.send("e");
        p.send("f");
        let (ce, cf) = (p.sent[8].0, p.sent[9].0);
        p.answer(ce, Err(KafkaError::NotEnoughReplicas));
        p.answer(cf, Err(KafkaError::OutOfOrderSequence));
        p.later(30);
        assert_eq!(p.sends_from(10), vec![(0, 4, "e".to_string())]);
        let c = p.sent[10].0;
        p.answer(c, Ok(4));
        assert_eq!(p.sends_from(11), vec![(0, 5, "f".to_string())]);
        assert_eq!(p.p.producer_epoch(), Some(0));
    }

    #[test]
    fn lost_broker_state_bumps_the_epoch_and_restarts_at_zero() {
        let mut p = Probe::new(one_per_batch());
        let c0 = p.sent[0].0;
        p.answer(c0, Ok(0));
        for v in ["b", "c"] {
            p.send(v);
        }
        // The broker lost sequence 0 (acknowledged): "b" is refused as a
        // gap, and "c" behind it too.
        let (c1, c2) = (p.sent[1].0, p.sent[2].0);
        p.answer(c1, Err(KafkaError::OutOfOrderSequence));
        // No bump while "c" is still outstanding.
        p.later(30);
        assert_eq!(p.sent.len(), 3);
        p.answer(c2, Err(KafkaError::OutOfOrderSequence));
        p.later(30);
        // Epoch 1, sequences from 0, in the same order; nothing failed.
        assert_eq!(p.p.producer_epoch(), Some(1));
        assert_eq!(p.sends_from(3), vec![(1, 0, "b".to_string())]);
        let c = p.sent[3].0;
        p.answer(c, Ok(5));
        assert_eq!(p.sends_from(4), vec![(1, 1, "c".to_string())]);
        assert_eq!(p.replies.len(), 2);
        let c = p.sent[4].0;
        p.answer(c, Ok(6));
        // UNKNOWN_PRODUCER_ID for a batch of the new numbering is retried;
        // for a later one it bumps again.
        p.send("d");
        assert_eq!(p.sends_from(5), vec![(1, 2, "d".to_string())]);
        let c = p.sent[5].0;
        p.answer(c, Err(KafkaError::UnknownProducerId));
        p.later(30);
        assert_eq!(p.p.producer_epoch(), Some(2));
        assert_eq!(p.sends_from(6), vec![(2, 0, "d".to_string())]);
        assert_eq!(p.replies.len(), 3);
    }

    /// KIP-320: metadata naming an older leader epoch than one already
    /// seen comes from a broker the controller has not reached (a zombie
    /// leader's own cache); the client keeps the newest epoch it saw, even
    /// after it dropped the partition's metadata on NOT_LEADER_OR_FOLLOWER.
    #[test]
    fn metadata_older_than_the_leader_epoch_seen_is_ignored() {
        let mut p = Probe::new(one_per_batch());
        let leader_of = |p: &Probe| p.p.meta.get(&tp()).and_then(|m| m.state.leader);
        assert_eq!(leader_of(&p), Some(LEADER));
        let c0 = p.sent[0].0;
        p.later(200);
        p.answer(c0, Err(KafkaError::NotLeader));
        p.later(200);
        // Epoch 0 naming another broker: stale, ignored.
        p.meta_with(LEADER + 1, 0);
        assert_eq!(leader_of(&p), None);
        p.later(200);
        // Epoch 2: the new leader.
        p.meta_with(LEADER + 1, 2);
        assert_eq!(leader_of(&p), Some(LEADER + 1));
    }

    /// A send refused before any append fails definitely (a G1a if it is
    /// ever read); one refused with NOT_LEADER_OR_FOLLOWER, which a leader
    /// also answers for a produce it had appended before losing leadership,
    /// stays unknown.
    #[test]
    fn only_refusals_before_any_append_are_definite_failures() {
        for (error, definite) in [
            (KafkaError::NotEnoughReplicas, true),
            (KafkaError::NotLeader, false),
        ] {
            let mut p = Probe::new(ProducerConfig {
                delivery_timeout_ms: 100,
                request_timeout_ms: 1_000,
                ..one_per_batch()
            });
            let c0 = p.sent[0].0;
            p.answer(c0, Err(error));
            p.later(150);
            let last = p.replies.last().expect("failed").1.clone();
            match last {
                KafkaReply::Error { definite: d, .. } => assert_eq!(d, definite, "{error:?}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_batch_expiring_after_it_was_sent_is_unknown_and_resolved_by_a_bump() {
        let mut p = Probe::new(ProducerConfig {
            delivery_timeout_ms: 100,
            request_timeout_ms: 1_000,
            ..one_per_batch()
        });
        p.later(150);
        // Sent, never answered: the outcome is unknown.
        assert_eq!(
            p.replies,
            vec![(
                1,
                KafkaReply::Error {
                    error: KafkaError::LeaderNotAvailable,
                    definite: false
                }
            )]
        );
        // Nothing new goes out until the sequence is resolved: with
        // nothing acknowledged past it, by a new epoch from 0.
        p.send("b");
        assert_eq!(p.sends_from(1), vec![(1, 0, "b".to_string())]);
    }
}
