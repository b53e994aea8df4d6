//! The check report (what `harness check --json` prints and `results.json`
//! embeds), counterexample explanations, and the human summary.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::history::{History, INF};
use crate::verdict::{Failure, HistoryVerdict, PartOutcome};

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
    /// `two-leaders`, `double-vote`, `divergent-apply` or `commit-regress`.
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
    pub call_time: Option<u64>,
    pub return_time: Option<u64>,
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

/// Builds the report from the linearizability verdict.
pub fn build(history: &History, outcome: HistoryVerdict, check_ms: f64) -> CheckReport {
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
