//! Consumer groups on the Kafka system: the settings a scenario gives them
//! (`[cluster.config]` keys, read when `workload.kind = "group"`), the
//! member nodes (the coordinator protocol's [`GroupMember`] or the
//! ZooKeeper-era [`ZkConsumer`]), and the group checks (`checks`).
//!
//! `[cluster.config]` keys for groups: `group_protocol` (`"coordinator"`,
//! the default, or `"zookeeper"`), `assignor` (`"range"`, the default, or
//! `"cooperative-sticky"`), `session_timeout_ms` (1000),
//! `heartbeat_interval_ms` (100), `max_poll_interval_ms` (1500),
//! `auto_commit` (false: the application commits after each poll that
//! returned records), `auto_commit_interval_ms` (200),
//! `offsets_partitions` (3), `group_initial_rebalance_delay_ms` (100).
//! Durations are 1 ms to an hour (the rebalance delay may be 0),
//! `offsets_partitions` 1 to 50.

pub mod checks;
#[cfg(test)]
mod checks_tests;

use kzsim_model::group::{
    Assignor, CoordinatorConfig, GroupMember, GroupState, GroupView, MemberConfig, ZkConsumer,
    ZkConsumerConfig,
};
use kzsim_model::kafka::KafkaBroker;
use kzsim_model::{BugSet, Node, NodeId};
use serde_json::Value;

use crate::history::{History, Operation, Outcome};
use crate::outcome::Violation;
use crate::system::{config_bool, config_int, MS};

/// The group id every member uses.
pub const GROUP: &str = "kzsim-group";

/// Which consumer-group implementation the consumers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupProtocol {
    /// The broker-side group coordinator (Kafka 0.9 and later).
    Coordinator,
    /// Kafka 0.8's ZooKeeper-based high-level consumer.
    Zookeeper,
}

/// The group settings of a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSettings {
    /// The implementation.
    pub protocol: GroupProtocol,
    /// The members' settings.
    pub member: MemberConfig,
    /// The brokers' coordinator settings.
    pub coordinator: CoordinatorConfig,
}

/// The group keys of `[cluster.config]`.
pub const GROUP_KEYS: &str = "group_protocol, assignor, session_timeout_ms, heartbeat_interval_ms, max_poll_interval_ms, auto_commit, auto_commit_interval_ms, offsets_partitions, group_initial_rebalance_delay_ms";

impl GroupSettings {
    /// The defaults for a group over `partitions` partitions of `topic`.
    pub fn new(topic: &str, partitions: u32) -> GroupSettings {
        GroupSettings {
            protocol: GroupProtocol::Coordinator,
            member: MemberConfig {
                group: GROUP.to_string(),
                topic: topic.to_string(),
                partitions,
                ..MemberConfig::default()
            },
            coordinator: CoordinatorConfig::default(),
        }
    }

    /// Reads one `[cluster.config]` key; `None` when it is not a group key.
    pub fn parse(&mut self, key: &str, v: &toml::Value) -> Option<Result<(), String>> {
        let positive = |v: &toml::Value| config_int(v, key, MS);
        let r = match key {
            "group_protocol" => match v.as_str() {
                Some("coordinator") => {
                    self.protocol = GroupProtocol::Coordinator;
                    Ok(())
                }
                Some("zookeeper") => {
                    self.protocol = GroupProtocol::Zookeeper;
                    Ok(())
                }
                _ => Err(
                    "cluster.config.group_protocol must be \"coordinator\" or \"zookeeper\"".into(),
                ),
            },
            "assignor" => match v.as_str() {
                Some("range") => {
                    self.member.assignor = Assignor::Range;
                    Ok(())
                }
                Some("cooperative-sticky") => {
                    self.member.assignor = Assignor::CooperativeSticky;
                    Ok(())
                }
                _ => Err(
                    "cluster.config.assignor must be \"range\" or \"cooperative-sticky\"".into(),
                ),
            },
            "session_timeout_ms" => positive(v).map(|n| self.member.session_timeout_ms = n),
            "heartbeat_interval_ms" => positive(v).map(|n| self.member.heartbeat_interval_ms = n),
            "max_poll_interval_ms" => positive(v).map(|n| self.member.max_poll_interval_ms = n),
            "auto_commit" => config_bool(v, key).map(|b| self.member.auto_commit = b),
            "auto_commit_interval_ms" => {
                positive(v).map(|n| self.member.auto_commit_interval_ms = n)
            }
            "offsets_partitions" => {
                config_int(v, key, 1..=50).map(|n| self.coordinator.offsets_partitions = n as u32)
            }
            "group_initial_rebalance_delay_ms" => config_int(v, key, 0..=*MS.end())
                .map(|n| self.coordinator.initial_rebalance_delay_ms = n),
            _ => return None,
        };
        Some(r)
    }

    /// Checks the settings against each other and the run: the workload
    /// issues no call in the last quarter of the quiet period (so the
    /// final state is quiescent), and a member must not leave the group
    /// for that silence before the end-of-run checks read it.
    pub fn validate(&self, brokers: u32, quiet_ms: u64) -> Result<(), String> {
        let m = &self.member;
        let silence = quiet_ms / 4;
        if m.max_poll_interval_ms <= silence {
            return Err(format!(
                "cluster.config.max_poll_interval_ms ({}) must exceed the last quarter of faults.quiet_ms ({silence} ms), in which the workload calls nothing: the members would leave the group before the end-of-run checks",
                m.max_poll_interval_ms
            ));
        }
        if m.heartbeat_interval_ms >= m.session_timeout_ms {
            return Err(format!(
                "cluster.config.heartbeat_interval_ms ({}) must be below session_timeout_ms ({})",
                m.heartbeat_interval_ms, m.session_timeout_ms
            ));
        }
        if (brokers as usize) < self.coordinator.offsets_replication_factor {
            return Err(format!(
                "consumer groups need at least {} brokers for the offsets topic's replication factor, not {brokers}",
                self.coordinator.offsets_replication_factor
            ));
        }
        Ok(())
    }

    /// Builds a consumer node.
    pub fn build_member(
        &self,
        id: NodeId,
        zk: &[NodeId],
        brokers: &[NodeId],
        bugs: &BugSet,
    ) -> Box<dyn Node> {
        let _ = id;
        match self.protocol {
            GroupProtocol::Coordinator => Box::new(GroupMember::new(
                brokers.to_vec(),
                self.member.clone(),
                bugs,
            )),
            GroupProtocol::Zookeeper => Box::new(ZkConsumer::new(
                zk.to_vec(),
                brokers.to_vec(),
                &self.member.group,
                &self.member.topic,
                self.member.partitions,
                ZkConsumerConfig {
                    zk_session_timeout_ms: self.member.session_timeout_ms,
                    auto_commit: self.member.auto_commit,
                    ..ZkConsumerConfig::default()
                },
                bugs,
            )),
        }
    }
}

/// The end-of-run liveness check of the coordinator protocol: after the
/// quiet period exactly one live broker has the group loaded, and there it
/// is Stable (`group-not-recovered` otherwise).
pub fn final_group_state(brokers: &[(NodeId, Option<&KafkaBroker>)]) -> Vec<Violation> {
    let loaded: Vec<(NodeId, GroupView)> = brokers
        .iter()
        .filter_map(|&(id, b)| b?.groups().remove(GROUP).map(|v| (id, v)))
        .collect();
    let why = match loaded.as_slice() {
        [] => "no live broker has the group loaded at the end".to_string(),
        [(_, v)] if v.state == GroupState::Stable => return Vec::new(),
        [(b, v)] => format!(
            "the group's coordinator (broker {b}) ends in state {:?} at generation {} with {} members, not Stable",
            v.state,
            v.generation,
            v.members.len()
        ),
        many => format!(
            "brokers {} all have the group loaded at the end: one coordinator should",
            many.iter()
                .map(|(b, _)| b.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    vec![Violation::new("group-not-recovered", why, vec![])]
}

/// The group history as the queue checks read it: before every poll that
/// changed the member's partitions (members report assignment changes in
/// polls only), an `assign` of the partitions it owns after it (a
/// rebalance is a new assignment to the queue checker, so a re-read after
/// a hand-off is not a non-monotonic poll); commits are left out.
pub fn queue_view(history: &History, ops: &[Operation]) -> Vec<Operation> {
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        if op.f == "poll" && op.outcome == Outcome::Ok {
            let meta = op
                .complete_index
                .and_then(|i| history.events.get(i))
                .and_then(|e| e.meta.as_ref());
            if let Some(m) = meta {
                let changed = ["assigned", "revoked"]
                    .iter()
                    .any(|k| m[*k].as_array().is_some_and(|a| !a.is_empty()))
                    || !m["lost"].is_null();
                if changed {
                    // Partitions taken in this call start afresh: first an
                    // assignment without them, then with them.
                    let taken: Vec<&Value> = m["assigned"]
                        .as_array()
                        .map(|a| a.iter().map(|x| &x[0]).collect())
                        .unwrap_or_default();
                    let owned = m["owned"].as_array().cloned().unwrap_or_default();
                    let kept: Vec<Value> = owned
                        .iter()
                        .filter(|p| !taken.contains(p))
                        .cloned()
                        .collect();
                    for keys in [Value::Array(kept), Value::Array(owned)] {
                        let mut a = op.clone();
                        a.f = "assign".into();
                        a.input = keys;
                        a.output = Value::Null;
                        out.push(a);
                    }
                }
            }
        }
        if op.f == "commit" {
            continue;
        }
        out.push(op.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings are checked against each other and the run's silent
    /// end, with the offending values named.
    #[test]
    fn validate_names_what_is_wrong() {
        let mut s = GroupSettings::new("t", 4);
        assert_eq!(s.validate(3, 4_000), Ok(()));
        s.member.max_poll_interval_ms = 1_000;
        let e = s.validate(3, 4_000).unwrap_err();
        assert!(
            e.contains("max_poll_interval_ms (1000)") && e.contains("1000 ms"),
            "{e}"
        );
        s.member.max_poll_interval_ms = 1_001;
        assert_eq!(s.validate(3, 4_000), Ok(()));
        s.member.heartbeat_interval_ms = s.member.session_timeout_ms;
        let e = s.validate(3, 4_000).unwrap_err();
        assert!(e.contains("heartbeat_interval_ms"), "{e}");
        let s = GroupSettings::new("t", 4);
        let e = s.validate(2, 4_000).unwrap_err();
        assert!(e.contains("at least 3 brokers"), "{e}");
    }
}
