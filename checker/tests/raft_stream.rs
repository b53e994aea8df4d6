//! The streaming Raft-safety check against the straightforward in-memory
//! one (`support/reference.rs`): on small random runs with planted
//! violations of every kind the two report the same, also with windows so
//! small that most events need an audit pass, also through files; with a
//! clock step they find the same violations; and on 5 nodes × 1 M generated
//! events (never stored) the streaming check finishes and finds what was
//! planted.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use checker::raft::{
    check_events_with, check_inputs, check_trace_files_with, Event, RaftOptions, Stamped, Stream,
};
use checker::{CheckError, RaftSafetyResult, Validity};
use formats::observations::{Observation, ObservationKind};
use formats::trace::{EntryKind, Role, TraceEvent, TraceKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use support::soak::{self, Soak};

/// A small cluster's run, event by event, with violations planted at a rate.
struct RandomRun {
    rng: ChaCha8Rng,
    plant: f64,
    time: u64,
    term: u64,
    leader: u64,
    /// The entries every node should apply: (term, digest).
    log: Vec<(u64, String)>,
    /// Per node: applied, committed.
    nodes: Vec<(u64, u64)>,
    /// Every trace event in the order it happened.
    flat: Vec<TraceEvent>,
    observations: Vec<Observation>,
}

impl RandomRun {
    fn new(seed: u64, plant: f64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = rng.gen_range(2..=4);
        RandomRun {
            rng,
            plant,
            time: 1_000,
            term: 0,
            leader: 1,
            log: Vec::new(),
            nodes: vec![(0, 0); n],
            flat: Vec::new(),
            observations: Vec::new(),
        }
    }

    fn planted(&mut self) -> bool {
        self.rng.gen_bool(self.plant)
    }

    fn tick(&mut self) -> u64 {
        self.time += self.rng.gen_range(0..=1); // ties across nodes happen
        self.time
    }

    fn emit(&mut self, node: u64, kind: TraceKind) {
        let time = self.tick();
        self.flat.push(TraceEvent { time, node, kind });
    }

    fn entry(&self, index: u64) -> (u64, String) {
        self.log[index as usize - 1].clone()
    }

    fn run(mut self, steps: usize) -> Self {
        let count = self.nodes.len() as u64;
        for _ in 0..steps {
            let n = self.rng.gen_range(1..=count);
            let (applied, committed) = self.nodes[n as usize - 1];
            match self.rng.gen_range(0..100) {
                0..=7 => self.elect(count),
                8..=37 => {
                    let index = self.log.len() as u64 + 1;
                    let digest = if self.rng.gen_bool(0.2) {
                        format!("d{index}") // not hex: kept as text
                    } else {
                        format!("{:016x}", self.rng.gen::<u64>())
                    };
                    self.log.push((self.term.max(1), digest));
                }
                38..=59 => {
                    let len = self.log.len() as u64;
                    if self.planted() && committed > 1 {
                        let back = self.rng.gen_range(1..committed);
                        let term = self.entry(back).0;
                        self.emit(n, TraceKind::Commit { index: back, term });
                    } else if committed < len {
                        let index = self.rng.gen_range(committed + 1..=len);
                        let mut term = self.entry(index).0;
                        if self.planted() {
                            term += 1;
                        }
                        self.emit(n, TraceKind::Commit { index, term });
                        self.nodes[n as usize - 1].1 = index;
                    }
                }
                60..=89 => {
                    if applied < committed {
                        let index = applied + 1;
                        let (mut term, mut digest) = self.entry(index);
                        if self.planted() {
                            if self.rng.gen_bool(0.5) {
                                digest.push('x');
                            } else {
                                term += 1;
                            }
                        }
                        let kind = if index == 1 {
                            EntryKind::Noop
                        } else {
                            EntryKind::Command
                        };
                        self.emit(
                            n,
                            TraceKind::Apply {
                                index,
                                term,
                                digest,
                                kind,
                            },
                        );
                        self.nodes[n as usize - 1].0 = index;
                    }
                }
                90..=93 => {
                    // A restart replays from a snapshot, with or without a start line.
                    let snapshot_index = self.rng.gen_range(0..=applied);
                    if self.rng.gen_bool(0.7) {
                        let term = self.term;
                        self.emit(
                            n,
                            TraceKind::Start {
                                term,
                                snapshot_index,
                            },
                        );
                    }
                    self.nodes[n as usize - 1] = (snapshot_index, snapshot_index);
                }
                94..=95 => {
                    let len = self.log.len() as u64;
                    if applied < len {
                        let index = self.rng.gen_range(applied + 1..=len);
                        let term = self.entry(index).0;
                        self.emit(n, TraceKind::Snapshot { index, term });
                        self.nodes[n as usize - 1] = (index, index);
                    }
                }
                96..=97 => {
                    let role = if n == self.leader || self.planted() {
                        Role::Leader
                    } else {
                        Role::Follower
                    };
                    let (time, term, leader) = (self.tick(), self.term, Some(self.leader));
                    self.observations.push(Observation {
                        time,
                        node: n,
                        kind: ObservationKind::Status { term, role, leader },
                    });
                }
                _ => {
                    let index = self.log.len() as u64;
                    self.emit(
                        n,
                        TraceKind::Config {
                            index,
                            members: (1..=count).collect(),
                            learners: vec![],
                        },
                    );
                }
            }
        }
        self
    }

    fn elect(&mut self, count: u64) {
        self.term += 1;
        self.leader = self.rng.gen_range(1..=count);
        let term = self.term;
        for n in 1..=count {
            let role = if n == self.leader || (self.planted() && self.planted()) {
                Role::Leader
            } else if self.rng.gen_bool(0.3) {
                Role::Candidate
            } else {
                Role::Follower
            };
            if self.rng.gen_bool(0.8) {
                let leader = Some(self.leader);
                self.emit(n, TraceKind::Role { term, role, leader });
            }
        }
    }

    /// Each node's events in its own order.
    fn per_node(&self) -> Vec<Vec<TraceEvent>> {
        let mut out = vec![Vec::new(); self.nodes.len()];
        for e in &self.flat {
            out[e.node as usize - 1].push(e.clone());
        }
        out
    }

    /// Steps one node's clock back by `by` ns after its `after`-th event.
    fn clock_step(&mut self, node: u64, after: usize, by: u64) {
        for e in self.flat.iter_mut().filter(|e| e.node == node).skip(after) {
            e.time = e.time.saturating_sub(by);
        }
    }
}

/// Bounds from roomy to tiny: a window of 1 index makes nearly every event
/// an audit's, one pending commit and one unchecked interval force the
/// caps' spill paths.
fn option_sets() -> Vec<RaftOptions> {
    let o = |window, pending, unchecked_spans, audit_batch| RaftOptions {
        window,
        pending,
        unchecked_spans,
        audit_batch,
    };
    vec![
        RaftOptions::default(),
        o(8, 4, 2, 5),
        o(3, 1, 1, 1000),
        o(1, 1, 3, 1000),
        o(2, 64, 64, 2),
    ]
}

fn json(r: &RaftSafetyResult) -> serde_json::Value {
    serde_json::to_value(r).expect("json")
}

/// The violation kinds the reference found over all seeds, with counts.
#[derive(Default)]
struct Seen {
    two_leaders: usize,
    divergent: usize,
    regress: usize,
    valid: usize,
    /// Runs with more violations than the report keeps.
    capped: usize,
}

impl Seen {
    fn count(&mut self, r: &RaftSafetyResult) {
        if r.violations.is_empty() {
            self.valid += 1;
        }
        if r.violations.len() == 100 {
            self.capped += 1;
        }
        for v in &r.violations {
            match v.kind.as_str() {
                "two-leaders" => self.two_leaders += 1,
                "divergent-apply" => self.divergent += 1,
                "commit-regress" => self.regress += 1,
                other => panic!("unknown kind {other}"),
            }
        }
    }

    fn assert_every_kind(&self) {
        assert!(
            self.two_leaders > 20
                && self.divergent > 20
                && self.regress > 20
                && self.valid > 20
                && self.capped > 5,
            "the random runs must cover every kind, clean runs and capped reports: {} \
             two-leaders, {} divergent, {} regress, {} valid, {} capped",
            self.two_leaders,
            self.divergent,
            self.regress,
            self.valid,
            self.capped
        );
    }
}

#[test]
fn agrees_with_the_in_memory_check_on_random_runs() {
    let mut seen = Seen::default();
    for seed in 0..300u64 {
        let (plant, steps) = match seed % 10 {
            9 => (0.5, 800), // more violations than the report keeps
            k => (
                [0.0, 0.01, 0.05, 0.3][k as usize % 4],
                40 + (seed as usize % 7) * 40,
            ),
        };
        let run = RandomRun::new(seed, plant).run(steps);
        let want = support::reference::check(&run.flat, &run.observations);
        seen.count(&want);
        for opts in option_sets() {
            let got = check_events_with(&run.flat, &run.observations, &opts);
            assert_eq!(
                json(&got),
                json(&want),
                "seed {seed}, plant {plant}, {opts:?}"
            );
        }
    }
    seen.assert_every_kind();
}

fn write_trace(path: &Path, events: &[TraceEvent]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let file = std::fs::File::create(path).expect("create");
    let mut w = formats::trace::Writer::new(std::io::BufWriter::new(file));
    for e in events {
        w.write(e).expect("write");
    }
    w.flush().expect("flush");
}

#[test]
fn agrees_with_the_in_memory_check_through_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    for seed in 1000..1060u64 {
        let run = RandomRun::new(seed, 0.05).run(200);
        let per_node = run.per_node();
        let mut files: Vec<PathBuf> = Vec::new();
        for (k, events) in per_node.iter().enumerate() {
            let p = dir
                .path()
                .join(format!("{seed}/nodes/n{}/trace.jsonl", k + 1));
            write_trace(&p, events);
            files.push(p);
        }
        let obs_path = dir.path().join(format!("{seed}/observations.jsonl"));
        let file = std::fs::File::create(&obs_path).expect("create");
        let mut w = formats::observations::Writer::new(std::io::BufWriter::new(file));
        for o in &run.observations {
            w.write(o).expect("write");
        }
        w.flush().expect("flush");
        // What the in-memory check was given: the files one after another.
        let concatenated: Vec<TraceEvent> = per_node.concat();
        let want = support::reference::check(&concatenated, &run.observations);
        for opts in option_sets() {
            let got = check_trace_files_with(&files, std::slice::from_ref(&obs_path), &opts)
                .expect("check");
            assert_eq!(json(&got), json(&want), "seed {seed}, {opts:?}");
        }
    }
}

/// What must not depend on the order across nodes: validity, the terms
/// with two leaders, the indexes with a divergence, and (a per-node
/// property) every commit regress exactly.
fn findings(r: &RaftSafetyResult) -> (Validity, BTreeSet<String>, Vec<serde_json::Value>) {
    let mut keys = BTreeSet::new();
    let mut regress = Vec::new();
    for v in &r.violations {
        match v.kind.as_str() {
            "two-leaders" => {
                let term = v.message.rsplit(' ').next().expect("a term");
                keys.insert(format!("term {term}"));
            }
            "divergent-apply" => {
                let index: String = v.message.split("index ").nth(1).expect("an index")[..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                keys.insert(format!("index {index}"));
            }
            _ => regress.push(serde_json::to_value(v).expect("json")),
        }
    }
    (r.valid, keys, regress)
}

#[test]
fn a_clock_step_neither_creates_nor_hides_a_violation() {
    let mut stepped = 0;
    for seed in 2000..2300u64 {
        let mut run = RandomRun::new(seed, [0.0, 0.02, 0.1][seed as usize % 3]).run(200);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let node = rng.gen_range(1..=run.nodes.len() as u64);
        let after = rng.gen_range(0..40);
        run.clock_step(node, after, rng.gen_range(1..60));
        let want = support::reference::check(&run.flat, &run.observations);
        assert!(
            want.violations.len() < 100,
            "seed {seed}: keep below the cap"
        );
        let times: Vec<u64> = run
            .flat
            .iter()
            .filter(|e| e.node == node)
            .map(|e| e.time)
            .collect();
        stepped += usize::from(times.windows(2).any(|w| w[1] < w[0]));
        for opts in option_sets() {
            let got = check_events_with(&run.flat, &run.observations, &opts);
            assert_eq!(findings(&got), findings(&want), "seed {seed}, {opts:?}");
        }
    }
    assert!(stepped > 100, "only {stepped} runs had a clock going back");
}

#[test]
fn an_apply_older_than_the_window_is_judged_by_an_audit() {
    let apply = |time, node, index, digest: &str| TraceEvent {
        time,
        node,
        kind: TraceKind::Apply {
            index,
            term: 1,
            digest: digest.into(),
            kind: EntryKind::Command,
        },
    };
    let mut trace: Vec<TraceEvent> = (1..=50).map(|i| apply(i, 1, i, "same")).collect();
    trace.push(apply(60, 2, 3, "other"));
    trace.push(apply(61, 2, 4, "same"));
    let tiny = RaftOptions {
        window: 4,
        ..RaftOptions::default()
    };
    let r = check_events_with(&trace, &[], &tiny);
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
    assert_eq!(
        r.violations[0].message,
        "node 2 applied (term 1, digest other) at index 3, but node 1 applied (term 1, digest same) there"
    );
    assert_eq!(r.violations[0].events[0]["time"], 3);
}

/// Changes one event on its way to the check.
type Rewrite = fn(TraceEvent) -> TraceEvent;

/// Inputs that open afresh each time.
type Opener = Box<dyn Fn() -> Result<Vec<Stream<'static>>, CheckError>>;

/// 5 nodes' soak traces as inputs read straight from the generator;
/// `plant` rewrites one event of one node on the way.
fn soak_inputs(s: Soak, plant: Option<(u64, Rewrite)>) -> Opener {
    Box::new(move || {
        Ok((1..=s.nodes)
            .map(|n| {
                let events = soak::node_trace(s, n).enumerate().map(move |(k, e)| {
                    let e = match plant {
                        Some((node, f)) if node == n => f(e),
                        _ => e,
                    };
                    Ok(Stamped {
                        tiebreak: (n << 40) | k as u64,
                        event: Event::Trace(e),
                    })
                });
                Stream {
                    name: format!("generated node {n}"),
                    events: Box::new(events),
                }
            })
            .collect())
    })
}

/// The apply of index 150 000 on node 3, in the replay after its first
/// restart (node 3 is down for indexes 130 000..150 000), writes another digest.
fn diverge_in_replay(e: TraceEvent) -> TraceEvent {
    match e.kind {
        TraceKind::Apply { index: 140_000, .. }
            if e.time > soak::EPOCH_NS + 150_000 * soak::STEP_NS =>
        {
            TraceEvent {
                kind: TraceKind::Apply {
                    index: 140_000,
                    term: soak::term_of(140_000),
                    digest: "planted".into(),
                    kind: EntryKind::Command,
                },
                ..e
            }
        }
        _ => e,
    }
}

#[test]
fn five_million_generated_events_are_checked_in_one_pass() {
    let s = Soak {
        nodes: 5,
        events_per_node: 1_000_000,
    };
    let r = check_inputs(&soak_inputs(s, None), &RaftOptions::default()).expect("check");
    assert_eq!(r.valid, Validity::Valid, "{:?}", r.violations.first());
    assert_eq!((r.events, r.nodes), (5_000_000, 5));

    let r = check_inputs(
        &soak_inputs(s, Some((3, diverge_in_replay))),
        &RaftOptions::default(),
    )
    .expect("check");
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
    let msg = &r.violations[0].message;
    assert!(
        msg.starts_with("node 3 applied (term 15, digest planted) at index 140000, but node "),
        "{msg}"
    );
}
