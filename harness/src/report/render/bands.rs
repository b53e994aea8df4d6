//! Fault bands and markers, drawn the same way under every time plot;
//! above the overview, with labels stacked in rows so that none overlaps.

use std::fmt::Write;

use super::svg::{at, esc, px, TimeScale};
use super::{Ctx, LEFT};
use crate::report::derive::faults::assign_rows;
use crate::report::derive::RunModel;

/// Shaded fault bands between `y0` and `y1`; with labels in rows above `y0`.
pub(super) fn draw(o: &mut String, c: &Ctx, s: &TimeScale, y0: f64, y1: f64, labels: bool) {
    let m = c.m;
    let run_end = m.run_end_ns();
    let h = &m.history;
    o.push_str("<g class=\"bands\">");
    for (i, b) in h.bands.iter().enumerate() {
        let end = b.end_or(run_end);
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
    for (i, mk) in h.markers.iter().enumerate() {
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
        let row = c.band_rows.get(h.bands.len() + i).copied().unwrap_or(0);
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

/// Label rows of the overview's fault bands: a label may be wider than its
/// band, so rows are assigned on the labels' pixel extents (about 6 px per
/// character at the label font), at most `MAX_LABEL_ROWS` rows.
pub(super) fn label_rows(m: &RunModel, s: &TimeScale) -> Vec<usize> {
    let run_end = m.run_end_ns();
    let bands = m
        .history
        .bands
        .iter()
        .map(|b| (b.start_ns, b.end_or(run_end), &b.label));
    let markers = m
        .history
        .markers
        .iter()
        .map(|k| (k.time_ns, k.time_ns, &k.label));
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

/// Rows of fault labels above the overview at most.
pub(super) const MAX_LABEL_ROWS: usize = 6;
