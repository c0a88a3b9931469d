//! Per-node clocks: offset, drift and jumps.
//!
//! A node's clock reads `true_time * (1 + drift_ppm / 1e6) + offset`. Timers
//! are set on the node's clock, so drift stretches them and a jump moves
//! them: the executor asks [`Clock::true_time_of`] when a local deadline is
//! reached and reschedules a node's timers after a jump.
//!
//! Each node also has a monotonic clock (Java's `System.nanoTime`, Linux's
//! `CLOCK_MONOTONIC`): it runs at the same drifting rate from the same
//! starting offset, but a jump (someone setting the wall clock) does not
//! move it. Timers may be set on either ([`Clock::read`] and
//! [`Clock::true_time_on`] take which).

use kzsim_model::SimTime;

/// One node's clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    /// Offset from true time in microseconds (may be negative).
    pub offset_us: i64,
    /// Rate error in parts per million (positive runs fast).
    pub drift_ppm: i64,
    /// The monotonic clock's offset from true time: the starting offset,
    /// which jumps leave alone.
    pub mono_offset_us: i64,
}

impl Clock {
    /// A clock with the given offset and drift.
    pub fn new(offset_us: i64, drift_ppm: i64) -> Clock {
        Clock {
            offset_us,
            drift_ppm,
            mono_offset_us: offset_us,
        }
    }

    /// The node's (wall) reading at true time `t` (never below zero).
    #[inline]
    pub fn local(&self, t: u64) -> SimTime {
        Self::reading(self.offset_us, self.drift_ppm, t)
    }

    /// The node's monotonic reading at true time `t` (never below zero).
    #[inline]
    pub fn mono(&self, t: u64) -> SimTime {
        Self::reading(self.mono_offset_us, self.drift_ppm, t)
    }

    /// The monotonic (`mono`) or wall reading at true time `t`.
    #[inline]
    pub fn read(&self, mono: bool, t: u64) -> SimTime {
        if mono {
            self.mono(t)
        } else {
            self.local(t)
        }
    }

    #[inline]
    fn reading(offset_us: i64, drift_ppm: i64, t: u64) -> SimTime {
        if drift_ppm == 0 {
            return SimTime(t.saturating_add_signed(offset_us));
        }
        SimTime(Self::unclamped_at(offset_us, drift_ppm, t).max(0) as u64)
    }

    /// The earliest true time at or after `now` when the node's clock reads
    /// at least `deadline`.
    pub fn true_time_of(&self, deadline: SimTime, now: u64) -> u64 {
        self.true_time_on(false, deadline, now)
    }

    /// The earliest true time at or after `now` when the node's monotonic
    /// (`mono`) or wall clock reads at least `deadline`.
    pub fn true_time_on(&self, mono: bool, deadline: SimTime, now: u64) -> u64 {
        if self.read(mono, now) >= deadline {
            return now;
        }
        let offset = if mono {
            self.mono_offset_us
        } else {
            self.offset_us
        };
        let num = (deadline.0 as i128 - offset as i128) * 1_000_000;
        let den = 1_000_000 + self.drift_ppm as i128;
        let mut t = ((num + den - 1) / den).max(now as i128) as u64;
        // Integer rounding may leave us a microsecond short.
        while self.read(mono, t) < deadline {
            t += 1;
        }
        t
    }

    /// The wall reading at true time `t` before it is held at zero.
    fn unclamped(&self, t: u64) -> i128 {
        Self::unclamped_at(self.offset_us, self.drift_ppm, t)
    }

    fn unclamped_at(offset_us: i64, drift_ppm: i64, t: u64) -> i128 {
        let t = t as i128;
        t + t * drift_ppm as i128 / 1_000_000 + offset_us as i128
    }

    /// Jumps the (wall) clock by `delta_us` at true time `now` (forward if
    /// positive); the monotonic clock runs on unmoved. A jump back never takes the reading below zero, the
    /// node's boot: a larger one stops there, and the clock runs on from
    /// zero rather than standing still until true time catches up.
    pub fn jump(&mut self, delta_us: i64, now: u64) {
        let reading = self.unclamped(now);
        let floor = reading.min(0);
        let delta = (delta_us as i128).max(floor - reading);
        self.offset_us += delta as i64;
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
        c.jump(5_000, 0);
        assert_eq!(c.true_time_of(deadline, 0), 5_000);
        c.jump(-10_000, 8_000);
        assert_eq!(c.true_time_of(deadline, 8_000), 15_000);
    }

    #[test]
    fn a_jump_leaves_the_monotonic_clock_alone() {
        let mut c = Clock::new(1_000, 100);
        assert_eq!(c.mono(2_000_000), c.local(2_000_000));
        c.jump(10_000_000, 2_000_000);
        assert_eq!(c.local(2_000_000).0, c.mono(2_000_000).0 + 10_000_000);
        let deadline = SimTime(c.mono(2_000_000).0 + 5_000);
        let t = c.true_time_on(true, deadline, 2_000_000);
        assert!(t > 2_000_000 + 4_000 && c.mono(t) >= deadline);
        assert_eq!(c.true_time_on(false, deadline, 2_000_000), 2_000_000);
    }

    #[test]
    fn a_jump_back_past_boot_stops_at_zero_and_the_clock_runs_on() {
        let mut c = Clock::default();
        c.jump(-5_000_000, 1_000_000);
        assert_eq!(c.local(1_000_000).0, 0);
        assert_eq!(c.local(1_000_500).0, 500);
        // A clock that starts behind (negative offset) is not moved by a
        // jump back, and a jump forward counts in full.
        let mut c = Clock::new(-2_000, 0);
        c.jump(-1_000, 1_000);
        assert_eq!(c.offset_us, -2_000);
        c.jump(3_000, 1_000);
        assert_eq!(c.local(1_000).0, 2_000);
    }
}
