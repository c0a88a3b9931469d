//! The consumer-group checks: a pure function over a group-workload history.
//!
//! # History shapes
//!
//! - `send` (producers), as in the Kafka queue workload: invoke value
//!   `[p, v]`, `ok` value `[p, [offset, v]]`; `fail` means surely not
//!   written, `info` unknown.
//! - `poll` (group members): `ok` value `{"<p>": [[offset, v], ...]}`, the
//!   records returned (processed by that member, zombie or not). The
//!   completion's `meta` is `{"member", "generation", "owned", "assigned":
//!   [[p, start, committed|null, generation, asked, member]], "revoked",
//!   "commits": [C], "resets":
//!   [[p, offset]], "lost"}` (an assignment names the member, generation
//!   and time, µs, it asked for the committed offset, since it may be
//!   reported after the member left them; `[p, start, committed]` means
//!   the poll's member and generation, asked at its invocation), where a
//!   commit `C` is `{"member",
//!   "generation", "offsets": {"<p>": next}, "type": ok|fail|info,
//!   "error", "started"}` made inside the call (`started`: the simulated
//!   time, µs, the member began it, perhaps before the call; without it,
//!   the commit may have begun at any time before the call ended). A
//!   member reports a revocation with (or after) the commit it made for
//!   it. A `fail`
//!   or `info` poll's records are ignored; its meta, when present, still
//!   gives commits and resets.
//! - `commit` (explicit commitSync): completion value `{"member",
//!   "generation", "offsets"}`, or null when unknown (ignored); its meta,
//!   when present, gives the commits made inside it (`"commits": [C]`).
//!
//! Other functions are ignored. Members are told apart by member id.
//!
//! # Checks
//!
//! - `group-lost`: an `ok` send whose value no `ok` poll returned; the
//!   detail says whether an acknowledged commit passed its offset (an
//!   at-least-once break) and whether later records were processed.
//! - `group-split-brain`: two members return records of one partition in
//!   one generation; or member A returns records of p fetched in generation
//!   gA, invoked after member B's poll that was assigned p in generation
//!   gB > gA completed, while A itself was a member of gB.
//! - `offset-regression`: an acknowledged commit of offset o is followed
//!   by a poll whose assignment found a committed offset below o (or none),
//!   or by an acknowledged commit of a lower offset; an offset reset of the
//!   partition in between excuses it.
//! - `zombie-commit`: an acknowledged commit with generation g of
//!   partition p, invoked after another member's poll that was assigned p
//!   in a generation above g completed.
//! - `duplicate-beyond-window`: member A reports (in an `ok` poll, not
//!   as lost) that it revoked p, after processing records of p up to
//!   offset m with no commit of p above m begun by then (whatever its
//!   outcome), and a record of p in that uncommitted stretch is returned
//!   again by a poll invoked after the revocation: A gave up a partition
//!   without committing what it processed, so the new owner repeats more
//!   than at-least-once allows (records since a commit that failed, or of
//!   a member that died, are the window and not counted here).
//! - `group-not-recovered`: a partition that no member's last `ok` poll,
//!   invoked in the quiet period, owns.
//! - `malformed-history`: operations whose values cannot be read (named
//!   once, with a count).
//!
//! Records returned more than once are counted as duplicates, not
//! violations. "Before" is strict in simulated time; an operation's events
//! are its invocation and its completion.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::history::{Operation, Outcome};
use crate::outcome::Violation;

/// What the group checks found: violations and counted (not failing) duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupReport {
    /// Every violation, grouped by check.
    pub violations: Vec<crate::outcome::Violation>,
    /// Records returned by `ok` polls beyond the first return of each
    /// `(partition, offset)`.
    pub duplicates: u64,
    /// Records returned by `ok` polls, repeats included.
    pub processed: u64,
}

type Part = u32;
type Gen = i64;

/// An acknowledged send.
struct Send {
    op: usize,
    p: Part,
    value: i64,
    offset: Option<u64>,
}

/// An `ok` poll and its meta.
struct Poll {
    op: usize,
    member: String,
    generation: Gen,
    owned: Vec<Part>,
    assigned: Vec<Assigned>,
    /// Partitions given up in the call.
    revoked: Vec<Part>,
    /// The member was fenced in the call (its partitions lost, not revoked).
    lost: bool,
    /// Per partition, the `(offset, value)` records returned.
    records: BTreeMap<Part, Vec<(u64, i64)>>,
    invoke: u64,
    complete: u64,
}

/// A partition a poll reports assigned.
struct Assigned {
    p: Part,
    start: u64,
    committed: Option<u64>,
    /// The member and generation it was assigned to (perhaps not the
    /// poll's, when the report came after the member left them).
    member: String,
    generation: Gen,
    /// When the member asked for the committed offset (the poll's
    /// invocation when not given).
    asked: u64,
}

/// A commit, explicit or made inside a poll or another commit call.
struct Commit {
    op: usize,
    /// The call it was made inside (`poll`, `commit`), if not explicit.
    embedded: Option<&'static str>,
    member: String,
    generation: Gen,
    offsets: BTreeMap<Part, u64>,
    outcome: Outcome,
    invoke: u64,
    complete: Option<u64>,
}

/// An offset reset recorded by a poll (at the poll's completion).
struct Reset {
    p: Part,
    time: u64,
}

/// The history, decoded.
#[derive(Default)]
struct Decoded {
    sends: Vec<Send>,
    /// `ok` polls, ordered by invocation time.
    polls: Vec<Poll>,
    commits: Vec<Commit>,
    resets: Vec<Reset>,
    /// `(op, what is wrong)`.
    malformed: Vec<(usize, String)>,
}

/// Checks a group-workload history. `partitions` is the number of partitions of the consumed topic (keys "0".."partitions-1"); `quiet_from_us` is the simulated time (µs) at which the quiet period starts (every fault healed).
pub fn check(
    ops: &[crate::history::Operation],
    partitions: u32,
    quiet_from_us: u64,
) -> GroupReport {
    let d = Decoded::new(ops);
    let mut out = Vec::new();
    lost(ops, &d, &mut out);
    split_brain(ops, &d, &mut out);
    regression(ops, &d, &mut out);
    zombie(ops, &d, &mut out);
    beyond_window(ops, &d, &mut out);
    not_recovered(ops, &d, partitions, quiet_from_us, &mut out);
    malformed(ops, &d, &mut out);
    let (processed, duplicates) = duplicates(&d);
    GroupReport {
        violations: out,
        duplicates,
        processed,
    }
}

// ---------------------------------------------------------------- decoding

fn part(v: &Value) -> Result<Part, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| Part::try_from(n).ok())
            .ok_or_else(|| format!("bad partition {v}")),
        Value::String(s) => s.parse().map_err(|_| format!("bad partition {v}")),
        _ => Err(format!("bad partition {v}")),
    }
}

fn uint(v: &Value, what: &str) -> Result<u64, String> {
    v.as_u64()
        .ok_or_else(|| format!("bad {what} {v} (expected a non-negative integer)"))
}

fn int(v: &Value, what: &str) -> Result<i64, String> {
    v.as_i64()
        .ok_or_else(|| format!("bad {what} {v} (expected an integer)"))
}

/// A list field of an object; absent or null is empty.
fn list<'a>(m: &'a Value, field: &str) -> Result<&'a [Value], String> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(format!("bad {field} {other} (expected a list)")),
    }
}

fn member(m: &Value) -> Result<String, String> {
    match m.get("member") {
        Some(Value::String(s)) => Ok(s.clone()),
        other => Err(format!(
            "bad member {} (expected a string)",
            other.unwrap_or(&Value::Null)
        )),
    }
}

fn generation(m: &Value) -> Result<Gen, String> {
    int(m.get("generation").unwrap_or(&Value::Null), "generation")
}

/// `{"<p>": next_offset, ...}`.
fn offsets(m: &Value) -> Result<BTreeMap<Part, u64>, String> {
    let Some(Value::Object(o)) = m.get("offsets") else {
        return Err(format!(
            "bad offsets in {m} (expected {{\"<p>\": next_offset}})"
        ));
    };
    o.iter()
        .map(|(k, v)| Ok((part(&Value::String(k.clone()))?, uint(v, "offset")?)))
        .collect()
}

/// A pair `[a, b]`.
fn pair(v: &Value) -> Result<(&Value, &Value), String> {
    match v {
        Value::Array(a) if a.len() == 2 => Ok((&a[0], &a[1])),
        _ => Err(format!("bad pair {v} (expected [a, b])")),
    }
}

fn records(v: &Value) -> Result<BTreeMap<Part, Vec<(u64, i64)>>, String> {
    let o = match v {
        Value::Null => return Ok(BTreeMap::new()),
        Value::Object(o) => o,
        _ => {
            return Err(format!(
                "bad poll result {v} (expected {{\"<p>\": [[offset, value], ...]}})"
            ))
        }
    };
    let mut out = BTreeMap::new();
    for (k, recs) in o {
        let p = part(&Value::String(k.clone()))?;
        let Value::Array(recs) = recs else {
            return Err(format!("bad records of partition {k}: {recs}"));
        };
        let mut got = Vec::with_capacity(recs.len());
        for r in recs {
            let (o, v) = pair(r)?;
            got.push((uint(o, "offset")?, int(v, "value")?));
        }
        out.insert(p, got);
    }
    Ok(out)
}

impl Decoded {
    fn new(ops: &[Operation]) -> Decoded {
        let mut d = Decoded::default();
        for (i, op) in ops.iter().enumerate() {
            let r = match op.f.as_str() {
                "send" => d.send(i, op),
                "poll" => d.poll(i, op),
                "commit" => d.commit(i, op),
                _ => Ok(()),
            };
            if let Err(e) = r {
                d.malformed
                    .push((i, format!("an {} {}: {e}", outcome_word(op.outcome), op.f)));
            }
        }
        d.polls.sort_by_key(|p| (p.invoke, p.op));
        d.resets.sort_by_key(|r| (r.p, r.time));
        d
    }

    fn send(&mut self, i: usize, op: &Operation) -> Result<(), String> {
        if op.outcome != Outcome::Ok {
            return Ok(());
        }
        let (p, rec) = pair(&op.output)?;
        let (offset, value) = pair(rec)?;
        let offset = match offset {
            Value::Null => None,
            o => Some(uint(o, "offset")?),
        };
        self.sends.push(Send {
            op: i,
            p: part(p)?,
            value: int(value, "value")?,
            offset,
        });
        Ok(())
    }

    fn poll(&mut self, i: usize, op: &Operation) -> Result<(), String> {
        let Some(m) = op.meta.as_ref().filter(|m| !m.is_null()) else {
            return if op.outcome == Outcome::Ok {
                Err("it has no meta".into())
            } else {
                Ok(())
            };
        };
        // The commits and resets made inside the call, whatever its end.
        let complete = op.complete_time.unwrap_or(op.invoke_time);
        self.embedded_commits(i, op, m)?;
        for r in list(m, "resets")? {
            let (p, o) = pair(r)?;
            uint(o, "reset offset")?;
            self.resets.push(Reset {
                p: part(p)?,
                time: complete,
            });
        }
        if op.outcome != Outcome::Ok {
            return Ok(());
        }
        let mut assigned = Vec::new();
        let (poll_member, poll_generation) = (member(m)?, generation(m)?);
        for a in list(m, "assigned")? {
            let Value::Array(a) = a else {
                return Err(format!("bad assigned entry {a}"));
            };
            let (p, start, committed, who) = match a.as_slice() {
                [p, start, committed] => (p, start, committed, None),
                [p, start, committed, g, asked, m] => (p, start, committed, Some((g, asked, m))),
                _ => {
                    return Err(
                        "bad assigned entry (expected [p, start, committed] or [p, start, committed, generation, asked, member])"
                            .into(),
                    )
                }
            };
            let committed = match committed {
                Value::Null => None,
                c => Some(uint(c, "committed offset")?),
            };
            let (member, generation, asked) = match who {
                None => (poll_member.clone(), poll_generation, op.invoke_time),
                Some((g, asked, m)) => (
                    m.as_str()
                        .ok_or_else(|| format!("bad assigned member {m}"))?
                        .to_string(),
                    int(g, "assigned generation")?,
                    uint(asked, "assigned asked time")?,
                ),
            };
            if asked > complete {
                return Err(format!(
                    "an assignment asked for its offset after the call ended ({} > {})",
                    t(asked),
                    t(complete)
                ));
            }
            assigned.push(Assigned {
                p: part(p)?,
                start: uint(start, "start offset")?,
                committed,
                member,
                generation,
                asked,
            });
        }
        self.polls.push(Poll {
            op: i,
            member: poll_member,
            generation: poll_generation,
            owned: list(m, "owned")?
                .iter()
                .map(part)
                .collect::<Result<_, _>>()?,
            assigned,
            revoked: list(m, "revoked")?
                .iter()
                .map(part)
                .collect::<Result<_, _>>()?,
            lost: !m["lost"].is_null(),
            records: records(&op.output)?,
            invoke: op.invoke_time,
            complete,
        });
        Ok(())
    }

    /// The commits a call's meta reports as made inside it (a revocation's
    /// or an auto-commit), whatever the call's end.
    fn embedded_commits(&mut self, i: usize, op: &Operation, m: &Value) -> Result<(), String> {
        let complete = op.complete_time.unwrap_or(op.invoke_time);
        for c in list(m, "commits")? {
            let outcome = match c.get("type").and_then(Value::as_str) {
                Some("ok") => Outcome::Ok,
                Some("fail") => Outcome::Fail,
                Some("info") => Outcome::Info,
                _ => return Err(format!("bad commit type in {c}")),
            };
            // Begun perhaps before this call: when the member says, or
            // (unknown) at the start of the run, which never accuses it.
            let started = match c.get("started") {
                None => 0,
                Some(s) => {
                    let s = uint(s, "commit start")?;
                    if s > complete {
                        return Err(format!(
                            "a commit made inside the call starts after the call ended ({} > {})",
                            t(s),
                            t(complete)
                        ));
                    }
                    s
                }
            };
            self.commits.push(Commit {
                op: i,
                embedded: Some(if op.f == "poll" { "poll" } else { "commit" }),
                member: member(c)?,
                generation: generation(c)?,
                offsets: offsets(c)?,
                outcome,
                invoke: started,
                complete: Some(complete),
            });
        }
        Ok(())
    }

    fn commit(&mut self, i: usize, op: &Operation) -> Result<(), String> {
        if let Some(m) = op.meta.as_ref().filter(|m| !m.is_null()) {
            self.embedded_commits(i, op, m)?;
        }
        if op.output.is_null() {
            return Ok(());
        }
        self.commits.push(Commit {
            op: i,
            embedded: None,
            member: member(&op.output)?,
            generation: generation(&op.output)?,
            offsets: offsets(&op.output)?,
            outcome: op.outcome,
            invoke: op.invoke_time,
            complete: op.complete_time,
        });
        Ok(())
    }
}

/// `(processed, duplicates)` of a group-workload history: records
/// returned by `ok` polls (repeats included), and how many of those
/// repeat a `(partition, offset)` returned before.
pub fn counts(ops: &[crate::history::Operation]) -> (u64, u64) {
    duplicates(&Decoded::new(ops))
}

// ----------------------------------------------------------------- helpers

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Fail => "fail",
        Outcome::Info => "info",
    }
}

/// The history events of the operations `of`, ascending.
fn events(ops: &[Operation], of: &[usize]) -> Vec<usize> {
    let mut e: Vec<usize> = of
        .iter()
        .flat_map(|&i| std::iter::once(ops[i].invoke_index).chain(ops[i].complete_index))
        .collect();
    e.sort_unstable();
    e.dedup();
    e
}

/// A time in µs as `t=12.345ms`.
fn t(us: u64) -> String {
    format!("t={}.{:03}ms", us / 1000, us % 1000)
}

/// The offsets of records, as `offset 3` or `offsets 3 to 7`.
fn span(recs: &[(u64, i64)]) -> String {
    let lo = recs.iter().map(|r| r.0).min().unwrap_or(0);
    let hi = recs.iter().map(|r| r.0).max().unwrap_or(0);
    if lo == hi {
        format!("offset {lo}")
    } else {
        format!("offsets {lo} to {hi}")
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

impl Commit {
    /// `member a's commit of offset 7 (generation 1)`, saying whether it
    /// was made inside another call.
    fn of(&self, offset: u64) -> String {
        format!(
            "member {}'s commit of offset {offset} (generation {}{})",
            self.member,
            self.generation,
            self.inside()
        )
    }

    fn inside(&self) -> String {
        match self.embedded {
            Some(call) => format!(", made inside a {call}"),
            None => String::new(),
        }
    }
}

/// Per partition, per generation, per member: the earliest completion of
/// an `ok` poll assigned the partition in that generation, with the poll.
type Assignments<'a> = BTreeMap<Part, BTreeMap<Gen, BTreeMap<&'a str, (u64, usize)>>>;

fn assignments(d: &Decoded) -> Assignments<'_> {
    let mut out: Assignments = BTreeMap::new();
    for (pi, poll) in d.polls.iter().enumerate() {
        for a in &poll.assigned {
            let e = out
                .entry(a.p)
                .or_default()
                .entry(a.generation)
                .or_default()
                .entry(a.member.as_str())
                .or_insert((poll.complete, pi));
            if poll.complete < e.0 {
                *e = (poll.complete, pi);
            }
        }
    }
    out
}

/// The start offset of `p` in poll `poll`'s assignment.
fn start_of(poll: &Poll, p: Part) -> u64 {
    poll.assigned
        .iter()
        .find(|a| a.p == p)
        .map(|a| a.start)
        .unwrap_or(0)
}

// -------------------------------------------------------------- group-lost

fn lost(ops: &[Operation], d: &Decoded, out: &mut Vec<Violation>) {
    let mut seen: BTreeMap<Part, BTreeSet<i64>> = BTreeMap::new();
    let mut max_offset: BTreeMap<Part, u64> = BTreeMap::new();
    for poll in &d.polls {
        for (&p, recs) in &poll.records {
            for &(o, v) in recs {
                seen.entry(p).or_default().insert(v);
                let m = max_offset.entry(p).or_insert(o);
                *m = (*m).max(o);
            }
        }
    }
    // Per partition, acknowledged commits by completion time, with the
    // running maximum of their offsets (and the commit that set it).
    let mut commits: BTreeMap<Part, Vec<(u64, u64, usize)>> = BTreeMap::new();
    for (ci, c) in d.commits.iter().enumerate() {
        if c.outcome != Outcome::Ok {
            continue;
        }
        for (&p, &o) in &c.offsets {
            commits
                .entry(p)
                .or_default()
                .push((c.complete.unwrap_or(c.invoke), o, ci));
        }
    }
    let running: BTreeMap<Part, Vec<(u64, usize)>> = commits
        .into_iter()
        .map(|(p, mut cs)| {
            cs.sort_unstable();
            let mut best: Option<(u64, usize)> = None;
            let run = cs
                .iter()
                .map(|&(_, o, ci)| {
                    if best.is_none_or(|b| o > b.0) {
                        best = Some((o, ci));
                    }
                    best.expect("set above")
                })
                .collect();
            (p, run)
        })
        .collect();
    for s in &d.sends {
        if seen.get(&s.p).is_some_and(|vs| vs.contains(&s.value)) {
            continue;
        }
        let mut shown = vec![s.op];
        let at = match s.offset {
            Some(o) => format!("at offset {o} (value {})", s.value),
            None => format!("at an unknown offset (value {})", s.value),
        };
        let passed = match s.offset {
            None => "; its offset is unknown, so whether a commit passed it cannot be told".into(),
            Some(o) => {
                let first = running.get(&s.p).and_then(|run| {
                    let i = run.partition_point(|&(m, _)| m <= o);
                    run.get(i).map(|&(_, ci)| ci)
                });
                match first {
                    Some(ci) => {
                        let c = &d.commits[ci];
                        shown.push(c.op);
                        format!(
                            "; {}, acknowledged by {}, passed it: at-least-once delivery broken",
                            c.of(c.offsets[&s.p]),
                            t(c.complete.unwrap_or(c.invoke))
                        )
                    }
                    None => "; no acknowledged commit passed it".into(),
                }
            }
        };
        let later = match (s.offset, max_offset.get(&s.p)) {
            (Some(o), Some(&m)) if m > o => format!(
                "; later records of partition {} (up to offset {m}) were processed",
                s.p
            ),
            (Some(_), _) => format!("; no later record of partition {} was processed", s.p),
            (None, _) => String::new(),
        };
        out.push(Violation::new(
            "group-lost",
            format!(
                "partition {}: the record {at}, acknowledged to its producer, was processed by no member{passed}{later}",
                s.p
            ),
            events(ops, &shown),
        ));
    }
}

// ------------------------------------------------------- group-split-brain

fn split_brain(ops: &[Operation], d: &Decoded, out: &mut Vec<Violation>) {
    // (a) Two members return records of one partition in one generation.
    let mut by_gen: BTreeMap<(Part, Gen), BTreeMap<&str, usize>> = BTreeMap::new();
    for (pi, poll) in d.polls.iter().enumerate() {
        for (&p, recs) in &poll.records {
            if !recs.is_empty() {
                by_gen
                    .entry((p, poll.generation))
                    .or_default()
                    .entry(poll.member.as_str())
                    .or_insert(pi);
            }
        }
    }
    for ((p, g), members) in &by_gen {
        if members.len() < 2 {
            continue;
        }
        let who: Vec<String> = members
            .iter()
            .map(|(m, &pi)| {
                format!(
                    "{m} ({}, {})",
                    span(&d.polls[pi].records[p]),
                    t(d.polls[pi].invoke)
                )
            })
            .collect();
        let polls: Vec<usize> = members.values().map(|&pi| d.polls[pi].op).collect();
        out.push(Violation::new(
            "group-split-brain",
            format!(
                "partition {p}, generation {g}: members {} {} returned records of it, but a generation has at most one owner of a partition",
                and_list(&who),
                if who.len() == 2 { "both" } else { "all" }
            ),
            events(ops, &polls),
        ));
    }

    // (b) Hand-off overlap: A processes p fetched in gA after B was
    // assigned p in gB > gA, while A was a member of gB.
    let assigned = assignments(d);
    let mut gens: BTreeMap<&str, BTreeMap<Gen, usize>> = BTreeMap::new();
    // Per (p, A, gA), the polls of A returning records of p, by invocation.
    let mut readers: BTreeMap<(Part, &str, Gen), Vec<usize>> = BTreeMap::new();
    for (pi, poll) in d.polls.iter().enumerate() {
        gens.entry(poll.member.as_str())
            .or_default()
            .entry(poll.generation)
            .or_insert(pi);
        for (&p, recs) in &poll.records {
            if !recs.is_empty() {
                readers
                    .entry((p, poll.member.as_str(), poll.generation))
                    .or_default()
                    .push(pi);
            }
        }
    }
    let mut reported: BTreeSet<(Part, &str, &str, Gen)> = BTreeSet::new();
    for (&(p, a, ga), reads) in &readers {
        let Some(by_gen) = assigned.get(&p) else {
            continue;
        };
        for (&gb, &a_in_gb) in gens[a].range(ga + 1..) {
            let Some(takers) = by_gen.get(&gb) else {
                continue;
            };
            for (&b, &(tb, pb)) in takers {
                if b == a || reported.contains(&(p, a, b, gb)) {
                    continue;
                }
                let i = reads.partition_point(|&pi| d.polls[pi].invoke <= tb);
                let Some(&pa) = reads.get(i) else {
                    continue;
                };
                reported.insert((p, a, b, gb));
                let (pa, pbp, pg) = (&d.polls[pa], &d.polls[pb], &d.polls[a_in_gb]);
                out.push(Violation::new(
                    "group-split-brain",
                    format!(
                        "partition {p}: member {a} returned records of it ({}) fetched in generation {ga}, in a poll invoked at {}, after member {b} had been assigned it in generation {gb} from offset {} (poll done by {}); {a} was itself a member of generation {gb} (poll at {}), so it still held the partition after it was handed over",
                        span(&pa.records[&p]),
                        t(pa.invoke),
                        start_of(pbp, p),
                        t(pbp.complete),
                        t(pg.invoke)
                    ),
                    events(ops, &[pa.op, pbp.op, pg.op]),
                ));
            }
        }
    }
}

// ------------------------------------------------------- offset-regression

/// A Fenwick tree of prefix maxima over `(offset, commit)`.
struct MaxTree(Vec<Option<(u64, usize)>>);

impl MaxTree {
    fn new(n: usize) -> MaxTree {
        MaxTree(vec![None; n + 1])
    }

    /// Raises 1-based position `i` to `v`.
    fn raise(&mut self, mut i: usize, v: (u64, usize)) {
        while i < self.0.len() {
            if self.0[i].is_none_or(|b| v.0 > b.0) {
                self.0[i] = Some(v);
            }
            i += i & i.wrapping_neg();
        }
    }

    /// The maximum over positions `1..=i`.
    fn max(&self, mut i: usize) -> Option<(u64, usize)> {
        let mut best: Option<(u64, usize)> = None;
        while i > 0 {
            if let Some(v) = self.0[i] {
                if best.is_none_or(|b| v.0 > b.0) {
                    best = Some(v);
                }
            }
            i -= i & i.wrapping_neg();
        }
        best
    }
}

/// What saw a committed offset of a partition after earlier commits.
enum Seen {
    /// Acknowledged commit `commit` set `offset`.
    Commit { commit: usize, offset: u64 },
    /// `ok` poll `poll` reported assignment `assigned` of the partition,
    /// with this committed offset.
    Fetch {
        poll: usize,
        assigned: usize,
        committed: Option<u64>,
    },
}

fn regression(ops: &[Operation], d: &Decoded, out: &mut Vec<Violation>) {
    // Per partition: acknowledged commits (invoke, complete, offset, commit),
    // observations (invoke, complete, what), reset times.
    type Ok3 = (u64, u64, u64, usize);
    let mut commits: BTreeMap<Part, Vec<Ok3>> = BTreeMap::new();
    let mut seen: BTreeMap<Part, Vec<(u64, u64, Seen)>> = BTreeMap::new();
    for (ci, c) in d.commits.iter().enumerate() {
        if c.outcome != Outcome::Ok {
            continue;
        }
        let end = c.complete.unwrap_or(c.invoke);
        for (&p, &o) in &c.offsets {
            commits.entry(p).or_default().push((c.invoke, end, o, ci));
            seen.entry(p).or_default().push((
                c.invoke,
                end,
                Seen::Commit {
                    commit: ci,
                    offset: o,
                },
            ));
        }
    }
    for (pi, poll) in d.polls.iter().enumerate() {
        for (ai, a) in poll.assigned.iter().enumerate() {
            seen.entry(a.p).or_default().push((
                a.asked,
                poll.complete,
                Seen::Fetch {
                    poll: pi,
                    assigned: ai,
                    committed: a.committed,
                },
            ));
        }
    }
    let mut resets: BTreeMap<Part, Vec<u64>> = BTreeMap::new();
    for r in &d.resets {
        resets.entry(r.p).or_default().push(r.time);
    }
    for (p, mut cs) in commits {
        let Some(obs) = seen.get_mut(&p) else {
            continue;
        };
        let rs = resets.remove(&p).unwrap_or_default();
        let n = rs.len();
        // A commit C1 is excused for an observation ending at T when a
        // reset lies in [C1's invocation, T]. Its slot counts the resets
        // strictly before its invocation, reversed so that "no reset in
        // between" is a prefix of the tree.
        let slot = |invoke: u64| n - rs.partition_point(|&r| r < invoke) + 1;
        cs.sort_unstable_by_key(|&(_, end, _, ci)| (end, ci));
        obs.sort_by_key(|o| o.0);
        let mut tree = MaxTree::new(n + 1);
        let mut next = 0;
        let mut done_commit: BTreeSet<usize> = BTreeSet::new();
        let mut done_fetch: BTreeSet<usize> = BTreeSet::new();
        for (invoke, end, what) in obs.iter() {
            while next < cs.len() && cs[next].1 < *invoke {
                let (ci_invoke, _, o, ci) = cs[next];
                tree.raise(slot(ci_invoke), (o, ci));
                next += 1;
            }
            let k = rs.partition_point(|&r| r <= *end);
            let Some((o1, c1)) = tree.max(n - k + 1) else {
                continue;
            };
            let first = &d.commits[c1];
            let before = format!(
                "{} was acknowledged by {}",
                first.of(o1),
                t(first.complete.unwrap_or(first.invoke))
            );
            match *what {
                Seen::Commit { commit, offset } if offset < o1 && done_commit.insert(c1) => {
                    let c2 = &d.commits[commit];
                    out.push(Violation::new(
                        "offset-regression",
                        format!(
                            "partition {p}: {before}, then {}, invoked at {}, was acknowledged too; no offset reset of the partition lies between them: the committed offset went back",
                            c2.of(offset),
                            t(c2.invoke)
                        ),
                        events(ops, &[first.op, c2.op]),
                    ));
                }
                Seen::Fetch {
                    poll,
                    assigned,
                    committed,
                } if committed.is_none_or(|c| c < o1) && done_fetch.insert(c1) => {
                    let f = &d.polls[poll];
                    let a = &f.assigned[assigned];
                    let found = match committed {
                        Some(c) => format!("committed offset {c}"),
                        None => "no committed offset".into(),
                    };
                    out.push(Violation::new(
                        "offset-regression",
                        format!(
                            "partition {p}: {before}, but member {} was then assigned the partition in generation {} with {found} (asked for at {}, reported by the poll invoked at {}); no offset reset of the partition lies between them: the coordinator lost or rewound the commit",
                            a.member,
                            a.generation,
                            t(a.asked),
                            t(f.invoke)
                        ),
                        events(ops, &[first.op, f.op]),
                    ));
                }
                _ => {}
            }
        }
    }
}

// ----------------------------------------------------------- zombie-commit

/// The two earliest `(time, generation, member, poll)` of distinct members.
type Best2<'a> = Vec<(u64, Gen, &'a str, usize)>;

fn merge<'a>(best: &mut Best2<'a>, cand: (u64, Gen, &'a str, usize)) {
    if let Some(i) = best.iter().position(|b| b.2 == cand.2) {
        if cand < best[i] {
            best[i] = cand;
        }
    } else {
        best.push(cand);
    }
    best.sort_unstable();
    best.truncate(2);
}

fn zombie(ops: &[Operation], d: &Decoded, out: &mut Vec<Violation>) {
    // Per partition, ascending by generation g: the two earliest
    // assignments (of distinct members) in any generation >= g.
    let suffix: BTreeMap<Part, Vec<(Gen, Best2)>> = assignments(d)
        .into_iter()
        .map(|(p, by_gen)| {
            let mut acc: Best2 = Vec::new();
            let mut v: Vec<(Gen, Best2)> = by_gen
                .iter()
                .rev()
                .map(|(&g, members)| {
                    for (&m, &(tm, pi)) in members {
                        merge(&mut acc, (tm, g, m, pi));
                    }
                    (g, acc.clone())
                })
                .collect();
            v.reverse();
            (p, v)
        })
        .collect();
    for c in &d.commits {
        if c.outcome != Outcome::Ok {
            continue;
        }
        let mut stale = Vec::new();
        let mut shown = vec![c.op];
        for (&p, &o) in &c.offsets {
            let Some(v) = suffix.get(&p) else {
                continue;
            };
            let i = v.partition_point(|(g, _)| *g <= c.generation);
            let Some((_, best)) = v.get(i) else {
                continue;
            };
            let Some(&(tb, gb, b, pi)) = best.iter().find(|x| x.2 != c.member) else {
                continue;
            };
            if tb < c.invoke {
                shown.push(d.polls[pi].op);
                stale.push(format!(
                    "partition {p} (offset {o}) had been assigned to member {b} in generation {gb} by {}",
                    t(tb)
                ));
            }
        }
        if stale.is_empty() {
            continue;
        }
        out.push(Violation::new(
            "zombie-commit",
            format!(
                "member {}'s commit with generation {}{}, invoked at {}, was acknowledged, though {}: a stale generation's commit was accepted",
                c.member,
                c.generation,
                c.inside(),
                t(c.invoke),
                and_list(&stale)
            ),
            events(ops, &shown),
        ));
    }
}

// ------------------------------------------------- duplicate-beyond-window

fn beyond_window(ops: &[Operation], d: &Decoded, out: &mut Vec<Violation>) {
    // Per (member, partition), commit attempts as (start, next offset).
    let mut attempts: BTreeMap<(&str, Part), Vec<(u64, u64)>> = BTreeMap::new();
    for c in &d.commits {
        for (&p, &o) in &c.offsets {
            attempts
                .entry((c.member.as_str(), p))
                .or_default()
                .push((c.invoke, o));
        }
    }
    let mut by_member: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (pi, poll) in d.polls.iter().enumerate() {
        by_member.entry(poll.member.as_str()).or_default().push(pi);
    }
    for (&m, pis) in &by_member {
        // Per partition, `(lowest, highest, first poll)` processed since
        // the member last gave it up.
        let mut since: BTreeMap<Part, (u64, u64, usize)> = BTreeMap::new();
        for &ri in pis {
            let r = &d.polls[ri];
            for p in &r.revoked {
                let Some((lo, hi, first)) = since.remove(p) else {
                    continue;
                };
                if r.lost {
                    continue;
                }
                let covered = attempts
                    .get(&(m, *p))
                    .into_iter()
                    .flatten()
                    .filter(|&&(t0, _)| t0 <= r.complete)
                    .map(|&(_, o)| o)
                    .max();
                let from = covered.map_or(lo, |c| c.max(lo));
                if from > hi {
                    continue;
                }
                let later = d.polls.partition_point(|q| q.invoke < r.invoke);
                let again = d.polls[later..].iter().find_map(|q| {
                    let recs = q.records.get(p)?;
                    let o = recs
                        .iter()
                        .map(|&(o, _)| o)
                        .find(|o| (from..=hi).contains(o))?;
                    Some((q, o))
                });
                let Some((q, o)) = again else { continue };
                let last = match covered {
                    Some(c) => format!("its last commit of it began by then was of offset {c}"),
                    None => "it began no commit of it".into(),
                };
                out.push(Violation::new(
                    "duplicate-beyond-window",
                    format!(
                        "partition {p}: member {m} processed it up to offset {hi} and gave it up (poll invoked at {}, not fenced), but {last}; member {} processed offset {o} again (poll invoked at {}): a revocation must commit what was processed",
                        t(r.invoke),
                        q.member,
                        t(q.invoke)
                    ),
                    events(ops, &[d.polls[first].op, r.op, q.op]),
                ));
            }
            if r.lost {
                since.clear();
            }
            for (&p, recs) in &r.records {
                for &(o, _) in recs {
                    let e = since.entry(p).or_insert((o, o, ri));
                    e.0 = e.0.min(o);
                    e.1 = e.1.max(o);
                }
            }
        }
    }
}

// ----------------------------------------------------- group-not-recovered

fn not_recovered(
    ops: &[Operation],
    d: &Decoded,
    partitions: u32,
    quiet_from_us: u64,
    out: &mut Vec<Violation>,
) {
    // Polls are sorted by invocation: the last one per member wins.
    let mut last: BTreeMap<&str, usize> = BTreeMap::new();
    let mut last_owner: BTreeMap<Part, usize> = BTreeMap::new();
    for (pi, poll) in d.polls.iter().enumerate() {
        last.insert(poll.member.as_str(), pi);
        for &p in &poll.owned {
            last_owner.insert(p, pi);
        }
    }
    let owned: BTreeSet<Part> = last
        .values()
        .map(|&pi| &d.polls[pi])
        .filter(|poll| poll.invoke >= quiet_from_us)
        .flat_map(|poll| poll.owned.iter().copied())
        .collect();
    for p in (0..partitions).filter(|p| !owned.contains(p)) {
        let (why, shown) = match last_owner.get(&p) {
            Some(&pi) => {
                let poll = &d.polls[pi];
                let end = if last[poll.member.as_str()] == pi {
                    "that was its last poll, before the quiet period"
                } else {
                    "its later polls no longer owned it and no other member took it over"
                };
                (
                    format!(
                        "; it was last owned by member {} in generation {} (poll invoked at {}): {end}",
                        poll.member,
                        poll.generation,
                        t(poll.invoke)
                    ),
                    vec![poll.op],
                )
            }
            None => ("; no poll ever owned it".to_string(), vec![]),
        };
        out.push(Violation::new(
            "group-not-recovered",
            format!(
                "partition {p} has no owner at the end: no member's last poll invoked in the quiet period (from {}) owns it{why}",
                t(quiet_from_us)
            ),
            events(ops, &shown),
        ));
    }
}

// ------------------------------------------------------ malformed, counts

fn malformed(ops: &[Operation], d: &Decoded, out: &mut Vec<Violation>) {
    let Some((first, what)) = d.malformed.first() else {
        return;
    };
    let more = match d.malformed.len() - 1 {
        0 => String::new(),
        1 => " (and 1 more malformed operation)".into(),
        n => format!(" (and {n} more malformed operations)"),
    };
    out.push(Violation::new(
        "malformed-history",
        format!(
            "event {}, {what}{more}",
            ops[*first]
                .complete_index
                .unwrap_or(ops[*first].invoke_index)
        ),
        events(ops, &[*first]),
    ));
}

/// `(processed, duplicates)`.
fn duplicates(d: &Decoded) -> (u64, u64) {
    let mut processed = 0u64;
    let mut distinct: BTreeSet<(Part, u64)> = BTreeSet::new();
    for poll in &d.polls {
        for (&p, recs) in &poll.records {
            processed += recs.len() as u64;
            distinct.extend(recs.iter().map(|&(o, _)| (p, o)));
        }
    }
    (processed, processed - distinct.len() as u64)
}
