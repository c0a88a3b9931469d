//! The Kafka no-loss checker: the anomaly categories of Jepsen's Kafka
//! queue workload (`jepsen.tests.kafka`) over a queue history.
//!
//! # Categories
//!
//! See [`AnomalyKind`]: `inconsistent-offsets`, `duplicate`, `lost-write`,
//! `unseen`, `poll-skip`, `nonmonotonic-poll`, `nonmonotonic-send`, `G1a`.
//! A send is *acknowledged* (committed) when it is `ok`, or `info` and some
//! value it sent was read by an `ok` poll; a `fail`ed send never is. An
//! `ok` or `info` assign or subscribe that drops a key resets that
//! process's poll and send tracking of the key. Skips and reorderings are
//! measured in the partition's version order with offset gaps removed
//! (see [`analysis`]). Unlike Jepsen, a lost write is not also reported as
//! `unseen`, and reads (sends) within one op are compared with each other
//! as well as with the process's previous op, under the same categories
//! (Jepsen's `int-poll-skip` and `int-nonmonotonic-poll` fold into
//! `poll-skip` and `nonmonotonic-poll`).
//!
//! # History shapes
//!
//! Events are kzsim [`crate::history::Event`]s; the `key` field is ignored,
//! the partition is inside the value. Keys are partition names (JSON
//! strings or integers; integer keys are named in decimal), values are
//! integers unique per partition, offsets non-negative integers or `null`
//! when unknown. kzsim JSON lines:
//!
//! | `f` | invoke `value` | `ok` `value` |
//! |---|---|---|
//! | `send` | `[key, value]` | `[key, [offset, value]]` |
//! | `poll` | `null` | `{"key": [[offset, value], ...], ...}` |
//! | `txn` | `[["send", key, value], ["poll"], ...]` | `[["send", key, [offset, value]], ["poll", {..}], ...]` |
//! | `assign`, `subscribe` | `[key, ...]` | `[key, ...]` or `null` |
//!
//! ```json
//! {"process":0,"type":"invoke","f":"send","value":["p0",7]}
//! {"process":0,"type":"ok","f":"send","value":["p0",[3,7]]}
//! {"process":1,"type":"invoke","f":"poll"}
//! {"process":1,"type":"ok","f":"poll","value":{"p0":[[3,7]]}}
//! ```
//!
//! A `fail` or `info` completion may carry the invocation's value or none.
//! Jepsen EDN histories (and JSON lines in Jepsen's shape) use micro-op
//! vectors for every `:send`, `:poll` and `:txn`: `[[:send k v]]` completed
//! as `[[:send k [offset v]]]`, `[[:poll]]` completed as
//! `[[:poll {k [[offset v] ...]}]]`. Ops of other functions and nemesis ops
//! are ignored.
//!
//! ```
//! use kzsim_sim::check::{kafka, Format};
//! let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"send\",\"value\":[\"p\",1]}\n\
//!             {\"process\":0,\"type\":\"ok\",\"f\":\"send\",\"value\":[\"p\",[0,1]]}\n";
//! let (_, report) = kafka::check_text(Format::Jsonl, text).unwrap();
//! assert_eq!(report.anomalies[0].kind, kafka::AnomalyKind::Unseen);
//! ```

pub mod analysis;
pub mod ops;
pub mod report;
#[cfg(test)]
mod tests;

pub use analysis::Retention;
pub use ops::{KOp, Key, Mop, OpKind};
pub use report::{Anomaly, AnomalyKind, KafkaReport};

use super::error::CheckError;
use super::parse::{Format, Parsed};
use crate::history::{History, Operation};

/// Checks paired operations; errors name the event index (0-based) of the
/// offending operation's invocation.
pub fn check_operations(ops: &[Operation]) -> Result<KafkaReport, (usize, String)> {
    check_operations_with_retention(ops, &Retention::default())
}

/// [`check_operations`], told where retention moved each partition's log
/// start (see [`analysis::analyse_with_retention`]).
pub fn check_operations_with_retention(
    ops: &[Operation],
    retention: &Retention,
) -> Result<KafkaReport, (usize, String)> {
    let mut decoded = Vec::with_capacity(ops.len());
    for op in ops {
        if let Some(k) = ops::decode(op).map_err(|m| (op.invoke_index, m))? {
            decoded.push(k);
        }
    }
    let anomalies = analysis::analyse_with_retention(&decoded, retention)?;
    Ok(KafkaReport {
        ops: decoded.len(),
        anomalies,
    })
}

/// Checks a parsed history; errors name the source line.
pub fn check_parsed(parsed: &Parsed) -> Result<KafkaReport, CheckError> {
    let ops = parsed.operations()?;
    let report = check_operations(&ops).map_err(|(event, message)| CheckError::BadOperation {
        line: parsed.line_of(event),
        message,
    })?;
    if report.ops == 0 {
        let mut fs: Vec<&str> = ops.iter().map(|o| o.f.as_str()).collect();
        fs.sort_unstable();
        fs.dedup();
        return Err(CheckError::NothingToCheck(format!(
            "no queue operations (send, poll, txn, assign, subscribe) among the {} operations ({}): not a Kafka queue history",
            ops.len(),
            fs.join(", ")
        )));
    }
    Ok(report)
}

/// Checks a history the simulator recorded; errors name the 1-based event.
pub fn check_history(history: &History) -> Result<KafkaReport, CheckError> {
    let ops = history.operations().map_err(|e| CheckError::Parse {
        line: e.line,
        message: e.message,
    })?;
    check_operations(&ops).map_err(|(event, message)| CheckError::BadOperation {
        line: event + 1,
        message,
    })
}

/// Parses `text` (only [`Format::Jsonl`] and [`Format::Edn`] hold queue
/// histories) and checks it.
pub fn check_text(format: Format, text: &str) -> Result<(Parsed, KafkaReport), CheckError> {
    if !matches!(format, Format::Jsonl | Format::Edn) {
        return Err(CheckError::Usage(
            "the kafka model reads jsonl or edn histories".into(),
        ));
    }
    let parsed = format.parse(text)?;
    let report = check_parsed(&parsed)?;
    Ok((parsed, report))
}
