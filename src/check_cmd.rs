//! `kzsim check`: judge recorded histories for linearizability (the kafka
//! model is handled by [`crate::check_kafka`]).
//!
//! Prints one verdict line per file (or one JSON object per line with
//! `--json`). Exit code: 0 when every file is linearizable, 1 when some file
//! is not, 2 when some file is unknown (timed out) or unreadable; 2 wins over
//! 1, since an unreadable file may hide anything.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use kzsim_sim::check::{
    check_with, explain::describe, html, CheckError, CheckOptions, Format, ModelKind, Report,
    Verdict,
};
use serde_json::{json, Value};

/// Arguments of `kzsim check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Sequential model: register, cas-register, kv, zk (ZooKeeper's promise:
    /// session-consistent reads unless after sync; split per top-level
    /// znode as the sweep does), zk-strict, log; or kafka (Jepsen's queue
    /// anomalies, not linearizability; jsonl or edn only); or zk-cas-register,
    /// zk-counter, zk-lock, zk-election, zk-config, zk-naming (the sweep's
    /// checks of that ZooKeeper workload's history, from `kzsim replay
    /// --history`).
    #[arg(long)]
    pub model: String,
    /// Input format: jsonl, porcupine-etcd, porcupine-kv, edn (default:
    /// guessed from each file's first line).
    #[arg(long)]
    pub format: Option<String>,
    /// Initial value of register models, as JSON (plain text is a string);
    /// default nil, i.e. absent.
    #[arg(long)]
    pub init: Option<String>,
    /// Give up on a file after this many seconds (verdict unknown).
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
    /// Write a text and an HTML explanation of each violation here.
    #[arg(long)]
    pub explain: Option<PathBuf>,
    /// Print one JSON object per file instead of a line of text.
    #[arg(long)]
    pub json: bool,
    /// History files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// What happened to one file.
enum Outcome {
    Checked(Report, Vec<kzsim_sim::history::Operation>, Vec<usize>),
    Failed(CheckError),
}

fn check_file(
    path: &Path,
    model: ModelKind,
    format: Option<Format>,
    init: &Value,
    opts: &CheckOptions,
) -> anyhow::Result<Outcome> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let format = format.unwrap_or_else(|| Format::sniff(&text));
    let parsed = match format.parse(&text) {
        Ok(p) => p,
        Err(e) => return Ok(Outcome::Failed(e)),
    };
    let ops = match parsed.operations() {
        Ok(o) => o,
        Err(e) => return Ok(Outcome::Failed(e)),
    };
    Ok(match check_with(model, init, &ops, &parsed.lines, opts) {
        Ok(r) => Outcome::Checked(r, ops, parsed.lines),
        Err(e) => Outcome::Failed(e),
    })
}

/// The name of each file's explanation (`<name>.txt`, `<name>.html`): its
/// file name, or, when two inputs share a file name, its whole path with
/// separators replaced, so that no explanation overwrites another.
fn explanation_names(files: &[PathBuf]) -> Vec<String> {
    let base = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "history".into())
    };
    let bases: Vec<String> = files.iter().map(|p| base(p)).collect();
    let mut names: Vec<String> = files
        .iter()
        .zip(&bases)
        .map(|(p, b)| {
            if bases.iter().filter(|o| *o == b).count() == 1 {
                return b.clone();
            }
            let full: String = p
                .to_string_lossy()
                .trim_start_matches(['/', '.'])
                .chars()
                .map(|c| {
                    if matches!(c, '/' | '\\' | ':') {
                        '_'
                    } else {
                        c
                    }
                })
                .collect();
            if full.is_empty() {
                b.clone()
            } else {
                full
            }
        })
        .collect();
    // The same file given twice, or paths that flatten alike: number them.
    for i in 0..names.len() {
        let n = names[..i].iter().filter(|o| **o == names[i]).count();
        if n > 0 {
            names[i] = format!("{}-{}", names[i], n + 1);
        }
    }
    names
}

fn write_explanation(
    dir: &Path,
    path: &Path,
    name: &str,
    report: &Report,
    ops: &[kzsim_sim::history::Operation],
    lines: &[usize],
) -> anyhow::Result<Option<PathBuf>> {
    let Some(ex) = &report.explanation else {
        return Ok(None);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let text_path = dir.join(format!("{name}.txt"));
    std::fs::write(&text_path, ex.text(ops, Some(lines)))
        .with_context(|| format!("writing {}", text_path.display()))?;
    let html_path = dir.join(format!("{name}.html"));
    let page = html::render(&path.display().to_string(), ops, ex, Some(lines));
    std::fs::write(&html_path, page).with_context(|| format!("writing {}", html_path.display()))?;
    Ok(Some(html_path))
}

/// Runs the command; returns the exit code.
pub fn run(args: CheckArgs) -> anyhow::Result<u8> {
    if args.model == "kafka" {
        return crate::check_kafka::run(&args);
    }
    if let Some(kind) = crate::check_zk::workload(&args.model) {
        return crate::check_zk::run(&args, kind);
    }
    let model: ModelKind = args.model.parse()?;
    let format: Option<Format> = args.format.as_deref().map(str::parse).transpose()?;
    let init = match &args.init {
        None => Value::Null,
        Some(s) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
    };
    anyhow::ensure!(
        args.init.is_none() || matches!(model, ModelKind::Register | ModelKind::CasRegister),
        "--init applies to the register and cas-register models only"
    );
    anyhow::ensure!(
        args.timeout.is_finite() && args.timeout > 0.0,
        "--timeout must be a positive number of seconds"
    );
    let opts = CheckOptions {
        timeout: Some(Duration::from_secs_f64(args.timeout.min(1e9))),
        ..CheckOptions::default()
    };
    let names = explanation_names(&args.files);
    let mut code = 0u8;
    for (path, name) in args.files.iter().zip(&names) {
        let start = Instant::now();
        let outcome = match check_file(path, model, format, &init, &opts) {
            Ok(o) => o,
            Err(e) => Outcome::Failed(CheckError::Usage(format!("{e:#}"))),
        };
        let millis = start.elapsed().as_secs_f64() * 1e3;
        let file = path.display().to_string();
        match outcome {
            Outcome::Failed(e) => {
                code = 2;
                if args.json {
                    let j = json!({"file": file, "verdict": "error", "line": e.line(), "error": e.to_string()});
                    println!("{j}");
                } else {
                    println!("{file}: ERROR: {e}");
                }
            }
            Outcome::Checked(report, ops, lines) => {
                code = code.max(match report.verdict {
                    Verdict::Linearizable => 0,
                    Verdict::NotLinearizable => 1,
                    Verdict::Unknown => 2,
                });
                let page = match &args.explain {
                    Some(dir) => write_explanation(dir, path, name, &report, &ops, &lines)?,
                    None => None,
                };
                if args.json {
                    println!(
                        "{}",
                        json_line(&file, &report, &ops, &lines, millis, page.as_deref())
                    );
                } else {
                    println!(
                        "{}",
                        text_line(&file, &report, &ops, &lines, millis, page.as_deref())
                    );
                }
            }
        }
    }
    Ok(code)
}

fn text_line(
    file: &str,
    r: &Report,
    ops: &[kzsim_sim::history::Operation],
    lines: &[usize],
    millis: f64,
    page: Option<&Path>,
) -> String {
    let stats = format!("{} ops, {} partitions, {millis:.1} ms", r.ops, r.partitions);
    match (&r.verdict, &r.explanation) {
        (Verdict::NotLinearizable, Some(ex)) => {
            let key = ex
                .partition
                .as_deref()
                .map(|k| format!(" [key {k}]"))
                .unwrap_or_default();
            let page = page
                .map(|p| format!("; see {}", p.display()))
                .unwrap_or_default();
            format!(
                "{file}: NOT LINEARIZABLE{key}: {} cannot be placed after a {}-op linearizable prefix, {} concurrent ({stats}){page}",
                describe(ops, ex.blocked, Some(lines)),
                ex.prefix.len(),
                ex.concurrent.len()
            )
        }
        (Verdict::Unknown, _) => format!(
            "{file}: UNKNOWN: gave up at the deadline on {} of {} partitions ({stats})",
            r.timed_out, r.partitions
        ),
        (Verdict::NotLinearizable, None) => format!("{file}: NOT LINEARIZABLE ({stats})"),
        (Verdict::Linearizable, _) => format!("{file}: linearizable ({stats})"),
    }
}

fn json_line(
    file: &str,
    r: &Report,
    ops: &[kzsim_sim::history::Operation],
    lines: &[usize],
    millis: f64,
    page: Option<&Path>,
) -> Value {
    let explanation = r.explanation.as_ref().map(|ex| {
        json!({
            "partition": ex.partition,
            "prefix": ex.prefix,
            "blocked": ex.blocked,
            "blocked_line": lines.get(ops[ex.blocked].invoke_index),
            "concurrent": ex.concurrent,
            "text": ex.text(ops, Some(lines)),
            "html": page.map(|p| p.display().to_string()),
        })
    });
    json!({
        "file": file,
        "verdict": r.verdict.as_str(),
        "ops": r.ops,
        "partitions": r.partitions,
        "timed_out_partitions": r.timed_out,
        "millis": millis,
        "explanation": explanation,
    })
}
