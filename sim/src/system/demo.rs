//! The demo register system and its checks (engine tests only).

use kzsim_model::demo::{DemoClient, DemoServer};
use kzsim_model::{BugSet, Node, NodeId};

use crate::history::{History, Outcome};
use crate::outcome::Violation;
use crate::scenario::Scenario;
use crate::system::{Layout, System};
use crate::workload::register::RegisterWorkload;
use crate::workload::Workload;

/// Anomalies the demo checks report.
pub const ANOMALIES: &[&str] = &["lost-write", "phantom-read", "malformed-history"];

/// The demo system.
pub struct DemoSystem {
    layout: Layout,
    bugs: BugSet,
    timeout_ms: u64,
    read_fraction: f64,
}

impl DemoSystem {
    /// Builds it from a scenario (no system-specific config keys). It may
    /// have no clients (`cluster.clients = 0` with `workload.processes =
    /// 0`), for engine tests with protocols of their own.
    pub fn new(scenario: &Scenario, bugs: &BugSet) -> Result<DemoSystem, String> {
        let c = &scenario.spec.cluster;
        if let Some(k) = c.config.keys().next() {
            return Err(format!("the demo system has no setting `{k}`"));
        }
        let kind = scenario.spec.workload.kind.as_str();
        if !kind.is_empty() && kind != "register" {
            return Err(format!(
                "unknown demo workload `{kind}` in workload.kind (known: register)"
            ));
        }
        Ok(DemoSystem {
            layout: Layout::new(c.servers, c.clients),
            bugs: bugs.clone(),
            timeout_ms: scenario.spec.workload.timeout_ms,
            read_fraction: scenario.spec.workload.read_fraction,
        })
    }
}

impl System for DemoSystem {
    fn unread_workload_settings(&self) -> &'static [&'static str] {
        &["keys"]
    }

    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn build(&self, id: NodeId) -> Box<dyn Node> {
        if self.layout.is_server(id) {
            Box::new(DemoServer::new(
                id,
                0,
                self.layout.servers.clone(),
                &self.bugs,
            ))
        } else {
            Box::new(DemoClient::new(0, self.timeout_ms))
        }
    }

    fn workload(&self) -> Box<dyn Workload> {
        Box::new(RegisterWorkload::new(self.read_fraction))
    }

    fn check(&self, history: &History, _nodes: &[Option<&dyn Node>]) -> Vec<Violation> {
        check_register(history)
    }

    fn anomalies(&self) -> &'static [&'static str] {
        ANOMALIES
    }
}

/// A sound (not complete) register check for unique writes:
/// - `lost-write`: a read returned a value (or nothing) although a later write
///   had completed before the read began;
/// - `phantom-read`: a read returned a value no write could have produced.
pub fn check_register(history: &History) -> Vec<Violation> {
    let ops = match history.operations() {
        Ok(ops) => ops,
        Err(e) => return vec![Violation::new("malformed-history", e.to_string(), vec![])],
    };
    // Ok writes sorted by completion, with the running max of invoke times.
    let mut acked: Vec<(u64, u64, usize)> = ops
        .iter()
        .filter(|o| o.f == "write" && o.outcome == Outcome::Ok)
        .map(|o| {
            (
                o.complete_time.unwrap_or(u64::MAX),
                o.invoke_time,
                o.invoke_index,
            )
        })
        .collect();
    acked.sort_unstable();
    let mut prefix_max: Vec<(u64, usize)> = Vec::with_capacity(acked.len());
    for &(_, inv, idx) in &acked {
        let best = prefix_max.last().copied().unwrap_or((0, usize::MAX));
        prefix_max.push(if inv >= best.0 || best.1 == usize::MAX {
            (inv, idx)
        } else {
            best
        });
    }
    let writes: std::collections::BTreeMap<u64, &crate::history::Operation> = ops
        .iter()
        .filter(|o| o.f == "write")
        .filter_map(|o| o.input.as_u64().map(|v| (v, o)))
        .collect();
    let mut out = Vec::new();
    for r in ops
        .iter()
        .filter(|o| o.f == "read" && o.outcome == Outcome::Ok)
    {
        // Latest-invoked write acknowledged before this read began.
        let n = acked.partition_point(|w| w.0 < r.invoke_time);
        let latest = (n > 0).then(|| prefix_max[n - 1]);
        match r.output.as_u64() {
            None => {
                if let Some((_, idx)) = latest {
                    out.push(Violation::new(
                        "lost-write",
                        format!(
                            "read at event {} saw an empty register after a write was acknowledged (event {idx})",
                            r.invoke_index
                        ),
                        vec![idx, r.invoke_index],
                    ));
                }
            }
            Some(v) => {
                let Some(w) = writes.get(&v) else {
                    out.push(Violation::new(
                        "phantom-read",
                        format!(
                            "read at event {} saw {v}, which was never written",
                            r.invoke_index
                        ),
                        vec![r.invoke_index],
                    ));
                    continue;
                };
                if w.outcome == Outcome::Fail {
                    out.push(Violation::new(
                        "phantom-read",
                        format!(
                            "read at event {} saw {v}, whose write failed",
                            r.invoke_index
                        ),
                        vec![w.invoke_index, r.invoke_index],
                    ));
                    continue;
                }
                if let (Outcome::Ok, Some(done), Some((inv, idx))) =
                    (w.outcome, w.complete_time, latest)
                {
                    if done < inv {
                        out.push(Violation::new(
                            "lost-write",
                            format!(
                                "read at event {} saw {v} (written at event {}), but the write at event {idx} had replaced it before the read began",
                                r.invoke_index, w.invoke_index
                            ),
                            vec![w.invoke_index, idx, r.invoke_index],
                        ));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType;
    use serde_json::{json, Value};

    fn h(events: &[(u64, EventType, &str, Value, u64)]) -> History {
        let mut h = History::new();
        for (p, t, f, v, time) in events {
            if *t == EventType::Invoke {
                h.invoke(*p, f, None, v.clone(), *time, None);
            } else {
                h.complete(*p, *t, f, None, v.clone(), *time, None, None);
            }
        }
        h
    }

    use EventType::*;

    #[test]
    fn fresh_reads_pass() {
        let hist = h(&[
            (1, Invoke, "write", json!(1), 0),
            (1, Ok, "write", json!(1), 10),
            (2, Invoke, "read", Value::Null, 11),
            (2, Ok, "read", json!(1), 12),
        ]);
        assert!(check_register(&hist).is_empty());
    }

    #[test]
    fn stale_read_after_newer_ack_fails() {
        let hist = h(&[
            (1, Invoke, "write", json!(1), 0),
            (1, Ok, "write", json!(1), 10),
            (1, Invoke, "write", json!(2), 11),
            (1, Ok, "write", json!(2), 20),
            (2, Invoke, "read", Value::Null, 21),
            (2, Ok, "read", json!(1), 22),
        ]);
        let v = check_register(&hist);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].kind, "lost-write");
    }

    #[test]
    fn concurrent_write_may_be_seen_or_not() {
        let hist = h(&[
            (1, Invoke, "write", json!(1), 0),
            (1, Ok, "write", json!(1), 10),
            (3, Invoke, "write", json!(2), 11),
            (2, Invoke, "read", Value::Null, 12),
            (2, Ok, "read", json!(1), 13),
            (3, Ok, "write", json!(2), 20),
        ]);
        assert!(check_register(&hist).is_empty());
    }

    #[test]
    fn info_write_may_show_up_later() {
        let hist = h(&[
            (1, Invoke, "write", json!(1), 0),
            (1, Info, "write", json!(1), 10),
            (2, Invoke, "read", Value::Null, 50),
            (2, Ok, "read", json!(1), 60),
        ]);
        assert!(check_register(&hist).is_empty());
    }

    #[test]
    fn empty_read_after_ack_and_failed_write_read_are_caught() {
        let hist = h(&[
            (1, Invoke, "write", json!(1), 0),
            (1, Ok, "write", json!(1), 10),
            (2, Invoke, "read", Value::Null, 11),
            (2, Ok, "read", Value::Null, 12),
            (3, Invoke, "write", json!(2), 13),
            (3, Fail, "write", json!(2), 14),
            (2, Invoke, "read", Value::Null, 15),
            (2, Ok, "read", json!(2), 16),
        ]);
        let kinds: Vec<String> = check_register(&hist).into_iter().map(|v| v.kind).collect();
        assert_eq!(kinds, vec!["lost-write", "phantom-read"]);
    }
}
