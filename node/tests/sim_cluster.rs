//! Whole clusters of Raft cores under a seeded chaos network (see `sim/mod.rs`
//! for the faults and the properties checked after every step).
//!
//! * `cargo test -p node --release --test sim_cluster` runs 10,000 seeds.
//! * `RAFT_SIM_SEED=N` replays exactly seed `N` (with consensus traces on
//!   stderr; filter with `RUST_LOG`, e.g. `RUST_LOG=debug`).
//! * `RAFT_SIM_SEEDS=COUNT` runs `COUNT` seeds instead of 10,000 (a soak run),
//!   starting at `RAFT_SIM_SEED_START` (default 0).
//!
//! A failure prints its seed and the replay command.

mod sim;

use std::time::Instant;

use sim::{run_seed, RuntimeFaults};

const DEFAULT_SEEDS: u64 = 10_000;
/// The seed range is split over this many tests so that they run in parallel.
const PARTS: u64 = 4;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be an integer"))
    })
}

fn run_part(part: u64) {
    if env_u64("RAFT_SIM_SEED").is_some() {
        return; // the replay test runs alone
    }
    let total = env_u64("RAFT_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let start = env_u64("RAFT_SIM_SEED_START").unwrap_or(0);
    let per = total.div_ceil(PARTS);
    let lo = start + part * per;
    let hi = (start + total).min(lo + per);
    let t0 = Instant::now();
    let mut elections = 0;
    let mut commits = 0;
    let mut snaps = 0;
    let mut reads = 0;
    let mut rejoins = 0;
    for seed in lo..hi {
        let r = std::panic::catch_unwind(|| run_seed(seed, RuntimeFaults::default()));
        match r {
            Ok(st) => {
                elections += st.elections;
                commits += st.commits;
                snaps += st.snapshots_installed;
                reads += st.reads + st.lease_reads;
                rejoins += st.wiped_rejoins;
            }
            Err(_) => panic!(
                "raft simulation failed at seed {seed} (after {} seeds, {:.2?}); replay it with:\n  \
                 RAFT_SIM_SEED={seed} cargo test -p node --release --test sim_cluster replay_seed_from_env -- --nocapture",
                seed - lo + 1,
                t0.elapsed()
            ),
        }
    }
    eprintln!(
        "sim part {part}: seeds {lo}..{hi} passed in {:.2?} ({elections} elections, {commits} commits, \
         {snaps} snapshots installed, {reads} reads, {rejoins} wiped rejoins)",
        t0.elapsed()
    );
}

#[test]
fn random_clusters_stay_safe_and_live_part_0() {
    run_part(0);
}

#[test]
fn random_clusters_stay_safe_and_live_part_1() {
    run_part(1);
}

#[test]
fn random_clusters_stay_safe_and_live_part_2() {
    run_part(2);
}

#[test]
fn random_clusters_stay_safe_and_live_part_3() {
    run_part(3);
}

/// Replays `RAFT_SIM_SEED` with consensus traces on stderr.
#[test]
fn replay_seed_from_env() {
    let Some(seed) = env_u64("RAFT_SIM_SEED") else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .with_ansi(false)
        .try_init();
    eprintln!("replaying {:?}", sim::Scenario::from_seed(seed));
    let st = run_seed(seed, RuntimeFaults::default());
    eprintln!("seed {seed} passed: {st:?}");
}

/// The checks have teeth: a simulated runtime that does not persist its vote
/// (it keeps only the term) lets a restarted node vote twice in one term, and
/// the simulator must notice within a few hundred seeds.
#[test]
fn simulator_catches_a_runtime_that_does_not_persist_its_vote() {
    if env_u64("RAFT_SIM_SEED").is_some() {
        return;
    }
    let faults = RuntimeFaults {
        forget_vote: true,
        ..RuntimeFaults::default()
    };
    let found = sim::find_failure(0..20_000, faults);
    let (seed, msg) = found.expect("forgetting the vote must break a safety property");
    eprintln!(
        "forgotten vote caught at seed {seed}: {}",
        msg.lines().next().unwrap_or("")
    );
}
