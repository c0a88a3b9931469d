//! The Kafka queue workload, recording histories in the shape of Jepsen's
//! Kafka queue workload as `check::kafka` reads them.
//!
//! Each consumer node runs exactly one logical process at a time, a
//! producer node one or more (threads past the clients are producers).
//! Producer
//! processes `send` integers, unique per partition, to a random partition
//! (`[key, value]`, acknowledged as `[key, [offset, value]]`); a definite
//! error is `fail`, anything else (a delivery timeout, a lost connection)
//! `info`. Consumer processes first `assign` themselves every partition,
//! then `poll` (`{key: [[offset, value], ...]}`). Partition keys are the
//! partition indexes. With acks=0 a send is never acknowledged: `info`. Producers stop a quarter into the quiet period so the
//! consumers can read everything before the run ends.

use std::collections::BTreeSet;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use kzsim_model::kafka::{KafkaReply, KafkaRequest, Tp};
use kzsim_model::{ClientReply, ClientRequest};

use crate::history::EventType;
use crate::workload::{OpCall, OpDone, Workload};

/// The Kafka queue workload.
pub struct KafkaWorkload {
    topic: String,
    partitions: u32,
    /// Number of logical threads (processes `p` run on thread `p mod threads`).
    threads: u64,
    /// Threads `0..producers` and `clients..` are producers; the rest
    /// (one per consumer node) consumers.
    producers: u64,
    /// Client nodes.
    clients: u64,
    /// The next value, per partition.
    next_value: Vec<i64>,
    /// Consumer processes that have assigned themselves.
    assigned: BTreeSet<u64>,
}

impl KafkaWorkload {
    /// A workload over `partitions` partitions of `topic`, with `threads`
    /// threads on `clients` client nodes, of which the first `producers`
    /// produce; threads past the clients produce too.
    pub fn new(
        topic: &str,
        partitions: u32,
        threads: u64,
        clients: u64,
        producers: u64,
    ) -> KafkaWorkload {
        KafkaWorkload {
            topic: topic.to_string(),
            partitions: partitions.max(1),
            threads: threads.max(1),
            producers,
            clients,
            next_value: vec![0; partitions.max(1) as usize],
            assigned: BTreeSet::new(),
        }
    }

    fn is_producer(&self, process: u64) -> bool {
        let t = process % self.threads;
        t < self.producers || t >= self.clients
    }

    fn tps(&self) -> Vec<Tp> {
        (0..self.partitions)
            .map(|p| Tp::new(&self.topic, p))
            .collect()
    }
}

/// The integer a record's bytes hold (`None` for foreign bytes).
pub fn decode_value(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

impl Workload for KafkaWorkload {
    fn invoke(&mut self, process: u64, rng: &mut ChaCha8Rng) -> OpCall {
        if self.is_producer(process) {
            let p = rng.gen_range(0..self.partitions);
            let v = self.next_value[p as usize];
            self.next_value[p as usize] += 1;
            return OpCall {
                req: ClientRequest::Kafka(KafkaRequest::Send {
                    tp: Tp::new(&self.topic, p),
                    value: v.to_string().into_bytes(),
                }),
                f: "send",
                key: Some(json!(p)),
                value: json!([p, v]),
            };
        }
        if !self.assigned.contains(&process) {
            let keys: Vec<u32> = (0..self.partitions).collect();
            return OpCall {
                req: ClientRequest::Kafka(KafkaRequest::Assign(self.tps())),
                f: "assign",
                key: None,
                value: json!(keys),
            };
        }
        OpCall {
            req: ClientRequest::Kafka(KafkaRequest::Poll),
            f: "poll",
            key: None,
            value: Value::Null,
        }
    }

    fn complete(&mut self, process: u64, call: &OpCall, reply: &ClientReply) -> OpDone {
        let ClientReply::Kafka(reply) = reply else {
            return OpDone::new(
                EventType::Info,
                call.value.clone(),
                Some("not a Kafka reply".into()),
            );
        };
        match (call.f, reply) {
            // acks=0 acknowledges nothing: the outcome is unknown.
            ("send", KafkaReply::Sent { offset: None }) => OpDone::new(
                EventType::Info,
                call.value.clone(),
                Some("acks=0: no acknowledgement".into()),
            ),
            ("send", KafkaReply::Sent { offset }) => {
                let (p, v) = (call.value[0].clone(), call.value[1].clone());
                OpDone::new(EventType::Ok, json!([p, [offset, v]]), None)
            }
            ("send", KafkaReply::Error { error, definite }) => OpDone::new(
                if *definite {
                    EventType::Fail
                } else {
                    EventType::Info
                },
                call.value.clone(),
                Some(error.to_string()),
            ),
            ("assign", KafkaReply::Assigned) => {
                self.assigned.insert(process);
                OpDone::new(EventType::Ok, call.value.clone(), None)
            }
            ("poll", KafkaReply::Polled { records, truncated }) => {
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
                let mut done = OpDone::new(EventType::Ok, Value::Object(read), None);
                if !truncated.is_empty() {
                    let t: Vec<Value> = truncated
                        .iter()
                        .map(|(tp, o)| json!([tp.partition, o]))
                        .collect();
                    done.meta = Some(json!({ "truncated": t }));
                }
                done
            }
            (_, KafkaReply::Error { error, .. }) => {
                OpDone::new(EventType::Info, call.value.clone(), Some(error.to_string()))
            }
            (_, other) => OpDone::new(
                EventType::Info,
                call.value.clone(),
                Some(format!("unexpected reply {other:?}")),
            ),
        }
    }

    fn stops_early(&self, process: u64) -> bool {
        self.is_producer(process)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn producers_send_unique_values_and_consumers_assign_first() {
        let mut w = KafkaWorkload::new("t", 2, 4, 4, 2);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut sent = BTreeSet::new();
        for _ in 0..50 {
            let c = w.invoke(0, &mut rng);
            assert_eq!(c.f, "send");
            assert!(sent.insert((c.value[0].as_i64(), c.value[1].as_i64())));
        }
        let a = w.invoke(2, &mut rng);
        assert_eq!(a.f, "assign");
        w.complete(2, &a, &ClientReply::Kafka(KafkaReply::Assigned));
        assert_eq!(w.invoke(2, &mut rng).f, "poll");
        // A new process on the same thread assigns again.
        assert_eq!(w.invoke(6, &mut rng).f, "assign");
        assert!(w.stops_early(4) && !w.stops_early(3));
    }

    #[test]
    fn completions_have_the_checker_shapes() {
        let mut w = KafkaWorkload::new("t", 1, 2, 2, 1);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let s = w.invoke(0, &mut rng);
        let ok = w.complete(
            0,
            &s,
            &ClientReply::Kafka(KafkaReply::Sent { offset: Some(4) }),
        );
        assert_eq!(ok.value, json!([0, [4, 0]]));
        let err = w.complete(
            0,
            &s,
            &ClientReply::Kafka(KafkaReply::Error {
                error: kzsim_model::kafka::KafkaError::RequestTimedOut,
                definite: false,
            }),
        );
        assert_eq!(err.kind, EventType::Info);
        let p = OpCall {
            req: ClientRequest::Kafka(KafkaRequest::Poll),
            f: "poll",
            key: None,
            value: Value::Null,
        };
        let polled = w.complete(
            1,
            &p,
            &ClientReply::Kafka(KafkaReply::Polled {
                records: vec![(Tp::new("t", 0), 4, b"0".to_vec())],
                truncated: vec![],
            }),
        );
        assert_eq!(polled.value, json!({"0": [[4, 0]]}));
    }
}
