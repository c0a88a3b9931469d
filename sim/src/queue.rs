//! The engine's event queue: a binary min-heap of packed `u128` keys, with
//! the events themselves in a slab.
//!
//! Events are ordered by (time, sequence number); the sequence number breaks
//! ties in scheduling order, so equal-time events run first-scheduled first.
//! A key packs time (high 64 bits), sequence number (next [`SEQ_BITS`]) and
//! slab slot (low [`SLOT_BITS`]) into one `u128`, so one integer comparison
//! orders two events and sifting moves 16 bytes whatever the event's size.
//! Pops refill the root bottom-up, one comparison a level. (A timing wheel,
//! a radix heap and a 4-ary heap were tried and measured slower on the flood
//! benchmark.)

/// Bits of a key given to the slab slot: at most 2^24 (16.7 M) events may be
/// queued at once.
pub const SLOT_BITS: u32 = 24;
/// Bits of a key given to the sequence number: at most 2^40 (1.1 T) events
/// may be queued over one run.
pub const SEQ_BITS: u32 = 64 - SLOT_BITS;

/// A binary min-heap of packed (time, sequence, slot) keys; the events wait
/// in a slab so that sifting moves 16 bytes whatever the event's size.
pub struct SlabHeapQueue<T> {
    heap: Vec<u128>,
    slab: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for SlabHeapQueue<T> {
    fn default() -> Self {
        SlabHeapQueue {
            heap: Vec::new(),
            slab: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> SlabHeapQueue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Events queued.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no event is queued.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Queues `item` at `(at, seq)`. Sequence numbers must be unique and
    /// below 2^[`SEQ_BITS`].
    #[inline]
    pub fn push(&mut self, at: u64, seq: u64, item: T) {
        assert!(seq < 1 << SEQ_BITS, "event sequence number overflow");
        let slot = match self.free.pop() {
            Some(slot) => {
                // A free slot holds `None`: replacing it needs no drop glue.
                let old = std::mem::replace(&mut self.slab[slot as usize], Some(item));
                debug_assert!(old.is_none());
                std::mem::forget(old);
                slot
            }
            None => {
                let slot = self.slab.len() as u32;
                assert!(slot < 1 << SLOT_BITS, "too many queued events");
                self.slab.push(Some(item));
                slot
            }
        };
        let key = (at as u128) << 64 | (seq as u128) << SLOT_BITS | slot as u128;
        self.sift_up(key);
    }

    /// Removes the earliest event.
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, T)> {
        let last = self.heap.pop()?;
        let top = if self.heap.is_empty() {
            last
        } else {
            let top = self.heap[0];
            self.sift_down(last);
            top
        };
        let slot = (top as u32) & ((1 << SLOT_BITS) - 1);
        self.free.push(slot);
        let item = self.slab[slot as usize].take().expect("queued");
        Some(((top >> 64) as u64, item))
    }

    /// Adds `key` at the end and moves it up to its place.
    #[inline]
    fn sift_up(&mut self, key: u128) {
        let i = self.heap.len();
        self.heap.push(key);
        sift_up_from(&mut self.heap, i, key);
    }

    /// Refills the vacated root with `key`, bottom-up (Floyd): the hole goes
    /// down to a leaf along the smaller children, one comparison a level,
    /// then `key` (taken from the end, so usually late) comes up from there.
    #[inline]
    fn sift_down(&mut self, key: u128) {
        let heap = &mut self.heap[..];
        let n = heap.len();
        let mut hole = 0;
        let mut child = 1;
        while child + 1 < n {
            child += usize::from(heap[child + 1] < heap[child]);
            heap[hole] = heap[child];
            hole = child;
            child = 2 * hole + 1;
        }
        if child + 1 == n {
            heap[hole] = heap[child];
            hole = child;
        }
        sift_up_from(heap, hole, key);
    }
}

/// Puts `key` into the hole at `i`, moving it up past larger parents.
#[inline]
fn sift_up_from(heap: &mut [u128], mut i: usize, key: u128) {
    while i > 0 {
        let parent = (i - 1) / 2;
        let p = heap[parent];
        if p <= key {
            break;
        }
        heap[i] = p;
        i = parent;
    }
    heap[i] = key;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn pops_in_time_then_sequence_order(
            steps in proptest::collection::vec((0u64..20_000, 0usize..4), 1..400)
        ) {
            let mut q = SlabHeapQueue::new();
            let mut model = std::collections::BTreeSet::new();
            let mut now = 0u64;
            let mut seq = 0u64;
            for (delay, pops) in steps {
                seq += 1;
                let delay = if seq.is_multiple_of(3) { delay % 5 } else { delay };
                q.push(now + delay, seq, seq);
                model.insert((now + delay, seq));
                for _ in 0..pops {
                    let want = model.pop_first();
                    prop_assert_eq!(q.pop(), want);
                    if let Some((at, _)) = want {
                        now = at;
                    }
                }
            }
            while let Some(want) = model.pop_first() {
                prop_assert_eq!(q.pop(), Some(want));
            }
            prop_assert_eq!(q.pop(), None);
        }
    }
}
