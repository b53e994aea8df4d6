//! The nemesis carrying out a seeded schedule against real processes and a
//! real proxy mesh (`sleep` processes stand in for nodes: kill, pause and
//! partition act on processes and links, not on Raft).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::cluster::ProcessState;
use harness::nemesis::{FaultKind, Nemesis, NemesisEvent, Schedule, ScheduleConfig};
use harness::proxy::LinkMode;
use harness::systems::raft_node::{ClusterConfig, NodeCluster};
use harness::systems::Cluster;

fn sleepy_config(dir: &Path, nodes: usize) -> ClusterConfig {
    let mut c = ClusterConfig::new("sh", dir, nodes);
    c.program_args = vec!["-c".into(), "exec sleep 600".into(), "sh".into()];
    c.stop_grace = Duration::from_millis(500);
    c
}

fn schedule_config(kinds: &str) -> ScheduleConfig {
    ScheduleConfig::new(
        (1..=5).collect(),
        &FaultKind::parse_list(kinds).unwrap(),
        Duration::from_millis(10),
    )
}

/// Runs `steps` steps of the schedule with `seed`, checking after each that
/// the processes and links are in the state the event says; returns the events.
async fn run_steps(seed: u64, steps: usize) -> Vec<NemesisEvent> {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Arc::new(
        NodeCluster::launch(sleepy_config(dir.path(), 5))
            .await
            .unwrap(),
    );
    let mesh = cluster.mesh().unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let events = events.clone();
        move |e: NemesisEvent| events.lock().unwrap().push(e)
    };
    let sut: Arc<dyn Cluster> = cluster.clone();
    let mut nemesis = Nemesis::new(
        schedule_config("kill,pause,partition"),
        seed,
        sut,
        Arc::new(sink),
    )
    .unwrap();
    let plan: Vec<_> = Schedule::new(schedule_config("kill,pause,partition"), seed)
        .take(steps)
        .collect();
    for step in &plan {
        let e = nemesis.execute(step.action.clone()).await;
        assert!(e.value.get("error").is_none(), "{e:?}");
        let node = e.value.get("node").and_then(|n| n.as_u64());
        match e.f {
            "kill" => assert_eq!(cluster.state(node.unwrap()), Some(ProcessState::Stopped)),
            "pause" => assert_eq!(cluster.state(node.unwrap()), Some(ProcessState::Paused)),
            "start" | "resume" => {
                assert_eq!(cluster.state(node.unwrap()), Some(ProcessState::Running))
            }
            "start-partition" => {
                let links = e.value["links"].as_array().unwrap();
                assert_eq!(links.len(), 20, "the whole matrix is recorded");
                for l in links {
                    let (f, t, m) = (
                        l[0].as_u64().unwrap(),
                        l[1].as_u64().unwrap(),
                        l[2].as_str().unwrap(),
                    );
                    assert_eq!(mesh.mode(f, t).unwrap().name(), m);
                }
                assert!(!e.value["groups"].as_array().unwrap().is_empty());
            }
            "stop-partition" => {
                assert!(mesh.matrix().iter().all(|l| l.2 == LinkMode::Pass));
            }
            other => panic!("unexpected event {other}"),
        }
        let down = (1..=5)
            .filter(|&n| cluster.state(n) != Some(ProcessState::Running))
            .count();
        assert!(down <= 2, "never more than a minority down or paused");
    }
    let healed = nemesis.heal_all().await;
    assert!(
        healed.iter().all(|e| e.value.get("error").is_none()),
        "{healed:?}"
    );
    assert!((1..=5).all(|n| cluster.state(n) == Some(ProcessState::Running)));
    assert!(mesh.matrix().iter().all(|l| l.2 == LinkMode::Pass));
    assert!(nemesis.active_faults().get().is_empty());
    cluster.shutdown().await;
    let got = events.lock().unwrap().clone();
    assert_eq!(got.len(), steps + healed.len());
    let fs: Vec<&str> = got.iter().take(steps).map(|e| e.f).collect();
    let planned: Vec<&str> = plan.iter().map(|s| s.action.f()).collect();
    assert_eq!(fs, planned, "the history follows the seeded plan");
    got
}

#[tokio::test]
async fn seeded_schedule_is_reproducible_on_real_processes() {
    let a = run_steps(11, 40).await;
    let b = run_steps(11, 40).await;
    let values = |v: &[NemesisEvent]| -> Vec<(String, serde_json::Value)> {
        v.iter()
            .map(|e| (e.f.to_string(), e.value.clone()))
            .collect()
    };
    assert_eq!(values(&a), values(&b));
    let kinds: std::collections::BTreeSet<&str> = a.iter().map(|e| e.f).collect();
    for f in [
        "kill",
        "start",
        "pause",
        "resume",
        "start-partition",
        "stop-partition",
    ] {
        assert!(kinds.contains(f), "{f} missing from {kinds:?}");
    }
}

#[tokio::test]
async fn run_until_stops_between_steps_and_heal_all_undoes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Arc::new(
        NodeCluster::launch(sleepy_config(dir.path(), 5))
            .await
            .unwrap(),
    );
    let mesh = cluster.mesh().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sut: Arc<dyn Cluster> = cluster.clone();
    let mut nemesis = Nemesis::new(
        schedule_config("kill,pause,partition"),
        5,
        sut,
        Arc::new(tx),
    )
    .unwrap();
    nemesis
        .run_until(tokio::time::sleep(Duration::from_millis(400)))
        .await;
    let mut seen = 0;
    while rx.try_recv().is_ok() {
        seen += 1;
    }
    assert!(seen > 5, "steps every ~10 ms for 400 ms, saw {seen}");
    nemesis.heal_all().await;
    assert!((1..=5).all(|n| cluster.state(n) == Some(ProcessState::Running)));
    assert!(mesh.matrix().iter().all(|l| l.2 == LinkMode::Pass));
    // heal_all also repairs what the nemesis did not do itself.
    cluster.kill(4).await.unwrap();
    cluster.pause(5).await.unwrap();
    let events = nemesis.heal_all().await;
    let fs: Vec<&str> = events.iter().map(|e| e.f).collect();
    assert_eq!(fs, vec!["resume", "start"]);
    assert!((1..=5).all(|n| cluster.state(n) == Some(ProcessState::Running)));
}

#[tokio::test]
async fn partition_nemesis_requires_the_mesh() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = sleepy_config(dir.path(), 3);
    cfg.proxies = false;
    let cluster = Arc::new(NodeCluster::prepare(cfg).await.unwrap());
    assert!(cluster.mesh().is_none());
    let sink = |_: NemesisEvent| {};
    let r = Nemesis::new(
        ScheduleConfig::new(
            vec![1, 2, 3],
            &FaultKind::parse_list("partition").unwrap(),
            Duration::from_secs(1),
        ),
        1,
        cluster.clone(),
        Arc::new(sink),
    );
    assert!(r.is_err());
    // Without proxies, nodes dial each other directly.
    assert_eq!(cluster.dial_addr(1, 2), cluster.peer_addr(2));
}
