//! Seeded operation generators for the chaos harness.
//!
//! A run has `concurrency` client slots; each slot owns one [`Generator`]
//! built from the run seed and the slot number ([`Generator::new`]). The
//! sequence of op kinds, keys and written values a slot produces therefore
//! depends only on `(seed, slot)`, never on timing, so the same seed replays
//! the same workload even though real processes interleave differently.
//!
//! Written values are unique across the whole run (`"<slot>.<n>"`, and for
//! `append` `"<slot>.<n>;"`), which is what lets the checker take its fast
//! graph path and lets a person find the write a read observed.
//!
//! The one input that is not seeded is what the client saw: a `cas` names as
//! its `from` the value this slot last observed for the key (its own write,
//! a successful `cas`, or a read, reported with [`Generator::observe`]), so
//! that compare-and-set has a real chance to succeed under contention.
//!
//! ```
//! use workloads::{Generator, Op, WorkloadConfig, WorkloadKind};
//! let cfg = WorkloadConfig::new(WorkloadKind::Kv, 42);
//! let mut a = Generator::new(&cfg, 0).unwrap();
//! let mut b = Generator::new(&cfg, 0).unwrap();
//! for _ in 0..100 {
//!     assert_eq!(a.next_op(), b.next_op());
//! }
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// Errors in a workload configuration (reported to the user before a run).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WorkloadError {
    /// The workload name is not one of the known workloads.
    #[error("unknown workload {0:?} (expected register, kv, cas-register or append)")]
    UnknownWorkload(String),
    /// The key distribution name is not recognised.
    #[error("unknown key distribution {0:?} (expected uniform or zipfian)")]
    UnknownDistribution(String),
    /// An op mix could not be parsed.
    #[error("bad op mix {0:?}: expected a comma list of f=weight, e.g. read=2,write=1,cas=1")]
    BadMix(String),
    /// The op mix gives every allowed op a weight of zero.
    #[error("op mix has no op with a positive weight among {allowed}")]
    EmptyMix {
        /// The ops this workload can produce.
        allowed: String,
    },
    /// An op the workload cannot produce was given a weight.
    #[error("op {op:?} is not part of the {workload} workload (allowed: {allowed})")]
    OpNotInWorkload {
        /// The op named in the mix.
        op: String,
        /// The workload.
        workload: WorkloadKind,
        /// The ops this workload can produce.
        allowed: String,
    },
    /// A key count of zero.
    #[error("key count must be at least 1")]
    NoKeys,
    /// A zipfian exponent that is not a positive finite number.
    #[error("zipfian exponent must be a positive number, got {0}")]
    BadExponent(f64),
}

/// The datatype a run exercises; it decides the op kinds and the checker model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// One key, reads and writes: the classic read/write register.
    Register,
    /// Many keys, reads and writes (plus a little cas), keys uniform or zipfian.
    Kv,
    /// One key, reads, writes and compare-and-set (Jepsen's cas-register).
    CasRegister,
    /// Many keys, get/put/append as porcupine's kv model; append is a read
    /// followed by a cas on the client, retried on a precondition failure.
    Append,
}

impl WorkloadKind {
    /// Every workload, in the order the CLI lists them.
    pub const ALL: [WorkloadKind; 4] = [
        WorkloadKind::Register,
        WorkloadKind::Kv,
        WorkloadKind::CasRegister,
        WorkloadKind::Append,
    ];

    /// The name used on the command line, in `test.json` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Register => "register",
            WorkloadKind::Kv => "kv",
            WorkloadKind::CasRegister => "cas-register",
            WorkloadKind::Append => "append",
        }
    }

    /// The checker model name (`checker --model`) that fits this workload.
    pub fn checker_model(self) -> &'static str {
        match self {
            WorkloadKind::Register => "register",
            WorkloadKind::Kv => "kv",
            WorkloadKind::CasRegister => "cas-register",
            WorkloadKind::Append => "append-kv",
        }
    }

    /// Whether the workload uses many keys (and so `--key-count`).
    pub fn is_multi_key(self) -> bool {
        matches!(self, WorkloadKind::Kv | WorkloadKind::Append)
    }

    /// The op kinds this workload may produce.
    pub fn allowed_ops(self) -> &'static [OpKind] {
        match self {
            WorkloadKind::Register => &[OpKind::Read, OpKind::Write],
            WorkloadKind::Kv | WorkloadKind::CasRegister => {
                &[OpKind::Read, OpKind::Write, OpKind::Cas]
            }
            WorkloadKind::Append => &[OpKind::Read, OpKind::Write, OpKind::Append],
        }
    }

    /// The default op mix: read-heavy enough to observe stale state, with
    /// enough writes to make staleness likely.
    pub fn default_mix(self) -> OpMix {
        match self {
            WorkloadKind::Register => OpMix::new(1, 1, 0, 0),
            WorkloadKind::Kv => OpMix::new(2, 2, 1, 0),
            WorkloadKind::CasRegister => OpMix::new(1, 1, 1, 0),
            WorkloadKind::Append => OpMix::new(2, 1, 0, 2),
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WorkloadKind {
    type Err = WorkloadError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WorkloadKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| WorkloadError::UnknownWorkload(s.to_string()))
    }
}

/// The kind of an op, named as `f` in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    /// Read a key.
    Read,
    /// Overwrite a key.
    Write,
    /// Compare-and-set a key.
    Cas,
    /// Append a string to a key's value.
    Append,
}

impl OpKind {
    /// The history's `f`.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Write => "write",
            OpKind::Cas => "cas",
            OpKind::Append => "append",
        }
    }
}

impl FromStr for OpKind {
    type Err = WorkloadError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" | "get" => Ok(OpKind::Read),
            "write" | "put" => Ok(OpKind::Write),
            "cas" => Ok(OpKind::Cas),
            "append" => Ok(OpKind::Append),
            _ => Err(WorkloadError::BadMix(s.to_string())),
        }
    }
}

/// Relative weights of the op kinds (zero = never).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpMix {
    /// Weight of reads.
    pub read: u32,
    /// Weight of writes.
    pub write: u32,
    /// Weight of compare-and-sets.
    pub cas: u32,
    /// Weight of appends.
    pub append: u32,
}

impl OpMix {
    /// A mix from its four weights.
    pub const fn new(read: u32, write: u32, cas: u32, append: u32) -> Self {
        OpMix {
            read,
            write,
            cas,
            append,
        }
    }

    /// Parses `read=2,write=1,cas=1` (unnamed kinds get weight 0).
    pub fn parse(s: &str) -> Result<Self, WorkloadError> {
        let mut mix = OpMix::new(0, 0, 0, 0);
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| WorkloadError::BadMix(s.to_string()))?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| WorkloadError::BadMix(s.to_string()))?;
            let kind: OpKind = name
                .trim()
                .parse()
                .map_err(|_| WorkloadError::BadMix(s.to_string()))?;
            *mix.weight_mut(kind) = weight;
        }
        Ok(mix)
    }

    /// The weight of one op kind.
    pub fn weight(&self, kind: OpKind) -> u32 {
        match kind {
            OpKind::Read => self.read,
            OpKind::Write => self.write,
            OpKind::Cas => self.cas,
            OpKind::Append => self.append,
        }
    }

    fn weight_mut(&mut self, kind: OpKind) -> &mut u32 {
        match kind {
            OpKind::Read => &mut self.read,
            OpKind::Write => &mut self.write,
            OpKind::Cas => &mut self.cas,
            OpKind::Append => &mut self.append,
        }
    }
}

impl fmt::Display for OpMix {
    /// `read=2,write=1` (zero weights left out), parseable by [`OpMix::parse`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [OpKind::Read, OpKind::Write, OpKind::Cas, OpKind::Append]
            .into_iter()
            .filter(|k| self.weight(*k) > 0)
            .map(|k| format!("{}={}", k.name(), self.weight(k)))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// How keys are picked in the many-key workloads.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum KeyDist {
    /// Every key equally likely.
    Uniform,
    /// Key `i` (0-based) has weight `1 / (i+1)^s`: a few hot keys, as real
    /// traffic has, which concentrates conflicts.
    Zipfian {
        /// The exponent `s` (> 0; 1.0 is the classic choice).
        s: f64,
    },
}

impl KeyDist {
    /// The name used on the command line.
    pub fn name(&self) -> String {
        match self {
            KeyDist::Uniform => "uniform".to_string(),
            KeyDist::Zipfian { s } => format!("zipfian:{s}"),
        }
    }
}

impl FromStr for KeyDist {
    type Err = WorkloadError;
    /// `uniform`, `zipfian` (s = 1.0) or `zipfian:S`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s == "uniform" => Ok(KeyDist::Uniform),
            None if s == "zipfian" => Ok(KeyDist::Zipfian { s: 1.0 }),
            Some(("zipfian", exp)) => {
                let e: f64 = exp
                    .parse()
                    .map_err(|_| WorkloadError::UnknownDistribution(s.to_string()))?;
                Ok(KeyDist::Zipfian { s: e })
            }
            _ => Err(WorkloadError::UnknownDistribution(s.to_string())),
        }
    }
}

/// Everything that decides the ops of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadConfig {
    /// Which datatype.
    pub kind: WorkloadKind,
    /// The run seed (each slot derives its own stream from it).
    pub seed: u64,
    /// Number of keys for the many-key workloads (ignored by the registers).
    pub key_count: usize,
    /// Key popularity for the many-key workloads.
    pub key_dist: KeyDist,
    /// Relative op weights.
    pub mix: OpMix,
}

impl WorkloadConfig {
    /// The default configuration of a workload: 8 uniform keys, the
    /// workload's default mix.
    pub fn new(kind: WorkloadKind, seed: u64) -> Self {
        WorkloadConfig {
            kind,
            seed,
            key_count: 8,
            key_dist: KeyDist::Uniform,
            mix: kind.default_mix(),
        }
    }

    /// Checks the configuration; every generator calls it.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        let allowed = self
            .kind
            .allowed_ops()
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", ");
        for kind in [OpKind::Read, OpKind::Write, OpKind::Cas, OpKind::Append] {
            if self.mix.weight(kind) > 0 && !self.kind.allowed_ops().contains(&kind) {
                return Err(WorkloadError::OpNotInWorkload {
                    op: kind.name().to_string(),
                    workload: self.kind,
                    allowed,
                });
            }
        }
        if self
            .kind
            .allowed_ops()
            .iter()
            .all(|k| self.mix.weight(*k) == 0)
        {
            return Err(WorkloadError::EmptyMix { allowed });
        }
        if self.key_count == 0 {
            return Err(WorkloadError::NoKeys);
        }
        if let KeyDist::Zipfian { s } = self.key_dist {
            if !(s.is_finite() && s > 0.0) {
                return Err(WorkloadError::BadExponent(s));
            }
        }
        Ok(())
    }

    /// The keys this run uses, in order (`"k0"`, `"k1"`, …; the registers use
    /// the single key `"r"`). The harness reads every one at the end.
    pub fn keys(&self) -> Vec<String> {
        if self.kind.is_multi_key() {
            (0..self.key_count).map(|i| format!("k{i}")).collect()
        } else {
            vec!["r".to_string()]
        }
    }
}

/// One operation to perform. Keys and values are strings, as the node's API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Read `key`.
    Read {
        /// The key.
        key: String,
    },
    /// Set `key` to `value`.
    Write {
        /// The key.
        key: String,
        /// The run-unique value.
        value: String,
    },
    /// If `key` holds `from` (`None`: absent), set it to `to`.
    Cas {
        /// The key.
        key: String,
        /// The expected current value.
        from: Option<String>,
        /// The run-unique new value.
        to: String,
    },
    /// Append `value` to `key`'s value (absent counts as empty).
    Append {
        /// The key.
        key: String,
        /// The run-unique suffix.
        value: String,
    },
}

impl Op {
    /// The op's kind.
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Read { .. } => OpKind::Read,
            Op::Write { .. } => OpKind::Write,
            Op::Cas { .. } => OpKind::Cas,
            Op::Append { .. } => OpKind::Append,
        }
    }

    /// The key the op touches.
    pub fn key(&self) -> &str {
        match self {
            Op::Read { key }
            | Op::Write { key, .. }
            | Op::Cas { key, .. }
            | Op::Append { key, .. } => key,
        }
    }

    /// The history `value` of the invoke event: `null` for a read, the value
    /// for a write or append, `[from, to]` for a cas.
    pub fn invoke_value(&self) -> serde_json::Value {
        match self {
            Op::Read { .. } => serde_json::Value::Null,
            Op::Write { value, .. } | Op::Append { value, .. } => value.clone().into(),
            Op::Cas { from, to, .. } => serde_json::json!([from, to]),
        }
    }
}

/// Samples key indexes under a [`KeyDist`] by inverse CDF.
#[derive(Debug, Clone)]
struct KeySampler {
    /// Cumulative weights, normalized so the last one is 1.0.
    cdf: Vec<f64>,
}

impl KeySampler {
    fn new(n: usize, dist: KeyDist) -> Self {
        let weights: Vec<f64> = (0..n)
            .map(|i| match dist {
                KeyDist::Uniform => 1.0,
                KeyDist::Zipfian { s } => 1.0 / ((i + 1) as f64).powf(s),
            })
            .collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        if let Some(last) = cdf.last_mut() {
            *last = 1.0;
        }
        KeySampler { cdf }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> usize {
        let u: f64 = rng.gen();
        self.cdf
            .partition_point(|c| *c <= u)
            .min(self.cdf.len() - 1)
    }
}

/// The op stream of one client slot.
#[derive(Debug, Clone)]
pub struct Generator {
    kind: WorkloadKind,
    slot: usize,
    rng: ChaCha8Rng,
    keys: Vec<String>,
    sampler: KeySampler,
    /// The op kinds with their cumulative weights.
    table: Vec<(OpKind, u32)>,
    total_weight: u32,
    /// Next value counter of this slot.
    next_value: u64,
    /// The value this slot last observed per key (`None`: absent).
    last_seen: HashMap<String, Option<String>>,
}

impl Generator {
    /// The generator of client slot `slot`; its stream depends only on
    /// `(cfg, slot)`.
    pub fn new(cfg: &WorkloadConfig, slot: usize) -> Result<Self, WorkloadError> {
        cfg.validate()?;
        let keys = cfg.keys();
        let sampler = KeySampler::new(keys.len(), cfg.key_dist);
        let mut acc = 0;
        let table = cfg
            .kind
            .allowed_ops()
            .iter()
            .filter(|k| cfg.mix.weight(**k) > 0)
            .map(|k| {
                acc += cfg.mix.weight(*k);
                (*k, acc)
            })
            .collect();
        // Mix the slot into the seed with a large odd constant so nearby
        // slots get unrelated streams.
        let slot_seed = cfg
            .seed
            .wrapping_add((slot as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        Ok(Generator {
            kind: cfg.kind,
            slot,
            rng: ChaCha8Rng::seed_from_u64(slot_seed),
            keys,
            sampler,
            table,
            total_weight: acc,
            next_value: 0,
            last_seen: HashMap::new(),
        })
    }

    /// The slot this generator belongs to.
    pub fn slot(&self) -> usize {
        self.slot
    }

    fn fresh_value(&mut self) -> String {
        let v = format!("{}.{}", self.slot, self.next_value);
        self.next_value += 1;
        v
    }

    /// The next op of this slot.
    pub fn next_op(&mut self) -> Op {
        let roll = self.rng.gen_range(0..self.total_weight);
        let kind = self
            .table
            .iter()
            .find(|(_, cum)| roll < *cum)
            .map(|(k, _)| *k)
            .expect("roll is below the total weight");
        let key = self.keys[self.sampler.sample(&mut self.rng)].clone();
        match kind {
            OpKind::Read => Op::Read { key },
            OpKind::Write => Op::Write {
                value: self.fresh_value(),
                key,
            },
            OpKind::Cas => {
                let from = self.last_seen.get(&key).cloned().flatten();
                Op::Cas {
                    from,
                    to: self.fresh_value(),
                    key,
                }
            }
            OpKind::Append => {
                // The trailing separator keeps the concatenation readable
                // and each appended element identifiable.
                let mut value = self.fresh_value();
                value.push(';');
                Op::Append { key, value }
            }
        }
    }

    /// Tells the generator what the client saw `key` hold (after a read,
    /// a write or a successful cas), so the next cas on it can succeed.
    pub fn observe(&mut self, key: &str, value: Option<&str>) {
        if self.kind == WorkloadKind::Append {
            return;
        }
        self.last_seen
            .insert(key.to_string(), value.map(str::to_string));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn written(op: &Op) -> Option<String> {
        match op {
            Op::Write { value, .. } | Op::Append { value, .. } => Some(value.clone()),
            Op::Cas { to, .. } => Some(to.clone()),
            Op::Read { .. } => None,
        }
    }

    #[test]
    fn same_seed_and_slot_give_the_same_ops() {
        for kind in WorkloadKind::ALL {
            let cfg = WorkloadConfig::new(kind, 7);
            let a: Vec<Op> = {
                let mut g = Generator::new(&cfg, 3).unwrap();
                (0..500).map(|_| g.next_op()).collect()
            };
            let b: Vec<Op> = {
                let mut g = Generator::new(&cfg, 3).unwrap();
                (0..500).map(|_| g.next_op()).collect()
            };
            assert_eq!(a, b, "{kind}");
        }
    }

    #[test]
    fn different_seeds_or_slots_give_different_ops() {
        let cfg = WorkloadConfig::new(WorkloadKind::Kv, 7);
        let ops = |cfg: &WorkloadConfig, slot| -> Vec<Op> {
            let mut g = Generator::new(cfg, slot).unwrap();
            (0..100).map(|_| g.next_op()).collect()
        };
        let base = ops(&cfg, 0);
        assert_ne!(
            base.iter().map(Op::kind).collect::<Vec<_>>(),
            ops(&cfg, 1).iter().map(Op::kind).collect::<Vec<_>>()
        );
        let other = WorkloadConfig::new(WorkloadKind::Kv, 8);
        assert_ne!(
            base.iter().map(Op::key).collect::<Vec<_>>(),
            ops(&other, 0).iter().map(Op::key).collect::<Vec<_>>()
        );
    }

    #[test]
    fn written_values_are_unique_across_slots() {
        for kind in WorkloadKind::ALL {
            let cfg = WorkloadConfig::new(kind, 1);
            let mut seen = HashSet::new();
            for slot in 0..16 {
                let mut g = Generator::new(&cfg, slot).unwrap();
                for _ in 0..300 {
                    if let Some(v) = written(&g.next_op()) {
                        assert!(seen.insert(v.clone()), "{kind}: duplicate {v}");
                    }
                }
            }
            assert!(seen.len() > 100, "{kind} wrote too little");
        }
    }

    #[test]
    fn every_op_kind_of_the_workload_appears_and_no_other() {
        for kind in WorkloadKind::ALL {
            let cfg = WorkloadConfig::new(kind, 5);
            let mut g = Generator::new(&cfg, 0).unwrap();
            let seen: HashSet<OpKind> = (0..1000).map(|_| g.next_op().kind()).collect();
            let allowed: HashSet<OpKind> = kind.allowed_ops().iter().copied().collect();
            assert_eq!(seen, allowed, "{kind}");
        }
    }

    #[test]
    fn registers_use_one_key_and_kv_uses_all_keys() {
        let cfg = WorkloadConfig::new(WorkloadKind::Register, 5);
        let mut g = Generator::new(&cfg, 0).unwrap();
        assert!((0..200).all(|_| g.next_op().key() == "r"));
        let mut cfg = WorkloadConfig::new(WorkloadKind::Kv, 5);
        cfg.key_count = 5;
        let mut g = Generator::new(&cfg, 0).unwrap();
        let keys: HashSet<String> = (0..500).map(|_| g.next_op().key().to_string()).collect();
        assert_eq!(keys.len(), 5);
        assert_eq!(cfg.keys(), vec!["k0", "k1", "k2", "k3", "k4"]);
    }

    #[test]
    fn zipfian_makes_the_first_key_hottest() {
        let mut cfg = WorkloadConfig::new(WorkloadKind::Kv, 9);
        cfg.key_count = 10;
        cfg.key_dist = "zipfian".parse().unwrap();
        let mut g = Generator::new(&cfg, 0).unwrap();
        let mut counts = HashMap::new();
        for _ in 0..5000 {
            *counts.entry(g.next_op().key().to_string()).or_insert(0) += 1;
        }
        // Expected share of k0 with s = 1 and 10 keys is 1/H(10) ≈ 34 %;
        // k9's is ≈ 3.4 %.
        assert!(counts["k0"] > 1400, "{counts:?}");
        assert!(counts["k0"] > 4 * counts["k9"], "{counts:?}");
    }

    #[test]
    fn cas_uses_the_last_observed_value() {
        let mut cfg = WorkloadConfig::new(WorkloadKind::CasRegister, 3);
        cfg.mix = OpMix::new(0, 0, 1, 0);
        let mut g = Generator::new(&cfg, 2).unwrap();
        assert!(matches!(g.next_op(), Op::Cas { from: None, .. }));
        g.observe("r", Some("x"));
        match g.next_op() {
            Op::Cas { from, to, .. } => {
                assert_eq!(from.as_deref(), Some("x"));
                assert_eq!(to, "2.1");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn mix_parsing_and_validation() {
        assert_eq!(
            OpMix::parse("read=2, write=1,cas=3").unwrap(),
            OpMix::new(2, 1, 3, 0)
        );
        let mix = OpMix::new(2, 0, 1, 0);
        assert_eq!(mix.to_string(), "read=2,cas=1");
        assert_eq!(OpMix::parse(&mix.to_string()).unwrap(), mix);
        assert!(OpMix::parse("read").is_err());
        assert!(OpMix::parse("frob=1").is_err());
        let mut cfg = WorkloadConfig::new(WorkloadKind::Register, 0);
        cfg.mix = OpMix::new(1, 0, 1, 0);
        assert!(matches!(
            cfg.validate(),
            Err(WorkloadError::OpNotInWorkload { .. })
        ));
        cfg.mix = OpMix::new(0, 0, 0, 0);
        assert!(matches!(
            cfg.validate(),
            Err(WorkloadError::EmptyMix { .. })
        ));
        let mut cfg = WorkloadConfig::new(WorkloadKind::Kv, 0);
        cfg.key_count = 0;
        assert_eq!(cfg.validate(), Err(WorkloadError::NoKeys));
        assert!("zipfian:0.8".parse::<KeyDist>().is_ok());
        assert!("pareto".parse::<KeyDist>().is_err());
        assert!("bogus".parse::<WorkloadKind>().is_err());
        assert_eq!(
            "cas-register".parse::<WorkloadKind>(),
            Ok(WorkloadKind::CasRegister)
        );
    }

    #[test]
    fn invoke_values_follow_the_history_format() {
        let cas = Op::Cas {
            key: "k".into(),
            from: None,
            to: "1.0".into(),
        };
        assert_eq!(cas.invoke_value(), serde_json::json!([null, "1.0"]));
        let read = Op::Read { key: "k".into() };
        assert_eq!(read.invoke_value(), serde_json::Value::Null);
    }
}
