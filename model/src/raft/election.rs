//! Elections: pre-vote (KIP-996), vote with the log up-to-date check,
//! BeginQuorumEpoch, EndQuorumEpoch, and the leader's check-quorum.

use std::collections::{BTreeMap, BTreeSet};

use crate::msg::Msg;
use crate::node::{Ctx, NodeId};
use crate::probe::EventKind;
use crate::raft::core::{LeaderState, RaftCore, RaftRole, VoterProgress, T_LEADER};
use crate::raft::types::{Epoch, RaftMsg};

impl RaftCore {
    /// The epoch of the last record and the log end: what a vote compares.
    pub(crate) fn last_position(&self) -> (Epoch, u64) {
        let snapshot_epoch = self.snapshot.as_ref().map_or(0, |s| s.epoch);
        (
            self.log
                .batches()
                .last()
                .map(|b| b.epoch)
                .unwrap_or(snapshot_epoch),
            self.log.leo(),
        )
    }

    /// Whether a recent fetch answer from the leader makes this voter
    /// refuse pre-votes (KIP-996): it still has a leader.
    fn has_live_leader(&self, cx: &Ctx<'_>) -> bool {
        match &self.role {
            RaftRole::Leader(_) => true,
            RaftRole::Follower(f) => f
                .last_contact
                .is_some_and(|t| cx.now.ms_since(t) < self.cfg.fetch_timeout_ms),
            _ => false,
        }
    }

    /// Moves to a newer epoch (or learns the current epoch's leader):
    /// follower of `leader`, or unattached when none is known. Persisted.
    pub(crate) fn observe_epoch(&mut self, epoch: Epoch, leader: Option<NodeId>, cx: &mut Ctx<'_>) {
        if epoch < self.quorum.epoch {
            return;
        }
        let leader = leader.filter(|&l| l != self.id);
        if epoch == self.quorum.epoch {
            let knows = matches!(self.role, RaftRole::Leader(_) | RaftRole::Resigned)
                || matches!(&self.role, RaftRole::Follower(f) if f.leader.is_some());
            match leader {
                Some(l) if !knows => self.become_follower(epoch, l, cx),
                _ => {}
            }
            return;
        }
        match leader {
            Some(l) => self.become_follower(epoch, l, cx),
            None => {
                tracing::info!("raft: epoch {epoch} seen, no leader known");
                self.quorum.epoch = epoch;
                self.quorum.voted_for = None;
                self.quorum.leader = None;
                self.persist(true, cx);
                if self.voter {
                    self.role = RaftRole::Unattached;
                    self.arm_election(cx);
                } else {
                    self.role = RaftRole::Follower(self.follower_state(None, cx.now));
                    self.arm_fetch_timeout(cx);
                    self.send_fetch(cx);
                }
            }
        }
    }

    /// Follows `leader` in `epoch` (persisted) and starts fetching.
    pub(crate) fn become_follower(&mut self, epoch: Epoch, leader: NodeId, cx: &mut Ctx<'_>) {
        tracing::info!("raft: following {leader} in epoch {epoch}");
        if epoch > self.quorum.epoch {
            self.quorum.voted_for = None;
        }
        self.quorum.epoch = epoch;
        self.quorum.leader = Some(leader);
        self.persist(true, cx);
        self.role = RaftRole::Follower(self.follower_state(Some(leader), cx.now));
        self.election_deadline = None;
        self.arm_fetch_timeout(cx);
        self.send_fetch(cx);
    }

    /// A vote or pre-vote request.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_vote(
        &mut self,
        from: NodeId,
        candidate: NodeId,
        epoch: Epoch,
        last_epoch: Epoch,
        last_offset: u64,
        pre_vote: bool,
        cx: &mut Ctx<'_>,
    ) {
        let up_to_date =
            self.bugs.vote_ignores_log || (last_epoch, last_offset) >= self.last_position();
        let known = self.cfg.voters.contains(&candidate);
        if !self.voter || !known || epoch < self.quorum.epoch {
            self.answer_vote(from, false, pre_vote, cx);
            return;
        }
        if pre_vote {
            // Changes nothing here; granted only to a candidate whose log
            // is at least as complete, and only without a live leader.
            let granted = up_to_date && !self.has_live_leader(cx) && epoch > self.quorum.epoch;
            self.answer_vote(from, granted, true, cx);
            return;
        }
        if epoch > self.quorum.epoch {
            self.observe_epoch(epoch, None, cx);
        }
        let free = match self.quorum.voted_for {
            Some(v) => v == candidate,
            None => self.quorum.leader.is_none(),
        };
        let idle = matches!(
            self.role,
            RaftRole::Unattached | RaftRole::Prospective { .. }
        );
        if !(free && up_to_date && (idle || self.quorum.voted_for == Some(candidate))) {
            self.answer_vote(from, false, false, cx);
            return;
        }
        if self.quorum.voted_for != Some(candidate) {
            tracing::info!("raft: voting for {candidate} in epoch {epoch}");
            cx.event(EventKind::RaftVoteGranted, candidate);
            self.quorum.voted_for = Some(candidate);
            self.role = RaftRole::Unattached;
            if self.bugs.votedfor_not_persisted {
                // The planted bug: the vote is written but not fsynced,
                // and answered at once.
                self.persist(false, cx);
                cx.send(from, Msg::Raft(self.vote_resp(true, false)));
                self.arm_election(cx);
                return;
            }
            self.persist(true, cx);
        }
        self.arm_election(cx);
        self.answer_vote(from, true, false, cx);
    }

    fn vote_resp(&self, granted: bool, pre_vote: bool) -> RaftMsg {
        RaftMsg::VoteResp {
            epoch: self.quorum.epoch,
            leader: self.leader(),
            granted,
            pre_vote,
        }
    }

    fn answer_vote(&mut self, to: NodeId, granted: bool, pre_vote: bool, cx: &mut Ctx<'_>) {
        let m = self.vote_resp(granted, pre_vote);
        self.send_after_persist(to, m, cx);
    }

    /// An answer to our (pre-)vote.
    pub(crate) fn on_vote_resp(
        &mut self,
        from: NodeId,
        epoch: Epoch,
        leader: Option<NodeId>,
        granted: bool,
        pre_vote: bool,
        cx: &mut Ctx<'_>,
    ) {
        if epoch > self.quorum.epoch {
            self.observe_epoch(epoch, leader, cx);
            return;
        }
        let majority = self.majority();
        let voters = self.cfg.voters.len();
        match &mut self.role {
            RaftRole::Prospective {
                granted: g,
                rejected,
            } if pre_vote => {
                if granted {
                    g.insert(from);
                } else {
                    rejected.insert(from);
                }
                if g.len() >= majority {
                    self.become_candidate(cx);
                } else if rejected.len() > voters - majority {
                    // Lost: follow a leader someone knows, else wait.
                    match leader {
                        Some(l) if epoch == self.quorum.epoch => self.become_follower(epoch, l, cx),
                        _ => {}
                    }
                }
            }
            RaftRole::Candidate {
                granted: g,
                rejected,
            } if !pre_vote && epoch == self.quorum.epoch => {
                if granted {
                    g.insert(from);
                } else {
                    rejected.insert(from);
                }
                if g.len() >= majority {
                    self.become_leader(cx);
                }
            }
            _ => {}
        }
    }

    /// Starts a pre-vote round (or, as a lone voter, campaigns at once).
    pub(crate) fn become_prospective(&mut self, cx: &mut Ctx<'_>) {
        if !self.voter {
            return;
        }
        if self.cfg.voters.len() == 1 {
            self.become_candidate(cx);
            return;
        }
        let (last_epoch, last_offset) = self.last_position();
        self.role = RaftRole::Prospective {
            granted: BTreeSet::from([self.id]),
            rejected: BTreeSet::new(),
        };
        let epoch = self.quorum.epoch + 1;
        for v in self.cfg.voters.clone() {
            if v != self.id {
                cx.send(
                    v,
                    Msg::Raft(RaftMsg::Vote {
                        epoch,
                        candidate: self.id,
                        last_epoch,
                        last_offset,
                        pre_vote: true,
                    }),
                );
            }
        }
        self.arm_election(cx);
    }

    /// Campaigns in the next epoch, voting for itself (persisted before
    /// the requests go out).
    fn become_candidate(&mut self, cx: &mut Ctx<'_>) {
        self.quorum.epoch += 1;
        self.quorum.voted_for = Some(self.id);
        self.quorum.leader = None;
        tracing::info!("raft: candidate in epoch {}", self.quorum.epoch);
        self.persist(true, cx);
        self.role = RaftRole::Candidate {
            granted: BTreeSet::from([self.id]),
            rejected: BTreeSet::new(),
        };
        if self.majority() == 1 {
            self.become_leader(cx);
            return;
        }
        self.resend_votes(cx);
        self.arm_election(cx);
    }

    /// A candidate (re)sends its vote request to every voter that has not
    /// answered, and again after `retry_backoff_ms` (Kafka's candidate
    /// retries unanswered VoteRequests until its election times out).
    pub(crate) fn resend_votes(&mut self, cx: &mut Ctx<'_>) {
        let RaftRole::Candidate { granted, rejected } = &self.role else {
            return;
        };
        let waiting: Vec<NodeId> = self
            .cfg
            .voters
            .iter()
            .copied()
            .filter(|v| *v != self.id && !granted.contains(v) && !rejected.contains(v))
            .collect();
        let (last_epoch, last_offset) = self.last_position();
        for v in waiting {
            let m = RaftMsg::Vote {
                epoch: self.quorum.epoch,
                candidate: self.id,
                last_epoch,
                last_offset,
                pre_vote: false,
            };
            self.send_after_persist(v, m, cx);
        }
        cx.set_timer_ms(
            self.cfg.timer_base + crate::raft::core::T_FETCH,
            self.cfg.retry_backoff_ms,
        );
    }

    /// Takes the epoch: persists it, writes the LeaderChange record and
    /// announces itself with BeginQuorumEpoch.
    fn become_leader(&mut self, cx: &mut Ctx<'_>) {
        let epoch = self.quorum.epoch;
        tracing::info!(
            "raft: leader of epoch {epoch} from offset {}",
            self.log.leo()
        );
        self.quorum.leader = Some(self.id);
        cx.event(EventKind::RaftLeaderElected, self.id);
        self.persist(true, cx);
        let voters: BTreeMap<NodeId, VoterProgress> = self
            .cfg
            .voters
            .iter()
            .filter(|&&v| v != self.id)
            .map(|&v| {
                (
                    v,
                    VoterProgress {
                        end: 0,
                        last_fetch: None,
                    },
                )
            })
            .collect();
        let epoch_start = self.log.leo();
        self.role = RaftRole::Leader(LeaderState {
            epoch_start,
            voters,
            parked: Vec::new(),
            since: cx.now,
        });
        self.election_deadline = None;
        cx.cancel_timer(self.cfg.timer_base + crate::raft::core::T_ELECTION);
        let v = self.leader_change_value();
        self.append_local(vec![v], cx);
        for v in self.cfg.voters.clone() {
            if v != self.id {
                let m = RaftMsg::BeginQuorumEpoch {
                    epoch,
                    leader: self.id,
                };
                self.send_after_persist(v, m, cx);
            }
        }
        self.maybe_advance_hw(cx);
        cx.set_timer_ms(self.cfg.timer_base + T_LEADER, self.check_quorum_every_ms());
    }

    /// How often the leader checks its quorum and its parked fetches.
    pub(crate) fn check_quorum_every_ms(&self) -> u64 {
        (self
            .cfg
            .fetch_max_wait_ms
            .min(self.cfg.fetch_timeout_ms / 2))
        .max(1)
    }

    /// A new leader's announcement.
    pub(crate) fn on_begin_quorum_epoch(
        &mut self,
        from: NodeId,
        epoch: Epoch,
        leader: NodeId,
        cx: &mut Ctx<'_>,
    ) {
        // Kafka answers it; the leader needs nothing from the answer.
        let _ = from;
        if epoch >= self.quorum.epoch {
            self.observe_epoch(epoch, Some(leader), cx);
        }
    }

    /// The leader steps down gracefully: a successor campaigns soon, the
    /// first named at once, the others after a back-off by their place.
    pub(crate) fn on_end_quorum_epoch(
        &mut self,
        epoch: Epoch,
        leader: NodeId,
        successors: &[NodeId],
        cx: &mut Ctx<'_>,
    ) {
        if epoch != self.quorum.epoch || !self.voter {
            return;
        }
        let RaftRole::Follower(f) = &mut self.role else {
            return;
        };
        if f.leader != Some(leader) {
            return;
        }
        let place = successors
            .iter()
            .position(|&s| s == self.id)
            .unwrap_or(successors.len());
        let delay = if place == 0 {
            1
        } else {
            (self.cfg.election_backoff_max_ms * place as u64 / successors.len().max(1) as u64)
                .max(1)
        };
        f.last_contact = None;
        f.deadline = cx.now.plus_ms(delay);
        self.arm_fetch_timeout(cx);
    }

    /// The election timer (or a follower's fetch timeout) fired.
    pub(crate) fn on_election_timer(&mut self, cx: &mut Ctx<'_>) {
        if let RaftRole::Follower(f) = &mut self.role {
            if cx.now < f.deadline {
                self.arm_fetch_timeout(cx);
                return;
            }
            if !self.voter {
                // An observer looks for the leader again.
                f.leader = None;
                f.inflight = None;
                f.deadline = cx.now.plus_ms(self.cfg.fetch_timeout_ms);
                self.arm_fetch_timeout(cx);
                self.send_fetch(cx);
                return;
            }
            tracing::info!("raft: fetch timeout in epoch {}", self.quorum.epoch);
            self.become_prospective(cx);
            return;
        }
        let Some(d) = self.election_deadline else {
            return;
        };
        if cx.now < d {
            let left = d.ms_since(cx.now).max(1);
            cx.set_timer_ms(self.cfg.timer_base + crate::raft::core::T_ELECTION, left);
            return;
        }
        match self.role {
            RaftRole::Leader(_) => {}
            _ => self.become_prospective(cx),
        }
    }

    /// The leader's periodic duty: resign without a majority fetching
    /// (check-quorum), answer parked fetches whose wait is over.
    pub(crate) fn on_leader_timer(&mut self, cx: &mut Ctx<'_>) {
        let timeout = self.cfg.fetch_timeout_ms;
        let majority = self.majority();
        let RaftRole::Leader(l) = &self.role else {
            return;
        };
        let live = 1 + l
            .voters
            .values()
            .filter(|p| p.last_fetch.is_some_and(|t| cx.now.ms_since(t) < timeout))
            .count();
        if live < majority && cx.now.ms_since(l.since) >= timeout {
            tracing::info!(
                "raft: check-quorum failed in epoch {}: resigning",
                self.quorum.epoch
            );
            self.shutdown(cx);
            self.arm_election(cx);
            return;
        }
        self.expire_parked(cx);
        cx.set_timer_ms(self.cfg.timer_base + T_LEADER, self.check_quorum_every_ms());
    }
}
