//! The normalized history: paired operations with interned values.
//!
//! Every input format is first read into [`RawEvent`]s (one per line or map),
//! then [`build`] pairs invocations with completions, validates the history's
//! own assumptions (one open op per process, a completion matches its invoke,
//! no completion without an invoke) and turns each client operation into an
//! [`Op`] the models understand. Values are interned to `u32` so the search
//! compares integers, never JSON.

use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::{CheckError, Format, ModelKind};

/// An interned value (index into [`Values`]).
pub type Val = u32;
/// The interned `null`.
pub const NIL: Val = 0;
/// "The value is not known" (a read whose result was not recorded): always legal.
pub const UNKNOWN: Val = u32::MAX;
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

/// The process of an event: a client number, or something else (the nemesis).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Process {
    Client(u64),
    Other(String),
}

/// Event type as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// One event as read from the input, before pairing.
#[derive(Debug, Clone)]
pub struct RawEvent {
    /// 1-based line of the event in its file (for error messages).
    pub line: usize,
    /// The event's `index` field, else its position among events.
    pub index: u64,
    /// Recorded time (ns), if any. Never used for ordering: the file order is real-time order.
    pub time: Option<i64>,
    pub process: Process,
    pub kind: EventType,
    pub f: String,
    pub key: Option<String>,
    pub value: Value,
    pub error: Option<String>,
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
    pub call_time: Option<i64>,
    pub ret_time: Option<i64>,
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
    pub values: Values,
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
pub fn default_model(format: Format, events: &[RawEvent]) -> ModelKind {
    match format {
        Format::EtcdLog => ModelKind::CasRegister,
        Format::PorcupineKv => ModelKind::AppendKv,
        Format::Jsonl | Format::Edn => {
            let client = events
                .iter()
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

fn as_pair(v: &Value) -> Option<(&Value, &Value)> {
    match v {
        Value::Array(a) if a.len() == 2 => Some((&a[0], &a[1])),
        _ => None,
    }
}

/// Pairs events into operations, validating the history's own assumptions.
pub fn build(
    file: &str,
    dialect: Dialect,
    events: Vec<RawEvent>,
    model: Option<ModelKind>,
    init: Option<Value>,
) -> Result<History, CheckError> {
    let model = model.unwrap_or_else(|| default_model(dialect.format, &events));
    let init_value = init.unwrap_or_else(|| default_init(dialect.format, model));
    let mut values = Values::default();
    let mut keys: Vec<String> = Vec::new();
    let mut key_index: FxHashMap<String, u32> = FxHashMap::default();
    let mut registers: Vec<String> = Vec::new();
    let mut reg_index: FxHashMap<String, u32> = FxHashMap::default();
    let mut register_init: Vec<Val> = Vec::new();

    // Multi-register init: a map register -> value.
    let init = match (&init_value, model) {
        (Value::Object(m), ModelKind::MultiRegister) => {
            for (k, v) in m {
                let id = registers.len() as u32;
                registers.push(k.clone());
                reg_index.insert(k.clone(), id);
                register_init.push(values.intern(v));
            }
            NIL
        }
        (v, ModelKind::Mutex) => match v {
            Value::Bool(true) => 1,
            Value::String(s) if s == "locked" || s == "held" => 1,
            _ => 0,
        },
        (v, _) => values.intern(v),
    };

    // Open invocation per process: index into `pending`.
    let mut open: FxHashMap<u64, usize> = FxHashMap::default();
    struct Pending {
        ev: RawEvent,
        pos: u64,
        done: Option<(RawEvent, u64)>,
    }
    let mut pending: Vec<Pending> = Vec::new();
    let n_events = events.len();
    for (pos, ev) in events.into_iter().enumerate() {
        let pos = pos as u64;
        let p = match ev.process {
            Process::Client(p) => p,
            Process::Other(_) => continue,
        };
        match ev.kind {
            EventType::Invoke => {
                if let Some(&prev) = open.get(&p) {
                    return Err(invalid(
                        file,
                        ev.line,
                        format!(
                            "process {p} invokes {} while its {} invoked on line {} is still open (one open op per process)",
                            ev.f, pending[prev].ev.f, pending[prev].ev.line
                        ),
                    ));
                }
                open.insert(p, pending.len());
                pending.push(Pending {
                    ev,
                    pos,
                    done: None,
                });
            }
            _ => {
                let Some(i) = open.remove(&p) else {
                    return Err(invalid(
                        file,
                        ev.line,
                        format!(
                            "completion ({:?} {}) of process {p} without an invocation",
                            ev.kind, ev.f
                        ),
                    ));
                };
                if pending[i].ev.f != ev.f {
                    return Err(invalid(
                        file,
                        ev.line,
                        format!(
                            "completion {} of process {p} does not match its invocation {} on line {}",
                            ev.f, pending[i].ev.f, pending[i].ev.line
                        ),
                    ));
                }
                pending[i].done = Some((ev, pos));
            }
        }
    }

    let invocations = pending.len();
    let mut ops = Vec::with_capacity(pending.len());
    for Pending { ev, pos, done } in pending {
        let (kind, done_ev, ret) = match done {
            Some((d, rpos)) => (d.kind, Some(d), rpos),
            None => (EventType::Info, None, INF),
        };
        if kind == EventType::Info && done_ev.is_some() {
            // keep ret = INF below
        }
        let status = match kind {
            EventType::Ok => Status::Ok,
            EventType::Info | EventType::Invoke => Status::Info,
            EventType::Fail => Status::Ok, // only kept for observations below
        };
        let ret = if status == Status::Info { INF } else { ret };
        let ret_time = if status == Status::Info {
            None
        } else {
            done_ev.as_ref().and_then(|d| d.time)
        };
        let line = ev.line;
        let ret_line = done_ev.as_ref().map_or(0, |d| d.line);
        let bad = |what: &str| {
            invalid(
                file,
                line,
                format!("operation {} with value {}: {what}", ev.f, ev.value),
            )
        };
        // The value an op carries: the completion's for ok reads, else the invoke's.
        let out_value = match (&done_ev, kind) {
            (Some(d), EventType::Ok) if !d.value.is_null() || ev.value.is_null() => &d.value,
            _ => &ev.value,
        };
        let f = ev.f.as_str();
        let fail = kind == EventType::Fail;
        let info = status == Status::Info;
        let opf: Option<OpF> = match model {
            ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv => match f {
                "read" | "get" => {
                    if fail || info {
                        None
                    } else if out_value.is_null() && dialect.nil_read_unknown {
                        Some(OpF::Read(UNKNOWN))
                    } else {
                        Some(OpF::Read(values.intern(out_value)))
                    }
                }
                "write" | "put" => {
                    if fail {
                        None
                    } else {
                        Some(OpF::Write(values.intern(&ev.value)))
                    }
                }
                "cas" => {
                    if model == ModelKind::Register {
                        return Err(bad(
                            "cas is not part of the register model (use cas-register)",
                        ));
                    }
                    let (a, b) = as_pair(&ev.value).ok_or_else(|| bad("cas needs [from, to]"))?;
                    if fail {
                        let observed = match dialect.failed_cas {
                            FailedCas::Observation => true,
                            FailedCas::OnPrecondition => done_ev
                                .as_ref()
                                .and_then(|d| d.error.as_deref())
                                .is_some_and(|e| e.contains("precondition")),
                        };
                        observed.then(|| OpF::CasFailed(values.intern(a)))
                    } else {
                        Some(OpF::Cas(values.intern(a), values.intern(b)))
                    }
                }
                other => {
                    return Err(bad(&format!(
                        "f {other:?} is not part of the {} model",
                        model.name()
                    )))
                }
            },
            ModelKind::AppendKv => match f {
                "read" | "get" => {
                    if fail || info {
                        None
                    } else if out_value.is_null() {
                        Some(OpF::Read(values.intern(&Value::String(String::new()))))
                    } else {
                        Some(OpF::Read(values.intern(out_value)))
                    }
                }
                "write" | "put" | "append" => {
                    if fail {
                        None
                    } else {
                        let s = match &ev.value {
                            Value::String(s) => s.clone(),
                            Value::Null => String::new(),
                            other => other.to_string(),
                        };
                        let v = values.intern(&Value::String(s));
                        Some(if f == "append" {
                            OpF::Append(v)
                        } else {
                            OpF::Write(v)
                        })
                    }
                }
                other => {
                    return Err(bad(&format!(
                        "f {other:?} is not part of the append-kv model"
                    )))
                }
            },
            ModelKind::MultiRegister => {
                if f != "txn" {
                    return Err(bad("multi-register ops must be txn"));
                }
                if fail {
                    None
                } else {
                    let Value::Array(items) = out_value else {
                        return Err(bad("txn value must be a list of [f register value]"));
                    };
                    let mut micro = Vec::with_capacity(items.len());
                    for it in items {
                        let Value::Array(t) = it else {
                            return Err(bad("txn micro-op must be [f register value]"));
                        };
                        if t.len() != 3 {
                            return Err(bad("txn micro-op must be [f register value]"));
                        }
                        let write = match t[0].as_str() {
                            Some("read" | "r") => false,
                            Some("write" | "w") => true,
                            _ => return Err(bad("txn micro-op f must be read or write")),
                        };
                        let name = match &t[1] {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        let reg = *reg_index.entry(name.clone()).or_insert_with(|| {
                            registers.push(name);
                            register_init.push(init);
                            (registers.len() - 1) as u32
                        });
                        if !write && (info || t[2].is_null()) {
                            continue; // unknown read: no constraint
                        }
                        micro.push(Micro {
                            write,
                            reg,
                            val: values.intern(&t[2]),
                        });
                    }
                    if micro.is_empty() || (info && micro.iter().all(|m| !m.write)) {
                        None
                    } else {
                        Some(OpF::Txn(micro.into_boxed_slice()))
                    }
                }
            }
            ModelKind::Mutex => match f {
                "acquire" | "lock" => (!fail).then_some(OpF::Acquire),
                "release" | "unlock" => (!fail).then_some(OpF::Release),
                other => return Err(bad(&format!("f {other:?} is not part of the mutex model"))),
            },
        };
        let Some(opf) = opf else { continue };
        let key = match (&ev.key, model) {
            (
                Some(k),
                ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv | ModelKind::AppendKv,
            ) => Some(*key_index.entry(k.clone()).or_insert_with(|| {
                keys.push(k.clone());
                (keys.len() - 1) as u32
            })),
            _ => None,
        };
        let p = match ev.process {
            Process::Client(p) => p,
            Process::Other(_) => unreachable!("nemesis events were skipped"),
        };
        ops.push(Op {
            id: ev.index,
            process: p,
            key,
            call: pos,
            ret,
            call_time: ev.time,
            ret_time,
            status,
            f: opf,
            line,
            ret_line,
        });
    }
    ops.sort_by_key(|o| o.call);
    Ok(History {
        file: file.to_string(),
        format: dialect.format,
        model,
        values,
        init,
        keys,
        registers,
        register_init,
        ops,
        invocations,
        events: n_events,
    })
}
