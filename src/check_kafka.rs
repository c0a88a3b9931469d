//! `kzsim check --model kafka`: Jepsen's Kafka queue anomalies.
//!
//! Prints, per file, a verdict line and then each anomaly by category with
//! its evidence (values, offsets, source lines of the operations that show
//! it), or one JSON object per file with `--json`. Exit code: 0 when no
//! file has an anomaly, 1 when some has, 2 when some file is unreadable or
//! malformed (2 wins).

use std::path::Path;

use anyhow::Context;
use kzsim_sim::check::{kafka, CheckError, Format};
use serde_json::{json, Value};

use crate::check_cmd::CheckArgs;

/// Anomalies printed per category in text output; the rest are counted.
const SHOWN_PER_KIND: usize = 20;

fn check_file(
    path: &Path,
    format: Option<Format>,
) -> Result<(kzsim_sim::check::Parsed, kafka::KafkaReport), CheckError> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))
        .map_err(|e| CheckError::Usage(format!("{e:#}")))?;
    let format = format.unwrap_or_else(|| match Format::sniff(&text) {
        Format::Jsonl => Format::Jsonl,
        _ => Format::Edn,
    });
    kafka::check_text(format, &text)
}

fn lines_of(a: &kafka::Anomaly, parsed: &kzsim_sim::check::Parsed) -> Vec<usize> {
    a.events.iter().map(|&e| parsed.line_of(e)).collect()
}

fn text(file: &str, parsed: &kzsim_sim::check::Parsed, r: &kafka::KafkaReport) -> String {
    if r.is_valid() {
        return format!("{file}: ok: no anomalies ({} queue ops)", r.ops);
    }
    let counts: Vec<String> = r.counts().iter().map(|(k, n)| format!("{k} {n}")).collect();
    let mut out = format!(
        "{file}: ANOMALIES: {} ({} queue ops)",
        counts.join(", "),
        r.ops
    );
    for (kind, n) in r.counts() {
        for a in r.of(kind).take(SHOWN_PER_KIND) {
            let lines: Vec<String> = lines_of(a, parsed).iter().map(usize::to_string).collect();
            out.push_str(&format!(
                "\n  {kind} [key {}]: {} (lines {})",
                a.key,
                a.detail,
                lines.join(", ")
            ));
        }
        if n > SHOWN_PER_KIND {
            out.push_str(&format!("\n  {kind}: ... and {} more", n - SHOWN_PER_KIND));
        }
    }
    out
}

fn json_line(file: &str, parsed: &kzsim_sim::check::Parsed, r: &kafka::KafkaReport) -> Value {
    let counts: serde_json::Map<String, Value> = r
        .counts()
        .iter()
        .map(|(k, n)| (k.to_string(), json!(n)))
        .collect();
    let anomalies: Vec<Value> = r
        .anomalies
        .iter()
        .map(|a| {
            json!({
                "kind": a.kind.as_str(),
                "key": a.key,
                "values": a.values,
                "offsets": a.offsets,
                "events": a.events,
                "lines": lines_of(a, parsed),
                "detail": a.detail,
            })
        })
        .collect();
    json!({
        "file": file,
        "verdict": if r.is_valid() { "valid" } else { "anomalies" },
        "ops": r.ops,
        "counts": counts,
        "anomalies": anomalies,
    })
}

/// Runs the command for the kafka model; returns the exit code.
pub fn run(args: &CheckArgs) -> anyhow::Result<u8> {
    let format: Option<Format> = args.format.as_deref().map(str::parse).transpose()?;
    anyhow::ensure!(
        matches!(format, None | Some(Format::Jsonl | Format::Edn)),
        "the kafka model reads jsonl or edn histories"
    );
    anyhow::ensure!(
        args.init.is_none() && args.explain.is_none(),
        "--init and --explain do not apply to the kafka model"
    );
    let mut code = 0u8;
    for path in &args.files {
        let file = path.display().to_string();
        match check_file(path, format) {
            Err(e) => {
                code = 2;
                if args.json {
                    let j = json!({"file": file, "verdict": "error", "line": e.line(), "error": e.to_string()});
                    println!("{j}");
                } else {
                    println!("{file}: ERROR: {e}");
                }
            }
            Ok((parsed, report)) => {
                if !report.is_valid() {
                    code = code.max(1);
                }
                if args.json {
                    println!("{}", json_line(&file, &parsed, &report));
                } else {
                    println!("{}", text(&file, &parsed, &report));
                }
            }
        }
    }
    Ok(code)
}
