//! Runs the engine benchmark's flood protocol once, for profiling:
//! `valgrind --tool=callgrind target/release/examples/flood_profile engine [duration_ms]`
//! runs the engine for `duration_ms` of simulated time (default 200) and
//! prints the messages delivered and the trace hash;
//! `flood_profile bare [messages]` steps the bare loop for that many messages.

#[path = "../benches/common/flood.rs"]
mod flood;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "engine".into());
    let n: Option<u64> = args.next().map(|s| s.parse().expect("a number"));
    match which.as_str() {
        "engine" => {
            let s = flood::scenario(n.unwrap_or(200));
            let (messages, hash) = flood::engine_run_hash(&s);
            println!("engine: {messages} messages, trace hash {hash}");
        }
        "bare" => {
            println!("bare: {} messages", flood::bare_run(n.unwrap_or(100_000)));
        }
        other => panic!("unknown mode {other}: engine or bare"),
    }
}
