//! Retries on a real cluster: a failing scheduled run is run again as new
//! attempts of the same time (`retry N BACKOFF`), each attempt once, the
//! pending one surviving a SIGKILLed leader; and a run lost with its node
//! is run again when the job says `onlost rerun`.

use std::time::Duration;

use cluster_tests::cluster::Cluster;
use cluster_tests::wait_for;

/// An expression that fires once a day, at the second `ahead` seconds from
/// now (UTC), and that second.
fn once_soon(ahead: i64) -> (String, i64) {
    let t = chrono::Utc::now().timestamp() + ahead;
    let at = chrono::DateTime::from_timestamp(t, 0).unwrap();
    (at.format("%-S %-M %-H * * *").to_string(), t)
}

/// What the witness saw: `(scheduled second, attempt, trigger, node)`.
fn witness(path: &std::path::Path) -> Vec<(i64, String, String, u64)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let t = chrono::DateTime::parse_from_rfc3339(f.first()?).ok()?.timestamp();
            Some((t, f.get(1)?.to_string(), f.get(2)?.to_string(), f.get(3)?.parse().ok()?))
        })
        .collect()
}

fn record(path: &std::path::Path) -> String {
    format!("echo $JOBD_SCHEDULED_TIME $JOBD_ATTEMPT $JOBD_TRIGGER $JOBD_NODE >> {}", path.display())
}

/// The value of `key` in a job's ctl text.
fn ctl_value(ctl: &str, key: &str) -> String {
    ctl.lines().find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(' '))).unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_run_is_retried_until_it_succeeds_each_attempt_once() {
    let c = Cluster::start(3).await.expect("cluster");
    let dir = tempfile::tempdir().unwrap();
    let (path, count) = (dir.path().join("witness"), dir.path().join("count"));
    let leader = c.wait_leader().await.unwrap();
    let fs = c.client(leader).await.unwrap();
    // Fails its first two attempts, succeeds on the third (3 s, then 6 s later).
    let cmd = format!("{}; n=$(($(cat {c} 2>/dev/null || echo 0) + 1)); echo $n > {c}; [ $n -ge 3 ]", record(&path), c = count.display());
    let (expr, t) = once_soon(4);
    fs.write("clone", format!("flaky:{expr}:{cmd}").as_bytes()).await.unwrap();
    // Bad retry verbs: EINVAL (their one-line texts: `input.rs`'s tests),
    // and nothing changes.
    for bad in ["retry 0", "retry 101", "retry x", "retry 2 soon", "retry 2 2h", "onlost maybe", "retry 2 3s\nonlost no"] {
        let err = fs.write("jobs/flaky/ctl", bad.as_bytes()).await.expect_err(bad);
        assert_eq!(err.errno(), Some(ninep::error::errno::EINVAL), "{bad}: {err}");
    }
    let ctl = c.read(leader, "jobs/flaky/ctl").await;
    assert_eq!((ctl_value(&ctl, "retry"), ctl_value(&ctl, "onlost")), ("off".into(), "skip".into()), "{ctl}");
    fs.write("jobs/flaky/ctl", b"retry 2 3s\nstart").await.unwrap();
    let follower = (0..3).find(|i| *i != leader).unwrap();
    // Between attempts, every node shows the pending one.
    wait_for("attempt 2 pending on a follower", Duration::from_secs(15), async || {
        let ctl = c.read(follower, "jobs/flaky/ctl").await;
        ctl_value(&ctl, "attempt") == "2/3"
    })
    .await;
    wait_for("three attempts", Duration::from_secs(20), async || {
        c.read(leader, "jobs/flaky/runs").await.lines().filter(|l| l.ends_with(" exit 0")).count() == 1
    })
    .await;
    let seen = witness(&path);
    let attempts: Vec<(i64, &str, &str)> = seen.iter().map(|(s, a, tr, _)| (*s, a.as_str(), tr.as_str())).collect();
    assert_eq!(attempts, [(t, "1/3", "schedule"), (t, "2/3", "retry"), (t, "3/3", "retry")], "{}", c.log_tails());
    let runs = c.read(leader, "jobs/flaky/runs").await;
    let statuses: Vec<&str> = runs.lines().map(|l| l.splitn(7, ' ').nth(6).unwrap_or("")).collect();
    assert_eq!(statuses, ["exit 1", "exit 1", "exit 0"], "{runs}");
    assert!(runs.lines().skip(1).all(|l| l.split(' ').nth(2) == Some("retry")), "{runs}");
    let ctl = c.read(leader, "jobs/flaky/ctl").await;
    assert_eq!(ctl_value(&ctl, "retry-pending"), "-", "{ctl}");
    assert_eq!(ctl_value(&ctl, "retry"), "2 3s", "{ctl}");
    let log = c.read(leader, "jobs/flaky/log").await;
    assert!(log.contains("attempt 2/3 of") && log.contains("attempt 3/3 of"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_attempt_survives_a_killed_leader_and_runs_once_on_the_next() {
    let mut c = Cluster::start(3).await.expect("cluster");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("witness");
    let old = c.wait_leader().await.unwrap();
    let fs = c.client(old).await.unwrap();
    // Fails its first attempt; the retry comes 6 s after.
    let cmd = format!("{}; [ $JOBD_ATTEMPT != 1/2 ]", record(&path));
    let (expr, t) = once_soon(4);
    fs.write("clone", format!("once:{expr}:{cmd}").as_bytes()).await.unwrap();
    fs.write("jobs/once/ctl", b"retry 1 6s\nstart").await.unwrap();
    let others: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    wait_for("the retry pending on a follower", Duration::from_secs(15), async || {
        ctl_value(&c.read(others[0], "jobs/once/ctl").await, "attempt") == "2/2"
    })
    .await;
    c.kill(old).await.unwrap();
    let new = c.wait_leader_among(&others).await.unwrap();
    wait_for("the second attempt to succeed", Duration::from_secs(30), async || {
        c.read(new, "jobs/once/runs").await.trim_end().ends_with(" exit 0")
    })
    .await;
    let seen = witness(&path);
    let new_id = new as u64 + 1;
    let attempts: Vec<(i64, &str, u64)> = seen.iter().map(|(s, a, _, n)| (*s, a.as_str(), *n)).collect();
    assert_eq!(attempts, [(t, "1/2", old as u64 + 1), (t, "2/2", new_id)], "{}", c.log_tails());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_lost_with_its_node_is_run_again_with_onlost_rerun() {
    let mut c = Cluster::start(3).await.expect("cluster");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("witness");
    let old = c.wait_leader().await.unwrap();
    let fs = c.client(old).await.unwrap();
    // The first attempt runs long, and dies with its node.
    let cmd = format!("{}; [ $JOBD_ATTEMPT = 1/2 ] && exec sleep 60; true", record(&path));
    let (expr, t) = once_soon(4);
    fs.write("clone", format!("long:{expr}:{cmd}").as_bytes()).await.unwrap();
    fs.write("jobs/long/ctl", b"retry 1 1s\nonlost rerun\nstart").await.unwrap();
    wait_for("the first attempt running", Duration::from_secs(15), async || witness(&path).len() == 1).await;
    c.kill(old).await.unwrap();
    let others: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    let new = c.wait_leader_among(&others).await.unwrap();
    wait_for("the rerun to end", Duration::from_secs(40), async || {
        c.read(new, "jobs/long/runs").await.trim_end().ends_with(" exit 0")
    })
    .await;
    let runs = c.read(new, "jobs/long/runs").await;
    let statuses: Vec<&str> = runs.lines().map(|l| l.splitn(7, ' ').nth(6).unwrap_or("")).collect();
    assert_eq!(statuses, ["lost", "exit 0"], "{runs}");
    let attempts: Vec<(i64, String, u64)> = witness(&path).into_iter().map(|(s, a, _, n)| (s, a, n)).collect();
    assert_eq!(attempts, [(t, "1/2".into(), old as u64 + 1), (t, "2/2".into(), new as u64 + 1)], "{}", c.log_tails());
}
