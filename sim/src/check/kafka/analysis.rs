//! The analyses: version orders per partition, then one pass per anomaly
//! category, following the definitions of Jepsen's Kafka workload.
//!
//! The *version order* of a partition is built from every `(offset, value)`
//! pair known: the sends of committed ops (ok, or info with a value read)
//! that carry an offset, and every poll. Offsets are then made dense
//! (*indexes*): gaps in offsets (transaction markers, compaction) are not
//! anomalies. Skips and reorderings are measured in indexes.

use std::collections::{BTreeMap, BTreeSet};

use super::ops::{KOp, OpKind};
use super::report::{Anomaly, AnomalyKind};
use crate::history::Outcome;

type ValueSet = BTreeSet<i64>;

/// Everything derived from the history that the category checks share.
struct Analysis<'a> {
    retention: &'a Retention,
    ops: &'a [KOp],
    /// `(key, value)` to the op that sent it.
    writer: BTreeMap<(&'a str, i64), usize>,
    /// `(key, value)` to the ok ops that read it.
    readers: BTreeMap<(&'a str, i64), BTreeSet<usize>>,
    /// Values read by ok ops, per key.
    read: BTreeMap<&'a str, ValueSet>,
    /// Per key: offset to value to the ops that show it there.
    log: BTreeMap<&'a str, BTreeMap<i64, BTreeMap<i64, BTreeSet<usize>>>>,
    /// Per key, the version order: per dense index, `(offset, values)`.
    order: BTreeMap<&'a str, Vec<(i64, ValueSet)>>,
    /// Per key: value to its first and last dense index.
    index: BTreeMap<&'a str, BTreeMap<i64, (usize, usize)>>,
}

fn anomaly(
    kind: AnomalyKind,
    key: &str,
    values: Vec<i64>,
    offsets: Vec<i64>,
    events: impl IntoIterator<Item = usize>,
    detail: String,
) -> Anomaly {
    let events: BTreeSet<usize> = events.into_iter().collect();
    Anomaly {
        kind,
        key: key.to_string(),
        values,
        offsets,
        events: events.into_iter().collect(),
        detail,
    }
}

/// `[3, 5]`: numbers in brackets, comma separated.
fn list(xs: &[i64]) -> String {
    let items: Vec<String> = xs.iter().map(i64::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// `offset 3`, `offsets [3, 5]` or `offset unknown`.
fn at_offsets(offsets: &[i64]) -> String {
    match offsets {
        [] => "offset unknown".into(),
        [o] => format!("offset {o}"),
        os => format!("offsets {}", list(os)),
    }
}

impl<'a> Analysis<'a> {
    fn new(ops: &'a [KOp], retention: &'a Retention) -> Result<Analysis<'a>, (usize, String)> {
        let mut a = Analysis {
            retention,
            ops,
            writer: BTreeMap::new(),
            readers: BTreeMap::new(),
            read: BTreeMap::new(),
            log: BTreeMap::new(),
            order: BTreeMap::new(),
            index: BTreeMap::new(),
        };
        for (i, op) in ops.iter().enumerate() {
            for (k, vs) in op.writes() {
                for v in vs {
                    if let Some(&w) = a.writer.get(&(k, v)) {
                        if w != i {
                            return Err((
                                op.invoke_event,
                                format!("value {v} sent to key {k} twice (values must be unique)"),
                            ));
                        }
                    }
                    a.writer.insert((k, v), i);
                }
            }
            if op.outcome == Outcome::Ok {
                for (k, pairs) in op.reads() {
                    for (_, v) in pairs {
                        a.read.entry(k).or_default().insert(v);
                        a.readers.entry((k, v)).or_default().insert(i);
                    }
                }
            }
        }
        for (i, op) in ops.iter().enumerate() {
            let committed = a.committed(op);
            for m in &op.mops {
                match m {
                    super::ops::Mop::Send {
                        key,
                        value,
                        offset: Some(o),
                    } if committed => a.note(key, *o, *value, i),
                    super::ops::Mop::Poll(p) => {
                        for (k, pairs) in p {
                            for &(o, v) in pairs {
                                if let Some(o) = o {
                                    a.note(k, o, v, i);
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        for (&k, offsets) in &a.log {
            let order: Vec<(i64, ValueSet)> = offsets
                .iter()
                .map(|(&o, vs)| (o, vs.keys().copied().collect()))
                .collect();
            let mut index: BTreeMap<i64, (usize, usize)> = BTreeMap::new();
            for (i, (_, vs)) in order.iter().enumerate() {
                for &v in vs {
                    index.entry(v).and_modify(|e| e.1 = i).or_insert((i, i));
                }
            }
            a.order.insert(k, order);
            a.index.insert(k, index);
        }
        Ok(a)
    }

    fn note(&mut self, key: &'a str, offset: i64, value: i64, op: usize) {
        self.log
            .entry(key)
            .or_default()
            .entry(offset)
            .or_default()
            .entry(value)
            .or_default()
            .insert(op);
    }

    /// Ok, or info with some sent value read by an ok op.
    fn committed(&self, op: &KOp) -> bool {
        match op.outcome {
            Outcome::Ok => true,
            Outcome::Fail => false,
            Outcome::Info => op.writes().iter().any(|(k, vs)| {
                self.read
                    .get(k)
                    .is_some_and(|r| vs.iter().any(|v| r.contains(v)))
            }),
        }
    }

    fn event(&self, op: usize) -> usize {
        self.ops[op].event
    }

    /// The first dense index of `value` in `key`.
    fn idx(&self, key: &str, value: i64) -> Option<usize> {
        self.index.get(key)?.get(&value).map(|e| e.0)
    }

    fn offsets_of(&self, key: &str, value: i64) -> Vec<i64> {
        self.log.get(key).map_or_else(Vec::new, |log| {
            log.iter()
                .filter(|(_, vs)| vs.contains_key(&value))
                .map(|(&o, _)| o)
                .collect()
        })
    }

    fn inconsistent_offsets(&self, out: &mut Vec<Anomaly>) {
        for (&k, log) in &self.log {
            for (&o, vs) in log.iter().filter(|(_, vs)| vs.len() > 1) {
                let events = vs.values().flatten().map(|&i| self.event(i));
                let values: Vec<i64> = vs.keys().copied().collect();
                let detail = format!("offset {o} holds values {}", list(&values));
                out.push(anomaly(
                    AnomalyKind::InconsistentOffsets,
                    k,
                    values,
                    vec![o],
                    events,
                    detail,
                ));
            }
        }
    }

    fn duplicates(&self, out: &mut Vec<Anomaly>) {
        for (&k, log) in &self.log {
            let mut at: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
            for (&o, vs) in log {
                for &v in vs.keys() {
                    at.entry(v).or_default().push(o);
                }
            }
            for (v, offsets) in at.into_iter().filter(|(_, os)| os.len() > 1) {
                let events = offsets
                    .iter()
                    .flat_map(|o| log[o][&v].iter())
                    .map(|&i| self.event(i))
                    .collect::<Vec<_>>();
                let detail = format!("value {v} at offsets {}", list(&offsets));
                out.push(anomaly(
                    AnomalyKind::Duplicate,
                    k,
                    vec![v],
                    offsets,
                    events,
                    detail,
                ));
            }
        }
    }

    /// Lost writes, and the keys' values they cover (so that `unseen` does
    /// not report them again).
    fn lost_writes(&self, out: &mut Vec<Anomaly>) -> BTreeSet<(&'a str, i64)> {
        let mut lost_set = BTreeSet::new();
        for (&k, read) in &self.read {
            let (Some(order), Some(index)) = (self.order.get(k), self.index.get(k)) else {
                continue;
            };
            // The highest index that must have been read: the latest of
            // the first appearances of the values read.
            let Some(bound) = read.iter().filter_map(|v| index.get(v)).map(|e| e.0).max() else {
                continue;
            };
            let (bound_offset, bound_values) = &order[bound];
            let max_reader = bound_values
                .iter()
                .find_map(|&v| self.readers.get(&(k, v)).and_then(|r| r.first()))
                .copied();
            for (&v, &(_, last)) in index {
                if last > bound || read.contains(&v) {
                    continue;
                }
                let Some(&w) = self.writer.get(&(k, v)) else {
                    continue;
                };
                if !self.committed(&self.ops[w]) || self.deleted(k, v) {
                    continue;
                }
                lost_set.insert((k, v));
                let offsets = self.offsets_of(k, v);
                let detail = format!(
                    "value {v} ({}) was acknowledged but never read, \
                     though offset {bound_offset} was read",
                    at_offsets(&offsets)
                );
                let events =
                    std::iter::once(self.event(w)).chain(max_reader.map(|r| self.event(r)));
                out.push(anomaly(
                    AnomalyKind::LostWrite,
                    k,
                    vec![v],
                    offsets,
                    events,
                    detail,
                ));
            }
        }
        lost_set
    }

    fn unseen(&self, lost: &BTreeSet<(&str, i64)>, out: &mut Vec<Anomaly>) {
        for (&(k, v), &w) in &self.writer {
            let read = self.read.get(k).is_some_and(|r| r.contains(&v));
            if read || lost.contains(&(k, v)) || !self.committed(&self.ops[w]) || self.deleted(k, v)
            {
                continue;
            }
            let offsets = self.offsets_of(k, v);
            let detail = format!("value {v} was acknowledged but never read");
            out.push(anomaly(
                AnomalyKind::Unseen,
                k,
                vec![v],
                offsets,
                [self.event(w)],
                detail,
            ));
        }
    }

    /// Whether retention deleted value `v` of `k` before the run ended:
    /// every offset known for it is below the partition's final log start.
    fn deleted(&self, k: &str, v: i64) -> bool {
        let offsets = self.offsets_of(k, v);
        let floor = self.retention.final_start(k);
        !offsets.is_empty() && offsets.iter().all(|&o| o < floor)
    }

    /// Whether a read of index `j` of `k` by op `op` that skipped what
    /// came before lands at or below the log start of that moment: the
    /// consumer was reset there (OFFSET_OUT_OF_RANGE) over deleted records.
    fn reset_past_deleted(&self, k: &str, j: usize, op: usize) -> bool {
        self.order[k][j].0 <= self.retention.start_at(k, self.ops[op].time)
    }

    /// The values at indexes strictly between `i` and `j`.
    fn between(&self, key: &str, i: usize, j: usize) -> Vec<i64> {
        self.order.get(key).map_or_else(Vec::new, |o| {
            o[i + 1..j]
                .iter()
                .flat_map(|(_, vs)| vs.iter().copied())
                .collect()
        })
    }

    /// Per process, successive reads (`sends == false`) or sends of each
    /// key, compared in the version order.
    fn monotonic(&self, sends: bool, out: &mut Vec<Anomaly>) {
        let mut procs: BTreeMap<u64, BTreeMap<&str, (i64, usize)>> = BTreeMap::new();
        for (i, op) in self.ops.iter().enumerate() {
            let last = procs.entry(op.process).or_default();
            let counts = match op.kind {
                OpKind::Assign | OpKind::Subscribe => {
                    if op.outcome != Outcome::Fail {
                        last.retain(|k, _| op.keys.iter().any(|x| x == k));
                    }
                    continue;
                }
                OpKind::Send | OpKind::Poll | OpKind::Txn if sends => op.outcome != Outcome::Fail,
                _ => op.outcome == Outcome::Ok,
            };
            if !counts {
                continue;
            }
            let seq: BTreeMap<&str, Vec<i64>> = if sends {
                op.writes()
            } else {
                op.reads()
                    .into_iter()
                    .map(|(k, ps)| (k, ps.into_iter().map(|p| p.1).collect()))
                    .collect()
            };
            for (k, vs) in seq {
                for v in vs {
                    let Some(j) = self.idx(k, v) else { continue };
                    if let Some(&(pv, pop)) = last.get(k) {
                        if let Some(pi) = self.idx(k, pv) {
                            self.compare(sends, k, (pv, pi, pop), (v, j, i), out);
                        }
                    }
                    last.insert(k, (v, i));
                }
            }
        }
    }

    fn compare(
        &self,
        sends: bool,
        k: &str,
        (pv, pi, pop): (i64, usize, usize),
        (v, j, op): (i64, usize, usize),
        out: &mut Vec<Anomaly>,
    ) {
        let offsets = vec![self.order[k][pi].0, self.order[k][j].0];
        let events = [self.event(pop), self.event(op)];
        let what = if sends { "sent" } else { "read" };
        if j <= pi {
            let kind = if sends {
                AnomalyKind::NonmonotonicSend
            } else {
                AnomalyKind::NonmonotonicPoll
            };
            let detail = format!(
                "process {} {what} {pv} (offset {}) then {v} (offset {})",
                self.ops[op].process, offsets[0], offsets[1]
            );
            out.push(anomaly(kind, k, vec![pv, v], offsets, events, detail));
        } else if j > pi + 1 && !sends && !self.reset_past_deleted(k, j, op) {
            let skipped = self.between(k, pi, j);
            let detail = format!(
                "process {} read {pv} (offset {}) then {v} (offset {}), skipping {}",
                self.ops[op].process,
                offsets[0],
                offsets[1],
                list(&skipped)
            );
            out.push(anomaly(
                AnomalyKind::PollSkip,
                k,
                vec![pv, v],
                offsets,
                events,
                detail,
            ));
        }
    }

    fn g1a(&self, out: &mut Vec<Anomaly>) {
        for (&(k, v), &w) in &self.writer {
            if self.ops[w].outcome != Outcome::Fail {
                continue;
            }
            let Some(readers) = self.readers.get(&(k, v)) else {
                continue;
            };
            let events = std::iter::once(w)
                .chain(readers.iter().copied())
                .map(|i| self.event(i));
            let detail = format!("value {v}, whose send failed, was read");
            let offsets = self.offsets_of(k, v);
            out.push(anomaly(
                AnomalyKind::G1a,
                k,
                vec![v],
                offsets,
                events,
                detail,
            ));
        }
    }
}

/// Runs every check over decoded ops (in invocation order). An error names
/// the event index of the offending op.
pub fn analyse(ops: &[KOp]) -> Result<Vec<Anomaly>, (usize, String)> {
    analyse_with_retention(ops, &Retention::default())
}

/// Where each partition's log started over time (the highest log start of
/// any of its replicas), when retention or DeleteRecords moved it: records
/// below it were deleted. A history alone cannot tell deleted records from
/// lost ones, so only a run that watched the brokers can say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Per key: (simulated time in µs, log start from then on), rising.
    pub starts: BTreeMap<String, Vec<(u64, i64)>>,
}

impl Retention {
    /// The log start of `key` at time `t` (0 before any deletion).
    pub fn start_at(&self, key: &str, t: u64) -> i64 {
        self.starts.get(key).map_or(0, |s| {
            let n = s.partition_point(|&(at, _)| at <= t);
            if n == 0 {
                0
            } else {
                s[n - 1].1
            }
        })
    }

    /// The log start of `key` at the end of the run.
    pub fn final_start(&self, key: &str) -> i64 {
        self.starts
            .get(key)
            .and_then(|s| s.last())
            .map_or(0, |&(_, o)| o)
    }
}

/// [`analyse`], told which records retention deleted: a record deleted
/// before any consumer read it is neither a lost write nor unseen, and a
/// read that jumps to an offset at or below the log start of that moment
/// is a consumer reset over deleted records, not a poll skip.
pub fn analyse_with_retention(
    ops: &[KOp],
    retention: &Retention,
) -> Result<Vec<Anomaly>, (usize, String)> {
    let a = Analysis::new(ops, retention)?;
    let mut out = Vec::new();
    a.inconsistent_offsets(&mut out);
    a.duplicates(&mut out);
    let lost = a.lost_writes(&mut out);
    a.unseen(&lost, &mut out);
    a.monotonic(false, &mut out);
    a.monotonic(true, &mut out);
    a.g1a(&mut out);
    out.sort_by(|x, y| {
        (x.kind, &x.key, &x.events, &x.values, &x.offsets)
            .cmp(&(y.kind, &y.key, &y.events, &y.values, &y.offsets))
    });
    Ok(out)
}
