//! Readers for the history formats: kzsim JSON lines, Porcupine's etcd logs
//! and kv files, and Jepsen EDN histories.
//!
//! Every reader produces a [`Parsed`] history: kzsim [`Event`]s plus the
//! source line of each event, so that errors found later (pairing, model
//! encoding) still name a line of the file. Readers never panic on bad
//! input; they return [`CheckError::Parse`] naming the first bad line.

pub mod edn;
pub mod etcd;
pub mod jepsen;
pub mod jsonl;

use std::str::FromStr;

use super::error::CheckError;
use crate::history::{Event, History, Operation};

/// A parsed history with the source line of every event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parsed {
    /// The events, in file (real-time) order.
    pub history: History,
    /// `lines[i]` is the 1-based source line of event `i`.
    pub lines: Vec<usize>,
}

impl Parsed {
    /// Appends an event read at `line`.
    pub fn push(&mut self, event: Event, line: usize) {
        self.history.push(event);
        self.lines.push(line);
    }

    /// The source line of event `index`.
    pub fn line_of(&self, index: usize) -> usize {
        self.lines.get(index).copied().unwrap_or(index + 1)
    }

    /// Pairs invocations with completions (see
    /// [`History::operations_at`]); an error names the source line. A
    /// history without any operation is an error too: it would pass every
    /// check while showing nothing.
    pub fn operations(&self) -> Result<Vec<Operation>, CheckError> {
        let ops = self
            .history
            .operations_at(&|i| self.line_of(i))
            .map_err(|e| CheckError::Parse {
                line: e.line,
                message: e.message,
            })?;
        if ops.is_empty() {
            return Err(CheckError::NoOperations);
        }
        Ok(ops)
    }
}

/// A history file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// kzsim JSON lines ([`crate::history`]).
    Jsonl,
    /// Porcupine / Jepsen etcd logs (`INFO jepsen.util - P :type :f arg`).
    PorcupineEtcd,
    /// Porcupine kv files (one EDN map per line, with `:key`).
    PorcupineKv,
    /// Jepsen EDN histories (a collection of op maps, or maps one by one).
    Edn,
}

impl FromStr for Format {
    type Err = CheckError;
    fn from_str(s: &str) -> Result<Format, CheckError> {
        match s {
            "jsonl" | "json" => Ok(Format::Jsonl),
            "porcupine-etcd" | "etcd" => Ok(Format::PorcupineEtcd),
            "porcupine-kv" => Ok(Format::PorcupineKv),
            "edn" | "jepsen" => Ok(Format::Edn),
            other => Err(CheckError::Usage(format!(
                "unknown format `{other}` (expected jsonl, porcupine-etcd, porcupine-kv, edn)"
            ))),
        }
    }
}

impl Format {
    /// Guesses the format from the first non-blank, non-comment text.
    pub fn sniff(text: &str) -> Format {
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with(';'))
            .unwrap_or("");
        if first.starts_with("INFO") {
            Format::PorcupineEtcd
        } else if first.starts_with("{\"") || first.starts_with("{ \"") {
            Format::Jsonl
        } else if first.starts_with('{') && first.contains(":key") {
            Format::PorcupineKv
        } else {
            Format::Edn
        }
    }

    /// Parses `text` in this format.
    pub fn parse(self, text: &str) -> Result<Parsed, CheckError> {
        match self {
            Format::Jsonl => jsonl::parse(text),
            Format::PorcupineEtcd => etcd::parse(text),
            Format::PorcupineKv => jepsen::parse_kv(text),
            Format::Edn => jepsen::parse(text),
        }
    }
}
