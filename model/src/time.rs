//! Simulated time: microseconds since the start of a run.

use serde::{Deserialize, Serialize};

/// A point in simulated time, in microseconds. A node's own clock may be
/// skewed from the true time of the simulation; both use this type.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct SimTime(pub u64);

impl SimTime {
    /// Time zero.
    pub const ZERO: SimTime = SimTime(0);

    /// A time given in milliseconds.
    pub const fn from_ms(ms: u64) -> SimTime {
        SimTime(ms * 1000)
    }

    /// This time in whole milliseconds.
    pub const fn as_ms(self) -> u64 {
        self.0 / 1000
    }

    /// This time in microseconds.
    pub const fn as_us(self) -> u64 {
        self.0
    }

    /// This time plus `ms` milliseconds (saturating).
    pub const fn plus_ms(self, ms: u64) -> SimTime {
        SimTime(self.0.saturating_add(ms * 1000))
    }

    /// Milliseconds elapsed since `earlier` (zero if `earlier` is later).
    pub const fn ms_since(self, earlier: SimTime) -> u64 {
        self.0.saturating_sub(earlier.0) / 1000
    }
}

impl std::fmt::Display for SimTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:03}ms", self.0 / 1000, self.0 % 1000)
    }
}
