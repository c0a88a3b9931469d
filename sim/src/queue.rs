//! The engine's event queue: a binary heap of small (time, sequence, slot)
//! keys, with the events themselves in a slab.
//!
//! Events are ordered by (time, sequence number); the sequence number breaks
//! ties in scheduling order, so equal-time events run first-scheduled first.
//! Sifting moves 24-byte keys whatever the size of the events. (A timing
//! wheel was tried and measured slower on the flood benchmark.)

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A binary heap of small (time, sequence, slot) keys; the events wait in a
/// slab so that sifting moves 24 bytes whatever the event's size.
pub struct SlabHeapQueue<T> {
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    slab: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for SlabHeapQueue<T> {
    fn default() -> Self {
        SlabHeapQueue {
            heap: BinaryHeap::new(),
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

    /// Queues `item` at `(at, seq)`.
    #[inline]
    pub fn push(&mut self, at: u64, seq: u64, item: T) {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(item);
                slot
            }
            None => {
                self.slab.push(Some(item));
                (self.slab.len() - 1) as u32
            }
        };
        self.heap.push(Reverse((at, seq, slot)));
    }

    /// Removes the earliest event.
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, T)> {
        let Reverse((at, _, slot)) = self.heap.pop()?;
        self.free.push(slot);
        Some((at, self.slab[slot as usize].take().expect("queued")))
    }
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
