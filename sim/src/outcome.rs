//! What one run found: violations and the per-seed outcome.

use serde::{Deserialize, Serialize};

/// One invariant violation (an anomaly), named as the checkers name them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The anomaly's name, e.g. `lost-write`.
    pub kind: String,
    /// What was seen, in plain text.
    pub detail: String,
    /// Indexes of the history events that show it.
    #[serde(default)]
    pub events: Vec<usize>,
}

impl Violation {
    /// A violation of `kind` with `detail`.
    pub fn new(kind: &str, detail: impl Into<String>, events: Vec<usize>) -> Violation {
        Violation {
            kind: kind.to_string(),
            detail: detail.into(),
            events,
        }
    }
}
