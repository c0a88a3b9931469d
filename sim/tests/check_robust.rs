//! Bad input never panics: random and mutated texts go through every
//! reader and, when they parse, through every model.

use std::time::Duration;

use kzsim_sim::check::{check_text, CheckOptions, Format, ModelKind};
use proptest::prelude::*;
use serde_json::Value;

const SAMPLES: [&str; 4] = [
    "INFO jepsen.util - 0\t:invoke\t:cas\t[1 2]\nINFO jepsen.util - 0\t:ok\t:cas\t[1 2]\nINFO jepsen.util - 1 :invoke :read nil\nINFO jepsen.util - 1 :ok :read 2\n",
    "{:process 1, :type :invoke, :f :append, :key \"0\", :value \"x 1 0 y\"}\n{:process 1, :type :ok, :f :append, :key \"0\", :value \"x 1 0 y\"}\n",
    "[{:process 0 :type :invoke :f :write :value 1}\n{:process 0 :type :ok :f :write :value 1} ; c\n{:process :nemesis :type :info :f :start}]\n",
    "{\"process\":1,\"type\":\"invoke\",\"f\":\"create\",\"key\":\"/a\",\"value\":{\"data\":\"x\",\"sequential\":true}}\n{\"process\":1,\"type\":\"ok\",\"f\":\"create\",\"key\":\"/a\",\"value\":\"/a0000000000\"}\n{\"process\":2,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"/a\",\"value\":[0,2]}\n",
];

const FORMATS: [Format; 4] = [
    Format::Jsonl,
    Format::PorcupineEtcd,
    Format::PorcupineKv,
    Format::Edn,
];
const MODELS: [ModelKind; 5] = [
    ModelKind::Register,
    ModelKind::CasRegister,
    ModelKind::Kv,
    ModelKind::Zk,
    ModelKind::Log,
];

fn run_all(text: &str) {
    let opts = CheckOptions {
        timeout: Some(Duration::from_millis(50)),
        ..CheckOptions::default()
    };
    for format in FORMATS.into_iter().chain([Format::sniff(text)]) {
        for model in MODELS {
            let _ = check_text(model, &Value::Null, format, text, &opts);
        }
    }
}

fn mutate(text: &str, edits: &[(usize, u8, char)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for &(pos, what, c) in edits {
        if chars.is_empty() {
            chars.push(c);
            continue;
        }
        let i = pos % chars.len();
        match what % 3 {
            0 => chars[i] = c,
            1 => {
                chars.remove(i);
            }
            _ => chars.insert(i, c),
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        run_all(&text);
    }

    #[test]
    fn mutated_histories_never_panic(
        sample in 0..SAMPLES.len(),
        edits in prop::collection::vec(
            (0..10_000usize, 0..3u8, prop::sample::select(vec!['[', ']', '{', '}', '"', ':', ' ', '\n', '1', '-', ';', '#', '\\', 'x', 'é'])),
            1..6,
        ),
    ) {
        run_all(&mutate(SAMPLES[sample], &edits));
    }
}
