//! Generated register histories of a chosen shape: many processes, many
//! operations ending `info`, compare-and-set, and optionally one injected
//! stale or future read. Valid by construction: every operation takes effect
//! at one instant between its invocation and its completion (an `info` one
//! takes effect or not, at random), on a sequential map of registers.

use formats::history::{Event, EventType, Process};
use formats::Numbered;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// What to inject into a valid history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// A read in the second half returns the value of a write that another
    /// completed write overwrote before the read began.
    Stale,
    /// A read in the second half returns the value of a write invoked after
    /// the read completed.
    Future,
    /// A read in the second half, with no write or cas overlapping it,
    /// becomes a cas from the value it read that failed: linearizable only
    /// if some `info` op can have changed the value just before it.
    FailedCas,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::None => "valid",
            Fault::Stale => "stale read",
            Fault::Future => "future read",
            Fault::FailedCas => "failed cas that should have succeeded",
        }
    }
}

/// The shape of a generated history.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub ops: usize,
    pub procs: u64,
    pub keys: usize,
    /// Share of writes and cas that end `info` (half of those took effect).
    pub info: f64,
    /// Share of cas among all ops; the rest is 3/7 writes, 4/7 reads.
    pub cas: f64,
    pub fault: Fault,
    pub seed: u64,
}

impl Shape {
    /// A short description for tables: "3000 ops, 10 procs, 1 key, 30 % info, valid".
    pub fn label(&self) -> String {
        format!(
            "{} ops, {} procs, {} key{}, {:.0} % info, {}",
            self.ops,
            self.procs,
            self.keys,
            if self.keys == 1 { "" } else { "s" },
            self.info * 100.0,
            self.fault.name()
        )
    }
}

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
    read: Option<u64>,
    cas_ok: bool,
    info: bool,
    /// An `info` op that never takes effect.
    never: bool,
}

fn value_of(k: Kind) -> Value {
    match k {
        Kind::Read => Value::Null,
        Kind::Write(v) => json!(v),
        Kind::Cas(a, b) => json!([a, b]),
    }
}

fn name(k: Kind) -> &'static str {
    match k {
        Kind::Read => "read",
        Kind::Write(_) => "write",
        Kind::Cas(..) => "cas",
    }
}

/// Generates the events of a history of this shape (our JSONL event type,
/// keys `k0`, `k1`, …; a failed cas carries `error: "precondition"`).
pub fn generate(shape: &Shape) -> Vec<Numbered<Event>> {
    let mut rng = ChaCha8Rng::seed_from_u64(shape.seed);
    let keys = shape.keys.max(1);
    let mut state: Vec<Option<u64>> = vec![None; keys];
    // The last values each key held, for cas that expect a recent value.
    let mut recent: Vec<Vec<Option<u64>>> = vec![vec![None]; keys];
    let mut open: Vec<Option<Open>> = (0..shape.procs).map(|_| None).collect();
    let mut process: Vec<u64> = (0..shape.procs).collect();
    let mut fresh = shape.procs;
    let mut next_value = 0u64;
    let mut events: Vec<Numbered<Event>> = Vec::with_capacity(shape.ops * 2 + 64);
    let mut invoked = 0usize;
    let push = |events: &mut Vec<Numbered<Event>>,
                p: u64,
                kind: EventType,
                k: Kind,
                key: usize,
                value: Value,
                error: Option<&str>| {
        let index = events.len() as u64;
        events.push(Numbered {
            line: events.len() + 1,
            event: Event {
                index,
                time: Some((index + 1) * 1000),
                process: Process::Client(p),
                kind,
                f: name(k).to_string(),
                key: Some(format!("k{key}")),
                value,
                node: None,
                error: error.map(str::to_string),
            },
        });
    };
    loop {
        let w = rng.gen_range(0..shape.procs as usize);
        let Some(mut o) = open[w].take() else {
            if invoked >= shape.ops {
                if open.iter().all(Option::is_none) {
                    break;
                }
                continue;
            }
            invoked += 1;
            let key = rng.gen_range(0..keys);
            let roll: f64 = rng.gen();
            let write_share = (1.0 - shape.cas) * 3.0 / 7.0;
            let kind = if roll < shape.cas {
                next_value += 1;
                let from = if rng.gen_bool(0.5) {
                    state[key]
                } else {
                    let r = &recent[key];
                    r[rng.gen_range(0..r.len())]
                };
                // Expecting "absent" is written as expecting 0, a value
                // nobody writes (porcupine's log format has no nil in a cas).
                Kind::Cas(Some(from.unwrap_or(0)), next_value)
            } else if roll < shape.cas + write_share {
                next_value += 1;
                Kind::Write(next_value)
            } else {
                Kind::Read
            };
            let info = kind != Kind::Read && rng.gen_bool(shape.info);
            let p = process[w];
            push(
                &mut events,
                p,
                EventType::Invoke,
                kind,
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
                info,
                never: info && rng.gen_bool(0.5),
            });
            continue;
        };
        if !o.applied && !o.never {
            // The linearization point.
            let k = o.key;
            match o.kind {
                Kind::Read => o.read = state[k],
                Kind::Write(v) => state[k] = Some(v),
                Kind::Cas(a, b) => {
                    o.cas_ok = state[k] == a;
                    if o.cas_ok {
                        state[k] = Some(b);
                    }
                }
            }
            if state[k] != *recent[k].last().unwrap_or(&None) {
                recent[k].push(state[k]);
                if recent[k].len() > 8 {
                    recent[k].remove(0);
                }
            }
            o.applied = true;
            open[w] = Some(o);
            continue;
        }
        let (p, k, kind) = (o.process, o.key, o.kind);
        if o.info {
            push(
                &mut events,
                p,
                EventType::Info,
                kind,
                k,
                value_of(kind),
                None,
            );
            // Jepsen gives the worker a fresh process after an info.
            process[w] = fresh;
            fresh += 1;
        } else {
            match kind {
                Kind::Read => {
                    let v = o.read.map_or(Value::Null, |v| json!(v));
                    push(&mut events, p, EventType::Ok, kind, k, v, None);
                }
                Kind::Cas(..) if !o.cas_ok => push(
                    &mut events,
                    p,
                    EventType::Fail,
                    kind,
                    k,
                    value_of(kind),
                    Some("precondition"),
                ),
                _ => push(&mut events, p, EventType::Ok, kind, k, value_of(kind), None),
            }
        }
    }
    if shape.fault != Fault::None {
        inject(&mut events, shape.fault);
    }
    events
}

/// One op of the generated history, for choosing where to inject a fault.
struct Span {
    key: Option<String>,
    call: usize,
    ret: usize,
    /// The value an ok write or ok cas left.
    wrote: Option<Value>,
    read: bool,
}

fn spans(events: &[Numbered<Event>]) -> Vec<Span> {
    let mut open: std::collections::HashMap<u64, usize> = Default::default();
    let mut out: Vec<Span> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let e = &e.event;
        let Process::Client(p) = e.process else {
            continue;
        };
        if e.kind == EventType::Invoke {
            open.insert(p, out.len());
            out.push(Span {
                key: e.key.clone(),
                call: i,
                ret: usize::MAX,
                wrote: None,
                read: false,
            });
            continue;
        }
        let Some(j) = open.remove(&p) else { continue };
        if e.kind != EventType::Ok {
            continue;
        }
        let s = &mut out[j];
        s.ret = i;
        match e.f.as_str() {
            "write" => s.wrote = Some(e.value.clone()),
            "cas" => s.wrote = e.value.get(1).cloned(),
            _ => s.read = true,
        }
    }
    out
}

/// Rewrites the result of one read in the second half of the history so that
/// no linearization exists (values are unique, so the read names its write).
fn inject(events: &mut [Numbered<Event>], fault: Fault) {
    let s = spans(events);
    let same_key = |a: &Span, b: &Span| a.key == b.key;
    for r in s.iter().skip(s.len() / 2).filter(|r| r.read) {
        let value = match fault {
            Fault::Stale => s
                .iter()
                .rev()
                .filter(|w| w.wrote.is_some() && same_key(w, r) && w.ret < r.call)
                .find(|w| {
                    s.iter().any(|w2| {
                        w2.wrote.is_some() && same_key(w2, r) && w.ret < w2.call && w2.ret < r.call
                    })
                })
                .and_then(|w| w.wrote.clone()),
            Fault::Future => s
                .iter()
                .find(|w| w.wrote.is_some() && same_key(w, r) && w.call > r.ret)
                .and_then(|w| w.wrote.clone()),
            Fault::FailedCas => {
                let quiet = !s.iter().any(|w| {
                    w.wrote.is_some() && same_key(w, r) && w.call < r.ret && w.ret > r.call
                });
                let v = &events[r.ret].event.value;
                if quiet && !v.is_null() {
                    let cas = json!([v.clone(), 999_999_999u64]);
                    for at in [r.call, r.ret] {
                        let e = &mut events[at].event;
                        e.f = "cas".into();
                        e.value = cas.clone();
                    }
                    events[r.ret].event.kind = EventType::Fail;
                    events[r.ret].event.error = Some("precondition".into());
                    return;
                }
                None
            }
            Fault::None => None,
        };
        if let Some(v) = value {
            events[r.ret].event.value = v;
            return;
        }
    }
    panic!("no read to inject a {} into", fault.name());
}

/// The history as our JSONL.
pub fn to_jsonl(events: &[Numbered<Event>]) -> String {
    let mut out = String::new();
    for e in events {
        out.push_str(&serde_json::to_string(&e.event).expect("serializable"));
        out.push('\n');
    }
    out
}
