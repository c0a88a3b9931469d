//! `kzsim check` exit codes and outputs.

use std::path::PathBuf;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kzsim");
const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/histories/porcupine");

fn tmp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kzsim-cli-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn ev(p: u64, kind: &str, f: &str, value: &str) -> String {
    format!(
        "{{\"process\":{p},\"type\":\"{kind}\",\"f\":\"{f}\",\"key\":\"x\",\"value\":{value}}}\n"
    )
}

fn good() -> String {
    [
        ev(1, "invoke", "write", "1"),
        ev(1, "ok", "write", "1"),
        ev(2, "invoke", "read", "null"),
        ev(2, "ok", "read", "1"),
    ]
    .concat()
}

fn bad() -> String {
    [
        ev(1, "invoke", "write", "1"),
        ev(1, "ok", "write", "1"),
        ev(2, "invoke", "read", "null"),
        ev(2, "ok", "read", "2"),
    ]
    .concat()
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("check")
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn linearizable_exits_0() {
    let f = tmp("good.jsonl", &good());
    let (code, out, _) = run(&["--model", "register", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("linearizable"), "{out}");
    assert_eq!(out.lines().count(), 1);
}

#[test]
fn violation_exits_1_and_explains() {
    let g = tmp("good2.jsonl", &good());
    let b = tmp("bad.jsonl", &bad());
    let dir = std::env::temp_dir().join(format!("kzsim-cli-explain-{}", std::process::id()));
    let (code, out, _) = run(&[
        "--model",
        "cas-register",
        "--format",
        "jsonl",
        "--explain",
        dir.to_str().unwrap(),
        g.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(out.lines().count(), 2);
    assert!(out.contains("NOT LINEARIZABLE"), "{out}");
    let page = std::fs::read_to_string(dir.join("bad.jsonl.html")).unwrap();
    // Self-contained: inline SVG, nothing fetched.
    assert!(page.contains("<svg"));
    assert!(!page.contains("<script") && !page.contains("src=") && !page.contains("href="));
    let text = std::fs::read_to_string(dir.join("bad.jsonl.txt")).unwrap();
    assert!(text.contains("cannot be placed"), "{text}");
}

#[test]
fn initial_value_is_configurable() {
    let f = tmp(
        "init.jsonl",
        &[ev(2, "invoke", "read", "null"), ev(2, "ok", "read", "0")].concat(),
    );
    assert_eq!(run(&["--model", "register", f.to_str().unwrap()]).0, 1);
    assert_eq!(
        run(&["--model", "register", "--init", "0", f.to_str().unwrap()]).0,
        0
    );
}

#[test]
fn json_output() {
    let b = tmp("bad-json.jsonl", &bad());
    let (code, out, _) = run(&["--model", "register", "--json", b.to_str().unwrap()]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["verdict"], "not_linearizable");
    assert_eq!(v["explanation"]["blocked"], 1);
}

#[test]
fn unreadable_exits_2_naming_the_line() {
    let text = format!("{}{{\"process\":2,\"type\":\"ok\"", good());
    let f = tmp("broken.jsonl", &text);
    let g = tmp("good3.jsonl", &good());
    let (code, out, _) = run(&[
        "--model",
        "register",
        g.to_str().unwrap(),
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("broken.jsonl: ERROR: line 5"), "{out}");
    let (code, out, _) = run(&["--model", "register", "/nonexistent/history.jsonl"]);
    assert_eq!(code, 2, "{out}");
    let op = tmp(
        "badop.jsonl",
        &[ev(1, "invoke", "frob", "1"), ev(1, "ok", "frob", "1")].concat(),
    );
    let (code, out, _) = run(&["--model", "register", op.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(out.contains("line 1"), "{out}");
}

#[test]
fn usage_errors_exit_2() {
    let g = tmp("good4.jsonl", &good());
    assert_eq!(run(&["--model", "nope", g.to_str().unwrap()]).0, 2);
    assert_eq!(
        run(&["--model", "kv", "--format", "xml", g.to_str().unwrap()]).0,
        2
    );
    assert_eq!(run(&["--model", "kv"]).0, 2);
    assert_eq!(
        run(&["--model", "kv", "--init", "3", g.to_str().unwrap()]).0,
        2
    );
    assert_eq!(
        run(&["--model", "kv", "--timeout", "-1", g.to_str().unwrap()]).0,
        2
    );
}

#[test]
fn deadline_gives_unknown_exit_2() {
    let g = tmp("good5.jsonl", &good());
    let (code, out, _) = run(&[
        "--model",
        "register",
        "--timeout",
        "0.000000001",
        g.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("UNKNOWN"), "{out}");
}

#[test]
fn shared_histories_through_the_cli() {
    let etcd = format!("{SHARED}/jepsen/etcd_000.log");
    if !std::path::Path::new(&etcd).exists() {
        kzsim_sim::testkit::shared_data_missing(std::path::Path::new(&etcd));
        return;
    }
    assert_eq!(run(&["--model", "cas-register", &etcd]).0, 1);
    let ok = format!("{SHARED}/jepsen/etcd_002.log");
    assert_eq!(
        run(&["--model", "cas-register", "--format", "porcupine-etcd", &ok]).0,
        0
    );
    let kv = format!("{SHARED}/kv/c10-ok.txt");
    assert_eq!(run(&["--model", "kv", &kv]).0, 0);
    let kv_bad = format!("{SHARED}/kv/c10-bad.txt");
    assert_eq!(
        run(&["--model", "kv", "--format", "porcupine-kv", &kv_bad]).0,
        1
    );
}
