//! The engine's event queue: a timing wheel of one-microsecond buckets for
//! the near future, in front of a heap for later events.
//!
//! Events are ordered by (time, sequence number); the sequence number breaks
//! ties in scheduling order, so equal-time events run first-scheduled first.
//!
//! Events due within [`WHEEL_US`] of the current time (most messages, disk
//! completions, connection notices) go into the wheel: one FIFO list per
//! microsecond, threaded through the slab, with a two-level bitmap to find
//! the next busy bucket. A bucket only ever holds events of one time, in
//! push order, which is sequence order. Later events (most timers) wait in a
//! binary heap of packed (time, sequence, slot) keys and move into the wheel,
//! in (time, sequence) order, as soon as the current time comes within
//! [`WHEEL_US`] of them, before anything else can be pushed for their time;
//! so each bucket stays in sequence order. Times never go backwards: an event
//! may not be pushed for a time before the last one popped.

use std::mem;

/// The wheel's span in microseconds (a power of two).
pub const WHEEL_US: u64 = 4096;
const WHEEL_MASK: u64 = WHEEL_US - 1;
const WORDS: usize = (WHEEL_US / 64) as usize;
const NIL: u32 = u32::MAX;

/// One queued event in the slab.
struct Entry<T> {
    at: u64,
    /// Next entry in the same bucket.
    next: u32,
    item: Option<T>,
}

/// The event queue: wheel, far-event heap and the slab that holds both's
/// events.
pub struct SlabHeapQueue<T> {
    /// Time of the last pop: the wheel covers `[now, now + WHEEL_US)`.
    now: u64,
    /// Per bucket: first and last entry (`NIL` when empty).
    buckets: Vec<(u32, u32)>,
    /// Bit b of word w: bucket 64 w + b is busy.
    bits: [u64; WORDS],
    /// Bit w: word w of `bits` is non-zero.
    summary: u64,
    /// Events in the wheel.
    in_wheel: usize,
    far: KeyHeap,
    slab: Vec<Entry<T>>,
    free: Vec<u32>,
}

impl<T> Default for SlabHeapQueue<T> {
    fn default() -> Self {
        SlabHeapQueue {
            now: 0,
            buckets: vec![(NIL, NIL); WHEEL_US as usize],
            bits: [0; WORDS],
            summary: 0,
            in_wheel: 0,
            far: KeyHeap::default(),
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
        self.in_wheel + self.far.heap.len()
    }

    /// Whether no event is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `item` at `(at, seq)`. `at` may not be before the time of the
    /// last pop; sequence numbers must increase from push to push and stay
    /// below 2^[`SEQ_BITS`].
    #[inline]
    pub fn push(&mut self, at: u64, seq: u64, item: T) {
        assert!(at >= self.now, "event scheduled in the past");
        let slot = match self.free.pop() {
            Some(slot) => {
                let entry = &mut self.slab[slot as usize];
                entry.at = at;
                entry.next = NIL;
                // A free slot holds `None`: filling it needs no drop glue.
                let old = entry.item.replace(item);
                debug_assert!(old.is_none());
                mem::forget(old);
                slot
            }
            None => {
                let slot = self.slab.len() as u32;
                assert!(slot < 1 << SLOT_BITS, "too many queued events");
                self.slab.push(Entry {
                    at,
                    next: NIL,
                    item: Some(item),
                });
                slot
            }
        };
        if at - self.now < WHEEL_US {
            self.link(at, slot);
        } else {
            self.far.push(at, seq, slot);
        }
    }

    /// Appends `slot` (due at `at`, within the wheel) to its bucket.
    #[inline]
    fn link(&mut self, at: u64, slot: u32) {
        let b = (at & WHEEL_MASK) as usize;
        let (head, tail) = self.buckets[b];
        if head == NIL {
            self.buckets[b] = (slot, slot);
            self.bits[b / 64] |= 1 << (b % 64);
            self.summary |= 1 << (b / 64);
        } else {
            self.slab[tail as usize].next = slot;
            self.buckets[b].1 = slot;
        }
        self.in_wheel += 1;
    }

    /// The first busy bucket at or after the current time's, circularly.
    #[inline]
    fn next_bucket(&self) -> Option<usize> {
        if self.in_wheel == 0 {
            return None;
        }
        let start = (self.now & WHEEL_MASK) as usize;
        let w = start / 64;
        let here = self.bits[w] & (u64::MAX << (start % 64));
        if here != 0 {
            return Some(w * 64 + here.trailing_zeros() as usize);
        }
        // Words after `w`, then from the start of the wheel (which holds
        // later times), then the low bits of word `w` itself.
        let after = if w == WORDS - 1 {
            0
        } else {
            self.summary & (u64::MAX << (w + 1))
        };
        let word = if after != 0 {
            after.trailing_zeros() as usize
        } else if self.summary != 0 {
            self.summary.trailing_zeros() as usize
        } else {
            return None;
        };
        Some(word * 64 + self.bits[word].trailing_zeros() as usize)
    }

    /// Removes the earliest event.
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, T)> {
        let b = match self.next_bucket() {
            Some(b) => b,
            None => {
                // The wheel is empty: jump to the first far event.
                let at = self.far.peek_time()?;
                self.advance(at);
                self.next_bucket().expect("migrated")
            }
        };
        let (head, tail) = self.buckets[b];
        let entry = &mut self.slab[head as usize];
        let at = entry.at;
        let item = entry.item.take().expect("queued");
        if head == tail {
            self.buckets[b] = (NIL, NIL);
            let w = b / 64;
            self.bits[w] &= !(1 << (b % 64));
            if self.bits[w] == 0 {
                self.summary &= !(1 << w);
            }
        } else {
            self.buckets[b].0 = entry.next;
        }
        self.in_wheel -= 1;
        self.free.push(head);
        if at != self.now {
            self.advance(at);
        }
        Some((at, item))
    }

    /// Moves the current time to `at`, bringing far events that are now
    /// within the wheel's span into it, in (time, sequence) order.
    #[inline]
    fn advance(&mut self, at: u64) {
        self.now = at;
        while let Some(t) = self.far.peek_time() {
            if t - at >= WHEEL_US {
                break;
            }
            let slot = self.far.pop_slot();
            self.link(t, slot);
        }
    }
}

/// Bits of a key given to the slab slot: at most 2^24 (16.7 M) events may be
/// queued at once.
pub const SLOT_BITS: u32 = 24;
/// Bits of a key given to the sequence number: at most 2^40 (1.1 T) events
/// may be queued over one run.
pub const SEQ_BITS: u32 = 64 - SLOT_BITS;

/// A binary min-heap of packed keys: time (high 64 bits), sequence number
/// (next [`SEQ_BITS`]) and slab slot (low [`SLOT_BITS`]), so that one integer
/// comparison orders two events and sifting moves 16 bytes.
#[derive(Default)]
struct KeyHeap {
    heap: Vec<u128>,
}

impl KeyHeap {
    #[inline]
    fn push(&mut self, at: u64, seq: u64, slot: u32) {
        assert!(seq < 1 << SEQ_BITS, "event sequence number overflow");
        let key = (at as u128) << 64 | (seq as u128) << SLOT_BITS | slot as u128;
        self.sift_up(key);
    }

    #[inline]
    fn peek_time(&self) -> Option<u64> {
        self.heap.first().map(|k| (k >> 64) as u64)
    }

    /// Removes the first key; returns its slot.
    #[inline]
    fn pop_slot(&mut self) -> u32 {
        let last = self.heap.pop().expect("non-empty");
        let top = match self.heap.first() {
            Some(&top) => {
                self.sift_down(last);
                top
            }
            None => last,
        };
        (top as u32) & ((1 << SLOT_BITS) - 1)
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

    #[test]
    fn far_events_keep_sequence_order_within_their_time() {
        let mut q = SlabHeapQueue::new();
        q.push(10_000, 1, 'a');
        q.push(9_000, 2, 'b');
        q.push(100, 3, 'c');
        assert_eq!(q.pop(), Some((100, 'c')));
        q.push(10_000, 4, 'd'); // still beyond the wheel: far
        assert_eq!(q.pop(), Some((9_000, 'b'))); // brings a and d in
        q.push(10_000, 5, 'e'); // now within the wheel
        q.push(9_000, 6, 'f'); // the current time
        assert_eq!(q.pop(), Some((9_000, 'f')));
        assert_eq!(q.pop(), Some((10_000, 'a')));
        assert_eq!(q.pop(), Some((10_000, 'd')));
        assert_eq!(q.pop(), Some((10_000, 'e')));
        assert_eq!(q.pop(), None);
        assert!(q.is_empty());
    }

    proptest! {
        #[test]
        fn pops_in_time_then_sequence_order(
            steps in proptest::collection::vec((0u64..20_000, 0usize..4), 1..400),
            far in 0u64..3,
        ) {
            let mut q = SlabHeapQueue::new();
            let mut model = std::collections::BTreeSet::new();
            let mut now = 0u64;
            let mut seq = 0u64;
            for (delay, pops) in steps {
                seq += 1;
                let delay = if seq.is_multiple_of(3) { delay % 5 } else { delay };
                // Some runs reach past the wheel by much more than its span.
                let delay = delay * (1 + far * 100);
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
