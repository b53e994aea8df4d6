//! The per-run page: verdict first (with the counterexample zoomed in), then
//! the timeline, the plots, the percentile table and the configuration. All
//! drawings are SVG written here; the embedded data and the small script in
//! `report.js` only add the zoomable detail timeline.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;

use serde_json::{json, Value};

use super::aggregate::{
    counts_by_f, dedupe_points, embed_selection, lane_segments, latency_table, nice_step,
    throughput,
};
use super::model::{assign_rows, short_json, Op, Outcome, RunModel};
use super::svg::{at, dur, esc, px, time_axis, TimeScale};

/// Width of every drawing, in SVG user units (scaled to the window by CSS).
const W: f64 = 1200.0;
/// Left margin holding lane labels.
const LEFT: f64 = 74.0;
const RIGHT: f64 = 16.0;
/// Ops embedded for the detail view at most (about 55 bytes each), so a
/// long run's page stays under 20 MB.
const EMBED_MAX_OPS: usize = 200_000;
/// Around each fault edge, this much before (and twice after) is embedded
/// in full even in a long run.
const EDGE_NS: i64 = 1_000_000_000;
/// Ops drawn one by one in the counterexample window at most.
const CEX_MAX_OPS: usize = 1500;

const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");

/// Colors per op type, in order of first appearance sorted by name.
const F_COLORS: [&str; 8] = [
    "#1f77b4", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f", "#393b79",
];

/// The page style, shared with the results index.
pub fn css() -> &'static str {
    CSS
}

/// The verdict of a checker or of the run, as shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
    Error,
    Missing,
}

impl Verdict {
    pub fn from_value(v: Option<&Value>) -> Verdict {
        match v {
            Some(Value::Bool(true)) => Verdict::Valid,
            Some(Value::Bool(false)) => Verdict::Invalid,
            Some(Value::String(s)) if s == "unknown" => Verdict::Unknown,
            Some(Value::String(s)) if s == "true" || s == "valid" => Verdict::Valid,
            Some(Value::String(s)) if s == "false" || s == "invalid" => Verdict::Invalid,
            Some(Value::Null) | None => Verdict::Missing,
            Some(_) => Verdict::Unknown,
        }
    }

    /// The run's verdict from `results.json` (a harness error wins).
    pub fn of_results(results: Option<&Value>) -> Verdict {
        let Some(r) = results else {
            return Verdict::Missing;
        };
        if r.get("error").is_some_and(|e| !e.is_null()) {
            return Verdict::Error;
        }
        Verdict::from_value(r.get("valid"))
    }

    pub fn class(self) -> &'static str {
        match self {
            Verdict::Valid => "v-valid",
            Verdict::Invalid => "v-invalid",
            Verdict::Unknown => "v-unknown",
            Verdict::Error => "v-error",
            Verdict::Missing => "v-missing",
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "INVALID",
            Verdict::Unknown => "unknown",
            Verdict::Error => "error",
            Verdict::Missing => "no verdict",
        }
    }

    pub fn badge(self) -> String {
        format!(
            "<span class=\"badge {}\">{}</span>",
            self.class(),
            self.text()
        )
    }
}

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

/// Context shared by the drawings.
struct Ctx<'a> {
    m: &'a RunModel,
    f_color: HashMap<String, &'static str>,
    cex: HashSet<u64>,
    cex_op: Option<u64>,
    /// Label row of each fault band on the overview.
    band_rows: Vec<usize>,
}

/// The whole run across the full width: the overview and the plots.
fn overview_scale(m: &RunModel) -> TimeScale {
    TimeScale::new(0, m.run_end_ns.max(1), LEFT, W - RIGHT)
}

/// Renders the whole page.
pub fn render(m: &RunModel) -> String {
    let mut fs: Vec<String> = m.ops.iter().map(|o| o.f.clone()).collect();
    fs.sort();
    fs.dedup();
    let f_color = fs
        .iter()
        .enumerate()
        .map(|(i, f)| (f.clone(), F_COLORS[i % F_COLORS.len()]))
        .collect();
    let ctx = Ctx {
        m,
        f_color,
        cex: m.counterexample_ops().into_iter().collect(),
        cex_op: m
            .counterexample()
            .and_then(|c| c.get("op"))
            .and_then(Value::as_u64),
        band_rows: band_label_rows(m, &overview_scale(m)),
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
    verdict_section(&mut o, &ctx);
    timeline_section(&mut o, &ctx);
    latency_section(&mut o, &ctx);
    throughput_section(&mut o, &ctx);
    percentile_section(&mut o, &ctx);
    config_section(&mut o, &ctx);
    o.push_str("<script type=\"application/json\" id=\"report-data\">");
    o.push_str(&embedded_data(&ctx).replace("</", "<\\/"));
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
        m.ops.len(),
        dur(m.run_end_ns),
        esc(&test_str(m, "workload").unwrap_or_else(|| "?".into())),
        esc(&test_str(m, "nemesis").filter(|s| !s.is_empty()).unwrap_or_else(|| "none".into())),
    );
    let mut facts = Vec::new();
    for (k, label) in [
        ("seed", "seed"),
        ("nodes", "nodes"),
        ("concurrency", "concurrency"),
        ("rate", "rate"),
        ("read_consistency", "reads"),
    ] {
        if let Some(v) = test_str(m, k) {
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

fn verdict_section(o: &mut String, c: &Ctx) {
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
        esc(r.get("model").and_then(Value::as_str).unwrap_or("?")),
        r.get("ops")
            .map(|v| v.to_string())
            .unwrap_or_else(|| "?".into())
    );
    for (k, label) in [("parse_ms", "parse"), ("check_ms", "check")] {
        if let Some(ms) = r.get(k).and_then(Value::as_f64) {
            let _ = write!(o, " · {label} {}", dur((ms * 1e6) as i64));
        }
    }
    o.push_str("</p>");
    if let Some(checkers) = r.get("checkers").and_then(Value::as_object) {
        o.push_str(
            "<table class=\"checkers\"><tr><th>checker</th><th>verdict</th><th>details</th></tr>",
        );
        for (name, v) in checkers {
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
    if let Some(vs) = r
        .pointer("/checkers/raft_safety/violations")
        .and_then(Value::as_array)
    {
        if !vs.is_empty() {
            o.push_str("<h3>Raft safety violations</h3><ul class=\"violations\">");
            for v in vs.iter().take(50) {
                let _ = write!(
                    o,
                    "<li><b>{}</b>: {}<details><summary>events</summary><pre>{}</pre></details></li>",
                    esc(v.get("kind").and_then(Value::as_str).unwrap_or("violation")),
                    esc(v.get("message").and_then(Value::as_str).unwrap_or("")),
                    esc(&pretty_cut(v.get("events").unwrap_or(&Value::Null), 4000))
                );
            }
            if vs.len() > 50 {
                let _ = write!(o, "<li>… and {} more</li>", vs.len() - 50);
            }
            o.push_str("</ul>");
        }
    }
    if let Some(cex) = m.counterexample() {
        counterexample(o, c, cex);
    }
    o.push_str("</section>");
}

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

/// The window around the counterexample's ops: from the first invoke to
/// the last completion, padded by a quarter on each side.
pub fn cex_window(m: &RunModel) -> Option<(i64, i64)> {
    let pos = m.op_positions();
    let ops: Vec<&Op> = m
        .counterexample_ops()
        .iter()
        .filter_map(|i| pos.get(i))
        .map(|&p| &m.ops[p])
        .collect();
    if ops.is_empty() {
        return None;
    }
    let a = ops.iter().map(|o| o.invoke_ns).min()?;
    let b = ops
        .iter()
        .map(|o| o.complete_ns.unwrap_or(o.invoke_ns))
        .max()?
        .max(a + 1);
    let pad = ((b - a) / 4).max(1_000_000);
    Some(((a - pad).max(0), (b + pad).min(m.run_end_ns.max(b))))
}

fn counterexample(o: &mut String, c: &Ctx, cex: &Value) {
    let m = c.m;
    let pos = m.op_positions();
    o.push_str(
        "<h3 id=\"counterexample\">Counterexample</h3><div class=\"cex\"><div class=\"cex-svg\">",
    );
    if let Some((a, b)) = cex_window(m) {
        cex_svg(o, c, a, b);
    } else {
        o.push_str("<p class=\"muted\">The counterexample names no op found in the history.</p>");
    }
    o.push_str("</div><div class=\"cex-text\">");
    if let Some(e) = cex.get("explanation").and_then(Value::as_str) {
        let _ = write!(o, "<p class=\"explanation\">{}</p>", esc(e));
    }
    if let Some(k) = cex.get("key").filter(|k| !k.is_null()) {
        let _ = write!(o, "<p>key <code>{}</code></p>", esc(&short_json(k, 80)));
    }
    o.push_str("<table class=\"ops\"><tr><th>op</th><th>proc</th><th>f</th><th>value</th><th>outcome</th><th>invoke</th><th>latency</th></tr>");
    for idx in m.counterexample_ops() {
        let Some(&p) = pos.get(&idx) else {
            let _ = write!(
                o,
                "<tr><td>#{idx}</td><td colspan=\"6\">not in the history</td></tr>"
            );
            continue;
        };
        let op = &m.ops[p];
        let value = if op.f == "read" {
            short_json(&op.complete_value, 40)
        } else {
            short_json(&op.invoke_value, 40)
        };
        let cls = if Some(idx) == c.cex_op {
            " class=\"cex-op\""
        } else {
            ""
        };
        let _ = write!(
            o,
            "<tr{cls}><td>#{idx}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td class=\"o-{}\">{}{}</td><td>{}</td><td>{}</td></tr>",
            esc(&op.process_label()),
            esc(&op.f),
            esc(&value),
            op.outcome.name(),
            op.outcome.name(),
            op.error.as_ref().map(|e| format!(" ({})", esc(e))).unwrap_or_default(),
            at(op.invoke_ns),
            op.latency_ns().map(dur).unwrap_or_else(|| "open".into())
        );
    }
    o.push_str("</table>");
    if let Some(op) = c.cex_op {
        let _ = write!(
            o,
            "<p class=\"muted\">Outlined in red: op #{op}, which no order of the others can explain.</p>"
        );
    }
    if let Some(prefix) = cex.get("prefix").and_then(Value::as_array) {
        let shown: Vec<String> = prefix.iter().take(40).map(|v| format!("#{v}")).collect();
        let more = prefix.len().saturating_sub(40);
        let _ = write!(
            o,
            "<p>Longest linearizable prefix ({} ops): {}{}</p>",
            prefix.len(),
            esc(&shown.join(" ")),
            if more > 0 {
                format!(" … and {more} more")
            } else {
                String::new()
            }
        );
    }
    if let Some(states) = cex.get("states").filter(|s| !s.is_null()) {
        let _ = write!(
            o,
            "<details><summary>Model states reached</summary><pre>{}</pre></details>",
            esc(&pretty_cut(states, 4000))
        );
    }
    o.push_str(
        "<p><button type=\"button\" class=\"zoom-cex\">Show this window in the timeline</button></p></div></div>",
    );
}

/// Full-detail drawing of the counterexample window: every op one by one,
/// the counterexample's ops outlined and labeled.
fn cex_svg(o: &mut String, c: &Ctx, a: i64, b: i64) {
    let m = c.m;
    let cex_key = m
        .counterexample()
        .and_then(|x| x.get("key"))
        .and_then(|k| k.as_str().map(str::to_string));
    let mut sel: Vec<&Op> = m
        .ops
        .iter()
        .filter(|op| {
            // Open ops are drawn while the client waited for them (their
            // dashed tail says they stay open); an info op from long before
            // the window would only add an empty lane.
            let solid_end = op.complete_ns.unwrap_or(op.invoke_ns);
            (op.invoke_ns <= b && solid_end >= a) || c.cex.contains(&op.index)
        })
        .collect();
    if sel.len() > CEX_MAX_OPS {
        // Keep the counterexample and its key first, then the rest.
        sel.sort_by_key(|op| {
            (
                !c.cex.contains(&op.index),
                cex_key.is_some() && op.key != cex_key,
                (op.invoke_ns - a).abs(),
            )
        });
        sel.truncate(CEX_MAX_OPS);
    }
    let pos = m.op_positions();
    let mut lanes: Vec<u32> = sel
        .iter()
        .map(|op| m.lanes.lane_of_op[pos[&op.index]])
        .collect();
    lanes.sort_unstable();
    lanes.dedup();
    let lane_row: HashMap<u32, usize> = lanes.iter().enumerate().map(|(i, l)| (*l, i)).collect();
    let width = 800.0;
    let lane_h = 22.0;
    let top = 18.0;
    let height = top + lanes.len() as f64 * lane_h + 24.0;
    let s = TimeScale::new(a, b, LEFT, width - RIGHT);
    let _ = write!(
        o,
        "<svg class=\"chart\" id=\"cex-svg\" viewBox=\"0 0 {width} {}\" width=\"{width}\" height=\"{}\">",
        px(height),
        px(height)
    );
    // Grid first: ops and points are drawn over it.
    time_axis(o, &s, top, height - 24.0);
    bands(o, c, &s, top, height - 24.0, false);
    for (i, l) in lanes.iter().enumerate() {
        let y = top + i as f64 * lane_h;
        let _ = write!(
            o,
            "<text class=\"lane\" x=\"{}\" y=\"{}\">{}</text>",
            px(LEFT - 6.0),
            px(y + lane_h / 2.0 + 4.0),
            esc(&m.lanes.labels[*l as usize])
        );
    }
    for op in &sel {
        let row = lane_row[&m.lanes.lane_of_op[pos[&op.index]]];
        let y = top + row as f64 * lane_h + 3.0;
        let h = lane_h - 6.0;
        let x0 = s.xc(op.invoke_ns);
        let solid_end = op.complete_ns.unwrap_or(op.invoke_ns);
        let x1 = s.xc(solid_end).max(x0 + 2.0);
        let mut cls = format!("op o-{}", op.outcome.name());
        if c.cex.contains(&op.index) {
            cls.push_str(" cex");
        } else if cex_key.is_some() && op.key != cex_key {
            cls.push_str(" other-key");
        }
        if Some(op.index) == c.cex_op {
            cls.push_str(" cex-op");
        }
        let _ = write!(
            o,
            "<g class=\"{cls}\"><title>{}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>",
            esc(&format!(
                "{} · {}",
                op.describe(),
                op.observed_ns().map(dur).unwrap_or_else(|| "open".into())
            )),
            px(x0),
            px(y),
            px(x1 - x0),
            px(h)
        );
        if op.outcome.is_open() {
            let _ = write!(
                o,
                "<path class=\"tail\" d=\"M{},{}H{}\"/>",
                px(x1),
                px(y + h / 2.0),
                px(s.x1)
            );
        }
        if c.cex.contains(&op.index) || x1 - x0 > 60.0 {
            let label = format!(
                "#{} {} {}",
                op.index,
                op.f,
                if op.f == "read" {
                    short_json(&op.complete_value, 14)
                } else {
                    short_json(&op.invoke_value, 14)
                }
            );
            let _ = write!(
                o,
                "<text x=\"{}\" y=\"{}\">{}</text>",
                px(x0 + 3.0),
                px(y + h - 4.0),
                esc(&label)
            );
        }
        o.push_str("</g>");
    }
    o.push_str("</svg>");
    if sel.len() == CEX_MAX_OPS {
        let _ = write!(
            o,
            "<p class=\"muted\">Only the {CEX_MAX_OPS} ops nearest the counterexample are drawn.</p>"
        );
    }
}

/// Shaded fault bands between `y0` and `y1`; with labels in rows above `y0`.
fn bands(o: &mut String, c: &Ctx, s: &TimeScale, y0: f64, y1: f64, labels: bool) {
    let m = c.m;
    o.push_str("<g class=\"bands\">");
    for (i, b) in m.bands.iter().enumerate() {
        let end = b.end_or(m.run_end_ns);
        if end < s.t0 || b.start_ns > s.t1 {
            continue;
        }
        let x0 = s.xc(b.start_ns);
        let x1 = s.xc(end).max(x0 + 1.0);
        let _ = write!(
            o,
            "<rect class=\"band b-{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{} · {} → {}</title></rect>",
            b.kind.name(),
            px(x0),
            px(y0),
            px(x1 - x0),
            px(y1 - y0),
            esc(&if b.detail.is_empty() {
                b.label.clone()
            } else {
                format!("{} ({})", b.label, b.detail)
            }),
            at(b.start_ns),
            b.end_ns.map(at).unwrap_or_else(|| "end".into())
        );
        let row = c.band_rows.get(i).copied().unwrap_or(0);
        if labels && row < MAX_LABEL_ROWS {
            let row = row as f64;
            let ly = y0 - 4.0 - row * 14.0;
            let _ = write!(
                o,
                "<g class=\"band-label b-{}\" data-a=\"{}\" data-b=\"{}\" data-i=\"{i}\"><path d=\"M{},{}V{}\"/><text x=\"{}\" y=\"{}\">{}</text></g>",
                b.kind.name(),
                b.start_ns / 1000,
                end / 1000,
                px(x0),
                px(ly + 2.0),
                px(y0),
                px(label_x(s, x0, &b.label)),
                px(ly),
                esc(&b.label)
            );
        }
    }
    for (i, mk) in m.markers.iter().enumerate() {
        if mk.time_ns < s.t0 || mk.time_ns > s.t1 {
            continue;
        }
        let x = s.x(mk.time_ns);
        let _ = write!(
            o,
            "<g class=\"marker\"><title>{} at {}</title><path d=\"M{},{}V{}\"/>",
            esc(&mk.label),
            at(mk.time_ns),
            px(x),
            px(y0),
            px(y1)
        );
        let row = c.band_rows.get(m.bands.len() + i).copied().unwrap_or(0);
        if labels && row < MAX_LABEL_ROWS {
            let row = row as f64;
            let ly = y0 - 4.0 - row * 14.0;
            let _ = write!(
                o,
                "<path d=\"M{},{}V{}\"/><text x=\"{}\" y=\"{}\">{}</text>",
                px(x),
                px(ly + 2.0),
                px(y0),
                px(label_x(s, x, &mk.label)),
                px(ly),
                esc(&mk.label)
            );
        }
        o.push_str("</g>");
    }
    o.push_str("</g>");
}

fn legend(o: &mut String, items: &[(&str, &str)]) {
    o.push_str("<div class=\"legend\">");
    for (cls, text) in items {
        let _ = write!(o, "<span><i class=\"{cls}\"></i>{}</span>", esc(text));
    }
    o.push_str("</div>");
}

/// Label rows of the overview's fault bands: a label may be wider than its
/// band, so rows are assigned on the labels' pixel extents (about 6 px per
/// character at the label font), at most `MAX_LABEL_ROWS` rows.
fn band_label_rows(m: &RunModel, s: &TimeScale) -> Vec<usize> {
    let bands = m
        .bands
        .iter()
        .map(|b| (b.start_ns, b.end_or(m.run_end_ns), &b.label));
    let markers = m.markers.iter().map(|k| (k.time_ns, k.time_ns, &k.label));
    let extents: Vec<(f64, f64)> = bands
        .chain(markers)
        .map(|(a, b, label)| {
            let x0 = s.xc(a);
            let tx = label_x(s, x0, label);
            (x0.min(tx), s.xc(b).max(tx + label_width(label)))
        })
        .collect();
    assign_rows(&extents)
}

/// Approximate width of a label at the 10.5 px label font.
fn label_width(label: &str) -> f64 {
    6.0 * label.chars().count() as f64 + 8.0
}

/// Where a label starts: at its band, or pulled left to end inside the chart.
fn label_x(s: &TimeScale, x0: f64, label: &str) -> f64 {
    (x0 + 2.0)
        .min(s.x1 - label_width(label))
        .max(s.x0 - LEFT + 4.0)
}

const MAX_LABEL_ROWS: usize = 6;

fn timeline_section(o: &mut String, c: &Ctx) {
    let m = c.m;
    o.push_str("<section id=\"timeline\"><h2>Timeline</h2>");
    legend(
        o,
        &[
            ("o-ok", "ok"),
            ("o-fail", "fail"),
            ("o-info", "info (open to the end)"),
            ("o-pending", "never completed"),
            ("b-kill", "kill"),
            ("b-pause", "pause"),
            ("b-partition", "partition"),
            ("b-member", "member removed"),
            ("leader", "leader (term)"),
            ("cexl", "counterexample"),
        ],
    );
    if m.lanes.folded {
        let _ = write!(
            o,
            "<p class=\"muted\">{} processes: lanes are workers wN (process mod {}); a worker whose op ended info continues as a new process in the same lane, and the dashed line under the lane marks its open ops.</p>",
            m.ops.iter().map(|op| &op.process).collect::<HashSet<_>>().len(),
            m.lanes.labels.len()
        );
    }
    let n_lanes = m.lanes.labels.len().max(1);
    let lane_h = if n_lanes <= 16 {
        14.0
    } else if n_lanes <= 32 {
        9.0
    } else {
        6.0
    };
    let rows = c
        .band_rows
        .iter()
        .map(|r| r + 1)
        .max()
        .unwrap_or(0)
        .min(MAX_LABEL_ROWS);
    let hidden = c.band_rows.iter().filter(|r| **r >= MAX_LABEL_ROWS).count();
    if hidden > 0 {
        let _ = write!(
            o,
            "<p class=\"muted\">{hidden} fault labels do not fit above the timeline: hover a band for its label, or drag across it for the detail view.</p>"
        );
    }
    let top = 8.0 + rows as f64 * 14.0 + 6.0;
    let lanes_bottom = top + n_lanes as f64 * lane_h;
    let leader_top = lanes_bottom + 10.0;
    let leader_h = 13.0;
    let leaders_bottom = leader_top + m.trace_nodes.len() as f64 * leader_h;
    let axis_y = leaders_bottom + 6.0;
    let height = axis_y + 30.0;
    let s = overview_scale(m);
    let _ = write!(
        o,
        "<svg class=\"chart\" id=\"overview\" viewBox=\"0 0 {W} {h}\" width=\"{W}\" height=\"{h}\" data-w=\"{W}\" data-x0=\"{LEFT}\" data-x1=\"{}\">",
        W - RIGHT,
        h = px(height)
    );
    // Grid first: ops and points are drawn over it.
    time_axis(o, &s, top, axis_y);
    bands(o, c, &s, top, leaders_bottom, true);
    // Counterexample window, under the ops.
    if let Some((a, b)) = cex_window(m) {
        let x0 = s.xc(a);
        let x1 = s.xc(b).max(x0 + 3.0);
        let _ = write!(
            o,
            "<rect class=\"cex-window\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>counterexample window</title></rect>",
            px(x0 - 2.0),
            px(top - 3.0),
            px(x1 - x0 + 4.0),
            px(leaders_bottom - top + 6.0)
        );
    }
    // Lane labels.
    let mut labels = String::new();
    for (i, l) in m.lanes.labels.iter().enumerate() {
        let show = lane_h >= 9.0 || i % 4 == 0;
        if show {
            let _ = write!(
                labels,
                "<text class=\"lane\" x=\"{}\" y=\"{}\">{}</text>",
                px(LEFT - 6.0),
                px(top + i as f64 * lane_h + lane_h - 3.0),
                esc(l)
            );
        }
    }
    o.push_str(&labels);
    // Ops, merged at pixel resolution, per lane.
    let mut per_lane: Vec<Vec<&Op>> = vec![Vec::new(); n_lanes];
    for (i, op) in m.ops.iter().enumerate() {
        per_lane[m.lanes.lane_of_op[i] as usize].push(op);
    }
    let mut paths: BTreeMap<Outcome, String> = BTreeMap::new();
    let mut tails = String::new();
    let bar_h = (lane_h - 3.0).max(2.0);
    for (lane, ops) in per_lane.iter().enumerate() {
        let y = top + lane as f64 * lane_h + 1.0;
        let min_px = 1.0;
        for seg in lane_segments(ops, |t| s.x(t), min_px) {
            let min_w = if seg.outcome == Outcome::Ok { 1.0 } else { 2.0 };
            let w = (seg.x1 - seg.x0).max(min_w);
            // Failures take the lower half of the bar: visible at any
            // density without hiding the ok ops around them.
            let (sy, sh) = if seg.outcome == Outcome::Fail {
                (y + bar_h / 2.0, bar_h / 2.0)
            } else {
                (y, bar_h)
            };
            let _ = write!(
                paths.entry(seg.outcome).or_default(),
                "M{},{}h{}v{}h-{}z",
                px(seg.x0),
                px(sy),
                px(w),
                px(sh),
                px(w)
            );
        }
        // Open ops stay open to the end: a dashed tail through the lane, or
        // along its lower edge when a worker lane goes on with new processes.
        let tail_y = if m.lanes.folded {
            y + bar_h + 0.5
        } else {
            y + bar_h / 2.0
        };
        for op in ops.iter().filter(|op| op.outcome.is_open()) {
            let x = s.x(op.complete_ns.unwrap_or(op.invoke_ns));
            let _ = write!(tails, "M{},{}H{}", px(x), px(tail_y), px(s.x1));
        }
    }
    // Draw rare outcomes over common ones.
    for outcome in [Outcome::Ok, Outcome::Pending, Outcome::Info, Outcome::Fail] {
        if let Some(d) = paths.get(&outcome) {
            let _ = write!(o, "<path class=\"seg o-{}\" d=\"{d}\"/>", outcome.name());
        }
    }
    if !tails.is_empty() {
        let _ = write!(o, "<path class=\"tail\" d=\"{tails}\"/>");
    }
    // Counterexample ops, one by one and outlined.
    let pos = m.op_positions();
    for idx in &c.cex {
        let Some(&p) = pos.get(idx) else { continue };
        let op = &m.ops[p];
        let lane = m.lanes.lane_of_op[p] as f64;
        let x0 = s.x(op.invoke_ns);
        let x1 = s.x(op.complete_ns.unwrap_or(op.invoke_ns)).max(x0 + 3.0);
        let _ = write!(
            o,
            "<rect class=\"cex-mark{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{}</title></rect>",
            if Some(*idx) == c.cex_op { " cex-op" } else { "" },
            px(x0 - 1.0),
            px(top + lane * lane_h),
            px(x1 - x0 + 2.0),
            px(lane_h - 1.0),
            esc(&op.describe())
        );
    }
    // Leader lanes.
    if !m.trace_nodes.is_empty() {
        let _ = write!(
            o,
            "<text class=\"lane lead\" x=\"{}\" y=\"{}\">leaders</text>",
            px(LEFT - 6.0),
            px(leader_top - 2.0)
        );
    }
    let node_row: HashMap<&str, usize> = m
        .trace_nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    for (i, n) in m.trace_nodes.iter().enumerate() {
        let _ = write!(
            o,
            "<text class=\"lane\" x=\"{}\" y=\"{}\">{}</text>",
            px(LEFT - 6.0),
            px(leader_top + i as f64 * leader_h + leader_h - 3.0),
            esc(n)
        );
    }
    for span in &m.leaders {
        let Some(&row) = node_row.get(span.node.as_str()) else {
            continue;
        };
        let y = leader_top + row as f64 * leader_h + 1.0;
        let x0 = s.xc(span.start_ns);
        let x1 = s.xc(span.end_ns).max(x0 + 1.5);
        let term = span
            .term
            .map(|t| t.to_string())
            .unwrap_or_else(|| "?".into());
        let _ = write!(
            o,
            "<g class=\"leader c{}\"><title>{} leader in term {term} from {} to {}{}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>",
            row % 8,
            esc(&span.node),
            at(span.start_ns),
            at(span.end_ns),
            if span.open { " (end of trace)" } else { "" },
            px(x0),
            px(y),
            px(x1 - x0),
            px(leader_h - 3.0)
        );
        if x1 - x0 > 8.0 * (term.len() as f64 + 1.0) + 4.0 {
            let _ = write!(
                o,
                "<text x=\"{}\" y=\"{}\">t{}</text>",
                px(x0 + 2.0),
                px(y + leader_h - 5.0),
                esc(&term)
            );
        }
        o.push_str("</g>");
    }
    for mk in &m.trace_marks {
        let row = mk
            .node
            .as_deref()
            .and_then(|n| node_row.get(n))
            .copied()
            .unwrap_or(0);
        let x = s.xc(mk.time_ns);
        let y = leader_top + row as f64 * leader_h;
        let _ = write!(
            o,
            "<path class=\"safety-mark\" d=\"M{},{}l4,{}h-8z\"><title>{} at {}</title></path>",
            px(x),
            px(y + leader_h),
            px(-leader_h),
            esc(&mk.label),
            at(mk.time_ns)
        );
    }
    o.push_str(
        "<rect class=\"brush\" id=\"brush\" x=\"0\" y=\"0\" width=\"0\" height=\"0\"/></svg>",
    );
    o.push_str(
        "<div class=\"zoombar\"><b>Detail</b>: drag across the timeline above, or click a fault label, to see every op in that window. \
         <button type=\"button\" id=\"zoom-prev\">◀ earlier</button><button type=\"button\" id=\"zoom-next\">later ▶</button>\
         <button type=\"button\" class=\"zoom-cex\">counterexample</button> <span id=\"zoom-info\" class=\"muted\"></span></div>\
         <div id=\"zoom\"><noscript>The detail view needs JavaScript; everything else on this page does not.</noscript></div></section>",
    );
}

fn latency_section(o: &mut String, c: &Ctx) {
    let m = c.m;
    o.push_str("<section id=\"latency\"><h2>Latency</h2>");
    let mut items: Vec<(String, &str)> = Vec::new();
    let mut fs: Vec<&String> = c.f_color.keys().collect();
    fs.sort();
    for f in &fs {
        items.push((
            format!("f-{}", c.f_color[*f].trim_start_matches('#')),
            f.as_str(),
        ));
    }
    o.push_str("<div class=\"legend\">");
    for (cls, text) in &items {
        let color = format!("#{}", cls.trim_start_matches("f-"));
        let _ = write!(
            o,
            "<span><i style=\"background:{color}\"></i>{}</span>",
            esc(text)
        );
    }
    o.push_str(
        "<span>● ok</span><span>× fail</span><span>▲ info (time until the client gave up)</span></div>",
    );
    let pts: Vec<(i64, i64, Outcome, &String)> = m
        .ops
        .iter()
        .filter_map(|op| {
            let l = match op.outcome {
                Outcome::Ok | Outcome::Fail => op.latency_ns(),
                Outcome::Info => op.observed_ns(),
                Outcome::Pending => None,
            }?;
            Some((
                op.complete_ns.unwrap_or(op.invoke_ns),
                l.max(1000),
                op.outcome,
                &op.f,
            ))
        })
        .collect();
    if pts.is_empty() {
        o.push_str("<p class=\"muted\">No completed ops.</p></section>");
        return;
    }
    let lo = pts.iter().map(|p| p.1).min().unwrap_or(1000) as f64;
    let hi = pts.iter().map(|p| p.1).max().unwrap_or(1000) as f64;
    let d0 = lo.log10().floor();
    let d1 = hi.log10().ceil().max(d0 + 1.0);
    let top = 10.0;
    let plot_h = 300.0;
    let bottom = top + plot_h;
    let height = bottom + 30.0;
    let s = TimeScale::new(0, m.run_end_ns.max(1), LEFT, W - RIGHT);
    let y_of = |ns: f64| bottom - (ns.log10() - d0) / (d1 - d0) * plot_h;
    let _ = write!(
        o,
        "<svg class=\"chart\" id=\"latency-plot\" viewBox=\"0 0 {W} {h}\" width=\"{W}\" height=\"{h}\">",
        h = px(height)
    );
    // Grid first: ops and points are drawn over it.
    time_axis(o, &s, top, bottom);
    bands(o, c, &s, top, bottom, false);
    // Decade grid with labels.
    let mut grid = String::new();
    let mut d = d0;
    while d <= d1 + 1e-9 {
        for mult in [1.0, 2.0, 5.0] {
            let v = 10f64.powf(d) * mult;
            if v > 10f64.powf(d1) * 1.0001 {
                continue;
            }
            let y = y_of(v);
            let _ = write!(grid, "M{},{}H{}", px(LEFT), px(y), px(W - RIGHT));
            let _ = write!(
                o,
                "<text class=\"ylab\" x=\"{}\" y=\"{}\">{}</text>",
                px(LEFT - 6.0),
                px(y + 4.0),
                esc(&dur(v as i64))
            );
        }
        d += 1.0;
    }
    let _ = write!(o, "<path class=\"grid\" d=\"{grid}\"/>");
    let dots = dedupe_points(
        pts.iter()
            .map(|(t, l, outcome, f)| ((*f, *outcome), s.x(*t), y_of(*l as f64))),
        2.0,
    );
    let mut series: BTreeMap<(&String, Outcome), String> = BTreeMap::new();
    for ((f, outcome), x, y) in dots {
        let d = series.entry((f, outcome)).or_default();
        let (x, y) = (px(x), px(y));
        match outcome {
            Outcome::Ok => {
                let _ = write!(d, "M{x},{y}h0");
            }
            Outcome::Fail => {
                let _ = write!(d, "M{x},{y}m-2,-2l4,4m0,-4l-4,4");
            }
            _ => {
                let _ = write!(d, "M{x},{y}m-2.5,2l2.5,-4l2.5,4z");
            }
        }
    }
    for ((f, outcome), d) in &series {
        let _ = write!(
            o,
            "<path class=\"pts p-{}\" stroke=\"{}\" d=\"{d}\"><title>{} {}</title></path>",
            outcome.name(),
            c.f_color[*f],
            esc(f),
            outcome.name()
        );
    }
    o.push_str("</svg>");
    let _ = write!(
        o,
        "<p class=\"muted\">{} points; overlapping points within 2 px are drawn once.</p></section>",
        pts.len()
    );
}

fn throughput_section(o: &mut String, c: &Ctx) {
    let m = c.m;
    o.push_str("<section id=\"throughput\"><h2>Throughput</h2>");
    legend(o, &[("o-ok", "ok"), ("o-fail", "fail"), ("o-info", "info")]);
    let t = throughput(&m.ops, m.run_end_ns, 200);
    let per_s = 1e9 / t.bin_ns as f64;
    let max = t
        .bins
        .iter()
        .map(|b| (b[0] + b[1] + b[2]) as f64 * per_s)
        .fold(0.0, f64::max);
    let ymax = if max <= 0.0 {
        1.0
    } else {
        nice_step(max / 4.0) * 4.0
    };
    let ymax = if ymax < max {
        ymax + nice_step(max / 4.0)
    } else {
        ymax
    };
    let top = 10.0;
    let plot_h = 200.0;
    let bottom = top + plot_h;
    let height = bottom + 30.0;
    let s = TimeScale::new(0, m.run_end_ns.max(1), LEFT, W - RIGHT);
    let _ = write!(
        o,
        "<svg class=\"chart\" id=\"throughput-plot\" viewBox=\"0 0 {W} {h}\" width=\"{W}\" height=\"{h}\">",
        h = px(height)
    );
    // Grid first: ops and points are drawn over it.
    time_axis(o, &s, top, bottom);
    bands(o, c, &s, top, bottom, false);
    let step = nice_step(ymax / 4.0);
    let mut grid = String::new();
    let mut v = 0.0;
    while v <= ymax + 1e-9 {
        let y = bottom - v / ymax * plot_h;
        let _ = write!(grid, "M{},{}H{}", px(LEFT), px(y), px(W - RIGHT));
        let _ = write!(
            o,
            "<text class=\"ylab\" x=\"{}\" y=\"{}\">{}/s</text>",
            px(LEFT - 6.0),
            px(y + 4.0),
            v
        );
        v += step;
    }
    let _ = write!(o, "<path class=\"grid\" d=\"{grid}\"/>");
    let mut d = [String::new(), String::new(), String::new()];
    for (i, bin) in t.bins.iter().enumerate() {
        let x0 = s.x(i as i64 * t.bin_ns);
        let x1 = s.x((i as i64 + 1) * t.bin_ns).min(s.x1);
        let w = (x1 - x0 - 0.5).max(0.5);
        let mut acc = 0.0;
        for k in 0..3 {
            if bin[k] == 0 {
                continue;
            }
            let h = bin[k] as f64 * per_s / ymax * plot_h;
            let y = bottom - acc - h;
            acc += h;
            let _ = write!(
                d[k],
                "M{},{}h{}v{}h-{}z",
                px(x0),
                px(y),
                px(w),
                px(h),
                px(w)
            );
        }
    }
    for (k, name) in ["ok", "fail", "info"].iter().enumerate() {
        if !d[k].is_empty() {
            let _ = write!(o, "<path class=\"seg o-{name}\" d=\"{}\"/>", d[k]);
        }
    }
    let _ = write!(
        o,
        "</svg><p class=\"muted\">Completions per second in bins of {}.</p></section>",
        dur(t.bin_ns)
    );
}

fn percentile_section(o: &mut String, c: &Ctx) {
    let m = c.m;
    o.push_str("<section id=\"percentiles\"><h2>Latency percentiles</h2>");
    let rows = latency_table(&m.ops);
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
    for (f, n) in counts_by_f(&m.ops) {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&f),
            n[0],
            n[1],
            n[2],
            n[3]
        );
    }
    o.push_str("</table>");
    if let Some(faults) = m
        .results
        .as_ref()
        .and_then(|r| r.pointer("/stats/faults"))
        .and_then(Value::as_array)
        .filter(|f| !f.is_empty())
    {
        o.push_str("<h3>Outcomes during faults</h3><table class=\"num\"><tr><th>fault</th><th>from</th><th>to</th><th>ok</th><th>fail</th><th>info</th></tr>");
        for f in faults {
            let g = |k: &str| f.get(k).map(|v| short_json(v, 30)).unwrap_or_default();
            let t = |k: &str| {
                f.get(k)
                    .and_then(Value::as_i64)
                    .map(dur)
                    .unwrap_or_default()
            };
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(f.get("f").and_then(Value::as_str).unwrap_or("?")),
                t("start_ns"),
                t("end_ns"),
                esc(&g("ok")),
                esc(&g("fail")),
                esc(&g("info"))
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</section>");
}

fn config_section(o: &mut String, c: &Ctx) {
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

/// The data the detail view draws from: every op, compactly (times in µs):
/// `[index, lane, f, key, invoke, completion or -1, outcome, value, process]`.
fn embedded_data(c: &Ctx) -> String {
    let m = c.m;
    let mut fs: Vec<&String> = c.f_color.keys().collect();
    fs.sort();
    let f_index: HashMap<&String, usize> = fs.iter().enumerate().map(|(i, f)| (*f, i)).collect();
    let mut keys: Vec<&String> = m.ops.iter().filter_map(|o| o.key.as_ref()).collect();
    keys.sort();
    keys.dedup();
    let k_index: HashMap<&String, usize> = keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    // Long runs keep the counterexample and the edges of every fault in
    // full, then as much of the run from its start as fits.
    let mut priority: Vec<(i64, i64)> = cex_window(m).into_iter().collect();
    for b in &m.bands {
        priority.push((b.start_ns - EDGE_NS, b.start_ns + 2 * EDGE_NS));
        if let Some(e) = b.end_ns {
            priority.push((e - EDGE_NS, e + 2 * EDGE_NS));
        }
    }
    let (chosen, covered) = embed_selection(&m.ops, &priority, EMBED_MAX_OPS);
    let ops: Vec<Value> = chosen
        .into_iter()
        .map(|i| (i, &m.ops[i]))
        .map(|(i, op)| {
            let v = if op.f == "read" {
                short_json(&op.complete_value, 24)
            } else {
                short_json(&op.invoke_value, 24)
            };
            json!([
                op.index,
                m.lanes.lane_of_op[i],
                f_index[&op.f],
                op.key.as_ref().map(|k| k_index[k] as i64).unwrap_or(-1),
                op.invoke_ns / 1000,
                op.complete_ns.map(|c| c / 1000).unwrap_or(-1),
                op.outcome.code(),
                v,
                op.process_label()
            ])
        })
        .collect();
    let bands: Vec<Value> = m
        .bands
        .iter()
        .map(|b| {
            json!([
                b.start_ns / 1000,
                b.end_or(m.run_end_ns) / 1000,
                b.kind.name(),
                b.label
            ])
        })
        .collect();
    let mut cex: Vec<u64> = c.cex.iter().copied().collect();
    cex.sort_unstable();
    let data = json!({
        "t1": m.run_end_ns / 1000,
        "lanes": m.lanes.labels,
        "fs": fs,
        "fc": fs.iter().map(|f| c.f_color[*f]).collect::<Vec<_>>(),
        "keys": keys,
        "ops": ops,
        "bands": bands,
        "cex": cex,
        "cexop": c.cex_op,
        "cexw": cex_window(m).map(|(a, b)| [a / 1000, b / 1000]),
        "total": m.ops.len(),
        "covered": covered
            .iter()
            .map(|&(a, b)| [a.max(0) / 1000, b.min(m.run_end_ns) / 1000])
            .collect::<Vec<_>>(),
    });
    data.to_string()
}
