//! The streamed linearizability check (`checker::stream`, what
//! `check_path` runs on a JSONL history) against the in-memory check of
//! the same file: same verdict on many small generated kv histories, valid
//! and invalid, with `info` ops and with windows that never close, cutting
//! segments as often as possible; and a history of millions of ops
//! generated on the fly is checked to the end. Memory is measured by the
//! benchmark (`cargo bench -p checker --bench long`), not here.

#[path = "support/kv_soak.rs"]
mod kv_soak;

use std::io::BufWriter;
use std::path::Path;

use checker::{check_history, check_path, parse, stream, CheckOptions, CheckReport, Validity};
use formats::history::{Event, EventType, Process};
use kv_soak::{KvShape, KvSoak};
use serde_json::json;

fn write(path: &Path, events: impl Iterator<Item = Event>) {
    let file = std::fs::File::create(path).expect("create");
    let mut w = formats::history::Writer::new(BufWriter::new(file));
    for e in events {
        w.write(&e).expect("write");
    }
    w.flush().expect("flush");
}

fn opts() -> CheckOptions {
    CheckOptions {
        parallel: false,
        ..CheckOptions::default()
    }
}

fn in_memory(path: &Path) -> CheckReport {
    let h = parse::parse_file(path, &opts()).expect("parse");
    check_history(&h, &opts())
}

fn streamed(path: &Path, min_segment: usize) -> CheckReport {
    stream::check_file_cut_at(path, &opts(), min_segment)
        .expect("check")
        .expect("a kv history is streamed")
}

/// Both checks of one file agree; returns the verdict.
fn agree(path: &Path, what: &str) -> Validity {
    let expected = in_memory(path);
    for min_segment in [1, 7, 64, stream::MIN_SEGMENT] {
        let got = streamed(path, min_segment);
        assert_eq!(
            got.valid,
            expected.valid,
            "{what}, segments of {min_segment}: streamed {:?}, in memory {:?} ({})",
            got.valid,
            expected.valid,
            got.checkers
                .linearizability
                .as_ref()
                .map_or("", |l| &l.reason)
        );
        assert_eq!(got.ops, expected.ops, "{what}: ops");
        if got.valid == Validity::Invalid {
            let c = got.counterexample.as_ref().expect("a counterexample");
            assert!(!c.ops.is_empty() && !c.explanation.is_empty(), "{what}");
        }
    }
    expected.valid
}

#[test]
fn streamed_verdicts_agree_with_the_in_memory_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut verdicts = [0usize; 3];
    for seed in 0..48u64 {
        let shape = KvShape {
            ops: 200 + (seed * 97) % 1800,
            procs: 2 + (seed as usize % 9),
            keys: 1 + (seed as usize % 4),
            info: [0.0, 0.05, 0.2, 0.4][seed as usize % 4],
            seed,
        };
        let mut soak = KvSoak::new(shape);
        if seed % 3 == 0 {
            soak = soak.stale_at(shape.ops / 2);
        }
        let path = dir.path().join(format!("h{seed}.jsonl"));
        write(&path, soak);
        let v = agree(&path, &format!("seed {seed}, {shape:?}"));
        verdicts[v.exit_code() as usize] += 1;
    }
    // The generator gives both verdicts (a stale read is planted when a
    // key had two completed writes in a row by then).
    assert!(verdicts[0] > 10 && verdicts[1] > 5, "{verdicts:?}");
}

/// An op that never completes keeps its key from ever being cut; an
/// `info` write nobody reads is carried to the end.
#[test]
fn a_window_that_never_closes_is_checked_at_the_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, stale) in [false, true].into_iter().enumerate() {
        let shape = KvShape {
            ops: 3000,
            procs: 4,
            keys: 2,
            info: 0.1,
            seed: 11 + i as u64,
        };
        let mut soak = KvSoak::new(shape);
        if stale {
            soak = soak.stale_at(2000);
        }
        let mut events: Vec<Event> = soak.collect();
        // A process that invokes a write on k0 early and never answers.
        let at = 5;
        events.insert(
            at,
            Event {
                index: 0,
                time: Some(1),
                process: Process::Client(10_000),
                kind: EventType::Invoke,
                f: "write".into(),
                key: Some("k0".into()),
                value: json!("never"),
                node: None,
                error: None,
            },
        );
        for (j, e) in events.iter_mut().enumerate() {
            e.index = j as u64;
        }
        let path = dir.path().join(format!("open{i}.jsonl"));
        write(&path, events.into_iter());
        let v = agree(&path, &format!("never closes, stale {stale}"));
        assert_eq!(
            v,
            if stale {
                Validity::Invalid
            } else {
                Validity::Valid
            }
        );
    }
}

/// Millions of ops, generated on the fly, checked to the end through
/// `check_path` (the call `harness check` makes).
#[test]
fn a_history_of_millions_of_ops_is_checked_to_the_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.jsonl");
    let shape = KvShape {
        ops: 2_000_000,
        ..KvShape::default()
    };
    write(&path, KvSoak::new(shape));
    let r = check_path(&path, &CheckOptions::default()).expect("check");
    assert_eq!(r.valid, Validity::Valid, "{:?}", r.checkers.linearizability);
    assert_eq!(r.ops, 2_000_000);
}

fn ev(process: u64, kind: EventType, f: &str, value: serde_json::Value) -> Event {
    Event {
        index: 0,
        time: None,
        process: Process::Client(process),
        kind,
        f: f.into(),
        key: Some("k".into()),
        value,
        node: None,
        error: (kind == EventType::Fail).then(|| "precondition".to_string()),
    }
}

/// A failed cas that only an unread `info` write explains: the segment
/// holding it places one, and a later read of that write's value needs the
/// other one to have been placed there instead (valid), or has none left
/// (invalid). One pass cannot know which to spend; the key is confirmed in
/// memory.
#[test]
fn a_carried_write_spent_too_early_is_confirmed_in_memory() {
    use EventType::{Fail, Info, Invoke, Ok};
    let dir = tempfile::tempdir().expect("tempdir");
    for ghosts in [2, 1] {
        let mut events = Vec::new();
        for g in 1..=ghosts {
            let v = json!(format!("g{g}"));
            events.push(ev(10 + g, Invoke, "write", v.clone()));
            events.push(ev(10 + g, Info, "write", v));
        }
        let cas = json!(["x", "y"]);
        events.extend([
            ev(1, Invoke, "write", json!("x")),
            ev(1, Ok, "write", json!("x")),
            ev(2, Invoke, "read", json!(null)),
            ev(2, Ok, "read", json!("x")),
            ev(3, Invoke, "cas", cas.clone()),
            ev(3, Fail, "cas", cas),
            ev(4, Invoke, "write", json!("z")),
            ev(4, Ok, "write", json!("z")),
            ev(5, Invoke, "read", json!(null)),
            ev(5, Ok, "read", json!("g1")),
        ]);
        for (j, e) in events.iter_mut().enumerate() {
            e.index = j as u64;
        }
        let path = dir.path().join(format!("spent{ghosts}.jsonl"));
        write(&path, events.into_iter());
        let v = agree(&path, &format!("{ghosts} unread info writes"));
        let expected = if ghosts == 2 {
            Validity::Valid
        } else {
            Validity::Invalid
        };
        assert_eq!(v, expected, "{ghosts} unread info writes");
    }
}

/// `--model cas-register` on a keyed history keeps one register per key,
/// streamed as in memory.
#[test]
fn a_forced_register_model_keeps_a_register_per_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let forced = CheckOptions {
        model: Some(checker::ModelKind::CasRegister),
        ..opts()
    };
    for (seed, stale) in [(3, false), (5, true)] {
        let shape = KvShape {
            ops: 1500,
            procs: 5,
            keys: 3,
            info: 0.1,
            seed,
        };
        let mut soak = KvSoak::new(shape);
        if stale {
            soak = soak.stale_at(1000);
        }
        let events: Vec<Event> = soak.by_ref().collect();
        let path = dir.path().join(format!("forced{seed}.jsonl"));
        write(&path, events.into_iter());
        let h = parse::parse_file(&path, &forced).expect("parse");
        let expected = check_history(&h, &forced);
        let got = stream::check_file_cut_at(&path, &forced, 5)
            .expect("check")
            .expect("a register model is streamed");
        assert_eq!(got.valid, expected.valid, "seed {seed}");
        assert_eq!(got.model, "cas-register");
        assert_eq!(stale, soak.planted.is_some(), "seed {seed}: planted");
        let v = if stale {
            Validity::Invalid
        } else {
            Validity::Valid
        };
        assert_eq!(got.valid, v, "seed {seed}");
    }
}
