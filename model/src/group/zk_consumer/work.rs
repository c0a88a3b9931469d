//! The workload's calls into the ZooKeeper-era consumer: one `Poll` or
//! `Commit` at a time (later ones queue), each waiting up to
//! `request_timeout_ms` for a rebalance in progress; a poll fetches once
//! through the embedded Kafka consumer.

use super::{CommitKind, ZkConsumer, TIMER_KC_BASE, TIMER_REQ};
use crate::group::types::{
    CommitOutcome, CommitRecord, GroupError, GroupEvents, GroupReply, GroupRequest,
};
use crate::kafka::{KafkaReply, KafkaRequest, Tp};
use crate::msg::{ClientReply, ClientRequest};
use crate::node::{Ctx, Input, ReqId};

/// Where the current workload request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    /// Not started (waiting for a rebalance, or about to run).
    Waiting,
    /// The auto-commit of a poll is in ZooKeeper.
    AutoCommit,
    /// The fetch of a poll is with the Kafka consumer.
    Fetching,
    /// The commit is in ZooKeeper.
    Committing,
}

/// The workload request being served.
#[derive(Clone, Debug)]
pub(super) struct Work {
    pub(super) id: ReqId,
    pub(super) req: GroupRequest,
    pub(super) stage: Stage,
    /// Its wait for a rebalance timed out.
    pub(super) deadline_passed: bool,
    /// The poll's auto-commit is done.
    pub(super) auto_done: bool,
    /// Its deadline timer is armed.
    pub(super) timer_armed: bool,
}

impl ZkConsumer {
    fn polled(&mut self, records: Vec<(Tp, u64, Vec<u8>)>) -> GroupReply {
        GroupReply::Polled {
            member: self.consumer_id.clone(),
            generation: self.generation,
            owned: self.owned(),
            records,
            events: std::mem::take(&mut self.events),
        }
    }

    pub(super) fn finish_work(&mut self, reply: GroupReply, cx: &mut Ctx<'_>) {
        if let Some(w) = self.work.take() {
            cx.cancel_timer(TIMER_REQ);
            cx.reply(w.id, ClientReply::Group(reply));
        }
    }

    /// Serves workload requests in order, each once no rebalance is in the
    /// way (or its wait timed out).
    pub(super) fn advance_work(&mut self, cx: &mut Ctx<'_>) {
        loop {
            self.maybe_start_rebalance(cx);
            if self.work.is_none() {
                let Some((id, req)) = self.queued.pop_front() else {
                    return;
                };
                self.work = Some(Work {
                    id,
                    req,
                    stage: Stage::Waiting,
                    deadline_passed: false,
                    auto_done: false,
                    timer_armed: false,
                });
            }
            let w = self.work.clone().expect("work");
            if w.stage != Stage::Waiting {
                return;
            }
            if self.rebalancing() && !w.deadline_passed {
                if !w.timer_armed {
                    cx.set_timer_ms(TIMER_REQ, self.cfg.request_timeout_ms);
                    if let Some(w) = self.work.as_mut() {
                        w.timer_armed = true;
                    }
                }
                return;
            }
            match w.req {
                GroupRequest::Poll if self.rebalancing() || self.owned.is_empty() => {
                    let reply = self.polled(Vec::new());
                    self.finish_work(reply, cx);
                }
                GroupRequest::Poll => {
                    let offsets = self.positions();
                    let moved = offsets
                        .iter()
                        .any(|(tp, off)| self.last_committed.get(&tp.partition) != Some(off));
                    if self.cfg.auto_commit && !w.auto_done && moved {
                        self.set_stage(Stage::AutoCommit);
                        self.send_commit(CommitKind::Auto, offsets, cx);
                    } else {
                        self.set_stage(Stage::Fetching);
                        self.start_fetch(cx);
                    }
                }
                GroupRequest::Commit if self.rebalancing() || self.owned.is_empty() => {
                    let outcome = if self.registered_session == 0 {
                        CommitOutcome::Failed(GroupError::UnknownMemberId)
                    } else if self.rebalancing() {
                        CommitOutcome::Failed(GroupError::RebalanceInProgress)
                    } else {
                        CommitOutcome::Ok
                    };
                    let commit = CommitRecord {
                        member: self.consumer_id.clone(),
                        generation: self.generation,
                        offsets: Vec::new(),
                        outcome,
                        started: cx.now,
                    };
                    let events = GroupEvents {
                        commits: std::mem::take(&mut self.events.commits),
                        ..GroupEvents::default()
                    };
                    self.finish_work(GroupReply::Committed { commit, events }, cx);
                }
                GroupRequest::Commit => {
                    let offsets = self.positions();
                    self.set_stage(Stage::Committing);
                    self.send_commit(CommitKind::User, offsets, cx);
                }
            }
        }
    }

    fn set_stage(&mut self, stage: Stage) {
        if let Some(w) = self.work.as_mut() {
            w.stage = stage;
        }
    }

    fn start_fetch(&mut self, cx: &mut Ctx<'_>) {
        let id = self.next_kc_req;
        self.next_kc_req += 1;
        self.kc_poll = Some(id);
        self.drive_kc(
            Input::Client {
                id,
                req: ClientRequest::Kafka(KafkaRequest::Poll),
            },
            cx,
        );
    }

    pub(super) fn drive_kc(&mut self, input: Input, cx: &mut Ctx<'_>) {
        for (id, reply) in self.kc.step_embedded(input, TIMER_KC_BASE, cx) {
            if self.kc_poll != Some(id) {
                continue;
            }
            self.kc_poll = None;
            if self.fetch_dirty {
                self.set_fetching();
            }
            let (records, truncated) = match reply {
                KafkaReply::Polled { records, truncated } => (records, truncated),
                _ => (Vec::new(), Vec::new()),
            };
            let owned = &self.owned;
            let records: Vec<(Tp, u64, Vec<u8>)> = records
                .into_iter()
                .filter(|(tp, _, _)| owned.contains(&tp.partition))
                .collect();
            let resets: Vec<(Tp, u64)> = truncated
                .into_iter()
                .filter(|(tp, _)| owned.contains(&tp.partition))
                .collect();
            self.events.resets.extend(resets);
            let reply = self.polled(records);
            self.finish_work(reply, cx);
        }
    }
}
