//! Synthetic linearizable histories, for benchmarks and tests.
//!
//! Processes run read / write / cas operations on registers spread over
//! keys. Each operation takes effect at a random point between its
//! invocation and its completion (so operations overlap), and a small share
//! of them end `info` (which may or may not have taken effect: here they
//! did) or `fail` (cas on a wrong value). The result is linearizable by
//! construction.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::history::{EventType, History};

/// Shape of a generated history.
#[derive(Clone, Copy, Debug)]
pub struct GenSpec {
    /// Number of operations.
    pub ops: usize,
    /// Number of keys (independent registers).
    pub keys: usize,
    /// Number of client processes.
    pub processes: usize,
    /// Random seed.
    pub seed: u64,
}

#[derive(Clone)]
enum Phase {
    Idle,
    Invoked(String, Value, Value),
    Applied(String, Value, EventType, Value),
}

/// Generates a linearizable cas-register history (see the module docs).
pub fn cas_register_history(spec: GenSpec) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut regs: Vec<Option<u8>> = vec![None; spec.keys.max(1)];
    let mut procs = vec![Phase::Idle; spec.processes.max(1)];
    let mut ids: Vec<u64> = (0..procs.len() as u64).collect();
    let mut next_id = procs.len() as u64;
    let mut h = History::new();
    let (mut started, mut t) = (0, 0u64);
    while started < spec.ops || procs.iter().any(|p| !matches!(p, Phase::Idle)) {
        t += 1;
        let p = rng.gen_range(0..procs.len());
        procs[p] = match std::mem::replace(&mut procs[p], Phase::Idle) {
            Phase::Idle if started < spec.ops => {
                started += 1;
                let key = json!(rng.gen_range(0..regs.len()));
                let (f, value) = match rng.gen_range(0..3) {
                    0 => ("read", Value::Null),
                    1 => ("write", json!(rng.gen_range(0..5u8))),
                    _ => ("cas", json!([rng.gen_range(0..5u8), rng.gen_range(0..5u8)])),
                };
                h.invoke(ids[p], f, Some(key.clone()), value.clone(), t, None);
                Phase::Invoked(f.to_string(), key, value)
            }
            Phase::Idle => Phase::Idle,
            Phase::Invoked(f, key, value) => {
                let reg = &mut regs[key.as_u64().unwrap_or(0) as usize];
                let (kind, out) = match f.as_str() {
                    "read" => (EventType::Ok, reg.map(Value::from).unwrap_or(Value::Null)),
                    "write" => {
                        *reg = value.as_u64().map(|v| v as u8);
                        (EventType::Ok, value.clone())
                    }
                    _ => {
                        let a = value[0].as_u64().map(|v| v as u8);
                        if *reg == a {
                            *reg = value[1].as_u64().map(|v| v as u8);
                            (EventType::Ok, value.clone())
                        } else {
                            (EventType::Fail, value.clone())
                        }
                    }
                };
                Phase::Applied(f, key, kind, out)
            }
            Phase::Applied(f, key, mut kind, out) => {
                if f != "read" && rng.gen_range(0..100) == 0 {
                    kind = EventType::Info;
                }
                h.complete(ids[p], kind, &f, Some(key), out, t, None, None);
                if kind == EventType::Info {
                    // Jepsen gives a crashed process a new id.
                    ids[p] = next_id;
                    next_id += 1;
                }
                Phase::Idle
            }
        };
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{check_operations, models::register::Register, CheckOptions, Verdict};

    #[test]
    fn generated_histories_are_linearizable() {
        let h = cas_register_history(GenSpec {
            ops: 3000,
            keys: 10,
            processes: 12,
            seed: 7,
        });
        let ops = h.operations().unwrap();
        assert_eq!(ops.len(), 3000);
        let r = check_operations(
            &mut Register::cas(&Value::Null),
            &ops,
            &CheckOptions::default(),
        )
        .unwrap();
        assert_eq!(r.verdict, Verdict::Linearizable);
        assert_eq!(r.partitions, 10);
    }
}
