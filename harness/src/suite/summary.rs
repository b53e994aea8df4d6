//! `summary.html`: the suite on one page a person scans in seconds: the
//! counts and the exit code at the top, then a row per run, failures first,
//! in the verdict colors of the reports, each linking to its `report.html`.
//! Self-contained (the reports' stylesheet inline, no script), offline.

use std::fmt::Write;

use super::record::{Outcome, SuiteRecord};
use crate::report::{css, esc};

/// The page for `record`.
pub fn render(record: &SuiteRecord) -> String {
    let c = &record.counts;
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Suite {}</title><style>{}</style></head><body>",
        esc(&record.name),
        css()
    );
    let verdict = match record.exit_code {
        Some(code) => Outcome::of_exit(code),
        None => Outcome::NotRun,
    };
    let state = if record.finished {
        format!("exit {}", record.exit_code.unwrap_or(0))
    } else {
        "running (or killed)".to_string()
    };
    let _ = write!(
        o,
        "<header><h1>Suite {} {}</h1><div class=\"sub\" id=\"counts\">{} runs · {} invalid · {} error · {} unknown · {} valid · {} not run · {} · started {} · {:.0} s · {}</div></header>",
        esc(&record.name),
        verdict.verdict().badge(),
        c.runs,
        c.invalid,
        c.error,
        c.unknown,
        c.valid,
        c.not_run,
        esc(&state),
        esc(&record.started),
        record.duration_s,
        esc(&record.source),
    );
    let mut notes = Vec::new();
    if let Some(s) = &record.stopped {
        notes.push(format!("Stopped early: {}.", esc(s)));
    }
    if let Some(t) = &record.timing_note {
        notes.push(esc(t));
    }
    for n in notes {
        let _ = write!(o, "<p class=\"muted\">{n}</p>");
    }
    o.push_str(
        "<table class=\"runs\" id=\"runs\"><tr><th>verdict</th><th>run</th><th>test</th><th>seed</th>\
         <th>round</th><th>ops</th><th>faults</th><th>time</th><th>report</th><th>why</th></tr>",
    );
    for r in record.runs_failures_first() {
        let report = match &r.report {
            Some(href) => format!("<a href=\"{}\">report</a>", esc(href)),
            None => "<span class=\"muted\">none</span>".to_string(),
        };
        let verdict = r.outcome.verdict();
        let _ = write!(
            o,
            "<tr class=\"r{}\" data-outcome=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{report}</td><td>{}</td></tr>",
            verdict.class().trim_start_matches('v'),
            r.outcome.name(),
            if r.outcome == Outcome::NotRun {
                "<span class=\"muted\">not run</span>".to_string()
            } else {
                verdict.badge()
            },
            esc(&r.label),
            esc(&r.test),
            r.seed,
            r.round,
            r.ops.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            r.faults,
            if r.outcome == Outcome::NotRun {
                "-".to_string()
            } else {
                format!("{:.1}&nbsp;s", r.duration_s)
            },
            esc(r.message.as_deref().unwrap_or("")),
        );
    }
    o.push_str("</table></body></html>\n");
    o
}
