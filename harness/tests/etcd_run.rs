//! etcd 3.4 through the seam, end to end (Debian: `apt-get install -y
//! etcd-server`; a missing etcd fails these tests with that advice): a
//! whole `harness run --system etcd` with faults, a deterministic stale
//! read the checker must catch, and a harness killed with SIGKILL.
//!
//! The runs are serialized: each one is a whole cluster and the machine may
//! have few cores.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::ChildGuard;
use formats::observations::{Observation, ObservationKind};
use formats::trace::Role;
use harness::client::ReadConsistency;
use harness::cluster::{NodeId, ProcessState};
use harness::generator::{perform, ProcessIds};
use harness::history::{EventType, Recorder};
use harness::nemesis::{
    Action, FaultKind, FaultKinds, Nemesis, NemesisEvent, Schedule, ScheduleConfig,
};
use harness::proxy::LinkMode;
use harness::systems::etcd::{Etcd, EtcdBinary};
use harness::systems::poller::StatusPoller;
use harness::systems::{
    probe_leader, wait_for_leader, ClientSpec, LaunchSpec, System, SystemKind, SystemOpts,
    SystemSetup,
};
use serde_json::{json, Value};
use workloads::Op;

static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    EtcdBinary::locate(None).unwrap_or_else(|e| panic!("these tests run real etcd 3.4: {e}"));
    ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn harness_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_harness"))
}

/// Starts `harness run --system etcd`; stdout and stderr go to files in
/// `results`.
fn spawn_run(results: &Path, args: &[&str]) -> ChildGuard {
    std::fs::create_dir_all(results).unwrap();
    let child = Command::new(harness_bin())
        .args(["run", "--system", "etcd", "--results-dir"])
        .arg(results)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(results.join("stdout.txt")).unwrap())
        .stderr(std::fs::File::create(results.join("stderr.txt")).unwrap())
        .spawn()
        .expect("spawn harness");
    ChildGuard(Some(child))
}

fn only_run_dir(results: &Path) -> PathBuf {
    let mut dirs = Vec::new();
    for test in std::fs::read_dir(results).unwrap().flatten() {
        if !test.path().is_dir() {
            continue;
        }
        for run in std::fs::read_dir(test.path()).unwrap().flatten() {
            let p = run.path();
            if p.is_dir() && !p.is_symlink() {
                dirs.push(p);
            }
        }
    }
    assert_eq!(dirs.len(), 1, "expected one run folder, found {dirs:?}");
    dirs.pop().unwrap()
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn history(dir: &Path) -> Vec<Value> {
    formats::history::Reader::open(&dir.join("history.jsonl"))
        .unwrap()
        .map(|e| serde_json::to_value(e.unwrap().event).unwrap())
        .collect()
}

fn observations(dir: &Path) -> Vec<Observation> {
    formats::observations::Reader::open(&dir.join("observations.jsonl"))
        .unwrap()
        .map(|o| o.unwrap().event)
        .collect()
}

/// Processes whose command line mentions `needle` (members name their data
/// dir, which is inside the run folder).
fn processes_mentioning(needle: &str) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) && pid != std::process::id() as i32 {
            found.push((pid, cmd));
        }
    }
    found
}

/// The first seed whose fault schedule (the pure schedule the run uses)
/// kills, pauses and partitions well within `within`.
fn seed_with_each_fault(kinds: &FaultKinds, interval: Duration, within: Duration) -> u64 {
    (0..10_000u64)
        .find(|&seed| {
            let mut s = Schedule::new(ScheduleConfig::new(vec![1, 2, 3], kinds, interval), seed);
            let mut t = Duration::ZERO;
            let mut seen = Vec::new();
            while let Some(step) = s.next_step() {
                t += step.delay;
                if t > within {
                    break;
                }
                seen.push(step.action.f());
            }
            ["kill", "pause", "start-partition"]
                .iter()
                .all(|f| seen.contains(f))
        })
        .expect("some seed schedules every fault kind")
}

#[test]
fn an_etcd_run_with_kills_pauses_and_partitions_is_valid_and_observed() {
    let _one = one_at_a_time();
    let results = tempfile::tempdir().unwrap();
    let kinds = FaultKind::parse_list("kill,pause,partition").unwrap();
    let seed = seed_with_each_fault(&kinds, Duration::from_millis(700), Duration::from_secs(7));
    let mut g = spawn_run(
        results.path(),
        &[
            "--nodes",
            "3",
            "--time-limit",
            "10",
            "--nemesis",
            "kill,pause,partition",
            "--nemesis-interval",
            "0.7",
            "--seed",
            &seed.to_string(),
        ],
    );
    let code = g.wait_timeout(Duration::from_secs(180)).code();
    let dir = only_run_dir(results.path());
    let out = std::fs::read_to_string(results.path().join("stdout.txt")).unwrap();
    let r = json_file(&dir.join("results.json"));
    assert_eq!(code, Some(0), "seed {seed}: {out}\nresults.json: {r:#}");
    assert_eq!(r["valid"], true);
    assert_eq!(r["checkers"]["raft_safety"]["valid"], true);

    let test = json_file(&dir.join("test.json"));
    assert_eq!(test["system"]["name"], "etcd");
    assert!(
        test["system"]["version"]
            .as_str()
            .unwrap()
            .starts_with("3."),
        "{test:#}"
    );
    assert_eq!(test["system"]["opts"]["pre-vote"], "false");

    // Every fault kind happened (and was undone).
    let faults: Vec<String> = history(&dir)
        .into_iter()
        .filter(|e| e["process"] == "nemesis" && e["value"].get("error").is_none())
        .map(|e| e["f"].as_str().unwrap().to_string())
        .collect();
    for f in [
        "kill",
        "start",
        "pause",
        "resume",
        "start-partition",
        "stop-partition",
    ] {
        assert!(
            faults.iter().any(|x| x == f),
            "seed {seed}: no {f} in {faults:?}"
        );
    }

    // Each member was observed all along, and its term never went back.
    let obs = observations(&dir);
    let mut last: BTreeMap<u64, u64> = BTreeMap::new();
    let mut leaders = 0;
    for o in &obs {
        let ObservationKind::Status { term, role, .. } = o.kind else {
            panic!("etcd observations are polled statuses: {o:?}");
        };
        let prev = last.insert(o.node, term).unwrap_or(0);
        assert!(term >= prev, "n{} went from term {prev} to {term}", o.node);
        leaders += usize::from(role == Role::Leader);
    }
    assert_eq!(last.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(obs.len() > 100, "only {} observations", obs.len());
    assert!(leaders > 10, "only {leaders} leader observations");
    assert!(
        r["checkers"]["raft_safety"]["events"].as_u64().unwrap() as usize >= obs.len(),
        "the checker read the observations: {r:#}"
    );
    assert!(processes_mentioning(dir.to_str().unwrap()).is_empty());
}

/// Records a nemesis-like event for the partition this test makes by hand.
fn partition_event(
    rec: &Recorder,
    f: &str,
    isolated: NodeId,
    links: &[(NodeId, NodeId, LinkMode)],
) {
    let links: Vec<Value> = links
        .iter()
        .map(|(a, b, m)| json!([a, b, m.name()]))
        .collect();
    rec.nemesis(
        f,
        json!({"shape": "one", "groups": [[isolated]], "links": links}),
    )
    .unwrap();
}

/// Isolate the leader, write through the majority, then read the isolated
/// old leader's own state (a serializable range): it still has the old
/// value, so a read that began after the newer write completed returns
/// the older one. The checker must say "not linearizable", and does every
/// time: no step of this depends on timing.
#[test]
fn serializable_reads_of_an_isolated_leader_are_caught_as_not_linearizable() {
    let _one = one_at_a_time();
    runtime().block_on(isolated_leader_serves_a_stale_read());
}

async fn isolated_leader_serves_a_stale_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = SystemKind::Etcd.descriptor();
    let opts = [
        ("heartbeat-interval".to_string(), "50".to_string()),
        ("election-timeout".to_string(), "500".to_string()),
    ];
    let etcd = Etcd::configure(&SystemSetup {
        opts: SystemOpts::new(d, &opts).unwrap(),
        ..Default::default()
    })
    .unwrap();
    let cluster = etcd
        .launch(LaunchSpec {
            run_dir: dir.path().to_path_buf(),
            nodes: 3,
            proxies: true,
            seed: 1,
        })
        .await
        .unwrap();
    let rec = Recorder::create(&dir.path().join("history.jsonl")).unwrap();
    let poller = StatusPoller::start(
        cluster.clone(),
        Duration::from_millis(100),
        Some(&dir.path().join("observations.jsonl")),
    )
    .unwrap();
    let spec = |reads| ClientSpec {
        reads,
        op_timeout: Duration::from_secs(2),
    };
    let linearizable = cluster.client(spec(ReadConsistency::Linearizable)).unwrap();
    let serializable = cluster.client(spec(ReadConsistency::Stale)).unwrap();
    let ids = ProcessIds::starting_at(0);
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(30);

    let old = wait_for_leader(&*cluster, deadline()).await.unwrap();
    let write = |v: &str| Op::Write {
        key: "r".into(),
        value: v.into(),
    };
    let read = Op::Read { key: "r".into() };
    let c = perform(&*linearizable, &rec, ids.fresh(), &write("1"), old.leader)
        .await
        .unwrap();
    assert_eq!(c.kind, EventType::Ok, "{c:?}");
    // The leader has applied "1" by the time it acknowledged it.
    let c = perform(&*serializable, &rec, ids.fresh(), &read, old.leader)
        .await
        .unwrap();
    assert_eq!((c.kind, c.value.clone()), (EventType::Ok, json!("1")));

    let others: Vec<NodeId> = (1..=3).filter(|&n| n != old.leader).collect();
    let mut links = Vec::new();
    for &o in &others {
        links.push((old.leader, o, LinkMode::Stall));
        links.push((o, old.leader, LinkMode::Stall));
    }
    let network = cluster.network().expect("peers talk through the proxies");
    network.apply(&links).unwrap();
    partition_event(&rec, "start-partition", old.leader, &links);

    // The majority elects a leader of its own and takes a newer write.
    let started = Instant::now();
    let new = loop {
        let p = probe_leader(&*cluster).await;
        if let Some(l) = p.leader.filter(|l| others.contains(&l.leader)) {
            break l;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the majority elected no leader: {}",
            p.describe()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(new.term > old.term);
    let started = Instant::now();
    loop {
        let c = perform(&*linearizable, &rec, ids.fresh(), &write("2"), new.leader)
            .await
            .unwrap();
        if c.kind == EventType::Ok {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{c:?}");
    }

    // The old leader, cut off, still answers from its own state.
    let stale = perform(&*serializable, &rec, ids.fresh(), &read, old.leader)
        .await
        .unwrap();
    assert_eq!(
        (stale.kind, stale.value.clone()),
        (EventType::Ok, json!("1")),
        "the isolated member cannot have seen the newer write"
    );
    network.heal();
    let healed: Vec<_> = links
        .iter()
        .map(|&(a, b, _)| (a, b, LinkMode::Pass))
        .collect();
    partition_event(&rec, "stop-partition", old.leader, &healed);
    rec.sync().unwrap();
    let polled = poller.stop();
    assert!(polled.error.is_none(), "{polled:?}");
    assert!(polled.observations > 0);
    cluster.shutdown().await;

    let report = checker::check_path(
        dir.path(),
        &checker::CheckOptions {
            model: Some("register".parse().unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    let lin = report.checkers.linearizability.as_ref().unwrap();
    assert_eq!(lin.valid, checker::Validity::Invalid, "{lin:?}");
    assert_eq!(report.valid, checker::Validity::Invalid);
    let raft = report.checkers.raft_safety.as_ref().unwrap();
    assert_eq!(raft.valid, checker::Validity::Valid, "{raft:?}");
    assert!(report.counterexample.is_some());
}

#[test]
fn a_harness_killed_with_sigkill_leaves_no_etcd_behind() {
    let _one = one_at_a_time();
    let results = tempfile::tempdir().unwrap();
    let mut g = spawn_run(
        results.path(),
        &[
            "--nodes",
            "3",
            "--time-limit",
            "60",
            "--nemesis",
            "pause,kill",
            "--nemesis-interval",
            "0.3",
            "--seed",
            "5",
        ],
    );
    // Wait until traffic and faults are under way.
    let started = Instant::now();
    let dir = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the run never got going"
        );
        std::thread::sleep(Duration::from_millis(200));
        let latest = std::fs::read_dir(results.path())
            .unwrap()
            .flatten()
            .map(|t| t.path().join("latest"))
            .find(|l| l.exists());
        let Some(dir) = latest else { continue };
        let text = std::fs::read_to_string(dir.join("history.jsonl")).unwrap_or_default();
        if text.lines().count() > 100 && text.contains("\"nemesis\"") {
            break std::fs::canonicalize(dir).unwrap();
        }
    };
    assert!(!processes_mentioning(dir.to_str().unwrap()).is_empty());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(g.pid()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = g.wait_timeout(Duration::from_secs(10));
    // The parent-death signal reaches the members (paused ones included) at
    // once; give the kernel a moment to reap them.
    let started = Instant::now();
    loop {
        let left = processes_mentioning(dir.to_str().unwrap());
        if left.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "orphans: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// etcd stops a removed member by itself. The nemesis must not take that
/// exit for a crash (no `start` of it when healing), and adding the member
/// back brings it up again, as a new member on a fresh data dir.
#[test]
fn a_removed_member_stops_by_itself_and_healing_adds_it_back() {
    let _one = one_at_a_time();
    runtime().block_on(remove_then_heal());
}

async fn remove_then_heal() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::configure(&SystemSetup {
        opts: SystemOpts::new(SystemKind::Etcd.descriptor(), &[]).unwrap(),
        ..Default::default()
    })
    .unwrap();
    let cluster = etcd
        .launch(LaunchSpec {
            run_dir: dir.path().to_path_buf(),
            nodes: 4,
            proxies: true,
            seed: 1,
        })
        .await
        .unwrap();
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(30);
    let leader = wait_for_leader(&*cluster, deadline()).await.unwrap();
    let removed = (1..=4).find(|&n| n != leader.leader).unwrap();
    let sink = |_: NemesisEvent| {};
    let mut nemesis = Nemesis::new(
        ScheduleConfig::new(
            (1..=4).collect(),
            &FaultKind::parse_list("member").unwrap(),
            Duration::from_secs(1),
        ),
        1,
        cluster.clone(),
        std::sync::Arc::new(sink),
    )
    .unwrap();
    let e = nemesis.execute(Action::RemoveMember(removed)).await;
    assert!(e.value.get("error").is_none(), "{e:?}");
    let others: Vec<u64> = (1..=4).filter(|&n| n != removed).collect();
    assert_eq!(e.value["members"], json!(others));
    let started = Instant::now();
    while cluster.state(removed) != Some(ProcessState::Stopped) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "n{removed} kept running after its removal"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let healed = nemesis.heal_all().await;
    let fs: Vec<&str> = healed.iter().map(|e| e.f).collect();
    assert_eq!(fs, vec!["add-member"], "{healed:?}");
    assert!(healed[0].value.get("error").is_none(), "{healed:?}");
    assert_eq!(cluster.state(removed), Some(ProcessState::Running));
    // The new member counts: the leader replicates to all four, and a
    // write through it is acknowledged.
    let started = Instant::now();
    loop {
        let p = probe_leader(&*cluster).await;
        if p.leader_status()
            .is_some_and(|s| s.members == vec![1, 2, 3, 4])
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            p.describe()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let client = cluster
        .client(ClientSpec {
            reads: ReadConsistency::Linearizable,
            op_timeout: Duration::from_secs(5),
        })
        .unwrap();
    let w = Op::Write {
        key: "k".into(),
        value: "after".into(),
    };
    let started = Instant::now();
    while client.invoke(&w, removed).await.kind != EventType::Ok {
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.shutdown().await;
}
