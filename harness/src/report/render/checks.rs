//! The verdict section: each checker's result with its details, the Raft
//! safety violations, and (drawn by [`super::counterexample`]) the
//! counterexample.

use std::fmt::Write;

use serde_json::Value;

use super::svg::{dur, esc};
use super::{pretty_cut, Ctx};
use crate::report::derive::counterexample;
use crate::report::derive::ops::short_json;
use crate::report::verdict::Verdict;

/// The verdict of each checker, Raft-safety violations, the counterexample.
pub(super) fn section(o: &mut String, c: &Ctx) {
    let m = c.m;
    o.push_str("<section id=\"verdict\"><h2>Verdict</h2>");
    let Some(r) = m.results.as_ref() else {
        o.push_str("<p class=\"muted\">No results.json: the checkers did not run. Run <code>harness check RUN_DIR</code> to check this history.</p></section>");
        return;
    };
    let _ = write!(
        o,
        "<p>Overall: {} · model <b>{}</b> · {} ops checked",
        Verdict::of_results(Some(r)).badge(),
        esc(r.model.as_deref().unwrap_or("?")),
        r.ops.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
    );
    for (ms, label) in [(r.parse_ms, "parse"), (r.check_ms, "check")] {
        if let Some(ms) = ms {
            let _ = write!(o, " · {label} {}", dur((ms * 1e6) as i64));
        }
    }
    o.push_str("</p>");
    // Each checker's fields are shown as they serialize: whatever a
    // checker reports shows up here without the page knowing it.
    let checkers = r
        .checkers
        .as_ref()
        .and_then(|c| serde_json::to_value(c).ok())
        .and_then(|v| v.as_object().cloned());
    if let Some(checkers) = checkers {
        o.push_str(
            "<table class=\"checkers\"><tr><th>checker</th><th>verdict</th><th>details</th></tr>",
        );
        for (name, v) in &checkers {
            let mut details = Vec::new();
            if let Some(obj) = v.as_object() {
                for (k, x) in obj {
                    if k == "valid" {
                        continue;
                    }
                    let shown = match x {
                        Value::String(s) if s.is_empty() => continue,
                        Value::Null => continue,
                        Value::String(s) => esc(s),
                        Value::Array(a) if a.is_empty() => "none".into(),
                        Value::Array(a) => format!("{} item(s), below", a.len()),
                        other => esc(&short_json(other, 160)),
                    };
                    details.push(format!("<b>{}</b>: {shown}", esc(k)));
                }
            }
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(name),
                Verdict::from_value(v.get("valid")).badge(),
                details.join("<br>")
            );
        }
        o.push_str("</table>");
    }
    if let Some(raft) = r.checkers.as_ref().and_then(|c| c.raft_safety.as_ref()) {
        let vs = &raft.violations;
        if !vs.is_empty() {
            o.push_str("<h3>Raft safety violations</h3><ul class=\"violations\">");
            for v in vs.iter().take(50) {
                let _ = write!(
                    o,
                    "<li><b>{}</b>: {}<details><summary>events</summary><pre>{}</pre></details></li>",
                    esc(&v.kind),
                    esc(&v.message),
                    esc(&pretty_cut(&Value::Array(v.events.clone()), 4000))
                );
            }
            if vs.len() > 50 {
                let _ = write!(o, "<li>… and {} more</li>", vs.len() - 50);
            }
            o.push_str("</ul>");
        }
    }
    if let (Some(cex), Some(view)) = (
        counterexample::counterexample(m.results.as_ref()),
        m.counterexample.as_ref(),
    ) {
        super::counterexample::section(o, c, cex, view);
    }
    o.push_str("</section>");
}
