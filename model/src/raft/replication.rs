//! Pull replication: followers and observers fetch from the leader, which
//! learns the voters' durable log ends from their fetches, answers a
//! fetcher whose last fetched epoch its log does not continue with the
//! diverging epoch, holds fetches with nothing new (long poll), and moves
//! the high watermark to what a majority of voters holds durably, once a
//! record of its own epoch is among it.

use crate::msg::Msg;
use crate::node::{Ctx, NodeId};
use crate::raft::core::{ParkedFetch, RaftCore, RaftRole, T_FETCH};
use crate::raft::types::{Epoch, RaftError, RaftFetchData, RaftMsg};

impl RaftCore {
    /// Sends the next fetch (to the leader, or for an observer that knows
    /// none, to a voter picked in turn), unless one is in flight or the
    /// log is still being flushed.
    pub(crate) fn send_fetch(&mut self, cx: &mut Ctx<'_>) {
        let (last_epoch, offset) = self.last_position();
        let epoch = self.quorum.epoch;
        let voters = self.cfg.voters.clone();
        let corr = self.next_corr;
        let me = self.id;
        let RaftRole::Follower(f) = &mut self.role else {
            return;
        };
        if f.inflight.is_some() || f.awaiting_flush.is_some() {
            return;
        }
        let to = match f.leader {
            Some(l) => l,
            None => {
                let others: Vec<_> = voters.iter().copied().filter(|&v| v != me).collect();
                if others.is_empty() {
                    return;
                }
                others[corr as usize % others.len()]
            }
        };
        self.next_corr += 1;
        f.inflight = Some((corr, to, cx.now));
        cx.send(
            to,
            Msg::Raft(RaftMsg::Fetch {
                corr,
                epoch,
                replica: me,
                offset,
                last_fetched_epoch: last_epoch,
            }),
        );
    }

    fn fetch_resp(&self, corr: u64, result: Result<RaftFetchData, RaftError>) -> RaftMsg {
        RaftMsg::FetchResp {
            corr,
            epoch: self.quorum.epoch,
            leader: self.leader(),
            result,
        }
    }

    /// A fetch from a follower or observer.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_fetch(
        &mut self,
        from: NodeId,
        corr: u64,
        epoch: Epoch,
        replica: NodeId,
        offset: u64,
        last_fetched_epoch: Epoch,
        cx: &mut Ctx<'_>,
    ) {
        if epoch > self.quorum.epoch && self.cfg.voters.contains(&replica) {
            // A voter in a newer epoch: ours is over.
            self.observe_epoch(epoch, None, cx);
        }
        let err = if epoch < self.quorum.epoch {
            Some(RaftError::FencedLeaderEpoch)
        } else if epoch > self.quorum.epoch {
            Some(RaftError::UnknownLeaderEpoch)
        } else if !self.is_leader() {
            Some(RaftError::NotLeader)
        } else {
            None
        };
        if let Some(e) = err {
            // An observer with an older epoch learns the leader from the
            // error's epoch and leader.
            cx.send(from, Msg::Raft(self.fetch_resp(corr, Err(e))));
            return;
        }
        let leo = self.log.leo();
        if offset < self.log.log_start() && self.snapshot.is_some() {
            self.answer_snapshot_id(from, corr, cx);
            return;
        }
        let diverging = if self.bugs.no_diverging_epoch || (offset == 0 && last_fetched_epoch == 0)
        {
            None
        } else {
            match self.log.epochs().end_offset_for(last_fetched_epoch, leo) {
                Some((e, end)) if e == last_fetched_epoch && offset <= end => None,
                Some(d) => Some(d),
                None => Some((0, self.log.log_start())),
            }
        };
        // The fetcher's last epoch is older than any this log still knows
        // (its history went into the snapshot): where the fetcher diverged
        // cannot be told from here, so it takes the snapshot, which holds
        // every committed record below the log start (KIP-630).
        let oldest = self.log.epochs().entries().first().map(|e| e.0);
        if let (Some(s), Some(o)) = (&self.snapshot, oldest) {
            let at_snapshot = last_fetched_epoch == s.epoch && offset == s.end;
            if last_fetched_epoch < o && !at_snapshot && !self.bugs.no_diverging_epoch {
                self.answer_snapshot_id(from, corr, cx);
                return;
            }
        }
        let now = cx.now;
        if let RaftRole::Leader(l) = &mut self.role {
            if let Some(p) = l.voters.get_mut(&replica) {
                p.last_fetch = Some(now);
                if diverging.is_none() {
                    p.end = offset;
                }
            }
        }
        let hw_before = self.log.hw();
        self.maybe_advance_hw(cx);
        let offset = offset.min(self.log.leo());
        if diverging.is_none() && offset >= self.log.leo() && self.log.hw() == hw_before {
            // Nothing new: hold it (long poll) until an append, a high
            // watermark move or the wait ends.
            let deadline = now.plus_ms(self.cfg.fetch_max_wait_ms);
            if let RaftRole::Leader(l) = &mut self.role {
                l.parked.retain(|p| p.from != from);
                l.parked.push(ParkedFetch {
                    from,
                    corr,
                    offset,
                    deadline,
                });
            }
            return;
        }
        self.answer_fetch(from, corr, offset, diverging, cx);
    }

    /// Answers a fetch with the id of the leader's snapshot: the fetcher
    /// takes the snapshot (FetchSnapshot) before it fetches on.
    fn answer_snapshot_id(&self, to: NodeId, corr: u64, cx: &mut Ctx<'_>) {
        let Some(s) = &self.snapshot else {
            return;
        };
        let data = RaftFetchData {
            batches: Vec::new(),
            high_watermark: self.log.hw(),
            diverging: None,
            snapshot: Some((s.end, s.epoch)),
        };
        cx.send(to, Msg::Raft(self.fetch_resp(corr, Ok(data))));
    }

    fn answer_fetch(
        &mut self,
        to: NodeId,
        corr: u64,
        offset: u64,
        diverging: Option<(Epoch, u64)>,
        cx: &mut Ctx<'_>,
    ) {
        let mut batches = if diverging.is_some() {
            Vec::new()
        } else {
            self.log
                .read(offset, self.log.leo(), self.cfg.max_fetch_batches)
        };
        // BUGGIFY: a fetch answered with less than there is (a small
        // max bytes).
        if batches.len() > 1 && cx.buggify("raft.fetch.one-batch") {
            batches.truncate(1);
        }
        let data = RaftFetchData {
            batches,
            high_watermark: self.log.hw(),
            diverging,
            snapshot: None,
        };
        cx.send(to, Msg::Raft(self.fetch_resp(corr, Ok(data))));
    }

    /// Answers every parked fetch (something changed).
    pub(crate) fn answer_parked(&mut self, cx: &mut Ctx<'_>) {
        let parked = match &mut self.role {
            RaftRole::Leader(l) => std::mem::take(&mut l.parked),
            _ => return,
        };
        for p in parked {
            self.answer_fetch(p.from, p.corr, p.offset, None, cx);
        }
    }

    /// Answers the parked fetches whose wait is over.
    pub(crate) fn expire_parked(&mut self, cx: &mut Ctx<'_>) {
        let now = cx.now;
        let due = match &mut self.role {
            RaftRole::Leader(l) => {
                let (due, keep) = std::mem::take(&mut l.parked)
                    .into_iter()
                    .partition(|p| now >= p.deadline);
                l.parked = keep;
                due
            }
            _ => return,
        };
        let due: Vec<ParkedFetch> = due;
        for p in due {
            self.answer_fetch(p.from, p.corr, p.offset, None, cx);
        }
    }

    /// Moves the leader's high watermark to the largest offset a majority
    /// of voters holds durably (the leader counting its fsynced end), once
    /// that is past the start of its own epoch; never back.
    pub(crate) fn maybe_advance_hw(&mut self, cx: &mut Ctx<'_>) {
        let own = if self.bugs.hw_counts_unflushed {
            self.log.leo()
        } else {
            self.log.synced()
        };
        let RaftRole::Leader(l) = &self.role else {
            return;
        };
        let mut ends: Vec<u64> = l.voters.values().map(|p| p.end).collect();
        ends.push(own);
        ends.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&candidate) = ends.get(self.majority() - 1) else {
            return;
        };
        if candidate > l.epoch_start && candidate > self.log.hw() {
            self.log.set_hw(candidate);
            self.answer_parked(cx);
        }
    }

    /// An fsync of the log completed: a leader may commit more, a follower
    /// fetches on.
    pub(crate) fn on_log_synced(&mut self, cx: &mut Ctx<'_>) {
        let synced = self.log.synced();
        match &mut self.role {
            RaftRole::Leader(_) => self.maybe_advance_hw(cx),
            RaftRole::Follower(f) if f.awaiting_flush.is_some_and(|end| synced >= end) => {
                f.awaiting_flush = None;
                self.send_fetch(cx);
            }
            _ => {}
        }
    }

    /// The answer to our fetch.
    pub(crate) fn on_fetch_resp(
        &mut self,
        from: NodeId,
        corr: u64,
        epoch: Epoch,
        leader: Option<NodeId>,
        result: Result<RaftFetchData, RaftError>,
        cx: &mut Ctx<'_>,
    ) {
        let RaftRole::Follower(f) = &mut self.role else {
            if epoch > self.quorum.epoch {
                self.observe_epoch(epoch, leader, cx);
            }
            return;
        };
        if f.inflight.is_none_or(|(c, _, _)| c != corr) {
            return;
        }
        f.inflight = None;
        if epoch > self.quorum.epoch || (epoch == self.quorum.epoch && f.leader.is_none()) {
            if self.voter {
                self.observe_epoch(epoch, leader, cx);
            } else {
                // An observer persists nothing: it just follows.
                self.quorum.epoch = epoch;
                self.quorum.leader = leader;
                f.leader = leader.filter(|&l| l != self.id);
                if result.is_err() || f.leader != Some(from) {
                    self.send_fetch(cx);
                    return;
                }
            }
        }
        let RaftRole::Follower(f) = &mut self.role else {
            return;
        };
        let data = match result {
            Ok(d) if f.leader == Some(from) && epoch == self.quorum.epoch => d,
            _ => {
                cx.set_timer_ms(self.cfg.timer_base + T_FETCH, self.cfg.retry_backoff_ms);
                return;
            }
        };
        f.last_contact = Some(cx.now);
        f.deadline = cx.now.plus_ms(self.cfg.fetch_timeout_ms);
        if data.snapshot.is_some() {
            self.fetch_snapshot(from, cx);
            return;
        }
        if let Some((e, end)) = data.diverging {
            self.truncate_to_end_offset(e, end, cx);
            self.send_fetch(cx);
            return;
        }
        let mut out = Vec::new();
        let mut appended = false;
        for b in data.batches {
            if b.base_offset != self.log.leo() {
                continue;
            }
            self.log.append(b, cx.now, &mut out);
            appended = true;
        }
        let hw = data.high_watermark.min(self.log.leo());
        if hw > self.log.hw() {
            self.log.set_hw(hw);
        }
        if appended {
            self.log.flush(&mut out);
            let leo = self.log.leo();
            if let RaftRole::Follower(f) = &mut self.role {
                f.awaiting_flush = Some(leo);
            }
            self.issue(out, cx);
        } else {
            self.issue(out, cx);
            self.send_fetch(cx);
        }
    }

    /// Truncates to where the leader's `epoch` ends, as Kafka's
    /// `truncateToEndOffset` does.
    fn truncate_to_end_offset(&mut self, epoch: Epoch, end: u64, cx: &mut Ctx<'_>) {
        let leo = self.log.leo();
        let to = if epoch == 0 {
            end.min(leo)
        } else {
            match self.log.epochs().end_offset_for(epoch, leo) {
                Some((e, local)) if e == epoch => local.min(end),
                Some((_, local)) => local,
                None => self.log.log_start(),
            }
        };
        tracing::info!(
            "raft: truncating from {leo} to {to} (diverging epoch {epoch} ends at {end})"
        );
        let mut out = Vec::new();
        self.log.truncate_to(to, &mut out);
        self.issue(out, cx);
    }
}
