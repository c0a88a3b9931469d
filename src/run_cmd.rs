//! `kzsim run`: sweep scenarios over seeds, print a summary (or JSON lines).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use kzsim_sim::runner::{sweep, InOrder, JobSpace, RunOptions, RunOutcome, Verdict};

use crate::fault_modes::FaultModes;
use crate::scenarios::{
    load_all, mode_for_bugs, replay_command, validate_bugs, validate_bugs_for, ModeChoice,
    DEFAULT_DIR,
};

/// The demo protocol's scenarios, run by the default sweep while
/// `scenarios/` is empty.
const DEMO_DIR: &str = "tests/scenarios";

/// Where the default sweep writes its report.
const DEFAULT_REPORT_DIR: &str = "target/kzsim-report";

/// Seeds run by the default sweep (no arguments).
const DEFAULT_SEEDS: std::ops::Range<u64> = 0..20;

/// Arguments of `kzsim run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Scenario files or directories of them.
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
    /// Run one seed.
    #[arg(long, conflicts_with = "seeds")]
    pub seed: Option<u64>,
    /// Run a half-open range of seeds, `A..B` (default: 0..10; the default
    /// sweep, `kzsim` with no arguments, runs 0..20).
    #[arg(long)]
    pub seeds: Option<String>,
    /// Worker threads (default: the number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run only shard I of N (`I/N`, 0-based) of the (scenario, seed) jobs.
    #[arg(long)]
    pub shard: Option<String>,
    /// Switch on a planted bug (repeatable) and search for it: a seed that
    /// shows the bug's anomaly is a find, one that does not is "not found"
    /// (not a failure); the exit code is 0 when some seed found it.
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
    /// Stop starting new seeds after the first failure (with `--bug`:
    /// after the first find).
    #[arg(long)]
    pub stop_on_fail: bool,
    /// One JSON object per seed on stdout, in (scenario, seed) order,
    /// then one `{"summary": ...}` object, instead of the summary table.
    #[arg(long)]
    pub json: bool,
    /// Run every seed twice and fail on any trace difference.
    #[arg(long)]
    pub check_determinism: bool,
    /// Write an HTML report of the sweep into this directory.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The Kafka modes to run scenarios in that do not pin one (default:
    /// both; with `--bug`, the mode the bug lives in).
    #[arg(long, value_enum)]
    pub mode: Option<ModeChoice>,
    /// Event-triggered faults and buggify.
    #[command(flatten)]
    pub modes: FaultModes,
    /// Print, per scenario, how many seeds reached each protocol event and
    /// buggify site ("sometimes" coverage), and which never happened.
    #[arg(long)]
    pub coverage: bool,
    /// Coverage-guided search: N runs per scenario that mutate the fault
    /// schedules of the runs that reached rare events (the search's own
    /// seed is `--seed`, default 0). Failing runs are written out as
    /// scenario files under target/kzsim-explore/.
    #[arg(long, value_name = "N", conflicts_with = "seeds")]
    pub explore: Option<u64>,
}

/// Parses `A..B` (half-open).
pub fn parse_range(s: &str) -> Result<std::ops::Range<u64>> {
    let (a, b) = s
        .split_once("..")
        .with_context(|| format!("--seeds `{s}`: expected A..B"))?;
    let a: u64 = a
        .trim()
        .parse()
        .with_context(|| format!("--seeds `{s}`: bad start"))?;
    let b: u64 = b
        .trim()
        .parse()
        .with_context(|| format!("--seeds `{s}`: bad end"))?;
    if b <= a {
        bail!("--seeds `{s}`: the range is empty");
    }
    Ok(a..b)
}

/// Parses `I/N`.
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let (i, n) = s
        .split_once('/')
        .with_context(|| format!("--shard `{s}`: expected I/N"))?;
    let i: usize = i.parse().with_context(|| format!("--shard `{s}`: bad I"))?;
    let n: usize = n.parse().with_context(|| format!("--shard `{s}`: bad N"))?;
    if n == 0 || i >= n {
        bail!("--shard `{s}`: need 0 <= I < N");
    }
    Ok((i, n))
}

/// The default sweep: every scenario in `scenarios/`.
pub fn default_sweep() -> Result<u8> {
    let mut dir = PathBuf::from(DEFAULT_DIR);
    if !dir.is_dir() {
        bail!("{DEFAULT_DIR}/: not found (run from the repository root)");
    }
    if kzsim_sim::scenario::scenario_files(&dir)?.is_empty() {
        eprintln!(
            "{DEFAULT_DIR}/ holds no scenario yet; running the engine's demo scenarios in {DEMO_DIR}/"
        );
        dir = PathBuf::from(DEMO_DIR);
    }
    run(RunArgs {
        scenarios: vec![dir],
        seed: None,
        seeds: Some(format!("{}..{}", DEFAULT_SEEDS.start, DEFAULT_SEEDS.end)),
        jobs: None,
        shard: None,
        bugs: Vec::new(),
        stop_on_fail: false,
        json: false,
        check_determinism: false,
        report: Some(PathBuf::from(DEFAULT_REPORT_DIR)),
        mode: None,
        modes: FaultModes::default(),
        coverage: false,
        explore: None,
    })
}

/// Checks before the run that the report directory can be written, so a
/// long sweep does not end in an error about its output.
fn check_report_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--report {}: cannot create the directory", dir.display()))?;
    let probe = dir.join(".kzsim-write-test");
    std::fs::write(&probe, b"").with_context(|| {
        format!(
            "--report {}: cannot write into the directory",
            dir.display()
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Runs the command; returns the exit code.
pub fn run(args: RunArgs) -> Result<u8> {
    validate_bugs(&args.bugs)?;
    let mode = args
        .mode
        .or_else(|| mode_for_bugs(&args.bugs))
        .unwrap_or(ModeChoice::Both);
    let mut scenarios = load_all(&args.scenarios, mode)?;
    for s in &mut scenarios {
        if let Some(note) = args.modes.apply(s) {
            eprintln!("{note}");
        }
    }
    for s in &scenarios {
        validate_bugs_for(&args.bugs, s)?;
    }
    if let Some(budget) = args.explore {
        if budget == 0 {
            bail!("--explore 0: the search needs at least one run");
        }
        let threads = args.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        if threads == 0 {
            bail!("--jobs 0: at least one worker thread is needed");
        }
        kzsim_sim::runner::install_quiet_panic_hook();
        let opts = RunOptions {
            bugs: args.bugs.clone(),
            check_determinism: args.check_determinism,
        };
        return crate::explore_cmd::run(
            &scenarios,
            &crate::explore_cmd::ExploreArgs {
                budget,
                seed: args.seed.unwrap_or(0),
                threads,
                stop_on_hit: args.stop_on_fail,
                opts: &opts,
                modes: args.modes,
            },
        );
    }
    let seeds = match (&args.seed, &args.seeds) {
        (Some(s), _) => match s.checked_add(1) {
            Some(end) => *s..end,
            None => bail!("--seed {s}: seeds run from 0 to {}", u64::MAX - 1),
        },
        (None, Some(r)) => parse_range(r)?,
        (None, None) => 0..10,
    };
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    if args.jobs == Some(0) {
        bail!("--jobs 0: at least one worker thread is needed");
    }
    if let Some(dir) = &args.report {
        check_report_dir(dir)?;
    }
    let threads = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let work = JobSpace::new(scenarios.len(), seeds.clone(), shard);
    if work.is_empty() {
        // A run that checks nothing is not a pass.
        bail!(
            "--shard {}: selects none of the {} (scenario, seed) jobs, so nothing would be checked",
            args.shard.as_deref().unwrap_or("?"),
            work.total()
        );
    }
    let opts = RunOptions {
        bugs: args.bugs.clone(),
        check_determinism: args.check_determinism,
    };
    kzsim_sim::runner::install_quiet_panic_hook();
    let bar = ProgressBar::new(u64::try_from(work.len()).unwrap_or(u64::MAX));
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} seeds, {per_sec}, {msg}",
        )
        .expect("progress template")
        .progress_chars("=> "),
    );
    bar.set_message("0 failed");
    // Outcomes in sweep order: JSON lines come out in (scenario, seed)
    // order whatever the number of workers.
    let ordered = Mutex::new((InOrder::default(), Vec::<RunOutcome>::new()));
    let failed = Mutex::new(0u64);
    let json = args.json;
    let bug_mode = !args.bugs.is_empty();
    let print_json = |o: &RunOutcome| {
        bar.suspend(|| println!("{}", serde_json::to_string(o).expect("outcome serialises")))
    };
    let stop_on = |o: &RunOutcome| {
        if bug_mode {
            o.verdict == Verdict::Found
        } else {
            o.verdict == Verdict::Fail
        }
    };
    sweep(
        &scenarios,
        &work,
        &opts,
        threads,
        if args.stop_on_fail {
            Some(&stop_on)
        } else {
            None
        },
        &|k, o: RunOutcome| {
            if !o.ok {
                let mut f = failed.lock().expect("counter");
                *f += 1;
                bar.set_message(format!("{f} failed"));
            }
            bar.inc(1);
            let mut guard = ordered.lock().expect("results");
            let (order, done) = &mut *guard;
            for o in order.push(k, o) {
                if json {
                    print_json(&o);
                }
                done.push(o);
            }
        },
    );
    bar.finish_and_clear();
    let (order, mut results) = ordered.into_inner().expect("results");
    for o in order.rest() {
        if json {
            print_json(&o);
        }
        results.push(o);
    }
    let code = exit_code(&results, bug_mode);
    if json {
        println!("{}", summary_json(&results, &args.bugs, code));
    } else {
        print_summary(&results, &args.bugs, args.modes);
        if args.coverage {
            print_coverage(&results);
        }
    }
    if let Some(dir) = &args.report {
        let bugs = args.bugs.clone();
        let path = kzsim_reports::write_sweep_report(dir, &results, &|o| {
            replay_command(
                std::path::Path::new(&o.file),
                &o.scenario,
                o.seed,
                &bugs,
                args.modes,
            )
        })?;
        eprintln!("report: {}", path.display());
    }
    Ok(code)
}

/// Per scenario: in how many seeds each protocol event and buggify site
/// happened (with the total count), and the events never seen.
fn print_coverage(results: &[RunOutcome]) {
    let mut by_scenario: BTreeMap<&str, Vec<&RunOutcome>> = BTreeMap::new();
    for o in results {
        by_scenario.entry(&o.scenario).or_default().push(o);
    }
    for (name, outs) in by_scenario {
        let mut seen: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
        for o in &outs {
            for (k, v) in &o.coverage {
                let e = seen.entry(k).or_default();
                e.0 += 1;
                e.1 += v;
            }
        }
        println!("coverage of {name} ({} seeds):", outs.len());
        for (k, (seeds, total)) in &seen {
            println!("  {k:<40} in {seeds:>6} seeds, {total:>9} times");
        }
        // The events never seen, among those of the systems the scenario
        // runs (a family with at least one event seen).
        let seen_kind =
            |k: &kzsim_model::EventKind| seen.contains_key(format!("event {}", k.name()).as_str());
        let all = kzsim_model::EventKind::all();
        let families: Vec<&str> = all
            .iter()
            .filter(|(k, _, _)| seen_kind(k))
            .map(|(k, _, _)| k.family())
            .collect();
        let never: Vec<&str> = all
            .iter()
            .filter(|(k, _, _)| families.contains(&k.family()) && !seen_kind(k))
            .map(|(_, n, _)| *n)
            .collect();
        if !never.is_empty() {
            println!("  never: {}", never.join(", "));
        }
    }
}

/// The exit code of a sweep: 1 when a seed failed; with `--bug`, also 1
/// when no seed found the bug (a search that finds nothing is not a
/// success); 0 otherwise.
fn exit_code(results: &[RunOutcome], bug_mode: bool) -> u8 {
    let failed = results.iter().any(|o| o.verdict == Verdict::Fail);
    let found = results.iter().any(|o| o.verdict == Verdict::Found);
    u8::from(failed || (bug_mode && !found))
}

/// Counts of each verdict among `outs`.
#[derive(Default)]
struct Tally {
    pass: usize,
    fail: usize,
    found: usize,
    not_found: usize,
}

impl Tally {
    fn of<'a>(outs: impl IntoIterator<Item = &'a RunOutcome>) -> Tally {
        let mut t = Tally::default();
        for o in outs {
            match o.verdict {
                Verdict::Pass => t.pass += 1,
                Verdict::Fail => t.fail += 1,
                Verdict::Found => t.found += 1,
                Verdict::NotFound => t.not_found += 1,
            }
        }
        t
    }
}

/// The closing JSON object of `--json`: one line `{"summary": {...}}`.
fn summary_json(results: &[RunOutcome], bugs: &[String], code: u8) -> String {
    let mut by_scenario: BTreeMap<&str, Vec<&RunOutcome>> = BTreeMap::new();
    for o in results {
        by_scenario.entry(&o.scenario).or_default().push(o);
    }
    let per: Vec<serde_json::Value> = by_scenario
        .iter()
        .map(|(file, outs)| {
            let t = Tally::of(outs.iter().copied());
            let mut anomalies: BTreeMap<&str, usize> = BTreeMap::new();
            for o in outs {
                for v in &o.violations {
                    *anomalies.entry(&v.kind).or_default() += 1;
                }
            }
            serde_json::json!({
                "scenario": outs[0].scenario,
                "file": file,
                "seeds": outs.len(),
                "pass": t.pass,
                "fail": t.fail,
                "found": t.found,
                "not_found": t.not_found,
                "anomalies": anomalies,
            })
        })
        .collect();
    let t = Tally::of(results);
    serde_json::json!({
        "summary": {
            "seeds": results.len(),
            "pass": t.pass,
            "fail": t.fail,
            "found": t.found,
            "not_found": t.not_found,
            "bugs": bugs,
            "exit": code,
            "scenarios": per,
        }
    })
    .to_string()
}

fn print_summary(results: &[RunOutcome], bugs: &[String], modes: FaultModes) {
    let mut by_scenario: BTreeMap<&str, Vec<&RunOutcome>> = BTreeMap::new();
    for o in results {
        by_scenario.entry(&o.scenario).or_default().push(o);
    }
    let bug_mode = !bugs.is_empty();
    println!(
        "{:<28} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9} {:>8}  anomalies",
        "scenario",
        "seeds",
        if bug_mode { "found" } else { "pass" },
        "fail",
        "ms/seed",
        "sim ms",
        "msgs",
        "ops"
    );
    for outs in by_scenario.values() {
        let n = outs.len() as f64;
        let t = Tally::of(outs.iter().copied());
        let wall: f64 = outs.iter().map(|o| o.wall_ms).sum::<f64>() / n;
        let sim: u64 = outs.iter().map(|o| o.sim_ms).sum::<u64>() / outs.len() as u64;
        let msgs: u64 = outs.iter().map(|o| o.messages).sum::<u64>() / outs.len() as u64;
        let ops: u64 = outs.iter().map(|o| o.ops).sum::<u64>() / outs.len() as u64;
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for o in outs {
            for v in &o.violations {
                *kinds.entry(&v.kind).or_default() += 1;
            }
        }
        let kinds: Vec<String> = kinds.iter().map(|(k, c)| format!("{k}x{c}")).collect();
        let mut counters: BTreeMap<&str, u64> = BTreeMap::new();
        for o in outs {
            for (k, v) in &o.counters {
                *counters.entry(k).or_default() += v;
            }
        }
        let counted = if counters.is_empty() {
            String::new()
        } else {
            let c: Vec<String> = counters.iter().map(|(k, v)| format!("{k} {v}")).collect();
            format!("  ({})", c.join(", "))
        };
        println!(
            "{:<28} {:>6} {:>6} {:>6} {:>9.2} {:>9} {:>9} {:>8}  {}{counted}",
            outs[0].scenario,
            outs.len(),
            if bug_mode { t.found } else { t.pass },
            t.fail,
            wall,
            sim,
            msgs,
            ops,
            if kinds.is_empty() {
                "-".to_string()
            } else {
                kinds.join(" ")
            }
        );
    }
    if bug_mode {
        let wanted = kzsim_sim::runner::bug_anomalies(bugs).join(" or ");
        for (file, outs) in &by_scenario {
            let finds: Vec<&&RunOutcome> = outs
                .iter()
                .filter(|o| o.verdict == Verdict::Found)
                .collect();
            match finds.first() {
                Some(first) => println!(
                    "FOUND bug {} by {} at seed {} as {wanted} ({} of {} seeds)\n  replay: {}",
                    bugs.join("+"),
                    first.scenario,
                    first.seed,
                    finds.len(),
                    outs.len(),
                    replay_command(
                        std::path::Path::new(&first.file),
                        &first.scenario,
                        first.seed,
                        bugs,
                        modes
                    )
                ),
                None => println!(
                    "bug {} not found by {file} as {wanted} in {} seeds",
                    bugs.join("+"),
                    outs.len()
                ),
            }
        }
    }
    let failures: Vec<&RunOutcome> = results
        .iter()
        .filter(|o| o.verdict == Verdict::Fail)
        .collect();
    for o in failures.iter().take(20) {
        let what = if o.violations.is_empty() {
            format!(
                "expected anomaly `{}` not shown",
                o.expected.as_deref().unwrap_or("?")
            )
        } else {
            o.violations
                .iter()
                .take(3)
                .map(|v| format!("{}: {}", v.kind, v.detail))
                .collect::<Vec<_>>()
                .join("; ")
        };
        println!("FAIL {} seed {}: {}", o.scenario, o.seed, what);
        println!(
            "  replay: {}",
            replay_command(
                std::path::Path::new(&o.file),
                &o.scenario,
                o.seed,
                bugs,
                modes
            )
        );
    }
    if failures.len() > 20 {
        println!("... and {} more failing seeds", failures.len() - 20);
    }
    let t = Tally::of(results);
    let total_wall: f64 = results.iter().map(|o| o.wall_ms).sum();
    let counts = if bug_mode {
        format!(
            "{} found, {} not found, {} failed",
            t.found, t.not_found, t.fail
        )
    } else {
        format!("{} passed, {} failed", t.pass, t.fail)
    };
    println!(
        "{} seeds, {counts}; {:.1} ms per seed on average",
        results.len(),
        total_wall / results.len().max(1) as f64
    );
    if t.fail > 0 || t.found > 0 {
        println!(
            "(replay commands run from {})",
            crate::scenarios::repo_root().display()
        );
    }
}
