//! Every shared history with a known verdict gets that verdict.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kzsim_sim::check::{check_text, CheckOptions, Format, ModelKind, Verdict};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/histories");

struct Case {
    file: PathBuf,
    name: String,
    model: ModelKind,
    format: Format,
    expected: Verdict,
}

/// The cases of `verdicts.csv`, or `None` (with a message) when the shared
/// histories are absent.
fn cases() -> Option<Vec<Case>> {
    let csv = Path::new(DIR).join("porcupine/verdicts.csv");
    let Ok(text) = std::fs::read_to_string(&csv) else {
        kzsim_sim::testkit::shared_data_missing(&csv);
        return None;
    };
    let mut out = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split(',').collect();
        let (model, format) = match cols[1] {
            "etcd-cas-register" => (ModelKind::CasRegister, Format::PorcupineEtcd),
            "kv-get-put-append" => (ModelKind::Kv, Format::PorcupineKv),
            other => panic!("unknown model {other} in verdicts.csv"),
        };
        let expected = match cols[2] {
            "linearizable" => Verdict::Linearizable,
            "not_linearizable" => Verdict::NotLinearizable,
            other => panic!("unknown verdict {other}"),
        };
        out.push(Case {
            file: Path::new(DIR).join("porcupine").join(cols[0]),
            name: cols[0].to_string(),
            model,
            format,
            expected,
        });
    }
    Some(out)
}

fn run(filter: impl Fn(&Case) -> bool) {
    let Some(cases) = cases() else { return };
    let opts = CheckOptions {
        timeout: Some(Duration::from_secs(60)),
        ..CheckOptions::default()
    };
    let mut wrong = Vec::new();
    let mut n = 0;
    for case in cases.iter().filter(|c| filter(c)) {
        let text = std::fs::read_to_string(&case.file).expect("history readable");
        let (_, ops, report) = check_text(
            case.model,
            &serde_json::Value::Null,
            case.format,
            &text,
            &opts,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        n += 1;
        if report.verdict != case.expected {
            wrong.push(format!(
                "{}: got {:?}, expected {:?}",
                case.name, report.verdict, case.expected
            ));
        }
        if report.verdict == Verdict::NotLinearizable {
            let ex = report.explanation.expect("explained");
            assert!(ex.blocked < ops.len());
            assert!(!ex.prefix.contains(&ex.blocked));
        }
    }
    assert!(n > 0, "no histories matched");
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
}

#[test]
fn etcd_histories_get_their_verdicts() {
    run(|c| c.format == Format::PorcupineEtcd);
}

#[test]
fn kv_histories_get_their_verdicts() {
    run(|c| c.format == Format::PorcupineKv);
}

#[test]
fn kv_histories_also_read_as_plain_edn() {
    let Some(cases) = cases() else { return };
    for case in cases.iter().filter(|c| c.format == Format::PorcupineKv) {
        let text = std::fs::read_to_string(&case.file).unwrap();
        let (_, _, report) = check_text(
            ModelKind::Kv,
            &serde_json::Value::Null,
            Format::Edn,
            &text,
            &CheckOptions::default(),
        )
        .unwrap();
        assert_eq!(report.verdict, case.expected, "{}", case.name);
    }
}
