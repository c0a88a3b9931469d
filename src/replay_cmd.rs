//! `kzsim replay`: re-run one seed with the full event log.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use kzsim_sim::runner::{bug_anomalies, run_seed_full, RunOptions, Verdict};
use kzsim_sim::scenario::Scenario;

use crate::scenarios::{validate_bugs, validate_bugs_for};

/// Arguments of `kzsim replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// The seed to replay.
    #[arg(long)]
    pub seed: u64,
    /// Switch on a planted bug (repeatable).
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
    /// Write the recorded history (JSON lines) to this file.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Run a Kafka scenario that does not pin a mode in this one (the
    /// `@kraft` rows of a sweep replay with `--mode kraft`).
    #[arg(long, value_enum)]
    pub mode: Option<crate::scenarios::ModeChoice>,
    /// Log level: info (faults, starts, halts) or debug (every input and effect).
    #[arg(long, default_value = "debug")]
    pub level: tracing::Level,
    /// Event-triggered faults and buggify, as in the run being replayed.
    #[command(flatten)]
    pub modes: crate::fault_modes::FaultModes,
}

/// Runs the command; returns the exit code: 0 when the seed passes (or,
/// with `--bug`, shows the bug's anomaly), 1 otherwise. The output ends
/// with the seed's violations, after its verdict.
pub fn run(args: ReplayArgs) -> Result<u8> {
    validate_bugs(&args.bugs)?;
    let scenario = Scenario::load(&args.scenario)?;
    let scenario = match args.mode {
        None => scenario,
        Some(crate::scenarios::ModeChoice::Both) => {
            anyhow::bail!("--mode both: a replay runs one mode (zookeeper or kraft)")
        }
        Some(m) => {
            let wanted = if m == crate::scenarios::ModeChoice::Kraft {
                "kraft"
            } else {
                "zookeeper"
            };
            match crate::scenarios::mode_of(&scenario) {
                None => anyhow::bail!(
                    "--mode: {} is not a Kafka scenario",
                    args.scenario.display()
                ),
                Some(_) if scenario.spec.cluster.config.contains_key("mode") => {
                    if crate::scenarios::mode_of(&scenario) != Some(wanted) {
                        anyhow::bail!(
                            "--mode {wanted}: {} pins cluster.config.mode",
                            args.scenario.display()
                        );
                    }
                    scenario
                }
                Some(_) => scenario.in_mode(wanted)?,
            }
        }
    };
    let mut scenario = scenario;
    if let Some(note) = args.modes.apply(&mut scenario) {
        eprintln!("{note}");
    }
    validate_bugs_for(&args.bugs, &scenario)?;
    if let Some(path) = &args.history {
        // Fail before the run, not after it.
        std::fs::write(path, b"")
            .with_context(|| format!("--history {}: cannot write the file", path.display()))?;
    }
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(args.level)
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::io::stdout)
        .finish();
    let artifacts = tracing::subscriber::with_default(subscriber, || {
        run_seed_full(
            &scenario,
            args.seed,
            &RunOptions {
                bugs: args.bugs.clone(),
                check_determinism: false,
            },
        )
    });
    if let Some(path) = &args.history {
        std::fs::write(path, artifacts.history.to_jsonl())
            .with_context(|| format!("{}: cannot write history", path.display()))?;
    }
    let o = &artifacts.outcome;
    let meaning = match o.verdict {
        Verdict::Found => format!(
            " (bug {} shows as {})",
            args.bugs.join("+"),
            bug_anomalies(&args.bugs).join(" or ")
        ),
        Verdict::NotFound => format!(
            " (bug {} does not show as {})",
            args.bugs.join("+"),
            bug_anomalies(&args.bugs).join(" or ")
        ),
        Verdict::Pass => match &o.expected {
            Some(e) => format!(" (shows the declared anomaly {e})"),
            None => String::new(),
        },
        Verdict::Fail => String::new(),
    };
    println!(
        "scenario {} seed {}: {}{meaning} ({} events, {} messages, {} ops, {} faults, {} sim ms)",
        o.scenario,
        o.seed,
        o.verdict.word(),
        o.events,
        o.messages,
        o.ops,
        o.faults,
        o.sim_ms
    );
    println!("trace hash {}", o.trace_hash);
    if o.verdict == Verdict::Fail && o.violations.is_empty() {
        println!(
            "violation: the declared anomaly `{}` is not shown",
            o.expected.as_deref().unwrap_or("?")
        );
    }
    for v in &o.violations {
        println!("violation {}: {}", v.kind, v.detail);
    }
    Ok(u8::from(matches!(
        o.verdict,
        Verdict::Fail | Verdict::NotFound
    )))
}
