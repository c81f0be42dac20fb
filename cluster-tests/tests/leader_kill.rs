//! What it breaks: the leader of a three-node cluster started from the
//! command line, by SIGKILL, three times, restarting it each time, while a
//! job fires every second.
//!
//! What it expects: no scheduled time runs twice (by the job's own witness
//! file); every second outside the windows [kill − 1 s, kill + 3 s] has its
//! run (the second before a kill may be the run the kill cut short); every
//! second inside them is accounted for, in `runs` or as skipped in `log`;
//! and `log` and `runs` read byte for byte the same on all three nodes.
//! It asserts that each kill took effect: the process is reaped and the
//! term rises.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use cluster_tests::cluster::Cluster;
use cluster_tests::wait_for;

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn secs(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339.trim()).unwrap_or_else(|e| panic!("{rfc3339:?}: {e}")).timestamp()
}

fn witness(path: &std::path::Path) -> Vec<i64> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(secs).collect()
}



#[tokio::test(flavor = "multi_thread")]
async fn a_second_job_survives_three_leader_kills() {
    let mut c = Cluster::start(3).await.expect("cluster");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("witness");
    let leader = c.wait_leader().await.unwrap();
    let fs = c.client(leader).await.unwrap();
    let clone = format!("tick:* * * * * *:echo $JOBD_SCHEDULED_TIME >> {}", path.display());
    fs.write("clone", clone.as_bytes()).await.unwrap();
    fs.write("jobs/tick/ctl", b"start").await.unwrap();
    wait_for("three runs", Duration::from_secs(20), async || witness(&path).len() >= 3).await;

    let mut windows = vec![];
    for round in 0..3 {
        let leader = c.wait_leader().await.unwrap();
        let term: u64 = c.ctl(leader).await.unwrap()["term"].parse().unwrap();
        let killed_at = now_ms();
        c.kill(leader).await.expect("SIGKILL the leader");
        windows.push((killed_at - 1000, killed_at + 3000));
        let new = c.wait_leader().await.unwrap();
        assert_ne!(new, leader, "round {round}: a new leader");
        let new_term: u64 = c.ctl(new).await.unwrap()["term"].parse().unwrap();
        assert!(new_term > term, "round {round}: the term rose ({term} → {new_term})");
        c.restart(leader).await.unwrap();
        let seen = witness(&path).len();
        wait_for("three more runs", Duration::from_secs(20), async || witness(&path).len() >= seen + 3).await;
    }

    let leader = c.wait_leader().await.unwrap();
    c.client(leader).await.unwrap().write("jobs/tick/ctl", b"stop").await.unwrap();
    // Every run ended (lost ones are ended by the leader after its lease),
    // and every node has applied the same history.
    wait_for("every run ended and every node the same", Duration::from_secs(30), async || {
        let mut views = vec![];
        for i in 0..3 {
            views.push((c.read(i, "jobs/tick/runs").await, c.read(i, "jobs/tick/log").await));
        }
        let open = views[0].0.lines().any(|l| l.ends_with(" running") || l.ends_with(" pending"));
        !open && views.iter().all(|v| *v == views[0])
    })
    .await;

    let ran = witness(&path);
    let unique: HashSet<i64> = ran.iter().copied().collect();
    assert_eq!(unique.len(), ran.len(), "a scheduled time ran twice: {ran:?}");
    let runs = c.read(leader, "jobs/tick/runs").await;
    let recorded: BTreeSet<i64> = runs.lines().map(|l| secs(l.split(' ').nth(1).unwrap())).collect();
    let mut skipped: BTreeSet<i64> = BTreeSet::new();
    for line in c.read(leader, "jobs/tick/log").await.lines() {
        let Some((ts, text)) = line.split_once(" UTC:") else { continue };
        if let Some(n) = text.strip_prefix("skipped ").and_then(|t| t.split(' ').next()).and_then(|n| n.parse::<i64>().ok()) {
            let at = NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S%.9f +0000").unwrap().and_utc().timestamp();
            skipped.extend(at - n..at);
        }
    }
    let count = |status: &str| runs.lines().filter(|l| l.ends_with(status)).count();
    println!(
        "leader_kill: {} seconds, {} ran, {} run records ({} lost, {} not-started, {} catch-up), {} skipped, kills at {:?}",
        unique.iter().max().unwrap() - unique.iter().min().unwrap() + 1,
        ran.len(),
        runs.lines().count(),
        count(" lost"),
        count(" not-started"),
        runs.lines().filter(|l| l.contains(" catchup ")).count(),
        skipped.len(),
        windows.iter().map(|w| w.0 + 1000).collect::<Vec<_>>()
    );
    let (first, last) = (*unique.iter().min().unwrap(), *unique.iter().max().unwrap());
    for s in first..=last {
        let in_window = windows.iter().any(|(a, b)| s * 1000 >= *a && s * 1000 <= *b);
        if in_window {
            assert!(
                unique.contains(&s) || recorded.contains(&s) || skipped.contains(&s),
                "second {s} is not accounted for\nruns:\n{runs}\n{}",
                c.log_tails()
            );
        } else {
            assert!(unique.contains(&s), "second {s} (outside the kill windows) did not run\nruns:\n{runs}");
        }
    }
}
