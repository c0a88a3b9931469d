//! The HTML of a sweep report.

use std::collections::BTreeMap;
use std::fmt::Write;

use kzsim_sim::{RunOutcome, Verdict};

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}\
td:first-child,th:first-child{text-align:left}.fail{color:#b00}.ok{color:#070}\
code{background:#f4f4f4;padding:2px 4px}";

/// Counts of each verdict among some outcomes.
#[derive(Default)]
struct Tally {
    pass: usize,
    fail: usize,
    found: usize,
    not_found: usize,
}

impl Tally {
    fn of<'a>(outs: impl IntoIterator<Item = &'a RunOutcome>) -> Tally {
        let mut t = Tally::default();
        for o in outs {
            match o.verdict {
                Verdict::Pass => t.pass += 1,
                Verdict::Fail => t.fail += 1,
                Verdict::Found => t.found += 1,
                Verdict::NotFound => t.not_found += 1,
            }
        }
        t
    }
}

fn class(bad: bool) -> &'static str {
    if bad {
        "fail"
    } else {
        "ok"
    }
}

/// The whole page. With planted bugs from the command line (a bug
/// search), seeds are counted as found and not found instead of passed.
pub fn sweep_page(
    outcomes: &[RunOutcome],
    chart_svg: &str,
    replay: &dyn Fn(&RunOutcome) -> String,
) -> String {
    let mut by: BTreeMap<&str, Vec<&RunOutcome>> = BTreeMap::new();
    for o in outcomes {
        by.entry(&o.scenario).or_default().push(o);
    }
    let search = outcomes
        .iter()
        .any(|o| matches!(o.verdict, Verdict::Found | Verdict::NotFound));
    let all = Tally::of(outcomes);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>kzsim sweep</title><style>{STYLE}</style></head><body><h1>kzsim sweep</h1>"
    );
    if search {
        let bugs: Vec<&str> = outcomes
            .first()
            .map(|o| o.bugs.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let _ = write!(
            h,
            "<p>Search for planted bug <code>{}</code>: {} seeds over {} scenarios, <span class=\"{}\">{} found</span>, {} not found, <span class=\"{}\">{} failed</span>.</p>",
            escape(&bugs.join("+")),
            outcomes.len(),
            by.len(),
            class(all.found == 0),
            all.found,
            all.not_found,
            class(all.fail > 0),
            all.fail
        );
    } else {
        let _ = write!(
            h,
            "<p>{} seeds over {} scenarios: <span class=\"ok\">{} passed</span>, <span class=\"{}\">{} failed</span>.</p>",
            outcomes.len(),
            by.len(),
            all.pass,
            class(all.fail > 0),
            all.fail
        );
    }
    let (good, other) = if search {
        ("found", "not found")
    } else {
        ("passed", "-")
    };
    let _ = write!(
        h,
        "<table><tr><th>scenario</th><th>seeds</th><th>{good}</th>{}<th>failed</th><th>wall ms/seed</th><th>max wall ms</th><th>sim ms</th><th>messages</th><th>ops</th><th>faults</th><th>anomalies</th></tr>",
        if search { format!("<th>{other}</th>") } else { String::new() }
    );
    for (name, outs) in &by {
        let n = outs.len();
        let t = Tally::of(outs.iter().copied());
        let mean = outs.iter().map(|o| o.wall_ms).sum::<f64>() / n as f64;
        let max = outs.iter().map(|o| o.wall_ms).fold(0.0, f64::max);
        let avg =
            |f: &dyn Fn(&RunOutcome) -> u64| outs.iter().map(|o| f(o)).sum::<u64>() / n as u64;
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for o in outs {
            for v in &o.violations {
                *kinds.entry(&v.kind).or_default() += 1;
            }
        }
        let kinds: Vec<String> = kinds
            .iter()
            .map(|(k, c)| format!("{} &times;{c}", escape(k)))
            .collect();
        let first = if search {
            format!("<td>{}</td><td>{}</td>", t.found, t.not_found)
        } else {
            format!("<td>{}</td>", t.pass)
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{n}</td>{first}<td class=\"{}\">{}</td><td>{mean:.2}</td><td>{max:.2}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            class(t.fail > 0),
            t.fail,
            avg(&|o| o.sim_ms),
            avg(&|o| o.messages),
            avg(&|o| o.ops),
            avg(&|o| o.faults),
            if kinds.is_empty() { "-".into() } else { kinds.join(", ") }
        );
    }
    h.push_str("</table><h2>Wall time per seed</h2>");
    h.push_str(chart_svg);
    if all.found > 0 {
        h.push_str("<h2>Finds</h2><ul>");
        for outs in by.values() {
            for o in outs.iter().filter(|o| o.verdict == Verdict::Found).take(10) {
                seed_item(&mut h, o, replay);
            }
        }
        h.push_str("</ul>");
    }
    if all.fail > 0 {
        h.push_str("<h2>Failing seeds</h2><ul>");
        for o in outcomes.iter().filter(|o| o.verdict == Verdict::Fail) {
            seed_item(&mut h, o, replay);
        }
        h.push_str("</ul>");
    }
    h.push_str("</body></html>\n");
    h
}

/// One seed's list item: its anomalies and its replay command.
fn seed_item(h: &mut String, o: &RunOutcome, replay: &dyn Fn(&RunOutcome) -> String) {
    let _ = write!(
        h,
        "<li><b>{}</b> seed {} (trace {}): <ul>",
        escape(&o.scenario),
        o.seed,
        escape(&o.trace_hash)
    );
    if o.violations.is_empty() {
        let _ = write!(
            h,
            "<li>expected anomaly <code>{}</code> not shown</li>",
            escape(o.expected.as_deref().unwrap_or("?"))
        );
    }
    for v in &o.violations {
        let _ = write!(
            h,
            "<li><code>{}</code> {}</li>",
            escape(&v.kind),
            escape(&v.detail)
        );
    }
    let _ = write!(h, "</ul>replay: <code>{}</code></li>", escape(&replay(o)));
}
