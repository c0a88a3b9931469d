//! Adapters running the same etcd histories through other Rust checkers:
//! `todc-utils` (WGL) and `stateright`'s `LinearizabilityTester`, with a
//! per-history time limit for the latter, which can run for very long.

#![allow(dead_code)]

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use kzsim_sim::check::Format;
use kzsim_sim::history::Outcome;
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};
use todc_utils::linearizability::history::History as TodcHistory;
use todc_utils::linearizability::WGLChecker;
use todc_utils::specifications::etcd::{history_from_log, EtcdOperation, EtcdSpecification};

/// An etcd history parsed by todc-utils.
pub fn todc_history(path: &Path) -> TodcHistory<EtcdOperation> {
    history_from_log(path.display().to_string())
}

/// todc-utils' verdict.
pub fn todc_check(h: TodcHistory<EtcdOperation>) -> bool {
    WGLChecker::<EtcdSpecification>::is_linearizable(h)
}

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    static CALLS: Cell<u32> = const { Cell::new(0) };
}

/// Unwinds out of stateright's recursion once the deadline has passed.
fn check_deadline() {
    let n = CALLS.with(|c| {
        c.set(c.get().wrapping_add(1));
        c.get()
    });
    if n.is_multiple_of(256) {
        if let Some(d) = DEADLINE.with(Cell::get) {
            if Instant::now() >= d {
                std::panic::panic_any(TimedOut);
            }
        }
    }
}

struct TimedOut;

/// The etcd register as a stateright sequential spec.
#[derive(Clone, Debug, Default, Hash, PartialEq)]
pub struct EtcdRegister(Option<i64>);

/// Operations of [`EtcdRegister`].
#[derive(Clone, Debug, Hash, PartialEq)]
pub enum RegOp {
    Read,
    Write(i64),
    Cas(i64, i64),
}

/// Returns of [`EtcdRegister`].
#[derive(Clone, Debug, Hash, PartialEq)]
pub enum RegRet {
    Read(Option<i64>),
    WriteOk,
    CasOk,
    CasFail,
}

impl SequentialSpec for EtcdRegister {
    type Op = RegOp;
    type Ret = RegRet;
    fn invoke(&mut self, op: &RegOp) -> RegRet {
        check_deadline();
        match op {
            RegOp::Read => RegRet::Read(self.0),
            RegOp::Write(v) => {
                self.0 = Some(*v);
                RegRet::WriteOk
            }
            RegOp::Cas(a, b) => {
                if self.0 == Some(*a) {
                    self.0 = Some(*b);
                    RegRet::CasOk
                } else {
                    RegRet::CasFail
                }
            }
        }
    }
}

/// One recorded event for stateright: invoke or return, by process.
#[derive(Clone, Debug)]
pub enum SrEvent {
    Invoke(u64, RegOp),
    Return(u64, RegRet),
}

/// Parses an etcd log into stateright events (failed reads dropped, info
/// operations left in flight).
pub fn stateright_events(text: &str) -> Vec<SrEvent> {
    let parsed = Format::PorcupineEtcd.parse(text).expect("etcd log");
    let ops = parsed.operations().expect("paired");
    let mut events: Vec<(usize, SrEvent)> = Vec::new();
    for o in &ops {
        let op = match o.f.as_str() {
            "read" => RegOp::Read,
            "write" => RegOp::Write(o.input.as_i64().unwrap_or(0)),
            _ => RegOp::Cas(
                o.input[0].as_i64().unwrap_or(0),
                o.input[1].as_i64().unwrap_or(0),
            ),
        };
        let ret = match (o.outcome, &op) {
            (Outcome::Fail, RegOp::Read) => continue,
            (Outcome::Info, _) => None,
            (Outcome::Fail, _) => Some(RegRet::CasFail),
            (Outcome::Ok, RegOp::Read) => Some(RegRet::Read(o.output.as_i64())),
            (Outcome::Ok, RegOp::Write(_)) => Some(RegRet::WriteOk),
            (Outcome::Ok, RegOp::Cas(..)) => Some(RegRet::CasOk),
        };
        events.push((o.invoke_index, SrEvent::Invoke(o.process, op)));
        if let (Some(r), Some(c)) = (ret, o.complete_index) {
            events.push((c, SrEvent::Return(o.process, r)));
        }
    }
    events.sort_by_key(|(i, _)| *i);
    events.into_iter().map(|(_, e)| e).collect()
}

/// stateright's verdict, or `None` if it ran past `limit`.
pub fn stateright_check(events: &[SrEvent], limit: Duration) -> Option<bool> {
    let mut t = LinearizabilityTester::new(EtcdRegister::default());
    for e in events {
        let r = match e {
            SrEvent::Invoke(p, op) => t.on_invoke(*p, op.clone()).map(|_| ()),
            SrEvent::Return(p, ret) => t.on_return(*p, ret.clone()).map(|_| ()),
        };
        r.expect("valid stateright history");
    }
    DEADLINE.with(|d| d.set(Some(Instant::now() + limit)));
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let verdict = catch_unwind(AssertUnwindSafe(|| t.is_consistent()));
    std::panic::set_hook(hook);
    DEADLINE.with(|d| d.set(None));
    verdict.ok()
}
