//! A synthetic run folder, written in exactly the on-disk formats a real
//! `harness run` produces (test.json, history.jsonl, results.json,
//! nodes/*/trace.jsonl). It exists so that the report can be tested at
//! scale (a 100k-op run in a second) and shown in the docs without a
//! cluster; it simulates clients, faults and elections coarsely, under a
//! seed. It is not a substitute for a run: nothing in it is checked.

use std::fs;
use std::io::BufWriter;
use std::path::Path;

use formats::history::{Event, EventType, Process};
use formats::trace::{Role, TraceEvent, TraceKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// What to generate.
#[derive(Debug, Clone)]
pub struct SyntheticRun {
    /// Client ops (invokes) in the history.
    pub ops: usize,
    pub nodes: usize,
    pub concurrency: usize,
    pub seed: u64,
    /// Make one read stale and write an invalid verdict with its
    /// counterexample, as the checker would.
    pub violation: bool,
    /// Write traces under nodes/ (off: a run whose traces are lost).
    pub traces: bool,
    /// Write results.json (off: a run interrupted before its checkers).
    pub results: bool,
}

impl Default for SyntheticRun {
    fn default() -> Self {
        SyntheticRun {
            ops: 2000,
            nodes: 5,
            concurrency: 10,
            seed: 1,
            violation: true,
            traces: true,
            results: true,
        }
    }
}

/// Start of the synthetic run: 2026-01-01T00:00:00Z.
const START_UNIX_NS: i64 = 1_767_225_600_000_000_000;

struct Fault {
    kind: &'static str,
    nodes: Vec<usize>,
    groups: Option<Vec<Vec<usize>>>,
    start: i64,
    end: i64,
}

fn gauss(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.gen_range(1e-12..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

impl SyntheticRun {
    /// Writes the run folder at `dir` (created if needed).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let ms = 1_000_000i64;
        // About 1000 ops/s overall, at least 20 s so faults fit.
        let duration = ((self.ops as i64) * ms).max(20_000 * ms);
        let nodes: Vec<usize> = (1..=self.nodes.max(1)).collect();

        // Fault schedule: a fault every ~8 s, lasting 2-5 s.
        let mut faults = Vec::new();
        let mut t = 3_000 * ms;
        while t + 6_000 * ms < duration {
            let len = rng.gen_range(2_000..5_000) * ms;
            let pick = |rng: &mut ChaCha8Rng, n: usize| {
                let mut v = nodes.clone();
                let mut out = Vec::new();
                for _ in 0..n.min(v.len()) {
                    out.push(v.remove(rng.gen_range(0..v.len())));
                }
                out.sort_unstable();
                out
            };
            let f = match rng.gen_range(0..3) {
                0 => Fault {
                    kind: "kill",
                    nodes: pick(&mut rng, 1),
                    groups: None,
                    start: t,
                    end: t + len,
                },
                1 => Fault {
                    kind: "pause",
                    nodes: pick(&mut rng, 2),
                    groups: None,
                    start: t,
                    end: t + len,
                },
                _ => {
                    let minority = pick(&mut rng, nodes.len() / 2);
                    let majority = nodes
                        .iter()
                        .copied()
                        .filter(|n| !minority.contains(n))
                        .collect();
                    Fault {
                        kind: "partition",
                        nodes: minority.clone(),
                        groups: Some(vec![minority, majority]),
                        start: t,
                        end: t + len,
                    }
                }
            };
            faults.push(f);
            t += len + rng.gen_range(4_000..9_000) * ms;
        }

        // Leadership: a new leader ~300 ms after a fault hits the leader.
        let mut leaders: Vec<(i64, usize, u64)> = vec![(200 * ms, 1, 1)];
        for f in &faults {
            let (_, leader, term) = *leaders.last().unwrap_or(&(0, 1, 1));
            if f.nodes.contains(&leader) {
                let candidates: Vec<usize> = nodes
                    .iter()
                    .copied()
                    .filter(|n| !f.nodes.contains(n))
                    .collect();
                if let Some(&next) = candidates.get(rng.gen_range(0..candidates.len().max(1))) {
                    leaders.push((f.start + rng.gen_range(150..450) * ms, next, term + 1));
                }
            }
        }
        let leader_at = |t: i64| {
            leaders
                .iter()
                .rev()
                .find(|l| l.0 <= t)
                .map(|l| l.1)
                .unwrap_or(0)
        };
        let in_fault = |t: i64| faults.iter().find(|f| f.start <= t && t < f.end);

        // Clients: each worker issues ops back to back with a little think time.
        let per_worker = self.ops.div_ceil(self.concurrency.max(1));
        let think = (duration / per_worker.max(1) as i64).max(1);
        let keys = 5;
        let mut events: Vec<(i64, Event)> = Vec::with_capacity(self.ops * 2 + faults.len() * 2);
        let mut write_value = 0u64;
        let mut issued = 0usize;
        for w in 0..self.concurrency.max(1) {
            let mut process = w as u64;
            let mut now = rng.gen_range(0..think.max(2));
            for _ in 0..per_worker {
                if issued >= self.ops {
                    break;
                }
                issued += 1;
                let key = format!("k{}", rng.gen_range(0..keys));
                let node = leader_at(now).max(1);
                let (f, value): (&str, Value) = match rng.gen_range(0..10) {
                    0..=4 => ("read", Value::Null),
                    5..=7 => {
                        write_value += 1;
                        ("write", json!(write_value.to_string()))
                    }
                    _ => {
                        write_value += 1;
                        (
                            "cas",
                            json!([
                                rng.gen_range(0..write_value).to_string(),
                                write_value.to_string()
                            ]),
                        )
                    }
                };
                let mut latency = ((0.8 + 0.5 * gauss(&mut rng)).exp() * ms as f64) as i64;
                let fault = in_fault(now);
                let mut outcome = EventType::Ok;
                if let Some(fl) = fault {
                    let hits_leader = fl.nodes.contains(&leader_at(now)) || fl.kind == "partition";
                    if hits_leader {
                        let r: f64 = rng.gen();
                        if r < 0.04 {
                            outcome = EventType::Info;
                            latency = 1_000 * ms;
                        } else if r < 0.15 {
                            outcome = EventType::Fail;
                        } else if r < 0.5 {
                            latency += rng.gen_range(50..400) * ms;
                        }
                    }
                }
                if outcome == EventType::Ok && f == "cas" && rng.gen_bool(0.4) {
                    outcome = EventType::Fail;
                }
                let invoke = Event {
                    index: 0,
                    time: Some(now as u64),
                    process: Process::Client(process),
                    kind: EventType::Invoke,
                    f: f.to_string(),
                    key: Some(key),
                    value,
                    node: Some(node as u64),
                    error: None,
                };
                let done = now + latency.max(50_000);
                let mut completion = Event {
                    time: Some(done as u64),
                    kind: outcome,
                    ..invoke.clone()
                };
                events.push((now, invoke));
                if f == "read" && outcome == EventType::Ok {
                    completion.value = if write_value == 0 {
                        Value::Null
                    } else {
                        json!(rng.gen_range(1..=write_value).to_string())
                    };
                }
                completion.error = match outcome {
                    EventType::Fail if f == "cas" => Some("precondition".into()),
                    EventType::Fail => Some("not-leader".into()),
                    EventType::Info => Some("timeout".into()),
                    _ => None,
                };
                events.push((done, completion));
                if outcome == EventType::Info {
                    process += self.concurrency as u64;
                }
                now = done + rng.gen_range(0..(2 * think).max(2));
            }
        }
        for f in &faults {
            let (start_f, end_f, value) = match f.kind {
                "kill" => ("kill", "start", json!(f.nodes)),
                "pause" => ("pause", "resume", json!(f.nodes)),
                _ => (
                    "start-partition",
                    "stop-partition",
                    json!({"groups": f.groups, "links": []}),
                ),
            };
            let undo = if f.kind == "partition" {
                Value::Null
            } else {
                json!(f.nodes)
            };
            events.push((f.start, nemesis(f.start, start_f, value)));
            events.push((f.end, nemesis(f.end, end_f, undo)));
        }
        events.sort_by_key(|e| e.0);
        for (i, (_, e)) in events.iter_mut().enumerate() {
            e.index = i as u64;
        }

        // A stale read for the counterexample, about 60% into the run.
        let mut counterexample = Value::Null;
        if self.violation {
            counterexample = stale_read(&mut events, duration * 6 / 10);
        }

        fs::create_dir_all(dir)?;
        let name = "synthetic";
        let nemesis = ["kill", "pause", "partition"];
        let test = json!({
            "name": name, "start_unix_ns": START_UNIX_NS, "seed": self.seed,
            "nodes": self.nodes, "time_limit_s": duration / 1_000_000_000,
            "concurrency": self.concurrency, "rate": 1000, "workload": "kv", "keys": keys,
            "nemesis": nemesis, "nemesis_interval_s": 8, "read_consistency": "linearizable",
            "pre_vote": true, "check_quorum": true, "node_bin": "target/release/node",
            "argv": ["harness", "run", "--workload", "kv", "--nemesis", "kill,pause,partition",
                     "--seed", self.seed.to_string()],
        });
        fs::write(dir.join("test.json"), serde_json::to_vec_pretty(&test)?)?;
        let file = fs::File::create(dir.join(formats::history::FILE_NAME))?;
        let mut h = formats::history::Writer::new(BufWriter::new(file));
        for (_, e) in &events {
            h.write(e)?;
        }
        h.flush()?;

        if self.traces {
            for n in &nodes {
                let nd = dir.join("nodes").join(format!("n{n}"));
                fs::create_dir_all(&nd)?;
                let file = fs::File::create(nd.join(formats::trace::FILE_NAME))?;
                let mut tr = formats::trace::Writer::new(BufWriter::new(file));
                let mut line = |time: i64, kind: TraceKind| {
                    tr.write(&TraceEvent {
                        time: time as u64,
                        node: *n as u64,
                        kind,
                    })
                };
                let mut index = 0u64;
                for (i, &(at, leader, term)) in leaders.iter().enumerate() {
                    let at = START_UNIX_NS + at;
                    let role = |role, leader| TraceKind::Role { term, role, leader };
                    if leader == *n {
                        line(at - 20 * ms, role(Role::Candidate, None))?;
                        line(at, role(Role::Leader, Some(leader as u64)))?;
                    } else if i == 0 || leaders[i - 1].1 == *n {
                        line(at, role(Role::Follower, Some(leader as u64)))?;
                    }
                    for _ in 0..3 {
                        index += 1;
                        line(at + index as i64 * ms, TraceKind::Commit { index, term })?;
                    }
                }
                tr.flush()?;
            }
        }

        if self.results {
            let valid = !self.violation;
            let results = json!({
                "valid": valid, "model": "kv", "ops": issued, "parse_ms": 41.0, "check_ms": 230.5,
                "checkers": {
                    "linearizability": if valid { json!({"valid": true}) } else {
                        json!({"valid": false, "reason": "a read returned a value that was already overwritten"})
                    },
                    "raft_safety": {"valid": true, "violations": []},
                },
                "counterexample": counterexample,
                "stats": {"duration_s": duration as f64 / 1e9, "throughput_ops_s": issued as f64 * 1e9 / duration as f64,
                          "faults": faults.iter().map(|f| json!({"f": f.kind, "start_ns": f.start, "end_ns": f.end})).collect::<Vec<_>>()},
                "error": null,
            });
            fs::write(
                dir.join("results.json"),
                serde_json::to_vec_pretty(&results)?,
            )?;
        }
        Ok(())
    }
}

/// A fault or its undo as the nemesis records it.
fn nemesis(time: i64, f: &str, value: Value) -> Event {
    Event {
        index: 0,
        time: Some(time as u64),
        process: Process::Nemesis,
        kind: EventType::Info,
        f: f.to_string(),
        key: None,
        value,
        node: None,
        error: None,
    }
}

/// Makes the first ok read after `after` return the value of a write that
/// a later completed write overwrote, and returns the counterexample object
/// in the checker's shape.
fn stale_read(events: &mut [(i64, Event)], after: i64) -> Value {
    let is = |e: &Event, ty: EventType, f: &str| e.kind == ty && e.f == f;
    // Find a read invoke after `after` whose key saw two ok writes before.
    for ri in 0..events.len() {
        if events[ri].0 < after || !is(&events[ri].1, EventType::Invoke, "read") {
            continue;
        }
        let key = events[ri].1.key.clone();
        let process = events[ri].1.process.clone();
        let Some(rc) = (ri + 1..events.len())
            .find(|&j| events[j].1.process == process && events[j].1.kind != EventType::Invoke)
        else {
            continue;
        };
        if !is(&events[rc].1, EventType::Ok, "read") {
            continue;
        }
        // The two latest ok writes on the key completed before the read began.
        let mut writes = Vec::new();
        for j in (0..ri).rev() {
            if is(&events[j].1, EventType::Ok, "write") && events[j].1.key == key {
                let p = &events[j].1.process;
                if let Some(inv) = (0..j).rev().find(|&k| {
                    events[k].1.process == *p && is(&events[k].1, EventType::Invoke, "write")
                }) {
                    writes.push(inv);
                }
                if writes.len() == 2 {
                    break;
                }
            }
        }
        if writes.len() < 2 {
            continue;
        }
        let (newer, older) = (writes[0], writes[1]);
        let old_value = events[older].1.value.clone();
        events[rc].1.value = old_value.clone();
        let idx = |i: usize| events[i].1.index;
        let key = json!(key);
        return json!({
            "key": key,
            "ops": [idx(older), idx(newer), idx(ri)],
            "op": idx(ri),
            "prefix": [idx(older), idx(newer)],
            "states": [old_value, events[newer].1.value],
            "explanation": format!(
                "read #{} of {} returned {}, but write #{} of {} completed before the read began: \
                 no order of these ops explains the read (a stale read).",
                idx(ri), key, old_value, idx(newer), events[newer].1.value
            ),
        });
    }
    Value::Null
}
