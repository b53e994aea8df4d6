//! Stage three of a report: the page. Verdict first (with the
//! counterexample zoomed in), then the timeline, the plots, the percentile
//! table and the configuration. All drawings are SVG written here from the
//! aggregates of [`RunModel`]; the embedded data and the small script in
//! `report.js` add the detail view, which loads the ops of the window it
//! shows from the files [`detail::ChunkWriter`] wrote next to the page.

mod bands;
mod checks;
mod counterexample;
mod data;
pub mod detail;
mod plots;
pub mod svg;
mod tables;
mod timeline;

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use serde_json::Value;

use super::derive::RunModel;
use super::verdict::Verdict;
use svg::{dur, esc, TimeScale};

/// Width of every drawing, in SVG user units (scaled to the window by CSS).
const W: f64 = 1200.0;
/// Left margin holding lane labels.
const LEFT: f64 = 74.0;
const RIGHT: f64 = 16.0;
/// Pixel columns of the overview and the plots: the derivation bins time
/// to these.
pub const PLOT_COLS: usize = (W - LEFT - RIGHT) as usize;

const CSS: &str = include_str!("../report.css");
const JS: &str = include_str!("../report.js");

/// Colors per op type, in order of first appearance sorted by name.
const F_COLORS: [&str; 8] = [
    "#1f77b4", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f", "#393b79",
];

/// The page style, shared with the results index.
pub fn css() -> &'static str {
    CSS
}

/// Context shared by the drawings.
struct Ctx<'a> {
    m: &'a RunModel,
    f_color: HashMap<String, &'static str>,
    cex: HashSet<u64>,
    cex_op: Option<u64>,
    /// Label row of each fault band (then each marker) on the overview.
    band_rows: Vec<usize>,
}

impl Ctx<'_> {
    /// The whole run across the full width: the overview and the plots.
    fn overview_scale(&self) -> TimeScale {
        overview_scale(self.m)
    }

    fn test_str(&self, key: &str) -> Option<String> {
        test_str(self.m, key)
    }
}

fn overview_scale(m: &RunModel) -> TimeScale {
    TimeScale::new(0, m.run_end_ns().max(1), LEFT, W - RIGHT)
}

/// A field of `test.json` as text (lists joined by commas).
fn test_str(m: &RunModel, key: &str) -> Option<String> {
    let v = m.test.as_ref()?.get(key)?;
    Some(match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null => return None,
        other => other.to_string(),
    })
}

/// Renders the whole page.
pub fn render(m: &RunModel) -> String {
    let f_color = m
        .history
        .fs
        .iter()
        .enumerate()
        .map(|(i, f)| (f.clone(), F_COLORS[i % F_COLORS.len()]))
        .collect();
    let cex = m.counterexample.as_ref();
    let ctx = Ctx {
        m,
        f_color,
        cex: cex
            .map(|c| c.named.iter().copied().collect())
            .unwrap_or_default(),
        cex_op: cex.and_then(|c| c.op),
        band_rows: bands::label_rows(m, &overview_scale(m)),
    };
    let name = test_str(m, "name").unwrap_or_else(|| {
        m.dir
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "run".into())
    });
    let verdict = Verdict::of_results(m.results.as_ref());
    let mut o = String::with_capacity(1 << 20);
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} {} — {}</title><style>{CSS}</style></head><body>",
        esc(&name),
        esc(&run_stamp(m)),
        verdict.text()
    );
    header(&mut o, &ctx, &name, verdict);
    o.push_str(
        "<nav><a href=\"#verdict\">Verdict</a><a href=\"#timeline\">Timeline</a>\
         <a href=\"#latency\">Latency</a><a href=\"#throughput\">Throughput</a>\
         <a href=\"#percentiles\">Percentiles</a><a href=\"#config\">Configuration</a>\
         <a href=\"../../index.html\">All runs</a></nav>",
    );
    checks::section(&mut o, &ctx);
    timeline::section(&mut o, &ctx);
    plots::latency_section(&mut o, &ctx);
    plots::throughput_section(&mut o, &ctx);
    tables::percentile_section(&mut o, &ctx);
    tables::config_section(&mut o, &ctx);
    o.push_str("<script type=\"application/json\" id=\"report-data\">");
    o.push_str(&data::embedded(&ctx).replace("</", "<\\/"));
    o.push_str("</script><script>");
    o.push_str(JS);
    o.push_str("</script></body></html>\n");
    o
}

/// The run folder's timestamp name, e.g. `20261125T203149`.
fn run_stamp(m: &RunModel) -> String {
    m.dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

fn header(o: &mut String, c: &Ctx, name: &str, verdict: Verdict) {
    let m = c.m;
    let start = m
        .test
        .as_ref()
        .and_then(|t| t.get("start_unix_ns"))
        .and_then(Value::as_i64)
        .and_then(|ns| chrono::DateTime::from_timestamp(ns.div_euclid(1_000_000_000), 0))
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| run_stamp(m));
    let _ = write!(
        o,
        "<header><h1>{} {}</h1><div class=\"sub\">{} · {} ops · {} · workload <b>{}</b> · nemesis <b>{}</b></div>",
        esc(name),
        verdict.badge(),
        esc(&start),
        m.history.ops,
        dur(m.run_end_ns()),
        esc(&c.test_str("workload").unwrap_or_else(|| "?".into())),
        esc(&c.test_str("nemesis").filter(|s| !s.is_empty()).unwrap_or_else(|| "none".into())),
    );
    let mut facts = Vec::new();
    for (k, label) in [
        ("seed", "seed"),
        ("nodes", "nodes"),
        ("concurrency", "concurrency"),
        ("rate", "rate"),
        ("read_consistency", "reads"),
    ] {
        if let Some(v) = c.test_str(k) {
            facts.push(format!("{label} <b>{}</b>", esc(&v)));
        }
    }
    if !facts.is_empty() {
        let _ = write!(o, "<div class=\"sub\">{}</div>", facts.join(" · "));
    }
    o.push_str("</header>");
    if !m.notes.is_empty() {
        o.push_str("<div class=\"notes\" id=\"missing\"><b>Missing or incomplete:</b><ul>");
        for n in &m.notes {
            let _ = write!(o, "<li>{}</li>", esc(n));
        }
        o.push_str("</ul></div>");
    }
}

/// A legend of colored swatches.
fn legend(o: &mut String, items: &[(&str, &str)]) {
    o.push_str("<div class=\"legend\">");
    for (cls, text) in items {
        let _ = write!(o, "<span><i class=\"{cls}\"></i>{}</span>", esc(text));
    }
    o.push_str("</div>");
}

/// Pretty JSON, cut to `max` bytes.
fn pretty_cut(v: &Value, max: usize) -> String {
    let s = serde_json::to_string_pretty(v).unwrap_or_default();
    if s.len() <= max {
        s
    } else {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}\n…", &s[..end])
    }
}
