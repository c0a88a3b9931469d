//! The consumer client node the workload drives (assigned partitions, no
//! group).
//!
//! It keeps a position per assigned partition and the leader epoch of the
//! last record consumed. A `Poll` sends one fetch to the leader of each
//! partition that has none in flight, carrying the leader epoch from the
//! consumer's metadata (KIP-320), and answers when every request in flight
//! has answered or after `poll_timeout_ms`, with what came back. As in
//! Kafka's fetcher, a request outlives the poll that sent it: an answer
//! after the poll ended is kept for the next one, and a request is given
//! up (and metadata refreshed) only after `request_timeout_ms`, so a slow
//! link makes polls slower, never empty forever. When the metadata shows a new leader epoch, the
//! consumer first validates its position: it asks the new leader where the
//! epoch of its last consumed record ends (OffsetsForLeaderEpoch) and, if
//! that is below its position, the log was truncated under it: it resets
//! to that offset and reports it in `truncated`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::bugs::BugSet;
use crate::kafka::types::{
    KafkaError, KafkaMsg, KafkaReply, KafkaRequest, LeaderEpoch, PartitionInfo, Tp,
};
use crate::msg::{ClientReply, ClientRequest, Msg};
use crate::node::{Ctx, Input, Node, NodeId, ReqId};
use crate::time::SimTime;

const TIMER_POLL: u64 = 1;

/// Consumer settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// How long a poll waits for the requests in flight (the timeout the
    /// application passes to `poll`).
    pub poll_timeout_ms: u64,
    /// How long a request may go unanswered before it is given up and the
    /// metadata refreshed (`request.timeout.ms`).
    pub request_timeout_ms: u64,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            poll_timeout_ms: 200,
            request_timeout_ms: 1_000,
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Position {
    /// The next record to return to the application (what a commit
    /// commits).
    offset: u64,
    /// The next record to fetch: past `offset` by what is fetched and not
    /// yet returned.
    fetched: u64,
    /// Epoch of the last consumed record.
    last_epoch: Option<LeaderEpoch>,
    /// The leader epoch the position was validated against.
    validated: Option<LeaderEpoch>,
}

#[derive(Clone, Debug)]
enum Pending {
    Fetch(Tp, u64),
    Validate(Tp),
}

/// A request in flight.
#[derive(Clone, Debug)]
struct InFlight {
    to: NodeId,
    what: Pending,
    sent: SimTime,
}

impl InFlight {
    fn tp(&self) -> &Tp {
        match &self.what {
            Pending::Fetch(tp, _) | Pending::Validate(tp) => tp,
        }
    }
}

/// A Kafka consumer node.
pub struct KafkaConsumer {
    brokers: Vec<NodeId>,
    cfg: ConsumerConfig,
    use_epoch: bool,
    next_broker: usize,
    next_corr: u64,
    meta: BTreeMap<Tp, PartitionInfo>,
    meta_corr: Option<u64>,
    /// When the outstanding metadata request was sent.
    meta_sent: SimTime,
    positions: BTreeMap<Tp, Position>,
    /// Requests in flight, by correlation id.
    in_flight: BTreeMap<u64, InFlight>,
    /// Records and truncations answered but not yet returned by a poll.
    records: Vec<(Tp, u64, Vec<u8>)>,
    truncated: Vec<(Tp, u64)>,
    /// The poll in progress.
    poll: Option<ReqId>,
    queued: VecDeque<ReqId>,
}

impl KafkaConsumer {
    /// A consumer bootstrapping from `brokers`. With the planted bug
    /// `kafka_no_fetch_epoch_fencing` its fetches carry no leader epoch.
    pub fn new(brokers: Vec<NodeId>, cfg: ConsumerConfig, bugs: &BugSet) -> KafkaConsumer {
        assert!(!brokers.is_empty());
        KafkaConsumer {
            brokers,
            cfg,
            use_epoch: !bugs.on("kafka_no_fetch_epoch_fencing"),
            next_broker: 0,
            next_corr: 1,
            meta: BTreeMap::new(),
            meta_corr: None,
            meta_sent: SimTime::ZERO,
            positions: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            records: Vec::new(),
            truncated: Vec::new(),
            poll: None,
            queued: VecDeque::new(),
        }
    }

    /// The position in `tp`, if assigned.
    pub fn position(&self, tp: &Tp) -> Option<u64> {
        self.positions.get(tp).map(|p| p.offset)
    }

    /// Consumes exactly `tps` from now on: partitions not assigned before
    /// start at offset 0 until [`KafkaConsumer::seek`] moves them; the
    /// positions of the others are kept.
    pub fn assign(&mut self, tps: &[Tp]) {
        self.positions.retain(|tp, _| tps.contains(tp));
        for tp in tps {
            self.positions.entry(tp.clone()).or_default();
        }
        self.records.retain(|(tp, _, _)| tps.contains(tp));
        self.truncated.retain(|(tp, _)| tps.contains(tp));
    }

    /// Moves the position in `tp` (assigning it if needed) to `offset`,
    /// forgetting the epoch of the last record consumed there.
    pub fn seek(&mut self, tp: &Tp, offset: u64) {
        self.records.retain(|(t, _, _)| t != tp);
        self.truncated.retain(|(t, _)| t != tp);
        self.positions.insert(
            tp.clone(),
            Position {
                offset,
                fetched: offset,
                last_epoch: None,
                validated: None,
            },
        );
    }

    /// The assigned partitions and their positions.
    pub fn positions(&self) -> impl Iterator<Item = (&Tp, u64)> + '_ {
        self.positions.iter().map(|(tp, p)| (tp, p.offset))
    }

    /// Whether a poll is in progress.
    pub fn polling(&self) -> bool {
        self.poll.is_some()
    }

    /// Steps the consumer as a state machine inside another node (a group
    /// member): its timers are shifted by `timer_base`, its sends go out
    /// through `cx`, and its replies to `Poll` requests come back here
    /// instead of to the workload. Only inputs meant for it may be passed:
    /// `Msg::Kafka` messages, connection events, its own (unshifted)
    /// timers, and `KafkaRequest::Poll` client requests.
    pub fn step_embedded(
        &mut self,
        input: Input,
        timer_base: u64,
        cx: &mut Ctx<'_>,
    ) -> Vec<(ReqId, KafkaReply)> {
        crate::node::step_embedded(self, input, timer_base, cx)
            .into_iter()
            .filter_map(|(id, r)| match r {
                ClientReply::Kafka(r) => Some((id, r)),
                _ => None,
            })
            .collect()
    }

    fn corr(&mut self) -> u64 {
        self.next_corr += 1;
        self.next_corr
    }

    fn refresh_metadata(&mut self, cx: &mut Ctx<'_>) {
        let corr = self.corr();
        self.next_broker += 1;
        let b = self.brokers[self.next_broker % self.brokers.len()];
        self.meta_corr = Some(corr);
        self.meta_sent = cx.now;
        cx.send(b, Msg::Kafka(KafkaMsg::Metadata { corr }));
    }

    /// Gives up the requests (and the metadata request) unanswered for
    /// `request_timeout_ms`; refreshes the metadata if any was.
    fn expire(&mut self, cx: &mut Ctx<'_>) {
        let timeout = self.cfg.request_timeout_ms;
        let now = cx.now;
        let before = self.in_flight.len();
        self.in_flight.retain(|_, f| now.ms_since(f.sent) < timeout);
        if self.meta_corr.is_some() && now.ms_since(self.meta_sent) >= timeout {
            self.meta_corr = None;
        }
        if self.in_flight.len() < before {
            self.on_error(KafkaError::RequestTimedOut, cx);
        }
    }

    fn start_poll(&mut self, id: ReqId, cx: &mut Ctx<'_>) {
        self.expire(cx);
        let mut need_meta = self.meta_corr.is_none() && self.meta.is_empty();
        let busy: BTreeSet<Tp> = self.in_flight.values().map(|f| f.tp().clone()).collect();
        let tps: Vec<Tp> = self
            .positions
            .keys()
            .filter(|tp| !busy.contains(tp))
            .cloned()
            .collect();
        for tp in tps {
            let Some(info) = self.meta.get(&tp).cloned() else {
                need_meta = true;
                continue;
            };
            let Some(leader) = info.state.leader else {
                need_meta = true;
                continue;
            };
            let epoch = info.state.leader_epoch;
            // Records of a newer epoch were consumed already: this
            // metadata is stale (KIP-320), its leader may be a zombie.
            if self.use_epoch
                && self.positions[&tp]
                    .last_epoch
                    .is_some_and(|last| last > epoch)
            {
                need_meta = true;
                continue;
            }
            let corr = self.corr();
            let pos = self.positions.get_mut(&tp).expect("assigned");
            let current = self.use_epoch.then_some(epoch);
            match pos.last_epoch {
                Some(last) if self.use_epoch && pos.validated != Some(epoch) => {
                    cx.send(
                        leader,
                        Msg::Kafka(KafkaMsg::OffsetsForLeaderEpoch {
                            corr,
                            tp: tp.clone(),
                            current_leader_epoch: current,
                            epoch: last,
                        }),
                    );
                    self.in_flight.insert(
                        corr,
                        InFlight {
                            to: leader,
                            what: Pending::Validate(tp),
                            sent: cx.now,
                        },
                    );
                }
                _ => {
                    pos.validated = Some(epoch);
                    cx.send(
                        leader,
                        Msg::Kafka(KafkaMsg::Fetch {
                            corr,
                            replica: None,
                            tp: tp.clone(),
                            current_leader_epoch: current,
                            offset: pos.fetched,
                            last_fetched_epoch: None,
                            log_start: 0,
                        }),
                    );
                    let what = Pending::Fetch(tp, pos.fetched);
                    self.in_flight.insert(
                        corr,
                        InFlight {
                            to: leader,
                            what,
                            sent: cx.now,
                        },
                    );
                }
            }
        }
        if need_meta && self.meta_corr.is_none() {
            self.refresh_metadata(cx);
        }
        self.poll = Some(id);
        cx.set_timer_ms(TIMER_POLL, self.cfg.poll_timeout_ms);
        self.maybe_finish(cx);
    }

    /// Answers the poll when nothing is in flight any more.
    fn maybe_finish(&mut self, cx: &mut Ctx<'_>) {
        if self.poll.is_some() && self.in_flight.is_empty() {
            self.finish(cx);
        }
    }

    fn finish(&mut self, cx: &mut Ctx<'_>) {
        let Some(id) = self.poll.take() else {
            return;
        };
        cx.cancel_timer(TIMER_POLL);
        let records = std::mem::take(&mut self.records);
        for (tp, off, _) in &records {
            if let Some(pos) = self.positions.get_mut(tp) {
                pos.offset = off + 1;
            }
        }
        cx.reply(
            id,
            ClientReply::Kafka(KafkaReply::Polled {
                records,
                truncated: std::mem::take(&mut self.truncated),
            }),
        );
        if let Some(id) = self.queued.pop_front() {
            self.start_poll(id, cx);
        }
    }

    fn on_error(&mut self, e: KafkaError, cx: &mut Ctx<'_>) {
        let _ = e;
        if self.meta_corr.is_none() {
            self.refresh_metadata(cx);
        }
    }

    fn take_pending(&mut self, from: NodeId, corr: u64) -> Option<Pending> {
        match self.in_flight.get(&corr) {
            Some(f) if f.to == from => self.in_flight.remove(&corr).map(|f| f.what),
            _ => None,
        }
    }

    fn on_msg(&mut self, from: NodeId, m: KafkaMsg, cx: &mut Ctx<'_>) {
        match m {
            KafkaMsg::MetadataResp {
                corr, partitions, ..
            } if self.meta_corr == Some(corr) => {
                self.meta_corr = None;
                for p in partitions {
                    // KIP-320: metadata with an older leader epoch than
                    // the one already known is stale; ignore it.
                    let older = self
                        .meta
                        .get(&p.tp)
                        .is_some_and(|m| m.state.leader_epoch > p.state.leader_epoch);
                    if !older {
                        self.meta.insert(p.tp.clone(), p);
                    }
                }
            }
            KafkaMsg::FetchResp { corr, result } => {
                let Some(Pending::Fetch(tp, offset)) = self.take_pending(from, corr) else {
                    return;
                };
                match result {
                    Ok(data) => {
                        // Unassigned or moved since it was sent: stale.
                        let Some(pos) = self.positions.get_mut(&tp).filter(|p| p.fetched == offset)
                        else {
                            self.maybe_finish(cx);
                            return;
                        };
                        if data.log_start > pos.fetched {
                            // OFFSET_OUT_OF_RANGE below the log start, and
                            // `auto.offset.reset = earliest` (Jepsen's
                            // setting): the position moves to the start;
                            // records already fetched are still returned.
                            tracing::info!(
                                "kafka: consumer: {tp}: offset {} is below the log start, resetting to {}",
                                pos.fetched,
                                data.log_start
                            );
                            if pos.offset == pos.fetched {
                                pos.offset = data.log_start;
                            }
                            pos.fetched = data.log_start;
                            pos.last_epoch = None;
                        }
                        {
                            for b in data.batches {
                                for (i, v) in b.values.into_iter().enumerate() {
                                    let off = b.base_offset + i as u64;
                                    if off == pos.fetched {
                                        self.records.push((tp.clone(), off, v));
                                        pos.fetched += 1;
                                        pos.last_epoch = Some(b.epoch);
                                    }
                                }
                            }
                        }
                    }
                    Err(KafkaError::OffsetOutOfRange) => {
                        // Validate against the leader before trusting it.
                        if let Some(pos) = self.positions.get_mut(&tp) {
                            pos.validated = None;
                        }
                        self.on_error(KafkaError::OffsetOutOfRange, cx);
                    }
                    Err(e) => self.on_error(e, cx),
                }
                self.maybe_finish(cx);
            }
            KafkaMsg::OffsetsForLeaderEpochResp { corr, result } => {
                let Some(Pending::Validate(tp)) = self.take_pending(from, corr) else {
                    return;
                };
                let epoch = self.meta.get(&tp).map(|i| i.state.leader_epoch);
                match result {
                    Ok(answer) => {
                        if let Some(pos) = self.positions.get_mut(&tp) {
                            let end = answer.map(|a| a.1).unwrap_or(0);
                            if end < pos.fetched {
                                // Fetched records past the end are gone.
                                self.records.retain(|(t, o, _)| t != &tp || *o < end);
                                pos.offset = pos.offset.min(end);
                                pos.fetched = end;
                                pos.last_epoch = answer.map(|a| a.0);
                                self.truncated.push((tp.clone(), end));
                            }
                            pos.validated = epoch;
                        }
                    }
                    Err(e) => self.on_error(e, cx),
                }
                self.maybe_finish(cx);
            }
            _ => {}
        }
    }
}

impl Node for KafkaConsumer {
    fn step(&mut self, input: Input, cx: &mut Ctx<'_>) {
        match input {
            Input::Client {
                id,
                req: ClientRequest::Kafka(KafkaRequest::Assign(tps)),
            } => {
                self.positions.retain(|tp, _| tps.contains(tp));
                for tp in tps {
                    self.positions.entry(tp).or_default();
                }
                cx.reply(id, ClientReply::Kafka(KafkaReply::Assigned));
            }
            Input::Client {
                id,
                req: ClientRequest::Kafka(KafkaRequest::Poll),
            } => {
                if self.poll.is_some() {
                    self.queued.push_back(id);
                } else {
                    self.start_poll(id, cx);
                }
            }
            Input::Client { id, .. } => cx.reply(
                id,
                ClientReply::Kafka(KafkaReply::Error {
                    error: KafkaError::BrokerNotAvailable,
                    definite: true,
                }),
            ),
            Input::Message {
                from,
                msg: Msg::Kafka(m),
            } => self.on_msg(from, m, cx),
            Input::ConnLost { peer } => {
                self.in_flight.retain(|_, f| f.to != peer);
                self.meta_corr = None;
                self.on_error(KafkaError::Network, cx);
                self.maybe_finish(cx);
            }
            Input::Timer { timer: TIMER_POLL } => {
                // What did not answer in time stays in flight for the
                // next poll, unless it is past the request timeout.
                self.expire(cx);
                self.finish(cx);
            }
            _ => {}
        }
    }

    fn role(&self) -> String {
        format!("consumer {:?}", self.positions.keys().collect::<Vec<_>>())
    }
}
