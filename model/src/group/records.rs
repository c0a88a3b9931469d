//! The records the group coordinator keeps in `__consumer_offsets`, as
//! Kafka's GroupMetadataManager writes them: an offset-commit record per
//! (group, partition) and a group-metadata record per group generation
//! (protocol, leader, members with their timeouts, subscriptions and
//! assignments). The latest record for a key wins when a coordinator loads
//! a partition of the offsets topic.
//!
//! Each record is one value of a log batch, encoded as a tag byte and
//! length-prefixed little-endian fields.

use crate::group::types::{Assignor, Generation, MemberId, Subscription};
use crate::kafka::Tp;

const TAG_OFFSET: u8 = 1;
const TAG_GROUP: u8 = 2;

/// One member as a group-metadata record holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRecord {
    /// The member id.
    pub id: MemberId,
    /// Its `session.timeout.ms`.
    pub session_timeout_ms: u64,
    /// Its `max.poll.interval.ms`.
    pub rebalance_timeout_ms: u64,
    /// Its subscription.
    pub subscription: Subscription,
    /// Its assignment in this generation.
    pub assignment: Vec<Tp>,
}

/// A record of the offsets log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupRecord {
    /// `group` committed `offset` for `tp`.
    Offset {
        /// The group id.
        group: String,
        /// The partition.
        tp: Tp,
        /// The next offset to consume.
        offset: u64,
    },
    /// `group` entered `generation` with these members.
    Group {
        /// The group id.
        group: String,
        /// The generation.
        generation: Generation,
        /// The chosen protocol (`None` for an empty group).
        protocol: Option<Assignor>,
        /// The leader's member id (empty for an empty group).
        leader: MemberId,
        /// The members with their assignments.
        members: Vec<MemberRecord>,
    },
}

struct Writer(Vec<u8>);

impl Writer {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn tp(&mut self, tp: &Tp) {
        self.str(&tp.topic);
        self.u64(tp.partition as u64);
    }
    fn tps(&mut self, tps: &[Tp]) {
        self.u64(tps.len() as u64);
        for tp in tps {
            self.tp(tp);
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u64(&mut self) -> Option<u64> {
        let v = crate::codec::get_u64(self.b, self.pos)?;
        self.pos += 8;
        Some(v)
    }
    fn len(&mut self) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        // A length can never exceed what is left: guards allocations
        // against corrupt input.
        (n <= self.b.len()).then_some(n)
    }
    fn str(&mut self) -> Option<String> {
        let n = self.len()?;
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        String::from_utf8(s.to_vec()).ok()
    }
    fn tp(&mut self) -> Option<Tp> {
        let topic = self.str()?;
        let partition = u32::try_from(self.u64()?).ok()?;
        Some(Tp { topic, partition })
    }
    fn tps(&mut self) -> Option<Vec<Tp>> {
        let n = self.len()?;
        (0..n).map(|_| self.tp()).collect()
    }
}

fn assignor_code(a: Option<Assignor>) -> u64 {
    match a {
        None => 0,
        Some(Assignor::Range) => 1,
        Some(Assignor::CooperativeSticky) => 2,
    }
}

fn assignor_of(c: u64) -> Option<Option<Assignor>> {
    match c {
        0 => Some(None),
        1 => Some(Some(Assignor::Range)),
        2 => Some(Some(Assignor::CooperativeSticky)),
        _ => None,
    }
}

impl GroupRecord {
    /// The group the record belongs to.
    pub fn group(&self) -> &str {
        match self {
            GroupRecord::Offset { group, .. } | GroupRecord::Group { group, .. } => group,
        }
    }

    /// Encodes the record as a log value.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        match self {
            GroupRecord::Offset { group, tp, offset } => {
                w.0.push(TAG_OFFSET);
                w.str(group);
                w.tp(tp);
                w.u64(*offset);
            }
            GroupRecord::Group {
                group,
                generation,
                protocol,
                leader,
                members,
            } => {
                w.0.push(TAG_GROUP);
                w.str(group);
                w.u64(*generation as i64 as u64);
                w.u64(assignor_code(*protocol));
                w.str(leader);
                w.u64(members.len() as u64);
                for m in members {
                    w.str(&m.id);
                    w.u64(m.session_timeout_ms);
                    w.u64(m.rebalance_timeout_ms);
                    w.u64(m.subscription.topics.len() as u64);
                    for t in &m.subscription.topics {
                        w.str(t);
                    }
                    w.tps(&m.subscription.owned);
                    w.u64(m.subscription.owned_generation as i64 as u64);
                    w.tps(&m.assignment);
                }
            }
        }
        w.0
    }

    /// Decodes a value written by [`GroupRecord::encode`]; `None` for
    /// anything else (a foreign or corrupt value is skipped on load).
    pub fn decode(b: &[u8]) -> Option<GroupRecord> {
        let (&tag, _) = b.split_first()?;
        let mut r = Reader { b, pos: 1 };
        let rec = match tag {
            TAG_OFFSET => GroupRecord::Offset {
                group: r.str()?,
                tp: r.tp()?,
                offset: r.u64()?,
            },
            TAG_GROUP => {
                let group = r.str()?;
                let generation = i32::try_from(r.u64()? as i64).ok()?;
                let protocol = assignor_of(r.u64()?)?;
                let leader = r.str()?;
                let n = r.len()?;
                let mut members = Vec::new();
                for _ in 0..n {
                    let id = r.str()?;
                    let session_timeout_ms = r.u64()?;
                    let rebalance_timeout_ms = r.u64()?;
                    let nt = r.len()?;
                    let topics = (0..nt).map(|_| r.str()).collect::<Option<Vec<_>>>()?;
                    let owned = r.tps()?;
                    let owned_generation = i32::try_from(r.u64()? as i64).ok()?;
                    let assignment = r.tps()?;
                    members.push(MemberRecord {
                        id,
                        session_timeout_ms,
                        rebalance_timeout_ms,
                        subscription: Subscription {
                            topics,
                            owned,
                            owned_generation,
                        },
                        assignment,
                    });
                }
                GroupRecord::Group {
                    group,
                    generation,
                    protocol,
                    leader,
                    members,
                }
            }
            _ => return None,
        };
        (r.pos == b.len()).then_some(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_garbage_is_refused() {
        let o = GroupRecord::Offset {
            group: "g".into(),
            tp: Tp::new("t", 3),
            offset: 42,
        };
        assert_eq!(GroupRecord::decode(&o.encode()), Some(o.clone()));
        let g = GroupRecord::Group {
            group: "g".into(),
            generation: 7,
            protocol: Some(Assignor::CooperativeSticky),
            leader: "m1".into(),
            members: vec![MemberRecord {
                id: "m1".into(),
                session_timeout_ms: 600,
                rebalance_timeout_ms: 900,
                subscription: Subscription {
                    topics: vec!["t".into()],
                    owned: vec![Tp::new("t", 0)],
                    owned_generation: 6,
                },
                assignment: vec![Tp::new("t", 0), Tp::new("t", 1)],
            }],
        };
        assert_eq!(GroupRecord::decode(&g.encode()), Some(g.clone()));
        let empty = GroupRecord::Group {
            group: "g".into(),
            generation: 8,
            protocol: None,
            leader: String::new(),
            members: vec![],
        };
        assert_eq!(GroupRecord::decode(&empty.encode()), Some(empty));
        // Truncated, extended, foreign bytes: refused, never a panic.
        let mut bytes = g.encode();
        bytes.pop();
        assert_eq!(GroupRecord::decode(&bytes), None);
        let mut bytes = o.encode();
        bytes.push(0);
        assert_eq!(GroupRecord::decode(&bytes), None);
        assert_eq!(GroupRecord::decode(b"17"), None);
        assert_eq!(
            GroupRecord::decode(&[2, 255, 255, 255, 255, 255, 255, 255, 255]),
            None
        );
    }
}
