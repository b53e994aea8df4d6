//! Damaged data dirs: a torn final record is truncated with a warning and the
//! node rejoins; a flipped byte in the middle of the log refuses to start
//! with an error naming the file and the offset.

mod common;

use common::{last_segment, wait_exit, Cluster};
use serde_json::json;
use std::time::Duration;

async fn write_keys(c: &Cluster, prefix: &str, n: usize) {
    for i in 0..n {
        c.put_acked(
            &format!("{prefix}{i}"),
            &format!("v{i}"),
            Duration::from_secs(5),
        )
        .await;
    }
}

/// A follower that has applied everything written so far.
async fn caught_up_follower(c: &Cluster, leader: u64, key: &str, value: &str) -> u64 {
    let f = *c.running().iter().find(|&&i| i != leader).unwrap();
    c.wait_stale_value(f, key, value, Duration::from_secs(5))
        .await;
    f
}

/// The torn node is the killed leader: a crash in mid-write tears a record
/// that was never acknowledged, and a follower's unacknowledged tail is not
/// something the leader has counted on. Tearing an acknowledged record of a
/// follower instead would contradict what that follower told the leader
/// (its match index), which Raft rules out by fsync-before-ack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_final_record_is_truncated_with_a_warning_and_the_node_rejoins() {
    let mut c = Cluster::start(3, 3, &[]);
    let old = c.wait_leader(Duration::from_secs(5)).await;
    write_keys(&c, "k", 20).await;
    c.kill9(old);

    let seg = last_segment(&c.data_dir(old));
    let len = std::fs::metadata(&seg).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    file.set_len(len - 5).unwrap();
    drop(file);

    write_keys(&c, "m", 5).await;
    c.spawn(old, Some("1,2,3"));
    c.wait_stale_value(old, "m4", "v4", Duration::from_secs(5))
        .await;
    for i in 0..20 {
        assert_eq!(
            c.get(old, &format!("k{i}"), "stale").await.1["value"],
            json!(format!("v{i}"))
        );
    }
    let log = c.log_text(old);
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("torn")
            && l.contains(&*seg.to_string_lossy())),
        "no torn-tail warning naming {}:\n{log}",
        seg.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_the_middle_refuses_to_start_naming_file_and_offset() {
    let mut c = Cluster::start(3, 3, &[]);
    let leader = c.wait_leader(Duration::from_secs(5)).await;
    write_keys(&c, "k", 30).await;
    let f = caught_up_follower(&c, leader, "k29", "v29").await;
    assert!(c.stop(f));

    let seg = last_segment(&c.data_dir(f));
    let mut data = std::fs::read(&seg).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0x5a;
    std::fs::write(&seg, &data).unwrap();

    c.spawn(f, Some("1,2,3"));
    let status = wait_exit(&mut c, f, Duration::from_secs(5)).expect("node must refuse to start");
    assert!(!status.success());
    let log = c.log_text(f);
    let line = log
        .lines()
        .find(|l| l.contains("corrupt"))
        .unwrap_or_else(|| panic!("no corruption error in:\n{log}"));
    assert!(line.contains(&*seg.to_string_lossy()), "{line}");
    assert!(line.contains("offset"), "{line}");
    // The offset named is the start of the damaged record, at or before the flipped byte.
    let offset: usize = line
        .split("offset ")
        .nth(1)
        .and_then(|r| r.split(|ch: char| !ch.is_ascii_digit()).next())
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no numeric offset in {line}"));
    assert!(
        offset <= mid && mid - offset < 200,
        "offset {offset} vs flipped byte {mid}"
    );
    // Nothing was repaired behind our back.
    assert_eq!(std::fs::read(&seg).unwrap(), data);
}
