//! `kzsim list`: scenarios, planted bugs and fault kinds.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use kzsim_sim::nemesis::FaultKind;
use kzsim_sim::scenario::{scenario_files, Scenario};

use crate::scenarios::DEFAULT_DIR;

/// Arguments of `kzsim list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Directory of scenarios to list.
    #[arg(long, default_value = DEFAULT_DIR)]
    pub dir: PathBuf,
}

/// Runs the command; returns the exit code.
pub fn run(args: ListArgs) -> Result<u8> {
    if !args.dir.is_dir() {
        anyhow::bail!(
            "{}: not a directory of scenarios (run from the repository root, or pass --dir)",
            args.dir.display()
        );
    }
    let files = scenario_files(&args.dir)?;
    let scenarios = files
        .iter()
        .map(|f| Scenario::load(f).map_err(anyhow::Error::from))
        .collect::<Result<Vec<_>>>()?;
    let bugs = kzsim_model::bugs::all_bugs();
    if args.json {
        let v = json!({
            "scenarios": scenarios.iter().map(|s| json!({
                "name": s.name,
                "file": s.file.display().to_string(),
                "description": s.spec.description,
            })).collect::<Vec<_>>(),
            "bugs": bugs.iter().map(|b| json!({
                "name": b.name,
                "component": b.component,
                "breaks": b.breaks,
                "anomaly": b.anomaly,
                "scenario": b.scenario,
            })).collect::<Vec<_>>(),
            "faults": FaultKind::all().iter().map(|(_, name, desc)| json!({
                "name": name,
                "description": desc,
            })).collect::<Vec<_>>(),
            "events": kzsim_model::EventKind::all().iter().map(|(_, name, desc)| json!({
                "name": name,
                "description": desc,
            })).collect::<Vec<_>>(),
            "buggify_sites": kzsim_model::probe::SITES.iter().map(|(name, desc)| json!({
                "name": name,
                "description": desc,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!("Scenarios ({}):", args.dir.display());
    for s in &scenarios {
        println!("  {:<28} {}", s.name, s.spec.description.trim());
    }
    println!("\nPlanted bugs:");
    for b in &bugs {
        println!(
            "  {:<34} [{}] {} (sought by {} as {})",
            b.name, b.component, b.breaks, b.scenario, b.anomaly
        );
    }
    println!("\nFault kinds:");
    for (_, name, desc) in FaultKind::all() {
        println!("  {:<20} {}", name, desc);
    }
    println!("\nProtocol events (faults.on, faults.on_random, --events):");
    for (_, name, desc) in kzsim_model::EventKind::all() {
        println!("  {:<20} {}", name, desc);
    }
    println!("\nBuggify sites (--buggify):");
    for (name, desc) in kzsim_model::probe::SITES {
        println!("  {:<28} {}", name, desc);
    }
    Ok(0)
}
