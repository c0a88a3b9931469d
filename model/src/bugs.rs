//! Planted-bug switches: named protocol variants that real systems had.
//!
//! Each protocol declares its bugs as [`BugInfo`] entries; a run enables a set
//! of them by name. The correct behaviour is always the default (all off).

use std::collections::BTreeSet;

/// Description of one planted bug, as listed by `kzsim list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BugInfo {
    /// The switch name, e.g. `zk_ack_before_fsync`.
    pub name: &'static str,
    /// The component it lives in, e.g. `zk`.
    pub component: &'static str,
    /// What it breaks, in one sentence.
    pub breaks: &'static str,
    /// The scenario file stem that finds it.
    pub scenario: &'static str,
    /// The anomaly kind it breaks, as the checks name it: a seed with the
    /// bug switched on counts as a find only when it shows this kind.
    pub anomaly: &'static str,
}

/// Every planted bug known to the model crate.
pub fn all_bugs() -> Vec<BugInfo> {
    let mut v = Vec::new();
    v.extend_from_slice(crate::demo::BUGS);
    v.extend_from_slice(crate::zk::BUGS);
    v.extend_from_slice(crate::kafka::BUGS);
    v.extend_from_slice(crate::group::BUGS);
    v.extend_from_slice(crate::raft::BUGS);
    v.extend_from_slice(crate::kraft::BUGS);
    v
}

/// Looks a bug up by name.
pub fn find_bug(name: &str) -> Option<BugInfo> {
    all_bugs().into_iter().find(|b| b.name == name)
}

/// The set of planted bugs enabled for one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BugSet {
    enabled: BTreeSet<String>,
}

impl BugSet {
    /// No bugs: the faithful protocol.
    pub fn none() -> BugSet {
        BugSet::default()
    }

    /// Enables a bug by name (the caller validates the name).
    pub fn enable(&mut self, name: &str) {
        self.enabled.insert(name.to_string());
    }

    /// Whether the named bug is switched on.
    pub fn on(&self, name: &str) -> bool {
        self.enabled.contains(name)
    }

    /// The enabled names in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.enabled.iter().map(|s| s.as_str())
    }

    /// Whether no bug is enabled.
    pub fn is_empty(&self) -> bool {
        self.enabled.is_empty()
    }
}
