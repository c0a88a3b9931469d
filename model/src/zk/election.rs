//! Fast leader election (ZooKeeper's FastLeaderElection), as a plain state
//! machine driven by the server.
//!
//! Each round has a logical clock (the election epoch). A looking server
//! votes for itself, broadcasts, and adopts any better vote it hears: a vote
//! is better if its peer epoch, then its zxid, then its leader id is higher.
//! When a quorum of the votes received in the current round equal its own,
//! it waits `finalize_wait` for a better one and then decides. A looking
//! server that hears from servers already following or leading joins them
//! once a quorum of those agree and the leader confirms it is leading.

use std::collections::BTreeMap;

use crate::node::NodeId;
use crate::zk::wire::{PeerState, Vote};

/// Whether `new` beats `cur` (epoch, then zxid, then id). With
/// `ignore_zxid` (planted bug `zk_vote_ignores_zxid`) the zxid is skipped.
pub fn vote_better(new: &Vote, cur: &Vote, ignore_zxid: bool) -> bool {
    if new.peer_epoch != cur.peer_epoch {
        return new.peer_epoch > cur.peer_epoch;
    }
    if !ignore_zxid && new.zxid != cur.zxid {
        return new.zxid > cur.zxid;
    }
    new.leader > cur.leader
}

/// The result of handling a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionStep {
    /// Nothing to do.
    Nothing,
    /// Our vote changed: broadcast it.
    Broadcast,
    /// Reply to the sender with our vote (it is behind).
    ReplyTo(NodeId),
    /// A quorum agrees with our vote: arm the finalize wait (and broadcast
    /// if `changed`).
    QuorumReached {
        /// Whether our vote changed with this notification.
        changed: bool,
    },
    /// Join an established leader now.
    Join(Vote),
}

/// The election state of one looking server.
#[derive(Clone, Debug)]
pub struct Election {
    /// The round.
    pub logical_clock: u64,
    /// Our current vote.
    pub vote: Vote,
    /// Votes of this round, by sender (ours included).
    recv: BTreeMap<NodeId, Vote>,
    /// Votes of servers out of the election, with their state and round.
    out_of_election: BTreeMap<NodeId, (Vote, PeerState, u64)>,
    ignore_zxid: bool,
}

impl Election {
    /// Starts a new round `logical_clock` voting for ourselves.
    pub fn new(me: NodeId, logical_clock: u64, own: Vote, ignore_zxid: bool) -> Election {
        let mut recv = BTreeMap::new();
        recv.insert(me, own);
        Election {
            logical_clock,
            vote: own,
            recv,
            out_of_election: BTreeMap::new(),
            ignore_zxid,
        }
    }

    fn count(votes: impl Iterator<Item = Vote>, target: &Vote) -> usize {
        votes.filter(|v| v == target).count()
    }

    /// Whether a quorum of this round's votes equal ours.
    pub fn has_quorum(&self, quorum: usize) -> bool {
        Self::count(self.recv.values().copied(), &self.vote) >= quorum
    }

    /// Handles a notification from `from`. `own` is our own vote-for-self
    /// (used when jumping to a newer round).
    #[allow(clippy::too_many_arguments)]
    pub fn on_notification(
        &mut self,
        me: NodeId,
        from: NodeId,
        vote: Vote,
        election_epoch: u64,
        state: PeerState,
        own: Vote,
        quorum: usize,
    ) -> ElectionStep {
        match state {
            PeerState::Looking => {
                let mut changed = false;
                if election_epoch > self.logical_clock {
                    self.logical_clock = election_epoch;
                    self.recv.clear();
                    self.vote = if vote_better(&vote, &own, self.ignore_zxid) {
                        vote
                    } else {
                        own
                    };
                    changed = true;
                } else if election_epoch < self.logical_clock {
                    return ElectionStep::ReplyTo(from);
                } else if vote_better(&vote, &self.vote, self.ignore_zxid) {
                    self.vote = vote;
                    changed = true;
                }
                self.recv.insert(from, vote);
                self.recv.insert(me, self.vote);
                if self.has_quorum(quorum) {
                    ElectionStep::QuorumReached { changed }
                } else if changed {
                    ElectionStep::Broadcast
                } else {
                    ElectionStep::Nothing
                }
            }
            PeerState::Following | PeerState::Leading => {
                if election_epoch == self.logical_clock {
                    self.recv.insert(from, vote);
                    if Self::count(self.recv.values().copied(), &vote) >= quorum
                        && self.check_leader(me, &vote, election_epoch, from, state)
                    {
                        return ElectionStep::Join(vote);
                    }
                }
                self.out_of_election
                    .insert(from, (vote, state, election_epoch));
                // Servers that follow the same leader may have joined it in
                // different rounds with different recorded votes; what
                // matters is that a quorum follows or leads with it and that
                // it says it leads (ZAB's discovery then syncs us safely).
                let agree = self
                    .out_of_election
                    .values()
                    .filter(|(v, _, _)| v.leader == vote.leader)
                    .count();
                if agree >= quorum && self.check_leader(me, &vote, election_epoch, from, state) {
                    self.logical_clock = election_epoch;
                    return ElectionStep::Join(vote);
                }
                ElectionStep::Nothing
            }
        }
    }

    fn check_leader(
        &self,
        me: NodeId,
        vote: &Vote,
        election_epoch: u64,
        from: NodeId,
        state: PeerState,
    ) -> bool {
        if vote.leader == me {
            return election_epoch == self.logical_clock;
        }
        if from == vote.leader {
            return state == PeerState::Leading;
        }
        matches!(
            self.out_of_election.get(&vote.leader),
            Some((_, PeerState::Leading, _))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(leader: u32, zxid: u64, epoch: u64) -> Vote {
        Vote {
            leader,
            zxid,
            peer_epoch: epoch,
        }
    }

    #[test]
    fn vote_ordering_epoch_then_zxid_then_id() {
        assert!(vote_better(&v(1, 0, 2), &v(3, 100, 1), false));
        assert!(vote_better(&v(1, 5, 1), &v(3, 4, 1), false));
        assert!(vote_better(&v(3, 5, 1), &v(1, 5, 1), false));
        assert!(!vote_better(&v(1, 5, 1), &v(1, 5, 1), false));
        // The planted bug skips the zxid.
        assert!(vote_better(&v(3, 4, 1), &v(1, 5, 1), true));
    }

    #[test]
    fn three_servers_elect_highest() {
        let mut e1 = Election::new(1, 1, v(1, 10, 1), false);
        // Server 2 with a higher zxid.
        let s = e1.on_notification(1, 3, v(3, 9, 1), 1, PeerState::Looking, v(1, 10, 1), 2);
        assert_eq!(s, ElectionStep::Nothing);
        let s = e1.on_notification(1, 2, v(2, 12, 1), 1, PeerState::Looking, v(1, 10, 1), 2);
        // Adopting 2's vote: {1, 2} now agree, a quorum of 3.
        assert_eq!(s, ElectionStep::QuorumReached { changed: true });
        assert_eq!(e1.vote.leader, 2);
        // Server 3 now agrees with 2 too.
        let s = e1.on_notification(1, 3, v(2, 12, 1), 1, PeerState::Looking, v(1, 10, 1), 2);
        assert_eq!(s, ElectionStep::QuorumReached { changed: false });
        assert!(e1.has_quorum(2));
    }

    #[test]
    fn newer_round_resets_and_older_round_gets_reply() {
        let mut e = Election::new(1, 3, v(1, 10, 1), false);
        assert_eq!(
            e.on_notification(1, 2, v(2, 1, 1), 2, PeerState::Looking, v(1, 10, 1), 2),
            ElectionStep::ReplyTo(2)
        );
        let s = e.on_notification(1, 2, v(2, 1, 1), 5, PeerState::Looking, v(1, 10, 1), 2);
        assert_eq!(e.logical_clock, 5);
        assert_eq!(e.vote.leader, 1);
        assert_eq!(s, ElectionStep::Broadcast);
    }

    #[test]
    fn joins_established_leader() {
        let mut e = Election::new(3, 1, v(3, 0, 0), false);
        let lv = v(1, 7, 2);
        assert_eq!(
            e.on_notification(3, 2, lv, 4, PeerState::Following, v(3, 0, 0), 2),
            ElectionStep::Nothing
        );
        assert_eq!(
            e.on_notification(3, 1, lv, 4, PeerState::Leading, v(3, 0, 0), 2),
            ElectionStep::Join(lv)
        );
        assert_eq!(e.logical_clock, 4);
    }
}
