//! The counterexample in full detail: the window around the ops the
//! checker named, every op in it one by one (the named ones outlined, the
//! op no order can explain in red), beside the checker's explanation and a
//! table of the named ops.

use std::collections::HashMap;
use std::fmt::Write;

use checker::Counterexample;
use serde_json::Value;

use super::svg::{at, dur, esc, px, time_axis, TimeScale};
use super::{bands, pretty_cut, Ctx, LEFT, RIGHT};
use crate::report::derive::ops::{short_json, Op};
use crate::report::derive::CounterexampleView;

/// Ops drawn one by one in the counterexample window at most.
pub(super) const CEX_MAX_OPS: usize = 1500;

pub(super) fn section(o: &mut String, c: &Ctx, cex: &Counterexample, view: &CounterexampleView) {
    o.push_str(
        "<h3 id=\"counterexample\">Counterexample</h3><div class=\"cex\"><div class=\"cex-svg\">",
    );
    match view.window {
        Some((a, b)) => drawing(o, c, view, a, b),
        None => o.push_str(
            "<p class=\"muted\">The counterexample names no op found in the history.</p>",
        ),
    }
    o.push_str("</div><div class=\"cex-text\">");
    if !cex.explanation.is_empty() {
        let _ = write!(o, "<p class=\"explanation\">{}</p>", esc(&cex.explanation));
    }
    if let Some(k) = &cex.key {
        let _ = write!(o, "<p>key <code>{}</code></p>", esc(k));
    }
    named_table(o, c, view);
    if let Some(op) = c.cex_op {
        let _ = write!(
            o,
            "<p class=\"muted\">Outlined in red: op #{op}, which no order of the others can explain.</p>"
        );
    }
    let prefix = &cex.prefix;
    if !prefix.is_empty() {
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
    if !cex.states.is_empty() {
        let states = Value::Array(cex.states.clone());
        let _ = write!(
            o,
            "<details><summary>Model states reached</summary><pre>{}</pre></details>",
            esc(&pretty_cut(&states, 4000))
        );
    }
    o.push_str(
        "<p><button type=\"button\" class=\"zoom-cex\">Show this window in the timeline</button></p></div></div>",
    );
}

/// One row per named op, in index order.
fn named_table(o: &mut String, c: &Ctx, view: &CounterexampleView) {
    let found: HashMap<u64, &Op> = view.named_ops.iter().map(|op| (op.index, op)).collect();
    o.push_str("<table class=\"ops\"><tr><th>op</th><th>proc</th><th>f</th><th>value</th><th>outcome</th><th>invoke</th><th>latency</th></tr>");
    for &idx in &view.named {
        let Some(op) = found.get(&idx) else {
            let _ = write!(
                o,
                "<tr><td>#{idx}</td><td colspan=\"6\">not in the history</td></tr>"
            );
            continue;
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
            esc(&short_json(op.shown_value(), 40)),
            op.outcome.name(),
            op.outcome.name(),
            op.error.as_ref().map(|e| format!(" ({})", esc(e))).unwrap_or_default(),
            at(op.invoke_ns),
            op.latency_ns().map(dur).unwrap_or_else(|| "open".into())
        );
    }
    o.push_str("</table>");
}

/// The ops drawn: the named ones and those on their key first, then the
/// ones nearest the window's start, at most [`CEX_MAX_OPS`].
fn drawn_ops<'a>(c: &Ctx, view: &'a CounterexampleView, a: i64) -> Vec<&'a Op> {
    let mut sel: Vec<&Op> = view.window_ops.iter().collect();
    if sel.len() > CEX_MAX_OPS {
        sel.sort_by_key(|op| {
            (
                !c.cex.contains(&op.index),
                view.key.is_some() && op.key != view.key,
                (op.invoke_ns - a).abs(),
            )
        });
        sel.truncate(CEX_MAX_OPS);
    }
    sel
}

/// Full-detail drawing of the window: every op one by one, the named ops
/// outlined and labeled, ops on other keys faded.
fn drawing(o: &mut String, c: &Ctx, view: &CounterexampleView, a: i64, b: i64) {
    let lanes_of = &c.m.history.lanes;
    let sel = drawn_ops(c, view, a);
    let mut lanes: Vec<usize> = sel
        .iter()
        .filter_map(|op| lanes_of.lane_of(&op.process))
        .collect();
    lanes.sort_unstable();
    lanes.dedup();
    let lane_row: HashMap<usize, usize> = lanes.iter().enumerate().map(|(i, l)| (*l, i)).collect();
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
    bands::draw(o, c, &s, top, height - 24.0, false);
    for (i, l) in lanes.iter().enumerate() {
        let y = top + i as f64 * lane_h;
        let _ = write!(
            o,
            "<text class=\"lane\" x=\"{}\" y=\"{}\">{}</text>",
            px(LEFT - 6.0),
            px(y + lane_h / 2.0 + 4.0),
            esc(&lanes_of.labels[*l])
        );
    }
    for op in &sel {
        let Some(row) = lanes_of.lane_of(&op.process).map(|l| lane_row[&l]) else {
            continue;
        };
        let y = top + row as f64 * lane_h + 3.0;
        op_mark(o, c, view, op, &s, y, lane_h - 6.0);
    }
    o.push_str("</svg>");
    if view.window_ops.len() > CEX_MAX_OPS || !view.complete {
        let _ = write!(
            o,
            "<p class=\"muted\">Only the {CEX_MAX_OPS} ops nearest the counterexample are drawn.</p>"
        );
    }
}

/// One op of the window: its bar, its dashed tail if open, its label if
/// it is named or wide enough.
fn op_mark(
    o: &mut String,
    c: &Ctx,
    view: &CounterexampleView,
    op: &Op,
    s: &TimeScale,
    y: f64,
    h: f64,
) {
    let x0 = s.xc(op.invoke_ns);
    let x1 = s.xc(op.solid_end_ns()).max(x0 + 2.0);
    let named = c.cex.contains(&op.index);
    let mut cls = format!("op o-{}", op.outcome.name());
    if named {
        cls.push_str(" cex");
    } else if view.key.is_some() && op.key != view.key {
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
    if named || x1 - x0 > 60.0 {
        let label = format!(
            "#{} {} {}",
            op.index,
            op.f,
            short_json(op.shown_value(), 14)
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
