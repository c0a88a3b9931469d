//! A brute-force reference checker: tries every order that respects real
//! time, without any cache. Exponential; for tests on tiny histories only.

use super::driver::{encode, BadOp};
use super::models::Model;
use super::search::SearchOp;
use crate::history::Operation;

/// Whether some real-time-respecting order of `ops` is legal, where
/// operations with unknown outcome (`ret == None`) may also be left out.
pub fn brute_force<M: Model>(model: &M, ops: &[SearchOp<M::Op>]) -> bool {
    let mut placed = vec![false; ops.len()];
    place(model, ops, &mut placed, &model.init())
}

fn place<M: Model>(
    model: &M,
    ops: &[SearchOp<M::Op>],
    placed: &mut [bool],
    state: &M::State,
) -> bool {
    let pending = |i: usize, placed: &[bool]| !placed[i] && ops[i].ret.is_some();
    if !(0..ops.len()).any(|i| pending(i, placed)) {
        return true;
    }
    for i in 0..ops.len() {
        if placed[i] {
            continue;
        }
        // `i` may go next only if no pending operation returned before it
        // was called.
        let blocked = (0..ops.len())
            .any(|j| j != i && pending(j, placed) && ops[j].ret.is_some_and(|r| r < ops[i].call));
        if blocked || ops[i].after.is_some_and(|a| !placed[a]) {
            continue;
        }
        if let Some(next) = model.step(state, &ops[i].op) {
            placed[i] = true;
            let ok = place(model, ops, placed, &next);
            placed[i] = false;
            if ok {
                return true;
            }
        }
    }
    false
}

/// Brute-force check of a whole history: split and encoded as the real
/// checker does, then every partition tried exhaustively.
pub fn brute_check<M: Model>(model: &mut M, ops: &[Operation]) -> Result<bool, BadOp> {
    let normalised = model.normalise(ops);
    let ops: &[Operation] = normalised.as_deref().unwrap_or(ops);
    for ids in model.partitions(ops).values() {
        let encoded = encode(model, ops, ids)?;
        if !brute_force(model, &encoded) {
            return Ok(false);
        }
    }
    Ok(true)
}
