//! Seed derivation: one run seed, independent ChaCha streams per purpose.
//!
//! Each consumer (the network, a node's disk, a node's own RNG, the nemesis,
//! the workload) draws from its own stream, so adding a draw in one place
//! does not shift every other random choice of the run.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a random stream is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Network latency, jitter, loss.
    Network,
    /// The nemesis schedule and its choices.
    Nemesis,
    /// The workload's operations and think times.
    Workload,
    /// Clock offsets and drifts.
    Clocks,
    /// One node's disk (by node id).
    Disk(u32),
    /// One node incarnation's own RNG (node id, incarnation).
    Node(u32, u32),
    /// The faults aimed at protocol events: which occurrences set one off.
    Triggers,
    /// BUGGIFY's decisions.
    Buggify,
}

/// A ChaCha8 RNG for `stream` of the run with `seed`.
pub fn stream_rng(seed: u64, stream: Stream) -> ChaCha8Rng {
    let (tag, a, b) = match stream {
        Stream::Network => (1u64, 0u64, 0u64),
        Stream::Nemesis => (2, 0, 0),
        Stream::Workload => (3, 0, 0),
        Stream::Clocks => (4, 0, 0),
        Stream::Disk(n) => (5, n as u64, 0),
        Stream::Node(n, i) => (6, n as u64, i as u64),
        Stream::Triggers => (7, 0, 0),
        Stream::Buggify => (8, 0, 0),
    };
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&tag.to_le_bytes());
    key[16..24].copy_from_slice(&a.to_le_bytes());
    key[24..32].copy_from_slice(&b.to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

/// A small, fast deterministic generator (SplitMix64) for per-message draws
/// (latency jitter, loss) where ChaCha's cost would show. Seeded from a
/// ChaCha stream, so it is as reproducible as everything else.
#[derive(Clone, Debug)]
pub struct FastRng {
    state: u64,
}

impl FastRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> FastRng {
        FastRng { state: seed }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (n > 0), by multiply-shift (bias below 2^-40 for
    /// the ranges used here).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// True with probability `p`.
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64) * (1.0 / (1u64 << 53) as f64) < p
    }
}
