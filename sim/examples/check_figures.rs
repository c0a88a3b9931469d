//! Prints the checker's timings on the shared histories and on generated
//! ones, next to todc-utils and stateright: the figures of the issue note.
//! Run with `cargo run --release -p kzsim-sim --example check_figures`.
//! `KZSIM_SR_LIMIT_MS` sets stateright's per-history limit (default 1000).

#[path = "../benches/common/peers.rs"]
mod peers;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kzsim_sim::check::gen::{cas_register_history, GenSpec};
use kzsim_sim::check::{check_with, CheckOptions, Format, ModelKind, Verdict};
use kzsim_sim::history::Operation;
use serde_json::Value;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/histories/porcupine"
);

fn load(path: &Path, format: Format) -> (Vec<Operation>, Vec<usize>) {
    let text = std::fs::read_to_string(path).expect("readable");
    let parsed = format.parse(&text).expect("parses");
    (parsed.operations().expect("pairs"), parsed.lines)
}

/// Best of `reps` timings of `f`, in milliseconds, and its last result.
fn best<T>(reps: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut out = None;
    for _ in 0..reps {
        let t = Instant::now();
        out = Some(f());
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    (best, out.expect("reps > 0"))
}

fn verdict(kind: ModelKind, h: &(Vec<Operation>, Vec<usize>)) -> Verdict {
    check_with(kind, &Value::Null, &h.0, &h.1, &CheckOptions::default())
        .expect("checks")
        .verdict
}

fn main() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(DIR).join("jepsen"))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0));
    files.sort();
    let expected: std::collections::HashMap<String, bool> =
        std::fs::read_to_string(Path::new(DIR).join("verdicts.csv"))
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|l| {
                let c: Vec<&str> = l.split(',').collect();
                Some((c.first()?.to_string(), *c.get(2)? == "linearizable"))
            })
            .collect();
    let exp = |f: &Path| expected[&format!("jepsen/{}", f.file_name().unwrap().to_string_lossy())];

    if !files.is_empty() {
        let etcd: Vec<_> = files
            .iter()
            .map(|f| load(f, Format::PorcupineEtcd))
            .collect();
        let mut per = Vec::new();
        let mut right = 0;
        for (f, h) in files.iter().zip(&etcd) {
            let (ms, v) = best(5, || verdict(ModelKind::CasRegister, h));
            right += usize::from((v == Verdict::Linearizable) == exp(f));
            per.push((ms, f.file_name().unwrap().to_string_lossy().to_string()));
        }
        let (total, _) = best(10, || {
            etcd.iter().for_each(|h| {
                verdict(ModelKind::CasRegister, h);
            })
        });
        per.sort_by(|a, b| b.0.total_cmp(&a.0));
        println!("kzsim etcd: {} files, {right} verdicts right, total {total:.1} ms, slowest {} {:.2} ms",
            files.len(), per[0].1, per[0].0);
        if let Some(e2) = per.iter().find(|p| p.1 == "etcd_002.log") {
            println!("kzsim etcd_002: {:.2} ms", e2.0);
        }

        for name in [
            "c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad",
        ] {
            let h = load(
                &Path::new(DIR).join(format!("kv/{name}.txt")),
                Format::PorcupineKv,
            );
            let (ms, v) = best(5, || verdict(ModelKind::Kv, &h));
            println!(
                "kzsim kv {name}: {v:?} {ms:.2} ms ({} ops, split per key)",
                h.0.len()
            );
        }

        let todc: Vec<_> = files.iter().map(|f| peers::todc_history(f)).collect();
        let mut todc_total = 0.0;
        let mut todc_right = 0;
        let mut todc_002 = 0.0;
        for (f, h) in files.iter().zip(&todc) {
            let h = h.clone();
            let t = Instant::now();
            let v = peers::todc_check(h);
            let ms = t.elapsed().as_secs_f64() * 1e3;
            todc_total += ms;
            todc_right += usize::from(v == exp(f));
            if f.ends_with("etcd_002.log") {
                todc_002 = ms;
            }
        }
        println!("todc-utils etcd: total {todc_total:.1} ms, etcd_002 {todc_002:.1} ms, {todc_right} verdicts right");

        let limit = std::env::var("KZSIM_SR_LIMIT_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1000u64);
        let (mut done, mut right, mut spent) = (0, 0, 0.0);
        for f in &files {
            let events = peers::stateright_events(&std::fs::read_to_string(f).unwrap());
            let t = Instant::now();
            let v = peers::stateright_check(&events, Duration::from_millis(limit));
            let ms = t.elapsed().as_secs_f64() * 1e3;
            if let Some(v) = v {
                done += 1;
                spent += ms;
                right += usize::from(v == exp(f));
            }
        }
        println!("stateright etcd: {done} of {} finished within {limit} ms each ({right} right), {spent:.1} ms spent on those",
            files.len());
    } else {
        println!("shared histories absent: only generated figures");
    }

    for (n, processes) in [(10_000, 30), (100_000, 30), (100_000, 300)] {
        let h = cas_register_history(GenSpec {
            ops: n,
            keys: 100,
            processes,
            seed: 1,
        });
        let ops = h.operations().expect("pairs");
        let lines: Vec<usize> = (1..=h.events.len()).collect();
        let hist = (ops, lines);
        let (ms, v) = best(3, || verdict(ModelKind::CasRegister, &hist));
        println!("kzsim generated {n} ops over 100 keys, {processes} processes: {v:?} {ms:.1} ms");
    }
}
