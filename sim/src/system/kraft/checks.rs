//! End-of-run checks of KRaft mode:
//!
//! - `raft-divergence`: the live voters' logs agree below the smallest of
//!   their high watermarks.
//! - `metadata-divergence`: after the quiet period every live, unfenced
//!   broker has applied the metadata log past its last change and holds
//!   the same image (brokers and partitions) as the active controller.

use kzsim_model::{Node, NodeId};

use crate::outcome::Violation;
use crate::system::kraft::{fingerprint, quorum_member};

/// The fingerprints of a replica's records in `from..to`.
fn prints(core: &kzsim_model::raft::RaftCore, from: u64, to: u64) -> Vec<u64> {
    core.read(from, to, usize::MAX)
        .iter()
        .flat_map(|b| {
            b.values
                .iter()
                .enumerate()
                .filter(move |(i, _)| (from..to).contains(&(b.base_offset + *i as u64)))
                .map(move |(_, v)| fingerprint(b.epoch, v))
        })
        .collect()
}

/// The voters' committed logs agree (where every one of them still holds
/// them: from the largest log start, below the smallest high watermark).
pub fn voters_agree(voters: &[(NodeId, Option<&dyn Node>)]) -> Vec<Violation> {
    let live: Vec<_> = voters
        .iter()
        .filter_map(|(id, n)| n.and_then(quorum_member).map(|(c, _)| (*id, c)))
        .collect();
    let Some(to) = live.iter().map(|(_, c)| c.high_watermark()).min() else {
        return Vec::new();
    };
    let from = live
        .iter()
        .map(|(_, c)| c.log().log_start())
        .max()
        .unwrap_or(0);
    if from >= to {
        return Vec::new();
    }
    let mut out = Vec::new();
    let logs: Vec<(NodeId, Vec<u64>)> = live
        .iter()
        .map(|(id, c)| (*id, prints(c, from, to)))
        .collect();
    for w in logs.windows(2) {
        let ((a, la), (b, lb)) = (&w[0], &w[1]);
        if let Some(i) = la.iter().zip(lb).position(|(x, y)| x != y) {
            out.push(Violation::new(
                "raft-divergence",
                format!(
                    "voters {a} and {b} differ at offset {}, below the committed offset {to}",
                    from + i as u64
                ),
                vec![],
            ));
        }
    }
    out
}

/// Every live unfenced broker's image equals the active controller's.
pub fn images_agree(
    controllers: &[(NodeId, Option<&dyn Node>)],
    brokers: &[(NodeId, Option<&kzsim_model::kafka::KafkaBroker>)],
) -> Vec<Violation> {
    let active = controllers.iter().find_map(|(id, n)| {
        let c = (*n)?
            .as_any()?
            .downcast_ref::<kzsim_model::kraft::KraftController>()?;
        c.is_active().then_some((*id, c.image()))
    });
    let Some((cid, img)) = active else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (b, node) in brokers {
        let Some(node) = node else { continue };
        let (Some(bimg), true) = (node.metadata_image(), node.kraft_unfenced()) else {
            continue;
        };
        let last = img.last_change.map_or(0, |o| o + 1);
        if bimg.applied < last {
            out.push(Violation::new(
                "metadata-divergence",
                format!(
                    "broker {b} applied the metadata log only to {}; controller {cid}'s last change is at {}",
                    bimg.applied,
                    last - 1
                ),
                vec![],
            ));
        } else if bimg.content() != img.content() {
            let what = first_difference(bimg, img);
            out.push(Violation::new(
                "metadata-divergence",
                format!("broker {b}'s metadata image differs from controller {cid}'s: {what}"),
                vec![],
            ));
        }
    }
    out
}

/// The first broker or partition two images disagree on.
pub(crate) fn first_difference(
    a: &kzsim_model::kraft::MetadataImage,
    b: &kzsim_model::kraft::MetadataImage,
) -> String {
    let brokers = a.brokers.keys().chain(b.brokers.keys());
    for id in brokers {
        let (x, y) = (a.brokers.get(id), b.brokers.get(id));
        if x != y {
            return format!("broker {id}: {x:?} against {y:?}");
        }
    }
    for tp in a.partitions.keys().chain(b.partitions.keys()) {
        let (x, y) = (a.partitions.get(tp), b.partitions.get(tp));
        if x != y {
            return format!("partition {tp}: {x:?} against {y:?}");
        }
    }
    "nothing".into()
}
