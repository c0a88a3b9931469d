//! The partition assignors the group leader runs, as pure functions of the
//! members' subscriptions and the topics' partition counts:
//!
//! - `range` (Kafka's `RangeAssignor`): eager. Per topic, the members
//!   subscribed to it sorted by member id split partitions `0..n` in
//!   contiguous ranges, the first `n % m` members taking one extra. What
//!   members say they own is ignored (under the eager protocol every member
//!   revoked everything before rejoining).
//! - `cooperative-sticky` (Kafka's `CooperativeStickyAssignor`, KIP-429 over
//!   KIP-341's generation-aware claims): members keep what they validly own
//!   as far as balance allows, and a partition that changes owner is only
//!   revoked in this round (its old owner's assignment lacks it, its new
//!   owner does not get it yet); the revoking member rejoins, and the next
//!   round, in which nobody owns the partition any more, hands it over.
//!
//! The steps of `cooperative-sticky`:
//!
//! 1. Claims. A member's `owned` partition counts only if the member
//!    subscribes to its topic and the partition exists. Of several members
//!    claiming one partition, the one with the highest `owned_generation`
//!    owns it; a tie at the highest generation leaves it unowned.
//! 2. Target. Every member keeps its valid claims; each unowned partition
//!    (ascending) goes to the subscribed member holding the fewest
//!    partitions (ties by member id). Then, while some member can pass a
//!    partition to a member holding at least two fewer that subscribes to
//!    its topic, directly or along a chain of members each passing one on
//!    (sizes in between unchanged), the chain that takes the fewest valid
//!    claims from their owners is applied (then the shortest, then the one
//!    from the fullest member, ties by member id; a member passes its
//!    highest-numbered partition first; the receiver is the emptiest, ties
//!    by member id). With every member subscribing the same topics this
//!    is Kafka's exact floor/ceil balance: an over-quota member gives up
//!    its highest-numbered partitions, and as many valid claims are kept
//!    as any balanced assignment can keep. With mixed subscriptions it
//!    ends at a least-squares balance (no improving chain is left), which
//!    is what makes a second round keep every claim of the first.
//! 3. Two phases. A partition whose target owner is not its valid current
//!    owner is left out of this round's assignment altogether; partitions
//!    nobody validly owns are assigned at once. The planted bug
//!    `group_cooperative_no_two_phase` (`no_two_phase`) hands such a
//!    partition to its new owner at once, while the old owner still holds
//!    it.
//!
//! Everything iterates `BTreeMap`s and `BTreeSet`s: the output depends only
//! on the input's content, not on the order members are listed in.

use std::collections::{BTreeMap, BTreeSet};

use crate::group::types::{Assignor, Generation, MemberId, Subscription};
use crate::kafka::Tp;

/// The assignment the group leader computes: member id -> partitions (sorted), every member present (possibly with an empty list).
pub type Assignment = std::collections::BTreeMap<MemberId, Vec<Tp>>;

/// The members by id (a member id listed twice counts once, with its last
/// subscription).
type Members<'a> = BTreeMap<&'a MemberId, &'a Subscription>;

/// Computes the leader's assignment of `topics` (topic -> partition count) to `members` (with their subscriptions) under `assignor`. `no_two_phase` is the planted bug `group_cooperative_no_two_phase` (ignored for range).
///
/// Topics a member subscribes to that are not in `topics` contribute
/// nothing; every member appears in the result, and each list is sorted by
/// topic, then partition.
pub fn assign(
    assignor: Assignor,
    members: &[(MemberId, Subscription)],
    topics: &BTreeMap<String, u32>,
    no_two_phase: bool,
) -> Assignment {
    let members: Members<'_> = members.iter().map(|(id, sub)| (id, sub)).collect();
    let mut out = match assignor {
        Assignor::Range => range(&members, topics),
        Assignor::CooperativeSticky => cooperative_sticky(&members, topics, no_two_phase),
    };
    for tps in out.values_mut() {
        tps.sort();
    }
    out
}

/// Whether `sub` subscribes to `topic`.
fn subscribes(sub: &Subscription, topic: &str) -> bool {
    sub.topics.iter().any(|t| t == topic)
}

/// Every member with an empty list.
fn empty_assignment(members: &Members<'_>) -> Assignment {
    members
        .keys()
        .map(|id| ((*id).clone(), Vec::new()))
        .collect()
}

/// Kafka's `RangeAssignor`.
fn range(members: &Members<'_>, topics: &BTreeMap<String, u32>) -> Assignment {
    let mut out = empty_assignment(members);
    for (topic, &n) in topics {
        let subscribed: Vec<&MemberId> = members
            .iter()
            .filter(|(_, sub)| subscribes(sub, topic))
            .map(|(id, _)| *id)
            .collect();
        if subscribed.is_empty() {
            continue;
        }
        let m = subscribed.len() as u32;
        let (quota, extra) = (n / m, n % m);
        let mut next = 0u32;
        for (i, id) in subscribed.into_iter().enumerate() {
            let len = quota + u32::from((i as u32) < extra);
            let list = out.get_mut(id).expect("every member is in the assignment");
            list.extend((next..next + len).map(|p| Tp::new(topic, p)));
            next += len;
        }
    }
    out
}

/// The partitions to assign: those of every existing topic at least one
/// member subscribes to.
fn universe(members: &Members<'_>, topics: &BTreeMap<String, u32>) -> BTreeSet<Tp> {
    topics
        .iter()
        .filter(|(topic, _)| members.values().any(|sub| subscribes(sub, topic)))
        .flat_map(|(topic, &n)| (0..n).map(move |p| Tp::new(topic, p)))
        .collect()
}

/// Step 1: each partition's valid current owner (partitions without one
/// are absent).
fn valid_owners<'a>(members: &Members<'a>, universe: &BTreeSet<Tp>) -> BTreeMap<Tp, &'a MemberId> {
    // Partition -> (highest generation claiming it, its claimant unless
    // two members claimed it at that generation).
    let mut best: BTreeMap<Tp, (Generation, Option<&'a MemberId>)> = BTreeMap::new();
    for (&id, &sub) in members {
        let claims: BTreeSet<&Tp> = sub
            .owned
            .iter()
            .filter(|tp| universe.contains(*tp) && subscribes(sub, &tp.topic))
            .collect();
        let generation = sub.owned_generation;
        for tp in claims {
            match best.get_mut(tp) {
                None => {
                    best.insert(tp.clone(), (generation, Some(id)));
                }
                Some(slot) if generation > slot.0 => *slot = (generation, Some(id)),
                Some(slot) if generation == slot.0 => slot.1 = None,
                Some(_) => {}
            }
        }
    }
    best.into_iter()
        .filter_map(|(tp, (_, owner))| owner.map(|o| (tp, o)))
        .collect()
}

/// The member among `candidates` holding the fewest partitions in
/// `target`, ties by member id.
fn emptiest<'a>(
    target: &BTreeMap<&'a MemberId, BTreeSet<Tp>>,
    candidates: impl Iterator<Item = &'a MemberId>,
) -> Option<&'a MemberId> {
    candidates.min_by_key(|id| (target[id].len(), *id))
}

/// Step 2: the balanced target that keeps as many valid claims as it can.
fn sticky_target<'a>(
    members: &Members<'a>,
    universe: &BTreeSet<Tp>,
    owners: &BTreeMap<Tp, &'a MemberId>,
) -> BTreeMap<&'a MemberId, BTreeSet<Tp>> {
    let mut target: BTreeMap<&'a MemberId, BTreeSet<Tp>> =
        members.keys().map(|&id| (id, BTreeSet::new())).collect();
    for (tp, &owner) in owners {
        target
            .get_mut(owner)
            .expect("owners are members")
            .insert(tp.clone());
    }
    for tp in universe.iter().filter(|tp| !owners.contains_key(*tp)) {
        let eligible = members
            .iter()
            .filter(|(_, sub)| subscribes(sub, &tp.topic))
            .map(|(&id, _)| id);
        let receiver = emptiest(&target, eligible).expect("some member subscribes to the topic");
        target
            .get_mut(receiver)
            .expect("receivers are members")
            .insert(tp.clone());
    }
    // Rebalance. Every shift lowers the sum of squared sizes by at least
    // two, so this ends.
    while let Some(path) = improving_path(members, owners, &target) {
        for (from, tp, to) in path {
            target.get_mut(from).expect("path members").remove(&tp);
            target.get_mut(to).expect("path members").insert(tp);
        }
    }
    target
}

/// A chain of hand-overs `(from, partition, to)`: the first member loses
/// one partition, the last gains one, the ones between keep their sizes.
type Path<'a> = Vec<(&'a MemberId, Tp, &'a MemberId)>;

/// The next rebalancing shift of `target`, `None` once balanced (no member
/// can pass a partition, directly or along a chain, to one holding at
/// least two fewer). Of all such chains it takes the one that moves the
/// fewest valid claims away from their owners, then the shortest, then the
/// one from the fullest member (ties by member id).
fn improving_path<'a>(
    members: &Members<'a>,
    owners: &BTreeMap<Tp, &'a MemberId>,
    target: &BTreeMap<&'a MemberId, BTreeSet<Tp>>,
) -> Option<Path<'a>> {
    let mut donors: Vec<&'a MemberId> = target.keys().copied().collect();
    donors.sort_by(|a, b| target[b].len().cmp(&target[a].len()).then(a.cmp(b)));
    let mut best: Option<((usize, usize), Path<'a>)> = None;
    for donor in donors {
        if let Some((dist, path)) = path_from(members, owners, target, donor) {
            if best.as_ref().is_none_or(|(d, _)| dist < *d) {
                best = Some((dist, path));
            }
        }
    }
    best.map(|(_, path)| path)
}

/// The best chain from `donor` to a member holding at least two fewer
/// partitions, with its (claims moved, hops). A hop passes a partition of
/// one member to another subscribing to its topic; it costs a claim when
/// the partition is the sender's valid claim. Among equally good ends the
/// emptiest wins (ties by member id); a member's hops try its
/// highest-numbered partitions first.
fn path_from<'a>(
    members: &Members<'a>,
    owners: &BTreeMap<Tp, &'a MemberId>,
    target: &BTreeMap<&'a MemberId, BTreeSet<Tp>>,
    donor: &'a MemberId,
) -> Option<((usize, usize), Path<'a>)> {
    let size = target[donor].len();
    // Dijkstra over members, distances (claims moved, hops).
    let mut dist: BTreeMap<&'a MemberId, (usize, usize)> = BTreeMap::new();
    let mut via: BTreeMap<&'a MemberId, (&'a MemberId, &Tp)> = BTreeMap::new();
    let mut queue: BTreeSet<((usize, usize), &'a MemberId)> = BTreeSet::new();
    dist.insert(donor, (0, 0));
    queue.insert(((0, 0), donor));
    while let Some((d, from)) = queue.pop_first() {
        for tp in target[from].iter().rev() {
            let cost = usize::from(owners.get(tp) == Some(&from));
            let next = (d.0 + cost, d.1 + 1);
            for (&to, sub) in members {
                if to == from || !subscribes(sub, &tp.topic) {
                    continue;
                }
                match dist.get(to) {
                    Some(&old) if old <= next => {}
                    old => {
                        if let Some(&old) = old {
                            queue.remove(&(old, to));
                        }
                        dist.insert(to, next);
                        via.insert(to, (from, tp));
                        queue.insert((next, to));
                    }
                }
            }
        }
    }
    let (end, d) = dist
        .iter()
        .filter(|(&to, _)| target[to].len() + 2 <= size)
        .min_by_key(|(&to, &d)| (d, target[to].len(), to))
        .map(|(&to, &d)| (to, d))?;
    let mut path = Vec::new();
    let mut at = end;
    while at != donor {
        let (from, tp) = via[at];
        path.push((from, tp.clone(), at));
        at = from;
    }
    path.reverse();
    Some((d, path))
}

/// Kafka's `CooperativeStickyAssignor` (steps 1 to 3 of the module doc).
fn cooperative_sticky(
    members: &Members<'_>,
    topics: &BTreeMap<String, u32>,
    no_two_phase: bool,
) -> Assignment {
    let universe = universe(members, topics);
    let owners = valid_owners(members, &universe);
    let target = sticky_target(members, &universe, &owners);
    let mut out = empty_assignment(members);
    for (member, tps) in target {
        let list = out
            .get_mut(member)
            .expect("every member is in the assignment");
        for tp in tps {
            let moving = owners.get(&tp).is_some_and(|&owner| owner != member);
            if !moving || no_two_phase {
                list.push(tp);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::types::NO_GENERATION;

    fn topics(list: &[(&str, u32)]) -> BTreeMap<String, u32> {
        list.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    fn tps(topic: &str, parts: &[u32]) -> Vec<Tp> {
        parts.iter().map(|&p| Tp::new(topic, p)).collect()
    }

    fn member(
        id: &str,
        subscribed: &[&str],
        owned: Vec<Tp>,
        generation: Generation,
    ) -> (MemberId, Subscription) {
        (
            id.to_string(),
            Subscription {
                topics: subscribed.iter().map(|t| t.to_string()).collect(),
                owned,
                owned_generation: generation,
            },
        )
    }

    fn expect(list: &[(&str, Vec<Tp>)]) -> Assignment {
        list.iter()
            .map(|(id, tps)| (id.to_string(), tps.clone()))
            .collect()
    }

    /// Feeds `out` back as every member's `owned`, at `generation`.
    fn rejoin(
        members: &[(MemberId, Subscription)],
        out: &Assignment,
        generation: Generation,
    ) -> Vec<(MemberId, Subscription)> {
        members
            .iter()
            .map(|(id, sub)| {
                let mut sub = sub.clone();
                sub.owned = out[id].clone();
                sub.owned_generation = generation;
                (id.clone(), sub)
            })
            .collect()
    }

    #[test]
    fn range_three_members_four_partitions() {
        let members = vec![
            member("c", &["t"], vec![], NO_GENERATION),
            member("a", &["t"], vec![], NO_GENERATION),
            member("b", &["t"], vec![], NO_GENERATION),
        ];
        let out = assign(Assignor::Range, &members, &topics(&[("t", 4)]), false);
        assert_eq!(
            out,
            expect(&[
                ("a", tps("t", &[0, 1])),
                ("b", tps("t", &[2])),
                ("c", tps("t", &[3]))
            ])
        );
    }

    #[test]
    fn range_per_topic_ignores_owned_and_missing_topics() {
        let members = vec![
            member("a", &["t", "u"], tps("t", &[2]), 7),
            member("b", &["t", "nope"], tps("t", &[0, 1]), 7),
            member("c", &["u"], vec![], NO_GENERATION),
            member("d", &[], vec![], NO_GENERATION),
        ];
        let out = assign(
            Assignor::Range,
            &members,
            &topics(&[("t", 3), ("u", 2), ("v", 5)]),
            false,
        );
        let mut a = tps("t", &[0, 1]);
        a.extend(tps("u", &[0]));
        assert_eq!(
            out,
            expect(&[
                ("a", a),
                ("b", tps("t", &[2])),
                ("c", tps("u", &[1])),
                ("d", vec![])
            ])
        );
    }

    #[test]
    fn cooperative_join_revokes_then_assigns() {
        let t = topics(&[("t", 6)]);
        let members = vec![
            member("a", &["t"], tps("t", &[0, 1, 2]), 1),
            member("b", &["t"], tps("t", &[3, 4, 5]), 1),
            member("c", &["t"], vec![], NO_GENERATION),
        ];
        // Round 1: a and b give up their highest partition, c gets nothing
        // yet.
        let round1 = assign(Assignor::CooperativeSticky, &members, &t, false);
        assert_eq!(
            round1,
            expect(&[
                ("a", tps("t", &[0, 1])),
                ("b", tps("t", &[3, 4])),
                ("c", vec![])
            ])
        );
        // Round 2 (a and b rejoined after revoking): c gets them.
        let round2 = assign(
            Assignor::CooperativeSticky,
            &rejoin(&members, &round1, 2),
            &t,
            false,
        );
        assert_eq!(
            round2,
            expect(&[
                ("a", tps("t", &[0, 1])),
                ("b", tps("t", &[3, 4])),
                ("c", tps("t", &[2, 5]))
            ])
        );
        // Stable from then on.
        let round3 = assign(
            Assignor::CooperativeSticky,
            &rejoin(&members, &round2, 3),
            &t,
            false,
        );
        assert_eq!(round3, round2);
    }

    #[test]
    fn cooperative_join_without_two_phase_double_assigns() {
        let members = vec![
            member("a", &["t"], tps("t", &[0, 1, 2]), 1),
            member("b", &["t"], tps("t", &[3, 4, 5]), 1),
            member("c", &["t"], vec![], NO_GENERATION),
        ];
        let out = assign(
            Assignor::CooperativeSticky,
            &members,
            &topics(&[("t", 6)]),
            true,
        );
        // c gets t-2 and t-5 while a and b still own them.
        assert_eq!(
            out,
            expect(&[
                ("a", tps("t", &[0, 1])),
                ("b", tps("t", &[3, 4])),
                ("c", tps("t", &[2, 5]))
            ])
        );
    }

    #[test]
    fn cooperative_leave_hands_partitions_over_at_once() {
        let members = vec![
            member("a", &["t"], tps("t", &[0, 1]), 4),
            member("b", &["t"], tps("t", &[2, 3]), 4),
        ];
        // c (which owned t-4 and t-5) left.
        let out = assign(
            Assignor::CooperativeSticky,
            &members,
            &topics(&[("t", 6)]),
            false,
        );
        assert_eq!(
            out,
            expect(&[("a", tps("t", &[0, 1, 4])), ("b", tps("t", &[2, 3, 5]))])
        );
    }

    #[test]
    fn cooperative_conflicting_claims_resolved_by_generation() {
        let t = topics(&[("t", 3)]);
        // b's claim on t-0 is from an older generation: a owns it; a is over
        // quota and revokes t-1 (its highest), which c will get next round.
        let members = vec![
            member("a", &["t"], tps("t", &[0, 1]), 3),
            member("b", &["t"], tps("t", &[0]), 2),
            member("c", &["t"], vec![], NO_GENERATION),
        ];
        let out = assign(Assignor::CooperativeSticky, &members, &t, false);
        assert_eq!(
            out,
            expect(&[("a", tps("t", &[0])), ("b", tps("t", &[2])), ("c", vec![])])
        );
        // The same claims at one generation: nobody owns t-0, so it is
        // assigned at once (to b, the emptiest), and a keeps t-1.
        let members = vec![
            member("a", &["t"], tps("t", &[0, 1]), 3),
            member("b", &["t"], tps("t", &[0]), 3),
            member("c", &["t"], vec![], NO_GENERATION),
        ];
        let out = assign(Assignor::CooperativeSticky, &members, &t, false);
        assert_eq!(
            out,
            expect(&[
                ("a", tps("t", &[1])),
                ("b", tps("t", &[0])),
                ("c", tps("t", &[2]))
            ])
        );
    }

    #[test]
    fn cooperative_ignores_invalid_claims() {
        // a claims a partition that does not exist and one of a topic it
        // does not subscribe to: both count as unowned.
        let mut owned = tps("t", &[0, 7]);
        owned.extend(tps("u", &[0]));
        let members = vec![
            member("a", &["t"], owned, 1),
            member("b", &["t", "u"], vec![], NO_GENERATION),
        ];
        let out = assign(
            Assignor::CooperativeSticky,
            &members,
            &topics(&[("t", 2), ("u", 1)]),
            false,
        );
        let mut b = tps("t", &[1]);
        b.extend(tps("u", &[0]));
        assert_eq!(out, expect(&[("a", tps("t", &[0])), ("b", b)]));
    }

    #[test]
    fn cooperative_mixed_subscriptions_balance_along_a_chain() {
        // c only takes `u`, a only `t`: a's excess reaches c through b.
        let t = topics(&[("t", 3), ("u", 1)]);
        let members = vec![
            member("a", &["t"], tps("t", &[0, 1, 2]), 1),
            member("b", &["t", "u"], tps("u", &[0]), 1),
            member("c", &["u"], vec![], NO_GENERATION),
        ];
        let round1 = assign(Assignor::CooperativeSticky, &members, &t, false);
        assert_eq!(
            round1,
            expect(&[("a", tps("t", &[0, 1])), ("b", vec![]), ("c", vec![])])
        );
        let round2 = assign(
            Assignor::CooperativeSticky,
            &rejoin(&members, &round1, 2),
            &t,
            false,
        );
        assert_eq!(
            round2,
            expect(&[
                ("a", tps("t", &[0, 1])),
                ("b", tps("t", &[2])),
                ("c", tps("u", &[0]))
            ])
        );
    }

    #[test]
    fn empty_inputs() {
        for assignor in [Assignor::Range, Assignor::CooperativeSticky] {
            assert!(assign(assignor, &[], &topics(&[("t", 3)]), false).is_empty());
            let members = vec![
                member("a", &["t"], tps("t", &[0]), 1),
                member("b", &[], vec![], 1),
            ];
            let out = assign(assignor, &members, &BTreeMap::new(), false);
            assert_eq!(out, expect(&[("a", vec![]), ("b", vec![])]));
        }
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    const NAMES: &[&str] = &["m-a", "m-b", "m-c", "m-d", "m-e", "m-f", "m-g", "m-h"];

    /// A group: members (1..6, in random order) all subscribing to `t`,
    /// each claiming random partitions of `t` (some beyond its end) and of
    /// `x` (not subscribed) at a random generation; and `t`'s partition
    /// count (1..12).
    fn group() -> impl Strategy<Value = (Vec<(MemberId, Subscription)>, BTreeMap<String, u32>)> {
        (1u32..12, prop::sample::subsequence(NAMES, 1..6)).prop_flat_map(|(n, names)| {
            let len = names.len();
            let claims = prop::collection::vec(
                (
                    prop::collection::btree_set(0u32..n + 2, 0..=n as usize),
                    any::<bool>(),
                    -1i32..3,
                ),
                len,
            );
            (Just(names).prop_shuffle(), claims).prop_map(move |(names, claims)| {
                let members = names
                    .into_iter()
                    .zip(claims)
                    .map(|(name, (owned, stray, generation))| {
                        let mut owned: Vec<Tp> =
                            owned.into_iter().map(|p| Tp::new("t", p)).collect();
                        if stray {
                            owned.push(Tp::new("x", 0));
                        }
                        (
                            name.to_string(),
                            Subscription {
                                topics: vec!["t".to_string()],
                                owned,
                                owned_generation: generation,
                            },
                        )
                    })
                    .collect();
                let mut topics = BTreeMap::new();
                topics.insert("t".to_string(), n);
                topics.insert("x".to_string(), 1);
                (members, topics)
            })
        })
    }

    /// A group with mixed subscriptions: members (1..6) each subscribing to
    /// one or both of `t` (1..8 partitions) and `u` (1..6), and maybe to
    /// `gone` (no such topic), claiming random partitions of all three at a
    /// random generation.
    fn mixed_group() -> impl Strategy<Value = (Vec<(MemberId, Subscription)>, BTreeMap<String, u32>)>
    {
        let member = (
            1u8..4,
            any::<bool>(),
            prop::collection::btree_set(0u32..10, 0..6),
            prop::collection::btree_set(0u32..8, 0..5),
            -1i32..3,
        );
        (
            1u32..8,
            1u32..6,
            prop::sample::subsequence(NAMES, 1..6),
            prop::collection::vec(member, 6),
        )
            .prop_map(|(nt, nu, names, specs)| {
                let members = names
                    .into_iter()
                    .zip(specs)
                    .map(|(name, (which, gone, t, u, generation))| {
                        let mut topics = Vec::new();
                        if which & 1 != 0 {
                            topics.push("t".to_string());
                        }
                        if which & 2 != 0 {
                            topics.push("u".to_string());
                        }
                        if gone {
                            topics.push("gone".to_string());
                        }
                        let mut owned: Vec<Tp> = t.into_iter().map(|p| Tp::new("t", p)).collect();
                        owned.extend(u.into_iter().map(|p| Tp::new("u", p)));
                        owned.push(Tp::new("gone", 0));
                        (
                            name.to_string(),
                            Subscription {
                                topics,
                                owned,
                                owned_generation: generation,
                            },
                        )
                    })
                    .collect();
                let mut topics = BTreeMap::new();
                topics.insert("t".to_string(), nt);
                topics.insert("u".to_string(), nu);
                (members, topics)
            })
    }

    /// The partitions to assign: those of the existing topics some member
    /// subscribes to.
    fn all(members: &[(MemberId, Subscription)], topics: &BTreeMap<String, u32>) -> BTreeSet<Tp> {
        topics
            .iter()
            .filter(|(t, _)| members.iter().any(|(_, s)| s.topics.contains(*t)))
            .flat_map(|(t, &n)| (0..n).map(move |p| Tp::new(t, p)))
            .collect()
    }

    /// Reference claim resolution: the unique highest-generation valid
    /// claimant of each partition.
    fn reference_owner(
        members: &[(MemberId, Subscription)],
        topics: &BTreeMap<String, u32>,
        tp: &Tp,
    ) -> Option<MemberId> {
        let claimants: Vec<(Generation, &MemberId)> = members
            .iter()
            .filter(|(_, s)| {
                topics.get(&tp.topic).is_some_and(|&n| tp.partition < n)
                    && s.topics.contains(&tp.topic)
                    && s.owned.contains(tp)
            })
            .map(|(id, s)| (s.owned_generation, id))
            .collect();
        let top = claimants.iter().map(|c| c.0).max()?;
        let at_top: Vec<&MemberId> = claimants
            .iter()
            .filter(|c| c.0 == top)
            .map(|c| c.1)
            .collect();
        (at_top.len() == 1).then(|| at_top[0].clone())
    }

    /// Checks the shape of any output: every member present, lists sorted,
    /// only existing partitions of the member's topics, each at most once.
    fn check_shape(
        members: &[(MemberId, Subscription)],
        topics: &BTreeMap<String, u32>,
        out: &Assignment,
    ) {
        let ids: BTreeSet<&MemberId> = members.iter().map(|(id, _)| id).collect();
        assert_eq!(out.keys().collect::<BTreeSet<_>>(), ids);
        let universe = all(members, topics);
        let mut seen: BTreeSet<&Tp> = BTreeSet::new();
        for (id, sub) in members {
            let list = &out[id];
            assert!(list.windows(2).all(|w| w[0] < w[1]), "unsorted {list:?}");
            for tp in list {
                assert!(universe.contains(tp), "{tp} does not exist");
                assert!(sub.topics.contains(&tp.topic), "{id} got unsubscribed {tp}");
                assert!(seen.insert(tp), "{tp} assigned twice: {out:?}");
            }
        }
    }

    /// Every partition assigned exactly once.
    fn check_complete(
        members: &[(MemberId, Subscription)],
        topics: &BTreeMap<String, u32>,
        out: &Assignment,
    ) {
        check_shape(members, topics, out);
        let assigned: usize = out.values().map(Vec::len).sum();
        assert_eq!(assigned, all(members, topics).len(), "incomplete {out:?}");
    }

    /// Every partition assigned exactly once, sizes within one.
    fn check_complete_balanced(
        members: &[(MemberId, Subscription)],
        topics: &BTreeMap<String, u32>,
        out: &Assignment,
    ) {
        check_complete(members, topics, out);
        let sizes: Vec<usize> = out.values().map(Vec::len).collect();
        let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(hi - lo <= 1, "unbalanced {out:?}");
    }

    /// Feeds `out` back as every member's `owned`, at `generation`.
    fn rejoin(
        members: &[(MemberId, Subscription)],
        out: &Assignment,
        generation: Generation,
    ) -> Vec<(MemberId, Subscription)> {
        members
            .iter()
            .map(|(id, sub)| {
                let mut sub = sub.clone();
                sub.owned = out[id].clone();
                sub.owned_generation = generation;
                (id.clone(), sub)
            })
            .collect()
    }

    proptest! {
        #[test]
        fn range_assigns_every_partition_once((members, topics) in group()) {
            let out = assign(Assignor::Range, &members, &topics, false);
            check_shape(&members, &topics, &out);
            check_complete_balanced(&members, &topics, &out);
            // Contiguous ranges in member-id order.
            let flat: Vec<Tp> = out.values().flatten().cloned().collect();
            prop_assert_eq!(flat, all(&members, &topics).into_iter().collect::<Vec<_>>());
        }

        #[test]
        fn cooperative_never_gives_an_owned_partition_away_in_one_round((members, topics) in group()) {
            let out = assign(Assignor::CooperativeSticky, &members, &topics, false);
            check_shape(&members, &topics, &out);
            for (id, list) in &out {
                for tp in list {
                    if let Some(owner) = reference_owner(&members, &topics, tp) {
                        prop_assert_eq!(&owner, id, "{} moved in one round", tp);
                    }
                }
            }
        }

        #[test]
        fn cooperative_keeps_as_many_claims_as_balance_allows((members, topics) in group()) {
            let out = assign(Assignor::CooperativeSticky, &members, &topics, true);
            check_complete_balanced(&members, &topics, &out);
            // Valid claims per member, most first: the `extra` largest get
            // the ceiling quota.
            let total = all(&members, &topics).len();
            let (quota, extra) = (total / members.len(), total % members.len());
            let mut claims: Vec<usize> = members
                .iter()
                .map(|(id, _)| all(&members, &topics).iter().filter(|tp| reference_owner(&members, &topics, tp).as_ref() == Some(id)).count())
                .collect();
            claims.sort_unstable_by(|a, b| b.cmp(a));
            let best: usize = claims
                .iter()
                .enumerate()
                .map(|(i, &c)| c.min(quota + usize::from(i < extra)))
                .sum();
            let kept = out
                .iter()
                .flat_map(|(id, list)| list.iter().map(move |tp| (id, tp)))
                .filter(|(id, tp)| reference_owner(&members, &topics, tp).as_ref() == Some(*id))
                .count();
            prop_assert_eq!(kept, best);
        }

        #[test]
        fn cooperative_converges_within_two_rounds((members, topics) in group()) {
            let generation = members.iter().map(|(_, s)| s.owned_generation).max().unwrap() + 1;
            let round1 = assign(Assignor::CooperativeSticky, &members, &topics, false);
            let round2 = assign(Assignor::CooperativeSticky, &rejoin(&members, &round1, generation), &topics, false);
            check_shape(&members, &topics, &round2);
            check_complete_balanced(&members, &topics, &round2);
            // Round 2 only adds to round 1 (nothing revoked twice).
            for (id, list) in &round1 {
                prop_assert!(list.iter().all(|tp| round2[id].contains(tp)));
            }
            // And it is stable.
            let round3 = assign(Assignor::CooperativeSticky, &rejoin(&members, &round2, generation + 1), &topics, false);
            prop_assert_eq!(round3, round2);
        }

        #[test]
        fn cooperative_without_two_phase_assigns_everything_at_once((members, topics) in group()) {
            let buggy = assign(Assignor::CooperativeSticky, &members, &topics, true);
            check_shape(&members, &topics, &buggy);
            check_complete_balanced(&members, &topics, &buggy);
            // The two-phase round is the same target minus the moves.
            let correct = assign(Assignor::CooperativeSticky, &members, &topics, false);
            for (id, list) in &correct {
                prop_assert!(list.iter().all(|tp| buggy[id].contains(tp)));
            }
        }

        #[test]
        fn assignment_ignores_member_order((members, topics) in group(), rotate in 0usize..6) {
            let mut rotated = members.clone();
            let k = rotate % rotated.len();
            rotated.rotate_left(k);
            for assignor in [Assignor::Range, Assignor::CooperativeSticky] {
                for bug in [false, true] {
                    prop_assert_eq!(assign(assignor, &members, &topics, bug), assign(assignor, &rotated, &topics, bug));
                }
            }
        }

        #[test]
        fn range_mixed_subscriptions_split_each_topic((members, topics) in mixed_group()) {
            let out = assign(Assignor::Range, &members, &topics, false);
            check_complete(&members, &topics, &out);
            for topic in ["t", "u"] {
                let sizes: Vec<usize> = members
                    .iter()
                    .filter(|(_, s)| s.topics.iter().any(|t| t == topic))
                    .map(|(id, _)| out[id].iter().filter(|tp| tp.topic == topic).count())
                    .collect();
                if let (Some(lo), Some(hi)) = (sizes.iter().min(), sizes.iter().max()) {
                    prop_assert!(hi - lo <= 1, "{} unbalanced: {:?}", topic, out);
                }
            }
        }

        #[test]
        fn cooperative_mixed_subscriptions_safe_and_converging((members, topics) in mixed_group()) {
            let buggy = assign(Assignor::CooperativeSticky, &members, &topics, true);
            check_complete(&members, &topics, &buggy);
            // Balanced: nobody could pass a partition to a member holding
            // two fewer that subscribes to its topic.
            for (from, list) in &buggy {
                for tp in list {
                    for (to, sub) in &members {
                        prop_assert!(
                            !(sub.topics.contains(&tp.topic) && buggy[to].len() + 2 <= list.len()),
                            "{} could pass {} to {}: {:?}", from, tp, to, buggy
                        );
                    }
                }
            }
            let round1 = assign(Assignor::CooperativeSticky, &members, &topics, false);
            check_shape(&members, &topics, &round1);
            for (id, list) in &round1 {
                for tp in list {
                    if let Some(owner) = reference_owner(&members, &topics, tp) {
                        prop_assert_eq!(&owner, id, "{} moved in one round", tp);
                    }
                }
            }
            let generation = members.iter().map(|(_, s)| s.owned_generation).max().unwrap() + 1;
            let round2 = assign(Assignor::CooperativeSticky, &rejoin(&members, &round1, generation), &topics, false);
            check_complete(&members, &topics, &round2);
            for (id, list) in &round1 {
                prop_assert!(list.iter().all(|tp| round2[id].contains(tp)));
            }
            let round3 = assign(Assignor::CooperativeSticky, &rejoin(&members, &round2, generation + 1), &topics, false);
            prop_assert_eq!(round3, round2);
        }
    }
}
