//! End-of-run Kafka checks: the queue history against Jepsen's anomaly
//! categories (`check::kafka`), and the replicas' final state after the
//! quiet period.
//!
//! - `replica-divergence`: a replica in its leader's ISR holds a different
//!   record than the leader at an offset below the leader's high watermark.
//! - `not-recovered`: after the quiet period a partition has no leader.
//! - `under-replicated`: after the quiet period a replica on a running
//!   broker is still outside its leader's ISR (every fault has healed, so a
//!   follower that cannot catch up is stuck: KAFKA-10706's symptom).

use kzsim_model::kafka::{KafkaBroker, ReplicaView, Tp};
use kzsim_model::NodeId;

use crate::check::kafka::{check_operations_with_retention, Retention};
use crate::history::Operation;
use crate::outcome::Violation;

/// The queue anomalies of the history, excusing what `retention` deleted.
pub fn queue(ops: &[Operation], retention: &Retention) -> Vec<Violation> {
    match check_operations_with_retention(ops, retention) {
        Ok(report) => report.violations(),
        Err((event, message)) => vec![Violation::new(
            "malformed-history",
            format!("event {event}: {message}"),
            vec![event],
        )],
    }
}

/// `(offset, value)` of every record of a replica from `start` (at or
/// past its log start) to below `end`.
fn records(v: &ReplicaView, start: u64, end: u64) -> Vec<(u64, &[u8])> {
    let start = start.max(v.log_start);
    v.batches
        .iter()
        .flat_map(|b| {
            b.values
                .iter()
                .enumerate()
                .map(move |(i, val)| (b.base_offset + i as u64, val.as_slice()))
        })
        .skip_while(|(o, _)| *o < start)
        .take_while(|(o, _)| *o < end)
        .collect()
}

/// Every replica of each partition of `topic`, as the brokers hold them.
pub fn views(
    topic: &str,
    partitions: u32,
    brokers: &[(NodeId, Option<&KafkaBroker>)],
) -> Vec<(Tp, Vec<(NodeId, ReplicaView)>)> {
    (0..partitions)
        .map(|p| {
            let tp = Tp::new(topic, p);
            let v = brokers
                .iter()
                .filter_map(|(id, b)| b.and_then(|b| b.replica_view(&tp)).map(|v| (*id, v)))
                .collect();
            (tp, v)
        })
        .collect()
}

/// The replicas' final state: ISR members agree with their leader below
/// its high watermark, and every partition has a leader.
pub fn final_replicas(partitions: &[(Tp, Vec<(NodeId, ReplicaView)>)]) -> Vec<Violation> {
    let mut out = Vec::new();
    for (tp, views) in partitions {
        let leader = views
            .iter()
            .filter(|(_, v)| v.leader)
            .max_by_key(|(_, v)| v.leader_epoch);
        let Some((lid, lv)) = leader else {
            out.push(Violation::new(
                "not-recovered",
                format!("partition {tp} has no leader after the quiet period"),
                vec![],
            ));
            continue;
        };
        let hw = lv.high_watermark;
        for (id, v) in views {
            if !lv.isr.contains(id) {
                out.push(Violation::new(
                    "under-replicated",
                    format!(
                        "partition {tp}: the replica on broker {id} (log end {}, epoch {}) is not in leader {lid}'s ISR {:?} after the quiet period (leader log end {})",
                        v.log_end,
                        v.leader_epoch.map_or_else(|| "unknown".to_string(), |e| e.to_string()),
                        lv.isr,
                        lv.log_end,
                    ),
                    vec![],
                ));
            }
        }
        for (id, v) in views {
            if id == lid || !lv.isr.contains(id) {
                continue;
            }
            // Compared from where both logs start (retention and
            // DeleteRecords move a follower's start after its leader's).
            let start = lv.log_start.max(v.log_start);
            let end = hw.min(v.log_end);
            let theirs = records(lv, start, end);
            let mine = records(v, start, end);
            let expected = end.saturating_sub(start) as usize;
            let first_diff = mine
                .iter()
                .zip(theirs.iter())
                .find(|(a, b)| a != b)
                .map(|(a, _)| a.0)
                .or_else(|| (mine.len() != expected).then(|| start + mine.len() as u64));
            if let Some(o) = first_diff {
                out.push(Violation::new(
                    "replica-divergence",
                    format!(
                        "partition {tp}: ISR member {id} differs from leader {lid} (epoch {}) at offset {o}, below the high watermark {hw}",
                        lv.leader_epoch.map_or_else(|| "unknown".to_string(), |e| e.to_string())
                    ),
                    vec![],
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kzsim_model::kafka::Batch;

    fn view(leader: bool, isr: &[NodeId], hw: u64, values: &[&str]) -> ReplicaView {
        ReplicaView {
            leader,
            leader_epoch: Some(1),
            isr: isr.to_vec(),
            high_watermark: hw,
            log_end: values.len() as u64,
            log_start: 0,
            batches: vec![Batch {
                base_offset: 0,
                epoch: 1,
                producer_id: 0,
                producer_epoch: 0,
                base_seq: -1,
                values: values.iter().map(|v| v.as_bytes().to_vec()).collect(),
            }],
        }
    }

    fn one(views: Vec<(NodeId, ReplicaView)>) -> Vec<String> {
        final_replicas(&[(Tp::new("t", 0), views)])
            .into_iter()
            .map(|v| v.kind)
            .collect()
    }

    #[test]
    fn agreeing_replicas_pass_and_tails_above_the_hw_may_differ() {
        let k = one(vec![
            (0, view(true, &[0, 1, 2], 2, &["a", "b", "c"])),
            (1, view(false, &[0, 1, 2], 2, &["a", "b"])),
            // Beyond the HW a follower may hold anything.
            (2, view(false, &[0, 1, 2], 2, &["a", "b", "x", "y"])),
        ]);
        assert!(k.is_empty(), "{k:?}");
    }

    #[test]
    fn an_isr_member_that_differs_below_the_hw_is_divergence() {
        let k = one(vec![
            (0, view(true, &[0, 1], 3, &["a", "b", "c"])),
            (1, view(false, &[0, 1], 3, &["a", "x", "c"])),
        ]);
        assert_eq!(k, vec!["replica-divergence"]);
    }

    #[test]
    fn replicas_are_compared_from_where_both_logs_start() {
        let started_at = |mut v: ReplicaView, start: u64| {
            v.log_start = start;
            v
        };
        // Offset 1 differs, but the leader's log starts at 2 (retention
        // deleted it there; the follower has not moved its start yet).
        let k = one(vec![
            (
                0,
                started_at(view(true, &[0, 1], 4, &["a", "b", "c", "d"]), 2),
            ),
            (1, view(false, &[0, 1], 4, &["a", "x", "c", "d"])),
        ]);
        assert!(k.is_empty(), "{k:?}");
        // Past both starts a difference is divergence.
        let k = one(vec![
            (
                0,
                started_at(view(true, &[0, 1], 4, &["a", "b", "c", "d"]), 2),
            ),
            (1, view(false, &[0, 1], 4, &["a", "b", "c", "x"])),
        ]);
        assert_eq!(k, vec!["replica-divergence"]);
        // A follower that started over at 3 holds only offset 3.
        let mut late = view(false, &[0, 1], 4, &["d"]);
        late.batches[0].base_offset = 3;
        late.log_end = 4;
        let k = one(vec![
            (
                0,
                started_at(view(true, &[0, 1], 4, &["a", "b", "c", "d"]), 2),
            ),
            (1, started_at(late, 3)),
        ]);
        assert!(k.is_empty(), "{k:?}");
    }

    #[test]
    fn a_replica_outside_the_isr_is_not_held_to_it_but_is_under_replicated() {
        let k = one(vec![
            (0, view(true, &[0], 3, &["a", "b", "c"])),
            (1, view(false, &[0], 3, &["q"])),
        ]);
        assert_eq!(k, vec!["under-replicated"]);
    }

    #[test]
    fn an_isr_member_missing_records_below_the_hw_is_divergence() {
        // A gap: its log skips offsets the leader holds (a batch not at 0).
        let mut short = view(false, &[0, 1], 3, &["c"]);
        short.batches[0].base_offset = 2;
        short.log_end = 3;
        let k = one(vec![
            (0, view(true, &[0, 1], 3, &["a", "b", "c"])),
            (1, short),
        ]);
        assert_eq!(k, vec!["replica-divergence"]);
    }

    #[test]
    fn a_partition_without_a_leader_has_not_recovered() {
        let k = one(vec![(0, view(false, &[0], 0, &[]))]);
        assert_eq!(k, vec!["not-recovered"]);
    }
}
