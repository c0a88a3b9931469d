//! The consumer-group workload: producers as in the queue workload, and
//! consumers that are group members running the application's loop of
//! `poll` (process what it returns) and `commit` (commitSync of what was
//! processed; skipped with auto-commit).
//!
//! History shapes (what `system::group::checks` reads):
//! - `send`: as the queue workload.
//! - `poll`: ok value `{"<p>": [[offset, value], ...]}`; meta
//!   `{"member", "generation", "owned": [p], "assigned": [[p, start,
//!   committed|null, generation, asked µs, member]], "revoked": [p],
//!   "commits": [{"member",
//!   "generation", "offsets": {"<p>": next}, "type": "ok"|"fail"|"info",
//!   "error", "started": µs}], "resets": [[p, offset]], "lost":
//!   null|"ERROR"}`; a commit made inside a call gives the simulated time
//!   (µs) the member began it, which may be before the call.
//! - `commit`: completion value `{"member", "generation", "offsets":
//!   {"<p>": next}}`; ok, fail (surely not applied) or info (unknown).

use std::collections::BTreeSet;

use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use kzsim_model::group::{CommitOutcome, CommitRecord, GroupEvents, GroupReply, GroupRequest};
use kzsim_model::kafka::Tp;
use kzsim_model::{ClientReply, ClientRequest};

use crate::history::EventType;
use crate::workload::kafka::{decode_value, KafkaWorkload};
use crate::workload::{OpCall, OpDone, Workload};

/// The group workload.
pub struct GroupWorkload {
    producers_wl: KafkaWorkload,
    threads: u64,
    producers: u64,
    /// Consumers commit after processing (false: auto-commit).
    explicit_commit: bool,
    /// Consumer processes with processed records not yet committed.
    dirty: BTreeSet<u64>,
}

impl GroupWorkload {
    /// A workload over `partitions` partitions of `topic`, `threads`
    /// threads of which the first `producers` produce.
    pub fn new(
        topic: &str,
        partitions: u32,
        threads: u64,
        producers: u64,
        explicit_commit: bool,
    ) -> GroupWorkload {
        GroupWorkload {
            producers_wl: KafkaWorkload::new(topic, partitions, threads, threads, producers),
            threads: threads.max(1),
            producers,
            explicit_commit,
            dirty: BTreeSet::new(),
        }
    }

    fn is_producer(&self, process: u64) -> bool {
        process % self.threads < self.producers
    }
}

fn offsets_json(offsets: &[(Tp, u64)]) -> Value {
    let mut m = Map::new();
    for (tp, o) in offsets {
        m.insert(tp.partition.to_string(), json!(o));
    }
    Value::Object(m)
}

fn outcome(o: &CommitOutcome) -> (EventType, Option<String>) {
    match o {
        CommitOutcome::Ok => (EventType::Ok, None),
        CommitOutcome::Failed(e) => (EventType::Fail, Some(e.to_string())),
        CommitOutcome::Unknown(e) => (EventType::Info, Some(e.to_string())),
    }
}

fn commit_json(c: &CommitRecord) -> Value {
    let (kind, error) = outcome(&c.outcome);
    let mut v = json!({
        "member": c.member,
        "generation": c.generation,
        "offsets": offsets_json(&c.offsets),
        "type": kind,
        "started": c.started.as_us(),
    });
    if let Some(e) = error {
        v["error"] = json!(e);
    }
    v
}

fn parts(tps: &[Tp]) -> Value {
    json!(tps.iter().map(|t| t.partition).collect::<Vec<_>>())
}

/// The meta of a group call: what happened inside it.
pub fn events_json(member: &str, generation: i32, owned: &[Tp], e: &GroupEvents) -> Value {
    json!({
        "member": member,
        "generation": generation,
        "owned": parts(owned),
        "assigned": e.assigned.iter().map(|a| json!([a.tp.partition, a.start, a.committed, a.generation, a.asked.as_us(), a.member])).collect::<Vec<_>>(),
        "revoked": parts(&e.revoked),
        "commits": e.commits.iter().map(commit_json).collect::<Vec<_>>(),
        "resets": e.resets.iter().map(|(tp, o)| json!([tp.partition, o])).collect::<Vec<_>>(),
        "lost": e.lost.map(|x| x.to_string()),
    })
}

impl Workload for GroupWorkload {
    fn invoke(&mut self, process: u64, rng: &mut ChaCha8Rng) -> OpCall {
        if self.is_producer(process) {
            return self.producers_wl.invoke(process, rng);
        }
        if self.explicit_commit && self.dirty.contains(&process) {
            return OpCall {
                req: ClientRequest::Group(GroupRequest::Commit),
                f: "commit",
                key: None,
                value: Value::Null,
            };
        }
        OpCall {
            req: ClientRequest::Group(GroupRequest::Poll),
            f: "poll",
            key: None,
            value: Value::Null,
        }
    }

    fn complete(&mut self, process: u64, call: &OpCall, reply: &ClientReply) -> OpDone {
        if self.is_producer(process) {
            return self.producers_wl.complete(process, call, reply);
        }
        let ClientReply::Group(reply) = reply else {
            return OpDone::new(
                EventType::Info,
                call.value.clone(),
                Some("not a group reply".into()),
            );
        };
        match reply {
            GroupReply::Polled {
                member,
                generation,
                owned,
                records,
                events,
            } => {
                let mut read: Map<String, Value> = Map::new();
                for (tp, offset, bytes) in records {
                    let entry = read
                        .entry(tp.partition.to_string())
                        .or_insert_with(|| json!([]));
                    let v = decode_value(bytes).map_or(Value::Null, |v| json!(v));
                    if let Value::Array(a) = entry {
                        a.push(json!([offset, v]));
                    }
                }
                if !records.is_empty() {
                    self.dirty.insert(process);
                }
                let mut done = OpDone::new(EventType::Ok, Value::Object(read), None);
                done.meta = Some(events_json(member, *generation, owned, events));
                done
            }
            GroupReply::Committed { commit, events } => {
                self.dirty.remove(&process);
                let (kind, error) = outcome(&commit.outcome);
                let value = json!({
                    "member": commit.member,
                    "generation": commit.generation,
                    "offsets": offsets_json(&commit.offsets),
                });
                let mut done = OpDone::new(kind, value, error);
                // Members report assignment changes in polls only; a
                // commit's meta holds the commits made inside it.
                if !events.commits.is_empty() || events.lost.is_some() {
                    done.meta = Some(events_json(&commit.member, commit.generation, &[], events));
                }
                done
            }
        }
    }

    fn stops_early(&self, process: u64) -> bool {
        self.is_producer(process)
    }
}
