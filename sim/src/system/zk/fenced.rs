//! The protected znode of the lock recipe (`/fenced`) as the fenced writes
//! and reads show it (`fenced-register`).
//!
//! Only fenced writes change `/fenced` (created once at version 0 with
//! empty data), each a `setData` conditioned on the version it read, so its
//! versions form a chain in zxid order: a fenced write expecting version e
//! makes version e + 1. Then:
//!
//! - the acknowledged fenced writes, in zxid order, expect strictly
//!   increasing versions, and every version skipped between two of them was
//!   made by a fenced write of unknown outcome expecting it;
//! - a read at zxid Z of version v with data D shows the last acknowledged
//!   write committed by Z, or one of unknown outcome after it: v is above
//!   that write's expected version, D is its data when v follows it
//!   directly, else the data of a write of unknown outcome expecting v - 1;
//!   and no acknowledged write committed after Z expects less than v.

use std::collections::BTreeMap;

use serde_json::Value;

use super::checks::meta_zxid;
use crate::history::{History, Operation, Outcome};
use crate::outcome::Violation;

/// A fenced write: expected version, data, zxid (acknowledged ones), event.
struct Write<'a> {
    expect: i64,
    data: &'a str,
    zxid: Option<u64>,
    at: usize,
}

/// The `fenced-register` checks.
pub fn check(history: &History, ops: &[Operation]) -> Vec<Violation> {
    let mut acked: Vec<Write> = Vec::new();
    // Writes of unknown outcome, by expected version.
    let mut maybe: BTreeMap<i64, Vec<Write>> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.f == "fenced-write") {
        let (Some(expect), Some(data)) = (
            op.input.get("version").and_then(Value::as_i64),
            op.input.get("data").and_then(Value::as_str),
        ) else {
            continue;
        };
        let w = Write {
            expect,
            data,
            zxid: meta_zxid(history, op),
            at: op.invoke_index,
        };
        match op.outcome {
            Outcome::Ok if w.zxid.is_some() => acked.push(w),
            Outcome::Info => maybe.entry(expect).or_default().push(w),
            _ => {}
        }
    }
    acked.sort_by_key(|w| w.zxid);
    let mut out = Vec::new();
    for pair in acked.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if b.expect <= a.expect {
            out.push(Violation::new(
                "fenced-register",
                format!(
                    "fenced writes at zxids {:#x} and {:#x} both expect versions up to {} (the second expects {})",
                    a.zxid.unwrap_or(0),
                    b.zxid.unwrap_or(0),
                    a.expect,
                    b.expect
                ),
                vec![a.at, b.at],
            ));
            continue;
        }
        if let Some(g) = (a.expect + 1..b.expect).find(|g| !maybe.contains_key(g)) {
            out.push(Violation::new(
                "fenced-register",
                format!(
                    "between the fenced writes at zxids {:#x} (expecting {}) and {:#x} (expecting {}), version {} came from no fenced write",
                    a.zxid.unwrap_or(0),
                    a.expect,
                    b.zxid.unwrap_or(0),
                    b.expect,
                    g + 1
                ),
                vec![a.at, b.at],
            ));
        }
    }
    for op in ops
        .iter()
        .filter(|o| o.f == "read" && o.outcome == Outcome::Ok)
    {
        let (Some(z), Some(v), Some(d)) = (
            meta_zxid(history, op),
            op.output.get("version").and_then(Value::as_i64),
            op.output.get("data").and_then(Value::as_str),
        ) else {
            continue;
        };
        let at = op.complete_index.unwrap_or(op.invoke_index);
        let split = acked.partition_point(|w| w.zxid.is_some_and(|wz| wz <= z));
        let (before, after) = (split.checked_sub(1).map(|i| &acked[i]), acked.get(split));
        let floor = before.map_or(-1, |w| w.expect);
        let explained = if v <= floor {
            false
        } else if v == 0 {
            d.is_empty()
        } else if v == floor + 1 {
            // Two writes cannot both succeed from one version.
            before.is_some_and(|w| w.data == d)
        } else {
            maybe
                .get(&(v - 1))
                .is_some_and(|ws| ws.iter().any(|w| w.data == d))
        };
        let too_new = after.is_some_and(|w| w.expect < v);
        if !explained || too_new {
            out.push(Violation::new(
                "fenced-register",
                format!(
                    "the read of /fenced at zxid {z:#x} saw version {v} ({d:?}); the last fenced write committed by then expected {floor}{}",
                    after
                        .map(|w| format!(", the next (at {:#x}) expected {}", w.zxid.unwrap_or(0), w.expect))
                        .unwrap_or_default()
                ),
                before.map(|w| w.at).into_iter().chain([at]).collect(),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::check;
    use crate::system::zk::test_history::{kinds, Builder};

    const S: u64 = 7;

    fn write(b: &mut Builder, expect: i64, data: &str, zxid: u64) {
        b.ok(
            0,
            "fenced-write",
            "/fenced",
            json!({"node": "/lock/p0-1-n-0000000000", "data": data, "version": expect}),
            json!({ "version": expect + 1 }),
            zxid,
            S,
        );
    }

    fn read(b: &mut Builder, v: i64, data: &str, zxid: u64) {
        b.ok(
            1,
            "read",
            "/fenced",
            json!({}),
            json!({"data": data, "version": v}),
            zxid,
            S,
        );
    }

    fn run(b: &Builder) -> Vec<String> {
        let (h, ops) = b.done();
        kinds(&check(h, &ops))
    }

    #[test]
    fn chain_with_an_unknown_write_passes() {
        let mut b = Builder::new();
        read(&mut b, 0, "", 5);
        write(&mut b, 0, "a", 10);
        read(&mut b, 1, "a", 10);
        b.info(
            2,
            "fenced-write",
            "/fenced",
            json!({"data": "b", "version": 1}),
            S,
        );
        read(&mut b, 2, "b", 12);
        write(&mut b, 2, "c", 13);
        read(&mut b, 3, "c", 14);
        assert!(run(&b).is_empty(), "{:?}", run(&b));
    }

    #[test]
    fn two_writes_from_one_version_fail() {
        let mut b = Builder::new();
        write(&mut b, 0, "a", 10);
        write(&mut b, 0, "b", 11);
        assert_eq!(run(&b), vec!["fenced-register".to_string()]);
    }

    #[test]
    fn skipped_version_without_a_write_fails() {
        let mut b = Builder::new();
        write(&mut b, 0, "a", 10);
        write(&mut b, 2, "c", 13);
        assert_eq!(run(&b), vec!["fenced-register".to_string()]);
        // A definitely failed write does not fill the gap either.
        b.fail(
            2,
            "fenced-write",
            "/fenced",
            json!({"data": "b", "version": 1}),
            "BadVersion",
            12,
            S,
        );
        assert_eq!(run(&b), vec!["fenced-register".to_string()]);
    }

    #[test]
    fn reads_out_of_step_with_the_writes_fail() {
        // Stale: version 1 read after the write of version 2 committed.
        let mut b = Builder::new();
        write(&mut b, 0, "a", 10);
        write(&mut b, 1, "b", 11);
        read(&mut b, 1, "a", 12);
        assert_eq!(run(&b), vec!["fenced-register".to_string()]);
        // From the future: version 2 read at a zxid before its write.
        let mut b = Builder::new();
        write(&mut b, 0, "a", 10);
        read(&mut b, 2, "b", 10);
        write(&mut b, 1, "b", 11);
        assert_eq!(run(&b), vec!["fenced-register".to_string()]);
        // Wrong data.
        let mut b = Builder::new();
        write(&mut b, 0, "a", 10);
        read(&mut b, 1, "x", 11);
        assert_eq!(run(&b), vec!["fenced-register".to_string()]);
    }
}
