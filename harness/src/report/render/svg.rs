//! Small helpers for hand-written SVG and HTML: escaping, compact number
//! formatting (bytes matter at 100k ops), time scales and axes.

use std::fmt::Write;

use crate::report::derive::plots::nice_step;

/// Escapes text for HTML/SVG element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A pixel coordinate with at most one decimal, without trailing zeros.
pub fn px(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

/// Human duration from nanoseconds: `850 µs`, `12.3 ms`, `4.20 s`, `3 min 5 s`.
pub fn dur(ns: i64) -> String {
    let a = ns.unsigned_abs() as f64;
    let sign = if ns < 0 { "-" } else { "" };
    if a < 1e3 {
        format!("{sign}{a:.0} ns")
    } else if a < 1e6 {
        format!("{sign}{:.0} µs", a / 1e3)
    } else if a < 1e9 {
        let ms = a / 1e6;
        if ms < 10.0 {
            format!("{sign}{ms:.2} ms")
        } else {
            format!("{sign}{ms:.1} ms")
        }
    } else if a < 120e9 {
        format!("{sign}{:.2} s", a / 1e9)
    } else {
        let s = (a / 1e9).round() as i64;
        format!("{sign}{} min {} s", s / 60, s % 60)
    }
}

/// A linear mapping from run time to x pixels.
#[derive(Debug, Clone, Copy)]
pub struct TimeScale {
    pub t0: i64,
    pub t1: i64,
    pub x0: f64,
    pub x1: f64,
}

impl TimeScale {
    pub fn new(t0: i64, t1: i64, x0: f64, x1: f64) -> TimeScale {
        TimeScale {
            t0,
            t1: t1.max(t0 + 1),
            x0,
            x1,
        }
    }

    pub fn x(&self, t: i64) -> f64 {
        let f = (t - self.t0) as f64 / (self.t1 - self.t0) as f64;
        self.x0 + f * (self.x1 - self.x0)
    }

    /// Clamped to the plot area, for things that start before or end after it.
    pub fn xc(&self, t: i64) -> f64 {
        self.x(t).clamp(self.x0, self.x1)
    }

    /// Tick times at a nice step, about `n` of them.
    pub fn ticks(&self, n: usize) -> (Vec<i64>, i64) {
        let step = (nice_step((self.t1 - self.t0) as f64 / n.max(1) as f64) as i64).max(1);
        let first = (self.t0 + step - 1).div_euclid(step) * step;
        let mut out = Vec::new();
        let mut t = first;
        while t <= self.t1 {
            out.push(t);
            t += step;
        }
        (out, step)
    }
}

/// Decimals needed to tell apart ticks `step` units apart.
fn decimals(step: f64) -> usize {
    if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil().clamp(0.0, 9.0) as usize
    }
}

/// Label for a tick at `t` on an axis whose step is `step` (both ns):
/// milliseconds in the first second, seconds after, always with enough
/// decimals that neighbouring ticks differ.
pub fn tick_label(t: i64, step: i64) -> String {
    if t.abs() < 1_000_000_000 && step < 1_000_000_000 {
        format!("{:.*}ms", decimals(step as f64 / 1e6), t as f64 / 1e6)
    } else {
        format!("{:.*}s", decimals(step as f64 / 1e9), t as f64 / 1e9)
    }
}

/// A point in the run, in seconds with millisecond precision: `300.012 s`.
pub fn at(ns: i64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

/// A time axis with grid lines from `y_top` to `y_axis`, labels below.
pub fn time_axis(out: &mut String, s: &TimeScale, y_top: f64, y_axis: f64) {
    let (ticks, step) = s.ticks(10);
    let _ = write!(out, "<g class=\"axis\">");
    let mut grid = String::new();
    for t in &ticks {
        let x = px(s.x(*t));
        let _ = write!(grid, "M{x},{}V{}", px(y_top), px(y_axis));
        let _ = write!(
            out,
            "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            px(y_axis + 13.0),
            esc(&tick_label(*t, step))
        );
    }
    let _ = write!(
        out,
        "<path class=\"grid\" d=\"{grid}\"/><path class=\"baseline\" d=\"M{},{}H{}\"/></g>",
        px(s.x0),
        px(y_axis),
        px(s.x1)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn pixels_are_compact() {
        assert_eq!(px(12.0), "12");
        assert_eq!(px(12.04), "12");
        assert_eq!(px(12.25), "12.3");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(dur(850_000), "850 µs");
        assert_eq!(dur(12_340_000), "12.3 ms");
        assert_eq!(dur(4_200_000_000), "4.20 s");
        assert_eq!(dur(185_000_000_000), "3 min 5 s");
    }

    #[test]
    fn scale_ticks_fall_on_nice_steps() {
        let s = TimeScale::new(0, 60_000_000_000, 0.0, 600.0);
        let (ticks, step) = s.ticks(10);
        assert_eq!(step, 10_000_000_000);
        assert_eq!(ticks.len(), 7);
        assert_eq!(s.x(30_000_000_000), 300.0);
        assert_eq!(s.xc(-5), 0.0);
        assert_eq!(tick_label(ticks[1], step), "10s");
    }

    #[test]
    fn tick_labels_differ_at_any_zoom() {
        assert_eq!(tick_label(299_985_000_000, 5_000_000), "299.985s");
        assert_eq!(tick_label(299_990_000_000, 5_000_000), "299.990s");
        assert_eq!(tick_label(500_000, 100_000), "0.5ms");
        assert_eq!(tick_label(20_000_000, 10_000_000), "20ms");
        assert_eq!(tick_label(1_500_000_000, 500_000_000), "1.5s");
        assert_eq!(tick_label(0, 2_000_000_000), "0s");
        assert_eq!(at(300_012_345_678), "300.012 s");
    }
}
