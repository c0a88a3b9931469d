//! kzsim reports: static HTML pages (with inline SVG charts drawn by
//! plotters) for a sweep of seeds.
//!
//! The page is self-contained (no scripts, no network): a summary table per
//! scenario, a chart of wall time per seed, and every failing seed with its
//! anomalies and the command that replays it.

mod html;
mod sweep_chart;

use std::path::{Path, PathBuf};

use kzsim_sim::RunOutcome;

pub use html::escape;

/// A report that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Drawing a chart failed.
    #[error("chart: {0}")]
    Chart(String),
}

/// Writes `DIR/index.html` for the outcomes of a sweep; returns its path.
/// `replay` turns an outcome into the command that replays it.
pub fn write_sweep_report(
    dir: &Path,
    outcomes: &[RunOutcome],
    replay: &dyn Fn(&RunOutcome) -> String,
) -> Result<PathBuf, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let chart = sweep_chart::wall_time_svg(outcomes)?;
    let page = html::sweep_page(outcomes, &chart, replay);
    let path = dir.join("index.html");
    std::fs::write(&path, page).map_err(|source| ReportError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kzsim_sim::Violation;

    fn outcome(scenario: &str, seed: u64, ok: bool) -> RunOutcome {
        RunOutcome {
            scenario: scenario.into(),
            file: format!("scenarios/{scenario}.toml"),
            seed,
            ok,
            verdict: if ok {
                kzsim_sim::Verdict::Pass
            } else {
                kzsim_sim::Verdict::Fail
            },
            trace_hash: format!("{seed:016x}"),
            violations: if ok {
                vec![]
            } else {
                vec![Violation::new(
                    "lost-write",
                    "read <saw> & lost",
                    vec![1, 2],
                )]
            },
            sim_ms: 1000,
            wall_ms: 2.5 + seed as f64,
            events: 10,
            messages: 5,
            ops: 3,
            faults: 1,
            bugs: vec![],
            expected: None,
            counters: Default::default(),
            coverage: Default::default(),
        }
    }

    #[test]
    fn writes_a_self_contained_page() {
        let dir = std::env::temp_dir().join(format!("kzsim-report-test-{}", std::process::id()));
        let outs = vec![
            outcome("a", 0, true),
            outcome("a", 1, false),
            outcome("b", 0, true),
        ];
        let path = write_sweep_report(&dir, &outs, &|o| format!("replay {}", o.seed)).unwrap();
        let page = std::fs::read_to_string(&path).unwrap();
        assert!(page.contains("<svg"));
        assert!(page.contains("replay 1"));
        assert!(page.contains("read &lt;saw&gt; &amp; lost"));
        assert!(!page.contains("http://") || page.contains("http://www.w3.org/2000/svg"));
        assert!(!page.contains("<script"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bug_search_counts_finds_not_failures() {
        let dir = std::env::temp_dir().join(format!("kzsim-report-bug-{}", std::process::id()));
        let mut found = outcome("a", 0, false);
        found.ok = true;
        found.verdict = kzsim_sim::Verdict::Found;
        found.bugs = vec!["b".into()];
        let mut missed = outcome("a", 1, true);
        missed.verdict = kzsim_sim::Verdict::NotFound;
        missed.bugs = vec!["b".into()];
        let path =
            write_sweep_report(&dir, &[found, missed], &|o| format!("replay {}", o.seed)).unwrap();
        let page = std::fs::read_to_string(&path).unwrap();
        assert!(page.contains("1 found"), "{page}");
        assert!(page.contains("1 not found"));
        assert!(page.contains("0 failed"));
        assert!(page.contains("<h2>Finds</h2>"));
        assert!(!page.contains("Failing seeds"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
