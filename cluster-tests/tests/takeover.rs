//! Takeover: a leader SIGKILLed while runs it fired wait for a slot
//! (accepted, not yet claimed) leaves them to the next leader, which
//! claims them (`TakeOver`) and begins each itself, once. The queue behind
//! the concurrency cap is the seam that holds runs between acceptance and
//! claim, so the test does not race the claim's 100 ms window; the test
//! seam `JOBD_TEST_HOLD_AFTER_CLAIM_MS` holds runs between claim and gate.
//! A leader whose own fire's answer was lost (`JOBD_TEST_LOSE_FIRE_ANSWERS`)
//! still begins that run, once.

use std::collections::HashMap;
use std::time::Duration;

use cluster_tests::cluster::Cluster;
use cluster_tests::wait_for;

/// `(scheduled second, node)` of each run the witness file saw.
fn witness(path: &std::path::Path) -> Vec<(i64, u64)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (scheduled, node) = l.split_once(' ')?;
            Some((chrono::DateTime::parse_from_rfc3339(scheduled).ok()?.timestamp(), node.trim().parse().ok()?))
        })
        .collect()
}

/// No scheduled time in the witness began twice.
fn each_time_once(seen: &[(i64, u64)]) {
    let mut all: Vec<i64> = seen.iter().map(|(s, _)| *s).collect();
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(all.len(), before, "a scheduled time began twice: {seen:?}");
}

/// `runs` lines: run id to (scheduled second, node, status text).
fn runs(text: &str) -> HashMap<u64, (i64, u64, String)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let id = f.first()?.parse().ok()?;
            let scheduled = chrono::DateTime::parse_from_rfc3339(f.get(1)?).ok()?.timestamp();
            Some((id, (scheduled, f.get(3)?.parse().ok()?, f.get(6..)?.join(" "))))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_leader_begins_once_the_runs_a_killed_leader_fired_and_never_claimed() {
    // One slot per node, held on the leader by a long manual run, so each
    // second's fire of `t` waits in the leader's queue, unclaimed.
    let mut c = Cluster::start_with_env(3, |_| vec![("JOBD_MAX_CONCURRENT_RUNS".into(), "1".into())]).await.expect("cluster");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("witness");
    let old = c.wait_leader().await.unwrap();
    let fs = c.client(old).await.unwrap();
    fs.write("clone", b"hold:@yearly:sleep 120").await.unwrap();
    fs.write("jobs/hold/ctl", b"run").await.unwrap();
    wait_for("the holding run", Duration::from_secs(10), async || c.read(old, "jobs/hold/runs").await.contains(" running")).await;
    let cmd = format!("echo $JOBD_SCHEDULED_TIME $JOBD_NODE >> {}", path.display());
    fs.write("clone", format!("t:* * * * * *:{cmd}").as_bytes()).await.unwrap();
    fs.write("jobs/t/ctl", b"start").await.unwrap();
    wait_for("three fires queued on the leader", Duration::from_secs(15), async || {
        c.ctl_num(old, "runs-queued").await.unwrap_or(0) >= 3
    })
    .await;
    let others: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    // What a follower has applied of the queue, just before the kill; the
    // leader may fire one or two more that also wait.
    let queued: Vec<u64> = runs(&c.read(others[0], "jobs/t/runs").await)
        .into_iter()
        .filter(|(_, (_, _, status))| status == "pending")
        .map(|(id, _)| id)
        .collect();
    assert!(queued.len() >= 2, "runs pending before the kill: {queued:?}");
    c.kill(old).await.unwrap();
    let new = c.wait_leader_among(&others).await.unwrap();
    let new_id = new as u64 + 1;
    wait_for("every queued run to end", Duration::from_secs(30), async || {
        let now = runs(&c.read(new, "jobs/t/runs").await);
        queued.iter().all(|id| now.get(id).is_some_and(|(_, _, s)| s != "pending" && s != "running"))
    })
    .await;
    let now = runs(&c.read(new, "jobs/t/runs").await);
    let seen = witness(&path);
    for id in &queued {
        let (scheduled, node, status) = &now[id];
        assert_eq!((status.as_str(), *node), ("exit 0", new_id), "run {id}: taken over and run by the new leader\n{}", c.log_tails());
        let times = seen.iter().filter(|(s, _)| s == scheduled).count();
        assert_eq!(times, 1, "run {id}'s time {scheduled} began {times} times: {seen:?}");
    }
    // No scheduled time began twice, before or after the kill.
    each_time_once(&seen);
    let log = c.read(new, "jobs/t/log").await;
    assert!(log.contains(&format!("taken over by node {new_id}")), "the log says who took it over:\n{log}");
}

/// A fire that was applied but whose answer never reached the scheduler
/// (a write that timed out and committed anyway; here the test seam
/// `JOBD_TEST_LOSE_FIRE_ANSWERS` drops the leader's first) leaves an
/// accepted run nobody carries out. The leader's sweep carries it out
/// after all, late, under the run's own fence: it runs once, and is not
/// ended `not-started (unanswered)`.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_whose_fire_answer_was_lost_is_begun_once_by_its_leader() {
    let c = Cluster::start_with_env(3, |_| vec![("JOBD_TEST_LOSE_FIRE_ANSWERS".into(), "1".into())]).await.expect("cluster");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("witness");
    let leader = c.wait_leader().await.unwrap();
    let fs = c.client(leader).await.unwrap();
    let cmd = format!("echo $JOBD_SCHEDULED_TIME $JOBD_NODE >> {}", path.display());
    fs.write("clone", format!("t:* * * * * *:{cmd}").as_bytes()).await.unwrap();
    fs.write("jobs/t/ctl", b"start").await.unwrap();
    // The first run: its answer lost, ended only once the sweep acts
    // (the write timeout and a margin after it was proposed).
    let first = cluster_tests::poll::poll("the first run to end", Duration::from_secs(30), Duration::from_millis(200), async || {
        let now = runs(&c.read(leader, "jobs/t/runs").await);
        let (id, (scheduled, _, status)) = now.into_iter().min_by_key(|(id, _)| *id)?;
        (status != "pending" && status != "running").then_some((id, scheduled, status))
    })
    .await;
    let (id, scheduled, status) = first;
    assert_eq!(status, "exit 0", "run {id} (its fire's answer lost) was begun after all\n{}", c.log_tails());
    let seen = witness(&path);
    let times = seen.iter().filter(|(s, _)| *s == scheduled).count();
    assert_eq!(times, 1, "run {id}'s time {scheduled} began {times} times: {seen:?}");
    each_time_once(&seen);
}

/// A claimed run is its claimer's for good: a leader SIGKILLed while its
/// runs are claimed and not yet begun (held between claim and gate by the
/// test seam `JOBD_TEST_HOLD_AFTER_CLAIM_MS`) leaves them to no one. The
/// new leader does not take them over; its sweep ends them `lost` (they
/// may have begun, for all it can know), and none of them begins.
#[tokio::test(flavor = "multi_thread")]
async fn runs_a_killed_leader_had_claimed_are_lost_and_never_begun() {
    let hold = vec![("JOBD_TEST_HOLD_AFTER_CLAIM_MS".to_string(), "20000".to_string())];
    let mut c = Cluster::start_with_env(3, |_| hold.clone()).await.expect("cluster");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("witness");
    let (old, others, held) = claimed_and_held(&c, "c", &path).await;
    c.kill(old).await.unwrap();
    let new = c.wait_leader_among(&others).await.unwrap();
    wait_for("the held runs to be ended by the new leader's sweep", Duration::from_secs(30), async || {
        let now = runs(&c.read(new, "jobs/c/runs").await);
        held.iter().all(|(id, _)| now.get(id).is_some_and(|(_, _, s)| s != "pending"))
    })
    .await;
    let now = runs(&c.read(new, "jobs/c/runs").await);
    for (id, scheduled) in &held {
        assert_eq!(now[id].2, "lost", "run {id}: claimed by the killed leader\n{}", c.log_tails());
        let began: Vec<_> = witness(&path).into_iter().filter(|(s, _)| s == scheduled).collect();
        assert!(began.is_empty(), "run {id}'s time {scheduled} began after all: {began:?}");
    }
}

/// A claim given back is taken over: a leader SIGSTOPped while its runs
/// are claimed and held before their gates, and resumed as soon as a new
/// leader is elected, finds its lease over at the gate, shuts the gates
/// and gives the claims back (`Release`); the new leader takes those runs
/// over and begins each itself, once, and the old one begins none.
#[tokio::test(flavor = "multi_thread")]
async fn runs_a_paused_leader_gives_back_are_taken_over_and_begun_once() {
    let hold = vec![("JOBD_TEST_HOLD_AFTER_CLAIM_MS".to_string(), "4000".to_string())];
    let c = Cluster::start_with_env(3, |_| hold.clone()).await.expect("cluster");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("witness");
    let (old, others, held) = claimed_and_held(&c, "g", &path).await;
    c.pause(old, true).await.unwrap();
    let new = c.wait_leader_among(&others).await.unwrap();
    c.pause(old, false).await.unwrap();
    wait_for("the held runs to end", Duration::from_secs(30), async || {
        let now = runs(&c.read(new, "jobs/g/runs").await);
        held.iter().all(|(id, _)| now.get(id).is_some_and(|(_, _, s)| s != "pending" && s != "running"))
    })
    .await;
    let now = runs(&c.read(new, "jobs/g/runs").await);
    let (old_id, new_id) = (old as u64 + 1, new as u64 + 1);
    for (id, scheduled) in &held {
        assert_eq!((now[id].2.as_str(), now[id].1), ("exit 0", new_id), "run {id}: given back and taken over\n{}", c.log_tails());
        let began: Vec<_> = witness(&path).into_iter().filter(|(s, _)| s == scheduled).collect();
        assert_eq!(began, [(*scheduled, new_id)], "run {id}'s time began once, on the new leader");
    }
    let log = c.read(new, "jobs/g/log").await;
    assert!(log.contains(&format!("given back by node {old_id} unbegun (fence lost)")), "{log}");
}

/// Creates and starts job `name`, firing every second into the witness at
/// `path`, and waits until the leader holds at least two of its runs
/// claimed and not begun (held by `JOBD_TEST_HOLD_AFTER_CLAIM_MS`): runs
/// whose time is a second past are claimed (100 ms before it) and held;
/// read from a follower, as applied there. Answers the leader, the other
/// nodes, and the held runs' `(id, scheduled second)`.
async fn claimed_and_held(c: &Cluster, name: &str, path: &std::path::Path) -> (usize, Vec<usize>, Vec<(u64, i64)>) {
    let old = c.wait_leader().await.unwrap();
    let fs = c.client(old).await.unwrap();
    let cmd = format!("echo $JOBD_SCHEDULED_TIME $JOBD_NODE >> {}", path.display());
    fs.write("clone", format!("{name}:* * * * * *:{cmd}").as_bytes()).await.unwrap();
    fs.write(&format!("jobs/{name}/ctl"), b"start").await.unwrap();
    let others: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    let held = cluster_tests::poll::poll("runs claimed and held on the leader", Duration::from_secs(15), Duration::from_millis(100), async || {
        let now = chrono::Utc::now().timestamp();
        let pending: Vec<(u64, i64)> = runs(&c.read(others[0], &format!("jobs/{name}/runs")).await)
            .into_iter()
            .filter(|(_, (scheduled, _, status))| status == "pending" && *scheduled < now - 1)
            .map(|(id, (scheduled, _, _))| (id, scheduled))
            .collect();
        (pending.len() >= 2).then_some(pending)
    })
    .await;
    (old, others, held)
}
