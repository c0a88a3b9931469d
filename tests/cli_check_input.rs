//! `kzsim check` reads every input honestly: an empty or malformed history
//! is an error (exit 2) naming the file and line, never a pass.

mod common;

use std::path::PathBuf;

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("kzsim-cli-input-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tmp(name: &str, text: &str) -> PathBuf {
    let p = dir().join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs `kzsim check` with `args`: exit code and stdout + stderr.
fn check(args: &[&str]) -> (i32, String) {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    let out = common::kzsim(&all);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn ev(p: u64, kind: &str, f: &str, value: &str) -> String {
    format!(
        "{{\"process\":{p},\"type\":\"{kind}\",\"f\":\"{f}\",\"key\":\"x\",\"value\":{value}}}\n"
    )
}

fn etcd(p: u64, kind: &str, f: &str, arg: &str) -> String {
    format!("INFO jepsen.util - {p}\t:{kind}\t:{f}\t{arg}\n")
}

fn edn(p: u64, kind: &str, f: &str, value: &str) -> String {
    format!("{{:process {p}, :type :{kind}, :f :{f}, :value {value}}}\n")
}

fn kv(p: u64, kind: &str, f: &str, value: &str) -> String {
    format!("{{:process {p}, :type :{kind}, :f :{f}, :key \"0\", :value {value}}}\n")
}

#[test]
fn empty_history_in_every_format_is_no_operations() {
    let cases: [(&str, &str, &[&str]); 9] = [
        ("empty.jsonl", "", &["--model", "register"]),
        (
            "blank.jsonl",
            "\n  \n",
            &["--model", "register", "--format", "jsonl"],
        ),
        ("empty.edn", "[]\n", &["--model", "cas-register"]),
        (
            "comment.edn",
            "; only a comment\n",
            &["--model", "cas-register", "--format", "edn"],
        ),
        (
            "nemesis.edn",
            "[{:process :nemesis, :type :info, :f :start, :value nil}]\n",
            &["--model", "cas-register"],
        ),
        (
            "nemesis.log",
            "INFO jepsen.util - :nemesis :info :start nil\n",
            &["--model", "cas-register"],
        ),
        (
            "empty.log",
            "",
            &["--model", "cas-register", "--format", "porcupine-etcd"],
        ),
        (
            "empty-kv.txt",
            "",
            &["--model", "kv", "--format", "porcupine-kv"],
        ),
        ("empty-queue.jsonl", "", &["--model", "kafka"]),
    ];
    for (name, text, args) in cases {
        let f = tmp(name, text);
        let mut a = args.to_vec();
        a.push(f.to_str().unwrap());
        let (code, out) = check(&a);
        assert_eq!(code, 2, "{name}: {out}");
        assert!(
            out.contains(&format!("{name}: ERROR: no operations")),
            "{name}: {out}"
        );
    }
}

#[test]
fn a_history_the_kafka_model_cannot_judge_is_an_error() {
    let f = tmp(
        "register-for-kafka.jsonl",
        &[ev(1, "invoke", "write", "1"), ev(1, "ok", "write", "1")].concat(),
    );
    let (code, out) = check(&["--model", "kafka", f.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no queue operations"), "{out}");
}

#[test]
fn second_invoke_without_completion_is_malformed_in_every_format() {
    let cases: [(&str, String, &str); 4] = [
        (
            "twice.jsonl",
            [
                ev(1, "invoke", "write", "1"),
                ev(2, "invoke", "read", "null"),
                ev(1, "invoke", "write", "2"),
            ]
            .concat(),
            "register",
        ),
        (
            "twice.log",
            [
                etcd(0, "invoke", "write", "1"),
                etcd(1, "invoke", "read", "nil"),
                etcd(0, "invoke", "read", "nil"),
            ]
            .concat(),
            "cas-register",
        ),
        (
            "twice.edn",
            format!(
                "[{}{}\n{}]",
                edn(0, "invoke", "write", "1"),
                edn(1, "invoke", "read", "nil"),
                edn(0, "invoke", "read", "nil")
            ),
            "cas-register",
        ),
        (
            "twice-kv.txt",
            [
                kv(0, "invoke", "put", "\"a\""),
                kv(1, "invoke", "get", "nil"),
                kv(0, "invoke", "get", "nil"),
            ]
            .concat(),
            "kv",
        ),
    ];
    for (name, text, model) in cases {
        let f = tmp(name, &text);
        let (code, out) = check(&["--model", model, f.to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {out}");
        // The EDN collection's third map is on line 4 (a blank line first).
        let line = if name.ends_with(".edn") { 4 } else { 3 };
        assert!(
            out.contains(&format!("{name}: ERROR: line {line}: process 0 invokes"))
                || out.contains(&format!("{name}: ERROR: line {line}: process 1 invokes")),
            "{name}: {out}"
        );
        assert!(out.contains("has not completed"), "{name}: {out}");
    }
}

#[test]
fn a_process_is_not_reused_after_info() {
    // Jepsen: after `info` the process has crashed; its thread goes on as
    // a new process. The same id invoking again is malformed.
    let f = tmp(
        "reused.log",
        &[
            etcd(0, "invoke", "write", "1"),
            etcd(0, "info", "write", ":timed-out"),
            etcd(0, "invoke", "read", "nil"),
            etcd(0, "ok", "read", "1"),
        ]
        .concat(),
    );
    let (code, out) = check(&["--model", "cas-register", f.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("reused.log: ERROR: line 3:"), "{out}");
    assert!(
        out.contains("after its `info` completion at line 2"),
        "{out}"
    );
    // A new id after the info is fine, and the info write may have happened.
    let f = tmp(
        "renewed.log",
        &[
            etcd(0, "invoke", "write", "1"),
            etcd(0, "info", "write", ":timed-out"),
            etcd(5, "invoke", "read", "nil"),
            etcd(5, "ok", "read", "1"),
        ]
        .concat(),
    );
    let (code, out) = check(&["--model", "cas-register", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn completion_without_invoke_or_of_another_function_is_malformed() {
    let cases: [(&str, String, &str, usize); 4] = [
        (
            "orphan.log",
            [
                etcd(0, "invoke", "read", "nil"),
                etcd(0, "ok", "read", "nil"),
                etcd(0, "ok", "read", "1"),
            ]
            .concat(),
            "without a pending invoke",
            3,
        ),
        (
            "orphan.edn",
            [edn(3, "ok", "read", "1")].concat(),
            "without a pending invoke",
            1,
        ),
        (
            "orphan-kv.txt",
            [kv(2, "invoke", "get", "nil"), kv(3, "ok", "get", "\"\"")].concat(),
            "without a pending invoke",
            2,
        ),
        (
            "other-f.jsonl",
            [ev(1, "invoke", "read", "null"), ev(1, "ok", "write", "1")].concat(),
            "completion is of `write`, but its pending invoke at line 1 is `read`",
            2,
        ),
    ];
    for (name, text, what, line) in cases {
        let f = tmp(name, &text);
        let model = if name.contains("kv") {
            "kv"
        } else {
            "cas-register"
        };
        let (code, out) = check(&["--model", model, f.to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {out}");
        assert!(
            out.contains(&format!("{name}: ERROR: line {line}: ")),
            "{name}: {out}"
        );
        assert!(out.contains(what), "{name}: {out}");
    }
}

#[test]
fn unknown_model_lists_every_model() {
    let f = tmp("any.jsonl", &[ev(1, "invoke", "read", "null")].concat());
    let (code, out) = check(&["--model", "nope", f.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    for m in [
        "register",
        "cas-register",
        "kv",
        "zk",
        "zk-strict",
        "log",
        "kafka",
        "zk-cas-register",
        "zk-counter",
        "zk-lock",
        "zk-election",
        "zk-config",
        "zk-naming",
    ] {
        assert!(
            out.contains(&format!(" {m},")) || out.contains(&format!(" {m})")),
            "{m}: {out}"
        );
    }
}

#[test]
fn explanations_of_files_with_one_name_do_not_overwrite_each_other() {
    let bad = |v: &str| {
        [
            ev(1, "invoke", "write", "1"),
            ev(1, "ok", "write", "1"),
            ev(2, "invoke", "read", "null"),
            ev(2, "ok", "read", v),
        ]
        .concat()
    };
    let a = tmp("a/h.jsonl", &bad("2"));
    let b = tmp("b/h.jsonl", &bad("3"));
    let out_dir = dir().join("explain-same-name");
    let (code, out) = check(&[
        "--model",
        "register",
        "--explain",
        out_dir.to_str().unwrap(),
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    let texts: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(texts.len(), 2, "{out}");
    assert!(texts.iter().any(|t| t.contains("ok 2")), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("ok 3")), "{texts:?}");
    // Each verdict line points at its own page.
    let pages: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split("; see ").nth(1))
        .collect();
    assert_eq!(pages.len(), 2, "{out}");
    assert_ne!(pages[0], pages[1], "{out}");
}

#[test]
fn failed_read_that_cannot_be_placed_is_named_with_its_error_code() {
    // /a is created; a later getData says NoNode: that read is the
    // operation that cannot be placed, and its code is shown.
    let zk = |p: u64, kind: &str, f: &str, key: &str, rest: &str| {
        format!("{{\"process\":{p},\"type\":\"{kind}\",\"f\":\"{f}\",\"key\":\"{key}\"{rest}}}\n")
    };
    let text = [
        zk(0, "invoke", "create", "/a", ",\"value\":\"x\""),
        zk(0, "ok", "create", "/a", ",\"value\":\"/a\""),
        zk(1, "invoke", "sync", "/a", ""),
        zk(1, "ok", "sync", "/a", ""),
        zk(1, "invoke", "getData", "/a", ""),
        zk(1, "fail", "getData", "/a", ",\"error\":\"NoNode\""),
    ]
    .concat();
    let f = tmp("nonode.jsonl", &text);
    let out_dir = dir().join("explain-nonode");
    let (code, out) = check(&[
        "--model",
        "zk",
        "--explain",
        out_dir.to_str().unwrap(),
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "op 2: process 1 getData key=\"/a\" -> fail NoNode (lines 5-6) cannot be placed"
        ),
        "{out}"
    );
    let page = std::fs::read_to_string(out_dir.join("nonode.jsonl.html")).unwrap();
    assert!(page.contains("getData → NoNode"), "{page}");
    assert!(!page.contains("Some("), "{page}");
}
