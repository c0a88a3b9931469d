//! Wing–Gong–Lowe search for a linearization of one partition.
//!
//! Calls and returns form a doubly linked list in real-time order. The
//! search repeatedly takes the earliest pending call, applies it to the
//! model, and, if the output is legal and the resulting (linearized set,
//! state) configuration is new, "lifts" the call and its return out of the
//! list. Reaching a return whose call is not yet linearized means the
//! current prefix is a dead end, so the search backtracks. Operations with
//! unknown outcome have no return entry: they may be linearized at any point
//! after their call, or never, and the search succeeds as soon as every
//! operation with a known outcome is linearized.
//!
//! The linearized set is a bitset with an incremental Zobrist hash, and the
//! visited configurations live in a [`Cache`]. Nothing is allocated per
//! step except the cache's amortised growth and model states that own heap
//! memory.

use std::time::Instant;

use super::cache::Cache;
use super::hash::{fx_hash, zobrist};
use super::models::Model;

const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;

/// One operation of a partition, ready for the search.
#[derive(Clone, Debug)]
pub struct SearchOp<O> {
    /// Identifier reported back in results (an index into the history).
    pub id: usize,
    /// Time of the call; all call and return times must be distinct.
    pub call: u64,
    /// Time of the return, or `None` when the outcome is unknown.
    pub ret: Option<u64>,
    /// The encoded operation.
    pub op: O,
}

/// Limits of one search.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Give up (verdict unknown) after this instant.
    pub deadline: Option<Instant>,
    /// Memory budget of the visited cache, in bytes.
    pub cache_bytes: usize,
}

/// The outcome of searching one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchResult {
    /// A linearization exists.
    Linearizable,
    /// None exists. `prefix` is the longest linearizable prefix found (ids,
    /// in linearization order) and `blocked` the operation whose return was
    /// reached, after that prefix, without being able to place it.
    NotLinearizable {
        /// Ids of the longest linearized prefix, in order.
        prefix: Vec<usize>,
        /// Id of the operation that could not be placed after it.
        blocked: usize,
    },
    /// The deadline passed first.
    Timeout,
}

#[derive(Clone, Copy)]
struct Entry {
    op: u32,
    partner: u32,
    prev: u32,
    next: u32,
    call: bool,
}

struct List {
    e: Vec<Entry>,
}

impl List {
    fn build<O>(ops: &[SearchOp<O>]) -> List {
        let mut events: Vec<(u64, u32, bool)> = Vec::with_capacity(ops.len() * 2);
        for (k, o) in ops.iter().enumerate() {
            events.push((o.call, k as u32, true));
            if let Some(r) = o.ret {
                events.push((r, k as u32, false));
            }
        }
        // Ties cannot happen with event indices; if they do, calls first.
        events.sort_by_key(|&(t, k, call)| (t, !call, k));
        let mut e = Vec::with_capacity(events.len() + 1);
        e.push(Entry {
            op: NIL,
            partner: NIL,
            prev: NIL,
            next: NIL,
            call: false,
        });
        let mut ret_pos = vec![NIL; ops.len()];
        for (i, &(_, k, call)) in events.iter().enumerate() {
            let idx = i as u32 + 1;
            if !call {
                ret_pos[k as usize] = idx;
            }
            e.push(Entry {
                op: k,
                partner: NIL,
                prev: idx - 1,
                next: if i + 1 < events.len() { idx + 1 } else { NIL },
                call,
            });
        }
        e[0].next = if events.is_empty() { NIL } else { 1 };
        for x in e.iter_mut().skip(1) {
            if x.call {
                x.partner = ret_pos[x.op as usize];
            }
        }
        List { e }
    }

    #[inline]
    fn unlink(&mut self, x: u32) {
        let Entry { prev, next, .. } = self.e[x as usize];
        self.e[prev as usize].next = next;
        if next != NIL {
            self.e[next as usize].prev = prev;
        }
    }

    #[inline]
    fn relink(&mut self, x: u32) {
        let Entry { prev, next, .. } = self.e[x as usize];
        self.e[prev as usize].next = x;
        if next != NIL {
            self.e[next as usize].prev = x;
        }
    }

    #[inline]
    fn lift(&mut self, call: u32) {
        self.unlink(call);
        let p = self.e[call as usize].partner;
        if p != NIL {
            self.unlink(p);
        }
    }

    #[inline]
    fn unlift(&mut self, call: u32) {
        let p = self.e[call as usize].partner;
        if p != NIL {
            self.relink(p);
        }
        self.relink(call);
    }
}

/// Searches for a linearization of `ops` under `model`.
pub fn search<M: Model>(model: &M, ops: &[SearchOp<M::Op>], limits: Limits) -> SearchResult {
    let mut remaining = ops.iter().filter(|o| o.ret.is_some()).count();
    if remaining == 0 {
        return SearchResult::Linearizable;
    }
    let mut list = List::build(ops);
    let stride = ops.len().div_ceil(64);
    let mut bits = vec![0u64; stride];
    let keys: Vec<u64> = (0..ops.len()).map(zobrist).collect();
    let mut zob = 0u64;
    let mut cache: Cache<M::State> = Cache::new(stride, limits.cache_bytes);
    let mut state = model.init();
    let mut stack: Vec<(u32, M::State)> = Vec::with_capacity(ops.len());
    let mut best: Vec<u32> = Vec::new();
    let mut best_blocked = NIL;
    let mut low_water = 0usize;
    let mut steps: u64 = 0;
    let mut e = list.e[HEAD as usize].next;
    loop {
        steps += 1;
        if steps & 0x3ff == 0 {
            if let Some(d) = limits.deadline {
                if Instant::now() >= d {
                    return SearchResult::Timeout;
                }
            }
        }
        let entry = if e == NIL { None } else { Some(list.e[e as usize]) };
        match entry {
            Some(en) if en.call => {
                let k = en.op as usize;
                if let Some(next) = model.step(&state, &ops[k].op) {
                    bits[k >> 6] |= 1 << (k & 63);
                    zob ^= keys[k];
                    let h = zob ^ fx_hash(&next);
                    if cache.insert(h, &bits, &next, model.state_bytes(&next)) {
                        stack.push((e, std::mem::replace(&mut state, next)));
                        list.lift(e);
                        if en.partner != NIL {
                            remaining -= 1;
                            if remaining == 0 {
                                return SearchResult::Linearizable;
                            }
                        }
                        e = list.e[HEAD as usize].next;
                        continue;
                    }
                    bits[k >> 6] &= !(1 << (k & 63));
                    zob ^= keys[k];
                }
                e = en.next;
            }
            _ => {
                // A return (or the end): the prefix on the stack is stuck.
                if e != NIL && (stack.len() > best.len() || best_blocked == NIL) {
                    best.truncate(low_water);
                    best.extend(stack[low_water..].iter().map(|(c, _)| list.e[*c as usize].op));
                    best_blocked = list.e[e as usize].op;
                    low_water = stack.len();
                }
                let Some((c, prev)) = stack.pop() else {
                    let prefix = best.iter().map(|&k| ops[k as usize].id).collect();
                    let blocked = if best_blocked == NIL {
                        ops[0].id
                    } else {
                        ops[best_blocked as usize].id
                    };
                    return SearchResult::NotLinearizable { prefix, blocked };
                };
                low_water = low_water.min(stack.len());
                let k = list.e[c as usize].op as usize;
                bits[k >> 6] &= !(1 << (k & 63));
                zob ^= keys[k];
                state = prev;
                list.unlift(c);
                if list.e[c as usize].partner != NIL {
                    remaining += 1;
                }
                e = list.e[c as usize].next;
            }
        }
    }
}
