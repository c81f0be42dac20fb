//! The lease: a leader paused past the election (SIGSTOP) while runs it
//! fired wait at their gate and in its queue begins none of them when it
//! resumes — their deadline (the default minute) has not passed, and its
//! state has not heard of the new term yet when its real-time gate thread
//! wakes first. Only the lease, checked at the moment of opening, stops it.
//! Meanwhile the new leader takes those runs over (they were never
//! claimed) and begins each once.

use std::time::Duration;

use cluster_tests::cluster::Cluster;
use cluster_tests::wait_for;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `(job, scheduled second, node, start ms)` from the witness file.
fn witness(path: &std::path::Path) -> Vec<(String, i64, u64, i64)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let [job, scheduled, node, start] = f.as_slice() else { return None };
            let scheduled = chrono::DateTime::parse_from_rfc3339(scheduled).ok()?.timestamp();
            Some((job.to_string(), scheduled, node.parse().ok()?, start.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_paused_past_the_election_begins_none_of_the_runs_it_had_waiting() {
    // Two slots per node: one held by a long run, so each second's fires
    // wait, one at its gate and the rest in the queue.
    let c = Cluster::start_with_env(3, |_| vec![("JOBD_MAX_CONCURRENT_RUNS".into(), "2".into())]).await.expect("cluster");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("witness");
    let old = c.wait_leader().await.unwrap();
    let old_id = old as u64 + 1;
    let fs = c.client(old).await.unwrap();
    fs.write("clone", b"hold:@yearly:sleep 120").await.unwrap();
    fs.write("jobs/hold/ctl", b"run").await.unwrap();
    wait_for("the holding run", Duration::from_secs(10), async || c.read(old, "jobs/hold/runs").await.contains(" running")).await;
    let cmd = format!("echo $JOBD_JOB $JOBD_SCHEDULED_TIME $JOBD_NODE $(date +%s%3N) >> {}", path.display());
    for k in 0..4 {
        fs.write("clone", format!("t{k}:* * * * * *:{cmd}").as_bytes()).await.unwrap();
        fs.write(&format!("jobs/t{k}/ctl"), b"start").await.unwrap();
    }
    // Pause just before a second, with that second's runs waiting.
    let mut paused_at = None;
    for _ in 0..20 {
        let ms = now_ms();
        tokio::time::sleep(Duration::from_millis((1000 - ms % 1000 + 850) as u64 % 1000)).await;
        let queued = c.ctl_num(old, "runs-queued").await.unwrap_or(0);
        if queued > 0 {
            paused_at = Some(now_ms());
            c.pause(old, true).await.unwrap();
            break;
        }
    }
    let paused_at = paused_at.expect("runs were queued on the leader before a second");
    let others: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    let new = c.wait_leader_among(&others).await.unwrap();
    // Past the election, and past the new leader's sweep of the silent node.
    tokio::time::sleep(Duration::from_secs(4)).await;
    c.pause(old, false).await.unwrap();
    let resumed_at = now_ms();
    // Free the old leader's held slot, so its queued runs would get one.
    c.client(new).await.unwrap().write("jobs/hold/ctl", b"kill").await.unwrap();
    wait_for("the old leader's queue to empty", Duration::from_secs(20), async || {
        c.ctl_num(old, "runs-queued").await == Some(0)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Runs of times before the resume, begun on the old leader while or
    // after it was paused (a second after the pause began: a run whose gate
    // opened just before it may read the clock a little after).
    let stale: Vec<_> = witness(&path)
        .into_iter()
        .filter(|(_, scheduled, node, start)| *node == old_id && scheduled * 1000 < resumed_at && *start >= paused_at + 1000)
        .collect();
    assert!(stale.is_empty(), "the resumed old leader began runs it fired before its pause: {stale:?}\n{}", c.log_tails());
    // The new leader took over what the paused one left waiting: each
    // scheduled time of each job began at most once, whoever began it.
    let mut times: Vec<(String, i64)> = witness(&path).into_iter().map(|(job, scheduled, _, _)| (job, scheduled)).collect();
    let began = times.len();
    times.sort();
    times.dedup();
    assert_eq!(times.len(), began, "a scheduled time began twice: {:?}", witness(&path));
    let new_id = new as u64 + 1;
    let taken: Vec<_> = witness(&path).into_iter().filter(|(_, s, node, _)| *node == new_id && s * 1000 < paused_at + 1000).collect();
    assert!(!taken.is_empty(), "the new leader began none of the runs fired before the pause (taken over)\n{}", c.log_tails());
    // Its waiting runs are accounted for: none still pending or running.
    for k in 0..4 {
        let runs = c.read(new, &format!("jobs/t{k}/runs")).await;
        for line in runs.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let (Some(node), Some(scheduled)) = (f.get(3), f.get(1)) else { continue };
            let early = chrono::DateTime::parse_from_rfc3339(scheduled).map(|t| t.timestamp_millis() < paused_at).unwrap_or(false);
            if *node == old_id.to_string() && !early {
                assert!(!line.contains(" exit "), "a run of the paused leader began: {line}");
            }
        }
    }
}
