//! [`RaftCore`]: one replica of the quorum (a voter, or an observer that
//! only fetches), embedded in a host node. The host routes to it the
//! [`RaftMsg`]s it receives, connection losses, the timers in its range
//! (`timer_base..timer_base + TIMERS`) and the disk completions of the
//! operations it issued (ids from `op_base` on), and reads the committed
//! log below [`RaftCore::high_watermark`].

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;

use crate::disk::{DiskOpId, DiskRequest, FileName};
use crate::kafka::log::{LogBugs, PartitionLog};
use crate::kafka::{Batch, LogConfig, Tp};
use crate::msg::Msg;
use crate::node::{Ctx, NodeId, TimerId};
use crate::raft::quorum_state::{QuorumState, QUORUM_STATE_FILE};
use crate::raft::types::{Epoch, RaftMsg, TAG_LEADER_CHANGE};
use crate::raft::RaftBugs;
use crate::time::SimTime;

/// The metadata log's partition.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// How many timers the core uses (from `timer_base`).
pub const TIMERS: TimerId = 3;
/// Election timeout, fetch timeout, candidate back-off.
pub(crate) const T_ELECTION: TimerId = 0;
/// The next fetch of a follower or observer.
pub(crate) const T_FETCH: TimerId = 1;
/// The leader's check-quorum and its parked fetches' deadlines.
pub(crate) const T_LEADER: TimerId = 2;

/// The quorum settings (Kafka's `controller.quorum.*`, scaled like the
/// rest of kzsim's timings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftConfig {
    /// The voters (`controller.quorum.voters`).
    pub voters: Vec<NodeId>,
    /// `quorum.election.timeout.ms`: the base of the randomised election
    /// timeout (a voter waits between it and twice it).
    pub election_timeout_ms: u64,
    /// `quorum.fetch.timeout.ms`: a follower that has not heard from its
    /// leader this long starts an election; a leader that has not been
    /// fetched from by a majority this long resigns (check-quorum).
    pub fetch_timeout_ms: u64,
    /// `quorum.election.backoff.max.ms`: the most a failed candidate waits.
    pub election_backoff_max_ms: u64,
    /// How long a leader holds a fetch that has nothing new (long poll).
    pub fetch_max_wait_ms: u64,
    /// Pause before a failed fetch is sent again.
    pub retry_backoff_ms: u64,
    /// Batches per fetch response, at most.
    pub max_fetch_batches: usize,
    /// Segment size of the metadata log.
    pub segment_bytes: u64,
    /// The host snapshots its image every this many records (0: never;
    /// Kafka's `metadata.log.max.record.bytes.between.snapshots`, counted
    /// in records).
    pub snapshot_every_records: u64,
    /// The first of the host's timer ids the core uses.
    pub timer_base: TimerId,
    /// The first of the host's disk operation ids the core uses.
    pub op_base: DiskOpId,
}

impl Default for RaftConfig {
    fn default() -> Self {
        // Kafka: election 1 s, fetch 2 s, back-off 1 s, fetch wait 500 ms,
        // against an 18 s ZooKeeper session; kzsim's Kafka runs a 600 ms
        // session, so these are Kafka's divided by about 7.
        RaftConfig {
            voters: Vec::new(),
            election_timeout_ms: 150,
            fetch_timeout_ms: 300,
            election_backoff_max_ms: 150,
            fetch_max_wait_ms: 75,
            retry_backoff_ms: 20,
            max_fetch_batches: 64,
            segment_bytes: 4 * 1024,
            snapshot_every_records: 64,
            timer_base: 0,
            op_base: 1 << 40,
        }
    }
}

/// A replica's role in its epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RaftRole {
    /// No leader known in the epoch (a vote may have been cast).
    Unattached,
    /// Asking for pre-votes (KIP-996): the epoch is not bumped yet.
    Prospective {
        /// Voters that granted (the replica itself included).
        granted: BTreeSet<NodeId>,
        /// Voters that refused.
        rejected: BTreeSet<NodeId>,
    },
    /// Campaigning in the epoch, having voted for itself.
    Candidate {
        /// Voters that granted (the replica itself included).
        granted: BTreeSet<NodeId>,
        /// Voters that refused.
        rejected: BTreeSet<NodeId>,
    },
    /// Leading the epoch.
    Leader(LeaderState),
    /// Following (or, for an observer, fetching from) the epoch's leader.
    Follower(FollowerState),
    /// A leader that stepped down (check-quorum or shutdown) and waits for
    /// the next epoch.
    Resigned,
}

/// What a voter's leader knows of another voter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoterProgress {
    /// The voter's log end as its last fetch said (durable on it).
    pub end: u64,
    /// When it last fetched in this epoch.
    pub last_fetch: Option<SimTime>,
}

/// A fetch the leader holds until there is something new.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParkedFetch {
    pub(crate) from: NodeId,
    pub(crate) corr: u64,
    pub(crate) offset: u64,
    pub(crate) deadline: SimTime,
}

/// The leader's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderState {
    /// Where the epoch starts (its LeaderChange record).
    pub epoch_start: u64,
    /// The other voters' progress.
    pub voters: BTreeMap<NodeId, VoterProgress>,
    /// Fetches held for the long poll.
    pub(crate) parked: Vec<ParkedFetch>,
    /// When the epoch began (check-quorum's grace).
    pub(crate) since: SimTime,
}

/// A follower's (or observer's) state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowerState {
    /// The leader fetched from (`None`: an observer looking for it).
    pub leader: Option<NodeId>,
    /// The fetch in flight: its correlation id, target and when sent.
    pub(crate) inflight: Option<(u64, NodeId, SimTime)>,
    /// Fetch again once the log is durable up to here.
    pub(crate) awaiting_flush: Option<u64>,
    /// When the leader last answered a fetch (`None`: not in this epoch,
    /// or it resigned); a pre-vote is refused while this is recent.
    pub(crate) last_contact: Option<SimTime>,
    /// The fetch timeout: past it, a voter campaigns.
    pub(crate) deadline: SimTime,
}

/// What a monitor reads of a replica after every step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaftView {
    /// The current epoch.
    pub epoch: Epoch,
    /// Whether it leads `epoch`.
    pub leader: bool,
    /// Its high watermark.
    pub high_watermark: u64,
    /// Its log end offset.
    pub log_end: u64,
    /// The end of what is fsynced.
    pub durable_end: u64,
    /// Whether it is a voter.
    pub voter: bool,
}

/// One replica of the quorum.
pub struct RaftCore {
    pub(crate) id: NodeId,
    pub(crate) cfg: RaftConfig,
    pub(crate) bugs: RaftBugs,
    pub(crate) voter: bool,
    pub(crate) quorum: QuorumState,
    pub(crate) role: RaftRole,
    pub(crate) log: PartitionLog,
    next_op: DiskOpId,
    /// Log fsyncs in flight: op -> the log end each covers.
    log_syncs: BTreeMap<DiskOpId, u64>,
    /// Quorum-state fsyncs in flight, in issue order.
    state_syncs: BTreeSet<DiskOpId>,
    /// Messages that wait for a quorum-state fsync (op) to complete.
    deferred: Vec<(DiskOpId, NodeId, RaftMsg)>,
    pub(crate) next_corr: u64,
    /// When the election timer of an unattached, prospective, candidate
    /// or resigned voter fires.
    pub(crate) election_deadline: Option<SimTime>,
    /// An unrecoverable start (corrupt files): the host halts.
    pub(crate) failed: Option<String>,
    /// The newest durable snapshot.
    pub(crate) snapshot: Option<crate::raft::Snapshot>,
    /// A snapshot being written: its fsync's op, the snapshot, and whether
    /// it was fetched from the leader.
    pub(crate) snapshot_writing: Option<(DiskOpId, crate::raft::Snapshot, bool)>,
    /// A snapshot the host has not taken yet (loaded at start or fetched).
    pub(crate) installed: Option<crate::raft::Snapshot>,
    started: bool,
}

impl RaftCore {
    /// A replica `id`; a voter if `cfg.voters` names it, else an observer.
    pub fn new(id: NodeId, cfg: RaftConfig, bugs: RaftBugs) -> RaftCore {
        let voter = cfg.voters.contains(&id);
        let log_cfg = LogConfig {
            segment_bytes: cfg.segment_bytes,
            ..LogConfig::default()
        };
        let (log, _) = PartitionLog::open(
            &Tp::new(METADATA_TOPIC, 0),
            &BTreeMap::new(),
            log_cfg,
            LogBugs::default(),
            false,
            &mut Vec::new(),
        )
        .expect("an empty log opens");
        RaftCore {
            id,
            next_op: cfg.op_base,
            cfg,
            bugs,
            voter,
            quorum: QuorumState::default(),
            role: RaftRole::Unattached,
            log,
            log_syncs: BTreeMap::new(),
            state_syncs: BTreeSet::new(),
            deferred: Vec::new(),
            next_corr: 1,
            election_deadline: None,
            failed: None,
            snapshot: None,
            snapshot_writing: None,
            installed: None,
            started: false,
        }
    }

    // ----- what the host reads -----

    /// The current epoch.
    pub fn epoch(&self) -> Epoch {
        self.quorum.epoch
    }

    /// The leader of the current epoch as this replica knows it.
    pub fn leader(&self) -> Option<NodeId> {
        match &self.role {
            RaftRole::Leader(_) => Some(self.id),
            RaftRole::Follower(f) => f.leader,
            _ => None,
        }
    }

    /// Whether this replica leads its epoch.
    pub fn is_leader(&self) -> bool {
        matches!(self.role, RaftRole::Leader(_))
    }

    /// Where the leader's epoch starts (its LeaderChange record).
    pub fn epoch_start(&self) -> Option<u64> {
        match &self.role {
            RaftRole::Leader(l) => Some(l.epoch_start),
            _ => None,
        }
    }

    /// The role, for checks and logs.
    pub fn role(&self) -> &RaftRole {
        &self.role
    }

    /// The high watermark: records below it are committed.
    pub fn high_watermark(&self) -> u64 {
        self.log.hw()
    }

    /// The log.
    pub fn log(&self) -> &PartitionLog {
        &self.log
    }

    /// Up to `max` batches holding offsets in `from..until`.
    pub fn read(&self, from: u64, until: u64, max: usize) -> Vec<Batch> {
        self.log.read(from, until, max)
    }

    /// Whether the start failed (a corrupt file): the host halts with it.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// What a monitor checks.
    pub fn view(&self) -> RaftView {
        RaftView {
            epoch: self.quorum.epoch,
            leader: self.is_leader(),
            high_watermark: self.log.hw(),
            log_end: self.log.leo(),
            durable_end: self.log.synced(),
            voter: self.voter,
        }
    }

    /// A short role summary.
    pub fn summary(&self) -> String {
        let r = match &self.role {
            RaftRole::Unattached => "unattached".to_string(),
            RaftRole::Prospective { .. } => "prospective".to_string(),
            RaftRole::Candidate { .. } => "candidate".to_string(),
            RaftRole::Leader(_) => "leader".to_string(),
            RaftRole::Follower(f) => match f.leader {
                Some(l) => format!("follower({l})"),
                None => "follower(?)".to_string(),
            },
            RaftRole::Resigned => "resigned".to_string(),
        };
        format!("raft {r} e{} hw={}", self.quorum.epoch, self.log.hw())
    }

    /// Whether `op` is one of the core's disk operations.
    pub fn owns_op(&self, op: DiskOpId) -> bool {
        op >= self.cfg.op_base
    }

    /// Whether `timer` is one of the core's timers.
    pub fn owns_timer(&self, timer: TimerId) -> bool {
        (self.cfg.timer_base..self.cfg.timer_base + TIMERS).contains(&timer)
    }

    /// A majority of the voters.
    pub(crate) fn majority(&self) -> usize {
        self.cfg.voters.len() / 2 + 1
    }

    // ----- lifecycle -----

    /// (Re)boots from the durable files: recovers the log and the quorum
    /// state, and takes the role the quorum state implies (a replica that
    /// led its epoch comes back resigned, as Kafka's does).
    pub fn start(&mut self, files: &BTreeMap<FileName, Vec<u8>>, cx: &mut Ctx<'_>) {
        self.started = true;
        let mut out = Vec::new();
        let log_cfg = LogConfig {
            segment_bytes: self.cfg.segment_bytes,
            ..LogConfig::default()
        };
        match PartitionLog::open(
            &Tp::new(METADATA_TOPIC, 0),
            files,
            log_cfg,
            LogBugs::default(),
            false,
            &mut out,
        ) {
            Ok((log, _)) => self.log = log,
            Err(e) => {
                self.failed = Some(format!("metadata log: {e}"));
                return;
            }
        }
        // Everything recovered was on disk at boot.
        let leo = self.log.leo();
        self.log.note_synced(leo);
        self.log.set_hw(0);
        self.snapshot = crate::raft::Snapshot::newest(files);
        self.snapshot_writing = None;
        if let Some(s) = self.snapshot.clone() {
            // The snapshot holds committed records: the log starts after it
            // at the latest.
            if s.end > self.log.leo() {
                self.log.truncate_fully_and_start_at(s.end, &mut out);
            }
            self.log.set_hw(s.end);
            self.installed = Some(s);
        }
        self.issue(out, cx);
        if self.voter {
            match QuorumState::recover(files) {
                Ok((q, cut)) => {
                    self.quorum = q;
                    if let Some(len) = cut {
                        // A torn last write: cut it off before writing on.
                        self.issue(
                            vec![DiskRequest::Truncate {
                                file: QUORUM_STATE_FILE.into(),
                                len,
                            }],
                            cx,
                        );
                    }
                }
                Err(e) => {
                    self.failed = Some(e);
                    return;
                }
            }
        }
        let q = self.quorum;
        self.role = match q.leader {
            Some(l) if l == self.id => RaftRole::Resigned,
            Some(l) => RaftRole::Follower(self.follower_state(Some(l), cx.now)),
            None => RaftRole::Unattached,
        };
        if matches!(self.role, RaftRole::Follower(_)) || !self.voter {
            if !self.voter && q.leader.is_none() {
                self.role = RaftRole::Follower(self.follower_state(None, cx.now));
            }
            self.arm_fetch_timeout(cx);
            self.send_fetch(cx);
        } else {
            self.arm_election(cx);
        }
    }

    /// A fresh follower state for `leader`.
    pub(crate) fn follower_state(&self, leader: Option<NodeId>, now: SimTime) -> FollowerState {
        FollowerState {
            leader,
            inflight: None,
            awaiting_flush: None,
            last_contact: None,
            deadline: now.plus_ms(self.cfg.fetch_timeout_ms),
        }
    }

    /// Handles a message of the quorum protocol.
    pub fn on_message(&mut self, from: NodeId, m: RaftMsg, cx: &mut Ctx<'_>) {
        if !self.started || self.failed.is_some() {
            return;
        }
        match m {
            RaftMsg::Vote {
                epoch,
                candidate,
                last_epoch,
                last_offset,
                pre_vote,
            } => self.on_vote(
                from,
                candidate,
                epoch,
                last_epoch,
                last_offset,
                pre_vote,
                cx,
            ),
            RaftMsg::VoteResp {
                epoch,
                leader,
                granted,
                pre_vote,
            } => self.on_vote_resp(from, epoch, leader, granted, pre_vote, cx),
            RaftMsg::BeginQuorumEpoch { epoch, leader } => {
                self.on_begin_quorum_epoch(from, epoch, leader, cx)
            }
            RaftMsg::EndQuorumEpoch {
                epoch,
                leader,
                successors,
            } => self.on_end_quorum_epoch(epoch, leader, &successors, cx),
            RaftMsg::Fetch {
                corr,
                epoch,
                replica,
                offset,
                last_fetched_epoch,
            } => self.on_fetch(from, corr, epoch, replica, offset, last_fetched_epoch, cx),
            RaftMsg::FetchResp {
                corr,
                epoch,
                leader,
                result,
            } => self.on_fetch_resp(from, corr, epoch, leader, result, cx),
            RaftMsg::FetchSnapshot { corr, epoch, .. } => {
                self.on_fetch_snapshot(from, corr, epoch, cx)
            }
            RaftMsg::FetchSnapshotResp {
                corr,
                epoch,
                leader,
                result,
            } => self.on_fetch_snapshot_resp(from, corr, epoch, leader, result, cx),
        }
    }

    /// A connection broke: a fetch in flight on it is lost.
    pub fn on_conn_lost(&mut self, peer: NodeId, cx: &mut Ctx<'_>) {
        if let RaftRole::Follower(f) = &mut self.role {
            if f.inflight.is_some_and(|(_, to, _)| to == peer) {
                f.inflight = None;
                if !self.voter && f.leader == Some(peer) {
                    // An observer looks for the leader again.
                    f.leader = None;
                }
                cx.set_timer_ms(self.cfg.timer_base + T_FETCH, self.cfg.retry_backoff_ms);
            }
        }
    }

    /// One of the core's timers fired.
    pub fn on_timer(&mut self, timer: TimerId, cx: &mut Ctx<'_>) {
        if !self.started || self.failed.is_some() {
            return;
        }
        match timer - self.cfg.timer_base {
            T_ELECTION => self.on_election_timer(cx),
            T_FETCH if matches!(self.role, RaftRole::Candidate { .. }) => self.resend_votes(cx),
            T_FETCH => self.send_fetch(cx),
            T_LEADER => self.on_leader_timer(cx),
            _ => {}
        }
    }

    /// One of the core's disk operations completed (errors are the host's
    /// to handle: Kafka halts on a metadata log failure).
    pub fn on_disk_done(&mut self, op: DiskOpId, cx: &mut Ctx<'_>) {
        if self.snapshot_writing.as_ref().is_some_and(|w| w.0 == op) {
            self.on_snapshot_synced(cx);
        }
        if let Some(end) = self.log_syncs.remove(&op) {
            self.log.note_synced(end);
            self.on_log_synced(cx);
        }
        if self.state_syncs.remove(&op) {
            let done_below = self.state_syncs.first().copied().unwrap_or(DiskOpId::MAX);
            let (ready, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.deferred)
                .into_iter()
                .partition(|(o, _, _)| *o < done_below);
            self.deferred = wait;
            for (_, to, m) in ready {
                cx.send(to, Msg::Raft(m));
            }
        }
    }

    // ----- disk and persistence -----

    /// The id the next disk operation will get.
    pub(crate) fn next_op_id(&self) -> DiskOpId {
        self.next_op
    }

    /// Issues disk requests, noting which fsyncs cover which log end.
    pub(crate) fn issue(&mut self, reqs: Vec<DiskRequest>, cx: &mut Ctx<'_>) {
        for r in reqs {
            let op = self.next_op;
            self.next_op += 1;
            if let DiskRequest::Fsync { file } = &r {
                if file == QUORUM_STATE_FILE {
                    self.state_syncs.insert(op);
                } else if let Some(end) = self.log.take_flush_mark(file) {
                    self.log_syncs.insert(op, end);
                }
            }
            cx.disk(op, r);
        }
    }

    /// Writes the quorum state (fsynced unless `sync` is false).
    pub(crate) fn persist(&mut self, sync: bool, cx: &mut Ctx<'_>) {
        if !self.voter {
            return;
        }
        let mut out = vec![DiskRequest::Append {
            file: QUORUM_STATE_FILE.into(),
            data: self.quorum.encode(),
        }];
        if sync {
            out.push(DiskRequest::Fsync {
                file: QUORUM_STATE_FILE.into(),
            });
        }
        self.issue(out, cx);
    }

    /// Sends `m` once every quorum-state write issued so far is durable.
    pub(crate) fn send_after_persist(&mut self, to: NodeId, m: RaftMsg, cx: &mut Ctx<'_>) {
        match self.state_syncs.last() {
            Some(&op) => self.deferred.push((op, to, m)),
            None => cx.send(to, Msg::Raft(m)),
        }
    }

    /// Appends records at the log end in the current epoch and flushes
    /// them; returns the base offset.
    pub(crate) fn append_local(&mut self, values: Vec<Vec<u8>>, cx: &mut Ctx<'_>) -> u64 {
        let mut out = Vec::new();
        let batch = Batch {
            base_offset: 0,
            epoch: self.quorum.epoch,
            producer_id: 0,
            producer_epoch: 0,
            base_seq: -1,
            values,
        };
        let base = self.log.append(batch, cx.now, &mut out);
        self.log.flush(&mut out);
        self.issue(out, cx);
        base
    }

    /// The leader appends state-machine records (already tagged with
    /// [`crate::raft::data_value`]); `None` when not the leader.
    pub fn propose(&mut self, values: Vec<Vec<u8>>, cx: &mut Ctx<'_>) -> Option<u64> {
        if !self.is_leader() || values.is_empty() {
            return None;
        }
        let base = self.append_local(values, cx);
        self.answer_parked(cx);
        Some(base)
    }

    /// The LeaderChange control record of a new epoch.
    pub(crate) fn leader_change_value(&self) -> Vec<u8> {
        let mut v = vec![TAG_LEADER_CHANGE];
        v.extend_from_slice(&self.id.to_le_bytes());
        v
    }

    // ----- timers -----

    /// Arms the election timer at a random point of
    /// `[election_timeout, 2 * election_timeout)`.
    pub(crate) fn arm_election(&mut self, cx: &mut Ctx<'_>) {
        let t = self.cfg.election_timeout_ms;
        let after = t + cx.rng.gen_range(0..t.max(1));
        self.arm_election_after(after, cx);
    }

    /// Arms the election timer after `ms`.
    pub(crate) fn arm_election_after(&mut self, ms: u64, cx: &mut Ctx<'_>) {
        self.election_deadline = Some(cx.now.plus_ms(ms));
        cx.set_timer_ms(self.cfg.timer_base + T_ELECTION, ms);
    }

    /// Arms the election timer for the follower's fetch timeout.
    pub(crate) fn arm_fetch_timeout(&mut self, cx: &mut Ctx<'_>) {
        if let RaftRole::Follower(f) = &self.role {
            let after = f.deadline.ms_since(cx.now).max(1);
            self.election_deadline = None;
            cx.set_timer_ms(self.cfg.timer_base + T_ELECTION, after);
        }
    }

    /// A graceful shutdown: a leader hands over with EndQuorumEpoch, naming
    /// the voters most caught up first.
    pub fn shutdown(&mut self, cx: &mut Ctx<'_>) {
        let RaftRole::Leader(l) = &self.role else {
            return;
        };
        let mut order: Vec<(u64, NodeId)> = l.voters.iter().map(|(&v, p)| (p.end, v)).collect();
        order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let successors: Vec<NodeId> = order.into_iter().map(|(_, v)| v).collect();
        for &v in &successors {
            cx.send(
                v,
                Msg::Raft(RaftMsg::EndQuorumEpoch {
                    epoch: self.quorum.epoch,
                    leader: self.id,
                    successors: successors.clone(),
                }),
            );
        }
        self.role = RaftRole::Resigned;
    }
}
