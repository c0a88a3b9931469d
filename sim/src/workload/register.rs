//! A single-register workload for the demo protocol: unique writes and reads.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use kzsim_model::demo::{DemoReply, DemoRequest};
use kzsim_model::{ClientReply, ClientRequest};

use crate::history::EventType;
use crate::workload::{OpCall, OpDone, Workload};

/// Writes unique increasing values and reads the register.
pub struct RegisterWorkload {
    read_fraction: f64,
    next_value: u64,
}

impl RegisterWorkload {
    /// A workload reading with probability `read_fraction` (in [0, 1], as
    /// a scenario's `workload.read_fraction` is checked to be).
    pub fn new(read_fraction: f64) -> RegisterWorkload {
        assert!(
            (0.0..=1.0).contains(&read_fraction),
            "read_fraction {read_fraction}"
        );
        RegisterWorkload {
            read_fraction,
            next_value: 1,
        }
    }
}

impl Workload for RegisterWorkload {
    fn invoke(&mut self, _process: u64, rng: &mut ChaCha8Rng) -> OpCall {
        if rng.gen_bool(self.read_fraction) {
            OpCall {
                req: ClientRequest::Demo(DemoRequest::Read),
                f: "read",
                key: None,
                value: Value::Null,
            }
        } else {
            let v = self.next_value;
            self.next_value += 1;
            OpCall {
                req: ClientRequest::Demo(DemoRequest::Write(v)),
                f: "write",
                key: None,
                value: json!(v),
            }
        }
    }

    fn complete(&mut self, _process: u64, call: &OpCall, reply: &ClientReply) -> OpDone {
        let ClientReply::Demo(r) = reply else {
            return OpDone::new(
                EventType::Info,
                call.value.clone(),
                Some(format!("not a demo reply: {reply:?}")),
            );
        };
        let (kind, value, error) = match r {
            DemoReply::WriteOk => (EventType::Ok, call.value.clone(), None),
            DemoReply::ReadOk(v) => (EventType::Ok, json!(v), None),
            DemoReply::Fail(e) => (EventType::Fail, call.value.clone(), Some(e.clone())),
            DemoReply::Unknown(e) => (EventType::Info, call.value.clone(), Some(e.clone())),
        };
        OpDone::new(kind, value, error)
    }
}
