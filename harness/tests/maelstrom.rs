//! Maelstrom-protocol nodes as real processes behind the router: our own
//! node in `--maelstrom` mode (reads/writes/cas, a partition of the leader,
//! kill + restart with and without `--data-dir`), a deliberately broken node
//! that the checker must catch, and scripted nodes that exercise the router
//! (link modes, message faults, malformed lines) and the wire observer.
//!
//! The Python nodes need `python3` (CI installs it); every process is
//! supervised, so a failing test leaves none behind.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use harness::client::Completion;
use harness::cluster::{ProcessSpec, Supervisor};
use harness::history::{EventType, NewEvent, Process, Recorder};
use harness::proxy::LinkMode;
use harness::systems::maelstrom::{
    CallError, ClientMessage, Host, MaelstromClient, MessageFaults, Router, RouterConfig, Violation,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;
use workloads::{Generator, Op, WorkloadConfig, WorkloadKind};

fn python3() -> PathBuf {
    let ok = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "python3 is required by the Maelstrom tests (the test nodes are Python scripts); install it"
    );
    "python3".into()
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/maelstrom")
        .join(name)
}

fn python_spec(dir: &Path, id: u64, name: &str) -> ProcessSpec {
    ProcessSpec {
        program: python3(),
        args: vec![script(name).into()],
        log_path: dir.join(format!("n{id}/node.log")),
        env: Vec::new(),
    }
}

/// Our node: `harness node --maelstrom`, with `--data-dir` when persistent.
fn our_spec(dir: &Path, id: u64, persistent: bool) -> ProcessSpec {
    let mut args: Vec<std::ffi::OsString> = vec!["node".into(), "--maelstrom".into()];
    if persistent {
        args.push("--data-dir".into());
        args.push(dir.join(format!("n{id}/data")).into());
    }
    ProcessSpec {
        program: env!("CARGO_BIN_EXE_harness").into(),
        args,
        log_path: dir.join(format!("n{id}/node.log")),
        env: Vec::new(),
    }
}

struct Net {
    host: Host,
    dir: tempfile::TempDir,
}

impl Net {
    async fn launch(n: u64, spec: impl Fn(&Path, u64) -> ProcessSpec) -> Net {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = RouterConfig::new((1..=n).collect(), 42);
        cfg.net_log = Some(dir.path().join("net.jsonl"));
        let router = Arc::new(Router::new(cfg).unwrap());
        let host = Host::new(router);
        for id in 1..=n {
            host.register(id, spec(dir.path(), id));
        }
        host.start_all().await.unwrap();
        Net { host, dir }
    }

    fn router(&self) -> &Arc<Router> {
        self.host.router()
    }

    fn client(&self, k: u64, timeout_ms: u64) -> MaelstromClient {
        MaelstromClient::new(self.router().clone(), k, Duration::from_millis(timeout_ms))
    }

    /// Isolates `node` from every other node, both ways.
    fn isolate(&self, node: u64, mode: LinkMode) {
        let links: Vec<_> = self
            .router()
            .nodes()
            .into_iter()
            .filter(|&o| o != node)
            .flat_map(|o| [(node, o, mode), (o, node, mode)])
            .collect();
        self.router().apply(&links).unwrap();
    }
}

fn write(key: &str, value: &str) -> Op {
    Op::Write {
        key: key.into(),
        value: value.into(),
    }
}

fn read(key: &str) -> Op {
    Op::Read { key: key.into() }
}

fn cas(key: &str, from: Option<&str>, to: &str) -> Op {
    Op::Cas {
        key: key.into(),
        from: from.map(String::from),
        to: to.into(),
    }
}

/// Writes until a write is acknowledged: the cluster has a leader that
/// committed an entry of its term.
async fn wait_ready(c: &MaelstromClient, node: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = None;
    while Instant::now() < deadline {
        let r = c.invoke(&write("ready", "1"), node).await;
        if r.kind == EventType::Ok {
            return;
        }
        last = Some(r);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no write was acknowledged within 15 s; last: {last:?}");
}

fn ok_value(c: &Completion) -> &Value {
    assert_eq!(c.kind, EventType::Ok, "{c:?}");
    &c.value
}

/// Records an op and its completion, as the harness's workers do.
async fn perform(
    rec: &Recorder,
    client: &MaelstromClient,
    process: u64,
    op: &Op,
    node: u64,
) -> Completion {
    let ev = |kind, value, node, error| NewEvent {
        process: Process::Client(process),
        kind,
        f: op.kind().name().to_string(),
        key: Some(op.key().to_string()),
        value,
        node: Some(node),
        error,
    };
    rec.record(ev(EventType::Invoke, op.invoke_value(), node, None))
        .unwrap();
    let c = client.invoke(op, node).await;
    rec.record(ev(c.kind, c.value.clone(), c.node, c.error.clone()))
        .unwrap();
    c
}

fn check_kv(history: &Path) -> checker::CheckReport {
    let opts = checker::CheckOptions {
        model: Some(checker::ModelKind::Kv),
        ..Default::default()
    };
    checker::check_path(history, &opts).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_node_serves_reads_writes_and_cas_from_any_node() {
    let net = Net::launch(3, |d, id| our_spec(d, id, false)).await;
    let c = net.client(1, 3000);
    wait_ready(&c, 1).await;
    let (leader, _) = net.router().latest_leader().expect("a leader was seen");
    for node in 1..=3 {
        let key = format!("k{node}");
        let w = c.invoke(&write(&key, &format!("v{node}")), node).await;
        ok_value(&w);
        // A follower forwards to the leader, which answers the client itself.
        assert_eq!(w.node, leader, "{w:?}");
    }
    for node in 1..=3 {
        let r = c.invoke(&read("k1"), node).await;
        assert_eq!(ok_value(&r), &json!("v1"));
    }
    assert_eq!(ok_value(&c.invoke(&read("nothing"), 2).await), &Value::Null);
    ok_value(&c.invoke(&cas("k1", Some("v1"), "w1"), 2).await);
    let again = c.invoke(&cas("k1", Some("v1"), "w2"), 3).await;
    assert_eq!(
        (again.kind, again.error.as_deref()),
        (EventType::Fail, Some("precondition"))
    );
    let missing = c.invoke(&cas("new", Some("x"), "y"), 1).await;
    assert_eq!(missing.error.as_deref(), Some("precondition"));
    ok_value(&c.invoke(&cas("new", None, "created"), 1).await);
    assert_eq!(
        ok_value(&c.invoke(&read("new"), 3).await),
        &json!("created")
    );
    assert_eq!(ok_value(&c.invoke(&read("k1"), 1).await), &json!("w1"));

    assert!(net.router().violations().is_empty());
    let stats = net.router().stats();
    assert_eq!((stats.malformed, stats.unknown_dest), (0, 0), "{stats:?}");
    assert!(stats.routed > 0 && stats.client_replies >= 12, "{stats:?}");
    // A graceful stop (stdin closed, then SIGTERM) ends the node cleanly.
    let net = Arc::new(net);
    let n = net.clone();
    tokio::task::spawn_blocking(move || n.host.shutdown(Duration::from_secs(5)))
        .await
        .unwrap();
    for id in 1..=3 {
        let status = net.host.supervisor().last_exit(id).unwrap();
        assert!(status.success(), "n{id}: {status:?}");
        // Our node keeps stdout for protocol lines: its log has its logs.
        let log = std::fs::read_to_string(net.dir.path().join(format!("n{id}/node.log"))).unwrap();
        assert!(log.contains("stopped cleanly"), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_isolating_the_leader_elects_another_and_stays_linearizable() {
    let net = Net::launch(3, |d, id| our_spec(d, id, false)).await;
    let warm = net.client(100, 3000);
    wait_ready(&warm, 1).await;
    let (old_leader, old_term) = net.router().latest_leader().unwrap();
    let history = net.dir.path().join("history.jsonl");
    let rec = Recorder::create(&history).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workload = WorkloadConfig::new(WorkloadKind::Kv, 7);
    let mut workers = Vec::new();
    for slot in 0..3u64 {
        let client = net.client(slot + 1, 1000);
        let rec = rec.clone();
        let stop = stop_rx.clone();
        let mut gen = Generator::new(&workload, slot as usize).unwrap();
        workers.push(tokio::spawn(async move {
            let (mut process, mut ok) = (slot, 0u64);
            let node = slot + 1;
            while !*stop.borrow() {
                let op = gen.next_op();
                let c = perform(&rec, &client, process, &op, node).await;
                match c.kind {
                    EventType::Ok => {
                        ok += 1;
                        let seen = match &op {
                            Op::Read { .. } => c.value.as_str().map(String::from),
                            Op::Write { value, .. } => Some(value.clone()),
                            Op::Cas { to, .. } => Some(to.clone()),
                            Op::Append { .. } => None,
                        };
                        gen.observe(op.key(), seen.as_deref());
                    }
                    EventType::Info => process += 100,
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
            ok
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    net.isolate(old_leader, LinkMode::Reset);
    rec.nemesis("start-partition", json!({"isolated": old_leader}))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let (new_leader, new_term) = loop {
        match net.router().latest_leader() {
            Some((l, t)) if l != old_leader && t > old_term => break (l, t),
            _ if Instant::now() > deadline => panic!(
                "no new leader 10 s after isolating n{old_leader}: {:?}",
                net.router().latest_leader()
            ),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    // Ops forwarded to the old leader just before the cut wait out their
    // timeout; after that the majority side must serve.
    let ok_at_new_leader = rec.counts().ok;
    let deadline = Instant::now() + Duration::from_secs(10);
    while rec.counts().ok <= ok_at_new_leader {
        assert!(
            Instant::now() < deadline,
            "the majority side (leader n{new_leader}, term {new_term}) served nothing in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    net.router().heal();
    rec.nemesis("stop-partition", Value::Null).unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop_tx.send(true).unwrap();
    for w in workers {
        w.await.unwrap();
    }
    let report = check_kv(&history);
    assert_eq!(
        report.exit_code(),
        0,
        "our node must stay linearizable: {}",
        serde_json::to_string(&report).unwrap()
    );
    assert!(
        report.ops > 20,
        "too few ops to mean anything: {}",
        report.ops
    );
    assert_eq!(net.router().violations(), Vec::<Violation>::new());
    assert!(net.router().stats().cut > 0);
}

async fn write_then_full_restart(persistent: bool) -> Vec<Value> {
    let net = Net::launch(3, move |d, id| our_spec(d, id, persistent)).await;
    let c = net.client(1, 3000);
    wait_ready(&c, 1).await;
    for i in 0..5 {
        ok_value(
            &c.invoke(&write(&format!("k{i}"), &format!("v{i}")), 1 + i % 3)
                .await,
        );
    }
    for id in 1..=3 {
        net.host.kill(id).unwrap();
    }
    for id in 1..=3 {
        net.host.start(id).await.unwrap();
    }
    let c = net.client(2, 3000);
    let mut values = Vec::new();
    // A read that is ok proves a leader of the new lifetime committed.
    let deadline = Instant::now() + Duration::from_secs(15);
    for i in 0..5 {
        loop {
            let r = c.invoke(&read(&format!("k{i}")), 1 + i % 3).await;
            if r.kind == EventType::Ok {
                values.push(r.value);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no read served after restart: {r:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    if persistent {
        // Amnesiac nodes may elect two leaders of one term across their
        // lifetimes (the observer rightly says so); durable ones never.
        assert_eq!(net.router().violations(), Vec::<Violation>::new());
    }
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_data_dir_a_kill_and_restart_of_every_node_loses_nothing() {
    let values = write_then_full_restart(true).await;
    let want: Vec<Value> = (0..5).map(|i| json!(format!("v{i}"))).collect();
    assert_eq!(values, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_data_dir_a_full_restart_is_amnesia() {
    // The contrast that shows the test above can fail.
    let values = write_then_full_restart(false).await;
    assert_eq!(values, vec![Value::Null; 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broken_node_is_not_linearizable_under_a_partition() {
    let net = Net::launch(3, |d, id| python_spec(d, id, "broken_kv.py")).await;
    let history = net.dir.path().join("history.jsonl");
    let rec = Recorder::create(&history).unwrap();
    let (a, b) = (net.client(1, 2000), net.client(2, 2000));
    // Healthy: replication arrives and the read sees the write.
    ok_value(&perform(&rec, &a, 0, &write("k0", "0.0"), 1).await);
    let deadline = Instant::now() + Duration::from_secs(5);
    while perform(&rec, &b, 1, &read("k0"), 2).await.value != json!("0.0") {
        assert!(Instant::now() < deadline, "replication never arrived");
    }
    // n1 cut off: it still acknowledges the write, and n2 cannot know.
    net.isolate(1, LinkMode::Reset);
    rec.nemesis("start-partition", json!({"isolated": 1}))
        .unwrap();
    ok_value(&perform(&rec, &a, 0, &write("k0", "0.1"), 1).await);
    let stale = perform(&rec, &b, 1, &read("k0"), 2).await;
    assert_eq!(ok_value(&stale), &json!("0.0"));
    let report = check_kv(&history);
    assert_eq!(
        report.exit_code(),
        1,
        "a stale read after an acknowledged write must be caught: {}",
        serde_json::to_string(&report).unwrap()
    );
    assert!(report.counterexample.is_some());
}

/// Asks scripted node `node` to do something; it answers `emit_ok`.
async fn tell(router: &Router, node: u64, seq: &mut u64, body: Value) {
    *seq += 1;
    let mut body = body;
    body["msg_id"] = (*seq).into();
    let r = router
        .call("c1", node, body, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(r.body["type"], "emit_ok", "{r:?}");
}

async fn pings(router: &Router, seq: &mut u64, from: u64, to: u64, first: u64, count: u64) {
    tell(
        router,
        from,
        seq,
        json!({"type": "pings", "dest": format!("n{to}"), "from": first, "count": count,
               "report_to": "c9"}),
    )
    .await;
}

/// Collects the `seq` of every ping report arriving within `wait`.
async fn received(mb: &mut mpsc::UnboundedReceiver<ClientMessage>, wait: Duration) -> Vec<u64> {
    let mut got = Vec::new();
    let deadline = Instant::now() + wait;
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, mb.recv()).await {
        got.push(m.body["seq"].as_u64().unwrap());
    }
    got
}

/// Waits for exactly `n` reports (or fails after 5 s).
async fn received_n(mb: &mut mpsc::UnboundedReceiver<ClientMessage>, n: usize) -> Vec<u64> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(5), mb.recv()).await {
            Ok(Some(m)) => got.push(m.body["seq"].as_u64().unwrap()),
            _ => panic!("expected {n} reports, got {got:?}"),
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_stall_reset_delay_and_message_faults_act_on_what_nodes_send() {
    let net = Net::launch(3, |d, id| python_spec(d, id, "scripted_node.py")).await;
    let r = net.router().clone();
    let mut mb = r.mailbox("c9");
    let mut seq = 0;

    pings(&r, &mut seq, 1, 2, 0, 5).await;
    assert_eq!(received_n(&mut mb, 5).await, vec![0, 1, 2, 3, 4]);

    // stall: held, then delivered in order after the heal.
    r.set_mode(1, 2, LinkMode::Stall).unwrap();
    pings(&r, &mut seq, 1, 2, 5, 5).await;
    assert_eq!(
        received(&mut mb, Duration::from_millis(300)).await,
        Vec::<u64>::new()
    );
    r.heal();
    assert_eq!(received_n(&mut mb, 5).await, vec![5, 6, 7, 8, 9]);

    // reset: lost. The emitting process decides the link, not `src`.
    r.set_mode(1, 2, LinkMode::Reset).unwrap();
    pings(&r, &mut seq, 1, 2, 10, 3).await;
    tell(
        &r,
        1,
        &mut seq,
        json!({"type": "pings", "dest": "n2", "from": 13, "count": 1, "report_to": "c9",
               "src": "n3"}),
    )
    .await;
    pings(&r, &mut seq, 3, 2, 14, 1).await;
    assert_eq!(received_n(&mut mb, 1).await, vec![14]);
    assert_eq!(
        received(&mut mb, Duration::from_millis(200)).await,
        Vec::<u64>::new()
    );
    assert_eq!(r.stats().cut, 4);
    r.heal();

    // delay: late, in order.
    r.set_mode(
        1,
        2,
        LinkMode::Delay {
            latency_ms: 150,
            jitter_ms: 30,
        },
    )
    .unwrap();
    let sent = Instant::now();
    pings(&r, &mut seq, 1, 2, 20, 4).await;
    assert_eq!(received_n(&mut mb, 4).await, vec![20, 21, 22, 23]);
    assert!(sent.elapsed() >= Duration::from_millis(150));
    r.heal();

    // Message faults: drop, duplicate, reorder, delay.
    let faults = |f: MessageFaults| r.set_faults(1, 2, f).unwrap();
    faults(MessageFaults {
        drop: 1.0,
        ..Default::default()
    });
    pings(&r, &mut seq, 1, 2, 30, 3).await;
    faults(MessageFaults {
        duplicate: 1.0,
        ..Default::default()
    });
    pings(&r, &mut seq, 1, 2, 40, 2).await;
    assert_eq!(received_n(&mut mb, 4).await, vec![40, 40, 41, 41]);
    faults(MessageFaults {
        reorder: 1.0,
        ..Default::default()
    });
    pings(&r, &mut seq, 1, 2, 50, 4).await;
    assert_eq!(received_n(&mut mb, 4).await, vec![51, 50, 53, 52]);
    faults(MessageFaults {
        delay: 1.0,
        delay_ms: 50,
        jitter_ms: 50,
        ..Default::default()
    });
    pings(&r, &mut seq, 1, 2, 60, 5).await;
    let mut late = received_n(&mut mb, 5).await;
    late.sort_unstable();
    assert_eq!(late, vec![60, 61, 62, 63, 64]);
    assert!(r
        .set_faults(
            1,
            2,
            MessageFaults {
                drop: 2.0,
                ..Default::default()
            }
        )
        .is_err());
    // A heal restores the links; message faults stay until cleared.
    r.heal();
    r.set_all_faults(MessageFaults::none()).unwrap();

    // Garbage from a node is counted and skipped; routing goes on.
    for line in ["this is not json", r#"{"src":"n1","body":{"type":"x"}}"#] {
        tell(&r, 1, &mut seq, json!({"type": "emit_raw", "line": line})).await;
    }
    tell(
        &r,
        1,
        &mut seq,
        json!({"type": "emit", "dest": "n9", "body": {"type": "x"}}),
    )
    .await;
    pings(&r, &mut seq, 1, 2, 70, 1).await;
    assert_eq!(received_n(&mut mb, 1).await, vec![70]);

    // A dead node: requests are not sent, messages to it are lost.
    net.host.kill(3).unwrap();
    let call = r
        .call(
            "c1",
            3,
            json!({"type": "pings", "msg_id": 999}),
            Duration::from_secs(1),
        )
        .await;
    assert!(matches!(call, Err(CallError::NotSent(_))), "{call:?}");
    pings(&r, &mut seq, 1, 3, 80, 2).await;
    net.host.start(3).await.unwrap();
    pings(&r, &mut seq, 1, 3, 82, 1).await;
    assert_eq!(received_n(&mut mb, 1).await, vec![82]);

    let s = r.stats();
    assert_eq!((s.malformed, s.unknown_dest), (2, 1), "{s:?}");
    assert_eq!(
        (s.dropped, s.duplicated, s.reordered, s.delayed),
        (3, 2, 2, 5),
        "{s:?}"
    );
    assert_eq!((s.held, s.cut), (5, 4), "{s:?}");
    assert!(s.dead >= 2, "{s:?}");
    r.flush_log();
    let log = std::fs::read_to_string(net.dir.path().join("net.jsonl")).unwrap();
    let actions: std::collections::BTreeSet<String> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for a in [
        "deliver",
        "drop",
        "cut",
        "hold",
        "delay",
        "duplicate",
        "reorder",
        "dead",
        "client",
        "malformed",
        "unknown-dest",
    ] {
        assert!(
            actions.contains(a),
            "no {a} in the message log: {actions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wire_observer_reports_two_leaders_and_a_double_vote() {
    let net = Net::launch(3, |d, id| python_spec(d, id, "scripted_node.py")).await;
    let r = net.router().clone();
    let mut seq = 0;
    let ae = json!({"type": "append_entries", "term": 3, "leader_id": "n1", "prev_log_index": 0,
                    "prev_log_term": 0, "entries": [], "leader_commit": 0});
    tell(
        &r,
        1,
        &mut seq,
        json!({"type": "emit", "dest": "n3", "body": ae}),
    )
    .await;
    assert!(r.violations().is_empty());
    // n2 claims to be n1 in `src`: the router still knows n2 wrote it.
    tell(
        &r,
        2,
        &mut seq,
        json!({"type": "emit", "dest": "n3", "src": "n1", "body": ae}),
    )
    .await;
    let grant = json!({"type": "request_vote_res", "term": 4, "vote_granted": true});
    for candidate in ["n1", "n1", "n2"] {
        tell(
            &r,
            3,
            &mut seq,
            json!({"type": "emit", "dest": candidate, "body": grant}),
        )
        .await;
    }
    let v = r.violations();
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(
        matches!(&v[0], Violation::TwoLeaders { term: 3, first, second, .. }
            if first == "n1" && second == "n2"),
        "{v:?}"
    );
    assert!(
        matches!(&v[1], Violation::DoubleVote { term: 4, node, first, second, .. }
            if node == "n3" && first == "n1" && second == "n2"),
        "{v:?}"
    );
    assert_eq!(r.observations().len(), 4, "{:?}", r.observations());
}

#[test]
fn supervisor_pipes_hand_stdin_and_stdout_to_the_caller() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::new();
    sup.register(
        1,
        ProcessSpec {
            program: "sh".into(),
            args: vec!["-c".into(), "echo to-the-log >&2; exec cat".into()],
            log_path: dir.path().join("n1/node.log"),
            env: Vec::new(),
        },
    );
    for round in 0..2 {
        let mut p = sup.start_piped(1).unwrap();
        writeln!(p.stdin, "hello {round}").unwrap();
        let mut out = BufReader::new(p.stdout);
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, format!("hello {round}\n"));
        // Its own process group, as every supervised process.
        assert_eq!(
            nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(p.pid as i32)))
                .unwrap()
                .as_raw(),
            p.pid as i32
        );
        sup.kill(1).unwrap();
        line.clear();
        assert_eq!(
            out.read_line(&mut line).unwrap(),
            0,
            "stdout ends with the process"
        );
    }
    assert_eq!(sup.starts(1), 2);
    let log = std::fs::read_to_string(dir.path().join("n1/node.log")).unwrap();
    assert_eq!(
        log.lines().filter(|l| *l == "to-the-log").count(),
        2,
        "{log}"
    );
    assert_eq!(log.matches("=== harness: start #").count(), 2, "{log}");
    let p = sup.start_piped(1).unwrap();
    drop(sup);
    let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid as i32), None).is_err();
    assert!(gone, "dropping the supervisor reaps a piped process too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_its_oldest_messages_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = RouterConfig::new(vec![1, 2], 7);
    cfg.queue_limit = 4;
    cfg.net_log = Some(dir.path().join("net.jsonl"));
    let router = Arc::new(Router::new(cfg).unwrap());
    let host = Host::new(router.clone());
    for id in 1..=2 {
        host.register(id, python_spec(dir.path(), id, "scripted_node.py"));
    }
    host.start_all().await.unwrap();
    let mut mb = router.mailbox("c9");
    let mut seq = 0;

    // A stalled link keeps the newest 4 of 10 (the node wrote the pings
    // before its emit_ok, so all were routed once `pings` returns).
    router.set_mode(1, 2, LinkMode::Stall).unwrap();
    pings(&router, &mut seq, 1, 2, 0, 10).await;
    router.heal();
    assert_eq!(received_n(&mut mb, 4).await, vec![6, 7, 8, 9]);
    assert!(received(&mut mb, Duration::from_millis(300))
        .await
        .is_empty());
    assert_eq!(router.stats().overflow, 6);

    // A paused node reads nothing: once its pipe is full, its stdin queue
    // keeps the newest messages and the sender is never held up.
    host.pause(2).unwrap();
    pings(&router, &mut seq, 1, 2, 100, 3000).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    host.resume(2).unwrap();
    let mut got = Vec::new();
    while got.last() != Some(&3099) {
        let more = received(&mut mb, Duration::from_secs(3)).await;
        assert!(!more.is_empty(), "the newest ping never came: {got:?}");
        got.extend(more);
    }
    assert!(got.windows(2).all(|w| w[0] < w[1]), "order kept: {got:?}");
    assert!(got.len() < 3000, "nothing was dropped");
    let dropped = router.stats().overflow - 6;
    assert_eq!(dropped as usize, 3000 - got.len(), "every loss counted");
    router.flush_log();
    let log = std::fs::read_to_string(dir.path().join("net.jsonl")).unwrap();
    assert!(log.contains("\"action\":\"overflow\""));
}
