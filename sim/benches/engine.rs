//! Engine speed: messages delivered per second on a message-heavy protocol,
//! against the ceiling of a bare loop stepping the same nodes with no world
//! models (no latency, no connections, no trace, no queue ordering).
//!
//! Run: `cargo bench -p kzsim-sim --bench engine`.

#[path = "common/flood.rs"]
mod flood;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use flood::{bare_run, engine_run, scenario};

fn bench(c: &mut Criterion) {
    let s = scenario(1_000);
    let messages = engine_run(&s);
    let mut g = c.benchmark_group("flood");
    g.throughput(Throughput::Elements(messages));
    g.sample_size(10);
    g.bench_function("engine", |b| b.iter(|| engine_run(&s)));
    g.bench_function("bare-loop", |b| b.iter(|| bare_run(messages)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
