//! The producer client node the workload drives.
//!
//! Each `Send` is queued on its partition; one batch per partition is in
//! flight at a time (`max.in.flight.requests.per.connection = 1`), formed
//! from up to `batch_max` queued records, and retried as the same batch
//! (same sequence numbers) until it is acknowledged or its delivery
//! timeout passes. Leaders come from metadata, refreshed after an error.
//! An idempotent producer first gets a producer id from a broker and
//! numbers each partition's records from 0; a duplicate retry is answered
//! by the leader with the original offset. An OUT_OF_ORDER_SEQUENCE
//! (the broker lost our state) fails the batch and resets the id.
//!
//! Replies: `Sent { offset }` (acks 0: `None`), or `Error { error,
//! definite }`, where `definite` means the records surely were not written
//! (never sent, or refused before append).

use std::collections::{BTreeMap, VecDeque};

use crate::kafka::types::{
    Acks, Batch, KafkaError, KafkaMsg, KafkaReply, KafkaRequest, PartitionInfo, Tp,
};
use crate::msg::{ClientReply, ClientRequest, Msg};
use crate::node::{Ctx, Input, Node, NodeId, ReqId};
use crate::time::SimTime;

const TIMER_TICK: u64 = 1;

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
        }
    }
}

#[derive(Clone, Debug)]
struct Record {
    id: ReqId,
    value: Vec<u8>,
    deadline: SimTime,
}

#[derive(Clone, Debug)]
struct InFlight {
    records: Vec<Record>,
    base_seq: i64,
    producer_id: u64,
    /// Outstanding request: (correlation id, broker, sent at).
    sent: Option<(u64, NodeId, SimTime)>,
    /// Ever sent (so the outcome may be unknown).
    tried: bool,
    last_error: KafkaError,
    retry_at: SimTime,
}

/// A Kafka producer node.
pub struct KafkaProducer {
    brokers: Vec<NodeId>,
    cfg: ProducerConfig,
    next_broker: usize,
    next_corr: u64,
    meta: BTreeMap<Tp, PartitionInfo>,
    meta_req: Option<(u64, NodeId, SimTime)>,
    meta_at: Option<SimTime>,
    pid: Option<u64>,
    pid_req: Option<(u64, NodeId, SimTime)>,
    seqs: BTreeMap<Tp, i64>,
    queues: BTreeMap<Tp, VecDeque<Record>>,
    inflight: BTreeMap<Tp, InFlight>,
    ticking: bool,
}

impl KafkaProducer {
    /// A producer bootstrapping from `brokers`.
    pub fn new(brokers: Vec<NodeId>, cfg: ProducerConfig) -> KafkaProducer {
        assert!(!brokers.is_empty());
        KafkaProducer {
            brokers,
            cfg,
            next_broker: 0,
            next_corr: 1,
            meta: BTreeMap::new(),
            meta_req: None,
            meta_at: None,
            pid: None,
            pid_req: None,
            seqs: BTreeMap::new(),
            queues: BTreeMap::new(),
            inflight: BTreeMap::new(),
            ticking: false,
        }
    }

    /// The producer id in use, if any.
    pub fn producer_id(&self) -> Option<u64> {
        self.pid
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

    fn reply(cx: &mut Ctx<'_>, id: ReqId, r: KafkaReply) {
        cx.reply(id, ClientReply::Kafka(r));
    }

    fn ensure_tick(&mut self, cx: &mut Ctx<'_>) {
        if !self.ticking {
            self.ticking = true;
            cx.set_timer_ms(TIMER_TICK, 10);
        }
    }

    /// Sends (or retries) what can be sent.
    fn pump(&mut self, cx: &mut Ctx<'_>) {
        if self.cfg.idempotent && self.pid.is_none() {
            if self.pid_req.is_none() && !self.queues.values().all(|q| q.is_empty()) {
                let corr = self.corr();
                let b = self.any_broker();
                self.pid_req = Some((corr, b, cx.now));
                cx.send(b, Msg::Kafka(KafkaMsg::InitProducerId { corr }));
            }
            return;
        }
        let tps: Vec<Tp> = self
            .queues
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(tp, _)| tp.clone())
            .chain(self.inflight.keys().cloned())
            .collect();
        for tp in tps {
            self.pump_one(&tp, cx);
        }
    }

    fn pump_one(&mut self, tp: &Tp, cx: &mut Ctx<'_>) {
        if !self.inflight.contains_key(tp) {
            let q = self.queues.entry(tp.clone()).or_default();
            if q.is_empty() {
                return;
            }
            let n = q.len().min(self.cfg.batch_max.max(1));
            let records: Vec<Record> = q.drain(..n).collect();
            let (pid, base_seq) = match self.pid {
                Some(pid) if self.cfg.idempotent => {
                    let s = self.seqs.entry(tp.clone()).or_insert(0);
                    let base = *s;
                    *s += records.len() as i64;
                    (pid, base)
                }
                _ => (0, -1),
            };
            self.inflight.insert(
                tp.clone(),
                InFlight {
                    records,
                    base_seq,
                    producer_id: pid,
                    sent: None,
                    tried: false,
                    last_error: KafkaError::LeaderNotAvailable,
                    retry_at: cx.now,
                },
            );
        }
        let now = cx.now;
        let f = self.inflight.get(tp).expect("inflight");
        if f.sent.is_some() || now < f.retry_at {
            return;
        }
        if f.records.iter().any(|r| now >= r.deadline) {
            let f = self.inflight.remove(tp).expect("inflight");
            for r in f.records {
                Self::reply(
                    cx,
                    r.id,
                    KafkaReply::Error {
                        error: f.last_error,
                        definite: !f.tried,
                    },
                );
            }
            return self.pump_one(tp, cx);
        }
        let Some(leader) = self.meta.get(tp).and_then(|i| i.state.leader) else {
            self.refresh_metadata(cx);
            self.ensure_tick(cx);
            return;
        };
        let corr = self.corr();
        let acks = self.cfg.acks;
        let timeout_ms = self.cfg.request_timeout_ms;
        let f = self.inflight.get_mut(tp).expect("inflight");
        let batch = Batch {
            base_offset: 0,
            epoch: 0,
            producer_id: f.producer_id,
            base_seq: f.base_seq,
            values: f.records.iter().map(|r| r.value.clone()).collect(),
        };
        f.sent = Some((corr, leader, now));
        f.tried = true;
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
            let f = self.inflight.remove(tp).expect("inflight");
            for r in f.records {
                Self::reply(cx, r.id, KafkaReply::Sent { offset: None });
            }
            self.pump_one(tp, cx);
        }
        self.ensure_tick(cx);
    }

    /// The in-flight batch failed with `e`: retry later, or give up.
    fn failed(&mut self, tp: &Tp, e: KafkaError, cx: &mut Ctx<'_>) {
        let backoff = self.cfg.retry_backoff_ms;
        let Some(f) = self.inflight.get_mut(tp) else {
            return;
        };
        f.sent = None;
        f.last_error = e;
        if e.retriable() {
            f.retry_at = cx.now.plus_ms(backoff);
            if !matches!(
                e,
                KafkaError::NotEnoughReplicas | KafkaError::RequestTimedOut
            ) {
                self.meta.remove(tp);
                self.refresh_metadata(cx);
            }
            self.ensure_tick(cx);
            return;
        }
        // The broker lost this producer's state: fail the batch and start
        // over with a new producer id (as Kafka's idempotent producer does).
        let f = self.inflight.remove(tp).expect("inflight");
        for r in f.records {
            Self::reply(
                cx,
                r.id,
                KafkaReply::Error {
                    error: e,
                    definite: false,
                },
            );
        }
        self.pid = None;
        self.seqs.clear();
        // Batches formed with the old id are re-numbered when resent.
        let stale: Vec<Tp> = self.inflight.keys().cloned().collect();
        for tp in stale {
            let f = self.inflight.remove(&tp).expect("inflight");
            let q = self.queues.entry(tp).or_default();
            for r in f.records.into_iter().rev() {
                q.push_front(r);
            }
        }
        self.pump(cx);
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
                    self.meta.insert(p.tp.clone(), p);
                }
                self.pump(cx);
            }
            KafkaMsg::InitProducerIdResp { corr, result } => {
                if self.pid_req.map(|r| r.0) != Some(corr) {
                    return;
                }
                self.pid_req = None;
                if let Ok(pid) = result {
                    self.pid = Some(pid);
                    self.seqs.clear();
                }
                self.ensure_tick(cx);
                self.pump(cx);
            }
            KafkaMsg::ProduceResp { corr, result } => {
                let Some(tp) = self
                    .inflight
                    .iter()
                    .find(|(_, f)| f.sent.is_some_and(|s| s.0 == corr && s.1 == from))
                    .map(|(tp, _)| tp.clone())
                else {
                    return;
                };
                match result {
                    Ok(base) => {
                        let f = self.inflight.remove(&tp).expect("inflight");
                        for (i, r) in f.records.into_iter().enumerate() {
                            Self::reply(
                                cx,
                                r.id,
                                KafkaReply::Sent {
                                    offset: Some(base + i as u64),
                                },
                            );
                        }
                        self.pump_one(&tp, cx);
                    }
                    Err(e) => self.failed(&tp, e, cx),
                }
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
        let timed_out: Vec<Tp> = self
            .inflight
            .iter()
            .filter(|(_, f)| late(f.sent))
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in timed_out {
            self.failed(&tp, KafkaError::RequestTimedOut, cx);
        }
        self.pump(cx);
        if !self.inflight.is_empty() || self.queues.values().any(|q| !q.is_empty()) {
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
                self.queues.entry(tp).or_default().push_back(Record {
                    id,
                    value,
                    deadline,
                });
                self.pump(cx);
                self.ensure_tick(cx);
            }
            Input::Client { id, .. } => Self::reply(
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
                let lost: Vec<Tp> = self
                    .inflight
                    .iter()
                    .filter(|(_, f)| f.sent.is_some_and(|s| s.1 == peer))
                    .map(|(tp, _)| tp.clone())
                    .collect();
                for tp in lost {
                    self.failed(&tp, KafkaError::Network, cx);
                }
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
        format!("producer pid={:?}", self.pid)
    }
}
