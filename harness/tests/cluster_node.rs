//! The cluster seam and the nemesis against our real node binary.
//!
//! The node is this build's `harness node` unless `NODE_BIN` names another
//! node binary.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use formats::trace::Role;
use harness::cluster::ProcessState;
use harness::nemesis::{Action, FaultKind, Nemesis, NemesisEvent, ScheduleConfig, Shape};
use harness::proxy::LinkMode;
use harness::systems::raft_node::{ClusterConfig, NodeCluster, NodeSettings};
use harness::systems::{probe_leader, wait_for_leader, Cluster};
use tokio::time::Instant;

/// The node program: `$NODE_BIN` (any node binary) if set, else this
/// build's harness re-executed as `harness node …`, the same code as the
/// `node` binary.
fn node_program() -> (PathBuf, Vec<std::ffi::OsString>) {
    match std::env::var_os("NODE_BIN") {
        Some(p) => (PathBuf::from(p), Vec::new()),
        None => (
            PathBuf::from(env!("CARGO_BIN_EXE_harness")),
            vec!["node".into()],
        ),
    }
}

async fn launch(dir: &std::path::Path, nodes: usize) -> Arc<NodeCluster> {
    let (program, program_args) = node_program();
    let mut c = ClusterConfig::new(program, dir, nodes);
    c.program_args = program_args;
    c.extra_args = NodeSettings::defaults().args();
    Arc::new(NodeCluster::launch(c).await.unwrap())
}

fn secs(s: u64) -> Instant {
    Instant::now() + Duration::from_secs(s)
}

/// A write through node `id` (following one not-leader hint), for checking
/// that the cluster still commits.
async fn put(cluster: &NodeCluster, key: &str, value: &str) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let deadline = secs(30);
    while Instant::now() < deadline {
        if let Some(l) = probe_leader(cluster as &dyn Cluster).await.leader {
            let url = format!("http://{}/kv/{key}", cluster.client_addr(l.leader).unwrap());
            if let Ok(r) = client
                .put(url)
                .json(&serde_json::json!({"value": value}))
                .send()
                .await
            {
                if r.status().is_success() {
                    return true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_the_leader_and_a_new_one_takes_over_then_the_old_one_rejoins() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = launch(dir.path(), 3).await;
    let first = wait_for_leader(&*cluster, secs(30)).await.unwrap();
    assert!(put(&cluster, "k", "1").await);

    cluster.kill(first.leader).await.unwrap();
    assert_eq!(cluster.state(first.leader), Some(ProcessState::Stopped));
    let second = wait_for_leader(&*cluster, secs(30)).await.unwrap();
    assert_ne!(second.leader, first.leader);
    assert!(second.term > first.term);
    assert!(put(&cluster, "k", "2").await);

    cluster.start(first.leader).await.unwrap();
    // The restarted node recovers from its data dir and catches up.
    let deadline = secs(30);
    loop {
        let s = cluster.status_body(first.leader).await;
        let leader = cluster.status_body(second.leader).await;
        if let (Ok(s), Ok(l)) = (s, leader) {
            if s.term >= second.term && s.last_applied >= l.commit_index && s.commit_index > 0 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "restarted node did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(cluster.node_dir(first.leader).join("node.log")).unwrap();
    assert_eq!(log.matches("=== harness: start #").count(), 2);
    assert!(cluster.node_dir(first.leader).join("trace.jsonl").exists());
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolating_the_leader_through_the_proxies_elects_another() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = launch(dir.path(), 3).await;
    let mesh = cluster.mesh().unwrap();
    let first = wait_for_leader(&*cluster, secs(30)).await.unwrap();
    let others: Vec<u64> = (1..=3).filter(|&n| n != first.leader).collect();
    let mut links = Vec::new();
    for &o in &others {
        links.push((first.leader, o, LinkMode::Reset));
        links.push((o, first.leader, LinkMode::Reset));
    }
    mesh.apply(&links).unwrap();

    // The majority side elects a leader of its own in a higher term.
    let deadline = secs(30);
    let second = loop {
        let p = probe_leader(&*cluster).await;
        if let Some(l) = p
            .leader
            .filter(|l| l.leader != first.leader && l.term > first.term)
        {
            break l;
        }
        assert!(Instant::now() < deadline, "no new leader: {}", p.describe());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(others.contains(&second.leader));
    assert!(put(&cluster, "k", "during-partition").await);

    mesh.heal();
    let deadline = secs(30);
    loop {
        if let Ok(s) = cluster.status(first.leader).await {
            if s.term >= second.term && s.role == Role::Follower {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "old leader did not rejoin as follower"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_fault_removes_then_re_adds_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = launch(dir.path(), 4).await;
    wait_for_leader(&*cluster, secs(30)).await.unwrap();
    assert!(put(&cluster, "k", "before").await);
    let events = Arc::new(Mutex::new(Vec::<NemesisEvent>::new()));
    let sink = {
        let events = events.clone();
        move |e: NemesisEvent| events.lock().unwrap().push(e)
    };
    let mut nemesis = Nemesis::new(
        ScheduleConfig::new(
            (1..=4).collect(),
            &FaultKind::parse_list("member").unwrap(),
            Duration::from_secs(1),
        ),
        1,
        cluster.clone(),
        Arc::new(sink),
    )
    .unwrap();

    let removed = nemesis.execute(Action::RemoveMember(4)).await;
    assert!(removed.value.get("error").is_none(), "{removed:?}");
    assert_eq!(removed.value["members"], serde_json::json!([1, 2, 3]));
    assert_eq!(removed.value["wiped"], serde_json::json!(false));
    assert!(!cluster.is_joiner(4));
    assert_eq!(cluster.state(4), Some(ProcessState::Running));
    assert!(put(&cluster, "k", "while-removed").await);
    // Removing below three voters is refused by the nemesis itself.
    let refused = nemesis.execute(Action::RemoveMember(3)).await;
    assert!(
        refused.value["error"]
            .as_str()
            .unwrap()
            .contains("fewer than 3"),
        "{refused:?}"
    );

    let added = nemesis.execute(Action::AddMember(4)).await;
    assert!(added.value.get("error").is_none(), "{added:?}");
    assert_eq!(added.value["members"], serde_json::json!([1, 2, 3, 4]));
    // The re-added node has the log up to the leader's commit index.
    let deadline = secs(30);
    loop {
        if let (Some(l), Ok(s)) = (
            probe_leader(&*cluster).await.leader,
            cluster.status_body(4).await,
        ) {
            let ls = cluster.status_body(l.leader).await.unwrap();
            if s.last_applied >= ls.commit_index && s.members.contains(&4) {
                break;
            }
        }
        assert!(Instant::now() < deadline, "re-added node did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fs: Vec<&str> = events.lock().unwrap().iter().map(|e| e.f).collect();
    assert_eq!(fs, vec!["remove-member", "remove-member", "add-member"]);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nemesis_all_faults_then_heal_all_recovers_a_leader() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = launch(dir.path(), 5).await;
    wait_for_leader(&*cluster, secs(30)).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut cfg = ScheduleConfig::new(
        (1..=5).collect(),
        &FaultKind::parse_list("all").unwrap(),
        Duration::from_millis(300),
    );
    cfg.shapes = Shape::ALL.to_vec();
    let mut nemesis = Nemesis::new(cfg, 7, cluster.clone(), Arc::new(tx)).unwrap();
    nemesis
        .run_until(tokio::time::sleep(Duration::from_secs(4)))
        .await;
    nemesis.heal_all().await;
    let leader = wait_for_leader(&*cluster, secs(30)).await.unwrap();
    assert!(
        put(&cluster, "k", "after").await,
        "no progress after heal (leader {leader:?})"
    );
    assert!((1..=5).all(|n| cluster.state(n) == Some(ProcessState::Running)));
    let mut fs = Vec::new();
    while let Ok(e) = rx.try_recv() {
        fs.push(e.f);
    }
    assert!(fs.len() >= 6, "{fs:?}");
    cluster.shutdown().await;
}
