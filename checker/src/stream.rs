//! Linearizability of a long JSONL history in bounded memory.
//!
//! A run of an hour holds tens of millions of operations; the check must not
//! hold them all. The history is read once, paired as it is read, and each
//! key's operations are cut into *segments* at points where everything
//! before the point is settled; a closed segment is checked on its own (by
//! [`linear::check`], on a small history of its calls) and dropped. What
//! stays in memory is the open segment of each key and the `info`
//! operations that may still take effect.
//!
//! ## Where a key's history may be cut
//!
//! For the register models (register, cas-register, kv). A key's history
//! is cut right before the invocation of an op, at a point `t`, when:
//!
//! 1. the op `l` invoked last before `t` was invoked while no other op of the
//!    key was in flight, ended ok, and every op invoked before `t` has
//!    completed. Then every linearization places `l` after all other ops
//!    that must take effect before `t`, and the register holds `s`: what
//!    `l` read, wrote, or its cas set.
//! 2. every `info` op invoked before `t` (of this segment, or carried from an
//!    earlier one) is either *observed* in the segment (an ok read returned
//!    its value, an ok cas expected it, or an observed `info` cas expected
//!    it) and the only op that may write that value, so every
//!    linearization places it before its observer and so before `l`; or it
//!    is *carried*: it may still take effect after `t`.
//! 3. the segment is linearizable from the state at its start, with the
//!    carried ops pending; those its linearization places are no longer
//!    carried. (The check gets the carried ops writing a value the segment
//!    observes, and for its failed cas the earliest carried writes and the
//!    cas that may apply; if that fails, all of them.)
//!
//! Then the history is linearizable iff the rest, from state `s`, with the
//! still carried `info` ops pending (invoked before it, able to take effect
//! at any time or never), is linearizable, provided no op after `t` needs a
//! carried op the segment's linearization placed. If: a linearization of
//! the segment followed by one of the rest respects real time (every op of
//! the rest is invoked after `t`, after every op of the segment returned)
//! and uses each op once. Only if: in a linearization of the whole, the ops
//! after `l` form one of the rest from `s`, using only `info` ops not
//! placed before `l` (an observed one is, as its observer is).
//!
//! The proviso is what one pass cannot know: a carried op the segment
//! placed (a write nobody read, making a failed cas fail) might have been
//! needed later instead. Such *spent* ops are kept aside, and a violation
//! found later on that key is confirmed by checking the failing segment
//! again with them pending too (a linearization of the whole leaves the
//! segment a subset of the carried and spent ops pending, so if even that
//! fails, the history is not linearizable). If that finds none, the whole
//! key is checked in memory at the end (or, when it does not fit in the
//! memory budget, its verdict is `unknown` with that reason). If the
//! segment with every carried op is not linearizable and nothing was
//! spent, neither is the history.
//!
//! A segment is cut only once it holds [`MIN_SEGMENT`] calls, so that each
//! check is worth its fixed cost; what reaches the end of the history is
//! checked with everything still pending. The time limit counts the
//! checks, not the reading (as in memory); the memory limit counts the
//! open segments and carried ops, and a key whose open segment outgrows it
//! gets the verdict `unknown` with the reason.
//!
//! The verdict is the in-memory check's. The counterexample comes from the
//! in-memory check of the failing key's history from its start to the end
//! of the failing segment (read again, when that fits in the memory
//! budget), so that its explanation may name ops of earlier segments;
//! otherwise it is the failing segment's own.
//!
//! Other models, other formats (small test files) and the experiment
//! switches are checked in memory ([`None`] from [`check_file`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use formats::history::{Event, EventType, Process};
use formats::Numbered;

use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;

use crate::history::{self, Call, Dialect, FailedCas, History, Pairer};
use crate::report::{self, CheckReport, Validity};
use crate::verdict::{HistoryVerdict, PartOutcome};
use crate::{linear, CheckError, CheckOptions, Format, ModelKind};

/// Calls a segment holds at least before it is cut.
pub const MIN_SEGMENT: usize = 512;

/// The JSONL dialect (a failed cas is an observation only on its precondition).
const DIALECT: Dialect = Dialect {
    format: Format::Jsonl,
    nil_read_unknown: false,
    failed_cas: FailedCas::OnPrecondition,
};

/// Checks a JSONL history file in bounded memory; `None` when it needs the
/// in-memory check (a model other than the register models, or options
/// that ask for the unsplit search).
pub fn check_file(path: &Path, opts: &CheckOptions) -> Result<Option<CheckReport>, CheckError> {
    check_file_cut_at(path, opts, MIN_SEGMENT)
}

/// [`check_file`], cutting segments once they hold `min_segment` calls
/// (tests cut small histories often).
pub fn check_file_cut_at(
    path: &Path,
    opts: &CheckOptions,
    min_segment: usize,
) -> Result<Option<CheckReport>, CheckError> {
    if !opts.split_keys || !opts.split_windows {
        return Ok(None);
    }
    let guess = match opts.model {
        Some(m @ (ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv)) => Some(m),
        Some(_) => return Ok(None),
        None => None,
    };
    let mut s = Stream::new(path, guess, opts);
    s.min_segment = min_segment.max(1);
    let mut reader = formats::history::Reader::<std::io::BufReader<std::fs::File>>::open(path)?;
    for (pos, ev) in reader.by_ref().enumerate() {
        // Read to the end even after a verdict: the history must be whole
        // (an error anywhere is reported), and `ops` counts all of it.
        if !s.push(pos as u64, ev?)? {
            return Ok(None);
        }
    }
    if let Some(line) = reader.torn_line() {
        tracing::warn!(
            file = s.file,
            line,
            "skipped a torn last line (a crash mid-write)"
        );
    }
    s.finish().map(Some)
}

/// One key's open segment and what it carries.
struct Key {
    name: Option<String>,
    /// Completed calls of the open segment, in completion order.
    calls: Vec<Call>,
    /// `info` calls from earlier segments that may still take effect.
    carried: Carried,
    /// The key's value at the start of the open segment.
    init: Value,
    /// Calls invoked and not completed.
    open: usize,
    /// Position of the call invoked last, if no other was in flight then.
    lonely: Option<u64>,
    /// The value after that call, once it ended ok: a point to cut at.
    cut_state: Option<Value>,
    /// Try to cut again only once the segment holds this many calls.
    next_try: usize,
    /// Bytes of the open segment's calls.
    bytes: u64,
    /// Calls of the key completed so far (for the replay's size).
    total: usize,
    /// `info` calls a segment's linearization placed though nothing in it
    /// observed them: a later violation may come from that choice, and is
    /// confirmed with them pending again.
    spent: Carried,
    windows: usize,
    checks: usize,
    graph_checks: usize,
    /// Not checked by segments (over the memory budget, or left to the
    /// in-memory check of the whole key).
    state: KeyState,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyState {
    Streamed,
    /// Over the memory budget: its verdict is unknown.
    Abandoned,
    /// Checked in memory, from the start, once the history is read.
    InMemory,
}

impl Key {
    fn new(name: Option<String>, init: Value) -> Key {
        Key {
            name,
            calls: Vec::new(),
            carried: Carried::default(),
            init,
            open: 0,
            lonely: None,
            cut_state: None,
            next_try: MIN_SEGMENT,
            bytes: 0,
            total: 0,
            spent: Carried::default(),
            windows: 0,
            checks: 0,
            graph_checks: 0,
            state: KeyState::Streamed,
        }
    }

    fn first_line(&self) -> usize {
        self.calls
            .iter()
            .chain(self.carried.calls.values())
            .map(|c| c.invoke.line)
            .min()
            .unwrap_or(0)
    }
}

/// The `info` calls carried past cuts, indexed by what a segment asks.
#[derive(Default)]
struct Carried {
    /// By invocation position.
    calls: BTreeMap<u64, Call>,
    /// Positions by the value the call may write.
    by_target: FxHashMap<String, Vec<u64>>,
    /// Positions of cas by the value they expect.
    by_from: FxHashMap<String, Vec<u64>>,
    bytes: u64,
}

impl Carried {
    fn insert(&mut self, c: Call) {
        if let Some(t) = c.target() {
            self.by_target.entry(t.to_string()).or_default().push(c.pos);
        }
        if let Some(f) = c.cas_from() {
            self.by_from.entry(f.to_string()).or_default().push(c.pos);
        }
        self.bytes += call_bytes(&c);
        self.calls.insert(c.pos, c);
    }

    fn remove(&mut self, pos: u64) -> Option<Call> {
        let c = self.calls.remove(&pos)?;
        self.bytes -= call_bytes(&c);
        let unindex = |index: &mut FxHashMap<String, Vec<u64>>, v: Option<&Value>| {
            let Some(v) = v.map(Value::to_string) else {
                return;
            };
            if let Some(list) = index.get_mut(&v) {
                list.retain(|&p| p != pos);
                if list.is_empty() {
                    index.remove(&v);
                }
            }
        };
        unindex(&mut self.by_target, c.target());
        unindex(&mut self.by_from, c.cas_from());
        Some(c)
    }

    fn expecting(&self, value: &str) -> &[u64] {
        self.by_from.get(value).map_or(&[], Vec::as_slice)
    }

    fn writing(&self, value: &str) -> &[u64] {
        self.by_target.get(value).map_or(&[], Vec::as_slice)
    }
}

/// A violation found by a segment check.
struct Found {
    key: usize,
    /// The failing segment's own history and verdict.
    history: History,
    verdict: HistoryVerdict,
    /// Position of the event after the failing segment.
    end: u64,
}

struct Stream<'a> {
    path: &'a Path,
    file: String,
    opts: &'a CheckOptions,
    /// The model, once the first client event shows it (or `--model`).
    model: Option<ModelKind>,
    /// Whether the model was guessed (and must be confirmed by every event).
    guessed: bool,
    init: Value,
    pairer: Pairer,
    keys: Vec<Key>,
    key_index: FxHashMap<Option<String>, usize>,
    events: usize,
    invocations: usize,
    started: Instant,
    check_time: Duration,
    bytes: u64,
    /// The violation reported (confirmed, or from a segment nothing casts doubt on).
    found: Option<(History, HistoryVerdict)>,
    unknown: Option<String>,
    timed_out: bool,
    min_segment: usize,
}

impl<'a> Stream<'a> {
    fn new(path: &'a Path, model: Option<ModelKind>, opts: &'a CheckOptions) -> Self {
        Stream {
            path,
            file: path.display().to_string(),
            opts,
            model,
            guessed: model.is_none(),
            init: opts.init.clone().unwrap_or(Value::Null),
            pairer: Pairer::default(),
            keys: Vec::new(),
            key_index: FxHashMap::default(),
            events: 0,
            invocations: 0,
            started: Instant::now(),
            check_time: Duration::ZERO,
            bytes: 0,
            found: None,
            unknown: None,
            timed_out: false,
            min_segment: MIN_SEGMENT,
        }
    }

    /// Nothing left to learn: a violation was found or the time is up.
    fn done(&self) -> bool {
        self.found.is_some() || self.timed_out
    }

    /// Whether this event fits the model [`history::default_model`] would
    /// find (the first client event decides; `--model` is taken as given).
    fn confirm_model(&mut self, e: &Event) -> bool {
        if !self.guessed {
            return true;
        }
        let keyed = e.key.is_some();
        match e.f.as_str() {
            "txn" | "acquire" | "release" | "lock" | "unlock" | "append" | "get" | "put" => false,
            _ => match self.model {
                None => {
                    self.model = Some(if keyed {
                        ModelKind::Kv
                    } else {
                        ModelKind::CasRegister
                    });
                    true
                }
                // A key after unkeyed ops makes the history kv.
                Some(ModelKind::CasRegister) => !keyed,
                Some(_) => true,
            },
        }
    }

    /// The key an op belongs to: the register models keep one register
    /// per key, whichever of them checks the history (as `history` reads it).
    fn key_of(&self, e: &Event) -> Option<String> {
        e.key.clone()
    }

    fn key_slot(&mut self, name: &Option<String>) -> usize {
        if let Some(&k) = self.key_index.get(name) {
            return k;
        }
        let k = self.keys.len();
        let mut key = Key::new(name.clone(), self.init.clone());
        key.next_try = self.min_segment;
        self.keys.push(key);
        self.key_index.insert(name.clone(), k);
        k
    }

    /// Takes one event; `false` when the history needs the in-memory check.
    fn push(&mut self, pos: u64, ev: Numbered<Event>) -> Result<bool, CheckError> {
        self.events += 1;
        let client = matches!(ev.event.process, Process::Client(_));
        if client && !self.confirm_model(&ev.event) {
            return Ok(false);
        }
        if client && ev.event.kind == EventType::Invoke {
            self.invocations += 1;
            let k = self.key_slot(&self.key_of(&ev.event));
            let ks = &self.keys[k];
            let ready = ks.open == 0 && ks.cut_state.is_some() && ks.calls.len() >= ks.next_try;
            if ready && !self.done() {
                self.try_cut(k, pos)?;
            }
            let ks = &mut self.keys[k];
            ks.lonely = (ks.open == 0).then_some(pos);
            ks.cut_state = None;
            ks.open += 1;
        }
        if let Some(call) = self.pairer.push(&self.file, pos, ev)? {
            let k = self.key_slot(&self.key_of(&call.invoke.event));
            self.complete(k, call);
        }
        Ok(true)
    }

    fn complete(&mut self, k: usize, call: Call) {
        let ks = &mut self.keys[k];
        ks.open -= 1;
        ks.total += 1;
        if ks.lonely == Some(call.pos) {
            ks.cut_state = call.state_after().cloned();
        }
        if ks.state != KeyState::Streamed || self.found.is_some() || self.timed_out {
            return;
        }
        let b = call_bytes(&call);
        ks.bytes += b;
        self.bytes += b;
        ks.calls.push(call);
        if self.bytes > self.opts.memory_limit_bytes {
            self.abandon_largest();
        }
    }

    /// Over the memory budget: the key with the largest open segment can no
    /// longer be checked (its verdict is unknown, with the reason).
    fn abandon_largest(&mut self) {
        let Some(k) =
            (0..self.keys.len()).max_by_key(|&k| self.keys[k].bytes + self.keys[k].carried.bytes)
        else {
            return;
        };
        let ks = &mut self.keys[k];
        let reason = format!(
            "memory limit of {} MiB reached while reading {}: {} ops since line {} have no point to cut at",
            self.opts.memory_limit_bytes >> 20,
            key_label(&ks.name),
            ks.calls.len() + ks.carried.calls.len(),
            ks.first_line()
        );
        self.unknown.get_or_insert(reason);
        self.drop_key(k, KeyState::Abandoned);
    }

    fn drop_key(&mut self, k: usize, state: KeyState) {
        let ks = &mut self.keys[k];
        self.bytes -= ks.bytes + ks.carried.bytes + ks.spent.bytes;
        ks.bytes = 0;
        ks.state = state;
        ks.calls = Vec::new();
        ks.carried = Carried::default();
        ks.spent = Carried::default();
    }

    /// Cuts key `k`'s history before the invocation at `pos`, if the
    /// segment allows it (see the module docs).
    fn try_cut(&mut self, k: usize, pos: u64) -> Result<(), CheckError> {
        if self.keys[k].state != KeyState::Streamed {
            return Ok(());
        }
        let calls = std::mem::take(&mut self.keys[k].calls);
        let carried = std::mem::take(&mut self.keys[k].carried);
        let r = self.decide_cut(k, pos, &calls, &carried);
        let ks = &mut self.keys[k];
        (ks.calls, ks.carried) = (calls, carried);
        match r? {
            Cut::No => {
                let ks = &mut self.keys[k];
                ks.next_try = ks.calls.len() + self.min_segment;
            }
            Cut::Yes { settled, spent } => self.cut(k, &settled, &spent),
            Cut::Violation(found) => self.violation(*found)?,
        }
        Ok(())
    }

    /// Whether key `k`'s segment is cut, and which `info` calls the cut
    /// settles (observed, or placed by the segment's linearization).
    fn decide_cut(
        &mut self,
        k: usize,
        pos: u64,
        calls: &[Call],
        carried: &Carried,
    ) -> Result<Cut, CheckError> {
        let observed = observed_values(calls, carried);
        // An observed value must have one writer, else which one the
        // observer saw is not settled.
        let mut writers: FxHashMap<&str, usize> = FxHashMap::default();
        for c in calls {
            if let Some(t) = c.target().map(Value::to_string) {
                if let Some(v) = observed.get(&t) {
                    *writers.entry(v.as_str()).or_default() += 1;
                }
            }
        }
        if observed
            .iter()
            .any(|v| writers.get(v.as_str()).copied().unwrap_or(0) + carried.writing(v).len() > 1)
        {
            return Ok(Cut::No);
        }
        let chosen = chosen_carried(calls, carried, &observed);
        let mut r = self.check(k, &with_carried(calls, carried, &chosen))?;
        if matches!(r.verdict.verdict, PartOutcome::Invalid(_))
            && chosen.len() < carried.calls.len()
        {
            // Perhaps another carried op explains the segment.
            let all: Vec<u64> = carried.calls.keys().copied().collect();
            r = self.check(k, &with_carried(calls, carried, &all))?;
        }
        match r.verdict.verdict {
            PartOutcome::Invalid(_) => {
                return Ok(Cut::Violation(Box::new(Found {
                    key: k,
                    history: r.history,
                    verdict: r.verdict,
                    end: pos,
                })))
            }
            PartOutcome::Unknown { .. } | PartOutcome::Valid => {}
        }
        // Settled: info calls whose value the segment observed, and those
        // its linearization placed.
        let mut settled: FxHashSet<u64> = r
            .verdict
            .placed
            .iter()
            .map(|&i| r.history.ops[i as usize].call)
            .collect();
        let spent: FxHashSet<u64> = settled
            .iter()
            .copied()
            .filter(|p| {
                carried
                    .calls
                    .get(p)
                    .or_else(|| calls.iter().find(|c| c.pos == *p))
                    .and_then(Call::target)
                    .is_some_and(|t| !observed.contains(&t.to_string()))
            })
            .collect();
        for v in &observed {
            settled.extend(carried.writing(v));
        }
        for c in calls {
            if c.is_info()
                && c.target()
                    .is_some_and(|t| observed.contains(&t.to_string()))
            {
                settled.insert(c.pos);
            }
        }
        Ok(Cut::Yes { settled, spent })
    }

    /// Closes key `k`'s segment: the settled `info` calls are dropped (the
    /// spent ones kept aside), the others carried.
    fn cut(&mut self, k: usize, settled: &FxHashSet<u64>, spent: &FxHashSet<u64>) {
        let ks = &mut self.keys[k];
        let before = ks.bytes + ks.carried.bytes + ks.spent.bytes;
        for &p in settled {
            if let Some(c) = ks.carried.remove(p) {
                if spent.contains(&p) {
                    ks.spent.insert(c);
                }
            }
        }
        for c in std::mem::take(&mut ks.calls) {
            if !c.is_info() || c.target().is_none() {
                continue;
            }
            if spent.contains(&c.pos) {
                ks.spent.insert(c);
            } else if !settled.contains(&c.pos) {
                ks.carried.insert(c);
            }
        }
        ks.bytes = 0;
        self.bytes = self.bytes - before + ks.carried.bytes + ks.spent.bytes;
        ks.init = ks.cut_state.take().expect("a cut has a state");
        ks.next_try = self.min_segment;
    }

    /// A segment of key `k` is not linearizable. Unless earlier segments
    /// spent `info` ops, so is the history. If they did, the segment is
    /// checked again with those pending too: every linearization of the
    /// whole leaves the segment's ops, from its start value, a subset of
    /// the carried and spent ops pending, so a violation then is the
    /// history's. Otherwise the key is checked in memory, from the start,
    /// at the end. The counterexample is the in-memory check's of the key's
    /// history so far when that fits in the memory budget.
    fn violation(&mut self, found: Found) -> Result<(), CheckError> {
        let k = found.key;
        let mut own = Some((found.history, found.verdict));
        if !self.keys[k].spent.calls.is_empty() {
            let ks = &mut self.keys[k];
            let calls = std::mem::take(&mut ks.calls);
            let carried = std::mem::take(&mut ks.carried);
            let spent = std::mem::take(&mut ks.spent);
            let all: Vec<&Call> = carried
                .calls
                .values()
                .chain(spent.calls.values())
                .chain(&calls)
                .collect();
            let r = self.check(k, &all);
            drop(all);
            let ks = &mut self.keys[k];
            (ks.calls, ks.carried, ks.spent) = (calls, carried, spent);
            let r = r?;
            own = matches!(r.verdict.verdict, PartOutcome::Invalid(_))
                .then_some((r.history, r.verdict));
        }
        match self.replay(k, found.end)? {
            Some((h, v)) if matches!(v.verdict, PartOutcome::Invalid(_)) => {
                self.found = Some((h, v));
            }
            _ => match own {
                Some(own) => self.found = Some(own),
                None => self.drop_key(k, KeyState::InMemory),
            },
        }
        Ok(())
    }

    /// Checks these calls of key `k` from the key's value at the segment start.
    fn check(&mut self, k: usize, calls: &[&Call]) -> Result<Checked, CheckError> {
        let ks = &self.keys[k];
        let first_line = calls.iter().map(|c| c.invoke.line).min().unwrap_or(0);
        let model = self.model.expect("a segment has ops");
        let mut sorted: Vec<&Call> = calls.to_vec();
        sorted.sort_by_key(|c| c.pos);
        let history = history::from_calls(&self.file, DIALECT, model, &ks.init, &sorted)?;
        // The time limit is the checks' own, as in memory (reading is not counted).
        let left = self.opts.time_limit.saturating_sub(self.check_time);
        if left.is_zero() {
            self.timed_out = true;
            let reason = format!(
                "time limit of {:?} reached while checking {} from line {first_line}",
                self.opts.time_limit,
                key_label(&ks.name),
            );
            self.unknown.get_or_insert(reason);
            return Ok(Checked::unknown(history));
        }
        let opts = CheckOptions {
            time_limit: left,
            memory_limit_bytes: self.opts.memory_limit_bytes.saturating_sub(self.bytes),
            format: Some(Format::Jsonl),
            model: Some(model),
            init: None,
            ..self.opts.clone()
        };
        let t = Instant::now();
        let verdict = linear::check(&history, &opts);
        self.check_time += t.elapsed();
        let ks = &mut self.keys[k];
        ks.windows += verdict.windows;
        ks.checks += 1;
        ks.graph_checks += verdict.graph_parts;
        if let PartOutcome::Unknown { reason, .. } = &verdict.verdict {
            if !reason.is_empty() {
                self.note_unknown(reason);
            }
        }
        Ok(Checked { verdict, history })
    }

    /// Records why a check gave no verdict, naming the user's budgets (a
    /// check had what was left of them).
    fn note_unknown(&mut self, reason: &str) {
        let rest = reason.split_once(" reached").map_or("", |(_, r)| r);
        let reason = if reason.starts_with("time limit") {
            self.timed_out = true;
            format!("time limit of {:?} reached{rest}", self.opts.time_limit)
        } else {
            format!(
                "memory limit of {} MiB reached{rest}",
                self.opts.memory_limit_bytes >> 20
            )
        };
        self.unknown.get_or_insert(reason);
    }

    /// Checks what is still open at the end of the history, then the keys
    /// left to the in-memory check.
    fn finish(mut self) -> Result<CheckReport, CheckError> {
        if !self.done() {
            for call in std::mem::take(&mut self.pairer).finish() {
                let k = self.key_slot(&self.key_of(&call.invoke.event));
                self.complete(k, call);
            }
            let end = u64::MAX;
            for k in 0..self.keys.len() {
                if self.done() {
                    break;
                }
                let ks = &mut self.keys[k];
                if ks.state != KeyState::Streamed || ks.calls.is_empty() {
                    continue;
                }
                let (calls, carried) = (
                    std::mem::take(&mut ks.calls),
                    std::mem::take(&mut ks.carried),
                );
                let all: Vec<u64> = carried.calls.keys().copied().collect();
                let r = self.check(k, &with_carried(&calls, &carried, &all));
                let ks = &mut self.keys[k];
                (ks.calls, ks.carried) = (calls, carried);
                let r = r?;
                if let PartOutcome::Invalid(_) = r.verdict.verdict {
                    let found = Found {
                        key: k,
                        history: r.history,
                        verdict: r.verdict,
                        end,
                    };
                    self.violation(found)?;
                }
            }
            for k in 0..self.keys.len() {
                if self.done() {
                    break;
                }
                if self.keys[k].state != KeyState::InMemory {
                    continue;
                }
                match self.replay(k, u64::MAX)? {
                    Some((h, v)) => match v.verdict {
                        PartOutcome::Invalid(_) => self.found = Some((h, v)),
                        PartOutcome::Unknown { ref reason, .. } if !reason.is_empty() => {
                            let reason = reason.clone();
                            self.note_unknown(&reason);
                        }
                        _ => {}
                    },
                    None => {
                        let reason = format!(
                            "memory limit of {} MiB reached: {} ({} ops) needs the in-memory check",
                            self.opts.memory_limit_bytes >> 20,
                            key_label(&self.keys[k].name),
                            self.keys[k].total
                        );
                        self.unknown.get_or_insert(reason);
                    }
                }
            }
        }
        self.report()
    }

    fn report(mut self) -> Result<CheckReport, CheckError> {
        let model = self.model.unwrap_or(ModelKind::CasRegister);
        let parts = self.keys.len();
        let windows = self.keys.iter().map(|k| k.windows).sum();
        let graph_parts = self
            .keys
            .iter()
            .filter(|k| k.checks > 0 && k.graph_checks == k.checks)
            .count();
        let (valid, reason, counterexample) = match self.found.take() {
            Some((history, verdict)) => {
                let r = report::build(&history, verdict, 0.0);
                let reason = r
                    .checkers
                    .linearizability
                    .map(|l| l.reason)
                    .unwrap_or_default();
                (Validity::Invalid, reason, r.counterexample)
            }
            None => match self.unknown.take() {
                Some(reason) => (Validity::Unknown, reason, None),
                None => (Validity::Valid, String::new(), None),
            },
        };
        let total = self.started.elapsed();
        Ok(CheckReport {
            valid,
            model: model.name().to_string(),
            ops: self.invocations,
            parse_ms: total.saturating_sub(self.check_time).as_secs_f64() * 1e3,
            check_ms: self.check_time.as_secs_f64() * 1e3,
            checkers: report::Checkers {
                linearizability: Some(report::LinearizabilityResult {
                    valid,
                    reason,
                    file: self.file.clone(),
                    format: Format::Jsonl.name().to_string(),
                    parts,
                    windows,
                    graph_parts,
                    search_parts: parts - graph_parts,
                }),
                raft_safety: None,
            },
            counterexample,
        })
    }

    /// Reads key `k`'s history again from the start up to position `end`
    /// and checks it in memory. `None` when that would not fit in the
    /// memory budget.
    fn replay(
        &mut self,
        k: usize,
        end: u64,
    ) -> Result<Option<(History, HistoryVerdict)>, CheckError> {
        let ks = &self.keys[k];
        let per_call = 2 * std::mem::size_of::<Call>() as u64
            + 3 * std::mem::size_of::<history::Op>() as u64
            + 128;
        if ks.total as u64 * per_call > self.opts.memory_limit_bytes.saturating_sub(self.bytes) {
            return Ok(None);
        }
        let model = self.model.expect("a replayed key has ops");
        let mut pairer = Pairer::default();
        let mut kept = Vec::new();
        let reader =
            formats::history::Reader::<std::io::BufReader<std::fs::File>>::open(self.path)?;
        for (pos, ev) in reader.enumerate() {
            let pos = pos as u64;
            if pos >= end {
                break;
            }
            if let Some(call) = pairer.push(&self.file, pos, ev?)? {
                if self.key_of(&call.invoke.event) == ks.name {
                    kept.push(call);
                }
            }
        }
        kept.extend(
            pairer
                .finish()
                .into_iter()
                .filter(|c| self.key_of(&c.invoke.event) == ks.name),
        );
        kept.sort_by_key(|c| c.pos);
        let kept: Vec<&Call> = kept.iter().collect();
        let mut history = history::from_calls(&self.file, DIALECT, model, &self.init, &kept)?;
        history.invocations = self.invocations;
        history.events = self.events;
        let opts = CheckOptions {
            time_limit: self.opts.time_limit.saturating_sub(self.check_time),
            model: Some(model),
            ..self.opts.clone()
        };
        let t = Instant::now();
        let verdict = linear::check(&history, &opts);
        self.check_time += t.elapsed();
        Ok(Some((history, verdict)))
    }
}

/// Whether a segment is cut.
enum Cut {
    No,
    /// Cut; the `info` calls (positions) the cut settles, and those of them
    /// spent (placed though not observed).
    Yes {
        settled: FxHashSet<u64>,
        spent: FxHashSet<u64>,
    },
    Violation(Box<Found>),
}

/// What a segment check gave, and the history it was told in.
struct Checked {
    verdict: HistoryVerdict,
    history: History,
}

impl Checked {
    fn unknown(history: History) -> Checked {
        let verdict = HistoryVerdict {
            verdict: PartOutcome::Unknown {
                reason: String::new(),
                retry: false,
            },
            parts: 1,
            windows: 0,
            graph_parts: 0,
            search_parts: 0,
            placed: Vec::new(),
        };
        Checked { verdict, history }
    }
}

/// The values a segment observed for certain: what its ok ops read or
/// expected, and, since the (only) op writing such a value must come
/// before its observer, what that op expected if it is an `info` cas, and
/// so on (the effective returns of [`crate::reduce`], rule 1).
fn observed_values(calls: &[Call], carried: &Carried) -> FxHashSet<String> {
    let mut values: FxHashSet<String> = calls
        .iter()
        .filter_map(|c| c.observed().map(Value::to_string))
        .collect();
    let mut info_cas: FxHashMap<String, Vec<&Call>> = FxHashMap::default();
    for c in calls
        .iter()
        .filter(|c| c.is_info() && c.cas_from().is_some())
    {
        if let Some(t) = c.target() {
            info_cas.entry(t.to_string()).or_default().push(c);
        }
    }
    let mut work: Vec<String> = values.iter().cloned().collect();
    while let Some(v) = work.pop() {
        let writers = info_cas.get(&v).into_iter().flatten().copied().chain(
            carried
                .writing(&v)
                .iter()
                .filter_map(|p| carried.calls.get(p)),
        );
        for w in writers {
            if let Some(from) = w.cas_from().map(Value::to_string) {
                if values.insert(from.clone()) {
                    work.push(from);
                }
            }
        }
    }
    values
}

/// The carried `info` calls a segment's check gets: those writing a value
/// it observed, and when it has failed cas, the earliest carried writes
/// (one per failed cas: a write of a value the segment never looks at
/// makes any failed cas hold, so earlier-invoked ones serve best) and the
/// carried cas from a value the register may hold in it. With fewer than
/// needed, the check fails and is repeated with all of them.
fn chosen_carried(calls: &[Call], carried: &Carried, observed: &FxHashSet<String>) -> Vec<u64> {
    let mut out: Vec<u64> = observed
        .iter()
        .flat_map(|v| carried.writing(v).iter().copied())
        .collect();
    let failed = calls.iter().filter(|c| c.is_failed_cas()).count();
    if failed > 0 {
        let mut states: FxHashSet<String> = calls
            .iter()
            .filter_map(|c| c.target().map(Value::to_string))
            .collect();
        let writes = carried
            .calls
            .iter()
            .filter(|(_, c)| c.cas_from().is_none())
            .take(failed);
        for (&p, c) in writes {
            out.push(p);
            states.extend(c.target().map(Value::to_string));
        }
        for v in &states {
            out.extend(carried.expecting(v));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The calls of a segment with the chosen carried ones.
fn with_carried<'c>(calls: &'c [Call], carried: &'c Carried, chosen: &[u64]) -> Vec<&'c Call> {
    chosen
        .iter()
        .filter_map(|p| carried.calls.get(p))
        .chain(calls)
        .collect()
}

fn key_label(name: &Option<String>) -> String {
    match name {
        Some(k) => format!("key {k}"),
        None => "the history".to_string(),
    }
}

/// Bytes a call holds in memory (its two events, roughly).
fn call_bytes(c: &Call) -> u64 {
    let ev = |e: &Event| {
        (std::mem::size_of::<Numbered<Event>>()
            + e.f.capacity()
            + e.key.as_ref().map_or(0, String::capacity)
            + e.error.as_ref().map_or(0, String::capacity)
            + value_bytes(&e.value)) as u64
    };
    std::mem::size_of::<Call>() as u64
        + ev(&c.invoke.event)
        + c.done.as_ref().map_or(0, |(d, _)| ev(&d.event))
}

fn value_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => s.capacity(),
        Value::Array(a) => a
            .iter()
            .map(|x| std::mem::size_of::<Value>() + value_bytes(x))
            .sum(),
        Value::Object(m) => m
            .iter()
            .map(|(k, x)| 64 + k.capacity() + value_bytes(x))
            .sum(),
        _ => 0,
    }
}
