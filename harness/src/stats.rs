//! Statistics of a recorded history: outcome counts per `f`, latency
//! percentiles, throughput, and availability during each fault window.
//!
//! Computed from `history.jsonl` alone, so a partial history (Ctrl-C, a
//! crashed harness) gets its stats exactly like a complete one.

use crate::history::{Event, EventType, Process};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// ok / fail / info counts (an op never completed counts as info).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
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

/// Latency percentiles of the ok ops of one `f`, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
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
    /// Percentiles of `samples_ns` (nearest rank); `None` if empty.
    pub fn of(samples_ns: &mut [u64]) -> Option<Self> {
        if samples_ns.is_empty() {
            return None;
        }
        samples_ns.sort_unstable();
        let pick = |q: f64| {
            let rank = ((q * samples_ns.len() as f64).ceil() as usize).clamp(1, samples_ns.len());
            samples_ns[rank - 1] as f64 / 1e6
        };
        Some(Latency {
            p50: pick(0.50),
            p90: pick(0.90),
            p99: pick(0.99),
            max: *samples_ns.last().expect("non-empty") as f64 / 1e6,
        })
    }
}

/// One fault window and what the clients got during it.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// The `stats` object of `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// Which window kind a nemesis `f` opens or closes.
fn window_edge(f: &str) -> Option<(&'static str, bool)> {
    match f {
        "kill" => Some(("kill", true)),
        "start" => Some(("kill", false)),
        "pause" => Some(("pause", true)),
        "resume" => Some(("pause", false)),
        "start-partition" => Some(("partition", true)),
        "stop-partition" => Some(("partition", false)),
        "remove-member" => Some(("member", true)),
        "add-member" => Some(("member", false)),
        _ => None,
    }
}

/// An event's time; the harness always records one, a history without
/// times has all its events at 0.
fn time(ev: &Event) -> u64 {
    ev.time.unwrap_or(0)
}

/// Computes the stats of a history.
pub fn compute(events: &[Event]) -> Stats {
    let mut by_f: BTreeMap<String, Outcomes> = BTreeMap::new();
    let mut samples: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut open: HashMap<u64, &Event> = HashMap::new();
    let mut completions: Vec<(u64, EventType)> = Vec::new();
    let mut windows: Vec<FaultWindow> = Vec::new();
    let mut open_windows: Vec<usize> = Vec::new();
    let mut nemesis_events: BTreeMap<String, u64> = BTreeMap::new();
    let mut ok_total = 0u64;
    let end_ns = events.last().map(time).unwrap_or(0);
    let start_ns = events.first().map(time).unwrap_or(0);

    for ev in events {
        match ev.process {
            Process::Nemesis => {
                *nemesis_events.entry(ev.f.clone()).or_default() += 1;
                let Some((kind, opens)) = window_edge(&ev.f) else {
                    continue;
                };
                if opens {
                    open_windows.push(windows.len());
                    windows.push(FaultWindow {
                        f: kind.to_string(),
                        value: ev.value.clone(),
                        start_ns: time(ev),
                        end_ns,
                        ok: 0,
                        fail: 0,
                        info: 0,
                    });
                } else {
                    // Close the open window of this kind with the same value
                    // (same nodes), else the oldest one of this kind.
                    let pos = open_windows
                        .iter()
                        .position(|&w| windows[w].f == kind && windows[w].value == ev.value)
                        .or_else(|| open_windows.iter().position(|&w| windows[w].f == kind));
                    if let Some(p) = pos {
                        let w = open_windows.remove(p);
                        windows[w].end_ns = time(ev);
                    }
                }
            }
            Process::Client(p) => match ev.kind {
                EventType::Invoke => {
                    open.insert(p, ev);
                }
                kind => {
                    let entry = by_f.entry(ev.f.clone()).or_default();
                    entry.add(kind);
                    completions.push((time(ev), kind));
                    if let Some(inv) = open.remove(&p) {
                        if kind == EventType::Ok {
                            ok_total += 1;
                            samples
                                .entry(ev.f.clone())
                                .or_default()
                                .push(time(ev).saturating_sub(time(inv)));
                        }
                    }
                }
            },
            // Neither a client nor a fault of ours (a foreign history).
            Process::Named(_) => {}
        }
    }
    for inv in open.values() {
        by_f.entry(inv.f.clone()).or_default().add(EventType::Info);
    }
    for w in &mut windows {
        for &(t, kind) in &completions {
            if t >= w.start_ns && t <= w.end_ns {
                match kind {
                    EventType::Ok => w.ok += 1,
                    EventType::Fail => w.fail += 1,
                    _ => w.info += 1,
                }
            }
        }
    }
    let latency_ms = samples
        .into_iter()
        .filter_map(|(f, mut s)| Latency::of(&mut s).map(|l| (f, l)))
        .collect();
    let duration_s = (end_ns.saturating_sub(start_ns)) as f64 / 1e9;
    Stats {
        by_f,
        latency_ms,
        throughput_ops_s: if duration_s > 0.0 {
            ok_total as f64 / duration_s
        } else {
            0.0
        },
        duration_s,
        faults: windows,
        nemesis_events,
    }
}

/// Latency percentiles of every ok client op together (the benchmark's
/// figure), `None` if there is none.
pub fn ok_latency(events: &[Event]) -> Option<Latency> {
    let mut open: HashMap<u64, u64> = HashMap::new();
    let mut samples = Vec::new();
    for ev in events {
        let Process::Client(p) = ev.process else {
            continue;
        };
        match ev.kind {
            EventType::Invoke => {
                open.insert(p, time(ev));
            }
            kind => {
                if let Some(t0) = open.remove(&p) {
                    if kind == EventType::Ok {
                        samples.push(time(ev).saturating_sub(t0));
                    }
                }
            }
        }
    }
    Latency::of(&mut samples)
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn percentiles_use_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).map(|i| i * 1_000_000).collect();
        let l = Latency::of(&mut v).unwrap();
        assert_eq!((l.p50, l.p90, l.p99, l.max), (50.0, 90.0, 99.0, 100.0));
        assert!(Latency::of(&mut []).is_none());
    }
}
