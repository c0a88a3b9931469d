//! The follower side of a partition replica: how a broker that follows a
//! partition's leader truncates its log where the two diverge (asking
//! OffsetsForLeaderEpoch first, or on the fetch response's diverging
//! epoch; see `truncation`) and then fetches, taking the leader's high
//! watermark. The leader side, and the replica's state, are in `replica`.

use crate::kafka::broker::KafkaBroker;
use crate::kafka::replica::Role;
use crate::kafka::truncation;
use crate::kafka::types::{FetchData, KafkaError, KafkaMsg, LeaderEpoch, Tp};
use crate::msg::Msg;
use crate::node::{Ctx, NodeId};
use crate::probe::EventKind;

impl KafkaBroker {
    /// Whether followers truncate on the fetch response's diverging epoch
    /// (Kafka 2.7+). The planted truncation and fencing bugs are older
    /// Kafka (before KIP-101, KIP-279 or KIP-320), whose followers never
    /// sent their last epoch with a fetch.
    pub(crate) fn truncates_on_fetch(&self) -> bool {
        self.cfg.truncation_on_fetch
            && !self.bugs.single_round_truncation
            && !self.bugs.no_epoch_truncation
            && !self.bugs.no_fetch_epoch_fencing
    }

    pub(crate) fn fetch_epoch(&self, tp: &Tp) -> Option<LeaderEpoch> {
        if self.bugs.no_fetch_epoch_fencing {
            return None;
        }
        self.replicas.get(tp).map(|r| r.epoch())
    }

    /// Truncation step of a new follower (KIP-101), then fetching.
    pub(crate) fn start_follower(&mut self, tp: &Tp, cx: &mut Ctx<'_>) {
        let current = self.fetch_epoch(tp);
        let corr = self.next_corr;
        let no_epoch_truncation = self.bugs.no_epoch_truncation;
        let r = self.replicas.get_mut(tp).expect("replica");
        let Role::Follower(fs) = &mut r.role else {
            return;
        };
        match r.log.latest_epoch() {
            Some(latest) if !no_epoch_truncation => {
                self.next_corr += 1;
                fs.asked_epoch = latest;
                fs.inflight = Some(corr);
                let leader = fs.leader;
                cx.send(
                    leader,
                    Msg::Kafka(KafkaMsg::OffsetsForLeaderEpoch {
                        corr,
                        tp: tp.clone(),
                        current_leader_epoch: current,
                        epoch: latest,
                    }),
                );
            }
            _ => {
                // No epochs (or the pre-KIP-101 protocol): truncate to the HW.
                let hw = r.log.hw();
                fs.truncating = false;
                let mut out = Vec::new();
                let leo_before = r.log.leo();
                r.log.truncate_to(hw, &mut out);
                if r.log.leo() < leo_before {
                    cx.event(EventKind::Truncation, cx.me);
                }
                self.disk_all(out, cx);
                self.send_fetch(tp, cx);
            }
        }
    }

    pub(crate) fn send_fetch(&mut self, tp: &Tp, cx: &mut Ctx<'_>) {
        let current = self.fetch_epoch(tp);
        let on_fetch = self.truncates_on_fetch();
        let me = self.id;
        let corr = self.next_corr;
        self.next_corr += 1;
        let r = self.replicas.get_mut(tp).expect("replica");
        let Role::Follower(fs) = &mut r.role else {
            return;
        };
        fs.inflight = Some(corr);
        let last_fetched_epoch = if on_fetch { r.log.latest_epoch() } else { None };
        cx.send(
            fs.leader,
            Msg::Kafka(KafkaMsg::Fetch {
                corr,
                replica: Some(me),
                tp: tp.clone(),
                current_leader_epoch: current,
                offset: r.log.leo(),
                last_fetched_epoch,
                log_start: r.log.log_start(),
            }),
        );
    }

    fn retry_later(&mut self, tp: &Tp, cx: &mut Ctx<'_>) {
        let t = self.fetch_timer(tp);
        cx.set_timer_ms(t, self.cfg.replica_fetch_wait_ms.max(1));
    }

    pub(crate) fn on_fetch_timer(&mut self, tp: Tp, cx: &mut Ctx<'_>) {
        let Some(r) = self.replicas.get(&tp) else {
            return;
        };
        if let Role::Follower(fs) = &r.role {
            if fs.inflight.is_none() && !fs.awaiting_sync {
                if fs.truncating {
                    self.start_follower(&tp, cx);
                } else {
                    self.send_fetch(&tp, cx);
                }
            }
        }
    }

    pub(crate) fn on_conn_lost(&mut self, peer: NodeId, cx: &mut Ctx<'_>) {
        let mut retry = Vec::new();
        for (tp, r) in self.replicas.iter_mut() {
            if let Role::Follower(fs) = &mut r.role {
                if fs.leader == peer && fs.inflight.take().is_some() {
                    retry.push(tp.clone());
                }
            }
        }
        for tp in retry {
            self.retry_later(&tp, cx);
        }
    }

    /// The follower whose request `corr` to `from` is outstanding.
    fn follower_of(&mut self, from: NodeId, corr: u64) -> Option<Tp> {
        self.replicas
            .iter_mut()
            .find_map(|(tp, r)| match &mut r.role {
                Role::Follower(fs) if fs.leader == from && fs.inflight == Some(corr) => {
                    fs.inflight = None;
                    Some(tp.clone())
                }
                _ => None,
            })
    }

    pub(crate) fn on_offsets_for_epoch_resp(
        &mut self,
        from: NodeId,
        corr: u64,
        result: Result<Option<(LeaderEpoch, u64)>, KafkaError>,
        cx: &mut Ctx<'_>,
    ) {
        let Some(tp) = self.follower_of(from, corr) else {
            return;
        };
        let answer = match result {
            Err(_) => {
                self.retry_later(&tp, cx);
                return;
            }
            Ok(a) => a,
        };
        let single_round = self.bugs.single_round_truncation;
        let r = self.replicas.get_mut(&tp).expect("replica");
        let Role::Follower(fs) = &mut r.role else {
            return;
        };
        let step = truncation::step(
            r.log.epochs(),
            r.log.leo(),
            r.log.hw(),
            answer,
            single_round,
        );
        fs.truncating = !step.completed;
        let mut out = Vec::new();
        let leo_before = r.log.leo();
        r.log.truncate_to(step.offset, &mut out);
        if r.log.leo() < leo_before {
            cx.event(EventKind::Truncation, cx.me);
        }
        self.disk_all(out, cx);
        if step.completed {
            self.send_fetch(&tp, cx);
        } else {
            // KIP-279: ask again about the epoch we now end with.
            self.start_follower(&tp, cx);
        }
    }

    pub(crate) fn on_fetch_resp(
        &mut self,
        from: NodeId,
        corr: u64,
        result: Result<FetchData, KafkaError>,
        cx: &mut Ctx<'_>,
    ) {
        let Some(tp) = self.follower_of(from, corr) else {
            return;
        };
        let now = cx.now;
        let r = self.replicas.get_mut(&tp).expect("replica");
        match result {
            Ok(FetchData {
                diverging: Some(answer),
                ..
            }) => {
                // The leader's log does not continue our last epoch: cut
                // where the logs agree (or to the next point to ask about)
                // and fetch again with the epoch we then end with.
                let step =
                    truncation::step(r.log.epochs(), r.log.leo(), r.log.hw(), Some(answer), false);
                let mut out = Vec::new();
                let leo_before = r.log.leo();
                r.log.truncate_to(step.offset, &mut out);
                if r.log.leo() < leo_before {
                    cx.event(EventKind::Truncation, cx.me);
                }
                self.disk_all(out, cx);
                self.send_fetch(&tp, cx);
            }
            Ok(data) if data.log_start > r.log.leo() => {
                // Kafka's `fetchOffsetAndTruncate`: the leader's log starts
                // past our end (retention or DeleteRecords went on without
                // us), so start an empty log at its start.
                let mut out = Vec::new();
                r.log.truncate_fully_and_start_at(data.log_start, &mut out);
                self.disk_all(out, cx);
                self.send_fetch(&tp, cx);
            }
            Ok(data) => {
                let mut out = Vec::new();
                let mut appended = false;
                for b in data.batches {
                    if b.base_offset < r.log.leo() && b.next_offset() > r.log.leo() {
                        // Our last batch ends inside one of the leader's
                        // (we truncated to a point that is not one of its
                        // batch boundaries): take the leader's whole batch.
                        let leo_before = r.log.leo();
                        r.log.truncate_to(b.base_offset, &mut out);
                        if r.log.leo() < leo_before {
                            cx.event(EventKind::Truncation, cx.me);
                        }
                    }
                    if b.base_offset == r.log.leo() {
                        r.log.append(b, now, &mut out);
                        appended = true;
                    } else if b.base_offset > r.log.leo() {
                        break;
                    }
                }
                // Kafka's follower takes the leader's value, capped at its
                // own log end: it may go back (a new leader's high
                // watermark can start below the old one's, KIP-207).
                r.log.set_hw(data.high_watermark);
                // The follower's start follows the leader's
                // (`maybeIncrementLogStartOffset`), within its own high
                // watermark.
                r.log.increment_log_start(data.log_start, &mut out);
                let wait_for_disk = appended && r.log.sync_pending();
                if let (true, Role::Follower(fs)) = (wait_for_disk, &mut r.role) {
                    fs.awaiting_sync = true;
                }
                self.disk_all(out, cx);
                if wait_for_disk {
                    // The next fetch goes out once the flush is on disk.
                } else if appended {
                    self.send_fetch(&tp, cx);
                } else {
                    self.retry_later(&tp, cx);
                }
            }
            Err(KafkaError::OffsetOutOfRange) => {
                if let Role::Follower(fs) = &mut r.role {
                    fs.truncating = true;
                }
                self.retry_later(&tp, cx);
            }
            Err(_) => self.retry_later(&tp, cx),
        }
    }
}
