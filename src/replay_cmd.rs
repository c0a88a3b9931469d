//! `kzsim replay`: re-run one seed with the full event log.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use kzsim_sim::runner::{run_seed_full, RunOptions};
use kzsim_sim::scenario::Scenario;

use crate::scenarios::validate_bugs;

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
    /// Log level: info (faults, starts, halts) or debug (every input and effect).
    #[arg(long, default_value = "debug")]
    pub level: tracing::Level,
}

/// Runs the command; returns the exit code.
pub fn run(args: ReplayArgs) -> Result<u8> {
    validate_bugs(&args.bugs)?;
    let scenario = Scenario::load(&args.scenario)?;
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
    for v in &o.violations {
        println!("violation {}: {}", v.kind, v.detail);
    }
    println!(
        "scenario {} seed {}: {} ({} events, {} messages, {} ops, {} faults, {} sim ms)",
        o.scenario,
        o.seed,
        if o.ok { "ok" } else { "FAIL" },
        o.events,
        o.messages,
        o.ops,
        o.faults,
        o.sim_ms
    );
    println!("trace hash {}", o.trace_hash);
    Ok(u8::from(!o.ok))
}
