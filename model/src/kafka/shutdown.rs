//! Controlled shutdown (ZooKeeper mode), both ends.
//!
//! The broker (Kafka's `KafkaServer.controlledShutdown`): asked to stop, it
//! sends ControlledShutdown with its broker epoch to the controller it last
//! heard from (itself, if it is the controller) and waits for the answer;
//! the answer lists the partitions it still leads. An empty list ends the
//! controlled part; otherwise, or on an error or no answer within
//! `controlled_shutdown_timeout_ms`, it waits
//! `controlled_shutdown_retry_backoff_ms` and asks again, up to
//! `controlled_shutdown_max_retries` times, then stops anyway (Kafka's
//! "proceeding to do an unclean shutdown"). Then it stops serving (Kafka
//! shuts the socket server down first), flushes every log, and once that is
//! on disk checkpoints the recovery points and high watermarks, writes the
//! clean-shutdown marker (with which the next start skips recovery), closes
//! its ZooKeeper session (its registration goes at once) and exits.
//!
//! The controller (Kafka's `KafkaController.doControlledShutdown`): the
//! broker joins the shutting-down set, which counts as not alive for the
//! live brokers it announces, for leader elections and for the ISR. Each
//! partition the broker leads gets the first assigned replica that is
//! alive, in the ISR and not shutting down as leader
//! (`ControlledShutdownPartitionLeaderElectionStrategy`), with the
//! shutting-down brokers out of the ISR; a partition with no such replica
//! keeps its leader. A partition it follows loses it from the ISR, unless
//! it is the last member. The answer goes out once a reconcile that started
//! after the request has written its changes. A broker leaves the set when
//! its registration goes or is re-created.

use std::collections::BTreeSet;

use crate::kafka::broker::{KafkaBroker, ZkPurpose};
use crate::kafka::types::{KafkaError, KafkaMsg, Tp};
use crate::msg::Msg;
use crate::node::{Ctx, Input, NodeId};
use crate::time::SimTime;
use crate::zk::ZkRequest;

/// The file whose presence at start says the last stop was clean (Kafka's
/// `.kafka_cleanshutdown` in each log directory).
pub const CLEAN_SHUTDOWN_FILE: &str = "kafka/.kafka_cleanshutdown";

/// How long the final phase may wait for ZooKeeper to close the session
/// once the logs are on disk.
const ZK_CLOSE_WAIT_MS: u64 = 200;

/// A broker's graceful shutdown in progress.
#[derive(Clone, Debug, Default)]
pub(crate) struct ShutdownState {
    /// ControlledShutdown requests sent so far.
    attempts: u32,
    /// The correlation id of the request awaiting its answer, if any.
    inflight: Option<u64>,
    /// When the request in flight times out, or the next attempt is due.
    next_at: SimTime,
    /// The stopping phase: the disk operations still to complete.
    pending_ops: Option<BTreeSet<u64>>,
    /// Whether the logs are flushed and the checkpoints written.
    checkpointed: bool,
    /// Whether ZooKeeper confirmed the session's close.
    zk_closed: bool,
    /// The latest time to exit once the checkpoints are on disk.
    exit_by: Option<SimTime>,
}

impl ShutdownState {
    /// Whether the broker has stopped serving (the stopping phase).
    pub(crate) fn stopping(&self) -> bool {
        self.pending_ops.is_some()
    }
}

impl KafkaBroker {
    /// Starts a graceful shutdown (the node's SIGTERM).
    pub(crate) fn begin_shutdown(&mut self, cx: &mut Ctx<'_>) {
        if self.shutdown.is_some() {
            return;
        }
        tracing::info!("kafka: broker {}: shutting down", self.id);
        self.shutdown = Some(ShutdownState::default());
        if !self.started || !self.cfg.controlled_shutdown || self.registered_session == 0 {
            self.stop_serving(cx);
        } else {
            self.ask_controlled_shutdown(cx);
        }
    }

    /// Sends the next ControlledShutdown attempt, or stops when the retries
    /// are used up.
    fn ask_controlled_shutdown(&mut self, cx: &mut Ctx<'_>) {
        let max = self.cfg.controlled_shutdown_max_retries;
        let timeout = self.cfg.controlled_shutdown_timeout_ms;
        let backoff = self.cfg.controlled_shutdown_retry_backoff_ms;
        let st = self.shutdown.as_mut().expect("shutting down");
        if st.attempts >= max {
            tracing::info!(
                "kafka: broker {}: controlled shutdown failed {} times; proceeding to do an unclean shutdown",
                self.id,
                st.attempts
            );
            self.stop_serving(cx);
            return;
        }
        st.attempts += 1;
        let corr = self.next_corr;
        self.next_corr += 1;
        let epoch = self.reg_zxid;
        let me = self.id;
        if self.kraft.is_some() {
            // KRaft: the heartbeat asks to shut down; the controller moves
            // the leaderships and answers should_shutdown when done.
            match self.kraft_heartbeat(true, cx) {
                Some(corr) => {
                    let st = self.shutdown.as_mut().expect("shutting down");
                    st.inflight = Some(corr);
                    st.next_at = cx.now.plus_ms(timeout);
                }
                None => {
                    let st = self.shutdown.as_mut().expect("shutting down");
                    st.inflight = None;
                    st.next_at = cx.now.plus_ms(backoff);
                }
            }
            return;
        }
        if self.controller.is_some() {
            st.inflight = Some(corr);
            st.next_at = cx.now.plus_ms(timeout);
            self.on_controlled_shutdown(me, corr, epoch, cx);
        } else if let Some(c) = self.known_controller {
            st.inflight = Some(corr);
            st.next_at = cx.now.plus_ms(timeout);
            cx.send(
                c,
                Msg::Kafka(KafkaMsg::ControlledShutdown {
                    corr,
                    broker_epoch: epoch,
                }),
            );
        } else {
            // No controller known: try again after the backoff.
            st.inflight = None;
            st.next_at = cx.now.plus_ms(backoff);
        }
    }

    /// The controller's answer to our ControlledShutdown.
    pub(crate) fn on_controlled_shutdown_resp(
        &mut self,
        corr: u64,
        result: Result<Vec<Tp>, KafkaError>,
        cx: &mut Ctx<'_>,
    ) {
        let backoff = self.cfg.controlled_shutdown_retry_backoff_ms;
        let Some(st) = self.shutdown.as_mut() else {
            return;
        };
        if st.inflight != Some(corr) || st.stopping() {
            return;
        }
        st.inflight = None;
        match result {
            Ok(left) if left.is_empty() => {
                tracing::info!("kafka: broker {}: controlled shutdown succeeded", self.id);
                self.stop_serving(cx);
            }
            other => {
                tracing::info!(
                    "kafka: broker {}: controlled shutdown attempt {} not done: {other:?}",
                    self.id,
                    st.attempts
                );
                st.next_at = cx.now.plus_ms(backoff);
            }
        }
    }

    /// The shutdown's part of the housekeeping tick.
    pub(crate) fn shutdown_tick(&mut self, cx: &mut Ctx<'_>) {
        let backoff = self.cfg.controlled_shutdown_retry_backoff_ms;
        let Some(st) = self.shutdown.as_mut() else {
            return;
        };
        if st.stopping() {
            if st.exit_by.is_some_and(|t| cx.now >= t) {
                cx.exit("shut down (ZooKeeper did not confirm the session's close)");
            }
            return;
        }
        if cx.now < st.next_at {
            return;
        }
        if st.inflight.take().is_some() {
            // No answer in time: count the attempt as failed.
            st.next_at = cx.now.plus_ms(backoff);
            return;
        }
        self.ask_controlled_shutdown(cx);
    }

    /// Stops serving and flushes every log; the checkpoints follow once
    /// the flush is on disk.
    fn stop_serving(&mut self, cx: &mut Ctx<'_>) {
        let mut out = Vec::new();
        for r in self.replicas.values_mut() {
            r.log.flush(&mut out);
        }
        let ops = self.disk_all_tracked(out, cx);
        let st = self.shutdown.as_mut().expect("shutting down");
        st.pending_ops = Some(ops);
        self.maybe_finish_shutdown(cx);
    }

    /// A disk operation of the stopping phase completed.
    pub(crate) fn shutdown_disk_done(&mut self, op: u64, cx: &mut Ctx<'_>) {
        if let Some(ops) = self.shutdown.as_mut().and_then(|s| s.pending_ops.as_mut()) {
            if ops.remove(&op) {
                self.maybe_finish_shutdown(cx);
            }
        }
    }

    /// ZooKeeper confirmed the close of our session.
    pub(crate) fn on_zk_closed(&mut self, cx: &mut Ctx<'_>) {
        if let Some(st) = self.shutdown.as_mut() {
            st.zk_closed = true;
        }
        self.maybe_finish_shutdown(cx);
    }

    /// Moves the stopping phase on: after the flush, the checkpoints and
    /// the clean-shutdown marker; after those, the session's close; then
    /// the exit.
    fn maybe_finish_shutdown(&mut self, cx: &mut Ctx<'_>) {
        let Some(st) = self.shutdown.as_ref() else {
            return;
        };
        if !st.pending_ops.as_ref().is_some_and(|o| o.is_empty()) {
            return;
        }
        if !st.checkpointed {
            let mut out = Vec::new();
            for r in self.replicas.values_mut() {
                let leo = r.log.leo();
                r.log.note_synced(leo);
                r.log.checkpoint_recovery_point(&mut out);
                r.log.checkpoint_hw(&mut out);
            }
            // KRaft keeps the broker epoch in it (KIP-966's previous
            // broker epoch: a clean shutdown of that incarnation).
            let data = match self.kraft.as_ref().and_then(|k| k.broker_epoch) {
                Some(e) => e.to_le_bytes().to_vec(),
                None => vec![1],
            };
            out.push(crate::disk::DiskRequest::Append {
                file: CLEAN_SHUTDOWN_FILE.into(),
                data,
            });
            out.push(crate::disk::DiskRequest::Fsync {
                file: CLEAN_SHUTDOWN_FILE.into(),
            });
            let ops = self.disk_all_tracked(out, cx);
            let st = self.shutdown.as_mut().expect("shutting down");
            st.checkpointed = true;
            st.pending_ops = Some(ops);
            return;
        }
        if self.registered_session != 0 && !st.zk_closed && self.kraft.is_none() {
            if st.exit_by.is_none() {
                let st = self.shutdown.as_mut().expect("shutting down");
                st.exit_by = Some(cx.now.plus_ms(ZK_CLOSE_WAIT_MS));
                self.zk_request(ZkRequest::Close, ZkPurpose::Close, cx);
            }
            return;
        }
        cx.exit("shut down cleanly");
    }

    /// Whether an input is still handled while stopping: the ZooKeeper
    /// client's traffic and timers, the disk's completions and the tick.
    pub(crate) fn handles_while_stopping(&self, input: &Input) -> bool {
        if !self.shutdown.as_ref().is_some_and(|s| s.stopping()) {
            return true;
        }
        match input {
            Input::Message { from, .. }
            | Input::ConnUp { peer: from }
            | Input::ConnLost { peer: from } => self.cfg.zk_servers.contains(from),
            Input::Client { .. } => false,
            Input::Start { .. } | Input::Disk { .. } | Input::Timer { .. } => true,
        }
    }

    // ----- the controller's side -----

    /// A ControlledShutdown request from `from` (this broker itself when
    /// it is the controller).
    pub(crate) fn on_controlled_shutdown(
        &mut self,
        from: NodeId,
        corr: u64,
        broker_epoch: u64,
        cx: &mut Ctx<'_>,
    ) {
        let me = self.id;
        let Some(c) = self.controller.as_mut() else {
            self.answer_controlled_shutdown(from, corr, Err(KafkaError::NotController), cx);
            return;
        };
        match c.registration(from) {
            None => {
                self.answer_controlled_shutdown(
                    from,
                    corr,
                    Err(KafkaError::BrokerNotAvailable),
                    cx,
                );
            }
            Some(z) if broker_epoch < z => {
                self.answer_controlled_shutdown(from, corr, Err(KafkaError::StaleBrokerEpoch), cx);
            }
            Some(_) => {
                tracing::info!("kafka: controller {me}: broker {from} is shutting down");
                c.begin_broker_shutdown(from, corr);
            }
        }
    }

    /// Sends (or, to itself, hands over) the answer to a ControlledShutdown.
    pub(crate) fn answer_controlled_shutdown(
        &mut self,
        to: NodeId,
        corr: u64,
        result: Result<Vec<Tp>, KafkaError>,
        cx: &mut Ctx<'_>,
    ) {
        if to == self.id {
            self.on_controlled_shutdown_resp(corr, result, cx);
        } else {
            cx.send(
                to,
                Msg::Kafka(KafkaMsg::ControlledShutdownResp { corr, result }),
            );
        }
    }
}
