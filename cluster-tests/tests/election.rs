//! What it breaks: the leader of a three-node cluster, by SIGKILL, just
//! after it committed an entry that reached only one follower (the link
//! between the leader and the other follower is cut), so the follower
//! whose timer runs out first is the one whose log is behind: it cannot
//! win.
//!
//! What it expects: the follower with the longer log stands as soon as it
//! refuses that candidate (its own lease being over, `node/src/net/stand.rs`),
//! not when its own timer runs out. Its election timeout is set long (6 s)
//! so that its own timer would make it leader only about 12 s after the
//! kill (a lease of `election-max` plus an election timeout); standing at
//! once, it leads at the first request the other follower sends after
//! that lease (6.1 s), which come every 1.5–1.8 s. The test wants it
//! leader within 10 s, and the committed entry kept.

use std::time::{Duration, Instant};

use cluster_tests::cluster::Cluster;

/// The follower with the longer log: slow to stand by its own timer.
const SLOW: usize = 2;

fn timeouts(i: usize) -> Vec<(String, String)> {
    match i {
        SLOW => vec![("JOBD_ELECTION_MIN_MS".into(), "6000".into()), ("JOBD_ELECTION_MAX_MS".into(), "6100".into())],
        _ => vec![],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_follower_with_the_longer_log_stands_when_the_shorter_cannot_win() {
    let mut c = Cluster::start_proxied_with(3, timeouts).await.expect("cluster");
    let mut leader = c.wait_leader().await.unwrap();
    if leader == SLOW {
        // Hand the leadership to a fast node: kill the slow one, then let
        // it back in as a follower.
        c.kill(SLOW).await.unwrap();
        leader = c.wait_leader_among(&[0, 1]).await.unwrap();
        c.restart(SLOW).await.unwrap();
        c.wait_leader().await.unwrap();
    }
    let behind = (0..3).find(|i| *i != leader && *i != SLOW).unwrap();
    let slow_id = c.nodes[SLOW].id;

    // The leader's link to `behind` (both ways) is cut; an entry then
    // commits on the leader and the slow follower only.
    c.links[&(leader, behind)].cut(true);
    c.links[&(behind, leader)].cut(true);
    let fs = c.client(leader).await.unwrap();
    fs.write("clone", b"kept:0 0 1 1 *:true").await.expect("create a job on the leader");
    let commit = c.ctl_num(leader, "commit").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.ctl_num(SLOW, "applied").await.unwrap_or(0) < commit {
        assert!(Instant::now() < deadline, "the slow follower did not apply index {commit}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let behind_applied = c.ctl_num(behind, "applied").await.unwrap();
    assert!(behind_applied < commit, "the cut follower applied {behind_applied}, the write is at {commit}: its log is not behind");

    let killed = Instant::now();
    c.kill(leader).await.expect("SIGKILL the leader");
    let elected = loop {
        let views = [c.ctl(behind).await.ok(), c.ctl(SLOW).await.ok()];
        let says = |v: &Option<std::collections::HashMap<String, String>>| v.as_ref().and_then(|m| m.get("leader")).and_then(|l| l.parse::<u64>().ok());
        if says(&views[0]) == Some(slow_id) && says(&views[1]) == Some(slow_id) {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "no leader 10 s after the kill (the follower with the longer log waited for its own timer?)\n{}",
            c.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("the follower with the longer log led {} ms after the kill", elected.as_millis());
    let schedule = c.read(SLOW, "jobs/kept/schedule").await;
    assert!(schedule.contains("0 0 1 1 *"), "the committed job is kept: schedule reads {schedule:?}");
    let logged = std::fs::read_to_string(c.nodes[SLOW].dir.join("jobd.log")).unwrap();
    assert!(logged.contains("standing at once"), "the slow follower stood at once (its log says so)");
}
