//! `kzsim run`: sweep scenarios over seeds, print a summary (or JSON lines).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use kzsim_sim::runner::{jobs, sweep, RunOptions, RunOutcome};

use crate::scenarios::{load_all, replay_command, validate_bugs, DEFAULT_DIR};

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
    /// Run a half-open range of seeds, `A..B`.
    #[arg(long)]
    pub seeds: Option<String>,
    /// Worker threads (default: the number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run only shard I of N (`I/N`, 0-based) of the (scenario, seed) jobs.
    #[arg(long)]
    pub shard: Option<String>,
    /// Switch on a planted bug (repeatable); a found violation is the point.
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
    /// Stop starting new seeds after the first failure.
    #[arg(long)]
    pub stop_on_fail: bool,
    /// One JSON object per seed on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Run every seed twice and fail on any trace difference.
    #[arg(long)]
    pub check_determinism: bool,
    /// Write an HTML report of the sweep into this directory.
    #[arg(long)]
    pub report: Option<PathBuf>,
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
    })
}

/// Runs the command; returns the exit code.
pub fn run(args: RunArgs) -> Result<u8> {
    validate_bugs(&args.bugs)?;
    let scenarios = load_all(&args.scenarios)?;
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
    let threads = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let work = jobs(scenarios.len(), seeds.clone(), shard);
    if work.is_empty() {
        // A run that checks nothing is not a pass.
        bail!(
            "--shard {}: selects none of the {} (scenario, seed) jobs, so nothing would be checked",
            args.shard.as_deref().unwrap_or("?"),
            scenarios.len() as u64 * (seeds.end - seeds.start)
        );
    }
    let opts = RunOptions {
        bugs: args.bugs.clone(),
        check_determinism: args.check_determinism,
    };
    kzsim_sim::runner::install_quiet_panic_hook();
    let bar = ProgressBar::new(work.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} seeds, {per_sec}, {msg}",
        )
        .expect("progress template")
        .progress_chars("=> "),
    );
    bar.set_message("0 failed");
    let results = Mutex::new(Vec::<RunOutcome>::new());
    let failed = Mutex::new(0u64);
    let json = args.json;
    let stdout_lock = Mutex::new(());
    sweep(
        &scenarios,
        &work,
        &opts,
        threads,
        args.stop_on_fail,
        &|o: RunOutcome| {
            if !o.ok {
                let mut f = failed.lock().expect("counter");
                *f += 1;
                bar.set_message(format!("{f} failed"));
            }
            if json {
                let _g = stdout_lock.lock().expect("stdout");
                bar.suspend(|| {
                    println!("{}", serde_json::to_string(&o).expect("outcome serialises"))
                });
            }
            bar.inc(1);
            results.lock().expect("results").push(o);
        },
    );
    bar.finish_and_clear();
    let mut results = results.into_inner().expect("results");
    results.sort_by(|a, b| (&a.file, a.seed).cmp(&(&b.file, b.seed)));
    let code = if !args.bugs.is_empty() {
        bug_verdict(&results)
    } else {
        u8::from(results.iter().any(|o| !o.ok))
    };
    if !json {
        print_summary(&results, &args.bugs);
    }
    if let Some(dir) = &args.report {
        let bugs = args.bugs.clone();
        let path = kzsim_reports::write_sweep_report(dir, &results, &|o| {
            replay_command(std::path::Path::new(&o.file), o.seed, &bugs)
        })?;
        eprintln!("report: {}", path.display());
    }
    Ok(code)
}

/// With `--bug`: exit 0 when every scenario found a violation in some seed.
fn bug_verdict(results: &[RunOutcome]) -> u8 {
    let mut found: BTreeMap<&str, bool> = BTreeMap::new();
    for o in results {
        *found.entry(&o.file).or_default() |= o.ok;
    }
    u8::from(found.values().any(|f| !f))
}

fn print_summary(results: &[RunOutcome], bugs: &[String]) {
    let mut by_scenario: BTreeMap<&str, Vec<&RunOutcome>> = BTreeMap::new();
    for o in results {
        by_scenario.entry(&o.file).or_default().push(o);
    }
    println!(
        "{:<28} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9} {:>8}  anomalies",
        "scenario", "seeds", "pass", "fail", "ms/seed", "sim ms", "msgs", "ops"
    );
    for outs in by_scenario.values() {
        let n = outs.len() as f64;
        let pass = outs.iter().filter(|o| o.ok).count();
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
            pass,
            outs.len() - pass,
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
    if !bugs.is_empty() {
        for (file, outs) in &by_scenario {
            match outs.iter().find(|o| o.ok) {
                Some(first) => println!(
                    "bug {} found by {} at seed {} ({} of {} seeds): {}\n  replay: {}",
                    bugs.join("+"),
                    first.scenario,
                    first.seed,
                    outs.iter().filter(|o| o.ok).count(),
                    outs.len(),
                    first
                        .violations
                        .iter()
                        .map(|v| v.kind.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    replay_command(std::path::Path::new(&first.file), first.seed, bugs)
                ),
                None => println!(
                    "bug {} NOT found by {} in {} seeds",
                    bugs.join("+"),
                    file,
                    outs.len()
                ),
            }
        }
        return;
    }
    let failures: Vec<&RunOutcome> = results.iter().filter(|o| !o.ok).collect();
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
            replay_command(std::path::Path::new(&o.file), o.seed, &[])
        );
    }
    if failures.len() > 20 {
        println!("... and {} more failing seeds", failures.len() - 20);
    }
    let total_wall: f64 = results.iter().map(|o| o.wall_ms).sum();
    println!(
        "{} seeds, {} passed, {} failed; {:.1} ms per seed on average",
        results.len(),
        results.len() - failures.len(),
        failures.len(),
        total_wall / results.len().max(1) as f64
    );
}
