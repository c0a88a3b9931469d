//! A self-contained HTML page (inline SVG, no scripts, no network) drawing
//! a non-linearizable history around the conflict: one row per process,
//! one bar per operation from invocation to completion, the conflict window
//! shaded, and the explanation as text below.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::explain::{describe, overlaps, short, Explanation};
use crate::history::{Operation, Outcome};

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 110.0;
const ROW: f64 = 26.0;
const TOP: f64 = 40.0;

/// Escapes text for HTML and SVG.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn end_of(o: &Operation, last: usize) -> usize {
    match (o.outcome, o.complete_index) {
        (Outcome::Info, _) | (_, None) => last,
        (_, Some(c)) => c,
    }
}

/// Renders the page. `lines` maps event indices to source lines.
pub fn render(title: &str, ops: &[Operation], ex: &Explanation, lines: Option<&[usize]>) -> String {
    let last = ops
        .iter()
        .map(|o| o.complete_index.unwrap_or(o.invoke_index))
        .max()
        .unwrap_or(0)
        + 1;
    let (w0, w1) = ex.window(ops);
    let pad = ((w1 - w0) / 2).max(10);
    let (v0, v1) = (w0.saturating_sub(pad), (w1 + pad).min(last));
    let view = Operation {
        invoke_index: v0,
        complete_index: Some(v1.max(v0 + 1)),
        outcome: Outcome::Ok,
        ..ops[ex.blocked].clone()
    };
    let part: std::collections::HashSet<usize> = ex.searched.iter().copied().collect();
    // The operations of the partition the search judged: a failed read that
    // returned an error code is an observation (and may be the one that
    // cannot be placed); operations the model dropped are not drawn.
    let shown: Vec<usize> = (0..ops.len())
        .filter(|&i| (part.contains(&i) || i == ex.blocked) && overlaps(&ops[i], &view))
        .collect();
    let mut rows: BTreeMap<u64, usize> = BTreeMap::new();
    for &i in &shown {
        let n = rows.len();
        rows.entry(ops[i].process).or_insert(n);
    }
    for (k, v) in rows.values_mut().enumerate() {
        *v = k;
    }
    let span = (v1 - v0).max(1) as f64;
    let x = |t: usize| LEFT + (t.clamp(v0, v1) - v0) as f64 / span * (WIDTH - LEFT - 10.0);
    let height = TOP + rows.len() as f64 * ROW + 30.0;
    let in_prefix: std::collections::HashSet<usize> = ex.prefix.iter().copied().collect();
    let concurrent: std::collections::HashSet<usize> = ex.concurrent.iter().copied().collect();

    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" font-family=\"monospace\" font-size=\"10\">"
    );
    let _ = write!(
        svg,
        "<rect x=\"{:.1}\" y=\"{}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#fff3b0\" stroke=\"#e0b000\"><title>conflict window: events {}..{}</title></rect>",
        x(w0), TOP - 14.0, (x(w1) - x(w0)).max(2.0), rows.len() as f64 * ROW + 14.0, w0, w1
    );
    let _ = write!(
        svg,
        "<text x=\"{LEFT}\" y=\"16\">events {v0}..{v1} (time axis: event order)</text>"
    );
    for (p, r) in &rows {
        let y = TOP + *r as f64 * ROW;
        let _ = write!(
            svg,
            "<text x=\"4\" y=\"{:.1}\">process {p}</text>",
            y + 12.0
        );
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{WIDTH}\" y1=\"{0:.1}\" y2=\"{0:.1}\" stroke=\"#eee\"/>",
            y + 18.0
        );
    }
    for &i in &shown {
        let o = &ops[i];
        let y = TOP + rows[&o.process] as f64 * ROW;
        let (a, b) = (x(o.invoke_index), x(end_of(o, last)));
        let fill = if i == ex.blocked {
            "#e74c3c"
        } else if concurrent.contains(&i) && in_prefix.contains(&i) {
            "#4caf50"
        } else if concurrent.contains(&i) {
            "#f5a623"
        } else if in_prefix.contains(&i) {
            "#a5d6a7"
        } else {
            "#c5cae9"
        };
        let dash = if o.outcome == Outcome::Info || o.complete_index.is_none() {
            " stroke-dasharray=\"4 2\""
        } else {
            ""
        };
        let mut label = o.f.trim_start_matches(':').to_string();
        if !o.input.is_null() {
            label = format!("{label} {}", short(&o.input));
        }
        let label = match o.outcome {
            Outcome::Ok => format!("{label} → {}", short(&o.output)),
            Outcome::Fail => format!("{label} → {}", o.error.as_deref().unwrap_or("fail")),
            Outcome::Info => format!("{label} → ?"),
        };
        // The label is clipped to its bar by a nested <svg>; the tooltip
        // has the full text.
        let width = (b - a).max(3.0);
        let _ = write!(
            svg,
            "<g><title>{}</title><rect x=\"{a:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"16\" rx=\"3\" fill=\"{fill}\" stroke=\"#333\"{dash}/>\
             <svg x=\"{a:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"16\"><text x=\"3\" y=\"12\">{}</text></svg></g>",
            escape(&describe(ops, i, lines)),
            escape(&label)
        );
    }
    svg.push_str("</svg>");

    let legend = "<p><span style=\"background:#e74c3c\">&nbsp;cannot be placed&nbsp;</span> \
        <span style=\"background:#f5a623\">&nbsp;concurrent, not in prefix&nbsp;</span> \
        <span style=\"background:#4caf50\">&nbsp;concurrent, in prefix&nbsp;</span> \
        <span style=\"background:#a5d6a7\">&nbsp;in prefix&nbsp;</span> \
        <span style=\"background:#c5cae9\">&nbsp;other&nbsp;</span> \
        dashed: outcome unknown; shaded: conflict window</p>";
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:sans-serif;margin:16px}}pre{{background:#f6f6f6;padding:8px}}</style>\
         </head><body><h1>{t}: not linearizable</h1>{legend}\n{svg}\n<pre>{text}</pre></body></html>\n",
        t = escape(title),
        text = escape(&ex.text(ops, lines)),
    )
}
