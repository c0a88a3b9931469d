//! kzsim-sim: the simulated world around the protocol state machines.
//!
//! World models (network, disk, clocks, nemesis) are plain deterministic
//! structs that any executor can drive; `engine` is the default executor.
//! `history` records client operations and `check` judges them.

pub mod check;
pub mod history;
