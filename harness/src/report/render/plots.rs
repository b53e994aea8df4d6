//! The latency scatter (log scale, a color per op type; ● ok, × fail,
//! ▲ time until an info op was given up) and the throughput bars
//! (completions per second by outcome), both under the fault bands.

use std::fmt::Write;

use super::svg::{dur, esc, px, time_axis};
use super::{bands, legend, Ctx, LEFT, RIGHT, W};
use crate::report::derive::ops::OpOutcome;
use crate::report::derive::plots::{cell_latency, nice_step, LatencyScatter, WORDS};

pub(super) fn latency_section(o: &mut String, c: &Ctx) {
    let m = c.m;
    let scatter = &m.history.scatter;
    o.push_str("<section id=\"latency\"><h2>Latency</h2><div class=\"legend\">");
    for f in &m.history.fs {
        let _ = write!(
            o,
            "<span><i style=\"background:{}\"></i>{}</span>",
            c.f_color[f],
            esc(f)
        );
    }
    o.push_str(
        "<span>● ok</span><span>× fail</span><span>▲ info (time until the client gave up)</span></div>",
    );
    if scatter.points == 0 {
        o.push_str("<p class=\"muted\">No completed ops.</p></section>");
        return;
    }
    let d0 = (scatter.min_ns as f64).log10().floor();
    let d1 = (scatter.max_ns as f64).log10().ceil().max(d0 + 1.0);
    let top = 10.0;
    let plot_h = 300.0;
    let bottom = top + plot_h;
    let height = bottom + 30.0;
    let s = c.overview_scale();
    let y_of = |ns: f64| bottom - (ns.log10() - d0) / (d1 - d0) * plot_h;
    let _ = write!(
        o,
        "<svg class=\"chart\" id=\"latency-plot\" viewBox=\"0 0 {W} {h}\" width=\"{W}\" height=\"{h}\">",
        h = px(height)
    );
    // Grid first: ops and points are drawn over it.
    time_axis(o, &s, top, bottom);
    bands::draw(o, c, &s, top, bottom, false);
    decade_grid(o, d0, d1, &y_of);
    for (f, per_outcome) in &scatter.series {
        for outcome in OpOutcome::ALL {
            let bits = &per_outcome[outcome.code() as usize];
            if !bits.is_empty() {
                scatter_series(o, c, f, outcome, bits, &y_of);
            }
        }
    }
    o.push_str("</svg>");
    let _ = write!(
        o,
        "<p class=\"muted\">{} points; points within 2 px of each other are drawn once.</p></section>",
        scatter.points
    );
}

/// One series' marks: a dot, a cross or a triangle per occupied 2 × 2 px.
fn scatter_series(
    o: &mut String,
    c: &Ctx,
    f: &str,
    outcome: OpOutcome,
    bits: &[[u64; WORDS]],
    y_of: &dyn Fn(f64) -> f64,
) {
    let mut d = String::new();
    let mut last: Option<(usize, i64, f64)> = None;
    for (col, cell) in LatencyScatter::cells(bits) {
        let yv = (y_of(cell_latency(cell)) * 10.0).round() / 10.0;
        // One mark per 2 × 2 px: finer cells would only overdraw.
        let bucket = (yv / 2.0).floor() as i64;
        let prev = last.filter(|l| l.0 == col);
        if prev.is_some_and(|l| l.1 == bucket) {
            continue;
        }
        last = Some((col, bucket, yv));
        let (x, y) = (px(LEFT + 2.0 * col as f64 + 1.0), px(yv));
        match (outcome, prev) {
            // Dots down a column: each a short relative move from the last.
            (OpOutcome::Ok, Some(p)) => {
                let _ = write!(d, "m0,{}h0", px(yv - p.2));
            }
            (OpOutcome::Ok, None) => {
                let _ = write!(d, "M{x},{y}h0");
            }
            (OpOutcome::Fail, _) => {
                let _ = write!(d, "M{x},{y}m-2,-2l4,4m0,-4l-4,4");
            }
            _ => {
                let _ = write!(d, "M{x},{y}m-2.5,2l2.5,-4l2.5,4z");
            }
        }
    }
    let _ = write!(
        o,
        "<path class=\"pts p-{}\" stroke=\"{}\" d=\"{d}\"><title>{} {}</title></path>",
        outcome.name(),
        c.f_color[f],
        esc(f),
        outcome.name()
    );
}

/// Horizontal lines and labels at 1, 2 and 5 of each decade.
fn decade_grid(o: &mut String, d0: f64, d1: f64, y_of: &dyn Fn(f64) -> f64) {
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
}

pub(super) fn throughput_section(o: &mut String, c: &Ctx) {
    let t = &c.m.history.throughput;
    o.push_str("<section id=\"throughput\"><h2>Throughput</h2>");
    legend(o, &[("o-ok", "ok"), ("o-fail", "fail"), ("o-info", "info")]);
    let per_s = 1e9 / t.bin_ns as f64;
    let max = t
        .bins
        .iter()
        .map(|b| (b[0] + b[1] + b[2]) as f64 * per_s)
        .fold(0.0, f64::max);
    let step = if max <= 0.0 {
        0.25
    } else {
        nice_step(max / 4.0)
    };
    let ymax = (max / step).ceil().max(1.0) * step;
    let top = 10.0;
    let plot_h = 200.0;
    let bottom = top + plot_h;
    let height = bottom + 30.0;
    let s = c.overview_scale();
    let _ = write!(
        o,
        "<svg class=\"chart\" id=\"throughput-plot\" viewBox=\"0 0 {W} {h}\" width=\"{W}\" height=\"{h}\">",
        h = px(height)
    );
    // Grid first: bars are drawn over it.
    time_axis(o, &s, top, bottom);
    bands::draw(o, c, &s, top, bottom, false);
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
