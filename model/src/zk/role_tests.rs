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
use crate::zk::storage::{CURRENT_EPOCH_FILE, LOG_FILE};
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
        Solo {
            s: ZkServer::new(id, vec![1, 2, 3], ZkConfig::default(), bugs),
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
