//! KRaft mode's own invariants (the Kafka checks apply unchanged beside
//! them): the metadata quorum's, watched after every step as Kafka's
//! `RaftEventSimulationTest` checks them (`monitor`), and at the end of a
//! run, voters agreeing on the committed log and every broker's metadata
//! image agreeing with the active controller's (`checks`).

pub mod checks;
pub mod monitor;

use kzsim_model::kafka::KafkaBroker;
use kzsim_model::kraft::{KraftController, MetadataImage};
use kzsim_model::raft::RaftCore;
use kzsim_model::Node;

/// The metadata-log replica of a node (a controller's, or a KRaft
/// broker's observer), with its image.
pub fn quorum_member(node: &dyn Node) -> Option<(&RaftCore, &MetadataImage)> {
    let any = node.as_any()?;
    if let Some(c) = any.downcast_ref::<KraftController>() {
        return Some((c.raft(), c.image()));
    }
    let b = any.downcast_ref::<KafkaBroker>()?;
    Some((b.metadata_quorum()?, b.metadata_image()?))
}

/// A value's fingerprint, for comparing logs cheaply.
pub(crate) fn fingerprint(epoch: u32, value: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    epoch.hash(&mut h);
    value.hash(&mut h);
    h.finish()
}
