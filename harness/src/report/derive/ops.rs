//! Client operations: an invoke paired with its completion, built one
//! history event at a time. Only the open ops (at most one per process) are
//! held; every finished op is handed on at once and forgotten.

use std::collections::HashMap;

use formats::history::{Event, EventType, Process};
use serde_json::Value;

/// How a client operation ended, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpOutcome {
    /// Happened.
    Ok,
    /// Definitely did not happen.
    Fail,
    /// Unknown: may take effect at any later time, so it stays open to the
    /// end of the run.
    Info,
    /// No completion in the history at all (the run was interrupted); the
    /// checker treats it like `Info`, and so do the drawings.
    Pending,
}

impl OpOutcome {
    pub const ALL: [OpOutcome; 4] = [
        OpOutcome::Ok,
        OpOutcome::Fail,
        OpOutcome::Info,
        OpOutcome::Pending,
    ];

    /// The CSS class / legend name.
    pub fn name(self) -> &'static str {
        match self {
            OpOutcome::Ok => "ok",
            OpOutcome::Fail => "fail",
            OpOutcome::Info => "info",
            OpOutcome::Pending => "pending",
        }
    }

    /// Ok and fail ops have a real interval; the others stay open.
    pub fn is_open(self) -> bool {
        matches!(self, OpOutcome::Info | OpOutcome::Pending)
    }

    /// Small integer used in the page's data and as an array index.
    pub fn code(self) -> u8 {
        match self {
            OpOutcome::Ok => 0,
            OpOutcome::Fail => 1,
            OpOutcome::Info => 2,
            OpOutcome::Pending => 3,
        }
    }
}

/// One client operation: its invoke paired with its completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// `index` of the invoke event: the op's identity everywhere (checker
    /// counterexamples name ops by it).
    pub index: u64,
    pub process: Process,
    pub f: String,
    pub key: Option<String>,
    /// Run-relative nanoseconds.
    pub invoke_ns: i64,
    /// When the completion was observed (also for `info`), if at all.
    pub complete_ns: Option<i64>,
    pub outcome: OpOutcome,
    pub invoke_value: Value,
    pub complete_value: Value,
    pub error: Option<String>,
    pub node: Option<u64>,
}

impl Op {
    /// Short label for lane headings and tooltips: `p3` for client 3.
    pub fn process_label(&self) -> String {
        process_label(&self.process)
    }

    /// Where the op's drawn bar ends: its completion as the client saw it
    /// (open ops add a dashed tail to the end of the run).
    pub fn solid_end_ns(&self) -> i64 {
        self.complete_ns.unwrap_or(self.invoke_ns)
    }

    /// Client-observed latency; only meaningful for ok and fail ops.
    pub fn latency_ns(&self) -> Option<i64> {
        match self.outcome {
            OpOutcome::Ok | OpOutcome::Fail => self.observed_ns(),
            _ => None,
        }
    }

    /// Time until the client saw an outcome (for info: gave up).
    pub fn observed_ns(&self) -> Option<i64> {
        self.complete_ns.map(|c| (c - self.invoke_ns).max(0))
    }

    /// The value worth showing: what a read returned, what others wrote.
    pub fn shown_value(&self) -> &Value {
        if self.f == "read" {
            &self.complete_value
        } else {
            &self.invoke_value
        }
    }

    /// One-line human description, e.g. `#12 p3 cas k2 ["5","9"] → fail (precondition)`.
    pub fn describe(&self) -> String {
        let mut s = format!("#{} {} {}", self.index, self.process_label(), self.f);
        if let Some(k) = &self.key {
            s.push(' ');
            s.push_str(k);
        }
        let inv = short_json(&self.invoke_value, 40);
        if inv != "null" || self.f != "read" {
            s.push(' ');
            s.push_str(&inv);
        }
        s.push_str(" → ");
        s.push_str(self.outcome.name());
        if matches!(self.outcome, OpOutcome::Ok) && self.f == "read" {
            s.push(' ');
            s.push_str(&short_json(&self.complete_value, 40));
        }
        if let Some(e) = &self.error {
            s.push_str(&format!(" ({e})"));
        }
        s
    }
}

/// `p3` for client 3; other processes by name.
pub fn process_label(p: &Process) -> String {
    match p {
        Process::Client(n) => format!("p{n}"),
        Process::Nemesis => "nemesis".into(),
        Process::Named(s) => s.clone(),
    }
}

/// Compact JSON text of a value, cut to `max` characters for display.
pub fn short_json(v: &Value, max: usize) -> String {
    let s = match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if s.chars().count() <= max {
        s
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// An event's run-relative time (0 when the history has none).
pub fn event_time(ev: &Event) -> i64 {
    ev.time.map_or(0, |t| t.min(i64::MAX as u64) as i64)
}

/// Pairs invokes with completions by process, in history order. Also
/// counts what does not pair, for the page's notes.
#[derive(Debug, Default)]
pub struct Pairer {
    open: HashMap<Process, Op>,
    /// Completions without an open invoke on their process.
    pub orphans: u64,
    /// Invokes while their process still had an op open.
    pub double_invokes: u64,
    /// Ops that never completed (known at [`Pairer::finish`]).
    pub pending: u64,
}

impl Pairer {
    /// Takes a client event; returns the op it finishes, if any: the op a
    /// completion closes, or an op left open by a second invoke.
    pub fn event(&mut self, ev: &Event) -> Option<Op> {
        let time = event_time(ev);
        if ev.kind == EventType::Invoke {
            let op = Op {
                index: ev.index,
                process: ev.process.clone(),
                f: ev.f.clone(),
                key: ev.key.clone(),
                invoke_ns: time,
                complete_ns: None,
                outcome: OpOutcome::Pending,
                invoke_value: ev.value.clone(),
                complete_value: Value::Null,
                error: None,
                node: ev.node,
            };
            let earlier = self.open.insert(ev.process.clone(), op);
            if earlier.is_some() {
                self.double_invokes += 1;
                self.pending += 1;
            }
            return earlier;
        }
        let Some(mut op) = self.open.remove(&ev.process) else {
            self.orphans += 1;
            return None;
        };
        op.complete_ns = Some(time.max(op.invoke_ns));
        op.outcome = match ev.kind {
            EventType::Ok => OpOutcome::Ok,
            EventType::Fail => OpOutcome::Fail,
            _ => OpOutcome::Info,
        };
        op.complete_value = ev.value.clone();
        op.error = ev.error.clone();
        if op.node.is_none() {
            op.node = ev.node;
        }
        Some(op)
    }

    /// Ops still open when the history ends, in invoke order: pending.
    pub fn finish(&mut self, mut done: impl FnMut(Op)) {
        let mut left: Vec<Op> = self.open.drain().map(|(_, op)| op).collect();
        left.sort_by_key(|op| (op.invoke_ns, op.index));
        self.pending += left.len() as u64;
        left.into_iter().for_each(&mut done);
    }

    /// Sentences about what did not pair.
    pub fn notes(&self, notes: &mut Vec<String>) {
        if self.orphans > 0 {
            notes.push(format!(
                "{} completion event(s) had no matching invoke and were ignored.",
                self.orphans
            ));
        }
        if self.double_invokes > 0 {
            notes.push(format!(
                "{} invoke(s) came while the same process still had an op open; \
                 the earlier op is shown as pending.",
                self.double_invokes
            ));
        }
        if self.pending > 0 {
            notes.push(format!(
                "{} op(s) never completed in the history (run interrupted?): \
                 shown open to the end, like info ops.",
                self.pending
            ));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// An event as `formats` reads it from a line.
    pub fn ev(index: u64, time: i64, process: Value, ty: &str, f: &str, value: Value) -> Event {
        Event::from_json(
            json!({"index": index, "time": time, "process": process, "type": ty, "f": f, "key": "k1", "value": value}),
            0,
        )
        .expect("a history event")
    }

    pub fn pair_all(events: &[Event]) -> (Vec<Op>, Vec<String>) {
        let mut p = Pairer::default();
        let mut ops = Vec::new();
        for e in events {
            ops.extend(p.event(e));
        }
        p.finish(|op| ops.push(op));
        let mut notes = Vec::new();
        p.notes(&mut notes);
        (ops, notes)
    }

    #[test]
    fn invoke_and_completion_pair_by_process() {
        let (ops, notes) = pair_all(&[
            ev(0, 10, json!(1), "invoke", "write", json!("a")),
            ev(1, 20, json!(2), "invoke", "read", Value::Null),
            ev(2, 30, json!(2), "ok", "read", json!("a")),
            ev(3, 40, json!(1), "fail", "write", json!("a")),
        ]);
        assert_eq!(ops.len(), 2);
        assert_eq!((ops[0].index, ops[0].outcome), (1, OpOutcome::Ok));
        assert_eq!(ops[0].latency_ns(), Some(10));
        assert_eq!(ops[0].complete_value, json!("a"));
        assert_eq!((ops[1].index, ops[1].outcome), (0, OpOutcome::Fail));
        assert_eq!(ops[1].complete_ns, Some(40));
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn info_and_pending_ops_stay_open_to_the_end_of_the_run() {
        let (ops, notes) = pair_all(&[
            ev(0, 10, json!(1), "invoke", "write", json!("a")),
            ev(1, 20, json!(1), "info", "write", json!("a")),
            ev(2, 30, json!(11), "invoke", "write", json!("b")),
            ev(3, 50, json!(2), "invoke", "read", Value::Null),
            ev(4, 90, json!(2), "ok", "read", json!("a")),
        ]);
        let info = &ops[0];
        assert_eq!(info.outcome, OpOutcome::Info);
        assert!(info.outcome.is_open());
        assert_eq!(info.latency_ns(), None);
        assert_eq!(info.observed_ns(), Some(10));
        let pending = ops.last().unwrap();
        assert_eq!(pending.outcome, OpOutcome::Pending);
        assert!(pending.outcome.is_open());
        assert_eq!(pending.solid_end_ns(), 30);
        assert!(notes.iter().any(|n| n.contains("1 op(s) never completed")));
    }

    #[test]
    fn completion_without_invoke_is_counted_not_paired() {
        let (ops, notes) = pair_all(&[ev(0, 10, json!(1), "ok", "write", json!("a"))]);
        assert!(ops.is_empty());
        assert!(notes[0].contains("no matching invoke"));
    }

    #[test]
    fn a_second_invoke_leaves_the_first_op_pending() {
        let (ops, notes) = pair_all(&[
            ev(0, 10, json!(1), "invoke", "write", json!("a")),
            ev(1, 20, json!(1), "invoke", "write", json!("b")),
            ev(2, 30, json!(1), "ok", "write", json!("b")),
        ]);
        assert_eq!(ops[0].index, 0);
        assert_eq!(ops[0].outcome, OpOutcome::Pending);
        assert_eq!(ops[1].outcome, OpOutcome::Ok);
        assert!(notes[0].contains("1 invoke(s) came while"));
    }
}
