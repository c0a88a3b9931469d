//! The visited-configuration cache of the search: a set of
//! (linearized-operations bitset, model state) pairs.
//!
//! Operations of unknown outcome (`info`) are optional: they may be
//! linearized at any point after their call, or never, and nothing waits
//! for them. So a configuration is covered by a remembered one with the
//! same state, the same operations of known outcome linearized and a
//! subset of the optional ones: whatever the newer one can still do, the
//! remembered one could too (the optional operations it has not used stay
//! available, and every other choice depends only on the known ones). The
//! cache answers "covered" for those, not only for exact repeats; without
//! it, `k` optional operations can multiply the configurations by `2^k`
//! (the same state reached with every subset of crashed writes, e.g. each
//! overwritten by a later write). The caller's hash must then ignore the
//! optional operations.
//!
//! Open addressing over `u32` slots, one slot per distinct hash: every
//! configuration of a hash hangs off that slot in a chain. Configurations
//! that differ only in their optional operations share a hash (by design),
//! and there can be thousands of them (an antichain of subsets of crashed
//! writes); chained, they cost a lookup of that hash only, where linear
//! probing would lay them out as one long cluster that every other hash
//! landing near it walks too (quadratic: a 10-million-step search ran 50
//! times slower than a 1-million-step one). Bitsets live in one flat arena
//! with a fixed stride, states in a vector, so an insertion allocates
//! nothing but amortised growth. Once the memory budget is spent the cache
//! stops remembering (the search stays sound and complete, only slower; the
//! deadline bounds it).

use std::cell::Cell;
use std::hash::Hash;
use std::rc::Rc;

/// A memory budget in bytes, shared by the caches of concurrent searches;
/// a cache gives its bytes back when dropped.
#[derive(Clone, Debug)]
pub struct Budget(Rc<Cell<usize>>);

impl Budget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Budget {
        Budget(Rc::new(Cell::new(bytes)))
    }

    /// Bytes still available.
    pub fn available(&self) -> usize {
        self.0.get()
    }

    fn take(&self, bytes: usize) -> bool {
        let left = self.0.get();
        if bytes > left {
            return false;
        }
        self.0.set(left - bytes);
        true
    }

    fn give(&self, bytes: usize) {
        self.0.set(self.0.get() + bytes);
    }
}

/// A set of (bitset, state) configurations.
pub struct Cache<S> {
    /// Per distinct hash, 1 + the newest configuration with it (0: empty).
    slots: Vec<u32>,
    /// Number of occupied slots (distinct hashes).
    distinct: usize,
    hashes: Vec<u64>,
    /// Per configuration, 1 + the next older one with the same hash (0: none).
    next: Vec<u32>,
    bits: Vec<u64>,
    states: Vec<S>,
    stride: usize,
    /// Per bitset word, the bits of optional operations.
    optional: Vec<u64>,
    bytes: usize,
    budget: Budget,
    full: bool,
}

impl<S> Drop for Cache<S> {
    fn drop(&mut self) {
        self.budget.give(self.bytes);
    }
}

impl<S: Eq + Hash + Clone> Cache<S> {
    /// An empty cache for bitsets of `stride` words, drawing on `budget`;
    /// every operation is required (only exact repeats are covered).
    pub fn new(stride: usize, budget: Budget) -> Cache<S> {
        Cache::with_optional(vec![0; stride], budget)
    }

    /// An empty cache whose bitsets have the set bits of `optional` (one
    /// word per 64 operations) for the optional operations (see the module
    /// docs).
    pub fn with_optional(optional: Vec<u64>, budget: Budget) -> Cache<S> {
        Cache {
            slots: vec![0; 1024],
            distinct: 0,
            hashes: Vec::new(),
            next: Vec::new(),
            bits: Vec::new(),
            stride: optional.len(),
            optional,
            states: Vec::new(),
            bytes: 0,
            budget,
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

    /// Inserts the configuration; returns `false` if it was already there
    /// or is covered by one that is. `hash` must be a function of `state`
    /// and of the required bits of `bits` only; `state_bytes` is the
    /// state's size for the budget.
    #[inline]
    pub fn insert(&mut self, hash: u64, bits: &[u64], state: &S, state_bytes: usize) -> bool {
        let mask = self.slots.len() - 1;
        let mut i = (hash as usize) & mask;
        let head = loop {
            let slot = self.slots[i];
            if slot == 0 || self.hashes[(slot - 1) as usize] == hash {
                break slot;
            }
            i = (i + 1) & mask;
        };
        let mut link = head;
        while link != 0 {
            let k = (link - 1) as usize;
            if self.covers(&self.bits[k * self.stride..(k + 1) * self.stride], bits)
                && self.states[k] == *state
            {
                return false;
            }
            link = self.next[k];
        }
        if self.full {
            return true;
        }
        // Entry, hash, link, bitset, state, and the slots it will need.
        let cost = 8 + 8 + 4 + 8 + self.stride * 8 + state_bytes;
        if self.states.len() >= (u32::MAX / 4) as usize || !self.budget.take(cost) {
            self.full = true;
            return true;
        }
        self.bytes += cost;
        self.slots[i] = self.states.len() as u32 + 1;
        self.hashes.push(hash);
        self.next.push(head);
        self.bits.extend_from_slice(bits);
        self.states.push(state.clone());
        if head == 0 {
            self.distinct += 1;
            if self.distinct * 2 > self.slots.len() {
                self.grow();
            }
        }
        true
    }

    /// Whether remembered bitset `old` covers `new`: the same required
    /// bits, and its optional bits a subset of `new`'s.
    #[inline]
    fn covers(&self, old: &[u64], new: &[u64]) -> bool {
        old.iter()
            .zip(new)
            .zip(&self.optional)
            .all(|((&o, &n), &opt)| o & !n == 0 && (n & !o) & !opt == 0)
    }

    fn grow(&mut self) {
        let cap = self.slots.len() * 2;
        let mut slots = vec![0u32; cap];
        let mask = cap - 1;
        for &slot in self.slots.iter().filter(|&&s| s != 0) {
            let h = self.hashes[(slot - 1) as usize];
            let mut j = (h as usize) & mask;
            while slots[j] != 0 {
                j = (j + 1) & mask;
            }
            slots[j] = slot;
        }
        self.slots = slots;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_grows() {
        let mut c: Cache<u32> = Cache::new(1, Budget::new(1 << 30));
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
    fn covers_supersets_of_optional_operations() {
        // Operations 0 and 1 are required, 2 and 3 optional.
        let mut c: Cache<u32> = Cache::with_optional(vec![0b1100], Budget::new(1 << 30));
        assert!(c.insert(1, &[0b0101], &7, 4));
        // More optional operations, same required ones and state: covered.
        assert!(!c.insert(1, &[0b1101], &7, 4));
        assert!(!c.insert(1, &[0b0101], &7, 4));
        // Fewer optional ones, another state or other required ones: new.
        assert!(c.insert(1, &[0b0001], &7, 4));
        assert!(c.insert(1, &[0b1101], &8, 4));
        assert!(c.insert(1, &[0b0111], &7, 4));
        assert!(c.insert(1, &[0b1011], &7, 4));
    }

    /// Thousands of incomparable configurations of one hash (every pair of
    /// 64 optional operations) stay in one chain: they are all remembered
    /// and found again, and other hashes are unaffected by them.
    #[test]
    fn one_hash_with_many_configurations_is_one_chain() {
        let mut c: Cache<u32> = Cache::with_optional(vec![u64::MAX], Budget::new(1 << 30));
        let pairs: Vec<u64> = (0..64)
            .flat_map(|i| (i + 1..64).map(move |j| (1u64 << i) | (1 << j)))
            .collect();
        for &p in &pairs {
            assert!(c.insert(5, &[p], &1, 4));
        }
        for &p in &pairs {
            assert!(!c.insert(5, &[p], &1, 4));
            assert!(!c.insert(5, &[p | 1 << 63 | 1], &1, 4));
        }
        assert_eq!(c.distinct, 1);
        for h in 0..100u64 {
            assert!(c.insert(h + 1000, &[0], &2, 4));
        }
        assert_eq!(c.distinct, 101);
        assert_eq!(c.len(), pairs.len() + 100);
    }

    #[test]
    fn stops_remembering_at_the_budget() {
        let budget = Budget::new(100);
        let mut c: Cache<u32> = Cache::new(1, budget.clone());
        for i in 0..10u64 {
            assert!(c.insert(i, &[i], &0, 4));
        }
        assert!(c.is_full());
        assert!(c.len() < 10);
        // Forgotten configurations count as new, which is sound.
        assert!(c.insert(9, &[9], &0, 4));
        drop(c);
        assert_eq!(budget.available(), 100);
    }
}
