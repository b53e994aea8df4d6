//! A large append-kv history shaped like the `append` workload's under
//! faults (unique put and append elements, 30 % of the puts and appends
//! ending `info`, half of those never applied) is decided quickly; without
//! the append-kv reductions (`checker::reduce::append`) the search kept every
//! `info` op pending and answered `unknown` after its 60 s time limit
//! (measured in docs/checker-bench.md). A certainly stale read planted in
//! it is still found.

use std::time::{Duration, Instant};

use checker::{check_history, parse, CheckOptions, Validity};
use rand::{Rng, SeedableRng};

/// JSONL of `n` ops on 4 keys: a sequential run at points 10 apart, each op
/// over a random interval around its point, every op its own process. With
/// `stale`, the first read past the middle that began after an `ok` append
/// `a` of its key returned, with no put of the key since, returns the value
/// before `a` (the key's last value), if that value is the initial one or
/// was made by an `ok` op `b` that returned before `a` was invoked. Then
/// `b` comes before `a`, and `a` before the read, in every linearization;
/// the read's value ends in `b`'s element, so no put came between `b` and
/// the read, and the key held `a`'s unique element at the read: invalid.
fn history(n: usize, stale: bool) -> (String, bool) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut state: Vec<String> = vec![String::new(); 4];
    // Per key: the return of its last op if that op was an ok append, and
    // the value before it, if it qualifies (see above).
    let mut last_append: Vec<Option<(u64, String)>> = vec![None; 4];
    // Per key: the return of the op that made its value (0: the initial
    // value; `u64::MAX`: an info op).
    let mut made_by: Vec<u64> = vec![0; 4];
    let mut planted = false;
    let mut evs: Vec<(u64, u8, String)> = Vec::new();
    for i in 0..n {
        let point = i as u64 * 10 + 5;
        let k = rng.gen_range(0..4usize);
        let kind = rng.gen_range(0..5u8); // 0, 1 read; 2 put; 3, 4 append
        let call = point.saturating_sub(rng.gen_range(0..30));
        let ret = point + rng.gen_range(1..30);
        let info = kind >= 2 && rng.gen_bool(0.3);
        let applied = !info || rng.gen_bool(0.5);
        let q = |s: &str| serde_json::to_string(s).unwrap();
        let (f, inv, done) = match kind {
            0 | 1 => {
                let mut v = state[k].clone();
                if stale && !planted && i > n / 2 {
                    if let Some((r, before)) = &last_append[k] {
                        if *r < call {
                            v = before.clone();
                            planted = true;
                        }
                    }
                }
                ("read", "null".to_string(), q(&v))
            }
            2 => {
                let v = format!("{}.{i}", i % 10);
                if applied {
                    state[k] = v.clone();
                    last_append[k] = None;
                    made_by[k] = if info { u64::MAX } else { ret };
                }
                ("write", q(&v), q(&v))
            }
            _ => {
                let v = format!("{}.{i};", i % 10);
                if applied {
                    let before = state[k].clone();
                    let certain = made_by[k] == 0 || made_by[k] < call;
                    state[k].push_str(&v);
                    last_append[k] = (!info && certain).then_some((ret, before));
                    made_by[k] = if info { u64::MAX } else { ret };
                }
                ("append", q(&v), q(&v))
            }
        };
        let key = format!("\"key\":\"k{k}\"");
        evs.push((
            call * 2,
            0,
            format!("\"process\":{i},\"type\":\"invoke\",\"f\":\"{f}\",{key},\"value\":{inv}"),
        ));
        let ty = if info { "info" } else { "ok" };
        evs.push((
            ret * 2 + 1,
            1,
            format!("\"process\":{i},\"type\":\"{ty}\",\"f\":\"{f}\",{key},\"value\":{done}"),
        ));
    }
    evs.sort_by_key(|e| (e.0, e.1));
    let mut text = String::new();
    for (i, (t, _, body)) in evs.iter().enumerate() {
        text.push_str(&format!("{{\"index\":{i},\"time\":{t},{body}}}\n"));
    }
    (text, planted)
}

fn check(text: &str) -> (Validity, Duration) {
    let opts = CheckOptions::default();
    let h = parse::parse_bytes("append.jsonl", text.as_bytes(), &opts).unwrap();
    let t = Instant::now();
    let r = check_history(&h, &opts);
    (r.valid, t.elapsed())
}

#[test]
fn info_heavy_append_history_is_valid_within_seconds() {
    let (text, _) = history(20_000, false);
    let (valid, took) = check(&text);
    assert_eq!(valid, Validity::Valid);
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[test]
fn info_heavy_append_history_with_a_stale_read_is_invalid() {
    let (text, planted) = history(20_000, true);
    assert!(planted, "the generator planted a stale read");
    let (valid, took) = check(&text);
    assert_eq!(valid, Validity::Invalid);
    assert!(took < Duration::from_secs(30), "{took:?}");
}
