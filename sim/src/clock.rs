//! Per-node clocks: offset, drift and jumps.
//!
//! A node's clock reads `true_time * (1 + drift_ppm / 1e6) + offset`. Timers
//! are set on the node's clock, so drift stretches them and a jump moves
//! them: the executor asks [`Clock::true_time_of`] when a local deadline is
//! reached and reschedules a node's timers after a jump.

use kzsim_model::SimTime;

/// One node's clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    /// Offset from true time in microseconds (may be negative).
    pub offset_us: i64,
    /// Rate error in parts per million (positive runs fast).
    pub drift_ppm: i64,
}

impl Clock {
    /// A clock with the given offset and drift.
    pub fn new(offset_us: i64, drift_ppm: i64) -> Clock {
        Clock {
            offset_us,
            drift_ppm,
        }
    }

    /// The node's reading at true time `t` (never below zero).
    #[inline]
    pub fn local(&self, t: u64) -> SimTime {
        if self.drift_ppm == 0 {
            return SimTime(t.saturating_add_signed(self.offset_us));
        }
        let t = t as i128;
        let l = t + t * self.drift_ppm as i128 / 1_000_000 + self.offset_us as i128;
        SimTime(l.max(0) as u64)
    }

    /// The earliest true time at or after `now` when the node's clock reads
    /// at least `deadline`.
    pub fn true_time_of(&self, deadline: SimTime, now: u64) -> u64 {
        if self.local(now) >= deadline {
            return now;
        }
        let num = (deadline.0 as i128 - self.offset_us as i128) * 1_000_000;
        let den = 1_000_000 + self.drift_ppm as i128;
        let mut t = ((num + den - 1) / den).max(now as i128) as u64;
        // Integer rounding may leave us a microsecond short.
        while self.local(t) < deadline {
            t += 1;
        }
        t
    }

    /// Jumps the clock by `delta_us` (forward if positive).
    pub fn jump(&mut self, delta_us: i64) {
        self.offset_us += delta_us;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_and_offset() {
        let c = Clock::new(1000, 100); // +1ms, 100 ppm fast
        assert_eq!(c.local(1_000_000).0, 1_000_000 + 100 + 1000);
        let t = c.true_time_of(SimTime(2_000_000), 0);
        assert!(c.local(t) >= SimTime(2_000_000));
        assert!(c.local(t - 1) < SimTime(2_000_000));
    }

    #[test]
    fn jump_moves_deadlines() {
        let mut c = Clock::default();
        let deadline = SimTime(10_000);
        assert_eq!(c.true_time_of(deadline, 0), 10_000);
        c.jump(5_000);
        assert_eq!(c.true_time_of(deadline, 0), 5_000);
        c.jump(-10_000);
        assert_eq!(c.true_time_of(deadline, 0), 15_000);
    }
}
