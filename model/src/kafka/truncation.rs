//! Where a follower cuts its log once the leader has said where an epoch
//! ends: Kafka's `AbstractFetcherThread.getOffsetTruncationState`, shared by
//! the OffsetsForLeaderEpoch round trip (KIP-101, KIP-279) and the
//! diverging epoch of a fetch response (Kafka 2.7+).
//!
//! The follower asks about its latest epoch; the leader answers with the
//! largest epoch it has at or below that one and where it ends in its log.
//! When the follower has that epoch too, both logs agree up to the smaller
//! of the two ends, and truncation is complete. When it does not (fast
//! leader fail-overs left each with epochs the other never had), the
//! follower can only cut to where its own largest epoch below the leader's
//! ends, and must ask again about that epoch (KIP-279, KAFKA-6361): the
//! leader's log may have diverged below that point too.

use crate::kafka::epoch::EpochCache;
use crate::kafka::types::LeaderEpoch;

/// The outcome of one truncation step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TruncationStep {
    /// Cut the log to end here (a no-op when at or past the log end).
    pub offset: u64,
    /// Whether the logs now agree below `offset`; if not, the follower asks
    /// again about its (new) latest epoch.
    pub completed: bool,
}

/// One step of a follower's truncation. `leader` is the leader's answer
/// for the follower's latest epoch (`None`: undefined, the leader knows no
/// such epoch), `log_end` and `high_watermark` the follower's.
/// `single_round` is the planted bug `kafka_single_round_truncation`
/// (Kafka 1.x, before KIP-279): a leader's answer about an epoch the
/// follower never had is taken as final.
pub fn step(
    mine: &EpochCache,
    log_end: u64,
    high_watermark: u64,
    leader: Option<(LeaderEpoch, u64)>,
    single_round: bool,
) -> TruncationStep {
    let Some((leader_epoch, leader_end)) = leader else {
        // Undefined: the follower falls back to its high watermark.
        return TruncationStep {
            offset: high_watermark.min(log_end),
            completed: true,
        };
    };
    match mine.end_offset_for(leader_epoch, log_end) {
        Some((my_epoch, my_end)) if my_epoch != leader_epoch && !single_round => TruncationStep {
            // We never had the leader's epoch: cut where our largest epoch
            // below it ends, and ask again about that one.
            offset: my_end.min(log_end),
            completed: false,
        },
        Some((_, my_end)) => TruncationStep {
            offset: my_end.min(leader_end).min(log_end),
            completed: true,
        },
        // No epoch of ours at or below the leader's (a log from before
        // epochs were tracked): trust the leader's end.
        None => TruncationStep {
            offset: leader_end.min(log_end),
            completed: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(LeaderEpoch, u64)]) -> EpochCache {
        let mut c = EpochCache::new();
        for &(e, s) in entries {
            c.assign(e, s);
        }
        c
    }

    #[test]
    fn a_shared_epoch_ends_at_the_smaller_end() {
        let me = cache(&[(1, 0), (3, 10)]);
        let s = step(&me, 15, 5, Some((3, 12)), false);
        assert_eq!(
            s,
            TruncationStep {
                offset: 12,
                completed: true
            }
        );
        let s = step(&me, 11, 5, Some((3, 12)), false);
        assert_eq!(
            s,
            TruncationStep {
                offset: 11,
                completed: true
            }
        );
    }

    #[test]
    fn fast_fail_overs_take_two_rounds_kip_279() {
        // Follower: epoch 1 from 0, epoch 3 from 10 (log end 15).
        // Leader: epoch 1 from 0, epoch 2 from 8, epoch 4 from 12.
        let me = cache(&[(1, 0), (3, 10)]);
        let leader = cache(&[(1, 0), (2, 8), (4, 12)]);
        // Round 1: asked about 3, the leader answers (2, 12). We never had
        // epoch 2: cut to where our epoch 1 ends (10) and ask again.
        let a1 = leader.end_offset_for(3, 20);
        assert_eq!(a1, Some((2, 12)));
        let s1 = step(&me, 15, 0, a1, false);
        assert_eq!(
            s1,
            TruncationStep {
                offset: 10,
                completed: false
            }
        );
        // Round 2: asked about 1, the leader answers (1, 8): our records
        // 8 and 9 are epoch 1's, the leader's are epoch 2's.
        let me = cache(&[(1, 0)]);
        let a2 = leader.end_offset_for(1, 20);
        assert_eq!(a2, Some((1, 8)));
        let s2 = step(&me, 10, 0, a2, false);
        assert_eq!(
            s2,
            TruncationStep {
                offset: 8,
                completed: true
            }
        );
        // KAFKA-6361: one round stops at 10, keeping two divergent records.
        let me = cache(&[(1, 0), (3, 10)]);
        let bug = step(&me, 15, 0, a1, true);
        assert_eq!(
            bug,
            TruncationStep {
                offset: 10,
                completed: true
            }
        );
    }

    #[test]
    fn undefined_answers_fall_back_to_the_high_watermark() {
        let me = cache(&[(1, 0)]);
        assert_eq!(
            step(&me, 9, 4, None, false),
            TruncationStep {
                offset: 4,
                completed: true
            }
        );
        // An epoch older than all of ours: our cache answers that epoch,
        // ending where our first epoch starts, so everything goes (every
        // record we hold is of an epoch the leader's log does not have).
        let me = cache(&[(5, 0)]);
        let s = step(&me, 9, 4, Some((2, 3)), false);
        assert_eq!(
            s,
            TruncationStep {
                offset: 0,
                completed: true
            }
        );
        // An empty cache (no epochs tracked): the leader's end, capped.
        let s = step(&EpochCache::new(), 9, 4, Some((2, 3)), false);
        assert_eq!(
            s,
            TruncationStep {
                offset: 3,
                completed: true
            }
        );
    }
}
