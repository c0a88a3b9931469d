//! Criterion benches of the linearizability checker, with todc-utils and
//! stateright side by side on the same etcd histories.
//!
//! Parsing is excluded everywhere (as in Porcupine's figures). The shared
//! histories are read from `../shared/histories`; without them only the
//! generated benches run.

#[path = "common/peers.rs"]
mod peers;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use kzsim_sim::check::gen::{cas_register_history, GenSpec};
use kzsim_sim::check::{check_with, CheckOptions, Format, ModelKind};
use kzsim_sim::history::Operation;
use serde_json::Value;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/histories/porcupine"
);

/// Per-history limit for stateright, which cannot finish some histories.
const STATERIGHT_LIMIT: Duration = Duration::from_millis(20);

fn etcd_files() -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(Path::new(DIR).join("jepsen")) else {
        eprintln!("shared histories absent: skipping etcd and kv benches");
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .collect();
    files.sort();
    files
}

fn load(path: &Path, format: Format) -> (Vec<Operation>, Vec<usize>) {
    let text = std::fs::read_to_string(path).expect("readable");
    let parsed = format.parse(&text).expect("parses");
    (parsed.operations().expect("pairs"), parsed.lines)
}

fn check(kind: ModelKind, h: &(Vec<Operation>, Vec<usize>)) {
    let r = check_with(kind, &Value::Null, &h.0, &h.1, &CheckOptions::default()).expect("checks");
    std::hint::black_box(r.verdict);
}

fn benches(c: &mut Criterion) {
    let files = etcd_files();
    let etcd: Vec<_> = files
        .iter()
        .map(|f| load(f, Format::PorcupineEtcd))
        .collect();
    if !etcd.is_empty() {
        // The slowest history for kzsim, found once.
        let slowest = (0..etcd.len())
            .max_by_key(|&i| {
                let t = Instant::now();
                check(ModelKind::CasRegister, &etcd[i]);
                t.elapsed()
            })
            .unwrap_or(0);
        let mut g = c.benchmark_group("etcd");
        g.sample_size(20);
        g.bench_function("kzsim/all-102", |b| {
            b.iter(|| etcd.iter().for_each(|h| check(ModelKind::CasRegister, h)))
        });
        let name = files[slowest]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        g.bench_function(format!("kzsim/slowest-{name}"), |b| {
            b.iter(|| check(ModelKind::CasRegister, &etcd[slowest]))
        });
        let todc: Vec<_> = files.iter().map(|f| peers::todc_history(f)).collect();
        g.sample_size(10);
        g.bench_function("todc-utils/all-102", |b| {
            b.iter_batched(
                || todc.clone(),
                |hs| {
                    hs.into_iter().for_each(|h| {
                        std::hint::black_box(peers::todc_check(h));
                    })
                },
                BatchSize::LargeInput,
            )
        });
        g.bench_function(format!("todc-utils/{name}"), |b| {
            b.iter_batched(
                || todc[slowest].clone(),
                peers::todc_check,
                BatchSize::SmallInput,
            )
        });
        let sr: Vec<_> = files
            .iter()
            .map(|f| peers::stateright_events(&std::fs::read_to_string(f).unwrap()))
            .collect();
        g.bench_function("stateright/all-102-limit-20ms", |b| {
            b.iter(|| {
                sr.iter().for_each(|e| {
                    std::hint::black_box(peers::stateright_check(e, STATERIGHT_LIMIT));
                })
            })
        });
        g.finish();

        let mut g = c.benchmark_group("kv-split-per-key");
        for name in [
            "c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad",
        ] {
            let h = load(
                &Path::new(DIR).join(format!("kv/{name}.txt")),
                Format::PorcupineKv,
            );
            g.bench_function(name, |b| b.iter(|| check(ModelKind::Kv, &h)));
        }
        g.finish();
    }

    let mut g = c.benchmark_group("generated-100-keys");
    g.sample_size(10);
    for n in [10_000, 100_000] {
        let h = cas_register_history(GenSpec {
            ops: n,
            keys: 100,
            processes: 30,
            seed: 1,
        });
        let ops = h.operations().expect("pairs");
        let lines: Vec<usize> = (1..=h.events.len()).collect();
        let hist = (ops, lines);
        g.bench_function(format!("{n}-ops"), |b| {
            b.iter(|| check(ModelKind::CasRegister, &hist))
        });
    }
    g.finish();
}

criterion_group!(check_benches, benches);
criterion_main!(check_benches);
