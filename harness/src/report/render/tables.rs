//! The tables: latency percentiles per op type and outcome, ops by
//! outcome, outcomes during each fault, and the configuration with the
//! command that replays the run.

use std::fmt::Write;

use serde_json::Value;

use super::svg::{dur, esc};
use super::{pretty_cut, Ctx};

pub(super) fn percentile_section(o: &mut String, c: &Ctx) {
    let m = c.m;
    o.push_str("<section id=\"percentiles\"><h2>Latency percentiles</h2>");
    let rows = m.history.table.rows();
    if rows.is_empty() {
        o.push_str("<p class=\"muted\">No completed ops.</p>");
    } else {
        o.push_str("<table class=\"num\"><tr><th>f</th><th>outcome</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>");
        for r in rows {
            let _ = write!(
                o,
                "<tr><td>{}</td><td class=\"o-{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.f),
                r.outcome.name(),
                r.outcome.name(),
                r.count,
                dur(r.p50),
                dur(r.p90),
                dur(r.p99),
                dur(r.p999),
                dur(r.max)
            );
        }
        o.push_str("</table>");
    }
    o.push_str("<h3>Ops by outcome</h3><table class=\"num\"><tr><th>f</th><th>ok</th><th>fail</th><th>info</th><th>never completed</th></tr>");
    for (f, n) in &m.history.table.counts {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(f),
            n[0],
            n[1],
            n[2],
            n[3]
        );
    }
    o.push_str("</table>");
    let faults = m
        .results
        .as_ref()
        .and_then(|r| r.stats.as_ref())
        .map(|s| s.faults.as_slice())
        .unwrap_or_default();
    if !faults.is_empty() {
        o.push_str("<h3>Outcomes during faults</h3><table class=\"num\"><tr><th>fault</th><th>from</th><th>to</th><th>ok</th><th>fail</th><th>info</th></tr>");
        for f in faults {
            let t = |ns: u64| i64::try_from(ns).map(dur).unwrap_or_default();
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.f),
                t(f.start_ns),
                t(f.end_ns),
                f.ok,
                f.fail,
                f.info
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</section>");
}

pub(super) fn config_section(o: &mut String, c: &Ctx) {
    let m = c.m;
    o.push_str("<section id=\"config\"><h2>Configuration</h2>");
    match &m.test {
        Some(t) => {
            if let Some(argv) = t.get("argv").and_then(Value::as_array) {
                let cmd: Vec<String> = argv
                    .iter()
                    .map(|a| {
                        a.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| a.to_string())
                    })
                    .collect();
                let _ = write!(o, "<p>Replay: <code>{}</code></p>", esc(&cmd.join(" ")));
            }
            let _ = write!(
                o,
                "<details><summary>test.json</summary><pre>{}</pre></details>",
                esc(&pretty_cut(t, 20_000))
            );
        }
        None => o.push_str("<p class=\"muted\">No test.json.</p>"),
    }
    let _ = write!(
        o,
        "<p class=\"muted\">Run folder: <code>{}</code></p></section>",
        esc(&m.dir.display().to_string())
    );
}
