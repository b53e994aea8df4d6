//! `cargo bench -p checker`: check times over the porcupine corpus, on
//! generated unique-value histories, and on hard shapes (many processes,
//! many `info` ops), each of those in its own process for its peak RSS.
//!
//! Protocol: parsing is excluded, each number is the median of 3 runs.
//! Prints Markdown tables (copied into docs/checker-bench.md).
//! `cargo bench -p checker -- hard` prints only the hard shapes,
//! `-- classic` everything else;
//! `-- write DIR` writes their histories (JSONL) for other checkers.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use checker::history::{self, Dialect, FailedCas, OpF};
use checker::{check_history, parse, CheckOptions, Format, History, ModelKind, Validity};
use formats::history::{Event, EventType, Process};
use formats::Numbered;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

#[path = "support/shapes.rs"]
mod shapes;

fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/porcupine");
    assert!(
        dir.join("MANIFEST.tsv").is_file(),
        "porcupine corpus not found at {}",
        dir.display()
    );
    dir
}

fn load(path: &Path, opts: &CheckOptions) -> History {
    let bytes = std::fs::read(path).expect("read");
    parse::parse_bytes(&path.display().to_string(), &bytes, opts).expect("parse")
}

/// Median of 3 check times (ms) and the verdict.
fn time3(h: &History, opts: &CheckOptions) -> (f64, Validity) {
    let mut times = Vec::new();
    let mut verdict = Validity::Unknown;
    for _ in 0..3 {
        let t = Instant::now();
        let r = check_history(h, opts);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        verdict = r.valid;
    }
    times.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    (times[1], verdict)
}

fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resets VmHWM to the current RSS (Linux `clear_refs` 5), so the next
/// reading is the peak of what follows.
fn reset_hwm() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn vm_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn word(v: Validity) -> &'static str {
    match v {
        Validity::Valid => "valid",
        Validity::Invalid => "invalid",
        Validity::Unknown => "unknown",
    }
}

/// A linearizable-by-construction register history: `procs` clients over
/// `keys` keys, unique written values, `info_p` of the ops ending `info` (half
/// of those took effect). With `cas`, 30 % of ops are compare-and-set (half
/// from the current value, half from a recent one, failing with
/// `precondition` when it does not match), as our harness's workloads do.
pub fn generate(
    n_ops: usize,
    procs: u64,
    keys: usize,
    info_p: f64,
    cas: bool,
    seed: u64,
) -> Vec<Numbered<Event>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Read,
        Write(u64),
        Cas(Option<u64>, u64),
    }
    struct Open {
        process: u64,
        key: usize,
        kind: Kind,
        applied: bool,
        read: Option<Option<u64>>,
        cas_ok: bool,
        will_info: bool,
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut state: Vec<Option<u64>> = vec![None; keys];
    let mut open: Vec<Option<Open>> = (0..procs).map(|_| None).collect();
    let mut next_process: Vec<u64> = (0..procs).collect();
    let mut fresh = procs;
    let mut next_value = 1u64;
    let mut events = Vec::with_capacity(n_ops * 2 + 64);
    let mut invoked = 0usize;
    let mut time = 0u64;
    let mut push = |events: &mut Vec<Numbered<Event>>,
                    p: u64,
                    kind: EventType,
                    f: &str,
                    key: usize,
                    value,
                    error: Option<String>| {
        time += 1000;
        let index = events.len() as u64;
        let event = Event {
            index,
            time: Some(time),
            process: Process::Client(p),
            kind,
            f: f.to_string(),
            key: Some(format!("k{key}")),
            value,
            node: None,
            error,
        };
        events.push(Numbered {
            line: events.len() + 1,
            event,
        });
    };
    let value_of = |k: Kind| match k {
        Kind::Read => json!(null),
        Kind::Write(v) => json!(v),
        Kind::Cas(a, b) => json!([a, b]),
    };
    let name = |k: Kind| match k {
        Kind::Read => "read",
        Kind::Write(_) => "write",
        Kind::Cas(..) => "cas",
    };
    loop {
        let w = rng.gen_range(0..procs as usize);
        match open[w].take() {
            None => {
                if invoked >= n_ops {
                    if open.iter().all(Option::is_none) {
                        break;
                    }
                    continue;
                }
                invoked += 1;
                let key = rng.gen_range(0..keys);
                let p = next_process[w];
                let roll: f64 = rng.gen();
                next_value += 1;
                let kind = if cas && roll < 0.3 {
                    let from = if rng.gen_bool(0.5) {
                        state[key]
                    } else {
                        Some(next_value.saturating_sub(rng.gen_range(1..8)))
                    };
                    Kind::Cas(from, next_value)
                } else if roll < if cas { 0.6 } else { 0.5 } {
                    Kind::Write(next_value)
                } else {
                    Kind::Read
                };
                push(
                    &mut events,
                    p,
                    EventType::Invoke,
                    name(kind),
                    key,
                    value_of(kind),
                    None,
                );
                open[w] = Some(Open {
                    process: p,
                    key,
                    kind,
                    applied: false,
                    read: None,
                    cas_ok: false,
                    will_info: rng.gen_bool(info_p),
                });
            }
            Some(mut o) => {
                // An op that ends `info` may complete without taking effect.
                let never = o.will_info && rng.gen_bool(0.5);
                if !o.applied && !never {
                    // The linearization point.
                    match o.kind {
                        Kind::Write(v) => state[o.key] = Some(v),
                        Kind::Read => o.read = Some(state[o.key]),
                        Kind::Cas(a, b) => {
                            o.cas_ok = state[o.key] == a;
                            if o.cas_ok {
                                state[o.key] = Some(b);
                            }
                        }
                    }
                    o.applied = true;
                    open[w] = Some(o);
                    continue;
                }
                let f = name(o.kind);
                if o.will_info {
                    push(
                        &mut events,
                        o.process,
                        EventType::Info,
                        f,
                        o.key,
                        value_of(o.kind),
                        None,
                    );
                    next_process[w] = fresh;
                    fresh += 1;
                } else {
                    match o.kind {
                        Kind::Read => {
                            let v = o.read.flatten().map_or(json!(null), |v| json!(v));
                            push(&mut events, o.process, EventType::Ok, f, o.key, v, None)
                        }
                        Kind::Cas(..) if !o.cas_ok => push(
                            &mut events,
                            o.process,
                            EventType::Fail,
                            f,
                            o.key,
                            value_of(o.kind),
                            Some("precondition".into()),
                        ),
                        k => push(
                            &mut events,
                            o.process,
                            EventType::Ok,
                            f,
                            o.key,
                            value_of(k),
                            None,
                        ),
                    }
                }
            }
        }
    }
    events
}

/// One row of the hard-shapes table: a generated history and the budget it
/// is checked under.
struct HardRow {
    shape: shapes::Shape,
    time_limit_s: f64,
    memory_limit: u64,
    /// Checks per row (the time is their median).
    runs: usize,
}

const GIB: u64 = 1 << 30;

fn hard_rows() -> Vec<HardRow> {
    use shapes::{Fault, Shape};
    let shape = |ops, procs, keys, info, fault, seed| Shape {
        ops,
        procs,
        keys,
        info,
        cas: 0.3,
        fault,
        seed,
    };
    let row = |shape, time_limit_s, memory_limit, runs| HardRow {
        shape,
        time_limit_s,
        memory_limit,
        runs,
    };
    let mut rows = Vec::new();
    for (ops, procs, keys, info) in [
        (3000, 10, 1, 0.3),
        (3000, 10, 1, 0.5),
        (3000, 50, 1, 0.3),
        (10_000, 20, 1, 0.3),
        (100_000, 20, 8, 0.3),
    ] {
        for fault in [Fault::None, Fault::Stale, Fault::Future] {
            rows.push(row(shape(ops, procs, keys, info, fault, 1), 60.0, GIB, 3));
        }
    }
    // The budget holding when it runs out: a failed cas that only an
    // unobserved info op could explain, under the default budgets, a 64 MiB
    // memory limit, and a 10 s time limit.
    let hard = shape(3000, 10, 1, 0.3, Fault::FailedCas, 4);
    rows.push(row(hard, 60.0, GIB, 1));
    rows.push(row(hard, 60.0, 64 << 20, 1));
    rows.push(row(hard, 10.0, GIB, 1));
    rows
}

/// Child mode: `row FILE TIME_S MEMORY_BYTES RUNS`: parses the file, checks it
/// RUNS times, prints one JSON line (times, verdict, RSS before parsing,
/// after parsing, and the peak during the checks).
fn child_row(a: &[String]) {
    let file = Path::new(&a[0]);
    let time_limit = Duration::from_secs_f64(a[1].parse().expect("seconds"));
    let memory_limit_bytes: u64 = a[2].parse().expect("bytes");
    let runs: usize = a[3].parse().expect("runs");
    let opts = CheckOptions {
        time_limit,
        memory_limit_bytes,
        ..CheckOptions::default()
    };
    let base = vm_rss_kib().unwrap_or(0);
    let t = Instant::now();
    let h = parse::parse_file(file, &opts).expect("parse");
    let parse_ms = t.elapsed().as_secs_f64() * 1e3;
    let held = vm_rss_kib().unwrap_or(0);
    reset_hwm();
    let mut times = Vec::new();
    let mut report = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = check_history(&h, &opts);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        report = Some(r);
    }
    let peak = vm_hwm_kib().unwrap_or(0);
    times.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    let r = report.expect("at least one run");
    let lin = r.checkers.linearizability.as_ref();
    println!(
        "{}",
        json!({
            "ops": h.ops.len(),
            "ms": times[times.len() / 2],
            "parse_ms": parse_ms,
            "verdict": word(r.valid),
            "reason": lin.map(|l| l.reason.clone()),
            "counterexample": r.counterexample.is_some(),
            "base_kib": base,
            "held_kib": held,
            "peak_kib": peak,
        })
    );
}

/// Runs a command, returning its stdout parsed as one JSON line.
fn run_json(cmd: &mut std::process::Command) -> serde_json::Value {
    let out = cmd.output().expect("spawn");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "no result line: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

/// Writes each hard row's history as JSONL into `dir`; returns the paths.
fn write_hard_files(dir: &Path, rows: &[HardRow]) -> Vec<PathBuf> {
    let mut written: Vec<(String, PathBuf)> = Vec::new();
    rows.iter()
        .map(|r| {
            let s = &r.shape;
            let name = format!(
                "ops{}-p{}-k{}-info{:.0}-{}-seed{}.jsonl",
                s.ops,
                s.procs,
                s.keys,
                s.info * 100.0,
                s.fault.name().replace(' ', "_"),
                s.seed
            );
            if let Some((_, p)) = written.iter().find(|(n, _)| *n == name) {
                return p.clone();
            }
            let path = dir.join(&name);
            let text = shapes::to_jsonl(&shapes::generate(s));
            std::fs::write(&path, text).expect("write history");
            written.push((name, path.clone()));
            path
        })
        .collect()
}

/// The hard shapes: many processes on one key, many writes ending `info`;
/// each row checked in its own process, so that its peak RSS is its own.
/// With `PORCUPINE` set to a program taking `FILE TIMEOUT_S` and printing
/// `{"verdict", "ms", "peak_kib"}`, porcupine runs on the same files.
fn hard_table() {
    let rows = hard_rows();
    let dir = tempfile::tempdir().expect("tempdir");
    let files = write_hard_files(dir.path(), &rows);
    let porcupine = std::env::var("PORCUPINE").ok();
    let exe = std::env::current_exe().expect("current exe");
    println!(
        "| history | budget | verdict | check time (median) | peak RSS (parsed history) | within budget + 2 × file{} |",
        if porcupine.is_some() { " | porcupine (same file, same budget of time)" } else { "" }
    );
    println!(
        "|---|---|---|---:|---:|---|{}",
        if porcupine.is_some() { "---|" } else { "" }
    );
    for (r, file) in rows.iter().zip(&files) {
        let v = run_json(std::process::Command::new(&exe).args([
            "row",
            &file.display().to_string(),
            &r.time_limit_s.to_string(),
            &r.memory_limit.to_string(),
            &r.runs.to_string(),
        ]));
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        let file_kib = std::fs::metadata(file).map_or(0, |m| m.len() / 1024);
        let limit_kib = n("base_kib") + r.memory_limit / 1024 + 2 * file_kib;
        let verdict = v["verdict"].as_str().unwrap_or("?").to_string();
        let verdict = match (verdict.as_str(), v["reason"].as_str()) {
            ("unknown", Some(reason)) => {
                format!("unknown ({})", reason.split(" while").next().unwrap_or(""))
            }
            (w, _) if w == "invalid" && v["counterexample"] == json!(true) => {
                "invalid, counterexample".to_string()
            }
            (w, _) => w.to_string(),
        };
        let mut line = format!(
            "| {} | {:.0} s, {} | {} | {:.1} ms{} | {} ({}) | {} ({} MiB file) |",
            r.shape.label(),
            r.time_limit_s,
            mib(r.memory_limit / 1024),
            verdict,
            v["ms"].as_f64().unwrap_or(f64::NAN),
            if r.runs > 1 { "" } else { " (1 run)" },
            mib(n("peak_kib")),
            mib(n("held_kib")),
            if n("peak_kib") <= limit_kib {
                "yes"
            } else {
                "NO"
            },
            file_kib / 1024,
        );
        if let Some(p) = &porcupine {
            let pv = run_json(
                std::process::Command::new(p)
                    .arg(file)
                    .arg(r.time_limit_s.to_string()),
            );
            line.push_str(&format!(
                " {}, {}, {} |",
                pv["verdict"].as_str().unwrap_or("?"),
                pv["ms"]
                    .as_f64()
                    .map_or("-".to_string(), |ms| format!("{ms:.1} ms")),
                mib(pv["peak_kib"].as_u64().unwrap_or(0))
            ));
        }
        println!("{line}");
    }
}

/// `write DIR`: the hard rows' histories, for running other checkers on them.
fn write_only(dir: &Path) {
    std::fs::create_dir_all(dir).expect("create dir");
    for f in write_hard_files(dir, &hard_rows()) {
        println!("{}", f.display());
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("row") => return child_row(&args[1..]),
        Some("write") => return write_only(Path::new(&args[1])),
        Some("hard") => return hard_table(),
        _ => {}
    }
    let classic_only = args.first().map(String::as_str) == Some("classic");
    let dir = corpus();
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("manifest");
    let mut rows = Vec::new();
    println!("| measurement | time (median of 3) | verdict | notes |");
    println!("|---|---:|---|---|");

    // Generated unique-value histories.
    for n in [100_000usize, 1_000_000] {
        let events = generate(n, 20, 8, 0.01, false, 42);
        let h = history::build(
            "generated",
            Dialect {
                format: Format::Jsonl,
                nil_read_unknown: false,
                failed_cas: FailedCas::OnPrecondition,
            },
            events,
            Some(ModelKind::Kv),
            None,
        )
        .expect("build");
        let o = CheckOptions::default();
        let with_history = vm_hwm_kib().unwrap_or(0);
        let before = vm_rss_kib().unwrap_or(0);
        reset_hwm();
        let (ms, v) = time3(&h, &o);
        let hwm = vm_hwm_kib().unwrap_or(0);
        println!(
            "| generated {n} ops (20 procs, 8 keys, 1% info) | {ms:.1} ms | {} | check peak RSS {:.0} MiB (history held: {:.0} MiB; peak incl. generating it: {:.0} MiB) |",
            word(v),
            hwm as f64 / 1024.0,
            before as f64 / 1024.0,
            with_history.max(hwm) as f64 / 1024.0
        );
        // The search alone on the same history (graph disabled), for comparison.
        let o = CheckOptions {
            use_graph: false,
            time_limit: Duration::from_secs(30),
            ..CheckOptions::default()
        };
        reset_hwm();
        let t = Instant::now();
        let r = check_history(&h, &o);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let hwm = vm_hwm_kib().unwrap_or(0);
        println!(
            "| generated {n} ops, search only (graph off, 1 run) | {ms:.1} ms | {} | check peak RSS {:.0} MiB |",
            word(r.valid),
            hwm as f64 / 1024.0
        );
    }

    // A cas workload (what the harness records): the search decides it.
    for n in [10_000usize, 100_000] {
        let events = generate(n, 20, 8, 0.01, true, 7);
        let h = history::build(
            "generated-cas",
            Dialect {
                format: Format::Jsonl,
                nil_read_unknown: false,
                failed_cas: FailedCas::OnPrecondition,
            },
            events,
            Some(ModelKind::Kv),
            None,
        )
        .expect("build");
        let o = CheckOptions::default();
        reset_hwm();
        let (ms, v) = time3(&h, &o);
        let hwm = vm_hwm_kib().unwrap_or(0);
        println!(
            "| generated {n} ops with cas (30 % cas, 20 procs, 8 keys, 1% info) | {ms:.1} ms | {} | check peak RSS {:.0} MiB |",
            word(v),
            hwm as f64 / 1024.0
        );
        // The same history with one stale read injected halfway.
        let mut bad = h.clone();
        let mid = bad.ops.len() / 2;
        let r = (mid..bad.ops.len())
            .find(|&i| matches!(bad.ops[i].f, OpF::Read(_)))
            .expect("a read");
        let key = bad.ops[r].key;
        let stale = (0..mid / 2)
            .rev()
            .find_map(|i| match bad.ops[i].f {
                OpF::Write(x) if bad.ops[i].key == key => Some(x),
                _ => None,
            })
            .expect("an early write");
        bad.ops[r].f = OpF::Read(stale);
        let (ms, v) = time3(&bad, &o);
        println!(
            "| same, one stale read injected at op {r} | {ms:.1} ms | {} | counterexample found |",
            word(v)
        );
    }

    // etcd logs.
    let mut etcd: Vec<(String, f64, Validity)> = Vec::new();
    let opts = CheckOptions::default();
    for l in manifest.lines().skip(1) {
        let file = l.split('\t').next().unwrap_or_default();
        if !file.starts_with("jepsen/") {
            continue;
        }
        let h = load(
            &dir.join(file),
            &CheckOptions {
                format: Some(Format::EtcdLog),
                ..opts.clone()
            },
        );
        let (ms, v) = time3(&h, &opts);
        etcd.push((file.to_string(), ms, v));
    }
    let total: f64 = etcd.iter().map(|e| e.1).sum();
    let invalid = etcd.iter().filter(|e| e.2 == Validity::Invalid).count();
    rows.push(format!(
        "| porcupine etcd total ({} files) | {total:.2} ms | {} valid, {invalid} invalid | porcupine: 278 ms |",
        etcd.len(),
        etcd.len() - invalid
    ));
    etcd.sort_by(|a, b| b.1.partial_cmp(&a.1).expect("finite"));
    for (f, ms, v) in etcd.iter().take(5) {
        rows.push(format!(
            "| slowest: {f} | {ms:.3} ms | {} | porcupine's slowest file: 106 ms |",
            word(*v)
        ));
    }

    // kv files. Unsplit, the whole map is one model state; the c50 files
    // are decided by the search's per-key backjumping (porcupine gives no
    // verdict on them in 120 s).
    for (file, split) in [
        ("kv/c50-ok.txt", true),
        ("kv/c50-bad.txt", true),
        ("kv/c10-ok.txt", false),
        ("kv/c10-bad.txt", false),
        ("kv/c50-ok.txt", false),
        ("kv/c50-bad.txt", false),
    ] {
        let o = CheckOptions {
            format: Some(Format::PorcupineKv),
            model: Some(ModelKind::AppendKv),
            split_keys: split,
            time_limit: Duration::from_secs(60),
            ..CheckOptions::default()
        };
        let h = load(&dir.join(file), &o);
        let (ms, v) = time3(&h, &o);
        let note = match (file, split) {
            ("kv/c50-ok.txt", true) => ", porcupine: 91 ms",
            (f, false) if f.starts_with("kv/c50") => ", porcupine: no verdict in 120 s",
            _ => "",
        };
        rows.push(format!(
            "| {file} {} | {ms:.2} ms | {} | {} ops{note} |",
            if split {
                "split by key"
            } else {
                "unsplit (whole map)"
            },
            word(v),
            h.ops.len(),
        ));
    }
    for r in &rows {
        println!("{r}");
    }
    rows.clear();
    if !classic_only {
        println!();
        hard_table();
    }
}
