//! The `kzsim` command line: run, replay, list, check.
//!
//! With no arguments it runs the default sweep: every scenario in
//! `scenarios/` over a small seed range, printing a summary.

mod check_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Deterministic simulation testbed for Kafka- and ZooKeeper-style systems.
#[derive(Parser, Debug)]
#[command(name = "kzsim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check histories for linearizability (or a system's invariants).
    Check(check_cmd::CheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Check(args)) => check_cmd::run(args),
        None => Ok(0),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
