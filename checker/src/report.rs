//! The check report (what `harness check --json` prints and `results.json`
//! embeds), counterexample explanations, and the human summary.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::history::{History, Op, OpF, INF};
use crate::linear::{Failure, Outcome, PartOutcome};
use crate::model::{Space, State};

/// A verdict: serialized as `true`, `false` or `"unknown"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    Valid,
    Invalid,
    Unknown,
}

impl Validity {
    /// Combines two checkers' verdicts: invalid wins, then unknown.
    pub fn and(self, other: Validity) -> Validity {
        use Validity::*;
        match (self, other) {
            (Invalid, _) | (_, Invalid) => Invalid,
            (Unknown, _) | (_, Unknown) => Unknown,
            _ => Valid,
        }
    }

    /// 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Validity::Valid => 0,
            Validity::Invalid => 1,
            Validity::Unknown => 2,
        }
    }
}

impl Serialize for Validity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Validity::Valid => s.serialize_bool(true),
            Validity::Invalid => s.serialize_bool(false),
            Validity::Unknown => s.serialize_str("unknown"),
        }
    }
}

impl<'de> Deserialize<'de> for Validity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(true) => Ok(Validity::Valid),
            Value::Bool(false) => Ok(Validity::Invalid),
            Value::String(s) if s == "unknown" => Ok(Validity::Unknown),
            other => Err(serde::de::Error::custom(format!(
                "expected true, false or \"unknown\", found {other}"
            ))),
        }
    }
}

/// The checker part of `results.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckReport {
    pub valid: Validity,
    pub model: String,
    /// Client operations in the history (invocations, failed and crashed ones included).
    pub ops: usize,
    pub parse_ms: f64,
    pub check_ms: f64,
    pub checkers: Checkers,
    pub counterexample: Option<Counterexample>,
}

/// Per-checker results.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Checkers {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub linearizability: Option<LinearizabilityResult>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub raft_safety: Option<RaftSafetyResult>,
}

/// Result of the linearizability checker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinearizabilityResult {
    pub valid: Validity,
    pub reason: String,
    pub file: String,
    pub format: String,
    /// Parts checked (keys, or 1 when not split).
    pub parts: usize,
    /// Quiescent windows over all parts searched.
    pub windows: usize,
    /// Parts decided by the precedence graph.
    pub graph_parts: usize,
    /// Parts decided by the search.
    pub search_parts: usize,
}

/// Result of the Raft-safety checker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RaftSafetyResult {
    pub valid: Validity,
    pub nodes: usize,
    pub events: usize,
    pub violations: Vec<Violation>,
}

/// One Raft-safety violation with the trace events that show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Violation {
    /// `two-leaders`, `divergent-apply` or `commit-regress`.
    pub kind: String,
    pub message: String,
    pub events: Vec<Value>,
}

/// Why a history is not linearizable, small enough for a person to read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Counterexample {
    pub key: Option<String>,
    /// The smallest window of ops that cannot be linearized (invoke indices).
    pub ops: Vec<u64>,
    /// The op that could not be placed.
    pub op: Option<u64>,
    /// The longest linearizable prefix within the window, in order.
    pub prefix: Vec<u64>,
    /// The states the op could have seen.
    pub states: Vec<Value>,
    pub explanation: String,
    /// Ops outside the window that the explanation relies on (e.g. the write
    /// that overwrote a value before the read began), invoke indices.
    #[serde(default)]
    pub witnesses: Vec<u64>,
    /// The ops of the window and the witnesses in detail, in invoke order, for reports.
    #[serde(default)]
    pub details: Vec<OpDetail>,
}

/// One op of a counterexample, as a report draws it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpDetail {
    pub index: u64,
    pub process: u64,
    pub key: Option<String>,
    pub description: String,
    pub call_line: usize,
    pub call_time: Option<i64>,
    pub return_time: Option<i64>,
    /// `ok` or `info` (completion unknown).
    pub status: String,
}

impl CheckReport {
    /// A report with no linearizability verdict (e.g. a run folder without history).
    pub fn empty_unknown(reason: &str) -> CheckReport {
        CheckReport {
            valid: Validity::Unknown,
            model: String::new(),
            ops: 0,
            parse_ms: 0.0,
            check_ms: 0.0,
            checkers: Checkers {
                linearizability: Some(LinearizabilityResult {
                    valid: Validity::Unknown,
                    reason: reason.to_string(),
                    file: String::new(),
                    format: String::new(),
                    parts: 0,
                    windows: 0,
                    graph_parts: 0,
                    search_parts: 0,
                }),
                raft_safety: None,
            },
            counterexample: None,
        }
    }

    /// Adds the Raft-safety result and recomputes the overall verdict.
    pub fn set_raft(&mut self, raft: RaftSafetyResult) {
        let lin = self.checkers.linearizability.as_ref().map(|l| l.valid);
        self.valid = match lin {
            Some(l) => l.and(raft.valid),
            None => raft.valid,
        };
        self.checkers.raft_safety = Some(raft);
    }

    /// 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(&self) -> i32 {
        self.valid.exit_code()
    }

    /// Writes the one-screen human summary.
    pub fn write_summary(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let verdict = match self.valid {
            Validity::Valid => "VALID",
            Validity::Invalid => "INVALID",
            Validity::Unknown => "UNKNOWN",
        };
        writeln!(out, "verdict: {verdict}")?;
        if let Some(l) = &self.checkers.linearizability {
            writeln!(
                out,
                "linearizability: {} ({} model, {} ops, {} parts: {} by graph, {} by search, {} windows; parse {:.1} ms, check {:.1} ms)",
                word(l.valid),
                self.model,
                self.ops,
                l.parts,
                l.graph_parts,
                l.search_parts,
                l.windows,
                self.parse_ms,
                self.check_ms
            )?;
            if !l.reason.is_empty() && self.counterexample.is_none() {
                writeln!(out, "  {}", l.reason)?;
            }
        }
        if let Some(c) = &self.counterexample {
            writeln!(
                out,
                "counterexample{}:",
                c.key
                    .as_ref()
                    .map(|k| format!(" on key {k}"))
                    .unwrap_or_default()
            )?;
            writeln!(out, "  {}", c.explanation)?;
            if let Some(op) = c.op {
                writeln!(out, "  op that could not be placed: #{op}")?;
            }
            if !c.states.is_empty() {
                let s: Vec<String> = c.states.iter().map(Value::to_string).collect();
                writeln!(out, "  states it could have seen: {}", s.join(", "))?;
            }
            if c.witnesses.is_empty() {
                writeln!(out, "  window ({} ops):", c.details.len())?;
            } else {
                writeln!(
                    out,
                    "  window ({} ops) and the earlier ops the explanation names:",
                    c.ops.len()
                )?;
            }
            for d in c.details.iter().take(12) {
                writeln!(
                    out,
                    "    #{:<6} p{:<4} {:<40} line {}{}",
                    d.index,
                    d.process,
                    d.description,
                    d.call_line,
                    if d.status == "info" { " (info)" } else { "" }
                )?;
            }
            if c.details.len() > 12 {
                writeln!(out, "    … {} more", c.details.len() - 12)?;
            }
            if !c.prefix.is_empty() {
                let p: Vec<String> = c.prefix.iter().take(16).map(|i| format!("#{i}")).collect();
                writeln!(
                    out,
                    "  longest linearizable prefix: {}{}",
                    p.join(" "),
                    if c.prefix.len() > 16 { " …" } else { "" }
                )?;
            }
        }
        if let Some(r) = &self.checkers.raft_safety {
            writeln!(
                out,
                "raft safety: {} ({} nodes, {} trace events, {} violations)",
                word(r.valid),
                r.nodes,
                r.events,
                r.violations.len()
            )?;
            for v in r.violations.iter().take(5) {
                writeln!(out, "  [{}] {}", v.kind, v.message)?;
            }
            if r.violations.len() > 5 {
                writeln!(out, "  … {} more", r.violations.len() - 5)?;
            }
        }
        Ok(())
    }
}

fn word(v: Validity) -> &'static str {
    match v {
        Validity::Valid => "valid",
        Validity::Invalid => "invalid",
        Validity::Unknown => "unknown",
    }
}

/// "t=1.234ms" from the recorded time if any, else the line.
fn at(time: Option<i64>, line: Option<usize>) -> String {
    match (time, line) {
        (Some(t), _) => {
            if t.abs() >= 1_000_000_000 {
                format!("t={:.3}s", t as f64 / 1e9)
            } else {
                format!("t={:.3}ms", t as f64 / 1e6)
            }
        }
        (None, Some(l)) => format!("line {l}"),
        (None, None) => "an unknown time".into(),
    }
}

/// When an op was invoked, for explanations.
pub fn at_call(op: &Op) -> String {
    at(op.call_time, Some(op.line))
}

/// When an op completed, for explanations.
pub fn at_ret(op: &Op) -> String {
    if op.ret == INF {
        return "never (outcome unknown)".into();
    }
    match op.ret_time {
        Some(t) => at(Some(t), None),
        None if op.ret_line > 0 => format!("line {}", op.ret_line),
        None => format!("event #{}", op.ret),
    }
}

/// Explains why the stuck op could not be placed from the given states,
/// and names the ops outside the window that the explanation relies on (the
/// write that overwrote a value before a read began, …), so that a person
/// sees every op the story needs.
pub fn explain_stuck(
    history: &History,
    part: &[u32],
    window: &[u32],
    stuck: Option<u32>,
    states: &[State],
    space: &mut Space<'_>,
) -> (String, Vec<u32>) {
    let Some(s) = stuck else {
        return (
            "no order of the window's operations is consistent with the model".into(),
            Vec::new(),
        );
    };
    let op = &history.ops[s as usize];
    let shown: Vec<String> = states.iter().map(|&x| space.show(x)).collect();
    let what = if history.model == crate::ModelKind::Mutex {
        "the lock"
    } else {
        "the value"
    };
    let could = if shown.len() == 1 {
        format!("{what} could only have been {}", shown[0])
    } else {
        format!("{what} could only have been one of {}", shown.join(", "))
    };
    if states
        .iter()
        .any(|&st| space.step(st, s, &op.f, op.key).is_some())
    {
        // The op itself fits; what follows it does not. A read of the window
        // that shows a classic anomaly tells the story better.
        for &r in window {
            if let Some(story) = read_story(history, part, &history.ops[r as usize]) {
                return story;
            }
        }
        let text = format!(
            "{} at {} fits the state there ({}), but no order of the operations that must follow it works: the window cannot be linearized from the states its predecessors leave",
            history.describe_op(op),
            at_call(op),
            shown.join(", ")
        );
        return (text, Vec::new());
    }
    let v = |x| history.values.show(x);
    if let Some((story, witnesses)) = read_story(history, part, op) {
        return (format!("{story}; {could}"), witnesses);
    }
    let text = match op.f {
        OpF::Read(x) if history.model == crate::ModelKind::AppendKv => {
            let read = history.values.as_str(x).unwrap_or("");
            // One possible state: show where the two strings part.
            let diff = match states {
                [s] => {
                    let want = space.describe(*s);
                    let want = want.as_str().unwrap_or("");
                    let at = read
                        .bytes()
                        .zip(want.bytes())
                        .take_while(|(a, b)| a == b)
                        .count();
                    let cut =
                        |x: &str| -> String { x.get(at..).unwrap_or("").chars().take(24).collect() };
                    format!(
                        ": after the first {at} characters they agree on, the read has {:?} where the state had {:?}",
                        cut(read),
                        cut(want)
                    )
                }
                _ => String::new(),
            };
            format!(
                "{} at {}, but {could} at that point{diff}",
                history.describe_op(op),
                at_call(op)
            )
        }
        OpF::Read(_) => format!(
            "{} at {}, but {could} at that point",
            history.describe_op(op),
            at_call(op)
        ),
        OpF::Cas(a, _) => format!(
            "{} succeeded at {}, but the value was not {} then: {could}",
            history.describe_op(op),
            at_call(op),
            v(a)
        ),
        OpF::CasFailed(a) => format!(
            "{} at {}, but the value had to be {} then: {could}",
            history.describe_op(op),
            at_call(op),
            v(a)
        ),
        OpF::Write(_) => format!(
            "{} at {} could not be placed: every order that places it leaves a later operation unexplained (states before it: {})",
            history.describe_op(op),
            at_call(op),
            shown.join(", ")
        ),
        _ => format!(
            "{} at {} is not legal in any state the history allows at that point ({could})",
            history.describe_op(op),
            at_call(op)
        ),
    };
    (text, Vec::new())
}

/// A definitive story for a read, if it shows a classic anomaly on its own:
/// a value never written, read before its write began, overwritten before
/// the read began, or (append-kv) missing an append that completed first.
fn read_story(history: &History, part: &[u32], op: &Op) -> Option<(String, Vec<u32>)> {
    let OpF::Read(x) = op.f else { return None };
    if x == crate::history::UNKNOWN {
        return None;
    }
    let v = |x| history.values.show(x);
    let ops = || part.iter().map(|&i| &history.ops[i as usize]);
    // Witnesses are few (one or two per story): a scan is cheap enough.
    let index_of = |o: &Op| -> u32 {
        part.iter()
            .copied()
            .find(|&i| std::ptr::eq(&history.ops[i as usize], o))
            .expect("a witness comes from the part")
    };
    if history.model == crate::ModelKind::AppendKv {
        let read = history.values.as_str(x).unwrap_or("");
        // An append that finished before the read began, missing from what it
        // read, with no put that could have wiped it in between.
        let a = ops().find(|a| match a.f {
            OpF::Append(t) => {
                a.ret != INF
                    && a.ret < op.call
                    && !read.contains(history.values.as_str(t).unwrap_or(""))
                    && !ops()
                        .any(|p| matches!(p.f, OpF::Write(_)) && p.call < op.ret && p.ret > a.call)
            }
            _ => false,
        })?;
        return Some((
            format!(
                "{} at {}, but {} completed at {} before the read began and the value read does not contain it",
                history.describe_op(op),
                at_call(op),
                history.describe_op(a),
                at_ret(a)
            ),
            vec![index_of(a)],
        ));
    }
    if !matches!(
        history.model,
        crate::ModelKind::Register | crate::ModelKind::CasRegister | crate::ModelKind::Kv
    ) {
        return None;
    }
    let writes_x: Vec<&Op> = ops()
        .filter(|o| matches!(o.f, OpF::Write(y) | OpF::Cas(_, y) if y == x))
        .collect();
    if writes_x.is_empty() && x != history.init {
        return Some((
            format!(
                "{} at {}, but no operation ever wrote {}",
                history.describe_op(op),
                at_call(op),
                v(x)
            ),
            Vec::new(),
        ));
    }
    if x != history.init && writes_x.iter().all(|w| w.call > op.ret) {
        return Some((
            format!(
                "{} completed at {}, before any write of {} began (first at {})",
                history.describe_op(op),
                at_ret(op),
                v(x),
                at_call(writes_x[0])
            ),
            vec![index_of(writes_x[0])],
        ));
    }
    // The latest write of x that may precede the read, then a write of
    // another value certainly after it and certainly before the read.
    let latest_x_ret = writes_x
        .iter()
        .filter(|w| w.call < op.ret)
        .map(|w| w.ret)
        .max();
    let w = ops().find(|o| {
        matches!(o.f, OpF::Write(y) | OpF::Cas(_, y) if y != x)
            && o.ret != INF
            && o.ret < op.call
            && match latest_x_ret {
                Some(r) => r != INF && o.call > r,
                None => x == history.init,
            }
            && !writes_x.iter().any(|w| w.call > o.ret && w.call < op.ret)
    })?;
    let what = if writes_x.is_empty() {
        format!("the initial value {}", v(x))
    } else {
        v(x)
    };
    // The write of x the read could have seen last, then the one over it.
    let mut witnesses: Vec<u32> = writes_x
        .iter()
        .filter(|o| o.call < op.ret && Some(o.ret) == latest_x_ret)
        .take(1)
        .map(|&o| index_of(o))
        .collect();
    witnesses.push(index_of(w));
    Some((
        format!(
            "{} at {}, but {} was overwritten by {} which completed at {} before the read began",
            history.describe_op(op),
            at_call(op),
            what,
            history.describe_op(w),
            at_ret(w)
        ),
        witnesses,
    ))
}

fn detail(history: &History, i: u32) -> OpDetail {
    let op = &history.ops[i as usize];
    OpDetail {
        index: op.id,
        process: op.process,
        key: op.key.map(|_| history.key_name(op)),
        description: history.describe_op(op),
        call_line: op.line,
        call_time: op.call_time,
        return_time: op.ret_time,
        status: if op.ret == INF { "info" } else { "ok" }.into(),
    }
}

fn counterexample(history: &History, f: &Failure) -> Counterexample {
    let id = |i: u32| history.ops[i as usize].id;
    let witnesses: Vec<u32> = f
        .witnesses
        .iter()
        .copied()
        .filter(|i| !f.window.contains(i))
        .collect();
    let mut shown: Vec<u32> = f.window.iter().chain(&witnesses).copied().collect();
    shown.sort_by_key(|&i| history.ops[i as usize].call);
    Counterexample {
        key: f.key.map(|k| history.keys[k as usize].clone()),
        ops: f.window.iter().map(|&i| id(i)).collect(),
        op: f.stuck.map(id),
        prefix: f.prefix.iter().map(|&i| id(i)).collect(),
        states: f.states.clone(),
        explanation: f.explanation.clone(),
        witnesses: witnesses.iter().map(|&i| id(i)).collect(),
        details: shown.iter().map(|&i| detail(history, i)).collect(),
    }
}

/// Builds the report from a linearizability outcome.
pub fn build(history: &History, outcome: Outcome, check_ms: f64) -> CheckReport {
    let (valid, reason, cx) = match &outcome.verdict {
        PartOutcome::Valid => (Validity::Valid, String::new(), None),
        PartOutcome::Invalid(f) => (
            Validity::Invalid,
            f.explanation.clone(),
            Some(counterexample(history, f)),
        ),
        PartOutcome::Unknown { reason, .. } => (Validity::Unknown, reason.clone(), None),
    };
    CheckReport {
        valid,
        model: history.model.name().to_string(),
        ops: history.invocations,
        parse_ms: 0.0,
        check_ms,
        checkers: Checkers {
            linearizability: Some(LinearizabilityResult {
                valid,
                reason,
                file: history.file.clone(),
                format: history.format.name().to_string(),
                parts: outcome.parts,
                windows: outcome.windows,
                graph_parts: outcome.graph_parts,
                search_parts: outcome.search_parts,
            }),
            raft_safety: None,
        },
        counterexample: cx,
    }
}
