//! `kzsim check --model zk-cas-register | zk-counter | zk-lock |
//! zk-election | zk-config | zk-naming`: the checks the sweep makes of a
//! ZooKeeper workload's history (`kzsim replay --history` writes it), short
//! of those that need the servers' final trees or the run's quiet period
//! (`election-no-leader`, `config-converge`). The cas-register workload's
//! linearizability is also `--model zk`; the counter and recipe workloads
//! are judged by their own checks (the recipes' sessions expire, which no
//! history operation records, so the `zk` model cannot judge them).
//!
//! Prints, per file, a verdict line and each anomaly with the source lines
//! of the events that show it, or one JSON object per file with `--json`.
//! Exit code: 0 when no file has an anomaly, 1 when some has, 2 when some
//! file is unreadable or malformed (2 wins).

use std::path::Path;

use anyhow::Context;
use kzsim_sim::check::{CheckError, Format, Parsed};
use kzsim_sim::outcome::Violation;
use kzsim_sim::system::zk::{history_checks, CheckBudget};
use kzsim_sim::workload::zk::ZkWorkloadKind;
use serde_json::json;

use crate::check_cmd::CheckArgs;

/// The workload a `zk-<workload>` model name stands for.
pub fn workload(model: &str) -> Option<ZkWorkloadKind> {
    match model {
        "zk-cas-register" => Some(ZkWorkloadKind::CasRegister),
        "zk-counter" => Some(ZkWorkloadKind::Counter),
        "zk-lock" => Some(ZkWorkloadKind::Lock),
        "zk-election" => Some(ZkWorkloadKind::Election),
        "zk-config" => Some(ZkWorkloadKind::Config),
        "zk-naming" => Some(ZkWorkloadKind::Naming),
        _ => None,
    }
}

fn check_file(
    path: &Path,
    format: Option<Format>,
    kind: ZkWorkloadKind,
    timeout_s: u64,
) -> Result<(Parsed, usize, Vec<Violation>), CheckError> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))
        .map_err(|e| CheckError::Usage(format!("{e:#}")))?;
    let format = format.unwrap_or_else(|| Format::sniff(&text));
    if format != Format::Jsonl {
        return Err(CheckError::Usage(
            "the zk workload models read kzsim JSON lines (the meta of each event carries zxids and sessions)".into(),
        ));
    }
    let parsed = format.parse(&text)?;
    let ops = parsed.operations()?;
    let violations = history_checks(kind, &parsed.history, &ops, CheckBudget::Seconds(timeout_s));
    Ok((parsed, ops.len(), violations))
}

/// Runs the command for a zk workload model; returns the exit code.
pub fn run(args: &CheckArgs, kind: ZkWorkloadKind) -> anyhow::Result<u8> {
    let format: Option<Format> = args.format.as_deref().map(str::parse).transpose()?;
    anyhow::ensure!(
        args.init.is_none() && args.explain.is_none(),
        "--init and --explain do not apply to the {} model",
        args.model
    );
    anyhow::ensure!(
        args.timeout.is_finite() && args.timeout >= 1.0,
        "--timeout must be at least 1 second for the {} model",
        args.model
    );
    let timeout_s = args.timeout.min(1e9) as u64;
    let mut code = 0u8;
    for path in &args.files {
        let file = path.display().to_string();
        match check_file(path, format, kind, timeout_s) {
            Err(e) => {
                code = 2;
                if args.json {
                    let j = json!({"file": file, "verdict": "error", "line": e.line(), "error": e.to_string()});
                    println!("{j}");
                } else {
                    println!("{file}: ERROR: {e}");
                }
            }
            Ok((parsed, ops, violations)) => {
                let lines = |v: &Violation| -> Vec<usize> {
                    v.events.iter().map(|&e| parsed.line_of(e)).collect()
                };
                // An undecided search is no verdict.
                let unknown = violations.iter().any(|v| v.kind == "check-unknown");
                code = code.max(if unknown {
                    2
                } else {
                    u8::from(!violations.is_empty())
                });
                if args.json {
                    let anomalies: Vec<_> = violations
                        .iter()
                        .map(|v| json!({"kind": v.kind, "detail": v.detail, "events": v.events, "lines": lines(v)}))
                        .collect();
                    let verdict = if violations.is_empty() {
                        "valid"
                    } else {
                        "anomalies"
                    };
                    println!(
                        "{}",
                        json!({"file": file, "verdict": verdict, "ops": ops, "anomalies": anomalies})
                    );
                } else if violations.is_empty() {
                    println!("{file}: ok: no anomalies ({ops} ops)");
                } else {
                    println!("{file}: ANOMALIES: {} ({ops} ops)", violations.len());
                    for v in &violations {
                        let ls: Vec<String> = lines(v).iter().map(usize::to_string).collect();
                        let at = if ls.is_empty() {
                            String::new()
                        } else {
                            format!(" (lines {})", ls.join(", "))
                        };
                        println!("  {}: {}{at}", v.kind, v.detail.replace('\n', "\n    "));
                    }
                }
            }
        }
    }
    Ok(code)
}
