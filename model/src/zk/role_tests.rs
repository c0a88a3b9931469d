//! One server driven by hand, message by message and disk completion by
//! disk completion: the ordering rules of the ZAB handshake (what is
//! persisted before which message), what the leader counts, and the
//! conditions on which a server refuses to go on.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::bugs::BugSet;
use crate::disk::{DiskOpId, DiskReply, DiskRequest, FileName};
use crate::msg::Msg;
use crate::node::{Ctx, Effect, Input, Node, NodeId};
use crate::time::SimTime;
use crate::zk::storage::{encode_epoch, ACCEPTED_EPOCH_FILE, CURRENT_EPOCH_FILE, LOG_FILE};
use crate::zk::txn::{LoggedTxn, Txn, TxnHeader};
use crate::zk::types::{make_zxid, Zxid};
use crate::zk::wire::{PeerState, Vote, ZkMsg};
use crate::zk::{ZkConfig, ZkServer};

/// Timer id of the election's finalize wait (see `server.rs`).
const TIMER_FINALIZE: u64 = 2;

/// A lone server of the ensemble {1, 2, 3} and everything it asked for.
struct Solo {
    s: ZkServer,
    rng: ChaCha8Rng,
    /// Disk operations issued and not yet completed, in issue order.
    disk: Vec<(DiskOpId, DiskRequest)>,
    /// Messages sent to peers, in order.
    sent: Vec<(NodeId, ZkMsg)>,
    /// Connections it closed.
    closed: Vec<NodeId>,
    /// Halt reasons.
    halts: Vec<String>,
}

impl Solo {
    fn new(id: NodeId, bugs: &BugSet) -> Solo {
        Solo::with_config(id, ZkConfig::default(), bugs)
    }

    fn with_config(id: NodeId, cfg: ZkConfig, bugs: &BugSet) -> Solo {
        Solo {
            s: ZkServer::new(id, vec![1, 2, 3], cfg, bugs),
            rng: ChaCha8Rng::seed_from_u64(7),
            disk: Vec::new(),
            sent: Vec::new(),
            closed: Vec::new(),
            halts: Vec::new(),
        }
    }

    fn step(&mut self, input: Input) {
        let mut effects = Vec::new();
        let mut cx = Ctx::new(SimTime::ZERO, self.s.id, &mut self.rng, &mut effects);
        self.s.step(input, &mut cx);
        for e in effects {
            match e {
                Effect::Disk { op, req } => self.disk.push((op, req)),
                Effect::Send {
                    to,
                    msg: Msg::Zk(m),
                } => self.sent.push((to, m)),
                Effect::Disconnect { peer } => self.closed.push(peer),
                Effect::Halt { reason } => self.halts.push(reason),
                _ => {}
            }
        }
    }

    fn start(&mut self, files: BTreeMap<FileName, Vec<u8>>) {
        self.step(Input::Start { files });
        self.settle();
    }

    fn msg(&mut self, from: NodeId, m: ZkMsg) {
        self.step(Input::Message {
            from,
            msg: Msg::Zk(m),
        });
    }

    /// Completes the oldest pending disk operation matching `pred`, again
    /// and again (new ones included) until none matches; returns how many.
    fn complete_where(&mut self, pred: impl Fn(&DiskRequest) -> bool) -> usize {
        let mut n = 0;
        while let Some(i) = self.disk.iter().position(|(_, r)| pred(r)) {
            let (op, req) = self.disk.remove(i);
            let result = Ok(match req {
                DiskRequest::Fsync { .. } => DiskReply::Synced,
                _ => DiskReply::Done,
            });
            self.step(Input::Disk { op, result });
            n += 1;
        }
        n
    }

    /// Completes every disk operation.
    fn settle(&mut self) {
        self.complete_where(|_| true);
    }

    fn pending_on(&self, file: &str) -> bool {
        self.disk.iter().any(|(_, r)| r.file() == file)
    }

    /// Takes the messages sent so far.
    fn take_sent(&mut self) -> Vec<(NodeId, ZkMsg)> {
        std::mem::take(&mut self.sent)
    }

    /// Makes the server follow 2 (announced as leading, 3 following it).
    fn follow_2(&mut self) {
        let vote = Vote {
            leader: 2,
            zxid: 0,
            peer_epoch: 0,
        };
        for (p, state) in [(2, PeerState::Leading), (3, PeerState::Following)] {
            self.msg(
                p,
                ZkMsg::Notification {
                    vote,
                    election_epoch: 1,
                    state,
                },
            );
        }
        assert!(
            self.take_sent()
                .iter()
                .any(|(to, m)| *to == 2 && matches!(m, ZkMsg::FollowerInfo { .. })),
            "follows 2: {}",
            self.s.role()
        );
    }

    /// Makes the server (id 1) lead: 2 and 3 vote for it.
    fn lead(&mut self) {
        let vote = Vote {
            leader: 1,
            zxid: self.s.last_logged_zxid(),
            peer_epoch: self.s.epochs().1,
        };
        for p in [2, 3] {
            self.msg(
                p,
                ZkMsg::Notification {
                    vote,
                    election_epoch: 1,
                    state: PeerState::Looking,
                },
            );
        }
        self.step(Input::Timer {
            timer: TIMER_FINALIZE,
        });
        assert!(self.s.role().starts_with("leader"), "{}", self.s.role());
        self.take_sent();
    }
}

fn txn(epoch: u64, n: u64) -> LoggedTxn {
    LoggedTxn {
        hdr: TxnHeader {
            zxid: make_zxid(epoch, n),
            session: 0,
            cxid: 0,
        },
        txn: Txn::Create {
            path: format!("/n{n}"),
            data: vec![],
            ephemeral_owner: 0,
        },
    }
}

fn acks(sent: &[(NodeId, ZkMsg)], zxid: Zxid) -> usize {
    sent.iter()
        .filter(|(_, m)| *m == ZkMsg::Ack { zxid })
        .count()
}

/// A follower through discovery to the sync of epoch 1: three DIFF txns,
/// then NEWLEADER, with no disk operation of the sync completed yet.
fn follower_at_newleader(bugs: &BugSet) -> Solo {
    let mut f = Solo::new(1, bugs);
    f.start(BTreeMap::new());
    f.follow_2();
    f.msg(2, ZkMsg::LeaderInfo { new_epoch: 1 });
    f.settle();
    assert!(f
        .take_sent()
        .iter()
        .any(|(_, m)| matches!(m, ZkMsg::AckEpoch { .. })));
    f.msg(
        2,
        ZkMsg::Sync {
            snap: None,
            trunc: None,
            txns: (1..=3).map(|n| txn(0, n)).collect(),
        },
    );
    f.msg(
        2,
        ZkMsg::NewLeader {
            zxid: make_zxid(1, 0),
        },
    );
    f
}

/// ZOOKEEPER-4643: on NEWLEADER the synced txns are fsynced first, then
/// currentEpoch is written and fsynced, then NEWLEADER is acknowledged.
#[test]
fn newleader_persists_txns_then_current_epoch_then_acks() {
    let mut f = follower_at_newleader(&BugSet::none());
    assert!(f.pending_on(LOG_FILE));
    assert!(
        !f.pending_on(CURRENT_EPOCH_FILE),
        "currentEpoch is written only once the txns are durable"
    );
    assert_eq!(f.s.epochs(), (1, 0), "currentEpoch is set with its write");
    assert!(f.complete_where(|r| r.file() == LOG_FILE) > 0);
    assert!(f.pending_on(CURRENT_EPOCH_FILE));
    assert_eq!(acks(&f.sent, make_zxid(1, 0)), 0, "no ack before the epoch");
    f.complete_where(|r| r.file() == CURRENT_EPOCH_FILE);
    assert_eq!(acks(&f.sent, make_zxid(1, 0)), 1);
    assert_eq!(f.s.epochs(), (1, 1));
}

/// Planted bug `zk_epoch_before_txns`: currentEpoch is written at once,
/// beside the txns' fsync still in flight.
#[test]
fn planted_epoch_before_txns_writes_the_epoch_beside_the_txns() {
    let mut bugs = BugSet::none();
    bugs.enable("zk_epoch_before_txns");
    let mut f = follower_at_newleader(&bugs);
    assert!(f.pending_on(LOG_FILE) && f.pending_on(CURRENT_EPOCH_FILE));
    // The epoch can be durable while the log is not.
    f.complete_where(|r| r.file() == CURRENT_EPOCH_FILE);
    assert!(f.pending_on(LOG_FILE));
    f.settle();
    assert_eq!(acks(&f.sent, make_zxid(1, 0)), 1);
}

/// A server that already accepted the proposed epoch answers ACKEPOCH
/// with -1 (ZAB 1.0 acks an epoch once), and writes no epoch file.
#[test]
fn an_epoch_already_accepted_is_acked_with_minus_one() {
    let mut f = Solo::new(1, &BugSet::none());
    let mut files = BTreeMap::new();
    files.insert(ACCEPTED_EPOCH_FILE.to_string(), encode_epoch(1));
    f.start(files);
    assert_eq!(f.s.epochs(), (1, 0));
    f.follow_2();
    f.msg(2, ZkMsg::LeaderInfo { new_epoch: 1 });
    assert!(!f.pending_on(ACCEPTED_EPOCH_FILE));
    f.settle();
    let sent = f.take_sent();
    assert!(
        sent.contains(&(
            2,
            ZkMsg::AckEpoch {
                current_epoch: None,
                last_zxid: 0
            }
        )),
        "{sent:?}"
    );
    // A new epoch is accepted, persisted, then acked with currentEpoch.
    let mut g = Solo::new(1, &BugSet::none());
    g.start(BTreeMap::new());
    g.follow_2();
    g.msg(2, ZkMsg::LeaderInfo { new_epoch: 1 });
    assert!(g.pending_on(ACCEPTED_EPOCH_FILE));
    assert!(g.take_sent().is_empty(), "ack only once persisted");
    g.settle();
    assert_eq!(
        g.take_sent(),
        vec![(
            2,
            ZkMsg::AckEpoch {
                current_epoch: Some(0),
                last_zxid: 0
            }
        )]
    );
}

/// Leader 1 with learner 2 connected: epoch 1 proposed and LEADERINFO sent.
fn leader_with_2() -> Solo {
    let mut l = Solo::new(1, &BugSet::none());
    l.start(BTreeMap::new());
    l.lead();
    l.msg(
        2,
        ZkMsg::FollowerInfo {
            accepted_epoch: 0,
            last_zxid: 0,
        },
    );
    l.settle();
    assert!(l
        .take_sent()
        .contains(&(2, ZkMsg::LeaderInfo { new_epoch: 1 })));
    l
}

fn syncs_to(sent: &[(NodeId, ZkMsg)], p: NodeId) -> usize {
    sent.iter()
        .filter(|(to, m)| *to == p && matches!(m, ZkMsg::Sync { .. }))
        .count()
}

/// The leader does not count an ACKEPOCH of -1 toward the epoch quorum
/// (Leader.waitForEpochAck); once a quorum acks for real, that learner is
/// synced like the others.
#[test]
fn the_leader_does_not_count_an_epoch_ack_of_minus_one() {
    let mut l = leader_with_2();
    l.msg(
        2,
        ZkMsg::AckEpoch {
            current_epoch: None,
            last_zxid: 0,
        },
    );
    l.settle();
    assert!(!l.pending_on(CURRENT_EPOCH_FILE));
    assert_eq!(syncs_to(&l.take_sent(), 2), 0, "no epoch quorum yet");
    assert_eq!(l.s.epochs(), (1, 0));
    l.msg(
        3,
        ZkMsg::FollowerInfo {
            accepted_epoch: 0,
            last_zxid: 0,
        },
    );
    l.msg(
        3,
        ZkMsg::AckEpoch {
            current_epoch: Some(0),
            last_zxid: 0,
        },
    );
    l.settle();
    let sent = l.take_sent();
    assert_eq!(l.s.epochs(), (1, 1), "epoch quorum: 1 and 3");
    assert_eq!((syncs_to(&sent, 2), syncs_to(&sent, 3)), (1, 1));
}

/// A learner whose history is ahead of the leader's is dropped (its
/// connection closed), and the leader keeps leading: it does not abdicate.
#[test]
fn the_leader_drops_a_learner_that_is_ahead() {
    let mut l = leader_with_2();
    l.msg(
        2,
        ZkMsg::AckEpoch {
            current_epoch: Some(0),
            last_zxid: make_zxid(0, 5),
        },
    );
    l.settle();
    assert_eq!(l.closed, vec![2]);
    assert!(l.s.role().starts_with("leader"), "{}", l.s.role());
    let sent = l.take_sent();
    assert!(
        !sent
            .iter()
            .any(|(_, m)| matches!(m, ZkMsg::Notification { .. })),
        "no new election: {sent:?}"
    );
    assert_eq!(syncs_to(&sent, 2), 0);
    assert_eq!(l.s.epochs(), (1, 0), "2 was not counted");
}

/// An established leader of epoch 1 with learners 2 and 3 up to date.
fn established_leader() -> Solo {
    let mut l = leader_with_2();
    l.msg(
        3,
        ZkMsg::FollowerInfo {
            accepted_epoch: 0,
            last_zxid: 0,
        },
    );
    for p in [2, 3] {
        l.msg(
            p,
            ZkMsg::AckEpoch {
                current_epoch: Some(0),
                last_zxid: 0,
            },
        );
    }
    l.settle();
    for p in [2, 3] {
        l.msg(
            p,
            ZkMsg::Ack {
                zxid: make_zxid(1, 0),
            },
        );
    }
    l.settle();
    assert!(l.s.is_leader(), "{}", l.s.role());
    l.take_sent();
    l
}

/// The leader commits on any quorum of acks: two followers' acks commit a
/// proposal whose fsync on the leader is still in flight.
#[test]
fn the_leader_commits_on_a_quorum_without_its_own_ack() {
    let mut l = established_leader();
    l.msg(
        2,
        ZkMsg::CreateSession {
            timeout_ms: 1000,
            client: 101,
        },
    );
    let z = make_zxid(1, 1);
    assert!(l.pending_on(LOG_FILE), "the proposal is being logged");
    l.msg(2, ZkMsg::Ack { zxid: z });
    assert!(!l.sent.iter().any(|(_, m)| *m == ZkMsg::Commit { zxid: z }));
    l.msg(3, ZkMsg::Ack { zxid: z });
    assert!(l.pending_on(LOG_FILE), "the leader's own fsync is not done");
    let commits = l
        .take_sent()
        .into_iter()
        .filter(|(_, m)| *m == ZkMsg::Commit { zxid: z })
        .count();
    assert_eq!(commits, 2, "COMMIT to both learners");
    assert_eq!(l.s.tree().last_zxid(), z);
}

/// A COMMIT that is not for the next pending proposal halts a follower
/// (FollowerZooKeeperServer.commit); one with nothing pending is ignored.
#[test]
fn a_commit_out_of_order_halts_the_follower() {
    let mut f = follower_at_newleader(&BugSet::none());
    f.settle();
    f.msg(2, ZkMsg::UpToDate);
    f.msg(
        2,
        ZkMsg::Commit {
            zxid: make_zxid(1, 1),
        },
    );
    assert!(f.halts.is_empty() && !f.s.is_halted(), "nothing pending");
    f.msg(2, ZkMsg::Proposal(txn(1, 1)));
    f.msg(2, ZkMsg::Proposal(txn(1, 2)));
    f.settle();
    f.msg(
        2,
        ZkMsg::Commit {
            zxid: make_zxid(1, 2),
        },
    );
    assert!(f.s.is_halted());
    assert_eq!(f.halts.len(), 1);
    assert!(
        f.halts[0]
            .contains("COMMIT of zxid 0x100000002 but the next pending proposal is 0x100000001"),
        "{:?}",
        f.halts
    );
}

/// Inconsistent epoch files (currentEpoch above acceptedEpoch,
/// ZOOKEEPER-2307 / 2354) stop the server at start, with the reason.
#[test]
fn inconsistent_epoch_files_halt_the_server_at_start() {
    let mut s = Solo::new(1, &BugSet::none());
    let mut files = BTreeMap::new();
    files.insert(ACCEPTED_EPOCH_FILE.to_string(), encode_epoch(2));
    files.insert(CURRENT_EPOCH_FILE.to_string(), encode_epoch(3));
    s.start(files);
    assert!(s.s.is_halted());
    assert_eq!(
        s.s.halt_reason(),
        Some("refusing to start: currentEpoch 3 is greater than acceptedEpoch 2")
    );
    assert!(
        s.sent.is_empty() && s.disk.is_empty(),
        "it did nothing else"
    );
}

/// Files holding a log of txns 1..=n of epoch 1 and snapshots at `snaps`.
fn files_with_log(n: u64, snaps: &[u64]) -> BTreeMap<FileName, Vec<u8>> {
    use crate::zk::storage::{encode_snapshot, snap_file, TxnLog};
    use crate::zk::tree::DataTree;
    let mut log = TxnLog::default();
    let mut bytes = Vec::new();
    let write = |reqs: Vec<DiskRequest>, bytes: &mut Vec<u8>| {
        for r in reqs {
            match r {
                DiskRequest::Append { data, .. } => bytes.extend(data),
                DiskRequest::Truncate { len, .. } => bytes.truncate(len as usize),
                _ => {}
            }
        }
    };
    write(log.reset(0), &mut bytes);
    let mut files = BTreeMap::new();
    let mut tree = DataTree::new();
    for k in 1..=n {
        let t = txn(1, k);
        let _ = crate::zk::txn::apply(&mut tree, &t, &mut Vec::new());
        write(vec![log.append(t)], &mut bytes);
        if snaps.contains(&k) {
            files.insert(snap_file(0, make_zxid(1, k)), encode_snapshot(&tree));
        }
    }
    files.insert(LOG_FILE.to_string(), bytes);
    files
}

/// What leader 1, started on `files` with `cfg`, sends learners 2 and 3
/// whose last zxids are `at2` and `at3` (txn numbers of epoch 1):
/// for each, whether it got a SNAP and how many DIFF txns.
fn sync_of(cfg: ZkConfig, files: BTreeMap<FileName, Vec<u8>>, at: [u64; 2]) -> Vec<(bool, usize)> {
    let mut l = Solo::with_config(1, cfg, &BugSet::none());
    l.start(files);
    l.lead();
    for (p, k) in [(2, at[0]), (3, at[1])] {
        l.msg(
            p,
            ZkMsg::FollowerInfo {
                accepted_epoch: 1,
                last_zxid: make_zxid(1, k),
            },
        );
        l.settle();
        l.msg(
            p,
            ZkMsg::AckEpoch {
                current_epoch: Some(1),
                last_zxid: make_zxid(1, k),
            },
        );
        l.settle();
    }
    let sent = l.take_sent();
    [2, 3]
        .iter()
        .map(|p| {
            let sync = sent
                .iter()
                .find_map(|(to, m)| match m {
                    ZkMsg::Sync { snap, txns, .. } if to == p => Some((snap.is_some(), txns.len())),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("no sync to {p}: {sent:?}"));
            if sync.0 {
                assert_eq!(sync.1, 0);
            }
            sync
        })
        .collect()
}

/// A learner within the leader's in-memory committed log gets a DIFF; one
/// further behind gets a SNAP, unless the txn log still covers it and the
/// txns weigh little next to a snapshot (snapshotSizeFactor); the log
/// before the oldest retained snapshot is purged and never DIFFed from.
#[test]
fn a_learner_far_behind_gets_a_snap_and_a_close_one_a_diff() {
    let cfg = |factor| ZkConfig {
        commit_log_count: 5,
        snapshot_size_factor_pct: factor,
        ..ZkConfig::default()
    };
    // 20 committed txns; the committed log holds 16..=20.
    assert_eq!(
        sync_of(cfg(0), files_with_log(20, &[]), [18, 3]),
        vec![(false, 2), (true, 0)]
    );
    assert_eq!(
        sync_of(cfg(0), files_with_log(20, &[]), [15, 14]),
        vec![(false, 5), (true, 0)],
        "15 is the last txn before the committed log"
    );
    // The txn log covers 3: a DIFF from it when the txns weigh at most
    // 100 times a snapshot, a SNAP when at most 33% (the default).
    assert_eq!(
        sync_of(cfg(10_000), files_with_log(20, &[]), [18, 3]),
        vec![(false, 2), (false, 17)]
    );
    assert_eq!(
        sync_of(cfg(33), files_with_log(20, &[]), [18, 3]),
        vec![(false, 2), (true, 0)]
    );
    // Snapshots at 8, 10, 12 and 14 with 3 retained: the log before 10 is
    // purged.
    assert_eq!(
        sync_of(cfg(10_000), files_with_log(20, &[8, 10, 12, 14]), [10, 9]),
        vec![(false, 10), (true, 0)]
    );
}
