//! Scenario files mutated at random: loading never panics, every refusal
//! names the file and a real place in it, and every accepted mutant runs.
//!
//! Each case takes one of the shipped scenarios (`scenarios/`,
//! `tests/scenarios/`) and applies one to three mutations: values set to
//! zero, negatives, huge numbers, NaN and infinities, fractions above 1,
//! wrong types; min and max swapped; keys dropped; settings added where
//! they do not belong; and syntax broken (characters deleted or inserted,
//! lines duplicated, text cut short). The mutants that load are checked to
//! have a bounded fault schedule, and a deterministic sample of them is run
//! for a short simulated time (duration and quiet period scaled down).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use kzsim_sim::nemesis;
use kzsim_sim::runner::{run_seed, RunOptions};
use kzsim_sim::scenario::validate::MAX_FAULTS_PER_KIND;
use kzsim_sim::scenario::{scenario_files, Scenario, ScenarioError};

/// Mutants parsed.
const CASES: usize = 20_000;
/// Accepted mutants run.
const RUNS: usize = 800;
/// The linearizability search's budget in a sampled mutant's run.
const CHECK_STEPS: i64 = 200_000;
/// The simulated time a sampled mutant runs (ms).
const RUN_MS: u64 = 1_500;

/// Values a mutation puts in place of a value.
const VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "2",
    "7",
    "1e12",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "-inf",
    "0.0",
    "1.5",
    "3.0",
    "-0.5",
    "0.999",
    "18446744073709551615",
    "9223372036854775807",
    "-9223372036854775808",
    "4294967295",
    "4294967296",
    "\"three\"",
    "\"\"",
    "true",
    "[]",
    "[1, 2, 99]",
    "{}",
];

/// Lines a mutation inserts after a table header.
const INSERTS: &[&str] = &[
    "max_down = 7",
    "max_down = 0",
    "at_ms = 999999",
    "duration_ms = 0",
    "value = -3.0",
    "value = 2.5",
    "nodes = [9]",
    "group = \"zk\"",
    "cut_from = \"leader\"",
    "cut_nodes = [0]",
    "zk_servers = 1",
    "zk_servers = 2",
    "replication_factor = 5",
    "replication_factor = 1",
    "min_insync_replicas = 4",
    "min_insync_replicas = 1",
    "producers = 9",
    "partitions = 0",
    "partitions = 64",
    "flush_messages = 0",
    "torn_write_prob = 2.0",
    "torn_write_prob = 1.0",
    "crash = 1e9",
    "loss = 0.9",
    "kill = 50.0",
    "think_ms = 0.0",
    "think_ms = 0.5",
    "read_fraction = 1.0",
    "keys = 0",
    "check_max_steps = 999",
    "max_drift_ppm = 100000",
    "max_offset_ms = 5000",
    "latency_us = 60000000",
    "jitter_us = 0",
    "capacity_bytes = 1",
    "min_duration_ms = 0",
    "max_duration_ms = 1",
    "quiet_ms = 0",
    "kind = \"heal\"",
    "kind = \"power-loss\"",
    "target = \"controller\"",
];

/// One parsed line: `key = value` (not a comment or a header).
fn key_value(line: &str) -> Option<(&str, &str)> {
    let t = line.trim_start();
    if t.starts_with('#') || t.starts_with('[') {
        return None;
    }
    let (k, v) = t.split_once('=')?;
    Some((k.trim(), v.trim()))
}

/// A number scaled or shifted, as text.
fn nudge(v: &str, rng: &mut ChaCha8Rng) -> String {
    match v.parse::<f64>() {
        Ok(x) => match rng.gen_range(0..5) {
            0 => format!("{}", x * 1000.0),
            1 => format!("{}", -x),
            2 => format!("{}", x + 1.0),
            3 => format!("{}", (x - 1.0).trunc()),
            _ => format!("{x:?}"), // an integer written as a float
        },
        Err(_) => VALUES.choose(rng).unwrap().to_string(),
    }
}

/// Applies one random mutation to `lines`; returns the 0-based lines it
/// touched (none for a change that has no single line).
fn mutate(lines: &mut Vec<String>, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let kv: Vec<usize> = (0..lines.len())
        .filter(|&i| key_value(&lines[i]).is_some())
        .collect();
    let headers: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].trim_start().starts_with('['))
        .collect();
    if lines.len() < 2 || kv.is_empty() {
        // Cut short already: add to what is left.
        lines.push(INSERTS.choose(rng).unwrap().to_string());
        return vec![lines.len() - 1];
    }
    match rng.gen_range(0..100) {
        // A value replaced.
        0..=44 => {
            let i = *kv.choose(rng).unwrap();
            let (k, v) = key_value(&lines[i]).unwrap();
            let new = if rng.gen_bool(0.3) {
                nudge(v, rng)
            } else {
                VALUES.choose(rng).unwrap().to_string()
            };
            lines[i] = format!("{k} = {new}");
            vec![i]
        }
        // A key dropped.
        45..=54 => {
            let i = *kv.choose(rng).unwrap();
            lines.remove(i);
            vec![]
        }
        // Min and max swapped.
        55..=59 => {
            let find = |p: &str| lines.iter().position(|l| l.trim_start().starts_with(p));
            match (find("min_duration_ms"), find("max_duration_ms")) {
                (Some(a), Some(b)) => {
                    let va = key_value(&lines[a]).unwrap().1.to_string();
                    let vb = key_value(&lines[b]).unwrap().1.to_string();
                    lines[a] = format!("min_duration_ms = {vb}");
                    lines[b] = format!("max_duration_ms = {va}");
                    vec![a, b]
                }
                _ => {
                    let at = headers.choose(rng).copied().unwrap_or(0);
                    lines.insert(at + 1, "min_duration_ms = 5000".into());
                    lines.insert(at + 2, "max_duration_ms = 10".into());
                    vec![at + 1, at + 2]
                }
            }
        }
        // A setting added after a table header.
        60..=79 => {
            let at = headers.choose(rng).copied().unwrap_or(0);
            lines.insert(at + 1, INSERTS.choose(rng).unwrap().to_string());
            vec![at + 1]
        }
        // Syntax: a character deleted or inserted.
        80..=89 => {
            let i = rng.gen_range(0..lines.len());
            let line = &mut lines[i];
            if !line.is_empty() && rng.gen_bool(0.5) {
                let chars: Vec<char> = line.chars().collect();
                let at = rng.gen_range(0..chars.len());
                *line = chars
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != at)
                    .map(|(_, c)| *c)
                    .collect();
            } else {
                let c = *['[', ']', '"', '=', '{', '.', '#', ',', 'x', '\'']
                    .choose(rng)
                    .unwrap();
                let mut chars: Vec<char> = line.chars().collect();
                let at = rng.gen_range(0..=chars.len());
                chars.insert(at, c);
                *line = chars.into_iter().collect();
            }
            vec![i]
        }
        // Syntax: a line duplicated.
        90..=94 => {
            let i = rng.gen_range(0..lines.len());
            let l = lines[i].clone();
            lines.insert(i + 1, l);
            vec![i, i + 1]
        }
        // Syntax: the text cut short.
        _ => {
            let at = rng.gen_range(1..lines.len());
            lines.truncate(at);
            if let Some(last) = lines.last_mut() {
                let keep = rng.gen_range(0..=last.len());
                if last.is_char_boundary(keep) {
                    last.truncate(keep);
                }
            }
            vec![lines.len().saturating_sub(1)]
        }
    }
}

/// Every shipped scenario: (path, text).
fn originals() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in ["scenarios", "tests/scenarios"] {
        for f in scenario_files(&root.join(dir)).expect("scenario folder") {
            let text = std::fs::read_to_string(&f).expect("scenario file");
            out.push((f, text));
        }
    }
    assert!(out.len() >= 30, "found {} scenarios", out.len());
    out
}

/// A loaded scenario cut down to `RUN_MS` of simulated time, its quiet
/// period scaled with it, and (ZooKeeper) its linearizability search to
/// `CHECK_STEPS` steps: a mutant's history can be one the search cannot
/// decide, and the point here is that it runs, not its verdict.
fn shortened(mut s: Scenario) -> Scenario {
    if s.spec.cluster.system == kzsim_sim::scenario::SystemKind::Zk {
        s.spec
            .cluster
            .config
            .insert("check_max_steps".into(), toml::Value::Integer(CHECK_STEPS));
    }
    let d = s.spec.duration_ms;
    if d > RUN_MS {
        s.spec.faults.quiet_ms = s.spec.faults.quiet_ms * RUN_MS / d;
        s.spec.duration_ms = RUN_MS;
    }
    s
}

#[test]
fn mutated_scenarios_load_or_are_refused_with_a_place() {
    let started = std::time::Instant::now();
    let files = originals();
    let mut rng = ChaCha8Rng::seed_from_u64(0x5ce7_a210);
    let mut accepted: Vec<Scenario> = Vec::new();
    let mut refused = 0usize;
    let mut at_start = 0usize;
    for case in 0..CASES {
        let (path, text) = &files[case % files.len()];
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let mut touched = Vec::new();
        // Mostly one mutation, so that many mutants load and run.
        for _ in 0..*[1, 1, 1, 2, 3].choose(&mut rng).unwrap() {
            touched.extend(mutate(&mut lines, &mut rng));
        }
        let mutant = lines.join("\n") + "\n";
        let parsed = catch_unwind(AssertUnwindSafe(|| Scenario::parse(&mutant, path)))
            .unwrap_or_else(|_| panic!("case {case}: parsing panicked on\n{mutant}"));
        match parsed {
            Ok(s) => {
                // The whole run's fault schedule is bounded.
                let kinds = s.spec.faults.random.len() as f64;
                let bound = 2.0 * (kinds * MAX_FAULTS_PER_KIND * 1.5 + 1.0)
                    + 2.0 * s.spec.faults.at.len() as f64;
                let sched = nemesis::schedule(
                    &s.spec.faults,
                    s.spec.duration_ms,
                    &mut ChaCha8Rng::seed_from_u64(case as u64),
                );
                assert!(
                    (sched.len() as f64) <= bound,
                    "case {case}: {} scheduled actions\n{mutant}",
                    sched.len()
                );
                accepted.push(s);
            }
            Err(ScenarioError::Invalid {
                file,
                line,
                column,
                message,
            }) => {
                refused += 1;
                assert_eq!(&file, path, "case {case}");
                assert!(!message.is_empty(), "case {case}");
                let shown = ScenarioError::Invalid {
                    file: file.clone(),
                    line,
                    column,
                    message: message.clone(),
                }
                .to_string();
                assert!(
                    shown.starts_with(&format!("{}:{line}:{column}: ", path.display())),
                    "{shown}"
                );
                assert!(
                    line <= lines.len() + 1,
                    "case {case}: line {line}: {message}"
                );
                if (line, column) == (1, 1) {
                    // Only a problem of the whole document (a top-level
                    // key missing) or one on the first line is placed there.
                    at_start += 1;
                    assert!(
                        message.contains("missing field") || touched.contains(&0),
                        "case {case}: placed at 1:1: {message}\n{mutant}"
                    );
                }
            }
            Err(e) => panic!("case {case}: {e}"),
        }
    }
    let parse_time = started.elapsed();
    assert!(refused > CASES / 4, "only {refused} of {CASES} refused");
    assert!(accepted.len() > RUNS, "only {} accepted", accepted.len());
    // A deterministic sample of the accepted mutants runs, briefly.
    let stride = accepted.len() / RUNS;
    let sample: Vec<Scenario> = accepted
        .into_iter()
        .step_by(stride)
        .take(RUNS)
        .map(shortened)
        .collect();
    let failures: Vec<String> = std::thread::scope(|s| {
        let halves: Vec<_> = sample
            .chunks(sample.len().div_ceil(2))
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|sc| {
                            let o = run_seed(sc, 1, &RunOptions::default());
                            o.violations
                                .iter()
                                .find(|v| v.kind == "panic" || v.kind == "bad-scenario")
                                .map(|v| format!("{}: {}: {}", sc.file.display(), v.kind, v.detail))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(failures.is_empty(), "{failures:#?}");
    eprintln!(
        "{CASES} mutants: {refused} refused ({at_start} at 1:1), {} run; parsing {:.1} s, all {:.1} s",
        sample.len(),
        parse_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
