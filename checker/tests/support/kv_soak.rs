//! A long kv history generated on the fly, event by event, in the shape
//! of a default `harness run` under faults: several keys, a few client
//! processes, reads, writes and compare-and-set (2:2:1, the kv workload's
//! mix), values unique across the run (`"<worker>.<n>"`), a cas expecting
//! the value its worker last saw for the key (so many fail their
//! precondition), and some writes and cas timing out (`info`, half of them
//! taking effect; the worker then gets a fresh process, as in Jepsen).
//!
//! The generator holds only the open operations and a few values per key,
//! so a history of any length streams to a file in constant memory. It is
//! valid by construction (each op takes effect at one instant between its
//! invocation and its completion, an `info` one possibly never); with
//! [`KvSoak::stale_at`] one read returns a value overwritten by a write
//! that completed before the read began.
//!
//! Shared by the checker's streaming tests and its long-history benchmark.

use formats::history::{Event, EventType, Process};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Read,
    Write,
    Cas,
}

struct Open {
    process: u64,
    key: usize,
    kind: Kind,
    /// Written value (write: the value; cas: `[from, to]`).
    value: Value,
    applied: bool,
    result: Value,
    cas_ok: bool,
    info: bool,
    /// An `info` op that never takes effect.
    never: bool,
    /// Steps left before a timed-out op reports `info`.
    wait: u32,
    /// This read returns a stale value.
    stale: bool,
}

/// A value some op set on a key, and whether its op has completed.
#[derive(Clone)]
struct Set {
    value: Value,
    done: bool,
}

/// The shape of a generated kv history.
#[derive(Debug, Clone, Copy)]
pub struct KvShape {
    pub ops: u64,
    pub procs: usize,
    pub keys: usize,
    /// Share of writes and cas that time out (`info`).
    pub info: f64,
    pub seed: u64,
}

impl Default for KvShape {
    fn default() -> Self {
        KvShape {
            ops: 1_000_000,
            procs: 10,
            keys: 8,
            info: 0.02,
            seed: 7,
        }
    }
}

/// The events of one history, generated lazily.
pub struct KvSoak {
    shape: KvShape,
    rng: ChaCha8Rng,
    state: Vec<Value>,
    /// The last values set per key, newest last (for stale reads).
    sets: Vec<Vec<Set>>,
    /// What each worker last saw per key (a cas expects it).
    seen: Vec<Vec<Value>>,
    open: Vec<Option<Open>>,
    process: Vec<u64>,
    fresh: u64,
    counter: Vec<u64>,
    invoked: u64,
    index: u64,
    stale_at: Option<u64>,
    /// The op number a stale read was planted at, once planted.
    pub planted: Option<u64>,
}

impl KvSoak {
    pub fn new(shape: KvShape) -> Self {
        KvSoak {
            rng: ChaCha8Rng::seed_from_u64(shape.seed),
            state: vec![Value::Null; shape.keys],
            sets: vec![Vec::new(); shape.keys],
            seen: vec![vec![Value::Null; shape.keys]; shape.procs],
            open: (0..shape.procs).map(|_| None).collect(),
            process: (0..shape.procs as u64).collect(),
            fresh: shape.procs as u64,
            counter: vec![0; shape.procs],
            invoked: 0,
            index: 0,
            stale_at: None,
            planted: None,
            shape,
        }
    }

    /// Plants a stale read at the first read invoked from op number `n` on
    /// whose key two completed writes follow each other.
    pub fn stale_at(mut self, n: u64) -> Self {
        self.stale_at = Some(n);
        self
    }

    fn event(&mut self, p: u64, kind: EventType, f: &str, key: usize, value: Value) -> Event {
        let index = self.index;
        self.index += 1;
        Event {
            index,
            time: Some((index + 1) * 250_000),
            process: Process::Client(p),
            kind,
            f: f.to_string(),
            key: Some(format!("k{key}")),
            value,
            node: Some(index % 5 + 1),
            error: None,
        }
    }

    fn invoke(&mut self, w: usize) -> Event {
        self.invoked += 1;
        let key = self.rng.gen_range(0..self.shape.keys);
        let roll = self.rng.gen_range(0..5);
        let kind = match roll {
            0 | 1 => Kind::Read,
            2 | 3 => Kind::Write,
            _ => Kind::Cas,
        };
        let mut fresh_value = || {
            self.counter[w] += 1;
            json!(format!("{w}.{}", self.counter[w]))
        };
        let value = match kind {
            Kind::Read => Value::Null,
            Kind::Write => fresh_value(),
            Kind::Cas => {
                let to = fresh_value();
                json!([self.seen[w][key].clone(), to])
            }
        };
        let info = kind != Kind::Read && self.rng.gen_bool(self.shape.info);
        let stale = kind == Kind::Read
            && self.planted.is_none()
            && self.stale_at.is_some_and(|n| self.invoked >= n)
            && self.sets[key].iter().filter(|s| s.done).count() >= 2;
        if stale {
            self.planted = Some(self.invoked);
        }
        let never = info && self.rng.gen_bool(0.5);
        let p = self.process[w];
        let f = match kind {
            Kind::Read => "read",
            Kind::Write => "write",
            Kind::Cas => "cas",
        };
        let ev = self.event(p, EventType::Invoke, f, key, value.clone());
        self.open[w] = Some(Open {
            process: p,
            key,
            kind,
            value,
            applied: false,
            result: Value::Null,
            cas_ok: false,
            info,
            never,
            wait: if info { self.rng.gen_range(20..200) } else { 0 },
            stale,
        });
        ev
    }

    fn apply(&mut self, o: &mut Open) {
        let k = o.key;
        let set = |state: &mut Vec<Value>, sets: &mut Vec<Vec<Set>>, v: Value| {
            state[k] = v.clone();
            sets[k].push(Set {
                value: v,
                done: false,
            });
            if sets[k].len() > 8 {
                sets[k].remove(0);
            }
        };
        match o.kind {
            Kind::Read => {
                o.result = if o.stale {
                    // The older of the last two completed values set.
                    let done: Vec<&Set> = self.sets[k].iter().filter(|s| s.done).collect();
                    done[done.len() - 2].value.clone()
                } else {
                    self.state[k].clone()
                };
            }
            Kind::Write => set(&mut self.state, &mut self.sets, o.value.clone()),
            Kind::Cas => {
                o.cas_ok = self.state[k] == o.value[0];
                if o.cas_ok {
                    set(&mut self.state, &mut self.sets, o.value[1].clone());
                }
            }
        }
        o.applied = true;
    }

    fn complete(&mut self, w: usize, o: Open) -> Event {
        let (p, k) = (o.process, o.key);
        let f = match o.kind {
            Kind::Read => "read",
            Kind::Write => "write",
            Kind::Cas => "cas",
        };
        if o.info {
            self.process[w] = self.fresh;
            self.fresh += 1;
            let mut ev = self.event(p, EventType::Info, f, k, o.value);
            ev.error = Some("timeout".into());
            return ev;
        }
        // The value it set is now known to have completed.
        let written = match o.kind {
            Kind::Write => Some(o.value.clone()),
            Kind::Cas if o.cas_ok => Some(o.value[1].clone()),
            _ => None,
        };
        if let Some(v) = &written {
            if let Some(s) = self.sets[k].iter_mut().find(|s| &s.value == v) {
                s.done = true;
            }
        }
        match o.kind {
            Kind::Read => {
                if !o.stale {
                    self.seen[w][k] = o.result.clone();
                }
                self.event(p, EventType::Ok, f, k, o.result)
            }
            Kind::Cas if !o.cas_ok => {
                let mut ev = self.event(p, EventType::Fail, f, k, o.value);
                ev.error = Some("precondition".into());
                ev
            }
            _ => {
                self.seen[w][k] = written.unwrap_or(Value::Null);
                self.event(p, EventType::Ok, f, k, o.value)
            }
        }
    }
}

impl Iterator for KvSoak {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        loop {
            let w = self.rng.gen_range(0..self.shape.procs);
            let Some(mut o) = self.open[w].take() else {
                if self.invoked >= self.shape.ops {
                    if self.open.iter().all(Option::is_none) {
                        return None;
                    }
                    continue;
                }
                return Some(self.invoke(w));
            };
            if !o.applied && !o.never && (o.wait == 0 || self.rng.gen_bool(0.05)) {
                self.apply(&mut o);
                self.open[w] = Some(o);
                continue;
            }
            if o.wait > 1 {
                o.wait -= 1;
                self.open[w] = Some(o);
                continue;
            }
            return Some(self.complete(w, o));
        }
    }
}
