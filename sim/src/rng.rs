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
    };
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&tag.to_le_bytes());
    key[16..24].copy_from_slice(&a.to_le_bytes());
    key[24..32].copy_from_slice(&b.to_le_bytes());
    ChaCha8Rng::from_seed(key)
}
