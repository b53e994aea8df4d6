//! Statistics of a recorded history: outcome counts per `f`, latency
//! percentiles, throughput, and availability during each fault window.
//!
//! Computed from `history.jsonl` alone, so a partial history (Ctrl-C, a
//! crashed harness) gets its stats exactly like a complete one. The history
//! is read once, as a stream ([`StatsBuilder`] takes one event at a time):
//! memory holds the open ops (at most one per client process), the fault
//! windows and one latency histogram per `f`, never the events, so an
//! hour-long run costs what a minute-long one does.
//!
//! Counts are exact. Latency percentiles come from a [`LatencyHistogram`]
//! whose buckets are at most 1/256 of their value wide, so a percentile is
//! within 0.2 % of the exact nearest-rank value (the maximum is exact);
//! `docs/report.md` says why this, rather than sorting every sample.

use crate::history::{Event, EventType, Process};
use crate::nemesis::fault::{Edge, FaultKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// ok / fail / info counts (an op never completed counts as info).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes {
    /// Happened.
    pub ok: u64,
    /// Did not happen.
    pub fail: u64,
    /// Unknown.
    pub info: u64,
}

impl Outcomes {
    fn add(&mut self, kind: EventType) {
        match kind {
            EventType::Ok => self.ok += 1,
            EventType::Fail => self.fail += 1,
            EventType::Info | EventType::Invoke => self.info += 1,
        }
    }

    /// All completed or open ops.
    pub fn total(&self) -> u64 {
        self.ok + self.fail + self.info
    }
}

/// Sub-buckets per power of two: a bucket is at most 1/256 of its lower
/// bound wide, so its midpoint is within 1/512 (0.2 %) of any value in it.
const SUB_BITS: u32 = 8;
const SUB: u64 = 1 << SUB_BITS;

/// A log-linear histogram of latencies in nanoseconds (the layout of
/// HdrHistogram with 8 sub-bucket bits): values below 512 ns are counted
/// exactly, larger ones in buckets of relative width ≤ 1/256. It answers
/// nearest-rank percentiles within 0.2 % of the exact value in a few tens of
/// kilobytes, however many samples it holds; count, min and max are exact.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    count: u64,
    min: u64,
    max: u64,
}

impl LatencyHistogram {
    /// Largest relative error of [`LatencyHistogram::percentile`].
    pub const RELATIVE_ERROR: f64 = 1.0 / (2 * SUB) as f64;

    fn bucket(v: u64) -> usize {
        if v < 2 * SUB {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros();
        let shift = msb - SUB_BITS;
        let mantissa = v >> shift;
        (2 * SUB + u64::from(shift - 1) * SUB + (mantissa - SUB)) as usize
    }

    /// The lowest value of bucket `i` and its width.
    fn bounds(i: usize) -> (u64, u64) {
        let i = i as u64;
        if i < 2 * SUB {
            return (i, 1);
        }
        let shift = (i - 2 * SUB) / SUB + 1;
        let mantissa = (i - 2 * SUB) % SUB + SUB;
        (mantissa << shift, 1 << shift)
    }

    /// Counts one sample.
    pub fn record(&mut self, v: u64) {
        let b = Self::bucket(v);
        if b >= self.counts.len() {
            self.counts.resize(b + 1, 0);
        }
        self.counts[b] += 1;
        if self.count == 0 || v < self.min {
            self.min = v;
        }
        self.max = self.max.max(v);
        self.count += 1;
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest sample (exact), 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The smallest sample (exact), 0 when empty.
    pub fn min(&self) -> u64 {
        self.min
    }

    /// The nearest-rank `q` percentile (`q` in 0..=1), within
    /// [`Self::RELATIVE_ERROR`] of the exact one; `None` when empty.
    pub fn percentile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        if rank == self.count {
            return Some(self.max);
        }
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, width) = Self::bounds(i);
                return Some((lo + width / 2).clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }
}

/// Latency percentiles of the ok ops of one `f`, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

impl Latency {
    /// Percentiles of a histogram; `None` if it is empty.
    pub fn of(h: &LatencyHistogram) -> Option<Self> {
        let ms = |q: f64| h.percentile(q).map(|ns| ns as f64 / 1e6);
        Some(Latency {
            p50: ms(0.50)?,
            p90: ms(0.90)?,
            p99: ms(0.99)?,
            max: h.max() as f64 / 1e6,
        })
    }
}

/// One fault window and what the clients got during it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultWindow {
    /// The fault kind (`kill`, `pause`, `partition`, `member`).
    pub f: String,
    /// The opening event's value (which nodes, which links).
    pub value: Value,
    /// When it began (ns since start).
    pub start_ns: u64,
    /// When it was undone (or the end of the history if never).
    pub end_ns: u64,
    /// Completions of client ops inside the window.
    pub ok: u64,
    /// Fails inside the window.
    pub fail: u64,
    /// Infos inside the window.
    pub info: u64,
}

impl FaultWindow {
    fn count(&mut self, kind: EventType) {
        match kind {
            EventType::Ok => self.ok += 1,
            EventType::Fail => self.fail += 1,
            _ => self.info += 1,
        }
    }
}

/// The `stats` object of `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Outcomes per `f`.
    pub by_f: BTreeMap<String, Outcomes>,
    /// Latency of ok ops per `f`.
    pub latency_ms: BTreeMap<String, Latency>,
    /// Ok ops per second over the traffic's duration.
    pub throughput_ops_s: f64,
    /// From the first to the last event, seconds.
    pub duration_s: f64,
    /// Fault windows in time order.
    pub faults: Vec<FaultWindow>,
    /// Every nemesis event `f` with its count (shows that each fault kind ran).
    pub nemesis_events: BTreeMap<String, u64>,
}

/// An event's time; the harness always records one, a history without
/// times has all its events at 0.
fn time(ev: &Event) -> u64 {
    ev.time.unwrap_or(0)
}

/// Computes [`Stats`] one event at a time, in history order.
///
/// A completion counts in every fault window with `start ≤ t ≤ end`. The
/// harness writes times that never decrease down the file, so when a
/// completion arrives the windows it falls in are the open ones and those
/// closed at this very nanosecond; completions at the nanosecond a window
/// opens are remembered until the clock moves on.
#[derive(Debug, Default)]
pub struct StatsBuilder {
    by_f: BTreeMap<String, Outcomes>,
    latency: BTreeMap<String, LatencyHistogram>,
    all_ok: LatencyHistogram,
    /// Invoke time and `f` of each client's open op.
    open: HashMap<u64, (u64, String)>,
    windows: Vec<FaultWindow>,
    open_windows: Vec<usize>,
    /// Windows closed at `now`: a completion at `now` still falls in them.
    closed_now: Vec<usize>,
    /// Completions at `now`: a window opening at `now` still counts them.
    completions_now: Vec<EventType>,
    now: u64,
    nemesis_events: BTreeMap<String, u64>,
    ok_total: u64,
    first: Option<u64>,
    last: u64,
}

impl StatsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next event of the history.
    pub fn push(&mut self, ev: &Event) {
        let t = time(ev);
        self.first.get_or_insert(t);
        self.last = t;
        if t != self.now {
            self.now = t;
            self.closed_now.clear();
            self.completions_now.clear();
        }
        match ev.process {
            Process::Nemesis => self.nemesis(ev, t),
            Process::Client(p) => self.client(ev, p, t),
            // Neither a client nor a fault of ours (a foreign history).
            Process::Named(_) => {}
        }
    }

    fn nemesis(&mut self, ev: &Event, t: u64) {
        *self.nemesis_events.entry(ev.f.clone()).or_default() += 1;
        let Some((kind, edge)) = FaultKind::of_event(&ev.f) else {
            return;
        };
        let kind = kind.name();
        if edge == Edge::Starts {
            let mut w = FaultWindow {
                f: kind.to_string(),
                value: ev.value.clone(),
                start_ns: t,
                end_ns: u64::MAX,
                ok: 0,
                fail: 0,
                info: 0,
            };
            for &k in &self.completions_now {
                w.count(k);
            }
            self.open_windows.push(self.windows.len());
            self.windows.push(w);
            return;
        }
        // Close the open window of this kind with the same value (same
        // nodes), else the oldest one of this kind.
        let windows = &self.windows;
        let pos = self
            .open_windows
            .iter()
            .position(|&w| windows[w].f == kind && windows[w].value == ev.value)
            .or_else(|| self.open_windows.iter().position(|&w| windows[w].f == kind));
        if let Some(p) = pos {
            let w = self.open_windows.remove(p);
            self.windows[w].end_ns = t;
            self.closed_now.push(w);
        }
    }

    fn client(&mut self, ev: &Event, p: u64, t: u64) {
        if ev.kind == EventType::Invoke {
            self.open.insert(p, (t, ev.f.clone()));
            return;
        }
        self.by_f.entry(ev.f.clone()).or_default().add(ev.kind);
        for &w in self.open_windows.iter().chain(&self.closed_now) {
            self.windows[w].count(ev.kind);
        }
        self.completions_now.push(ev.kind);
        if let Some((t0, _)) = self.open.remove(&p) {
            if ev.kind == EventType::Ok {
                self.ok_total += 1;
                let l = t.saturating_sub(t0);
                self.latency.entry(ev.f.clone()).or_default().record(l);
                self.all_ok.record(l);
            }
        }
    }

    /// Latency of every ok client op together (the benchmark's figure).
    pub fn ok_latency(&self) -> Option<Latency> {
        Latency::of(&self.all_ok)
    }

    /// The stats of the events pushed so far.
    pub fn finish(mut self) -> Stats {
        for (_, f) in self.open.values() {
            self.by_f.entry(f.clone()).or_default().add(EventType::Info);
        }
        let end = self.last;
        for w in &mut self.windows {
            if w.end_ns == u64::MAX {
                w.end_ns = end;
            }
        }
        let latency_ms = self
            .latency
            .iter()
            .filter_map(|(f, h)| Latency::of(h).map(|l| (f.clone(), l)))
            .collect();
        let duration_s = end.saturating_sub(self.first.unwrap_or(0)) as f64 / 1e9;
        Stats {
            by_f: self.by_f,
            latency_ms,
            throughput_ops_s: if duration_s > 0.0 {
                self.ok_total as f64 / duration_s
            } else {
                0.0
            },
            duration_s,
            faults: self.windows,
            nemesis_events: self.nemesis_events,
        }
    }
}

/// Computes the stats of a history.
pub fn compute<'a>(events: impl IntoIterator<Item = &'a Event>) -> Stats {
    let mut b = StatsBuilder::new();
    for ev in events {
        b.push(ev);
    }
    b.finish()
}

/// Computes the stats of a `history.jsonl` in one streaming pass. A torn
/// last line (a crash mid-write) is skipped like everywhere else; any other
/// unreadable line is an error.
pub fn compute_file(path: &Path) -> Result<Stats, formats::ReadError> {
    let mut b = StatsBuilder::new();
    for item in formats::history::Reader::open(path)? {
        b.push(&item?.event);
    }
    Ok(b.finish())
}

/// Latency percentiles of every ok client op together (the benchmark's
/// figure), `None` if there is none.
pub fn ok_latency<'a>(events: impl IntoIterator<Item = &'a Event>) -> Option<Latency> {
    let mut b = StatsBuilder::new();
    for ev in events {
        b.push(ev);
    }
    b.ok_latency()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    fn ev(index: u64, time_ms: u64, process: Process, kind: EventType, f: &str) -> Event {
        Event {
            index,
            time: Some(time_ms * 1_000_000),
            process,
            kind,
            f: f.into(),
            key: None,
            value: json!([1]),
            node: None,
            error: None,
        }
    }

    #[test]
    fn counts_latencies_and_fault_windows() {
        use EventType::*;
        use Process::*;
        let h = vec![
            ev(0, 0, Client(0), Invoke, "write"),
            ev(1, 10, Client(0), Ok, "write"),
            ev(2, 20, Nemesis, Info, "kill"),
            ev(3, 21, Client(1), Invoke, "read"),
            ev(4, 25, Client(1), Fail, "read"),
            ev(5, 30, Client(0), Invoke, "write"),
            ev(6, 40, Client(0), Info, "write"),
            ev(7, 50, Nemesis, Info, "start"),
            ev(8, 60, Client(2), Invoke, "read"),
            ev(9, 62, Client(2), Ok, "read"),
            ev(10, 70, Client(3), Invoke, "cas"),
            ev(11, 1000, Nemesis, Info, "pause"),
        ];
        let s = compute(&h);
        assert_eq!(
            s.by_f["write"],
            Outcomes {
                ok: 1,
                fail: 0,
                info: 1
            }
        );
        assert_eq!(
            s.by_f["read"],
            Outcomes {
                ok: 1,
                fail: 1,
                info: 0
            }
        );
        assert_eq!(
            s.by_f["cas"],
            Outcomes {
                ok: 0,
                fail: 0,
                info: 1
            }
        );
        assert_eq!(s.latency_ms["write"].p50, 10.0);
        assert_eq!(s.latency_ms["read"].max, 2.0);
        assert_eq!(s.faults.len(), 2);
        let kill = &s.faults[0];
        assert_eq!(
            (kill.f.as_str(), kill.start_ns, kill.end_ns),
            ("kill", 20_000_000, 50_000_000)
        );
        assert_eq!((kill.ok, kill.fail, kill.info), (0, 1, 1));
        assert_eq!(
            s.faults[1].end_ns, 1_000_000_000,
            "an unclosed window ends with the history"
        );
        assert_eq!(s.nemesis_events["kill"], 1);
        assert!((s.duration_s - 1.0).abs() < 1e-9);
        assert!((s.throughput_ops_s - 2.0).abs() < 1e-9);
    }

    #[test]
    fn completions_at_the_nanosecond_of_a_window_edge_count_in_it() {
        use EventType::*;
        use Process::*;
        let h = vec![
            ev(0, 0, Client(0), Invoke, "read"),
            ev(1, 5, Client(0), Ok, "read"),
            ev(2, 5, Nemesis, Info, "kill"),
            ev(3, 6, Client(1), Invoke, "read"),
            ev(4, 9, Nemesis, Info, "start"),
            ev(5, 9, Client(1), Fail, "read"),
        ];
        let s = compute(&h);
        assert_eq!((s.faults[0].ok, s.faults[0].fail), (1, 1));
    }

    /// The definition the streaming builder must agree with: every window
    /// counts the completions with `start ≤ t ≤ end`, all events in memory.
    fn windows_in_memory(events: &[Event]) -> Vec<(u64, u64, u64, u64, u64)> {
        let s = compute(events);
        s.faults
            .iter()
            .map(|w| {
                let mut n = [0u64; 3];
                for e in events {
                    let t = time(e);
                    if e.process.client().is_some()
                        && e.kind != EventType::Invoke
                        && t >= w.start_ns
                        && t <= w.end_ns
                    {
                        n[match e.kind {
                            EventType::Ok => 0,
                            EventType::Fail => 1,
                            _ => 2,
                        }] += 1;
                    }
                }
                (w.start_ns, w.end_ns, n[0], n[1], n[2])
            })
            .collect()
    }

    #[test]
    fn streaming_window_counts_equal_the_in_memory_definition() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..200 {
            let mut t = 0u64;
            let mut events = Vec::new();
            let mut open = [false; 4];
            for i in 0..300u64 {
                // Coarse clock: many events share a nanosecond.
                t += rng.gen_range(0..3);
                let e = if rng.gen_bool(0.1) {
                    let f = ["kill", "start", "pause", "resume"][rng.gen_range(0..4)];
                    Event {
                        time: Some(t),
                        ..ev(i, 0, Process::Nemesis, EventType::Info, f)
                    }
                } else {
                    let p = rng.gen_range(0..4usize);
                    let kind = if open[p] {
                        [EventType::Ok, EventType::Fail, EventType::Info][rng.gen_range(0..3)]
                    } else {
                        EventType::Invoke
                    };
                    open[p] = kind == EventType::Invoke;
                    Event {
                        time: Some(t),
                        ..ev(i, 0, Process::Client(p as u64), kind, "read")
                    }
                };
                events.push(e);
            }
            let s = compute(&events);
            let streamed: Vec<_> = s
                .faults
                .iter()
                .map(|w| (w.start_ns, w.end_ns, w.ok, w.fail, w.info))
                .collect();
            assert_eq!(streamed, windows_in_memory(&events));
        }
    }

    #[test]
    fn percentiles_are_within_the_stated_bound_of_nearest_rank() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for n in [1usize, 2, 7, 100, 10_000] {
            let mut v: Vec<u64> = (0..n)
                .map(|_| (rng.gen_range(2.0f64..11.0).exp()) as u64 * rng.gen_range(1..1000))
                .collect();
            let mut h = LatencyHistogram::default();
            for &x in &v {
                h.record(x);
            }
            v.sort_unstable();
            for q in [0.0, 0.01, 0.5, 0.9, 0.99, 0.999, 1.0] {
                let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
                let exact = v[rank - 1] as f64;
                let got = h.percentile(q).unwrap() as f64;
                assert!(
                    (got - exact).abs() <= exact * LatencyHistogram::RELATIVE_ERROR,
                    "n={n} q={q}: {got} vs {exact}"
                );
            }
            assert_eq!(h.max(), *v.last().unwrap());
            assert_eq!(h.count(), n as u64);
        }
        assert_eq!(LatencyHistogram::default().percentile(0.5), None);
    }

    #[test]
    fn small_values_and_bucket_edges_are_exact() {
        for v in [0u64, 1, 255, 511, 512, 513, 1 << 20, u64::MAX / 2] {
            let (lo, w) = LatencyHistogram::bounds(LatencyHistogram::bucket(v));
            assert!(lo <= v && v - lo < w, "{v}: [{lo}, +{w})");
            assert!(w == 1 || (w as f64) <= lo as f64 / 256.0, "{v}");
        }
        let mut v: Vec<u64> = (1..=100).map(|i| i * 1_000_000).collect();
        let mut h = LatencyHistogram::default();
        v.iter().for_each(|&x| h.record(x));
        let l = Latency::of(&h).unwrap();
        v.sort_unstable();
        for (got, exact) in [(l.p50, 50.0), (l.p90, 90.0), (l.p99, 99.0)] {
            assert!((got - exact).abs() <= exact / 512.0, "{got} vs {exact}");
        }
        assert_eq!(l.max, 100.0);
    }
}
