//! Anomalies found by the Kafka checker, and their conversion to the
//! simulator's [`Violation`]s.

use std::fmt;

use serde::Serialize;

use crate::outcome::Violation;

/// The anomaly categories of Jepsen's Kafka queue workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum AnomalyKind {
    /// An offset of a partition holds two or more values.
    #[serde(rename = "inconsistent-offsets")]
    InconsistentOffsets,
    /// A value appears at two or more offsets of a partition.
    #[serde(rename = "duplicate")]
    Duplicate,
    /// An acknowledged value was never read although later offsets of its
    /// partition were.
    #[serde(rename = "lost-write")]
    LostWrite,
    /// An acknowledged value was never read by the end of the history (and
    /// is not a lost write: nothing after it was read either).
    #[serde(rename = "unseen")]
    Unseen,
    /// A consumer's successive reads of a partition skipped values.
    #[serde(rename = "poll-skip")]
    PollSkip,
    /// A consumer's successive reads of a partition went back or repeated.
    #[serde(rename = "nonmonotonic-poll")]
    NonmonotonicPoll,
    /// A process's successive sends to a partition got offsets that went
    /// back or repeated.
    #[serde(rename = "nonmonotonic-send")]
    NonmonotonicSend,
    /// A value whose send failed was read (an aborted read).
    #[serde(rename = "G1a")]
    G1a,
}

impl AnomalyKind {
    /// Every category, in report order.
    pub const ALL: [AnomalyKind; 8] = [
        AnomalyKind::InconsistentOffsets,
        AnomalyKind::Duplicate,
        AnomalyKind::LostWrite,
        AnomalyKind::Unseen,
        AnomalyKind::PollSkip,
        AnomalyKind::NonmonotonicPoll,
        AnomalyKind::NonmonotonicSend,
        AnomalyKind::G1a,
    ];

    /// Jepsen's name of the category.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::InconsistentOffsets => "inconsistent-offsets",
            AnomalyKind::Duplicate => "duplicate",
            AnomalyKind::LostWrite => "lost-write",
            AnomalyKind::Unseen => "unseen",
            AnomalyKind::PollSkip => "poll-skip",
            AnomalyKind::NonmonotonicPoll => "nonmonotonic-poll",
            AnomalyKind::NonmonotonicSend => "nonmonotonic-send",
            AnomalyKind::G1a => "G1a",
        }
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One anomaly with its evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    /// The category.
    pub kind: AnomalyKind,
    /// The partition.
    pub key: String,
    /// The values involved (e.g. the lost value; the two values of an
    /// offset; the last and next values of a skip).
    pub values: Vec<i64>,
    /// The offsets involved (e.g. the offsets a duplicate sits at).
    pub offsets: Vec<i64>,
    /// History event indexes of the operations that show it (completions,
    /// or invocations of ops that never completed), ascending.
    pub events: Vec<usize>,
    /// What was seen, in plain text.
    pub detail: String,
}

impl Anomaly {
    /// The simulator's form of this anomaly.
    pub fn to_violation(&self) -> Violation {
        Violation::new(
            self.kind.as_str(),
            format!("key {}: {}", self.key, self.detail),
            self.events.clone(),
        )
    }
}

impl From<&Anomaly> for Violation {
    fn from(a: &Anomaly) -> Violation {
        a.to_violation()
    }
}

/// The verdict on a whole queue history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KafkaReport {
    /// Queue operations checked (send, poll, txn, assign, subscribe).
    pub ops: usize,
    /// Every anomaly found, ordered by category, key, then evidence.
    pub anomalies: Vec<Anomaly>,
}

impl KafkaReport {
    /// True when no anomaly was found.
    pub fn is_valid(&self) -> bool {
        self.anomalies.is_empty()
    }

    /// The anomalies of one category.
    pub fn of(&self, kind: AnomalyKind) -> impl Iterator<Item = &Anomaly> {
        self.anomalies.iter().filter(move |a| a.kind == kind)
    }

    /// How many anomalies of each category were found (only non-zero
    /// counts), in report order.
    pub fn counts(&self) -> Vec<(AnomalyKind, usize)> {
        AnomalyKind::ALL
            .iter()
            .map(|&k| (k, self.of(k).count()))
            .filter(|&(_, n)| n > 0)
            .collect()
    }

    /// The simulator's form of every anomaly.
    pub fn violations(&self) -> Vec<Violation> {
        self.anomalies.iter().map(Anomaly::to_violation).collect()
    }
}
