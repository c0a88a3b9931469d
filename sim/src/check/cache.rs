//! The visited-configuration cache of the search: a set of
//! (linearized-operations bitset, model state) pairs.
//!
//! Open addressing over `u32` slots; bitsets live in one flat arena with a
//! fixed stride, states in a vector, so an insertion allocates nothing but
//! amortised growth. Once the memory budget is spent the cache stops
//! remembering (the search stays sound and complete, only slower; the
//! deadline bounds it).

use std::hash::Hash;

/// A set of (bitset, state) configurations.
pub struct Cache<S> {
    slots: Vec<u32>,
    hashes: Vec<u64>,
    bits: Vec<u64>,
    states: Vec<S>,
    stride: usize,
    bytes: usize,
    limit: usize,
    full: bool,
}

impl<S: Eq + Hash + Clone> Cache<S> {
    /// An empty cache for bitsets of `stride` words, using at most about
    /// `limit` bytes.
    pub fn new(stride: usize, limit: usize) -> Cache<S> {
        Cache {
            slots: vec![0; 1024],
            hashes: Vec::new(),
            bits: Vec::new(),
            states: Vec::new(),
            stride,
            bytes: 0,
            limit,
            full: false,
        }
    }

    /// Number of remembered configurations.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Whether the memory budget was reached.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Inserts the configuration; returns `false` if it was already there.
    /// `hash` must be a function of `bits` and `state` only; `state_bytes`
    /// is the state's size for the budget.
    #[inline]
    pub fn insert(&mut self, hash: u64, bits: &[u64], state: &S, state_bytes: usize) -> bool {
        let mask = self.slots.len() - 1;
        let mut i = (hash as usize) & mask;
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                break;
            }
            let k = (slot - 1) as usize;
            if self.hashes[k] == hash
                && self.bits[k * self.stride..(k + 1) * self.stride] == *bits
                && self.states[k] == *state
            {
                return false;
            }
            i = (i + 1) & mask;
        }
        if self.full {
            return true;
        }
        let cost = 8 + 8 + self.stride * 8 + state_bytes;
        if self.bytes + cost > self.limit || self.states.len() >= (u32::MAX / 2) as usize {
            self.full = true;
            return true;
        }
        self.bytes += cost;
        self.slots[i] = self.states.len() as u32 + 1;
        self.hashes.push(hash);
        self.bits.extend_from_slice(bits);
        self.states.push(state.clone());
        if self.states.len() * 2 > self.slots.len() {
            self.grow();
        }
        true
    }

    fn grow(&mut self) {
        let cap = self.slots.len() * 2;
        self.bytes += self.slots.len() * 4;
        self.slots = vec![0; cap];
        let mask = cap - 1;
        for (k, &h) in self.hashes.iter().enumerate() {
            let mut i = (h as usize) & mask;
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = k as u32 + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_grows() {
        let mut c: Cache<u32> = Cache::new(1, 1 << 30);
        for i in 0..5000u64 {
            assert!(c.insert(i % 7, &[i], &(i as u32), 4));
        }
        for i in 0..5000u64 {
            assert!(!c.insert(i % 7, &[i], &(i as u32), 4));
            assert!(c.insert(i % 7, &[i], &(i as u32 + 1), 4));
        }
        assert!(!c.is_full());
    }

    #[test]
    fn stops_remembering_at_the_budget() {
        let mut c: Cache<u32> = Cache::new(1, 100);
        for i in 0..10u64 {
            assert!(c.insert(i, &[i], &0, 4));
        }
        assert!(c.is_full());
        assert!(c.len() < 10);
        // Forgotten configurations count as new, which is sound.
        assert!(c.insert(9, &[9], &0, 4));
    }
}
