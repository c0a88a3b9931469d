//! Helpers for unit tests.

use serde_json::Value;

use crate::history::{Operation, Outcome};

/// A completed (ok) operation with the given function, input and output.
pub fn op(f: &str, input: Value, output: Value) -> Operation {
    Operation {
        process: 0,
        f: f.to_string(),
        key: None,
        input,
        output,
        outcome: Outcome::Ok,
        invoke_time: 0,
        complete_time: Some(0),
        invoke_index: 0,
        complete_index: Some(1),
        node: None,
        error: None,
        meta: None,
    }
}
