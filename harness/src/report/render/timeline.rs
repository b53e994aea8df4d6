//! The timeline: one lane per client process (or worker), ops aggregated
//! to pixel columns by outcome, fault bands with their labels, the leader
//! lanes, the counterexample's window and ops, and the bar under it that
//! drives the detail view.

use std::collections::HashMap;
use std::fmt::Write;

use super::svg::{at, esc, px, time_axis, TimeScale};
use super::{bands, legend, Ctx, LEFT, RIGHT, W};
use crate::report::derive::leaders::LeaderSource;
use crate::report::derive::ops::OpOutcome;

/// Vertical layout of the overview.
struct Layout {
    top: f64,
    lane_h: f64,
    leader_top: f64,
    leader_h: f64,
    leaders_bottom: f64,
    axis_y: f64,
    height: f64,
}

impl Layout {
    fn new(c: &Ctx) -> Layout {
        let n_lanes = c.m.history.lanes.labels.len().max(1);
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
            .min(bands::MAX_LABEL_ROWS);
        let top = 8.0 + rows as f64 * 14.0 + 6.0;
        let leader_top = top + n_lanes as f64 * lane_h + 10.0;
        let leader_h = 13.0;
        let leaders_bottom = leader_top + c.m.leaders.nodes.len() as f64 * leader_h;
        let axis_y = leaders_bottom + 6.0;
        Layout {
            top,
            lane_h,
            leader_top,
            leader_h,
            leaders_bottom,
            axis_y,
            height: axis_y + 30.0,
        }
    }

    fn lane_y(&self, lane: usize) -> f64 {
        self.top + lane as f64 * self.lane_h
    }
}

pub(super) fn section(o: &mut String, c: &Ctx) {
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
    notes(o, c);
    let l = Layout::new(c);
    let s = c.overview_scale();
    let _ = write!(
        o,
        "<svg class=\"chart\" id=\"overview\" viewBox=\"0 0 {W} {h}\" width=\"{W}\" height=\"{h}\" data-w=\"{W}\" data-x0=\"{LEFT}\" data-x1=\"{}\">",
        W - RIGHT,
        h = px(l.height)
    );
    // Grid first: ops and points are drawn over it.
    time_axis(o, &s, l.top, l.axis_y);
    bands::draw(o, c, &s, l.top, l.leaders_bottom, true);
    cex_window(o, c, &s, &l);
    lane_labels(o, c, &l);
    lane_bars(o, c, &l);
    cex_marks(o, c, &s, &l);
    leader_lanes(o, c, &s, &l);
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

/// What the reader should know before reading the lanes.
fn notes(o: &mut String, c: &Ctx) {
    let lanes = &c.m.history.lanes;
    if lanes.folded() {
        let _ = write!(
            o,
            "<p class=\"muted\">Processes up to p{}: lanes are workers wN (process mod {}); a worker whose op ended info continues as a new process in the same lane, and the dashed line under the lane marks its open ops.</p>",
            lanes.max_client.unwrap_or(0),
            lanes.labels.len()
        );
    }
    let hidden = c
        .band_rows
        .iter()
        .filter(|r| **r >= bands::MAX_LABEL_ROWS)
        .count();
    if hidden > 0 {
        let _ = write!(
            o,
            "<p class=\"muted\">{hidden} fault labels do not fit above the timeline: hover a band for its label, or drag across it for the detail view.</p>"
        );
    }
    if c.m.leaders.source == Some(LeaderSource::Observations) {
        o.push_str("<p class=\"muted\">Leaders as polled by an observer (observations.jsonl): the run has no node traces.</p>");
    }
}

/// The counterexample's window, under the ops.
fn cex_window(o: &mut String, c: &Ctx, s: &TimeScale, l: &Layout) {
    let Some((a, b)) = c.m.counterexample.as_ref().and_then(|v| v.window) else {
        return;
    };
    let x0 = s.xc(a);
    let x1 = s.xc(b).max(x0 + 3.0);
    let _ = write!(
        o,
        "<rect class=\"cex-window\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>counterexample window</title></rect>",
        px(x0 - 2.0),
        px(l.top - 3.0),
        px(x1 - x0 + 4.0),
        px(l.leaders_bottom - l.top + 6.0)
    );
}

fn lane_labels(o: &mut String, c: &Ctx, l: &Layout) {
    for (i, label) in c.m.history.lanes.labels.iter().enumerate() {
        if l.lane_h >= 9.0 || i % 4 == 0 {
            let _ = write!(
                o,
                "<text class=\"lane\" x=\"{}\" y=\"{}\">{}</text>",
                px(LEFT - 6.0),
                px(l.lane_y(i) + l.lane_h - 3.0),
                esc(label)
            );
        }
    }
}

/// Each lane's covered columns as bars, one path per outcome; failures in
/// the lower half of the bar (visible at any density without hiding the ok
/// ops around them), rare outcomes drawn over common ones; open ops' dashed
/// tails to the end of the run.
fn lane_bars(o: &mut String, c: &Ctx, l: &Layout) {
    let lanes = &c.m.history.lanes;
    let bar_h = (l.lane_h - 3.0).max(2.0);
    let mut paths: [String; 4] = Default::default();
    let mut tails = String::new();
    for (lane, cov) in lanes.coverage.iter().enumerate() {
        let y = l.lane_y(lane) + 1.0;
        for outcome in OpOutcome::ALL {
            let (sy, sh) = if outcome == OpOutcome::Fail {
                (y + bar_h / 2.0, bar_h / 2.0)
            } else {
                (y, bar_h)
            };
            let min_w = if outcome == OpOutcome::Ok { 1.0 } else { 2.0 };
            for (first, last) in cov.runs(outcome) {
                let w = ((last - first + 1) as f64).max(min_w);
                let _ = write!(
                    paths[outcome.code() as usize],
                    "M{},{}h{}v{}h-{}z",
                    px(LEFT + first as f64),
                    px(sy),
                    px(w),
                    px(sh),
                    px(w)
                );
            }
        }
        // Along the lane's middle, or its lower edge when a worker lane goes
        // on with new processes.
        if let Some(x) = cov.tail_from {
            let tail_y = if lanes.folded() {
                y + bar_h + 0.5
            } else {
                y + bar_h / 2.0
            };
            let _ = write!(tails, "M{},{}H{}", px(LEFT + x), px(tail_y), px(W - RIGHT));
        }
    }
    for outcome in [
        OpOutcome::Ok,
        OpOutcome::Pending,
        OpOutcome::Info,
        OpOutcome::Fail,
    ] {
        let d = &paths[outcome.code() as usize];
        if !d.is_empty() {
            let _ = write!(o, "<path class=\"seg o-{}\" d=\"{d}\"/>", outcome.name());
        }
    }
    if !tails.is_empty() {
        let _ = write!(o, "<path class=\"tail\" d=\"{tails}\"/>");
    }
}

/// The counterexample's named ops, one by one and outlined.
fn cex_marks(o: &mut String, c: &Ctx, s: &TimeScale, l: &Layout) {
    let Some(view) = &c.m.counterexample else {
        return;
    };
    for op in &view.named_ops {
        let Some(lane) = c.m.history.lanes.lane_of(&op.process) else {
            continue;
        };
        let x0 = s.x(op.invoke_ns);
        let x1 = s.x(op.solid_end_ns()).max(x0 + 3.0);
        let _ = write!(
            o,
            "<rect class=\"cex-mark{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{}</title></rect>",
            if Some(op.index) == c.cex_op { " cex-op" } else { "" },
            px(x0 - 1.0),
            px(l.lane_y(lane)),
            px(x1 - x0 + 2.0),
            px(l.lane_h - 1.0),
            esc(&op.describe())
        );
    }
}

/// A row per node: its leaderships with their terms, and the Raft-safety
/// violations the checker placed in time.
fn leader_lanes(o: &mut String, c: &Ctx, s: &TimeScale, l: &Layout) {
    let leaders = &c.m.leaders;
    if leaders.nodes.is_empty() {
        return;
    }
    let _ = write!(
        o,
        "<text class=\"lane lead\" x=\"{}\" y=\"{}\">leaders</text>",
        px(LEFT - 6.0),
        px(l.leader_top - 2.0)
    );
    let node_row: HashMap<&str, usize> = leaders
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    for (i, n) in leaders.nodes.iter().enumerate() {
        let _ = write!(
            o,
            "<text class=\"lane\" x=\"{}\" y=\"{}\">{}</text>",
            px(LEFT - 6.0),
            px(l.leader_top + i as f64 * l.leader_h + l.leader_h - 3.0),
            esc(n)
        );
    }
    for span in &leaders.spans {
        let Some(&row) = node_row.get(span.node.as_str()) else {
            continue;
        };
        let y = l.leader_top + row as f64 * l.leader_h + 1.0;
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
            px(l.leader_h - 3.0)
        );
        if x1 - x0 > 8.0 * (term.len() as f64 + 1.0) + 4.0 {
            let _ = write!(
                o,
                "<text x=\"{}\" y=\"{}\">t{}</text>",
                px(x0 + 2.0),
                px(y + l.leader_h - 5.0),
                esc(&term)
            );
        }
        o.push_str("</g>");
    }
    for mk in &c.m.trace_marks {
        let row = mk
            .node
            .as_deref()
            .and_then(|n| node_row.get(n))
            .copied()
            .unwrap_or(0);
        let x = s.xc(mk.time_ns);
        let y = l.leader_top + row as f64 * l.leader_h;
        let _ = write!(
            o,
            "<path class=\"safety-mark\" d=\"M{},{}l4,{}h-8z\"><title>{} at {}</title></path>",
            px(x),
            px(y + l.leader_h),
            px(-l.leader_h),
            esc(&mk.label),
            at(mk.time_ns)
        );
    }
}
