//! The znodes of a Kafka cluster in ZooKeeper mode, their paths and their
//! (text) encodings.
//!
//! - `/brokers/ids/<id>`: ephemeral, one per live broker (data: the id);
//! - `/controller`: ephemeral, data: the controller's broker id;
//! - `/controller_epoch`: the controller epoch, bumped by each new
//!   controller with a conditional setData;
//! - `/brokers/topics/<topic>`: the replica assignment, written by whoever
//!   creates the topic, e.g. `0=1,2,3;1=2,3,1` (partition = replicas);
//! - `/brokers/topics/<topic>/partitions/<p>/state`: leader, leader epoch,
//!   ISR and controller epoch, e.g. `leader=1;epoch=3;isr=1,2;ce=2`
//!   (`leader=-1` when offline). The controller writes it (guarded by a
//!   check on `/controller_epoch`'s version); the leader updates the ISR
//!   with a setData conditional on the version it last saw.

use std::collections::BTreeMap;

use crate::kafka::types::{PartitionState, Tp};
use crate::node::NodeId;

/// Persistent parents created by every broker at startup.
pub const PARENTS: &[&str] = &["/brokers", "/brokers/ids", "/brokers/topics"];
/// The controller's ephemeral znode.
pub const CONTROLLER: &str = "/controller";
/// The controller epoch znode.
pub const CONTROLLER_EPOCH: &str = "/controller_epoch";
/// Where brokers register.
pub const BROKER_IDS: &str = "/brokers/ids";
/// Where topics live.
pub const TOPICS: &str = "/brokers/topics";

/// `/brokers/ids/<id>`.
pub fn broker_path(id: NodeId) -> String {
    format!("{BROKER_IDS}/{id}")
}

/// `/brokers/topics/<topic>`.
pub fn topic_path(topic: &str) -> String {
    format!("{TOPICS}/{topic}")
}

/// The partition-state znode of `tp` and its two parents (in creation
/// order: `.../partitions`, `.../partitions/<p>`, `.../state`).
pub fn state_paths(tp: &Tp) -> [String; 3] {
    let parts = format!("{}/partitions", topic_path(&tp.topic));
    let p = format!("{parts}/{}", tp.partition);
    let state = format!("{p}/state");
    [parts, p, state]
}

fn ids(v: &[NodeId]) -> String {
    v.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_ids(s: &str) -> Option<Vec<NodeId>> {
    if s.is_empty() {
        return Some(Vec::new());
    }
    s.split(',').map(|x| x.parse().ok()).collect()
}

/// Encodes a replica assignment (partition -> replicas).
pub fn encode_assignment(a: &BTreeMap<u32, Vec<NodeId>>) -> Vec<u8> {
    a.iter()
        .map(|(p, r)| format!("{p}={}", ids(r)))
        .collect::<Vec<_>>()
        .join(";")
        .into_bytes()
}

/// Decodes a replica assignment.
pub fn decode_assignment(b: &[u8]) -> Option<BTreeMap<u32, Vec<NodeId>>> {
    let s = std::str::from_utf8(b).ok()?;
    let mut out = BTreeMap::new();
    for part in s.split(';').filter(|x| !x.is_empty()) {
        let (p, r) = part.split_once('=')?;
        out.insert(p.parse().ok()?, parse_ids(r)?);
    }
    Some(out)
}

/// Encodes a partition state.
pub fn encode_state(s: &PartitionState) -> Vec<u8> {
    let leader = s.leader.map(|l| l as i64).unwrap_or(-1);
    format!(
        "leader={leader};epoch={};isr={};ce={}",
        s.leader_epoch,
        ids(&s.isr),
        s.controller_epoch
    )
    .into_bytes()
}

/// Decodes a partition state.
pub fn decode_state(b: &[u8]) -> Option<PartitionState> {
    let s = std::str::from_utf8(b).ok()?;
    let mut f = BTreeMap::new();
    for kv in s.split(';') {
        let (k, v) = kv.split_once('=')?;
        f.insert(k, v);
    }
    let leader: i64 = f.get("leader")?.parse().ok()?;
    Some(PartitionState {
        leader: (leader >= 0).then_some(leader as NodeId),
        leader_epoch: f.get("epoch")?.parse().ok()?,
        isr: parse_ids(f.get("isr")?)?,
        controller_epoch: f.get("ce")?.parse().ok()?,
    })
}

/// Encodes a number (broker id, controller epoch).
pub fn encode_u32(n: u32) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// Decodes a number.
pub fn decode_u32(b: &[u8]) -> Option<u32> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let s = PartitionState {
            leader: Some(2),
            leader_epoch: 7,
            isr: vec![2, 3],
            controller_epoch: 4,
        };
        assert_eq!(decode_state(&encode_state(&s)), Some(s.clone()));
        let off = PartitionState {
            leader: None,
            isr: vec![],
            ..s
        };
        assert_eq!(decode_state(&encode_state(&off)), Some(off));
        let a = BTreeMap::from([(0, vec![1, 2, 3]), (1, vec![2, 3, 1])]);
        assert_eq!(decode_assignment(&encode_assignment(&a)), Some(a));
        assert_eq!(
            state_paths(&Tp::new("t", 1))[2],
            "/brokers/topics/t/partitions/1/state"
        );
    }
}
