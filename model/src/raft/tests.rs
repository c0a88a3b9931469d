//! Tests of the Raft core: single steps against its contract (what is
//! persisted before what is sent), and small clusters of voters in the
//! Kafka test world (elections, commits, crashes, check-quorum).

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::bugs::BugSet;
use crate::disk::DiskRequest;
use crate::kafka::testkit::Cluster;
use crate::kafka::ProducerConfig;
use crate::msg::Msg;
use crate::node::{Ctx, Effect, Input, Node, NodeId};
use crate::raft::core::RaftRole;
use crate::raft::{data_of, data_value, RaftBugs, RaftConfig, RaftCore, RaftMsg};
use crate::time::SimTime;

const VOTERS: [NodeId; 3] = [201, 202, 203];
const T_PROPOSE: u64 = 50;

/// A voter that proposes one record every `every_ms` while it leads; its
/// state machine is the list of committed records, snapshotted as the
/// core asks.
struct Voter {
    core: RaftCore,
    every_ms: u64,
    next: u64,
    /// The committed records applied (from a snapshot, then the log).
    applied: Vec<Vec<u8>>,
}

impl Voter {
    fn new(id: NodeId, bugs: RaftBugs) -> Voter {
        let cfg = RaftConfig {
            voters: VOTERS.to_vec(),
            ..RaftConfig::default()
        };
        Voter {
            core: RaftCore::new(id, cfg, bugs),
            every_ms: 20,
            next: 0,
            applied: Vec::new(),
        }
    }

    /// Takes an installed snapshot, applies what committed since, and
    /// snapshots when due. The list holds every record (control ones too),
    /// so its length is the offset applied.
    fn apply(&mut self, cx: &mut Ctx<'_>) {
        if let Some(s) = self.core.take_installed() {
            self.applied = serde_json::from_slice(&s.data).unwrap();
            assert_eq!(self.applied.len() as u64, s.end);
        }
        let from = self.applied.len() as u64;
        let hw = self.core.high_watermark();
        for b in self.core.read(from, hw, usize::MAX) {
            for (i, v) in b.values.iter().enumerate() {
                let off = b.base_offset + i as u64;
                if off == self.applied.len() as u64 && off < hw {
                    self.applied.push(v.clone());
                }
            }
        }
        let end = self.applied.len() as u64;
        if self.core.snapshot_due(end) {
            let data = serde_json::to_vec(&self.applied).unwrap();
            self.core.save_snapshot(end, data, cx);
        }
    }

    /// The committed state-machine records.
    fn committed(&self) -> Vec<Vec<u8>> {
        self.applied
            .iter()
            .filter_map(|v| data_of(v).map(|d| d.to_vec()))
            .collect()
    }
}

impl Node for Voter {
    fn step(&mut self, input: Input, cx: &mut Ctx<'_>) {
        match input {
            Input::Start { files } => {
                self.core.start(&files, cx);
                cx.set_timer_ms(T_PROPOSE, self.every_ms);
            }
            Input::Message {
                from,
                msg: Msg::Raft(m),
            } => self.core.on_message(from, m, cx),
            Input::ConnLost { peer } => self.core.on_conn_lost(peer, cx),
            Input::Timer { timer } if self.core.owns_timer(timer) => self.core.on_timer(timer, cx),
            Input::Timer { .. } => {
                if self.core.is_leader() {
                    self.next += 1;
                    let v = data_value(&self.next.to_le_bytes());
                    self.core.propose(vec![v], cx);
                }
                cx.set_timer_ms(T_PROPOSE, self.every_ms);
            }
            Input::Disk { op, result: Ok(_) } => self.core.on_disk_done(op, cx),
            _ => {}
        }
        self.apply(cx);
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

fn cluster(bugs: RaftBugs) -> Cluster {
    let mut c = Cluster::new(BugSet::none(), ProducerConfig::default());
    for v in VOTERS {
        c.boot_node(v, Box::new(Voter::new(v, bugs)));
    }
    c
}

fn voter(c: &Cluster, id: NodeId) -> Option<&Voter> {
    c.node::<Voter>(id)
}

fn leaders(c: &Cluster) -> Vec<(NodeId, u32)> {
    VOTERS
        .iter()
        .filter_map(|&v| voter(c, v).map(|n| (v, n)))
        .filter(|(_, n)| n.core.is_leader())
        .map(|(v, n)| (v, n.core.epoch()))
        .collect()
}

/// Every pair of voters agrees on the shorter of their committed logs.
fn assert_committed_prefixes_agree(c: &Cluster) {
    let logs: Vec<Vec<Vec<u8>>> = VOTERS
        .iter()
        .filter_map(|&v| voter(c, v).map(|n| n.committed()))
        .collect();
    for a in &logs {
        for b in &logs {
            let n = a.len().min(b.len());
            assert_eq!(a[..n], b[..n], "committed prefixes differ");
        }
    }
}

#[test]
fn three_voters_elect_one_leader_and_commit_on_every_voter() {
    let mut c = cluster(RaftBugs::default());
    assert!(c.run_until(3_000, |c| leaders(c).len() == 1));
    c.run_ms(1_000);
    let ls = leaders(&c);
    assert_eq!(ls.len(), 1, "{ls:?}");
    for v in VOTERS {
        let n = voter(&c, v).unwrap();
        assert!(n.committed().len() >= 20, "voter {v}: {}", n.core.summary());
        assert_eq!(n.core.epoch(), ls[0].1);
    }
    assert_committed_prefixes_agree(&c);
}

#[test]
fn a_crashed_leader_is_replaced_in_a_later_epoch_and_nothing_committed_is_lost() {
    let mut c = cluster(RaftBugs::default());
    assert!(c.run_until(3_000, |c| leaders(c).len() == 1));
    c.run_ms(500);
    let (old, epoch) = leaders(&c)[0];
    let before = voter(&c, old).unwrap().committed();
    c.crash(old);
    assert!(c.run_until(3_000, |c| leaders(c).iter().any(|&(_, e)| e > epoch)));
    let (new, _) = leaders(&c)[0];
    assert_ne!(new, old);
    c.run_ms(300);
    let after = voter(&c, new).unwrap().committed();
    assert!(after.len() > before.len());
    assert_eq!(after[..before.len()], before[..]);
    c.boot_node(old, Box::new(Voter::new(old, RaftBugs::default())));
    c.run_ms(1_000);
    assert_eq!(leaders(&c).len(), 1);
    assert_committed_prefixes_agree(&c);
}

#[test]
fn a_voter_behind_the_log_start_fetches_the_snapshot_and_agrees() {
    let mut c = cluster(RaftBugs::default());
    assert!(c.run_until(3_000, |c| leaders(c).len() == 1));
    let (leader, _) = leaders(&c)[0];
    let lagging = VOTERS.into_iter().find(|&v| v != leader).unwrap();
    c.crash(lagging);
    // 20 ms per record: 64-record snapshots move the log start well past
    // where the crashed voter stopped.
    c.run_ms(4_000);
    let start = voter(&c, leader).unwrap().core.log().log_start();
    assert!(start >= 128, "log start {start}");
    c.boot_node(lagging, Box::new(Voter::new(lagging, RaftBugs::default())));
    c.run_ms(1_000);
    let v = voter(&c, lagging).unwrap();
    assert!(v.core.log().log_start() >= 64, "{}", v.core.summary());
    assert!(v.applied.len() as u64 >= start);
    let l = voter(&c, leader).unwrap();
    let n = v.applied.len().min(l.applied.len());
    assert_eq!(v.applied[..n], l.applied[..n]);
}

#[test]
fn a_leader_cut_off_from_its_voters_resigns_and_the_majority_elects_another() {
    let mut c = cluster(RaftBugs::default());
    assert!(c.run_until(3_000, |c| leaders(c).len() == 1));
    let (old, epoch) = leaders(&c)[0];
    for v in VOTERS.into_iter().filter(|&v| v != old) {
        c.block(old, v, true);
    }
    assert!(c.run_until(3_000, |c| {
        let old_resigned = !voter(c, old).unwrap().core.is_leader();
        let new = leaders(c).iter().any(|&(l, e)| l != old && e > epoch);
        old_resigned && new
    }));
    for v in VOTERS.into_iter().filter(|&v| v != old) {
        c.block(old, v, false);
    }
    c.run_ms(1_500);
    assert_eq!(leaders(&c).len(), 1);
    assert_committed_prefixes_agree(&c);
}

/// One step of a lone core, returning its effects.
fn step(
    core: &mut RaftCore,
    now_ms: u64,
    f: impl FnOnce(&mut RaftCore, &mut Ctx<'_>),
) -> Vec<Effect> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut effects = Vec::new();
    let mut cx = Ctx::new(
        SimTime::ZERO.plus_ms(now_ms),
        core.id,
        &mut rng,
        &mut effects,
    );
    f(core, &mut cx);
    effects
}

fn vote_answers(effects: &[Effect]) -> Vec<bool> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send {
                msg: Msg::Raft(RaftMsg::VoteResp { granted, .. }),
                ..
            } => Some(*granted),
            _ => None,
        })
        .collect()
}

fn fsync_ops(effects: &[Effect]) -> Vec<u64> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Disk {
                op,
                req: DiskRequest::Fsync { file },
            } if file == crate::raft::QUORUM_STATE_FILE => Some(*op),
            _ => None,
        })
        .collect()
}

/// Completes every quorum-state fsync in `effects`, in order; returns the
/// effects of the completions.
fn complete_fsyncs(core: &mut RaftCore, effects: &[Effect]) -> Vec<Effect> {
    let mut out = Vec::new();
    for op in fsync_ops(effects) {
        out.extend(step(core, 11, |c, cx| c.on_disk_done(op, cx)));
    }
    out
}

fn started(id: NodeId, bugs: RaftBugs) -> RaftCore {
    let cfg = RaftConfig {
        voters: VOTERS.to_vec(),
        ..RaftConfig::default()
    };
    let mut core = RaftCore::new(id, cfg, bugs);
    step(&mut core, 0, |c, cx| c.start(&BTreeMap::new(), cx));
    core
}

fn vote(epoch: u32, last_epoch: u32, last_offset: u64) -> RaftMsg {
    RaftMsg::Vote {
        epoch,
        candidate: 202,
        last_epoch,
        last_offset,
        pre_vote: false,
    }
}

#[test]
fn a_vote_is_answered_only_after_the_quorum_state_is_fsynced() {
    let mut core = started(201, RaftBugs::default());
    let fx = step(&mut core, 10, |c, cx| c.on_message(202, vote(1, 0, 0), cx));
    assert!(vote_answers(&fx).is_empty(), "answered before the fsync");
    assert_eq!(
        fsync_ops(&fx).len(),
        2,
        "the epoch and the vote are fsynced"
    );
    let fx = complete_fsyncs(&mut core, &fx);
    assert_eq!(vote_answers(&fx), vec![true]);
    assert_eq!(core.quorum.voted_for, Some(202));
    // The planted bug answers at once; only the epoch change is fsynced,
    // not the vote.
    let bugs = RaftBugs {
        votedfor_not_persisted: true,
        ..RaftBugs::default()
    };
    let mut core = started(201, bugs);
    let fx = step(&mut core, 10, |c, cx| c.on_message(202, vote(1, 0, 0), cx));
    assert_eq!(vote_answers(&fx), vec![true]);
    assert_eq!(fsync_ops(&fx).len(), 1);
}

#[test]
fn a_vote_for_a_candidate_with_a_less_complete_log_is_refused() {
    for (last_epoch, last_offset, granted) in [(1, 5, false), (2, 0, false), (2, 1, true)] {
        let mut core2 = started(201, RaftBugs::default());
        step(&mut core2, 5, |c, cx| {
            c.quorum.epoch = 2;
            c.append_local(vec![data_value(b"x")], cx);
        });
        let fx = step(&mut core2, 10, |c, cx| {
            c.on_message(202, vote(3, last_epoch, last_offset), cx)
        });
        let mut answers = vote_answers(&fx);
        answers.extend(vote_answers(&complete_fsyncs(&mut core2, &fx)));
        assert_eq!(answers, vec![granted], "({last_epoch}, {last_offset})");
    }
}

#[test]
fn a_fetch_whose_last_epoch_the_leader_does_not_continue_gets_the_diverging_epoch() {
    let mut core = started(201, RaftBugs::default());
    // Leader of epoch 3 whose log has epoch 1 at 0..2 and epoch 3 from 2.
    step(&mut core, 5, |c, cx| {
        c.quorum.epoch = 1;
        c.append_local(vec![data_value(b"a"), data_value(b"b")], cx);
        c.quorum.epoch = 3;
        c.quorum.leader = Some(201);
        c.role = RaftRole::Leader(crate::raft::core::LeaderState {
            epoch_start: 2,
            voters: BTreeMap::from([
                (
                    202,
                    crate::raft::core::VoterProgress {
                        end: 0,
                        last_fetch: None,
                    },
                ),
                (
                    203,
                    crate::raft::core::VoterProgress {
                        end: 0,
                        last_fetch: None,
                    },
                ),
            ]),
            parked: Vec::new(),
            since: cx.now,
        });
        c.append_local(vec![data_value(b"c")], cx);
    });
    // A follower with epoch 2 up to offset 4 diverges at (1, 2).
    let fx = step(&mut core, 10, |c, cx| {
        c.on_message(
            202,
            RaftMsg::Fetch {
                corr: 7,
                epoch: 3,
                replica: 202,
                offset: 4,
                last_fetched_epoch: 2,
            },
            cx,
        )
    });
    let div = fx.iter().find_map(|e| match e {
        Effect::Send {
            msg: Msg::Raft(RaftMsg::FetchResp { result: Ok(d), .. }),
            ..
        } => Some(d.diverging),
        _ => None,
    });
    assert_eq!(div, Some(Some((1, 2))));
}
