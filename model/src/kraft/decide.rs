//! The active controller's partition decisions, as pure functions of the
//! metadata image (Kafka's `PartitionChangeBuilder`): which replicas stay
//! in the ISR (and, with KIP-966, in the ELR), and who leads.

use crate::kraft::image::MetadataImage;
use crate::kraft::records::PartitionRecord;
use crate::node::NodeId;

/// The settings the decisions depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElectionRules {
    /// `unclean.leader.election.enable`.
    pub unclean: bool,
    /// KIP-966's eligible leader replicas.
    pub elr: bool,
    /// `min.insync.replicas`.
    pub min_isr: usize,
}

/// What `p` becomes given the brokers' states in `img`: inactive (fenced
/// or shutting-down) replicas leave the ISR, never emptying it without ELR
/// (the last member stays, so only it can lead cleanly again); with ELR,
/// members that leave an ISR below `min_isr` join the ELR and the ISR may
/// empty. A leader that is no longer active is replaced by the first
/// active ISR member in replica order, else (ELR, empty ISR) the first
/// active ELR member, else (unclean) the first active replica, else none.
/// A shutting-down leader stays when no other member can take over. The
/// leader epoch moves with the leader, the partition epoch with anything.
pub fn recompute(
    p: &PartitionRecord,
    img: &MetadataImage,
    rules: ElectionRules,
) -> PartitionRecord {
    let active = |b: &NodeId| img.is_active(*b);
    let unfenced = |b: &NodeId| img.brokers.get(b).is_some_and(|r| !r.fenced);
    let mut n = p.clone();
    let kept: Vec<NodeId> = p.isr.iter().copied().filter(active).collect();
    if rules.elr {
        if kept.len() < rules.min_isr {
            for d in p.isr.iter().filter(|d| !kept.contains(d)) {
                if !n.elr.contains(d) {
                    n.elr.push(*d);
                }
            }
        }
        n.isr = kept;
        n.elr.retain(|e| !n.isr.contains(e));
        if n.isr.len() >= rules.min_isr {
            n.elr.clear();
        }
    } else if !kept.is_empty() {
        n.isr = kept;
    }
    let leader_active = p.leader.is_some_and(|l| active(&l) && n.isr.contains(&l));
    let others = p
        .replicas
        .iter()
        .copied()
        .any(|r| Some(r) != p.leader && active(&r) && n.isr.contains(&r));
    // A leader in a controlled shutdown keeps the partition (and its ISR
    // place) while no other in-sync replica can take it.
    let leader_stays = p
        .leader
        .is_some_and(|l| !active(&l) && unfenced(&l) && p.isr.contains(&l) && !others);
    if leader_stays {
        let l = p.leader.expect("leader");
        if !n.isr.contains(&l) {
            n.isr.push(l);
            n.isr.sort_unstable();
            n.elr.retain(|e| *e != l);
        }
    } else if !leader_active {
        let clean = p
            .replicas
            .iter()
            .copied()
            .find(|r| active(r) && n.isr.contains(r));
        let eligible = if rules.elr && n.isr.is_empty() {
            p.replicas
                .iter()
                .copied()
                .find(|r| active(r) && n.elr.contains(r))
        } else {
            None
        };
        let dirty = p.replicas.iter().copied().find(active);
        n.leader = match (clean, eligible, dirty) {
            (Some(l), _, _) => Some(l),
            (None, Some(l), _) => {
                n.isr = vec![l];
                n.elr.retain(|e| *e != l);
                Some(l)
            }
            (None, None, Some(l)) if rules.unclean => {
                n.isr = vec![l];
                n.elr.clear();
                Some(l)
            }
            _ => None,
        };
    }
    if n.leader != p.leader {
        n.leader_epoch += 1;
    }
    if n != *p {
        n.partition_epoch += 1;
    }
    n
}

/// KIP-966: a broker that restarted after an unclean shutdown may have
/// lost records it acknowledged; it leaves the ISR and the ELR of every
/// partition, even as the last member, and stops leading.
pub fn forget_unclean(p: &PartitionRecord, broker: NodeId) -> PartitionRecord {
    let mut n = p.clone();
    n.isr.retain(|&r| r != broker);
    n.elr.retain(|&r| r != broker);
    if n.leader == Some(broker) {
        n.leader = None;
        n.leader_epoch += 1;
    }
    if n != *p {
        n.partition_epoch += 1;
    }
    n
}

/// The first state of a new partition: the active replicas form the ISR,
/// the first of them leads.
pub fn initial(replicas: &[NodeId], img: &MetadataImage) -> Option<PartitionRecord> {
    let isr: Vec<NodeId> = replicas
        .iter()
        .copied()
        .filter(|r| img.is_active(*r))
        .collect();
    let leader = *isr.first()?;
    Some(PartitionRecord {
        replicas: replicas.to_vec(),
        isr,
        elr: Vec::new(),
        leader: Some(leader),
        leader_epoch: 0,
        partition_epoch: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kraft::image::BrokerRegistration;

    fn img(states: &[(NodeId, bool)]) -> MetadataImage {
        let mut i = MetadataImage::default();
        for &(b, fenced) in states {
            i.brokers.insert(
                b,
                BrokerRegistration {
                    epoch: 1,
                    incarnation: 1,
                    fenced,
                    shutting_down: false,
                },
            );
        }
        i
    }

    fn part(isr: &[NodeId], leader: Option<NodeId>) -> PartitionRecord {
        PartitionRecord {
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            elr: Vec::new(),
            leader,
            leader_epoch: 5,
            partition_epoch: 9,
        }
    }

    const PLAIN: ElectionRules = ElectionRules {
        unclean: false,
        elr: false,
        min_isr: 2,
    };

    #[test]
    fn a_fenced_leader_is_replaced_by_an_in_sync_replica_in_a_new_epoch() {
        let n = recompute(
            &part(&[1, 2, 3], Some(1)),
            &img(&[(1, true), (2, false), (3, false)]),
            PLAIN,
        );
        assert_eq!(
            (n.leader, n.isr.clone(), n.leader_epoch, n.partition_epoch),
            (Some(2), vec![2, 3], 6, 10)
        );
    }

    #[test]
    fn the_last_isr_member_stays_and_the_partition_goes_offline_without_unclean_election() {
        let n = recompute(
            &part(&[1], Some(1)),
            &img(&[(1, true), (2, false), (3, false)]),
            PLAIN,
        );
        assert_eq!((n.leader, n.isr.clone()), (None, vec![1]));
        let unclean = ElectionRules {
            unclean: true,
            ..PLAIN
        };
        let n = recompute(
            &part(&[1], Some(1)),
            &img(&[(1, true), (2, false), (3, false)]),
            unclean,
        );
        assert_eq!((n.leader, n.isr), (Some(2), vec![2]));
    }

    #[test]
    fn with_elr_members_leaving_a_small_isr_stay_eligible_and_an_unclean_restart_leaves_neither() {
        let elr = ElectionRules { elr: true, ..PLAIN };
        let n = recompute(
            &part(&[1, 2], Some(1)),
            &img(&[(1, false), (2, true), (3, false)]),
            elr,
        );
        assert_eq!((n.isr.clone(), n.elr.clone()), (vec![1], vec![2]));
        let n = recompute(&n, &img(&[(1, true), (2, true), (3, false)]), elr);
        assert_eq!(
            (n.leader, n.isr.clone(), n.elr.clone()),
            (None, vec![], vec![2, 1])
        );
        let back = recompute(&n, &img(&[(1, true), (2, false), (3, false)]), elr);
        assert_eq!((back.leader, back.isr.clone()), (Some(2), vec![2]));
        let gone = forget_unclean(&n, 2);
        let back = recompute(&gone, &img(&[(1, true), (2, false), (3, false)]), elr);
        assert_eq!(back.leader, None);
    }

    #[test]
    fn nothing_changes_when_every_member_is_active() {
        let p = part(&[1, 2, 3], Some(1));
        assert_eq!(
            recompute(&p, &img(&[(1, false), (2, false), (3, false)]), PLAIN),
            p
        );
    }
}
