//! The normalized history: paired operations with interned values.
//!
//! Every input format is first read into history [`Event`]s (the one event
//! type of `formats`, each with its line), then [`build`] does three things
//! in turn: `pair` validates the history's own assumptions (one open op per
//! process, a completion matches its invoke, no completion without an
//! invoke) while pairing invocations with completions; each pair is read as
//! an `Ending` (how the op ended, which value it carries); and `Tables`
//! turns it into an [`Op`] the models understand, interning values to `u32`
//! so that the search compares integers, never JSON.

use formats::history::{Event, EventType, Process};
use formats::Numbered;
use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::{CheckError, Format, ModelKind};

/// An interned value (index into [`Values`]).
pub type Val = u32;
/// The interned `null`.
pub const NIL: Val = 0;
/// "The value is not known" (a read whose result was not recorded): always legal.
pub const UNKNOWN: Val = u32::MAX;
/// Any value no operation of its key reads or compares against: the search
/// gives all of them this one id (see [`crate::reduce`]).
pub const DEAD: Val = u32::MAX - 1;
/// Position used as the return of an op that never completed (info / pending).
pub const INF: u64 = u64::MAX;

/// Interning table for values; `null` is always [`NIL`].
#[derive(Debug, Clone)]
pub struct Values {
    vals: Vec<Value>,
    index: FxHashMap<String, Val>,
}

impl Default for Values {
    fn default() -> Self {
        let mut v = Values {
            vals: Vec::new(),
            index: FxHashMap::default(),
        };
        v.intern(&Value::Null);
        v
    }
}

impl Values {
    /// Interns a value; equal JSON values get equal ids.
    pub fn intern(&mut self, v: &Value) -> Val {
        let key = v.to_string();
        if let Some(&id) = self.index.get(&key) {
            return id;
        }
        let id = self.vals.len() as Val;
        self.vals.push(v.clone());
        self.index.insert(key, id);
        id
    }

    /// The id of an already interned value, if any.
    pub fn lookup(&self, v: &Value) -> Option<Val> {
        self.index.get(&v.to_string()).copied()
    }

    /// The value behind an id ([`UNKNOWN`] shows as `"?"`).
    pub fn get(&self, id: Val) -> Value {
        if id == UNKNOWN {
            return Value::String("?".into());
        }
        if id == DEAD {
            return Value::String("(a value no operation reads)".into());
        }
        self.vals
            .get(id as usize)
            .cloned()
            .unwrap_or(Value::String(format!("#{id}")))
    }

    /// The string behind an id, if it is a string value.
    pub fn as_str(&self, id: Val) -> Option<&str> {
        self.vals.get(id as usize).and_then(Value::as_str)
    }

    /// The id of an interned string value, if any.
    pub fn lookup_str(&self, s: &str) -> Option<Val> {
        self.index
            .get(&Value::String(s.to_string()).to_string())
            .copied()
    }

    /// Number of interned values.
    pub fn len(&self) -> usize {
        self.vals.len()
    }

    /// Always false: `null` is interned from the start.
    pub fn is_empty(&self) -> bool {
        self.vals.is_empty()
    }

    /// A short human form of a value (strings unquoted when simple).
    pub fn show(&self, id: Val) -> String {
        abbreviate(&match self.get(id) {
            Value::Null => "nil".into(),
            Value::String(s) if !s.is_empty() => s,
            v => v.to_string(),
        })
    }
}

/// Shortens long values for explanations: the start and the end, which is
/// where appends and overwrites show.
pub fn abbreviate(s: &str) -> String {
    const MAX: usize = 48;
    let n = s.chars().count();
    if n <= MAX {
        return s.to_string();
    }
    let head: String = s.chars().take(12).collect();
    let tail: String = s.chars().skip(n - 30).collect();
    format!("{head}…{tail} ({n} chars)")
}

/// How a `fail` of a `cas` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedCas {
    /// Every failed cas is a precondition failure (porcupine's etcd logs).
    Observation,
    /// Only `error: precondition` is an observation; other fails did not happen.
    OnPrecondition,
}

/// Format-specific reading rules handed to [`build`].
#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    pub format: Format,
    /// A `nil` read result means "not recorded" (Knossos' EDN), not "absent".
    pub nil_read_unknown: bool,
    pub failed_cas: FailedCas,
}

/// Outcome of an operation, as far as the models care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Happened, between its call and its return.
    Ok,
    /// May have happened at any time after its call, or never.
    Info,
}

/// One micro-operation of a multi-register transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Micro {
    pub write: bool,
    pub reg: u32,
    pub val: Val,
}

/// What an operation did, in model terms.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OpF {
    /// Read (or get) that returned the value ([`UNKNOWN`]: result not recorded).
    Read(Val),
    /// Write (or put).
    Write(Val),
    /// Compare-and-set that took effect: the value was `from`, became `to`.
    Cas(Val, Val),
    /// Compare-and-set that failed its precondition: the value was not `from`.
    CasFailed(Val),
    /// String append (append-kv).
    Append(Val),
    /// Multi-register transaction.
    Txn(Box<[Micro]>),
    Acquire,
    Release,
}

/// One client operation: invocation paired with its completion.
#[derive(Debug, Clone)]
pub struct Op {
    /// The `index` of the invoke event: how reports name the op.
    pub id: u64,
    pub process: u64,
    /// Index into [`History::keys`], if the op has a key.
    pub key: Option<u32>,
    /// Position of the invoke among all events (real-time order).
    pub call: u64,
    /// Position of the completion, [`INF`] if it never completed or ended `info`.
    pub ret: u64,
    /// Recorded time of the invoke (ns), if the history records time.
    pub call_time: Option<u64>,
    /// Recorded time of the completion, if any and if the op is not `info`.
    pub ret_time: Option<u64>,
    pub status: Status,
    pub f: OpF,
    /// Line of the invoke event.
    pub line: usize,
    /// Line of the completion event (0 if none).
    pub ret_line: usize,
}

/// A parsed history, ready for checking.
#[derive(Debug, Clone)]
pub struct History {
    pub file: String,
    pub format: Format,
    pub model: ModelKind,
    /// Shared with the search's reduced copy of the history.
    pub values: std::sync::Arc<Values>,
    /// Initial value per key (interned), or for multi-register per register.
    pub init: Val,
    pub keys: Vec<String>,
    /// Register names of a multi-register history.
    pub registers: Vec<String>,
    /// Initial value of each register (multi-register).
    pub register_init: Vec<Val>,
    pub ops: Vec<Op>,
    /// Number of client invocations (crashed ones included, failed ones included).
    pub invocations: usize,
    /// Total events read.
    pub events: usize,
}

impl History {
    /// Human name of an op's key ("" when the op has none).
    pub fn key_name(&self, op: &Op) -> String {
        op.key
            .map(|k| self.keys[k as usize].clone())
            .unwrap_or_default()
    }

    /// A short description of an operation for explanations.
    pub fn describe_op(&self, op: &Op) -> String {
        let key = match op.key {
            Some(k) => format!(" of {}", self.keys[k as usize]),
            None => String::new(),
        };
        let v = |x: Val| self.values.show(x);
        match &op.f {
            OpF::Read(x) => format!("read{key} returning {}", v(*x)),
            OpF::Write(x) => format!("write{key} of {}", v(*x)),
            OpF::Cas(a, b) => format!("cas{key} {} -> {}", v(*a), v(*b)),
            OpF::CasFailed(a) => format!("failed cas{key} (value was not {})", v(*a)),
            OpF::Append(x) => format!("append{key} of {:?}", v(*x)),
            OpF::Txn(m) => {
                let parts: Vec<String> = m
                    .iter()
                    .map(|m| {
                        format!(
                            "{} {} {}",
                            if m.write { "write" } else { "read" },
                            self.registers.get(m.reg as usize).map_or("?", |s| s),
                            v(m.val)
                        )
                    })
                    .collect();
                format!("txn [{}]", parts.join(", "))
            }
            OpF::Acquire => "acquire".into(),
            OpF::Release => "release".into(),
        }
    }
}

/// The model a format implies when `--model` is not given.
pub fn default_model(format: Format, events: &[Numbered<Event>]) -> ModelKind {
    match format {
        Format::EtcdLog => ModelKind::CasRegister,
        Format::PorcupineKv => ModelKind::AppendKv,
        Format::Jsonl | Format::Edn => {
            let client = events
                .iter()
                .map(|e| &e.event)
                .filter(|e| matches!(e.process, Process::Client(_)));
            let mut keyed = false;
            for e in client {
                match e.f.as_str() {
                    "txn" => return ModelKind::MultiRegister,
                    "acquire" | "release" | "lock" | "unlock" => return ModelKind::Mutex,
                    "append" | "get" | "put" => return ModelKind::AppendKv,
                    _ => {}
                }
                keyed |= e.key.is_some();
            }
            if keyed {
                ModelKind::Kv
            } else {
                ModelKind::CasRegister
            }
        }
    }
}

/// The initial value a format/model implies when `--init` is not given.
pub fn default_init(format: Format, model: ModelKind) -> Value {
    match (format, model) {
        (Format::PorcupineKv, _) | (_, ModelKind::AppendKv) => Value::String(String::new()),
        _ => Value::Null,
    }
}

fn invalid(file: &str, line: usize, message: String) -> CheckError {
    CheckError::InvalidHistory {
        file: file.to_string(),
        line,
        message,
    }
}

/// Pairs events into operations, validating the history's own assumptions.
pub fn build(
    file: &str,
    dialect: Dialect,
    events: Vec<Numbered<Event>>,
    model: Option<ModelKind>,
    init: Option<Value>,
) -> Result<History, CheckError> {
    let model = model.unwrap_or_else(|| default_model(dialect.format, &events));
    let init_value = init.unwrap_or_else(|| default_init(dialect.format, model));
    let n_events = events.len();
    let mut pairer = Pairer::default();
    let mut calls = Vec::new();
    for (pos, ev) in events.into_iter().enumerate() {
        calls.extend(pairer.push(file, pos as u64, ev)?);
    }
    calls.extend(pairer.finish());
    // Invocation order, as the events came.
    calls.sort_by_key(|c| c.pos);
    let calls: Vec<&Call> = calls.iter().collect();
    let mut history = from_calls(file, dialect, model, &init_value, &calls)?;
    history.events = n_events;
    Ok(history)
}

/// The history of these calls (in invocation order), starting from
/// `init_value`: each call read as an [`Op`] the model understands.
/// `events` counts the calls; a caller that read more events sets it.
pub(crate) fn from_calls(
    file: &str,
    dialect: Dialect,
    model: ModelKind,
    init_value: &Value,
    calls: &[&Call],
) -> Result<History, CheckError> {
    let mut tables = Tables::new(model, init_value);
    let mut ops = Vec::with_capacity(calls.len());
    for call in calls {
        let ending = Ending::of(call);
        if let Some(f) = tables.op_f(model, dialect, &ending, file)? {
            ops.push(tables.op(model, call, &ending, f));
        }
    }
    ops.sort_by_key(|o| o.call);
    Ok(History {
        file: file.to_string(),
        format: dialect.format,
        model,
        values: std::sync::Arc::new(tables.values),
        init: tables.init,
        keys: tables.keys,
        registers: tables.registers,
        register_init: tables.register_init,
        ops,
        invocations: calls.len(),
        events: calls.len(),
    })
}

/// A client's invocation with its completion, if it had one, and the
/// position of each among all events (the real-time order).
pub(crate) struct Call {
    pub(crate) invoke: Numbered<Event>,
    pub(crate) pos: u64,
    pub(crate) done: Option<(Numbered<Event>, u64)>,
}

/// Pairs every client invocation with the next completion of its process,
/// one event at a time, so that a history is paired as it is read.
/// Events of other processes (the nemesis) are no ops. Fails on what no
/// real history can hold: a second invocation while the process still has
/// one open, a completion without an invocation, or one of another
/// operation.
#[derive(Default)]
pub(crate) struct Pairer {
    open: FxHashMap<u64, Call>,
}

impl Pairer {
    /// Takes the event at position `pos`; returns the call it completes.
    pub(crate) fn push(
        &mut self,
        file: &str,
        pos: u64,
        ev: Numbered<Event>,
    ) -> Result<Option<Call>, CheckError> {
        let Process::Client(p) = ev.event.process else {
            return Ok(None);
        };
        let (e, line) = (&ev.event, ev.line);
        if e.kind == EventType::Invoke {
            if let Some(prev) = self.open.get(&p) {
                let prev = &prev.invoke;
                return Err(invalid(
                    file,
                    line,
                    format!(
                        "process {p} invokes {} while its {} invoked on line {} is still open (one open op per process)",
                        e.f, prev.event.f, prev.line
                    ),
                ));
            }
            let call = Call {
                invoke: ev,
                pos,
                done: None,
            };
            self.open.insert(p, call);
            return Ok(None);
        }
        let Some(mut call) = self.open.remove(&p) else {
            return Err(invalid(
                file,
                line,
                format!(
                    "completion ({:?} {}) of process {p} without an invocation",
                    e.kind, e.f
                ),
            ));
        };
        let invoke = &call.invoke;
        if invoke.event.f != e.f {
            return Err(invalid(
                file,
                line,
                format!(
                    "completion {} of process {p} does not match its invocation {} on line {}",
                    e.f, invoke.event.f, invoke.line
                ),
            ));
        }
        call.done = Some((ev, pos));
        Ok(Some(call))
    }

    /// The calls that never completed, in invocation order.
    pub(crate) fn finish(self) -> Vec<Call> {
        let mut calls: Vec<Call> = self.open.into_values().collect();
        calls.sort_by_key(|c| c.pos);
        calls
    }
}

/// How one call ended, in the terms the models need.
struct Ending<'a> {
    invoke: &'a Numbered<Event>,
    completion: Option<&'a Numbered<Event>>,
    /// Ended `fail`: did not happen (a failed cas may still be an observation).
    fail: bool,
    /// Ended `info` or never completed: may take effect at any later time.
    info: bool,
    /// The value the op carries: the completion's for an ok op that has
    /// one (what a read returned), else the invocation's.
    value: &'a Value,
}

impl<'a> Ending<'a> {
    fn of(call: &'a Call) -> Self {
        let completion = call.done.as_ref().map(|(d, _)| d);
        let kind = completion.map_or(EventType::Info, |d| d.event.kind);
        let invoked = &call.invoke.event.value;
        let value = match completion {
            Some(d) if kind == EventType::Ok && (!d.event.value.is_null() || invoked.is_null()) => {
                &d.event.value
            }
            _ => invoked,
        };
        Ending {
            invoke: &call.invoke,
            completion,
            fail: kind == EventType::Fail,
            info: matches!(kind, EventType::Info | EventType::Invoke),
            value,
        }
    }

    /// A history error about this op, on its invocation's line.
    fn bad(&self, file: &str, what: &str) -> CheckError {
        let e = &self.invoke.event;
        invalid(
            file,
            self.invoke.line,
            format!("operation {} with value {}: {what}", e.f, e.value),
        )
    }

    /// A failed cas whose completion says the value was not `from`.
    fn failed_precondition(&self) -> bool {
        self.completion
            .and_then(|d| d.event.error.as_deref())
            .is_some_and(|e| e.contains("precondition"))
    }
}

/// What a call of a register model (read, write, cas) did, as far as the
/// cuts of a streamed check need to know (see [`crate::stream`]).
impl Call {
    /// Ended `info` or never completed: may take effect later, or never.
    pub(crate) fn is_info(&self) -> bool {
        Ending::of(self).info
    }

    /// The value the register holds right after this call, when that is
    /// certain: a read, write or cas that ended ok.
    pub(crate) fn state_after(&self) -> Option<&Value> {
        let e = Ending::of(self);
        if e.fail || e.info {
            return None;
        }
        match self.invoke.event.f.as_str() {
            "read" | "get" => Some(e.value),
            "write" | "put" => Some(&self.invoke.event.value),
            "cas" => as_pair(&self.invoke.event.value).map(|(_, to)| to),
            _ => None,
        }
    }

    /// The value this call may set the register to (a write, or a cas to
    /// another value), unless it failed.
    pub(crate) fn target(&self) -> Option<&Value> {
        let e = Ending::of(self);
        if e.fail {
            return None;
        }
        match self.invoke.event.f.as_str() {
            "write" | "put" => Some(&self.invoke.event.value),
            "cas" => as_pair(&self.invoke.event.value)
                .filter(|(from, to)| from != to)
                .map(|(_, to)| to),
            _ => None,
        }
    }

    /// A cas's expected value.
    pub(crate) fn cas_from(&self) -> Option<&Value> {
        match self.invoke.event.f.as_str() {
            "cas" => as_pair(&self.invoke.event.value).map(|(from, _)| from),
            _ => None,
        }
    }

    /// A cas that failed (an observation when its precondition failed).
    pub(crate) fn is_failed_cas(&self) -> bool {
        Ending::of(self).fail && self.invoke.event.f == "cas"
    }

    /// The value this call saw for certain: what an ok read returned, what
    /// an ok cas expected.
    pub(crate) fn observed(&self) -> Option<&Value> {
        let e = Ending::of(self);
        if e.fail || e.info {
            return None;
        }
        match self.invoke.event.f.as_str() {
            "read" | "get" => Some(e.value),
            "cas" => as_pair(&self.invoke.event.value).map(|(from, _)| from),
            _ => None,
        }
    }
}

fn as_pair(v: &Value) -> Option<(&Value, &Value)> {
    match v {
        Value::Array(a) if a.len() == 2 => Some((&a[0], &a[1])),
        _ => None,
    }
}

/// The tables a history's values, keys and registers are interned into.
struct Tables {
    values: Values,
    keys: Vec<String>,
    key_index: FxHashMap<String, u32>,
    registers: Vec<String>,
    reg_index: FxHashMap<String, u32>,
    register_init: Vec<Val>,
    /// The interned initial value (for a mutex: 1 when held).
    init: Val,
}

impl Tables {
    fn new(model: ModelKind, init_value: &Value) -> Self {
        let mut t = Tables {
            values: Values::default(),
            keys: Vec::new(),
            key_index: FxHashMap::default(),
            registers: Vec::new(),
            reg_index: FxHashMap::default(),
            register_init: Vec::new(),
            init: NIL,
        };
        t.init = match (init_value, model) {
            // Multi-register init: a map register -> value.
            (Value::Object(m), ModelKind::MultiRegister) => {
                for (k, v) in m {
                    let v = t.values.intern(v);
                    t.register(k, v);
                }
                NIL
            }
            (v, ModelKind::Mutex) => match v {
                Value::Bool(true) => 1,
                Value::String(s) if s == "locked" || s == "held" => 1,
                _ => 0,
            },
            (v, _) => t.values.intern(v),
        };
        t
    }

    fn key(&mut self, k: &str) -> u32 {
        if let Some(&id) = self.key_index.get(k) {
            return id;
        }
        let id = self.keys.len() as u32;
        self.keys.push(k.to_string());
        self.key_index.insert(k.to_string(), id);
        id
    }

    /// The id of a register, created with initial value `init` if new.
    fn register(&mut self, name: &str, init: Val) -> u32 {
        if let Some(&id) = self.reg_index.get(name) {
            return id;
        }
        let id = self.registers.len() as u32;
        self.registers.push(name.to_string());
        self.reg_index.insert(name.to_string(), id);
        self.register_init.push(init);
        id
    }

    /// What the op did in the model's terms; `None` when it constrains
    /// nothing (a failed write, a read whose result is unknown).
    fn op_f(
        &mut self,
        model: ModelKind,
        dialect: Dialect,
        e: &Ending,
        file: &str,
    ) -> Result<Option<OpF>, CheckError> {
        match model {
            ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv => {
                self.register_f(model, dialect, e, file)
            }
            ModelKind::AppendKv => self.append_f(e, file),
            ModelKind::MultiRegister => self.txn_f(e, file),
            ModelKind::Mutex => match e.invoke.event.f.as_str() {
                "acquire" | "lock" => Ok((!e.fail).then_some(OpF::Acquire)),
                "release" | "unlock" => Ok((!e.fail).then_some(OpF::Release)),
                other => Err(e.bad(file, &format!("f {other:?} is not part of the mutex model"))),
            },
        }
    }

    /// read / write / cas on registers (one, or one per key).
    fn register_f(
        &mut self,
        model: ModelKind,
        dialect: Dialect,
        e: &Ending,
        file: &str,
    ) -> Result<Option<OpF>, CheckError> {
        let v = &mut self.values;
        Ok(match e.invoke.event.f.as_str() {
            "read" | "get" if e.fail || e.info => None,
            "read" | "get" if e.value.is_null() && dialect.nil_read_unknown => {
                Some(OpF::Read(UNKNOWN))
            }
            "read" | "get" => Some(OpF::Read(v.intern(e.value))),
            "write" | "put" => (!e.fail).then(|| OpF::Write(v.intern(&e.invoke.event.value))),
            "cas" => {
                if model == ModelKind::Register {
                    return Err(e.bad(
                        file,
                        "cas is not part of the register model (use cas-register)",
                    ));
                }
                let (from, to) = as_pair(&e.invoke.event.value)
                    .ok_or_else(|| e.bad(file, "cas needs [from, to]"))?;
                if !e.fail {
                    Some(OpF::Cas(v.intern(from), v.intern(to)))
                } else {
                    let observed = match dialect.failed_cas {
                        FailedCas::Observation => true,
                        FailedCas::OnPrecondition => e.failed_precondition(),
                    };
                    observed.then(|| OpF::CasFailed(v.intern(from)))
                }
            }
            other => {
                return Err(e.bad(
                    file,
                    &format!("f {other:?} is not part of the {} model", model.name()),
                ))
            }
        })
    }

    /// get / put / append on a map of strings.
    fn append_f(&mut self, e: &Ending, file: &str) -> Result<Option<OpF>, CheckError> {
        let v = &mut self.values;
        Ok(match e.invoke.event.f.as_str() {
            "read" | "get" if e.fail || e.info => None,
            "read" | "get" if e.value.is_null() => {
                Some(OpF::Read(v.intern(&Value::String(String::new()))))
            }
            "read" | "get" => Some(OpF::Read(v.intern(e.value))),
            "write" | "put" | "append" if e.fail => None,
            f @ ("write" | "put" | "append") => {
                let s = match &e.invoke.event.value {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                let id = v.intern(&Value::String(s));
                Some(if f == "append" {
                    OpF::Append(id)
                } else {
                    OpF::Write(id)
                })
            }
            other => {
                return Err(e.bad(
                    file,
                    &format!("f {other:?} is not part of the append-kv model"),
                ))
            }
        })
    }

    /// A transaction of reads and writes over named registers.
    fn txn_f(&mut self, e: &Ending, file: &str) -> Result<Option<OpF>, CheckError> {
        if e.invoke.event.f != "txn" {
            return Err(e.bad(file, "multi-register ops must be txn"));
        }
        if e.fail {
            return Ok(None);
        }
        let Value::Array(items) = e.value else {
            return Err(e.bad(file, "txn value must be a list of [f register value]"));
        };
        let mut micro = Vec::with_capacity(items.len());
        for it in items {
            let t = match it {
                Value::Array(t) if t.len() == 3 => t,
                _ => return Err(e.bad(file, "txn micro-op must be [f register value]")),
            };
            let write = match t[0].as_str() {
                Some("read" | "r") => false,
                Some("write" | "w") => true,
                _ => return Err(e.bad(file, "txn micro-op f must be read or write")),
            };
            let name = match &t[1] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let reg = self.register(&name, self.init);
            if !write && (e.info || t[2].is_null()) {
                continue; // unknown read: no constraint
            }
            micro.push(Micro {
                write,
                reg,
                val: self.values.intern(&t[2]),
            });
        }
        Ok(
            if micro.is_empty() || (e.info && micro.iter().all(|m| !m.write)) {
                None
            } else {
                Some(OpF::Txn(micro.into_boxed_slice()))
            },
        )
    }

    /// The op of a call, given what it did.
    fn op(&mut self, model: ModelKind, call: &Call, e: &Ending, f: OpF) -> Op {
        let ev = &call.invoke.event;
        let status = if e.info { Status::Info } else { Status::Ok };
        let (ret, ret_time) = match (status, &call.done) {
            (Status::Ok, Some((d, rpos))) => (*rpos, d.event.time),
            _ => (INF, None),
        };
        let key = match (&ev.key, model) {
            (
                Some(k),
                ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv | ModelKind::AppendKv,
            ) => Some(self.key(k)),
            _ => None,
        };
        Op {
            id: ev.index,
            process: ev.process.client().expect("calls are client ops"),
            key,
            call: call.pos,
            ret,
            call_time: ev.time,
            ret_time,
            status,
            f,
            line: call.invoke.line,
            ret_line: call.done.as_ref().map_or(0, |(d, _)| d.line),
        }
    }
}
