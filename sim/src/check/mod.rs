//! Linearizability checking of recorded histories.
//!
//! The pipeline is: a [`parse`] reader turns a file into kzsim events with
//! source lines; events are paired into operations
//! ([`crate::history::History::operations`], Jepsen semantics: a
//! completion pairs with its process's last invoke, `fail` did not take
//! effect, `info` or no completion may take effect once at any later point
//! or never); a [`models::Model`] encodes each operation into a compact
//! form; the [`driver`] splits the history per key when the model allows
//! and runs the Wing–Gong–Lowe [`search`] with a visited-configuration
//! [`cache`] on each part; a non-linearizable verdict comes with an
//! [`explain::Explanation`], which [`html`] can draw.
//!
//! Queue histories are judged differently: [`kafka`] looks for the anomaly
//! categories of Jepsen's Kafka workload (lost writes, duplicates, skips).
//!
//! ```
//! use kzsim_sim::check::{check_text, CheckOptions, Format, ModelKind, Verdict};
//! let log = "INFO jepsen.util - 0 :invoke :write 1\n\
//!            INFO jepsen.util - 0 :ok :write 1\n\
//!            INFO jepsen.util - 1 :invoke :read nil\n\
//!            INFO jepsen.util - 1 :ok :read 2\n";
//! let (_, _, report) = check_text(
//!     ModelKind::CasRegister, &serde_json::Value::Null, Format::PorcupineEtcd,
//!     log, &CheckOptions::default()).unwrap();
//! assert_eq!(report.verdict, Verdict::NotLinearizable);
//! ```

#![deny(missing_docs)]

pub mod brute;
pub mod cache;
pub mod driver;
pub mod error;
pub mod explain;
pub mod gen;
pub mod hash;
pub mod html;
pub mod kafka;
pub mod models;
pub mod parse;
pub mod search;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use std::str::FromStr;

use serde_json::Value;

pub use driver::{check_operations, CheckOptions, Report, Verdict};
pub use error::CheckError;
pub use explain::Explanation;
pub use models::Model;
pub use parse::{Format, Parsed};

use crate::history::Operation;

/// The models selectable by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// [`models::register::Register::plain`].
    Register,
    /// [`models::register::Register::cas`].
    CasRegister,
    /// [`models::kv::Kv`].
    Kv,
    /// [`models::zk::Zk::new`]: ZooKeeper's promise (linearizable writes,
    /// session-consistent reads unless after `sync`).
    Zk,
    /// [`models::zk::Zk::strict`]: every operation linearizable.
    ZkStrict,
    /// [`models::log::Log`].
    Log,
}

/// Every model `kzsim check --model` accepts: the [`ModelKind`]s, `kafka`
/// (Jepsen's queue anomalies, judged by [`kafka`], not by a sequential
/// model), and `zk-<workload>` (the sweep's checks of a ZooKeeper
/// workload's history, `crate::system::zk::history_checks`).
pub const MODEL_NAMES: &[&str] = &[
    "register",
    "cas-register",
    "kv",
    "zk",
    "zk-strict",
    "log",
    "kafka",
    "zk-cas-register",
    "zk-counter",
    "zk-lock",
    "zk-election",
    "zk-config",
    "zk-naming",
];

impl FromStr for ModelKind {
    type Err = CheckError;
    fn from_str(s: &str) -> Result<ModelKind, CheckError> {
        match s {
            "register" => Ok(ModelKind::Register),
            "cas-register" => Ok(ModelKind::CasRegister),
            "kv" => Ok(ModelKind::Kv),
            "zk" => Ok(ModelKind::Zk),
            "zk-strict" => Ok(ModelKind::ZkStrict),
            "log" => Ok(ModelKind::Log),
            other => Err(CheckError::Usage(format!(
                "unknown model `{other}` (expected one of: {})",
                MODEL_NAMES.join(", ")
            ))),
        }
    }
}

/// Checks paired operations with the named model; `init` is the initial
/// value of register models (`null` = absent). Errors name the operation's
/// source line through `lines` (event index to line).
pub fn check_with(
    kind: ModelKind,
    init: &Value,
    ops: &[Operation],
    lines: &[usize],
    opts: &CheckOptions,
) -> Result<Report, CheckError> {
    let result = match kind {
        ModelKind::Register => {
            check_operations(&mut models::register::Register::plain(init), ops, opts)
        }
        ModelKind::CasRegister => {
            check_operations(&mut models::register::Register::cas(init), ops, opts)
        }
        ModelKind::Kv => check_operations(&mut models::kv::Kv::new(), ops, opts),
        ModelKind::Zk => check_operations(&mut models::zk::Zk::new(), ops, opts),
        ModelKind::ZkStrict => check_operations(&mut models::zk::Zk::strict(), ops, opts),
        ModelKind::Log => check_operations(&mut models::log::Log::new(), ops, opts),
    };
    result.map_err(|bad| {
        let event = ops[bad.op].invoke_index;
        CheckError::BadOperation {
            line: lines.get(event).copied().unwrap_or(event + 1),
            message: bad.message,
        }
    })
}

/// Parses `text` in `format` and checks it: returns the parsed history, its
/// operations and the report.
pub fn check_text(
    kind: ModelKind,
    init: &Value,
    format: Format,
    text: &str,
    opts: &CheckOptions,
) -> Result<(Parsed, Vec<Operation>, Report), CheckError> {
    let parsed = format.parse(text)?;
    let ops = parsed.operations()?;
    let report = check_with(kind, init, &ops, &parsed.lines, opts)?;
    Ok((parsed, ops, report))
}
