//! The smallest sub-history that is still not linearizable: what a person
//! attaches to a bug report instead of a run's thousands of ops.
//!
//! The unit removed is an op (an invocation with its completion); a
//! candidate sub-history is kept when it is still invalid *and* every value
//! its ops observe is still produced by one of its ops (or is the initial
//! value), so that removing a write never "explains" the violation by a
//! read of a value nobody wrote. The ops of the counterexample (its window,
//! the op that could not be placed, the witnesses its explanation cites)
//! are never removed. In order:
//!
//! 1. the other keys (linearizability is checked per key);
//! 2. whole processes, one at a time;
//! 3. the ops outside the counterexample's window, all at once, then in
//!    halves, quarters, … (delta debugging) where all at once was too much;
//! 4. the ops left, the same way.
//!
//! Every op keeps its invoke `index` and times, so the smaller history's
//! explanation names the same ops as the run's report. Nemesis events
//! between the first and the last op kept stay, to show which faults were
//! in effect.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use formats::history::{Event, EventType, Process};
use formats::Numbered;
use serde_json::Value;

use crate::history::default_model;
use crate::{parse, CheckError, CheckOptions, CheckReport, Format, ModelKind, Validity};

/// At most this many checks of candidate sub-histories (and no more after
/// the check's time limit): the result is then smaller, if not the
/// smallest.
pub const MAX_CHECKS: usize = 4000;

/// What minimizing found.
#[derive(Debug)]
pub enum Minimized {
    /// The history is not invalid: nothing to minimize.
    NotInvalid(Validity),
    /// The smaller history and its own check.
    Smaller(Box<Minimal>),
}

/// A smaller, still invalid history.
#[derive(Debug)]
pub struct Minimal {
    pub events: Vec<Event>,
    pub report: CheckReport,
    /// Ops (invocations) before and after.
    pub ops_before: usize,
    pub ops_after: usize,
    /// Candidate sub-histories checked.
    pub checks: usize,
}

/// One op: the positions of its invocation and completion among the events.
#[derive(Debug, Clone)]
struct Unit {
    id: u64,
    process: u64,
    key: Option<String>,
    invoke: usize,
    done: Option<usize>,
}

impl Unit {
    fn end(&self) -> usize {
        self.done.unwrap_or(usize::MAX)
    }
}

struct Minimizer {
    file: String,
    format: Format,
    events: Vec<Numbered<Event>>,
    units: Vec<Unit>,
    opts: CheckOptions,
    init: Value,
    checks: usize,
    /// No candidate is checked after this (the answer is then smaller,
    /// if not the smallest).
    deadline: std::time::Instant,
}

/// Minimizes the history of `path` (a run folder's `history.jsonl`, or a
/// history file in any format).
pub fn minimize(path: &Path, opts: &CheckOptions) -> Result<Minimized, CheckError> {
    let file = if path.is_dir() {
        path.join(formats::history::FILE_NAME)
    } else {
        path.to_path_buf()
    };
    let (format, events) = parse::read_events(&file, opts)?;
    let mut opts = opts.clone();
    // Every candidate is checked against the model of the whole history,
    // not one guessed again from fewer ops.
    opts.model = Some(opts.model.unwrap_or_else(|| default_model(format, &events)));
    opts.parallel = false;
    let init = opts.init.clone().unwrap_or(Value::Null);
    let deadline = std::time::Instant::now() + opts.time_limit;
    let mut m = Minimizer {
        file: file.display().to_string(),
        format,
        units: units(&events),
        events,
        opts,
        init,
        checks: 0,
        deadline,
    };
    let all: Vec<bool> = vec![true; m.units.len()];
    let full = m.check(&all)?;
    if full.valid != Validity::Invalid {
        return Ok(Minimized::NotInvalid(full.valid));
    }
    let Some(cx) = full.counterexample.clone() else {
        return Ok(Minimized::NotInvalid(full.valid));
    };
    let protected: BTreeSet<u64> = cx
        .ops
        .iter()
        .chain(&cx.witnesses)
        .chain(cx.op.iter())
        .copied()
        .collect();
    let fixed: Vec<bool> = m.units.iter().map(|u| protected.contains(&u.id)).collect();
    let mut keep = all;

    // 0. The counterexample's ops with the writes of what they read: the
    // smallest candidate there is, and usually the answer.
    let core = m.core(&fixed);
    if m.try_remove_all_but(&mut keep, &core)? {
        return m.finish(keep);
    }

    // 1. Other keys.
    if let Some(k) = &cx.key {
        let others: Vec<usize> = (0..m.units.len())
            .filter(|&i| !fixed[i] && m.units[i].key.as_deref() != Some(k.as_str()))
            .collect();
        m.try_remove(&mut keep, &others)?;
    }
    // 2. Whole processes.
    let mut by_process: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, u) in m.units.iter().enumerate() {
        if keep[i] {
            by_process.entry(u.process).or_default().push(i);
        }
    }
    let mut processes: Vec<(u64, Vec<usize>)> = by_process
        .into_iter()
        .filter(|(_, ops)| ops.iter().all(|&i| !fixed[i]))
        .collect();
    processes.sort_by_key(|(p, _)| *p);
    for (_, ops) in processes {
        m.try_remove(&mut keep, &ops)?;
    }
    // 3. Outside the counterexample's window.
    let first = (0..m.units.len())
        .filter(|&i| fixed[i])
        .map(|i| m.units[i].invoke)
        .min()
        .unwrap_or(0);
    let last = (0..m.units.len())
        .filter(|&i| fixed[i])
        .map(|i| m.units[i].done.unwrap_or(m.units[i].invoke))
        .max()
        .unwrap_or(usize::MAX);
    let outside: Vec<usize> = (0..m.units.len())
        .filter(|&i| keep[i] && !fixed[i])
        .filter(|&i| m.units[i].end() < first || m.units[i].invoke > last)
        .collect();
    m.reduce(&mut keep, &outside)?;
    // 4. Whatever else can go.
    let rest: Vec<usize> = (0..m.units.len())
        .filter(|&i| keep[i] && !fixed[i])
        .collect();
    m.reduce(&mut keep, &rest)?;

    m.finish(keep)
}

/// Pairs every client invocation with its process's next completion.
fn units(events: &[Numbered<Event>]) -> Vec<Unit> {
    let mut open: HashMap<u64, usize> = HashMap::new();
    let mut units: Vec<Unit> = Vec::new();
    for (pos, n) in events.iter().enumerate() {
        let e = &n.event;
        let Process::Client(p) = e.process else {
            continue;
        };
        if e.kind == EventType::Invoke {
            open.insert(p, units.len());
            units.push(Unit {
                id: e.index,
                process: p,
                key: e.key.clone(),
                invoke: pos,
                done: None,
            });
        } else if let Some(u) = open.remove(&p) {
            units[u].done = Some(pos);
        }
    }
    units
}

impl Minimizer {
    fn finish(mut self, keep: Vec<bool>) -> Result<Minimized, CheckError> {
        let report = self.check(&keep)?;
        let events = self
            .events_of(&keep, true)
            .into_iter()
            .map(|n| n.event)
            .collect();
        Ok(Minimized::Smaller(Box::new(Minimal {
            events,
            report,
            ops_before: self.units.len(),
            ops_after: keep.iter().filter(|k| **k).count(),
            checks: self.checks,
        })))
    }

    /// `fixed` and, until nothing changes, every op that writes a value a
    /// kept op observed (an append whose value a kept read contains).
    fn core(&self, fixed: &[bool]) -> Vec<bool> {
        let mut keep = fixed.to_vec();
        loop {
            let missing: Vec<usize> = (0..self.units.len())
                .filter(|&i| !keep[i] && self.needed_by(&keep, i))
                .collect();
            if missing.is_empty() {
                return keep;
            }
            for i in missing {
                keep[i] = true;
            }
        }
    }

    /// Whether op `i` produced a value some kept op observed.
    fn needed_by(&self, keep: &[bool], i: usize) -> bool {
        let u = &self.units[i];
        let Some(written) = self.written(u) else {
            return false;
        };
        let append = self.opts.model == Some(ModelKind::AppendKv);
        self.units
            .iter()
            .zip(keep)
            .filter(|(o, k)| **k && o.key == u.key)
            .filter_map(|(o, _)| self.observed(o))
            .any(|seen| {
                if append {
                    written
                        .as_str()
                        .zip(seen.as_str())
                        .is_some_and(|(w, r)| !w.is_empty() && r.contains(w))
                } else {
                    seen == written
                }
            })
    }

    /// The value an op writes (a write's, a cas's new value, an append's).
    fn written<'a>(&'a self, u: &Unit) -> Option<&'a Value> {
        let e = &self.events[u.invoke].event;
        match e.f.as_str() {
            "write" | "put" | "append" => Some(&e.value),
            "cas" => e.value.get(1),
            _ => None,
        }
    }

    /// The value an op that ended `ok` observed (a read's result, a cas's
    /// expected value).
    fn observed<'a>(&'a self, u: &Unit) -> Option<&'a Value> {
        let d = &self.events[u.done?].event;
        if d.kind != EventType::Ok {
            return None;
        }
        match d.f.as_str() {
            "read" | "get" => Some(&d.value).filter(|v| !v.is_null()),
            "cas" => d.value.get(0),
            _ => None,
        }
    }

    /// Keeps only `target` if that still fails.
    fn try_remove_all_but(
        &mut self,
        keep: &mut [bool],
        target: &[bool],
    ) -> Result<bool, CheckError> {
        let ops: Vec<usize> = (0..keep.len()).filter(|&i| keep[i] && !target[i]).collect();
        self.try_remove(keep, &ops)
    }

    /// The events of the kept ops (and, with `nemesis`, the faults between
    /// the first and the last of them), in their original order.
    fn events_of(&self, keep: &[bool], nemesis: bool) -> Vec<Numbered<Event>> {
        let mut take = vec![false; self.events.len()];
        for (u, _) in self.units.iter().zip(keep).filter(|(_, k)| **k) {
            take[u.invoke] = true;
            if let Some(d) = u.done {
                take[d] = true;
            }
        }
        if nemesis {
            let first = take.iter().position(|t| *t).unwrap_or(0);
            let last = take.iter().rposition(|t| *t).unwrap_or(0);
            for (pos, n) in self.events.iter().enumerate() {
                if pos > first && pos < last && n.event.process == Process::Nemesis {
                    take[pos] = true;
                }
            }
        }
        self.events
            .iter()
            .zip(take)
            .filter(|(_, t)| *t)
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn check(&mut self, keep: &[bool]) -> Result<CheckReport, CheckError> {
        self.checks += 1;
        let events = self.events_of(keep, false);
        let history = parse::build(&self.file, self.format, events, &self.opts)?;
        Ok(crate::check_history(&history, &self.opts))
    }

    /// Whether `keep` still fails in the same way: invalid, and every
    /// observed value produced by a kept op.
    fn still_fails(&mut self, keep: &[bool]) -> Result<bool, CheckError> {
        if self.checks >= MAX_CHECKS
            || std::time::Instant::now() >= self.deadline
            || !self.provenance_holds(keep)
        {
            return Ok(false);
        }
        Ok(self.check(keep)?.valid == Validity::Invalid)
    }

    /// Removes `ops` if what is left still fails; returns whether it did.
    fn try_remove(&mut self, keep: &mut [bool], ops: &[usize]) -> Result<bool, CheckError> {
        if ops.is_empty() {
            return Ok(false);
        }
        let mut candidate = keep.to_vec();
        for &i in ops {
            candidate[i] = false;
        }
        if self.still_fails(&candidate)? {
            keep.copy_from_slice(&candidate);
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Removes as many of `ops` as it can: all at once, else each half
    /// the same way.
    fn reduce(&mut self, keep: &mut [bool], ops: &[usize]) -> Result<(), CheckError> {
        if ops.is_empty() || self.try_remove(keep, ops)? || ops.len() == 1 {
            return Ok(());
        }
        let (a, b) = ops.split_at(ops.len() / 2);
        self.reduce(keep, a)?;
        self.reduce(keep, b)
    }

    /// Every value a kept op observed is the initial value or written by
    /// a kept op (which may have happened even if it ended `info`); in an
    /// append history, no kept read contains the value of a removed append.
    fn provenance_holds(&self, keep: &[bool]) -> bool {
        match self.opts.model {
            Some(ModelKind::MultiRegister | ModelKind::Mutex) => true,
            Some(ModelKind::AppendKv) => (0..self.units.len())
                .filter(|&i| !keep[i])
                .all(|i| !self.needed_by(keep, i)),
            _ => {
                let produced: BTreeSet<(Option<&str>, String)> = self
                    .units
                    .iter()
                    .zip(keep)
                    .filter(|(_, k)| **k)
                    .filter_map(|(u, _)| Some((u.key.as_deref(), self.written(u)?.to_string())))
                    .collect();
                let init = self.init.to_string();
                self.units
                    .iter()
                    .zip(keep)
                    .filter(|(_, k)| **k)
                    .filter_map(|(u, _)| Some((u, self.observed(u)?)))
                    .all(|(u, v)| {
                        let v = v.to_string();
                        v == init || produced.contains(&(u.key.as_deref(), v))
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(i: u64, p: u64, t: &str, f: &str, v: Value) -> String {
        serde_json::json!({"index": i, "time": i * 10, "process": p, "type": t, "f": f, "value": v})
            .to_string()
    }

    /// A stale read among busy, unrelated traffic: the minimal history is
    /// the write, the overwrite and the read that saw the old value.
    #[test]
    fn a_stale_read_shrinks_to_the_ops_it_depends_on() {
        use serde_json::json;
        let mut lines = Vec::new();
        let mut i = 0;
        let mut op = |lines: &mut Vec<String>, p: u64, f: &str, call: Value, ret: Value| {
            lines.push(line(i, p, "invoke", f, call));
            lines.push(line(i + 1, p, "ok", f, ret));
            i += 2;
        };
        for n in 0..20 {
            op(
                &mut lines,
                3,
                "write",
                json!(format!("a{n}")),
                json!(format!("a{n}")),
            );
            op(&mut lines, 4, "read", json!(null), json!(format!("a{n}")));
        }
        op(&mut lines, 1, "write", json!("x"), json!("x"));
        op(&mut lines, 2, "write", json!("y"), json!("y"));
        op(&mut lines, 1, "read", json!(null), json!("x"));
        for n in 0..20 {
            op(
                &mut lines,
                3,
                "write",
                json!(format!("b{n}")),
                json!(format!("b{n}")),
            );
            op(&mut lines, 4, "read", json!(null), json!(format!("b{n}")));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let mut f = std::fs::File::create(&path).unwrap();
        for l in &lines {
            writeln!(f, "{l}").unwrap();
        }
        drop(f);
        let Minimized::Smaller(m) = minimize(&path, &CheckOptions::default()).unwrap() else {
            panic!("the history is invalid")
        };
        assert_eq!(m.ops_before, 83);
        assert_eq!(m.report.valid, Validity::Invalid);
        let kept: Vec<(&str, &Value)> = m
            .events
            .iter()
            .filter(|e| e.kind == EventType::Ok)
            .map(|e| (e.f.as_str(), &e.value))
            .collect();
        assert_eq!(
            kept,
            vec![
                ("write", &json!("x")),
                ("write", &json!("y")),
                ("read", &json!("x"))
            ],
            "exactly the ops the violation depends on"
        );
        assert_eq!(m.ops_after, 3);
    }

    #[test]
    fn a_valid_history_is_not_minimized() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        std::fs::write(
            &path,
            [
                line(0, 1, "invoke", "write", Value::from(1)),
                line(1, 1, "ok", "write", Value::from(1)),
            ]
            .join("\n"),
        )
        .unwrap();
        assert!(matches!(
            minimize(&path, &CheckOptions::default()).unwrap(),
            Minimized::NotInvalid(Validity::Valid)
        ));
    }
}
