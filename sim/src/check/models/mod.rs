//! Sequential specifications that histories are checked against.
//!
//! A [`Model`] turns each recorded [`Operation`] into a compact, integer
//! encoded operation once, before the search; the search then only calls
//! [`Model::step`] on small `Copy`-like states. Values are interned with
//! [`Interner`] so that comparisons are integer comparisons.

pub mod kv;
pub mod log;
pub mod register;
pub mod zk;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;

use serde_json::Value;

use super::hash::FxHashMap;
use crate::history::{Operation, Outcome};

/// A sequential specification: initial state, and a step function that both
/// applies an operation and says whether its observed output was legal.
///
/// Operations whose outcome is unknown ([`Outcome::Info`], or never
/// completed) must be encoded so that `step` accepts them in every state:
/// they may take effect with whatever output the model produces.
pub trait Model {
    /// An encoded operation: input and observed output.
    type Op: Clone + Debug;
    /// A model state. Hashing and comparing it must be cheap.
    type State: Clone + Eq + Hash + Debug;

    /// The model's name on the command line.
    fn name(&self) -> &'static str;

    /// Whether operations on different keys are independent, so that the
    /// history may be checked per key (P-compositionality).
    fn split_by_key(&self) -> bool {
        true
    }

    /// The history as this model reads it, when that differs from the
    /// recorded one: a rewrite that keeps every operation at its position
    /// in the list (explanations name operations by position), or `None`
    /// to check the history as it is.
    fn normalise(&self, _ops: &[Operation]) -> Option<Vec<Operation>> {
        None
    }

    /// The parts the history is checked in, each judged on its own: per
    /// key when [`Model::split_by_key`] holds, else one part. Keys are the
    /// partition names shown in explanations (empty: unsplit).
    fn partitions(&self, ops: &[Operation]) -> BTreeMap<String, Vec<usize>> {
        super::driver::partitions(ops, self.split_by_key())
    }

    /// Whether each process's operations must take effect in the order the
    /// process issued them, beyond real-time order (a session, as in
    /// ZooKeeper). Needed by [`Model::stale_read`].
    fn session_ordered(&self) -> bool {
        false
    }

    /// Whether `op` is a read that may return a stale state: it must take
    /// effect after its process's previous operation and before it
    /// returns, but not necessarily after it was invoked (ZooKeeper reads
    /// served by a follower). Only consulted when
    /// [`Model::session_ordered`] holds.
    fn stale_read(&self, _op: &Self::Op) -> bool {
        false
    }

    /// Encodes one operation. `Ok(None)` drops it: it cannot affect any
    /// verdict (e.g. a failed write, or a read whose result is unknown).
    /// `Err` explains why the operation makes no sense for this model.
    fn encode(&mut self, op: &Operation) -> Result<Option<Self::Op>, String>;

    /// The initial state. Called after every operation of the history has
    /// been encoded, so a model may shape its states by what the history
    /// can observe (the `zk` model keeps a child version only where a
    /// sequential create reads it).
    fn init(&self) -> Self::State;

    /// Applies `op` to `state`: `None` if its observed output is illegal in
    /// `state`, else the next state.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;

    /// Approximate heap plus inline size of a state, for the memory bound.
    fn state_bytes(&self, _state: &Self::State) -> usize {
        std::mem::size_of::<Self::State>()
    }
}

/// Interns JSON values as small integers; `null` is always 0.
#[derive(Debug, Default)]
pub struct Interner {
    ids: FxHashMap<String, u32>,
    values: Vec<Value>,
}

impl Interner {
    /// A new interner holding only `null` (id 0).
    pub fn new() -> Interner {
        let mut i = Interner::default();
        i.values.push(Value::Null);
        i.ids.insert("null".to_string(), 0);
        i
    }

    /// The id of `value`, allocating one if it is new. Numbers and strings
    /// are distinct: `1` and `"1"` get different ids.
    pub fn id(&mut self, value: &Value) -> u32 {
        let key = value.to_string();
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(value.clone());
        self.ids.insert(key, id);
        id
    }

    /// The value of an id.
    pub fn value(&self, id: u32) -> &Value {
        &self.values[id as usize]
    }
}

/// Whether the operation's output is unknown (info, or never completed).
pub fn unknown(op: &Operation) -> bool {
    op.outcome == Outcome::Info
}

/// The function name with any leading `:` (EDN keyword) removed.
pub fn fname(op: &Operation) -> &str {
    op.f.trim_start_matches(':')
}

/// Reads a pair `[a, b]` from a JSON array.
pub fn pair(v: &Value) -> Option<(&Value, &Value)> {
    match v.as_array() {
        Some(a) if a.len() == 2 => Some((&a[0], &a[1])),
        _ => None,
    }
}

/// Renders a value compactly for messages.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
