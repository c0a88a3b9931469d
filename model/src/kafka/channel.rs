//! The controller's channel to each broker, as Kafka's
//! `ControllerChannelManager` runs it (ZooKeeper mode).
//!
//! Per broker a queue of LeaderAndIsr / UpdateMetadata requests, sent one
//! at a time: the head stays in flight until the broker answers it
//! ([`KafkaMsg::ControllerResp`], whether it obeyed or refused). When the
//! connection breaks, the head is sent again (Kafka's `RequestSendThread`
//! backs off, reconnects and re-sends the same request; here on the next
//! housekeeping tick), so a request is never lost while its broker counts
//! as alive. The queue goes only when the controller stops counting the
//! broker alive (a dead or re-registered broker: `removeBroker`) or when
//! the controller resigns (its channels shut down with it). A controller
//! that does not know it was replaced therefore keeps re-sending what it
//! queued, and brokers fence it by its controller epoch.
//!
//! Requests to the controller's own broker do not use a channel: they are
//! handled at once, in the same step.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::kafka::broker::KafkaBroker;
use crate::kafka::types::KafkaMsg;
use crate::msg::Msg;
use crate::node::{Ctx, NodeId};

/// How many requests one broker's queue may hold. Kafka's queue is
/// unbounded; a run cannot come near this (the controller queues at most a
/// few requests per partition change), so passing it is a model bug.
const QUEUE_LIMIT: usize = 100_000;

/// The requests queued for one broker.
#[derive(Debug, Default)]
pub(crate) struct Channel {
    /// Requests not yet answered, oldest (the one in flight) first.
    queue: VecDeque<KafkaMsg>,
    /// The correlation id of the head's current transmission, while it is
    /// on a connection believed up.
    in_flight: Option<u64>,
}

/// Every channel of one controller.
#[derive(Debug, Default)]
pub(crate) struct Channels {
    to: BTreeMap<NodeId, Channel>,
}

impl Channels {
    /// Drops the channels of brokers not in `alive` (Kafka's
    /// `removeBroker`): their queued requests are gone.
    pub(crate) fn retain(&mut self, alive: &BTreeSet<NodeId>) {
        self.to.retain(|b, _| alive.contains(b));
    }

    /// How many requests wait for broker `b` (tests).
    #[cfg(test)]
    pub(crate) fn queued(&self, b: NodeId) -> usize {
        self.to.get(&b).map_or(0, |c| c.queue.len())
    }
}

/// Sets the correlation id of a controller request.
fn with_corr(mut m: KafkaMsg, id: u64) -> KafkaMsg {
    match &mut m {
        KafkaMsg::LeaderAndIsr { corr, .. } | KafkaMsg::UpdateMetadata { corr, .. } => *corr = id,
        other => unreachable!("not a controller request: {other:?}"),
    }
    m
}

impl KafkaBroker {
    fn channels(&mut self) -> Option<&mut Channels> {
        self.controller.as_mut().map(|c| &mut c.channels)
    }

    /// Queues controller request `m` for broker `to` (not this one) and
    /// sends it if the channel is idle.
    pub(crate) fn channel_send(&mut self, to: NodeId, m: KafkaMsg, cx: &mut Ctx<'_>) {
        debug_assert_ne!(to, self.id, "the controller's own broker has no channel");
        let Some(chs) = self.channels() else {
            return;
        };
        let ch = chs.to.entry(to).or_default();
        assert!(
            ch.queue.len() < QUEUE_LIMIT,
            "controller channel to broker {to} holds {QUEUE_LIMIT} requests"
        );
        ch.queue.push_back(m);
        if ch.queue.len() == 1 {
            self.channel_transmit(to, cx);
        }
    }

    /// Sends the head of `to`'s queue (again), under a new correlation id.
    fn channel_transmit(&mut self, to: NodeId, cx: &mut Ctx<'_>) {
        let corr = self.next_corr;
        let Some(ch) = self.channels().and_then(|c| c.to.get_mut(&to)) else {
            return;
        };
        let Some(head) = ch.queue.front() else {
            return;
        };
        let m = with_corr(head.clone(), corr);
        ch.in_flight = Some(corr);
        self.next_corr += 1;
        cx.send(to, Msg::Kafka(m));
    }

    /// Broker `from` answered request `corr`: the next one goes.
    pub(crate) fn channel_answered(&mut self, from: NodeId, corr: u64, cx: &mut Ctx<'_>) {
        let Some(ch) = self.channels().and_then(|c| c.to.get_mut(&from)) else {
            return;
        };
        if ch.in_flight != Some(corr) {
            return;
        }
        ch.in_flight = None;
        ch.queue.pop_front();
        if !ch.queue.is_empty() {
            self.channel_transmit(from, cx);
        }
    }

    /// The connection with `peer` broke: its request in flight, if any, may
    /// be lost and is sent again on the next tick.
    pub(crate) fn channel_conn_lost(&mut self, peer: NodeId) {
        if let Some(ch) = self.channels().and_then(|c| c.to.get_mut(&peer)) {
            ch.in_flight = None;
        }
    }

    /// Re-sends the head of every queue whose connection broke.
    pub(crate) fn channel_tick(&mut self, cx: &mut Ctx<'_>) {
        let Some(chs) = self.channels() else {
            return;
        };
        let due: Vec<NodeId> = chs
            .to
            .iter()
            .filter(|(_, ch)| ch.in_flight.is_none() && !ch.queue.is_empty())
            .map(|(b, _)| *b)
            .collect();
        for b in due {
            self.channel_transmit(b, cx);
        }
    }
}
