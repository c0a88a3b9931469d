//! kzsim-sim: the simulated world around the protocol state machines.
//!
//! World models (network, disk, clocks, nemesis) are plain deterministic
//! structs that any executor can drive; `engine` is the default executor and
//! `host` the per-node state it keeps. `workload` drives clients and records
//! the `history`; `system` says how a scenario's cluster becomes nodes and
//! checks; `runner` turns a seed into an outcome and sweeps seeds.

pub mod check;
pub mod clock;
pub mod disk;
pub mod engine;
pub mod explore;
mod faults;
pub mod history;
pub mod host;
pub mod logfmt;
pub mod nemesis;
pub mod net;
pub mod outcome;
pub mod queue;
pub mod rng;
pub mod runner;
pub mod scenario;
pub mod system;
pub mod testkit;
pub mod trace;
pub mod triggers;
pub mod workload;

pub use outcome::Violation;
pub use runner::{run_seed, run_seed_full, RunOptions, RunOutcome, Verdict};
pub use scenario::Scenario;
