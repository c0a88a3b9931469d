//! End-of-run Kafka checks: the queue history against Jepsen's anomaly
//! categories (`check::kafka`), and the replicas' final state after the
//! quiet period.
//!
//! - `replica-divergence`: a replica in its leader's ISR holds a different
//!   record than the leader at an offset below the leader's high watermark.
//! - `not-recovered`: after the quiet period a partition has no leader.

use kzsim_model::kafka::{KafkaBroker, ReplicaView, Tp};
use kzsim_model::NodeId;

use crate::check::kafka::check_operations;
use crate::history::Operation;
use crate::outcome::Violation;

/// The queue anomalies of the history.
pub fn queue(ops: &[Operation]) -> Vec<Violation> {
    match check_operations(ops) {
        Ok(report) => report.violations(),
        Err((event, message)) => vec![Violation::new(
            "malformed-history",
            format!("event {event}: {message}"),
            vec![event],
        )],
    }
}

/// `(offset, value)` of every record of a replica below `end`.
fn records(v: &ReplicaView, end: u64) -> Vec<(u64, &[u8])> {
    v.batches
        .iter()
        .flat_map(|b| {
            b.values
                .iter()
                .enumerate()
                .map(move |(i, val)| (b.base_offset + i as u64, val.as_slice()))
        })
        .take_while(|(o, _)| *o < end)
        .collect()
}

/// The replicas' final state: ISR members agree with their leader below
/// its high watermark, and every partition has a leader.
pub fn final_replicas(
    topic: &str,
    partitions: u32,
    brokers: &[(NodeId, Option<&KafkaBroker>)],
) -> Vec<Violation> {
    let mut out = Vec::new();
    for p in 0..partitions {
        let tp = Tp::new(topic, p);
        let views: Vec<(NodeId, ReplicaView)> = brokers
            .iter()
            .filter_map(|(id, b)| b.and_then(|b| b.replica_view(&tp)).map(|v| (*id, v)))
            .collect();
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
        let theirs = records(lv, hw);
        for (id, v) in &views {
            if id == lid || !lv.isr.contains(id) {
                continue;
            }
            let end = hw.min(v.log_end);
            let mine = records(v, end);
            let first_diff = mine
                .iter()
                .zip(theirs.iter())
                .find(|(a, b)| a != b)
                .map(|(a, _)| a.0)
                .or_else(|| (mine.len() as u64 != end).then_some(mine.len() as u64));
            if let Some(o) = first_diff {
                out.push(Violation::new(
                    "replica-divergence",
                    format!(
                        "partition {tp}: ISR member {id} differs from leader {lid} (epoch {:?}) at offset {o}, below the high watermark {hw}",
                        lv.leader_epoch
                    ),
                    vec![],
                ));
            }
        }
    }
    out
}
