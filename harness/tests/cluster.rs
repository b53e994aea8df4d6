//! The supervisor and the cluster seam with real processes: `sleep` (and
//! `sh`) stand in for nodes in the process-management tests, so they do not
//! depend on the node; `cluster_node.rs` runs the real node.

use std::path::Path;
use std::time::{Duration, Instant};

use harness::cluster::{ProcessSpec, ProcessState, Supervisor};
use harness::systems::raft_node::{ClusterConfig, NodeCluster};
use harness::systems::Cluster;
use nix::sys::signal::{kill, killpg};
use nix::unistd::Pid;

fn spec(dir: &Path, name: &str, program: &str, args: &[&str]) -> ProcessSpec {
    ProcessSpec {
        program: program.into(),
        args: args.iter().map(|a| a.into()).collect(),
        log_path: dir.join(name).join("node.log"),
        env: Vec::new(),
    }
}

/// The one-letter state of /proc/PID/stat (R, S, T, Z…), if the process exists.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(") ")?.1;
    after.chars().next()
}

fn alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok() && proc_state(pid) != Some('Z')
}

fn group_alive(pgid: u32) -> bool {
    killpg(Pid::from_raw(pgid as i32), None).is_ok()
}

/// Polls `cond` for up to 5 s (process exits and reparenting are asynchronous).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn kill_restart_pause_resume_a_process() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::new();
    sup.register(1, spec(dir.path(), "n1", "sleep", &["600"]));
    assert_eq!(sup.state(1), Some(ProcessState::Stopped));

    let pid = sup.start(1).unwrap();
    assert!(alive(pid));
    assert_eq!(sup.state(1), Some(ProcessState::Running));
    assert!(
        sup.start(1).is_err(),
        "a running node cannot be started twice"
    );

    sup.pause(1).unwrap();
    eventually("SIGSTOP takes effect", || proc_state(pid) == Some('T'));
    assert_eq!(sup.state(1), Some(ProcessState::Paused));
    sup.resume(1).unwrap();
    eventually("SIGCONT takes effect", || proc_state(pid) == Some('S'));
    assert_eq!(sup.state(1), Some(ProcessState::Running));

    sup.kill(1).unwrap();
    assert!(!alive(pid));
    assert_eq!(sup.state(1), Some(ProcessState::Stopped));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(sup.last_exit(1).unwrap().signal(), Some(libc::SIGKILL));

    let pid2 = sup.start(1).unwrap();
    assert_ne!(pid, pid2);
    assert!(alive(pid2));
    assert_eq!(sup.starts(1), 2);
    // Each process is the leader of its own process group.
    assert_eq!(
        nix::unistd::getpgid(Some(Pid::from_raw(pid2 as i32)))
            .unwrap()
            .as_raw(),
        pid2 as i32
    );

    // The log is appended across restarts, with a header per start.
    let log = std::fs::read_to_string(dir.path().join("n1/node.log")).unwrap();
    assert_eq!(log.matches("=== harness: start #").count(), 2, "{log}");
    assert!(log.contains("sleep 600"));
}

#[test]
fn a_process_that_exits_on_its_own_is_seen_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::new();
    sup.register(
        1,
        spec(
            dir.path(),
            "n1",
            "sh",
            &["-c", "echo hello from node; exit 3"],
        ),
    );
    sup.start(1).unwrap();
    eventually("exit is reaped", || {
        sup.state(1) == Some(ProcessState::Stopped)
    });
    assert_eq!(sup.last_exit(1).unwrap().code(), Some(3));
    let log = std::fs::read_to_string(dir.path().join("n1/node.log")).unwrap();
    assert!(
        log.contains("hello from node"),
        "stdout goes to node.log: {log}"
    );
}

#[test]
fn terminate_escalates_to_sigkill_and_wakes_paused_processes() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::new();
    // Ignores SIGTERM (the ignored disposition survives exec into sleep).
    sup.register(
        1,
        spec(
            dir.path(),
            "n1",
            "sh",
            &["-c", "trap '' TERM; exec sleep 600"],
        ),
    );
    sup.register(2, spec(dir.path(), "n2", "sleep", &["600"]));
    sup.start(1).unwrap();
    let pid2 = sup.start(2).unwrap();
    // Give sh time to install the trap before exec.
    std::thread::sleep(Duration::from_millis(200));
    sup.pause(2).unwrap();
    eventually("paused", || proc_state(pid2) == Some('T'));

    sup.shutdown(Duration::from_millis(300));
    assert_eq!(sup.state(1), Some(ProcessState::Stopped));
    assert_eq!(sup.state(2), Some(ProcessState::Stopped));
    assert_eq!(sup.last_exit(1).unwrap().signal(), Some(libc::SIGKILL));
    assert_eq!(
        sup.last_exit(2).unwrap().signal(),
        Some(libc::SIGTERM),
        "a paused process is resumed so that it can handle SIGTERM"
    );
}

#[test]
fn drop_leaves_no_process_behind_not_even_grandchildren() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::new();
    let mut pgids = Vec::new();
    for id in 1..=3 {
        // The shell forks a grandchild into the node's process group.
        sup.register(
            id,
            spec(
                dir.path(),
                &format!("n{id}"),
                "sh",
                &["-c", "sleep 600 & sleep 600; wait"],
            ),
        );
        pgids.push(sup.start(id).unwrap());
    }
    sup.pause(2).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(pgids.iter().all(|&g| group_alive(g)));
    drop(sup);
    for g in pgids {
        eventually("process group gone", || !group_alive(g));
    }
}

/// Not a test on its own: the body of the harness process that
/// `children_die_when_the_harness_is_sigkilled` starts and SIGKILLs.
#[test]
#[ignore = "helper process for children_die_when_the_harness_is_sigkilled"]
fn pdeathsig_helper() {
    let Ok(out) = std::env::var("FAULTS_PDEATHSIG_OUT") else {
        return;
    };
    // The node's folder goes beside the pid file, in the test's temporary
    // folder: this process dies by SIGKILL, so nothing of its own would be
    // cleaned up.
    let dir = Path::new(&out).parent().unwrap();
    let sup = Supervisor::new();
    sup.register(1, spec(dir, "n1", "sleep", &["600"]));
    // Started from a short-lived thread: the parent-death signal must still
    // not fire when that thread ends, only when the process dies.
    let pid = std::thread::scope(|s| s.spawn(|| sup.start(1).unwrap()).join().unwrap());
    std::thread::sleep(Duration::from_millis(200));
    assert!(alive(pid));
    std::fs::write(&out, pid.to_string()).unwrap();
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn children_die_when_the_harness_is_sigkilled() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pid");
    let mut helper = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "pdeathsig_helper",
            "--include-ignored",
            "--nocapture",
        ])
        .env("FAULTS_PDEATHSIG_OUT", &out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct KillOnDrop<'a>(&'a mut std::process::Child);
    impl Drop for KillOnDrop<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let guard = KillOnDrop(&mut helper);
    eventually("helper started its node", || {
        std::fs::read_to_string(&out).is_ok_and(|s| !s.is_empty())
    });
    let node_pid: u32 = std::fs::read_to_string(&out)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(node_pid));
    drop(guard); // SIGKILL, no cleanup code runs in the helper
    eventually("the node dies with its harness", || !alive(node_pid));
}

/// A "node" that ignores its flags: `sh -c 'exec sleep 600' sh <flags…>`.
fn sleepy_config(dir: &Path, nodes: usize) -> ClusterConfig {
    let mut c = ClusterConfig::new("sh", dir, nodes);
    c.program_args = vec!["-c".into(), "exec sleep 600".into(), "sh".into()];
    c.stop_grace = Duration::from_millis(500);
    c
}

#[tokio::test]
async fn node_cluster_wires_every_peer_through_its_own_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = NodeCluster::launch(sleepy_config(dir.path(), 3))
        .await
        .unwrap();
    let mesh = cluster.mesh().unwrap();
    for id in 1..=3u64 {
        assert_eq!(cluster.state(id), Some(ProcessState::Running));
        assert!(cluster.data_dir(id).is_dir());
        let args: Vec<String> = cluster
            .node_args(id, false)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let flag = |name: &str| -> Vec<String> {
            args.windows(2)
                .filter(|w| w[0] == name)
                .map(|w| w[1].clone())
                .collect()
        };
        assert_eq!(flag("--id"), vec![id.to_string()]);
        assert_eq!(flag("--members"), vec!["1,2,3".to_string()]);
        assert_eq!(
            flag("--client-listen"),
            vec![cluster.client_addr(id).unwrap().to_string()]
        );
        assert_eq!(
            flag("--peer-listen"),
            vec![cluster.peer_addr(id).unwrap().to_string()]
        );
        let peers = flag("--peer");
        assert_eq!(peers.len(), 2);
        for to in (1..=3u64).filter(|&t| t != id) {
            let proxy = mesh.listen_addr(id, to).unwrap();
            assert!(peers.contains(&format!("{to}={proxy}")), "{peers:?}");
            assert_eq!(mesh.upstream_addr(id, to), cluster.peer_addr(to));
        }
        let log = std::fs::read_to_string(cluster.node_dir(id).join("node.log")).unwrap();
        assert!(log.contains(&format!(
            "--trace {}",
            cluster.node_dir(id).join("trace.jsonl").display()
        )));
    }
    // Distinct ports everywhere.
    let mut ports: Vec<_> = (1..=3u64)
        .flat_map(|id| {
            [
                cluster.client_addr(id).unwrap(),
                cluster.peer_addr(id).unwrap(),
            ]
        })
        .collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 6);
    cluster.shutdown().await;
    assert!((1..=3).all(|id| cluster.state(id) == Some(ProcessState::Stopped)));
}

#[tokio::test]
async fn node_cluster_restart_keeps_data_and_wipe_discards_it() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = NodeCluster::launch(sleepy_config(dir.path(), 3))
        .await
        .unwrap();
    let marker = cluster.data_dir(2).join("state");
    std::fs::write(&marker, "term 7").unwrap();
    let pid = cluster.supervisor().pid(2).unwrap();

    cluster.kill(2).await.unwrap();
    cluster.start(2).await.unwrap();
    assert_ne!(cluster.supervisor().pid(2).unwrap(), pid);
    assert!(marker.exists(), "kill -9 and restart keep the data dir");
    assert!(!cluster.is_joiner(2));

    cluster.pause(3).await.unwrap();
    assert_eq!(cluster.state(3), Some(ProcessState::Paused));
    cluster.resume(3).await.unwrap();
    assert_eq!(cluster.state(3), Some(ProcessState::Running));

    cluster.wipe(2).await.unwrap();
    assert!(!marker.exists(), "a wiped node starts empty");
    assert!(cluster.data_dir(2).is_dir());
    assert!(cluster.is_joiner(2));
    assert_eq!(cluster.state(2), Some(ProcessState::Stopped));
    cluster.start(2).await.unwrap();
    assert_eq!(cluster.state(2), Some(ProcessState::Running));
    let spec = cluster.supervisor().spec(2).unwrap();
    assert!(
        !spec.args.iter().any(|a| a == "--members"),
        "a joiner waits to be added"
    );

    cluster.stop(1).await.unwrap();
    assert_eq!(cluster.state(1), Some(ProcessState::Stopped));
    cluster.start(1).await.unwrap();
    assert_eq!(cluster.supervisor().starts(1), 2);
}

#[tokio::test]
async fn no_leader_is_a_clear_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = NodeCluster::launch(sleepy_config(dir.path(), 3))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    let err = harness::systems::wait_for_leader(&cluster, deadline)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("no leader within"), "{err}");
    assert!(
        err.contains("n1:") && err.contains("n3:"),
        "says what each node answered: {err}"
    );
}
