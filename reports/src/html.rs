//! The HTML of a sweep report.

use std::collections::BTreeMap;
use std::fmt::Write;

use kzsim_sim::RunOutcome;

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

/// The whole page.
pub fn sweep_page(
    outcomes: &[RunOutcome],
    chart_svg: &str,
    replay: &dyn Fn(&RunOutcome) -> String,
) -> String {
    let mut by: BTreeMap<&str, Vec<&RunOutcome>> = BTreeMap::new();
    for o in outcomes {
        by.entry(&o.scenario).or_default().push(o);
    }
    let failed = outcomes.iter().filter(|o| !o.ok).count();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>kzsim sweep</title><style>{STYLE}</style></head><body>\
         <h1>kzsim sweep</h1><p>{} seeds over {} scenarios: <span class=\"ok\">{} passed</span>, <span class=\"{}\">{} failed</span>.</p>",
        outcomes.len(),
        by.len(),
        outcomes.len() - failed,
        if failed > 0 { "fail" } else { "ok" },
        failed
    );
    h.push_str("<table><tr><th>scenario</th><th>seeds</th><th>passed</th><th>failed</th><th>wall ms/seed</th><th>max wall ms</th><th>sim ms</th><th>messages</th><th>ops</th><th>faults</th><th>anomalies</th></tr>");
    for (name, outs) in &by {
        let n = outs.len();
        let pass = outs.iter().filter(|o| o.ok).count();
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
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{n}</td><td>{pass}</td><td class=\"{}\">{}</td><td>{mean:.2}</td><td>{max:.2}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            if pass < n { "fail" } else { "ok" },
            n - pass,
            avg(&|o| o.sim_ms),
            avg(&|o| o.messages),
            avg(&|o| o.ops),
            avg(&|o| o.faults),
            if kinds.is_empty() { "-".into() } else { kinds.join(", ") }
        );
    }
    h.push_str("</table><h2>Wall time per seed</h2>");
    h.push_str(chart_svg);
    if failed > 0 {
        h.push_str("<h2>Failing seeds</h2><ul>");
        for o in outcomes.iter().filter(|o| !o.ok) {
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
        h.push_str("</ul>");
    }
    h.push_str("</body></html>\n");
    h
}
