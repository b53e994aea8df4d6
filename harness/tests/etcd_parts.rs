//! The etcd parts against real etcd 3.4 processes (Debian: `apt-get install
//! -y etcd-server`): 3-member clusters whose peer traffic goes through the
//! identified proxy mesh. A missing etcd fails every test with that advice.
//!
//! Each cluster is an `EtcdCluster`, whose supervisor SIGKILLs every
//! member's process group when it is dropped, also when a test panics. The
//! tests run one at a time: three members per test already share the
//! machine's cores with everything else.

use std::collections::BTreeMap;
use std::time::Duration;

use harness::cluster::{NodeId, ProcessState};
use harness::history::EventType;
use harness::proxy::LinkMode;
use harness::systems::etcd::{
    CallError, Cas, Effect, EtcdBinary, EtcdCluster, EtcdClusterConfig, RaftState, RaftStatus,
};
use tokio::time::Instant;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Fixture {
    // Dropped first: kills the members before their folder goes.
    cluster: EtcdCluster,
    _dir: tempfile::TempDir,
}

async fn cluster(pre_vote: bool) -> Fixture {
    let binary =
        EtcdBinary::locate(None).unwrap_or_else(|e| panic!("these tests run real etcd 3.4: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let mut config = EtcdClusterConfig::new(binary, dir.path(), 3);
    config.timing.pre_vote = pre_vote;
    let cluster = EtcdCluster::launch(config).await.unwrap();
    Fixture { cluster, _dir: dir }
}

/// Every status that answered.
async fn statuses(c: &EtcdCluster, ids: &[NodeId]) -> BTreeMap<NodeId, RaftStatus> {
    let mut out = BTreeMap::new();
    for &id in ids {
        if let Ok(s) = c.status(id).await {
            out.insert(id, s);
        }
    }
    out
}

/// Polls until a leader among `ids` is followed, in its term, by every
/// member of `ids`; returns it and its term. `pred` may ask for more.
async fn agreed_leader(
    c: &EtcdCluster,
    ids: &[NodeId],
    within: Duration,
    pred: impl Fn(NodeId, &RaftStatus) -> bool,
) -> (NodeId, u64) {
    let deadline = Instant::now() + within;
    loop {
        let st = statuses(c, ids).await;
        let leader = st
            .iter()
            .find(|(_, s)| s.state == RaftState::Leader)
            .map(|(&id, s)| (id, s.clone()));
        if let Some((id, l)) = leader {
            let all = ids.iter().all(|m| {
                st.get(m)
                    .is_some_and(|s| s.term == l.term && s.lead == Some(l.id))
            });
            if all && pred(id, &l) {
                return (id, l.term);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no leader agreed by {ids:?} within {within:?}: {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls a serializable read of `key` on `id` until it returns `want`.
async fn converges(c: &EtcdCluster, id: NodeId, key: &[u8], want: &[u8], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = c.client(id).get(key, true).await;
        if let Ok(r) = &got {
            if r.kv.as_ref().map(|kv| kv.value.as_slice()) == Some(want) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "n{id} never read {:?} for {:?}: last {got:?}",
            String::from_utf8_lossy(want),
            String::from_utf8_lossy(key)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn others(c: &EtcdCluster, id: NodeId) -> Vec<NodeId> {
    c.node_ids().into_iter().filter(|&o| o != id).collect()
}

#[tokio::test]
async fn puts_reads_and_cas_through_the_identified_mesh_have_the_right_outcomes() {
    let _one = ONE_AT_A_TIME.lock().await;
    let f = cluster(false).await;
    let c = &f.cluster;
    let all = c.node_ids();
    let (leader, _) = agreed_leader(c, &all, Duration::from_secs(20), |_, _| true).await;
    let follower = others(c, leader)[0];

    // A put through a follower (etcd forwards it), a linearizable read
    // through another member.
    c.client(follower).put(b"k", b"v1").await.unwrap();
    let r = c
        .client(others(c, follower)[0])
        .get(b"k", false)
        .await
        .unwrap();
    assert_eq!(r.kv.unwrap().value, b"v1");
    let missing = c.client(leader).get(b"nokey", false).await.unwrap();
    assert_eq!(missing.kv, None, "a missing key is an answer without kvs");

    // cas: a matching compare swaps (ok), a stale one is a precondition
    // observation (fail) that reports the current value.
    let swapped = c.client(follower).cas(b"k", b"v1", b"v2").await.unwrap();
    assert!(matches!(swapped, Cas::Swapped { .. }));
    assert_eq!(swapped.outcome(), EventType::Ok);
    let stale = c.client(leader).cas(b"k", b"v1", b"v3").await.unwrap();
    match &stale {
        Cas::Mismatch { current, .. } => {
            assert_eq!(current.as_ref().unwrap().value, b"v2")
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert_eq!(stale.outcome(), EventType::Fail);
    let absent = c.client(leader).cas(b"none", b"x", b"y").await.unwrap();
    assert_eq!(
        absent,
        match &absent {
            Cas::Mismatch { header, .. } => Cas::Mismatch {
                header: *header,
                current: None
            },
            other => panic!("a cas on a missing key must fail, got {other:?}"),
        }
    );
    let first = c.client(leader).put_if_absent(b"once", b"a").await.unwrap();
    assert_eq!(first.outcome(), EventType::Ok);
    let second = c
        .client(follower)
        .put_if_absent(b"once", b"b")
        .await
        .unwrap();
    assert!(
        matches!(&second, Cas::Mismatch { current: Some(kv), .. } if kv.value == b"a"),
        "{second:?}"
    );
    for id in &all {
        converges(c, *id, b"k", b"v2", Duration::from_secs(5)).await;
    }

    // Errors that prove nothing happened are fail even for writes.
    let e = c.client(leader).put(b"", b"x").await.unwrap_err();
    assert!(
        matches!(
            &e,
            CallError::Server {
                status: 400,
                code: Some(3),
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.outcome(Effect::Write), EventType::Fail);
    let nobody = harness::cluster::free_port().unwrap();
    let e = harness::systems::etcd::EtcdClient::new(
        harness::systems::etcd::client::http_client(Duration::from_secs(1)).unwrap(),
        nobody,
        Duration::from_secs(1),
    )
    .put(b"k", b"x")
    .await
    .unwrap_err();
    assert!(matches!(e, CallError::NotSent(_)), "{e:?}");
    assert_eq!(e.outcome(Effect::Write), EventType::Fail);

    // Every peer connection was named: members are the only dialers.
    let ids = c.mesh().unwrap().identify_stats().unwrap();
    assert!(ids.identified >= 6, "{ids:?}");
    assert_eq!(ids.unidentified, 0, "{ids:?}");
    let ids_by_member = c.etcd_ids().await.unwrap();
    for id in &all {
        let status = c.status(*id).await.unwrap();
        assert_eq!(
            ids_by_member[id], status.id,
            "the v3 JSON's decimal id is /debug/vars' hex id"
        );
        assert_eq!(c.node_of_etcd_id(status.lead.unwrap()).await, Some(leader));
    }
}

#[tokio::test]
async fn an_isolated_leader_is_replaced_serves_stale_serializable_reads_and_rejoins_on_heal() {
    let _one = ONE_AT_A_TIME.lock().await;
    let f = cluster(false).await;
    let c = &f.cluster;
    let mesh = c.mesh().unwrap();
    let all = c.node_ids();
    let (old, term) = agreed_leader(c, &all, Duration::from_secs(20), |_, _| true).await;
    c.client(old).put(b"k", b"before").await.unwrap();
    for id in &all {
        converges(c, *id, b"k", b"before", Duration::from_secs(5)).await;
    }

    let rest = others(c, old);
    let cut: Vec<_> = rest
        .iter()
        .flat_map(|&o| [(old, o, LinkMode::Stall), (o, old, LinkMode::Stall)])
        .collect();
    mesh.apply(&cut).unwrap();
    let (new, new_term) =
        agreed_leader(c, &rest, Duration::from_secs(20), |_, l| l.term > term).await;
    assert_ne!(new, old);
    c.client(new).put(b"k", b"after").await.unwrap();

    // The old leader still serves its own state: stale, not linearizable.
    let stale = c.client(old).get(b"k", true).await.unwrap();
    assert_eq!(stale.kv.unwrap().value, b"before");
    let slow = c.client(old).with_timeout(Duration::from_secs(1));
    let w = slow.put(b"k", b"lost?").await.unwrap_err();
    assert_eq!(w.outcome(Effect::Write), EventType::Info, "{w:?}");
    let r = slow.get(b"k", false).await.unwrap_err();
    assert_eq!(r.outcome(Effect::Read), EventType::Fail, "{r:?}");
    let new_id = c.status(new).await.unwrap().id;
    let isolated = c.status(old).await.unwrap();
    assert_ne!(
        isolated.lead,
        Some(new_id),
        "the isolated member cannot have heard of the new leader: {isolated:?}"
    );

    mesh.heal();
    // Without pre-vote the rejoining member's higher term may depose the
    // new leader first: any leader, as long as everyone follows it.
    agreed_leader(c, &all, Duration::from_secs(30), |_, l| l.term >= new_term).await;
    for id in &all {
        converges(c, *id, b"k", b"after", Duration::from_secs(10)).await;
    }
    // The write through the isolated leader timed out: it may or may not
    // have been applied, which is what `info` says. Either way every member
    // now agrees with a linearizable read.
    let settled = c
        .client(old)
        .get(b"k", false)
        .await
        .unwrap()
        .kv
        .unwrap()
        .value;
    for id in &all {
        converges(c, *id, b"k", &settled, Duration::from_secs(10)).await;
    }
}

#[tokio::test]
async fn a_leader_cut_one_way_hears_the_new_leader_but_cannot_be_heard() {
    let _one = ONE_AT_A_TIME.lock().await;
    // Pre-vote keeps the cut member from campaigning into terms nobody hears.
    let f = cluster(true).await;
    let c = &f.cluster;
    let mesh = c.mesh().unwrap();
    let all = c.node_ids();
    let (old, term) = agreed_leader(c, &all, Duration::from_secs(20), |_, _| true).await;
    c.client(old).put(b"k", b"before").await.unwrap();
    for id in &all {
        converges(c, *id, b"k", b"before", Duration::from_secs(5)).await;
    }
    let rest = others(c, old);
    let cut: Vec<_> = rest.iter().map(|&o| (old, o, LinkMode::Stall)).collect();
    mesh.apply(&cut).unwrap();

    // The others stop hearing it and elect a new leader; the old leader
    // hears that leader's heartbeats and follows it in its term.
    let (new, new_term) =
        agreed_leader(c, &all, Duration::from_secs(20), |_, l| l.term > term).await;
    assert_ne!(new, old);
    let follower = c.status(old).await.unwrap();
    assert_eq!(follower.state, RaftState::Follower, "{follower:?}");
    assert_eq!(follower.term, new_term);

    // Nothing the old leader sends gets out: its proposals time out. The new
    // leader never hears it acknowledge anything, so it never tells it that
    // the new write committed.
    c.client(new).put(b"k", b"via-new").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stale = c.client(old).get(b"k", true).await.unwrap();
    assert_eq!(stale.kv.unwrap().value, b"before");
    let slow = c.client(old).with_timeout(Duration::from_secs(1));
    let w = slow.put(b"k", b"via-old").await.unwrap_err();
    assert_eq!(w.outcome(Effect::Write), EventType::Info, "{w:?}");
    let (again, _) = agreed_leader(c, &all, Duration::from_secs(5), |_, _| true).await;
    assert_eq!(again, new, "the cut member must not disrupt the new leader");

    mesh.heal();
    agreed_leader(c, &all, Duration::from_secs(20), |_, _| true).await;
    c.client(old).put(b"k", b"healed").await.unwrap();
    for id in &all {
        converges(c, *id, b"k", b"healed", Duration::from_secs(10)).await;
    }
}

#[tokio::test]
async fn members_killed_with_sigkill_restart_on_their_data_and_rejoin_and_paused_ones_resume() {
    let _one = ONE_AT_A_TIME.lock().await;
    let f = cluster(false).await;
    let c = &f.cluster;
    let all = c.node_ids();
    let (leader, _) = agreed_leader(c, &all, Duration::from_secs(20), |_, _| true).await;
    let follower = others(c, leader)[0];
    let follower_id = c.status(follower).await.unwrap().id;

    c.kill(follower).unwrap();
    assert_eq!(c.state(follower), Some(ProcessState::Stopped));
    c.client(leader).put(b"k", b"while-down").await.unwrap();
    c.restart(follower).unwrap();
    agreed_leader(c, &all, Duration::from_secs(20), |_, _| true).await;
    converges(c, follower, b"k", b"while-down", Duration::from_secs(10)).await;
    assert_eq!(
        c.status(follower).await.unwrap().id,
        follower_id,
        "restarted on its own data, it is the same member"
    );

    // The leader too: the others elect a new one, the old one follows it.
    let (_, term) = agreed_leader(c, &all, Duration::from_secs(20), |_, _| true).await;
    c.kill(leader).unwrap();
    let rest = others(c, leader);
    let (new, _) = agreed_leader(c, &rest, Duration::from_secs(20), |_, l| l.term > term).await;
    c.client(new).put(b"k", b"new-leader").await.unwrap();
    c.restart(leader).unwrap();
    agreed_leader(c, &all, Duration::from_secs(20), |_, _| true).await;
    converges(c, leader, b"k", b"new-leader", Duration::from_secs(10)).await;
    assert_eq!(c.supervisor().starts(leader), 2);

    // SIGSTOP and SIGCONT of a follower: the others go on, it catches up.
    let (l, _) = agreed_leader(c, &all, Duration::from_secs(20), |_, _| true).await;
    let paused = others(c, l)[0];
    c.pause(paused).unwrap();
    assert_eq!(c.state(paused), Some(ProcessState::Paused));
    c.client(l).put(b"k", b"while-paused").await.unwrap();
    c.resume(paused).unwrap();
    converges(c, paused, b"k", b"while-paused", Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_removed_member_returns_as_a_new_member_on_a_fresh_data_dir() {
    let _one = ONE_AT_A_TIME.lock().await;
    let f = cluster(false).await;
    let c = &f.cluster;
    let all = c.node_ids();
    let (leader, _) = agreed_leader(c, &all, Duration::from_secs(20), |_, _| true).await;
    let gone = others(c, leader)[0];
    let old_id = c.etcd_ids().await.unwrap()[&gone];

    c.remove_member(gone).await.unwrap();
    let t = Instant::now();
    while c.state(gone) == Some(ProcessState::Running) && t.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        c.state(gone),
        Some(ProcessState::Stopped),
        "etcd stops a member once it learns of its removal"
    );
    let ids = c.etcd_ids().await.unwrap();
    assert!(!ids.contains_key(&gone), "{ids:?}");
    assert_eq!(ids.len(), 2);
    let rest = others(c, gone);
    c.client(leader).put(b"k", b"two-members").await.unwrap();

    c.add_member(gone).await.unwrap();
    let member = c.member(gone).unwrap();
    assert_eq!(member.state, harness::systems::etcd::InitialState::Existing);
    agreed_leader(c, &all, Duration::from_secs(30), |_, _| true).await;
    converges(c, gone, b"k", b"two-members", Duration::from_secs(10)).await;
    let ids = c.etcd_ids().await.unwrap();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_ne!(ids[&gone], old_id, "a new member has a new id");
    let names: Vec<_> = c
        .member_list()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert!(
        names.iter().all(|n| !n.is_empty()),
        "all started: {names:?}"
    );
    c.client(gone).put(b"k", b"via-new-member").await.unwrap();
    for id in &rest {
        converges(c, *id, b"k", b"via-new-member", Duration::from_secs(10)).await;
    }
}
