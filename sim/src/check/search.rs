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
//! The linearized set is a bitset with an incremental Zobrist hash over the
//! operations of known outcome, and the visited configurations live in a
//! [`Cache`], which also counts a configuration as visited when one with
//! the same state and known operations but fewer unknown ones was (an
//! unknown operation is optional, so that one can do at least as much).
//! Nothing is allocated per
//! step except the cache's amortised growth and model states that own heap
//! memory.

use std::time::Instant;

use super::cache::{Budget, Cache};
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
    /// An operation (index into the same slice) that must be linearized
    /// before this one, e.g. the previous operation of the same session.
    pub after: Option<usize>,
    /// The encoded operation.
    pub op: O,
}

/// Limits of a search.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Give up (verdict unknown) after this instant.
    pub deadline: Option<Instant>,
    /// Give up (verdict unknown) after this many steps of one search: a
    /// budget that, unlike the deadline, gives the same verdict on any
    /// machine under any load.
    pub max_steps: Option<u64>,
    /// Memory budget shared by the visited caches of all live searches.
    pub budget: Budget,
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
    /// The deadline passed, or the step budget ran out, first.
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
        // Ties only happen for relaxed calls placed at another call's time:
        // calls first, then by operation index.
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

/// Passes over the candidates of a configuration (see [`Search::run`]).
const KNOWN: u8 = 0;
const ENABLING: u8 = 1;
const OTHER: u8 = 2;

/// Which operations of unknown outcome (optional ones) a search tries at
/// a dead end, before it backtracks.
///
/// The full search ([`OptionalTries::All`]) tries, at each dead end, every
/// subset of the pending optional operations: with tens of crashed writes
/// pending that is exponential even when a linearization is near. Most
/// histories are linearizable with none of them, or with only those that
/// some read shows, so a driver can try the cheaper searches first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionalTries {
    /// None: as if every crashed operation never took effect.
    None,
    /// Only one that by itself lets the waiting return be placed.
    Enabling,
    /// Any (complete).
    All,
}

/// A lifted call on the search stack: where it was taken, in which pass
/// (and with which first pending return), and the state before it.
struct Lifted<S> {
    call: u32,
    pass: u8,
    ret: u32,
    state: S,
}

/// A resumable search over one partition: [`Search::run`] advances it by a
/// bounded number of steps, so that a driver can interleave partitions and
/// stop at the first violation wherever it is.
pub struct Search<'a, M: Model> {
    model: &'a M,
    ops: &'a [SearchOp<M::Op>],
    list: List,
    bits: Vec<u64>,
    keys: Vec<u64>,
    after: Vec<u32>,
    zob: u64,
    cache: Cache<M::State>,
    state: M::State,
    stack: Vec<Lifted<M::State>>,
    remaining: usize,
    best: Vec<u32>,
    best_blocked: u32,
    low_water: usize,
    entry: u32,
    /// The pass at `entry`, and the first pending return of its
    /// configuration (for the optional passes).
    pass: (u8, u32),
    /// Whether the partition has any optional operation.
    has_optional: bool,
    /// Which optional operations are tried; short of
    /// [`OptionalTries::All`] the search is incomplete and only its
    /// `Linearizable` is an answer.
    tries: OptionalTries,
    steps: u64,
    deadline: Option<Instant>,
    max_steps: u64,
}

impl<'a, M: Model> Search<'a, M> {
    /// Prepares a search of `ops` under `model`; the cache draws on `budget`.
    pub fn new(model: &'a M, ops: &'a [SearchOp<M::Op>], limits: &Limits) -> Search<'a, M> {
        let list = List::build(ops);
        let stride = ops.len().div_ceil(64);
        let entry = list.e[HEAD as usize].next;
        let mut optional = vec![0u64; stride];
        for (k, o) in ops.iter().enumerate() {
            if o.ret.is_none() {
                optional[k >> 6] |= 1 << (k & 63);
            }
        }
        Search {
            model,
            ops,
            list,
            bits: vec![0u64; stride],
            // Unknown-outcome operations leave the hash alone (see Cache).
            keys: ops
                .iter()
                .enumerate()
                .map(|(k, o)| if o.ret.is_some() { zobrist(k) } else { 0 })
                .collect(),
            after: ops
                .iter()
                .map(|o| o.after.map_or(NIL, |a| a as u32))
                .collect(),
            zob: 0,
            cache: Cache::with_optional(optional, limits.budget.clone()),
            state: model.init(),
            stack: Vec::with_capacity(ops.len()),
            remaining: ops.iter().filter(|o| o.ret.is_some()).count(),
            best: Vec::new(),
            best_blocked: NIL,
            low_water: 0,
            entry,
            pass: (KNOWN, NIL),
            has_optional: ops.iter().any(|o| o.ret.is_none()),
            tries: OptionalTries::All,
            steps: 0,
            deadline: limits.deadline,
            max_steps: limits.max_steps.unwrap_or(u64::MAX),
        }
    }

    /// The search restricted to `tries`: incomplete unless it is
    /// [`OptionalTries::All`] (a linearization it finds is one; when it
    /// finds none, nothing is known).
    pub fn trying(mut self, tries: OptionalTries) -> Self {
        self.tries = tries;
        self
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Whether the cache ran out of memory budget (the search goes on
    /// without remembering new configurations).
    pub fn cache_full(&self) -> bool {
        self.cache.is_full()
    }

    /// Runs at most `max_steps` steps: `None` if still undecided.
    ///
    /// From each configuration the candidate calls (those before the first
    /// pending return) are tried in three passes: the operations of known
    /// outcome, in call order; then the optional ones (unknown outcome)
    /// after which the operation of that first pending return could take
    /// effect at once; then the other optional ones. Optional candidates go
    /// latest call first. Every candidate is still tried exactly once, so
    /// the search is as complete as a single pass; but a history whose
    /// crashed writes need not have happened (the usual case) is
    /// linearized without first trying the subsets of them, and a read that
    /// shows a crashed write gets that write first.
    pub fn run(&mut self, max_steps: u64) -> Option<SearchResult> {
        if self.remaining == 0 {
            return Some(SearchResult::Linearizable);
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) || self.steps >= self.max_steps {
            return Some(SearchResult::Timeout);
        }
        let stop = self.steps.saturating_add(max_steps).min(self.max_steps);
        let (model, ops) = (self.model, self.ops);
        let mut e = self.entry;
        let (mut pass, mut ret) = self.pass;
        loop {
            self.steps += 1;
            if self.steps & 0x3ff == 0 {
                if let Some(d) = self.deadline {
                    if Instant::now() >= d {
                        self.entry = e;
                        self.pass = (pass, ret);
                        return Some(SearchResult::Timeout);
                    }
                }
            }
            if self.steps >= stop {
                self.entry = e;
                self.pass = (pass, ret);
                if self.steps >= self.max_steps {
                    return Some(SearchResult::Timeout);
                }
                return None;
            }
            let entry = if e == NIL {
                None
            } else {
                Some(self.list.e[e as usize])
            };
            match entry {
                Some(en) if en.call => {
                    // Each pass takes its own kind of operation.
                    let step_on = if pass == KNOWN { en.next } else { en.prev };
                    if (en.partner == NIL) != (pass != KNOWN) {
                        e = step_on;
                        continue;
                    }
                    let k = en.op as usize;
                    let a = self.after[k];
                    let ready = a == NIL || self.bits[(a >> 6) as usize] & (1 << (a & 63)) != 0;
                    if !ready {
                        e = step_on;
                        continue;
                    }
                    let Some(next) = model.step(&self.state, &ops[k].op) else {
                        e = step_on;
                        continue;
                    };
                    if pass != KNOWN {
                        let waiting = &ops[self.list.e[ret as usize].op as usize].op;
                        let enables = model.step(&next, waiting).is_some();
                        if enables != (pass == ENABLING) {
                            e = step_on;
                            continue;
                        }
                    }
                    self.bits[k >> 6] |= 1 << (k & 63);
                    self.zob ^= self.keys[k];
                    let h = self.zob ^ fx_hash(&next);
                    if self
                        .cache
                        .insert(h, &self.bits, &next, model.state_bytes(&next))
                    {
                        self.stack.push(Lifted {
                            call: e,
                            pass,
                            ret,
                            state: std::mem::replace(&mut self.state, next),
                        });
                        self.list.lift(e);
                        if en.partner != NIL {
                            self.remaining -= 1;
                            if self.remaining == 0 {
                                return Some(SearchResult::Linearizable);
                            }
                        }
                        e = self.list.e[HEAD as usize].next;
                        pass = KNOWN;
                        continue;
                    }
                    self.bits[k >> 6] &= !(1 << (k & 63));
                    self.zob ^= self.keys[k];
                    e = step_on;
                }
                // The known candidates are exhausted at the first pending
                // return (there is one while `remaining > 0`): the optional
                // candidates, walking back from it.
                Some(_)
                    if pass == KNOWN && self.has_optional && self.tries != OptionalTries::None =>
                {
                    pass = ENABLING;
                    ret = e;
                    e = self.list.e[e as usize].prev;
                }
                Some(_) if pass == ENABLING && self.tries == OptionalTries::All => {
                    pass = OTHER;
                    e = self.list.e[ret as usize].prev;
                }
                _ => {
                    // Back at the head, at a return, or the end: the prefix
                    // on the stack is stuck.
                    let blocker = if pass == KNOWN { e } else { ret };
                    if blocker != NIL
                        && (self.stack.len() > self.best.len() || self.best_blocked == NIL)
                    {
                        let lw = self.low_water;
                        self.best.truncate(lw);
                        let list = &self.list;
                        self.best
                            .extend(self.stack[lw..].iter().map(|l| list.e[l.call as usize].op));
                        self.best_blocked = self.list.e[blocker as usize].op;
                        self.low_water = self.stack.len();
                    }
                    let Some(l) = self.stack.pop() else {
                        return Some(self.failure());
                    };
                    self.low_water = self.low_water.min(self.stack.len());
                    let c = l.call;
                    let k = self.list.e[c as usize].op as usize;
                    self.bits[k >> 6] &= !(1 << (k & 63));
                    self.zob ^= self.keys[k];
                    self.state = l.state;
                    self.list.unlift(c);
                    let en = self.list.e[c as usize];
                    if en.partner != NIL {
                        self.remaining += 1;
                    }
                    (pass, ret) = (l.pass, l.ret);
                    e = if pass == KNOWN { en.next } else { en.prev };
                }
            }
        }
    }

    fn failure(&self) -> SearchResult {
        let ops = self.ops;
        let prefix = self.best.iter().map(|&k| ops[k as usize].id).collect();
        let blocked = if self.best_blocked == NIL {
            ops[0].id
        } else {
            ops[self.best_blocked as usize].id
        };
        SearchResult::NotLinearizable { prefix, blocked }
    }
}

/// Searches for a linearization of `ops` under `model`, to the end.
pub fn search<M: Model>(model: &M, ops: &[SearchOp<M::Op>], limits: &Limits) -> SearchResult {
    let mut s = Search::new(model, ops, limits);
    loop {
        if let Some(r) = s.run(u64::MAX / 2) {
            return r;
        }
    }
}
