//! What it breaks: every node at once, by SIGKILL, then all restarted on
//! their directories; and, separately, a follower by SIGKILL.
//!
//! What it expects: every acknowledged create is still there on every
//! node; the job keeps firing after the restart; no scheduled time ran
//! twice. It asserts each kill took effect (the processes were reaped and
//! the cluster had no leader to answer).

use std::collections::HashSet;
use std::time::Duration;

use cluster_tests::cluster::Cluster;
use cluster_tests::wait_for;

fn witness(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn all_three_killed_and_restarted_lose_nothing_acknowledged() {
    let mut c = Cluster::start(3).await.expect("cluster");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("witness");
    let leader = c.wait_leader().await.unwrap();
    let fs = c.client(leader).await.unwrap();
    let mut acked = vec![];
    for i in 0..30 {
        if fs.write("clone", format!("keep{i}:@daily:true").as_bytes()).await.is_ok() {
            acked.push(format!("keep{i}"));
        }
    }
    assert_eq!(acked.len(), 30);
    fs.write("clone", format!("tick:* * * * * *:echo $JOBD_SCHEDULED_TIME >> {}", path.display()).as_bytes()).await.unwrap();
    fs.write("jobs/tick/ctl", b"start").await.unwrap();
    wait_for("two runs", Duration::from_secs(20), async || witness(&path).len() >= 2).await;
    drop(fs);
    for i in 0..3 {
        c.kill(i).await.expect("SIGKILL");
    }
    assert!(c.ctl(0).await.is_err(), "nobody answers while all are down");
    for i in 0..3 {
        c.restart(i).await.unwrap();
    }
    c.wait_leader().await.unwrap();
    let seen = witness(&path).len();
    wait_for("firing again", Duration::from_secs(20), async || witness(&path).len() >= seen + 2).await;
    for i in 0..3 {
        let jobs = String::from_utf8(c.client(i).await.unwrap().read("ctl").await.unwrap()).unwrap();
        assert!(jobs.contains("leader "), "{jobs}");
        let fs = c.client(i).await.unwrap();
        for name in &acked {
            wait_for("every acknowledged job on every node", Duration::from_secs(10), async || {
                fs.read(&format!("jobs/{name}/cmd")).await.is_ok()
            })
            .await;
        }
    }
    let lines = witness(&path);
    let unique: HashSet<&String> = lines.iter().collect();
    assert_eq!(unique.len(), lines.len(), "a scheduled time ran twice: {lines:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_follower_does_not_stop_firing() {
    let mut c = Cluster::start(3).await.expect("cluster");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("witness");
    let leader = c.wait_leader().await.unwrap();
    let fs = c.client(leader).await.unwrap();
    fs.write("clone", format!("tick:* * * * * *:echo $JOBD_SCHEDULED_TIME >> {}", path.display()).as_bytes()).await.unwrap();
    fs.write("jobs/tick/ctl", b"start").await.unwrap();
    wait_for("two runs", Duration::from_secs(20), async || witness(&path).len() >= 2).await;
    let follower = (leader + 1) % 3;
    c.kill(follower).await.expect("SIGKILL");
    let seen = witness(&path).len();
    wait_for("firing with one node down", Duration::from_secs(20), async || witness(&path).len() >= seen + 3).await;
    assert_eq!(c.wait_leader().await.unwrap(), leader, "the leader did not change");
    let applied = |m: &std::collections::HashMap<String, String>| m["applied"].parse::<u64>().unwrap();
    let target = applied(&c.ctl(leader).await.unwrap());
    c.restart(follower).await.unwrap();
    wait_for("the follower to catch up past what it missed", Duration::from_secs(20), async || {
        applied(&c.ctl(follower).await.unwrap()) >= target
    })
    .await;
    let lines = witness(&path);
    let unique: HashSet<&String> = lines.iter().collect();
    assert_eq!(unique.len(), lines.len(), "a scheduled time ran twice");
}
