//! What it breaks: the leader, by SIGSTOP for longer than the election
//! timeout, while a job fires every second; then SIGCONT.
//!
//! What it expects: the others elect a leader and keep firing; the resumed
//! old leader starts no run for any time after it was stopped (its fence
//! is gone, and anything it had accepted is past its start deadline); no
//! scheduled time runs twice. It asserts the pause took effect (the process
//! was in state T and the term rose).

use std::collections::HashSet;
use std::time::Duration;

use cluster_tests::cluster::Cluster;
use cluster_tests::wait_for;

fn witness(path: &std::path::Path) -> Vec<(i64, u64)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (t, node) = l.split_once(' ').unwrap();
            (chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp(), node.trim().parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resumed_old_leader_starts_no_run() {
    let c = Cluster::start(3).await.expect("cluster");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("witness");
    let old = c.wait_leader().await.unwrap();
    let fs = c.client(old).await.unwrap();
    let clone = format!("tick:* * * * * *:echo $JOBD_SCHEDULED_TIME $JOBD_NODE >> {}", path.display());
    fs.write("clone", clone.as_bytes()).await.unwrap();
    fs.write("jobs/tick/ctl", b"start").await.unwrap();
    wait_for("three runs", Duration::from_secs(20), async || witness(&path).len() >= 3).await;
    let term: u64 = c.ctl(old).await.unwrap()["term"].parse().unwrap();

    c.pause(old, true).await.unwrap();
    let stopped_at = chrono::Utc::now().timestamp();
    assert!(c.is_paused(old), "the leader is stopped");
    let others: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    let new = c.wait_leader_among(&others).await.unwrap();
    let new_term: u64 = c.ctl(new).await.unwrap()["term"].parse().unwrap();
    assert!(new_term > term, "a new term while the old leader sleeps");
    let seen = witness(&path).len();
    wait_for("the new leader to fire", Duration::from_secs(20), async || witness(&path).len() >= seen + 3).await;

    c.pause(old, false).await.unwrap();
    let resumed_at = chrono::Utc::now().timestamp();
    let seen = witness(&path).len();
    wait_for("firing after the resume", Duration::from_secs(20), async || witness(&path).len() >= seen + 3).await;
    c.wait_leader().await.unwrap();

    let lines = witness(&path);
    let times: HashSet<i64> = lines.iter().map(|(t, _)| *t).collect();
    assert_eq!(times.len(), lines.len(), "a scheduled time ran twice: {lines:?}");
    let old_id = old as u64 + 1;
    // (Later, as an ordinary follower, it could lead again under a new fence.)
    let late: Vec<_> = lines.iter().filter(|(t, n)| *n == old_id && *t > stopped_at + 1 && *t <= resumed_at + 2).collect();
    assert!(late.is_empty(), "the old leader ran times from its stop to its resume: {late:?}");
}
