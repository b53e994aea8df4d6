//! Property tests: the checker against a brute-force search over all orders,
//! valid-by-construction histories, injected stale and future reads, the
//! graph fast path against the search, and parser fuzzing.

use checker::history::{self, Dialect, FailedCas, History};
use checker::{check_history, parse, CheckOptions, Format, ModelKind, Validity};
use formats::history::{Event, EventType, Process};
use formats::Numbered;
use proptest::prelude::*;
use serde_json::{json, Value};

/// A generated op: one process per op, so "one open op per process" holds.
#[derive(Debug, Clone)]
struct GenOp {
    key: u8,
    /// 0 read, 1 write, 2 cas.
    f: u8,
    a: u8,
    b: u8,
    call: u32,
    len: u32,
    /// 0 ok, 1 info, 2 fail (precondition; only for cas).
    status: u8,
}

fn gen_op(max_key: u8, max_val: u8, cas: bool) -> impl Strategy<Value = GenOp> {
    (
        0..max_key,
        0..if cas { 3u8 } else { 2 },
        0..max_val,
        0..max_val,
        0..40u32,
        1..15u32,
        prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
    )
        .prop_map(|(key, f, a, b, call, len, status)| GenOp {
            key,
            f,
            a,
            b,
            call,
            len,
            status: if status == 2 && f != 2 { 0 } else { status },
        })
}

fn dialect() -> Dialect {
    Dialect {
        format: Format::Jsonl,
        nil_read_unknown: false,
        failed_cas: FailedCas::OnPrecondition,
    }
}

/// Turns generated ops into JSONL-like events ordered by time.
fn to_history(ops: &[GenOp], model: ModelKind) -> History {
    let mut evs: Vec<(u32, u8, usize)> = Vec::new(); // (time, 0 call / 1 ret, op)
    for (i, o) in ops.iter().enumerate() {
        evs.push((o.call * 2, 0, i));
        evs.push(((o.call + o.len) * 2 + 1, 1, i));
    }
    evs.sort();
    let mut raw = Vec::new();
    for (t, kind, i) in evs {
        let o = &ops[i];
        let f = ["read", "write", "cas"][o.f as usize];
        let value = match (o.f, kind) {
            (0, 0) => Value::Null,
            (0, _) => {
                if o.a == 0 {
                    Value::Null
                } else {
                    json!(o.a)
                }
            }
            (1, _) => json!(o.b + 1),
            _ => json!([if o.a == 0 { Value::Null } else { json!(o.a) }, o.b + 1]),
        };
        let (kind, error) = match (kind, o.status) {
            (0, _) => (EventType::Invoke, None),
            (_, 0) => (EventType::Ok, None),
            (_, 1) => (EventType::Info, None),
            _ => (EventType::Fail, Some("precondition".to_string())),
        };
        let event = Event {
            index: raw.len() as u64,
            time: Some(u64::from(t)),
            process: Process::Client(i as u64),
            kind,
            f: f.to_string(),
            key: Some(format!("k{}", o.key)),
            value,
            node: None,
            error,
        };
        raw.push(Numbered {
            line: raw.len() + 1,
            event,
        });
    }
    history::build("generated", dialect(), raw, Some(model), None).expect("valid history")
}

/// Brute force: try every subset of info ops and every order respecting real time.
fn brute_force(h: &History) -> bool {
    let n = h.ops.len();
    let infos: Vec<usize> = (0..n).filter(|&i| h.ops[i].ret == u64::MAX).collect();
    for mask in 0..(1u32 << infos.len()) {
        let chosen: Vec<usize> = (0..n)
            .filter(|&i| match infos.iter().position(|&x| x == i) {
                Some(p) => mask & (1 << p) != 0,
                None => true,
            })
            .collect();
        let mut used = vec![false; chosen.len()];
        let mut order = Vec::new();
        if permute(h, &chosen, &mut used, &mut order) {
            return true;
        }
    }
    false
}

fn permute(h: &History, chosen: &[usize], used: &mut [bool], order: &mut Vec<usize>) -> bool {
    if order.len() == chosen.len() {
        return legal(h, order);
    }
    for j in 0..chosen.len() {
        if used[j] {
            continue;
        }
        let o = &h.ops[chosen[j]];
        // Every unused op that returned before o's call must come first.
        let blocked =
            (0..chosen.len()).any(|k| !used[k] && k != j && h.ops[chosen[k]].ret < o.call);
        if blocked {
            continue;
        }
        used[j] = true;
        order.push(chosen[j]);
        if permute(h, chosen, used, order) {
            return true;
        }
        order.pop();
        used[j] = false;
    }
    false
}

fn legal(h: &History, order: &[usize]) -> bool {
    use checker::history::OpF;
    let mut state: std::collections::HashMap<Option<u32>, u32> = Default::default();
    for &i in order {
        let op = &h.ops[i];
        let s = state.entry(op.key).or_insert(h.init);
        match op.f {
            OpF::Read(v) => {
                if v != *s {
                    return false;
                }
            }
            OpF::Write(v) => *s = v,
            OpF::Cas(a, b) => {
                if *s != a {
                    return false;
                }
                *s = b;
            }
            OpF::CasFailed(a) => {
                if *s == a {
                    return false;
                }
            }
            _ => unreachable!("register ops only"),
        }
    }
    true
}

fn verdict(h: &History, use_graph: bool, split_windows: bool) -> Validity {
    let opts = CheckOptions {
        use_graph,
        split_windows,
        parallel: false,
        ..CheckOptions::default()
    };
    check_history(h, &opts).valid
}

/// A sequential execution with random overlapping intervals around each op's
/// linearization point; info ops may or may not have taken effect.
fn by_construction(
    seed_ops: Vec<(u8, u8, u8, u32, u32, u32, u8)>,
    unique: bool,
) -> (History, Vec<GenOp>) {
    // (key, f, value, point, before, after, status); points are distinct.
    let mut ops: Vec<(u32, GenOp, bool)> = Vec::new();
    let mut state = [0u8; 3];
    let mut seq: Vec<_> = seed_ops.into_iter().enumerate().collect();
    seq.sort_by_key(|(i, s)| (s.3, *i));
    let mut next_unique = 1u8;
    for (idx, (key, f, v, point, before, after, status)) in seq {
        let point = point * 64 + idx as u32; // distinct points
        let k = (key % 3) as usize;
        let call = point.saturating_sub(before);
        let len = before.min(point) + after + 1;
        let took_effect = status != 1 || v % 2 == 0;
        let val = if unique {
            next_unique = next_unique.wrapping_add(1).max(1);
            next_unique
        } else {
            v % 4
        };
        let op = match f % 3 {
            0 => GenOp {
                key: k as u8,
                f: 0,
                a: state[k],
                b: 0,
                call,
                len,
                status: 0,
            },
            1 => {
                if took_effect {
                    state[k] = val + 1;
                }
                GenOp {
                    key: k as u8,
                    f: 1,
                    a: 0,
                    b: val,
                    call,
                    len,
                    status: if status == 1 { 1 } else { 0 },
                }
            }
            _ => {
                let from = if v % 2 == 0 { state[k] } else { (v / 2) % 4 };
                let ok = state[k] == from;
                let status = if status == 1 {
                    1
                } else if ok {
                    0
                } else {
                    2
                };
                if ok && took_effect {
                    state[k] = val + 1;
                }
                GenOp {
                    key: k as u8,
                    f: 2,
                    a: from,
                    b: val,
                    call,
                    len,
                    status,
                }
            }
        };
        // An info op that did not take effect is still recorded as invoked.
        ops.push((point, op, took_effect));
    }
    let gen: Vec<GenOp> = ops.into_iter().map(|(_, o, _)| o).collect();
    // Reads use `a` as the value read (0 = nil); writes write b+1.
    let h = to_history_scaled(&gen);
    (h, gen)
}

/// Like [`to_history`] but with call/len already in fine-grained units.
fn to_history_scaled(ops: &[GenOp]) -> History {
    to_history(ops, ModelKind::CasRegister)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, max_global_rejects: 1_000_000, ..ProptestConfig::default() })]

    #[test]
    fn search_agrees_with_brute_force(ops in prop::collection::vec(gen_op(2, 3, true), 1..7)) {
        let h = to_history(&ops, ModelKind::CasRegister);
        let expected = if brute_force(&h) { Validity::Valid } else { Validity::Invalid };
        prop_assert_eq!(verdict(&h, false, true), expected, "windows on: {:?}", h.ops);
        prop_assert_eq!(verdict(&h, false, false), expected, "windows off: {:?}", h.ops);
        prop_assert_eq!(verdict(&h, true, true), expected, "graph on: {:?}", h.ops);
        let unsplit = CheckOptions { split_keys: false, parallel: false, ..CheckOptions::default() };
        prop_assert_eq!(check_history(&h, &unsplit).valid, expected, "unsplit: {:?}", h.ops);
    }

    #[test]
    fn graph_agrees_with_search_on_unique_values(ops in prop::collection::vec(gen_op(2, 4, false), 1..24)) {
        // Make write values unique: value = op position.
        let mut ops = ops;
        for (i, o) in ops.iter_mut().enumerate() {
            if o.f == 1 {
                o.b = 10 + i as u8;
            } else if o.a > 0 {
                // Reads return some written value (or nil).
                o.a = 11 + (o.a as usize * 7 % 24) as u8;
            }
        }
        let h = to_history(&ops, ModelKind::Register);
        prop_assert_eq!(verdict(&h, true, true), verdict(&h, false, true), "{:?}", h.ops);
    }

    #[test]
    fn valid_by_construction_is_valid(
        seed in prop::collection::vec((0..3u8, 0..3u8, 0..8u8, 0..50u32, 0..100u32, 0..100u32, 0..8u8), 1..40),
        unique in any::<bool>(),
    ) {
        let (h, _) = by_construction(seed, unique);
        prop_assert_eq!(verdict(&h, true, true), Validity::Valid, "{:?}", h.ops);
        prop_assert_eq!(verdict(&h, false, true), Validity::Valid, "{:?}", h.ops);
        // The whole map as one state: the per-key backjumping must never
        // refute a linearizable history, windowed or not.
        for split_windows in [true, false] {
            let unsplit = CheckOptions { split_keys: false, split_windows, parallel: false, ..CheckOptions::default() };
            prop_assert_eq!(check_history(&h, &unsplit).valid, Validity::Valid, "unsplit, windows {}: {:?}", split_windows, h.ops);
        }
    }

    #[test]
    fn unsplit_agrees_with_split_on_larger_histories(ops in prop::collection::vec(gen_op(3, 2, true), 8..24)) {
        // Too long for brute force; splitting by key (checked against brute
        // force above, and exact by locality) is the reference.
        let h = to_history(&ops, ModelKind::CasRegister);
        let expected = verdict(&h, false, true);
        prop_assume!(expected != Validity::Unknown);
        for split_windows in [true, false] {
            let unsplit = CheckOptions { split_keys: false, split_windows, parallel: false, ..CheckOptions::default() };
            prop_assert_eq!(check_history(&h, &unsplit).valid, expected, "unsplit, windows {}: {:?}", split_windows, h.ops);
        }
    }

    #[test]
    fn unsplit_many_keys_agrees_with_brute_force(ops in prop::collection::vec(gen_op(3, 2, true), 1..9)) {
        // Few values and three keys: reads often legal, so refutations need
        // backtracking across keys (where backjumping could go wrong).
        let h = to_history(&ops, ModelKind::CasRegister);
        let expected = if brute_force(&h) { Validity::Valid } else { Validity::Invalid };
        for split_windows in [true, false] {
            let unsplit = CheckOptions { split_keys: false, split_windows, parallel: false, ..CheckOptions::default() };
            prop_assert_eq!(check_history(&h, &unsplit).valid, expected, "unsplit, windows {}: {:?}", split_windows, h.ops);
        }
    }

    #[test]
    fn injected_stale_or_future_read_is_invalid(
        seed in prop::collection::vec((0..1u8, 0..2u8, 0..8u8, 0..50u32, 0..30u32, 0..30u32, 0..1u8), 4..40),
        pick in any::<prop::sample::Index>(),
        future in any::<bool>(),
    ) {
        let (_, mut gen) = by_construction(seed, true);
        // Single key, reads and ok writes only, unique values.
        let end = |o: &GenOp| o.call + o.len;
        let reads: Vec<usize> = (0..gen.len()).filter(|&i| gen[i].f == 0).collect();
        prop_assume!(!reads.is_empty());
        let r = reads[pick.index(reads.len())];
        let writes: Vec<usize> = (0..gen.len()).filter(|&i| gen[i].f == 1 && gen[i].status == 0).collect();
        let candidate = if future {
            // A write that began after the read completed.
            writes.iter().copied().find(|&w| gen[w].call > end(&gen[r]))
        } else {
            // A write overwritten by another write, both before the read began.
            writes.iter().copied().find(|&w| {
                writes.iter().any(|&w2| w2 != w && end(&gen[w]) < gen[w2].call && end(&gen[w2]) < gen[r].call)
            })
        };
        prop_assume!(candidate.is_some());
        let w = candidate.unwrap_or_default();
        gen[r].a = gen[w].b + 1;
        let h = to_history(&gen, ModelKind::CasRegister);
        prop_assert_eq!(verdict(&h, true, true), Validity::Invalid, "{:?}", h.ops);
        prop_assert_eq!(verdict(&h, false, true), Validity::Invalid, "{:?}", h.ops);
    }

    #[test]
    fn parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        for format in [None, Some(Format::Jsonl), Some(Format::Edn), Some(Format::EtcdLog), Some(Format::PorcupineKv)] {
            let opts = CheckOptions { format, ..CheckOptions::default() };
            let _ = parse::parse_bytes("fuzz", &bytes, &opts);
        }
    }

    #[test]
    fn parsers_never_panic_on_near_valid_text(
        lines in prop::collection::vec(prop_oneof![
            Just("{:process 1, :type :invoke, :f :read, :value nil}".to_string()),
            Just("{:process 1, :type :ok, :f :read, :value 3}".to_string()),
            Just("INFO  jepsen.util - 2\t:invoke\t:cas\t[1 2]".to_string()),
            Just("{\"index\": 0, \"process\": 1, \"type\": \"invoke\", \"f\": \"write\", \"value\": 1}".to_string()),
            Just("[{:process :nemesis :type :info}".to_string()),
            Just("#{1 2} ; comment".to_string()),
            "[\\[\\]{}():#\" a-z0-9\\\\]{0,30}",
        ], 0..12)
    ) {
        let text = lines.join("\n");
        for format in [None, Some(Format::Jsonl), Some(Format::Edn), Some(Format::EtcdLog), Some(Format::PorcupineKv)] {
            let opts = CheckOptions { format, ..CheckOptions::default() };
            if let Ok(h) = parse::parse_bytes("fuzz", text.as_bytes(), &opts) {
                let _ = check_history(&h, &CheckOptions { parallel: false, ..opts });
            }
        }
    }
}

/// An append-kv op: 0 get, 1 put, 2 append; `v` a token index; `read` the
/// string a get returned (as token indices).
#[derive(Debug, Clone)]
struct KvOp {
    key: u8,
    f: u8,
    v: u8,
    read: Vec<u8>,
    call: u32,
    len: u32,
    info: bool,
}

const TOKENS: [&str; 6] = ["a", "bb", "c", "dd", "e", "ff"];

fn kv_history(ops: &[KvOp]) -> History {
    kv_history_with(ops, &TOKENS)
}

/// [`kv_history`] with another token table (`v` and `read` index it).
fn kv_history_with<S: AsRef<str>>(ops: &[KvOp], tokens: &[S]) -> History {
    let mut evs: Vec<(u32, u8, usize)> = Vec::new();
    for (i, o) in ops.iter().enumerate() {
        evs.push((o.call * 2, 0, i));
        evs.push(((o.call + o.len) * 2 + 1, 1, i));
    }
    evs.sort();
    let mut raw = Vec::new();
    for (t, kind, i) in evs {
        let o = &ops[i];
        let f = ["get", "put", "append"][o.f as usize];
        let value = match (o.f, kind) {
            (0, 0) => Value::Null,
            (0, _) => json!(o
                .read
                .iter()
                .map(|&x| tokens[x as usize].as_ref())
                .collect::<String>()),
            _ => json!(tokens[o.v as usize].as_ref()),
        };
        let ty = match (kind, o.info) {
            (0, _) => EventType::Invoke,
            (_, false) => EventType::Ok,
            (_, true) => EventType::Info,
        };
        let event = Event {
            index: raw.len() as u64,
            time: Some(u64::from(t)),
            process: Process::Client(i as u64),
            kind: ty,
            f: f.to_string(),
            key: Some(format!("k{}", o.key)),
            value,
            node: None,
            error: None,
        };
        raw.push(Numbered {
            line: raw.len() + 1,
            event,
        });
    }
    history::build(
        "generated",
        Dialect {
            format: Format::PorcupineKv,
            nil_read_unknown: false,
            failed_cas: FailedCas::OnPrecondition,
        },
        raw,
        Some(ModelKind::AppendKv),
        None,
    )
    .expect("valid history")
}

/// Brute force for append-kv over all info subsets and real-time orders.
fn kv_brute_force(h: &History) -> bool {
    use checker::history::OpF;
    let n = h.ops.len();
    let infos: Vec<usize> = (0..n).filter(|&i| h.ops[i].ret == u64::MAX).collect();
    let s = |v| h.values.as_str(v).unwrap_or("").to_string();
    fn go(
        h: &History,
        chosen: &[usize],
        used: &mut [bool],
        state: &mut std::collections::HashMap<Option<u32>, String>,
        left: usize,
        s: &dyn Fn(u32) -> String,
    ) -> bool {
        if left == 0 {
            return true;
        }
        for j in 0..chosen.len() {
            if used[j] {
                continue;
            }
            let o = &h.ops[chosen[j]];
            if (0..chosen.len()).any(|k| !used[k] && k != j && h.ops[chosen[k]].ret < o.call) {
                continue;
            }
            let cur = state.get(&o.key).cloned().unwrap_or_default();
            let next = match o.f {
                OpF::Read(v) => {
                    if s(v) != cur {
                        continue;
                    }
                    cur.clone()
                }
                OpF::Write(v) => s(v),
                OpF::Append(v) => format!("{cur}{}", s(v)),
                _ => unreachable!(),
            };
            used[j] = true;
            state.insert(o.key, next);
            if go(h, chosen, used, state, left - 1, s) {
                return true;
            }
            state.insert(o.key, cur);
            used[j] = false;
        }
        false
    }
    for mask in 0..(1u32 << infos.len()) {
        let chosen: Vec<usize> = (0..n)
            .filter(|&i| match infos.iter().position(|&x| x == i) {
                Some(p) => mask & (1 << p) != 0,
                None => true,
            })
            .collect();
        let mut used = vec![false; chosen.len()];
        if go(
            h,
            &chosen,
            &mut used,
            &mut Default::default(),
            chosen.len(),
            &s,
        ) {
            return true;
        }
    }
    false
}

fn kv_op() -> impl Strategy<Value = KvOp> {
    kv_op_keys(2)
}

fn kv_op_keys(keys: u8) -> impl Strategy<Value = KvOp> {
    (
        0..keys,
        prop_oneof![3 => Just(0u8), 1 => Just(1u8), 3 => Just(2u8)],
        0..6u8,
        prop::collection::vec(0..6u8, 0..4),
        0..30u32,
        1..12u32,
        prop_oneof![7 => Just(false), 1 => Just(true)],
    )
        .prop_map(|(key, f, v, read, call, len, info)| KvOp {
            key,
            f,
            v,
            read,
            call,
            len,
            info: info && f != 0,
        })
}

/// Valid-leaning append-kv histories: a sequential execution with random
/// intervals, some reads then corrupted.
fn kv_by_construction(ops: Vec<KvOp>, corrupt: Vec<bool>) -> Vec<KvOp> {
    let mut ops = ops;
    let mut order: Vec<usize> = (0..ops.len()).collect();
    // Linearization point: call + len/2.
    order.sort_by_key(|&i| ops[i].call * 2 + ops[i].len);
    let mut state: Vec<Vec<u8>> = vec![Vec::new(); 4];
    for i in order {
        let k = ops[i].key as usize;
        match ops[i].f {
            0 => {
                if !corrupt.get(i).copied().unwrap_or(false) {
                    ops[i].read = state[k].clone();
                }
            }
            1 => state[k] = vec![ops[i].v],
            _ => state[k].push(ops[i].v),
        }
    }
    ops
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn append_kv_search_agrees_with_brute_force(
        ops in prop::collection::vec(kv_op(), 1..8),
        corrupt in prop::collection::vec(prop::bool::weighted(0.15), 8),
        constructed in any::<bool>(),
    ) {
        let ops = if constructed { kv_by_construction(ops, corrupt) } else { ops };
        let h = kv_history(&ops);
        let expected = if kv_brute_force(&h) { Validity::Valid } else { Validity::Invalid };
        prop_assert_eq!(verdict(&h, false, true), expected, "split: {:?}", h.ops);
        let unsplit = CheckOptions { split_keys: false, parallel: false, ..CheckOptions::default() };
        prop_assert_eq!(check_history(&h, &unsplit).valid, expected, "unsplit: {:?}", h.ops);
    }

    #[test]
    fn append_kv_unsplit_three_keys_agrees_with_brute_force(
        ops in prop::collection::vec(kv_op_keys(3), 1..9),
        corrupt in prop::collection::vec(prop::bool::weighted(0.1), 9),
        constructed in any::<bool>(),
    ) {
        let ops = if constructed { kv_by_construction(ops, corrupt) } else { ops };
        let h = kv_history(&ops);
        let expected = if kv_brute_force(&h) { Validity::Valid } else { Validity::Invalid };
        for split_windows in [true, false] {
            let unsplit = CheckOptions { split_keys: false, split_windows, parallel: false, ..CheckOptions::default() };
            prop_assert_eq!(check_history(&h, &unsplit).valid, expected, "unsplit, windows {}: {:?}", split_windows, h.ops);
        }
    }

    #[test]
    fn append_kv_unsplit_agrees_with_split_on_larger_histories(
        ops in prop::collection::vec(kv_op_keys(3), 8..24),
        corrupt in prop::collection::vec(prop::bool::weighted(0.05), 24),
        constructed in any::<bool>(),
    ) {
        let ops = if constructed { kv_by_construction(ops, corrupt) } else { ops };
        let h = kv_history(&ops);
        let expected = verdict(&h, false, true);
        prop_assume!(expected != Validity::Unknown);
        for split_windows in [true, false] {
            let unsplit = CheckOptions { split_keys: false, split_windows, parallel: false, ..CheckOptions::default() };
            prop_assert_eq!(check_history(&h, &unsplit).valid, expected, "unsplit, windows {}: {:?}", split_windows, h.ops);
        }
    }

    #[test]
    fn append_kv_unsplit_valid_by_construction_is_valid(
        ops in prop::collection::vec(kv_op_keys(4), 1..40),
    ) {
        let h = kv_history(&kv_by_construction(ops, Vec::new()));
        for split_windows in [true, false] {
            let unsplit = CheckOptions { split_keys: false, split_windows, parallel: false, ..CheckOptions::default() };
            prop_assert_eq!(check_history(&h, &unsplit).valid, Validity::Valid, "unsplit, windows {}: {:?}", split_windows, h.ops);
        }
    }
}

/// A seed op for [`hard_ops`]: (key, kind, pick, status, point, before, after).
type HardSeed = (u8, u8, u8, u8, u32, u32, u32);

fn hard_seed(keys: u8) -> impl Strategy<Value = HardSeed> {
    (
        0..keys,
        0..3u8,
        any::<u8>(),
        0..8u8,
        0..60u32,
        0..25u32,
        0..25u32,
    )
}

/// Small histories in the shapes the reductions (`checker::reduce`) and the
/// search rules target: unique written values, about half of the writes and
/// cas ending `info` (half of those never took effect), cas from the current
/// value or an older one (so failed cas), every op its own process, and
/// intervals that overlap a lot or leave quiescent gaps. Built from a
/// sequential run, so linearizable as generated.
fn hard_ops(seed: &[HardSeed]) -> Vec<GenOp> {
    let mut seq: Vec<(usize, &HardSeed)> = seed.iter().enumerate().collect();
    seq.sort_by_key(|(i, s)| (s.4, *i));
    let mut state = [0u8; 4];
    let mut written: [Vec<u8>; 4] = Default::default();
    let mut next = 0u8;
    let mut ops = Vec::new();
    for (idx, &(key, kind, pick, status, point, before, after)) in seq {
        let k = key as usize;
        let point = point * 64 + idx as u32; // distinct, in the order of `seq` (< 64 ops)
        let call = point.saturating_sub(before);
        let len = before.min(point) + after + 1;
        let info = status >= 4;
        let takes_effect = status < 7;
        let mut op = GenOp {
            key,
            f: kind,
            a: 0,
            b: 0,
            call,
            len,
            status: 0,
        };
        match kind {
            0 => op.a = state[k],
            1 => {
                next += 1;
                op.b = next - 1;
                op.status = u8::from(info);
                if takes_effect {
                    state[k] = next;
                    written[k].push(next);
                }
            }
            _ => {
                next += 1;
                op.b = next - 1;
                op.a = if pick % 3 == 0 || written[k].is_empty() {
                    state[k]
                } else {
                    written[k][pick as usize % written[k].len()]
                };
                let fits = state[k] == op.a;
                op.status = if info {
                    1
                } else if fits {
                    0
                } else {
                    2
                };
                if fits && takes_effect {
                    state[k] = next;
                    written[k].push(next);
                }
            }
        }
        ops.push(op);
    }
    ops
}

/// Makes read `r` return a value written (and completed) before another
/// write or cas that took effect completed, which completed before `r`
/// began: a stale read, invalid whatever the info ops did. `None` if `r`
/// has no such pair.
fn make_stale(ops: &mut [GenOp], r: usize) -> Option<()> {
    let end = |o: &GenOp| o.call + o.len;
    let r_op = ops[r].clone();
    let effect = |o: &GenOp| o.f != 0 && o.status == 0 && o.key == r_op.key;
    let w = (0..ops.len()).find(|&w| {
        effect(&ops[w])
            && ops.iter().any(|w2| {
                effect(w2) && end(&ops[w]) < w2.call && end(w2) < r_op.call && w2.b != ops[w].b
            })
    })?;
    ops[r].a = ops[w].b + 1;
    Some(())
}

fn unsplit(split_windows: bool) -> CheckOptions {
    CheckOptions {
        split_keys: false,
        split_windows,
        parallel: false,
        ..CheckOptions::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, max_global_rejects: 1_000_000, ..ProptestConfig::default() })]

    /// The reductions and the search rules keep the verdict: against brute
    /// force on histories of up to 8 ops, many of them `info`, some reads
    /// corrupted (so both verdicts occur), windows on and off, graph on and
    /// off, one key and two keys unsplit.
    #[test]
    fn info_heavy_histories_agree_with_brute_force(
        seed in prop::collection::vec(hard_seed(2), 1..9),
        corrupt in prop::option::of((any::<prop::sample::Index>(), 0..12u8)),
    ) {
        let mut ops = hard_ops(&seed);
        if let Some((at, v)) = corrupt {
            let i = at.index(ops.len());
            if ops[i].f == 0 {
                ops[i].a = v;
            } else if ops[i].f == 2 {
                // A cas that expects another value (its outcome unchanged).
                ops[i].a = v;
            }
        }
        let h = to_history(&ops, ModelKind::CasRegister);
        let expected = if brute_force(&h) { Validity::Valid } else { Validity::Invalid };
        prop_assert_eq!(verdict(&h, false, true), expected, "windows on: {:?}", h.ops);
        prop_assert_eq!(verdict(&h, false, false), expected, "windows off: {:?}", h.ops);
        prop_assert_eq!(verdict(&h, true, true), expected, "graph on: {:?}", h.ops);
        prop_assert_eq!(check_history(&h, &unsplit(true)).valid, expected, "unsplit: {:?}", h.ops);
    }

    /// Larger info-heavy histories, valid as generated, stay valid on every
    /// path (split and unsplit, windows on and off).
    #[test]
    fn info_heavy_valid_histories_are_valid(
        seed in prop::collection::vec(hard_seed(2), 1..60),
    ) {
        let h = to_history(&hard_ops(&seed), ModelKind::CasRegister);
        prop_assert_eq!(verdict(&h, true, true), Validity::Valid, "{:?}", h.ops);
        prop_assert_eq!(verdict(&h, false, true), Validity::Valid, "{:?}", h.ops);
        prop_assert_eq!(verdict(&h, false, false), Validity::Valid, "{:?}", h.ops);
        for split_windows in [true, false] {
            prop_assert_eq!(check_history(&h, &unsplit(split_windows)).valid, Validity::Valid, "unsplit, windows {}: {:?}", split_windows, h.ops);
        }
    }

    /// A stale read injected into an info-heavy history is found, by the
    /// graph's refutation and by the search alone.
    #[test]
    fn info_heavy_stale_read_is_invalid(
        seed in prop::collection::vec(hard_seed(1), 4..60),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut ops = hard_ops(&seed);
        let reads: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].f == 0).collect();
        prop_assume!(!reads.is_empty());
        let r = reads[pick.index(reads.len())];
        prop_assume!(make_stale(&mut ops, r).is_some());
        let h = to_history(&ops, ModelKind::CasRegister);
        prop_assert_eq!(verdict(&h, true, true), Validity::Invalid, "{:?}", h.ops);
        prop_assert_eq!(verdict(&h, false, true), Validity::Invalid, "{:?}", h.ops);
    }
}

/// Tokens of [`unique_append_ops`]: op `i`'s put is token `2i` (`"<i%3>.<i>"`)
/// and its append token `2i+1` (`"<i%3>.<i>;"`), as the `append` workload
/// writes them: every element unique.
fn unique_tokens(n: usize) -> Vec<String> {
    (0..n)
        .flat_map(|i| [format!("{}.{i}", i % 3), format!("{}.{i};", i % 3)])
        .collect()
}

/// A seed op: (key, kind 0 get / 1 put / 2 append, call, len, info, applied, corrupt).
type UniqueSeed = (u8, u8, u32, u32, bool, bool, u8);

fn unique_seed(keys: u8) -> impl Strategy<Value = UniqueSeed> {
    (
        0..keys,
        prop_oneof![3 => Just(0u8), 1 => Just(1u8), 3 => Just(2u8)],
        0..40u32,
        1..14u32,
        prop::bool::weighted(0.5),
        any::<bool>(),
        0..24u8,
    )
}

/// Append-kv histories shaped like the `append` workload's: unique put and
/// append elements, about half of the puts and appends ending `info` (half
/// of those never took effect), every op its own process. Reads return the
/// value of a sequential run at their midpoint, except that a read with
/// `corrupt` below 2 returns an older value of its key (a stale read, when
/// the key changed since) and 2 drops the value's last element.
fn unique_append_ops(seed: &[UniqueSeed]) -> Vec<KvOp> {
    let mut order: Vec<usize> = (0..seed.len()).collect();
    order.sort_by_key(|&i| (seed[i].2 * 2 + seed[i].3, i));
    let mut state: Vec<Vec<u8>> = vec![Vec::new(); 4];
    let mut past: Vec<Vec<Vec<u8>>> = vec![vec![Vec::new()]; 4];
    let mut ops: Vec<KvOp> = seed
        .iter()
        .map(|&(key, f, call, len, info, _, _)| KvOp {
            key,
            f,
            v: 0,
            read: Vec::new(),
            call,
            len,
            info: info && f != 0,
        })
        .collect();
    for i in order {
        let (key, f, _, _, _, applied, corrupt) = seed[i];
        let k = key as usize;
        match f {
            0 => {
                let mut read = state[k].clone();
                if corrupt < 2 {
                    read = past[k][usize::from(corrupt) * past[k].len() / 2].clone();
                } else if corrupt == 2 {
                    read.pop();
                }
                ops[i].read = read;
            }
            _ => {
                ops[i].v = (2 * i + usize::from(f == 2)) as u8;
                if !ops[i].info || applied {
                    if f == 1 {
                        state[k] = vec![ops[i].v];
                    } else {
                        state[k].push(ops[i].v);
                    }
                    past[k].push(state[k].clone());
                }
            }
        }
    }
    ops
}

/// Makes one read of an appends-only key stale for certain: it begins after
/// an `ok` append returned and returns a value without that append's
/// element (another read's value, or the empty initial one). In every
/// linearization the append comes first and every later value contains its
/// unique element, so the history is invalid. `None` without such an append.
fn make_append_stale(ops: &mut [KvOp], pick: usize) -> Option<()> {
    let reads: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].f == 0).collect();
    let r = *reads.get(pick % reads.len().max(1))?;
    let appends: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].f == 2 && !ops[i].info && ops[i].key == ops[r].key)
        .collect();
    let m = *appends.get(pick / 7 % appends.len().max(1))?;
    let old = reads
        .iter()
        .filter(|&&i| ops[i].key == ops[m].key)
        .map(|&i| &ops[i].read)
        .filter(|v| !v.contains(&ops[m].v))
        .max_by_key(|v| v.len())
        .cloned()
        .unwrap_or_default();
    ops[r].read = old;
    ops[r].call = ops[m].call + ops[m].len + 1;
    Some(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// The append-kv reductions (`checker::reduce::append`) keep the verdict:
    /// against brute force on unique-element histories of up to 8 ops, about
    /// half of the puts and appends `info`, some reads stale (so both
    /// verdicts occur), split and unsplit, windows on and off.
    #[test]
    fn unique_append_kv_info_heavy_agrees_with_brute_force(
        seed in prop::collection::vec(unique_seed(2), 1..9),
    ) {
        let h = kv_history_with(&unique_append_ops(&seed), &unique_tokens(seed.len()));
        let expected = if kv_brute_force(&h) { Validity::Valid } else { Validity::Invalid };
        prop_assert_eq!(verdict(&h, false, true), expected, "windows on: {:?}", h.ops);
        prop_assert_eq!(verdict(&h, false, false), expected, "windows off: {:?}", h.ops);
        prop_assert_eq!(check_history(&h, &unsplit(true)).valid, expected, "unsplit: {:?}", h.ops);
    }

    /// Larger info-heavy unique-element histories, valid as generated (no
    /// corrupted read), stay valid. Split by key only: with the whole map
    /// as one state (`split_keys: false`), a 60-op info-heavy history can
    /// exhaust the 60 s budget (`unknown`), and proptest's shrinking then
    /// re-runs such cases for many minutes; the unsplit check is compared
    /// with brute force on small histories above instead.
    #[test]
    fn unique_append_kv_info_heavy_valid_is_valid(
        seed in prop::collection::vec(unique_seed(2), 1..60),
    ) {
        let seed: Vec<UniqueSeed> = seed.into_iter().map(|mut s| { s.6 = s.6.max(3); s }).collect();
        let h = kv_history_with(&unique_append_ops(&seed), &unique_tokens(seed.len()));
        prop_assert_eq!(verdict(&h, false, true), Validity::Valid, "{:?}", h.ops);
    }

    /// A certainly stale read injected into a larger info-heavy
    /// appends-only history is found.
    #[test]
    fn unique_append_kv_info_heavy_stale_read_is_invalid(
        seed in prop::collection::vec(unique_seed(1), 4..60),
        pick in any::<usize>(),
    ) {
        // Appends and reads only, every read valid as generated.
        let seed: Vec<UniqueSeed> = seed
            .into_iter()
            .map(|mut s| { s.1 = if s.1 == 1 { 2 } else { s.1 }; s.6 = s.6.max(3); s })
            .collect();
        let mut ops = unique_append_ops(&seed);
        prop_assume!(make_append_stale(&mut ops, pick).is_some());
        let h = kv_history_with(&ops, &unique_tokens(seed.len()));
        prop_assert_eq!(verdict(&h, false, true), Validity::Invalid, "{:?}", h.ops);
    }
}
