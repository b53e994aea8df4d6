//! A synthetic run folder for the report's tests, written in exactly the
//! on-disk formats a real `harness run` produces (test.json,
//! history.jsonl, results.json, nodes/*/trace.jsonl or
//! observations.jsonl), the JSON-lines files through the `formats` crate's
//! writers. It simulates clients, faults and elections coarsely, under a
//! seed, without a cluster: a 100k-op run in a second, an hour-long one in
//! a few minutes. It is not a substitute for a run: nothing in it is
//! checked. The history is generated in time order and streamed to disk,
//! so memory does not grow with the run.
#![allow(dead_code)] // Each test binary uses a different part.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs;
use std::io::{self, BufWriter};
use std::path::Path;

use formats::history::{Event, EventType, Process};
use formats::observations::{Observation, ObservationKind};
use formats::trace::{Role, TraceEvent, TraceKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// What to generate.
#[derive(Debug, Clone)]
pub struct SyntheticRun {
    /// Client ops (invokes) in the history.
    pub ops: usize,
    /// Ops per second over all clients; the run lasts `ops / rate`
    /// seconds, at least 20.
    pub rate: u64,
    pub nodes: usize,
    pub concurrency: usize,
    pub seed: u64,
    /// Make one read stale and write an invalid verdict with its
    /// counterexample, as the checker would.
    pub violation: bool,
    /// Write traces under nodes/ (off: a run whose traces are lost, or a
    /// system that writes none).
    pub traces: bool,
    /// Write observations.jsonl: each node's status polled every 100 ms.
    pub observations: bool,
    /// Write results.json (off: a run interrupted before its checkers).
    pub results: bool,
}

impl Default for SyntheticRun {
    fn default() -> Self {
        SyntheticRun {
            ops: 2000,
            rate: 1000,
            nodes: 5,
            concurrency: 10,
            seed: 1,
            violation: true,
            traces: true,
            observations: false,
            results: true,
        }
    }
}

/// Start of the synthetic run: 2026-01-01T00:00:00Z.
pub const START_UNIX_NS: i64 = 1_767_225_600_000_000_000;
const MS: i64 = 1_000_000;
const KEYS: usize = 5;

#[derive(Debug, Clone)]
struct Fault {
    kind: &'static str,
    nodes: Vec<usize>,
    groups: Option<Vec<Vec<usize>>>,
    start: i64,
    end: i64,
}

/// The run's shape: its length, its faults and who led when.
struct Plan {
    duration: i64,
    nodes: Vec<usize>,
    faults: Vec<Fault>,
    /// (from, leader, term), in time order.
    leaders: Vec<(i64, usize, u64)>,
}

impl Plan {
    fn new(run: &SyntheticRun, rng: &mut ChaCha8Rng) -> Plan {
        let duration = (run.ops as i64 * 1000 / run.rate.max(1) as i64 * MS).max(20_000 * MS);
        let nodes: Vec<usize> = (1..=run.nodes.max(1)).collect();
        let faults = fault_schedule(&nodes, duration, rng);
        let leaders = elections(&nodes, &faults, rng);
        Plan {
            duration,
            nodes,
            faults,
            leaders,
        }
    }

    fn leader_at(&self, t: i64) -> (usize, u64) {
        self.leaders
            .iter()
            .rev()
            .find(|l| l.0 <= t)
            .map(|l| (l.1, l.2))
            .unwrap_or((0, 0))
    }

    fn fault_at(&self, t: i64) -> Option<&Fault> {
        self.faults.iter().find(|f| f.start <= t && t < f.end)
    }
}

/// A fault every ~8 s, lasting 2-5 s: a kill, a pause or a partition.
fn fault_schedule(nodes: &[usize], duration: i64, rng: &mut ChaCha8Rng) -> Vec<Fault> {
    let pick = |rng: &mut ChaCha8Rng, n: usize| {
        let mut v = nodes.to_vec();
        let mut out: Vec<usize> = (0..n.min(v.len()))
            .map(|_| v.remove(rng.gen_range(0..v.len())))
            .collect();
        out.sort_unstable();
        out
    };
    let mut faults = Vec::new();
    let mut t = 3_000 * MS;
    while t + 6_000 * MS < duration {
        let len = rng.gen_range(2_000..5_000) * MS;
        let (kind, nodes_hit, groups) = match rng.gen_range(0..3) {
            0 => ("kill", pick(rng, 1), None),
            1 => ("pause", pick(rng, 2), None),
            _ => {
                let minority = pick(rng, nodes.len() / 2);
                let majority = nodes
                    .iter()
                    .copied()
                    .filter(|n| !minority.contains(n))
                    .collect();
                (
                    "partition",
                    minority.clone(),
                    Some(vec![minority, majority]),
                )
            }
        };
        faults.push(Fault {
            kind,
            nodes: nodes_hit,
            groups,
            start: t,
            end: t + len,
        });
        t += len + rng.gen_range(4_000..9_000) * MS;
    }
    faults
}

/// A new leader ~300 ms after a fault hits the leader.
fn elections(nodes: &[usize], faults: &[Fault], rng: &mut ChaCha8Rng) -> Vec<(i64, usize, u64)> {
    let mut leaders = vec![(200 * MS, 1, 1)];
    for f in faults {
        let (_, leader, term) = *leaders.last().expect("a first leader");
        if !f.nodes.contains(&leader) {
            continue;
        }
        let candidates: Vec<usize> = nodes
            .iter()
            .copied()
            .filter(|n| !f.nodes.contains(n))
            .collect();
        if let Some(&next) = candidates.get(rng.gen_range(0..candidates.len().max(1))) {
            leaders.push((f.start + rng.gen_range(150..450) * MS, next, term + 1));
        }
    }
    leaders
}

fn gauss(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.gen_range(1e-12..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// An op a worker has in flight: its invoke (written) and its completion
/// (written when its time comes).
struct InFlight {
    completion: Event,
    /// Invoke index of a write, to remember it once it completed ok.
    write_index: Option<u64>,
}

/// A client worker.
struct Worker {
    process: u64,
    in_flight: Option<InFlight>,
}

/// The stale read made for the counterexample.
struct Counterexample {
    after: i64,
    found: Option<Value>,
}

/// The history's generator: workers take turns in time order.
struct Clients<'a> {
    run: &'a SyntheticRun,
    plan: &'a Plan,
    rng: ChaCha8Rng,
    think: i64,
    workers: Vec<Worker>,
    issued: usize,
    write_value: u64,
    /// Per key, the last two writes that completed ok: (invoke index, value).
    writes: HashMap<String, Vec<(u64, Value)>>,
    cex: Counterexample,
}

impl Clients<'_> {
    /// Builds the worker's next op and returns its invoke.
    fn invoke(&mut self, w: usize, now: i64) -> Event {
        let rng = &mut self.rng;
        let key = format!("k{}", rng.gen_range(0..KEYS));
        let (leader, _) = self.plan.leader_at(now);
        let (f, value): (&str, Value) = match rng.gen_range(0..10) {
            0..=4 => ("read", Value::Null),
            5..=7 => {
                self.write_value += 1;
                ("write", json!(self.write_value.to_string()))
            }
            _ => {
                self.write_value += 1;
                let from = rng.gen_range(0..self.write_value).to_string();
                ("cas", json!([from, self.write_value.to_string()]))
            }
        };
        let (outcome, latency) = self.outcome(now, f, leader);
        let invoke = Event {
            index: 0,
            time: Some(now as u64),
            process: Process::Client(self.workers[w].process),
            kind: EventType::Invoke,
            f: f.to_string(),
            key: Some(key),
            value,
            node: Some(leader.max(1) as u64),
            error: None,
        };
        let mut completion = Event {
            time: Some((now + latency.max(50_000)) as u64),
            kind: outcome,
            error: match outcome {
                EventType::Fail if f == "cas" => Some("precondition".into()),
                EventType::Fail => Some("not-leader".into()),
                EventType::Info => Some("timeout".into()),
                _ => None,
            },
            ..invoke.clone()
        };
        if f == "read" && outcome == EventType::Ok {
            completion.value = match self.write_value {
                0 => Value::Null,
                n => json!(self.rng.gen_range(1..=n).to_string()),
            };
        }
        self.workers[w].in_flight = Some(InFlight {
            completion,
            write_index: None,
        });
        invoke
    }

    /// Slower and less successful while a fault hits the leader.
    fn outcome(&mut self, now: i64, f: &str, leader: usize) -> (EventType, i64) {
        let rng = &mut self.rng;
        let mut latency = ((0.8 + 0.5 * gauss(rng)).exp() * MS as f64) as i64;
        let mut outcome = EventType::Ok;
        if let Some(fl) = self.plan.fault_at(now) {
            if fl.nodes.contains(&leader) || fl.kind == "partition" {
                let r: f64 = rng.gen();
                if r < 0.04 {
                    outcome = EventType::Info;
                    latency = 1_000 * MS;
                } else if r < 0.15 {
                    outcome = EventType::Fail;
                } else if r < 0.5 {
                    latency += rng.gen_range(50..400) * MS;
                }
            }
        }
        if outcome == EventType::Ok && f == "cas" && rng.gen_bool(0.4) {
            outcome = EventType::Fail;
        }
        (outcome, latency)
    }

    /// Once the invoke has its index: remember writes, and turn the first
    /// ok read late enough, on a key with two completed writes, stale.
    fn invoked(&mut self, w: usize, invoke: &Event) {
        let run_violation = self.run.violation;
        let Some(fl) = self.workers[w].in_flight.as_mut() else {
            return;
        };
        if invoke.f == "write" {
            fl.write_index = Some(invoke.index);
        }
        let t = invoke.time.unwrap_or(0) as i64;
        let stale_candidate = run_violation
            && self.cex.found.is_none()
            && t >= self.cex.after
            && invoke.f == "read"
            && fl.completion.kind == EventType::Ok;
        let key = invoke.key.clone().unwrap_or_default();
        let Some([older, newer]) = self
            .writes
            .get(&key)
            .filter(|_| stale_candidate)
            .and_then(|w| <[(u64, Value); 2]>::try_from(w.clone()).ok())
        else {
            return;
        };
        fl.completion.value = older.1.clone();
        self.cex.found = Some(json!({
            "key": key,
            "ops": [older.0, newer.0, invoke.index],
            "op": invoke.index,
            "prefix": [older.0, newer.0],
            "states": [older.1, newer.1],
            "explanation": format!(
                "read #{} of {key:?} returned {}, but write #{} of {key:?} completed before the read began: \
                 no order of these ops explains the read (a stale read).",
                invoke.index, older.1, newer.0
            ),
        }));
    }

    /// The worker's op completes: returns the completion and when the
    /// worker invokes next, if it does.
    fn complete(&mut self, w: usize) -> (Event, Option<i64>) {
        let fl = self.workers[w].in_flight.take().expect("an op in flight");
        let done = fl.completion;
        if let (Some(idx), EventType::Ok) = (fl.write_index, done.kind) {
            let key = done.key.clone().unwrap_or_default();
            let ws = self.writes.entry(key).or_default();
            ws.push((idx, done.value.clone()));
            if ws.len() > 2 {
                ws.remove(0);
            }
        }
        if done.kind == EventType::Info {
            self.workers[w].process += self.run.concurrency as u64;
        }
        let t = done.time.unwrap_or(0) as i64;
        let next = (self.issued < self.run.ops)
            .then(|| t + self.rng.gen_range(0..(2 * self.think).max(2)));
        (done, next)
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

/// Every fault and undo, in time order.
fn nemesis_events(plan: &Plan) -> Vec<Event> {
    let mut out = Vec::new();
    for f in &plan.faults {
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
        out.push(nemesis(f.start, start_f, value));
        out.push(nemesis(f.end, end_f, undo));
    }
    out.sort_by_key(|e| e.time);
    out
}

/// What the history came to.
struct Written {
    issued: usize,
    counterexample: Value,
}

impl SyntheticRun {
    /// Writes the run folder at `dir` (created if needed).
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let plan = Plan::new(self, &mut rng);
        fs::create_dir_all(dir)?;
        self.write_test(dir, &plan)?;
        let written = self.write_history(dir, &plan, rng)?;
        if self.traces {
            write_traces(dir, &plan)?;
        }
        if self.observations {
            write_observations(dir, &plan)?;
        }
        if self.results {
            self.write_results(dir, &plan, &written)?;
        }
        Ok(())
    }

    fn write_test(&self, dir: &Path, plan: &Plan) -> io::Result<()> {
        let test = json!({
            "name": "synthetic", "start_unix_ns": START_UNIX_NS, "seed": self.seed,
            "nodes": self.nodes, "time_limit_s": plan.duration / 1_000_000_000,
            "concurrency": self.concurrency, "rate": self.rate, "workload": "kv", "keys": KEYS,
            "nemesis": ["kill", "pause", "partition"], "nemesis_interval_s": 8,
            "read_consistency": "linearizable",
            "system": {"name": "raft-node", "version": "0.1.0", "bin": "target/release/node",
                       "opts": {"pre-vote": "true", "check-quorum": "true"}},
            "argv": ["harness", "run", "--workload", "kv", "--nemesis", "kill,pause,partition",
                     "--seed", self.seed.to_string()],
        });
        fs::write(dir.join("test.json"), serde_json::to_vec_pretty(&test)?)
    }

    /// Streams the history to disk in time order: each worker's next
    /// invoke or completion, and the faults, whichever comes first.
    fn write_history(&self, dir: &Path, plan: &Plan, rng: ChaCha8Rng) -> io::Result<Written> {
        let file = fs::File::create(dir.join(formats::history::FILE_NAME))?;
        let mut out = formats::history::Writer::new(BufWriter::with_capacity(1 << 20, file));
        let workers = self.concurrency.max(1);
        let per_worker = self.ops.div_ceil(workers);
        let think = (plan.duration / per_worker.max(1) as i64).max(1);
        let mut c = Clients {
            run: self,
            plan,
            rng,
            think,
            workers: (0..workers)
                .map(|w| Worker {
                    process: w as u64,
                    in_flight: None,
                })
                .collect(),
            issued: 0,
            write_value: 0,
            writes: HashMap::new(),
            cex: Counterexample {
                after: plan.duration * 6 / 10,
                found: None,
            },
        };
        // (time, worker): the worker's next step, an invoke if it has no
        // op in flight, else its completion.
        let mut next: BinaryHeap<Reverse<(i64, usize)>> = (0..workers)
            .map(|w| Reverse((c.rng.gen_range(0..think.max(2)), w)))
            .collect();
        let mut faults = nemesis_events(plan).into_iter().peekable();
        let mut index = 0u64;
        let mut emit = |e: &mut Event| -> io::Result<()> {
            e.index = index;
            index += 1;
            out.write(e)
        };
        while let Some(Reverse((t, w))) = next.pop() {
            while let Some(mut f) = faults.next_if(|f| f.time.unwrap_or(0) as i64 <= t) {
                emit(&mut f)?;
            }
            if c.workers[w].in_flight.is_none() {
                if c.issued >= self.ops {
                    continue;
                }
                c.issued += 1;
                let mut inv = c.invoke(w, t);
                emit(&mut inv)?;
                c.invoked(w, &inv);
                let done = c.workers[w].in_flight.as_ref().expect("in flight");
                next.push(Reverse((done.completion.time.unwrap_or(0) as i64, w)));
            } else {
                let (mut done, again) = c.complete(w);
                emit(&mut done)?;
                if let Some(t) = again {
                    next.push(Reverse((t, w)));
                }
            }
        }
        for mut f in faults {
            emit(&mut f)?;
        }
        out.flush()?;
        Ok(Written {
            issued: c.issued,
            counterexample: c.cex.found.unwrap_or(Value::Null),
        })
    }

    /// `results.json` as a run writes it (the harness's own type), with
    /// the verdict the checker would give and coarse statistics.
    fn write_results(&self, dir: &Path, plan: &Plan, w: &Written) -> io::Result<()> {
        use checker::{Checkers, LinearizabilityResult, RaftSafetyResult, Validity};
        let valid = if self.violation {
            Validity::Invalid
        } else {
            Validity::Valid
        };
        let linearizability = LinearizabilityResult {
            valid,
            reason: if self.violation {
                "a read returned a value that was already overwritten".into()
            } else {
                String::new()
            },
            file: "history.jsonl".into(),
            format: "jsonl".into(),
            parts: 8,
            windows: 0,
            graph_parts: 8,
            search_parts: 0,
        };
        let raft_safety = RaftSafetyResult {
            valid: Validity::Valid,
            nodes: plan.nodes.len(),
            events: 0,
            violations: Vec::new(),
        };
        let stats = harness::stats::Stats {
            by_f: Default::default(),
            latency_ms: Default::default(),
            throughput_ops_s: w.issued as f64 * 1e9 / plan.duration as f64,
            duration_s: plan.duration as f64 / 1e9,
            faults: plan
                .faults
                .iter()
                .map(|f| harness::stats::FaultWindow {
                    f: f.kind.into(),
                    value: json!({"nodes": f.nodes}),
                    start_ns: f.start as u64,
                    end_ns: f.end as u64,
                    ok: 0,
                    fail: 0,
                    info: 0,
                })
                .collect(),
            nemesis_events: Default::default(),
        };
        let results = harness::store::RunResults {
            valid: Some(valid),
            model: Some("kv".into()),
            ops: Some(w.issued),
            parse_ms: Some(41.0),
            check_ms: Some(230.5),
            checkers: Some(Checkers {
                linearizability: Some(linearizability),
                raft_safety: Some(raft_safety),
            }),
            counterexample: serde_json::from_value(w.counterexample.clone())?,
            stats: Some(stats),
            exit_code: Some(valid.exit_code()),
            ..Default::default()
        };
        fs::write(
            dir.join("results.json"),
            serde_json::to_vec_pretty(&results)?,
        )
    }
}

/// Each node's trace: its role changes and a few commits per term.
fn write_traces(dir: &Path, plan: &Plan) -> io::Result<()> {
    for n in &plan.nodes {
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
        for (i, &(at, leader, term)) in plan.leaders.iter().enumerate() {
            let at = START_UNIX_NS + at;
            let role = |role, leader| TraceKind::Role { term, role, leader };
            if leader == *n {
                line(at - 20 * MS, role(Role::Candidate, None))?;
                line(at, role(Role::Leader, Some(leader as u64)))?;
            } else if i == 0 || plan.leaders[i - 1].1 == *n {
                line(at, role(Role::Follower, Some(leader as u64)))?;
            }
            for _ in 0..3 {
                index += 1;
                line(at + index as i64 * MS, TraceKind::Commit { index, term })?;
            }
        }
        tr.flush()?;
    }
    Ok(())
}

/// Each node's status polled every 100 ms, except while it is killed or
/// paused (the poll gets no answer).
fn write_observations(dir: &Path, plan: &Plan) -> io::Result<()> {
    let file = fs::File::create(dir.join(formats::observations::FILE_NAME))?;
    let mut out = formats::observations::Writer::new(BufWriter::new(file));
    let mut t = 0;
    while t <= plan.duration {
        let (leader, term) = plan.leader_at(t);
        for &n in &plan.nodes {
            let down = plan
                .fault_at(t)
                .is_some_and(|f| f.kind != "partition" && f.nodes.contains(&n));
            if down {
                continue;
            }
            let role = if n == leader {
                Role::Leader
            } else {
                Role::Follower
            };
            out.write(&Observation {
                time: (START_UNIX_NS + t + n as i64 * MS) as u64,
                node: n as u64,
                kind: ObservationKind::Status {
                    term,
                    role,
                    leader: Some(leader as u64).filter(|l| *l > 0),
                },
            })?;
        }
        t += 100 * MS;
    }
    out.flush()
}
