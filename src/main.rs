//! The `kzsim` command line: run, replay, list, check.
//!
//! With no arguments it runs the default sweep: every scenario in
//! `scenarios/` over a small seed range, printing a summary.

mod check_cmd;
mod check_kafka;
mod check_zk;
mod explore_cmd;
mod fault_modes;
mod list_cmd;
mod replay_cmd;
mod run_cmd;
mod scenarios;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Deterministic simulation testbed for Kafka- and ZooKeeper-style systems.
///
/// With no command, runs the default sweep: every scenario in scenarios/
/// over seeds 0..20, printing a summary and writing
/// target/kzsim-report/index.html.
#[derive(Parser, Debug)]
#[command(name = "kzsim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run scenarios over seeds and check every run.
    Run(run_cmd::RunArgs),
    /// Re-run one seed with the full event log.
    Replay(replay_cmd::ReplayArgs),
    /// List scenarios, planted bugs and fault kinds.
    List(list_cmd::ListArgs),
    /// Check histories for linearizability, or Kafka queue histories for
    /// Jepsen's no-loss anomalies (`--model kafka`).
    Check(check_cmd::CheckArgs),
}

/// Lets `kzsim replay ... | head` end quietly instead of panicking on a
/// closed pipe.
fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE at start-up,
    // before any thread exists, has no memory-safety consequences.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    default_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Run(args)) => run_cmd::run(args),
        Some(Command::Replay(args)) => replay_cmd::run(args),
        Some(Command::List(args)) => list_cmd::run(args),
        Some(Command::Check(args)) => check_cmd::run(args),
        None => run_cmd::default_sweep(),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
