//! Two faults the firing protocol must account for.
//!
//! Leader SIGKILL during a long run: the run's process dies with its node
//! (checked by its pid), and the new leader marks the run `lost` within its
//! lease, on every node.
//!
//! Clock skew: one node's wall clock runs 30 s ahead. It says so in
//! `/ctl`; if it leads, it fires nothing; otherwise the leader fires and no
//! run starts before its scheduled time by the test's own clock.

use std::time::Duration;

use cluster_tests::cluster::Cluster;
use cluster_tests::wait_for;



fn alive(pid: u32) -> bool {
    // A zombie has exited; only a running process counts.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_on_a_killed_leader_dies_with_it_and_is_marked_lost() {
    let mut c = Cluster::start(3).await.expect("cluster");
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let leader = c.wait_leader().await.unwrap();
    let fs = c.client(leader).await.unwrap();
    let clone = format!("long:@yearly:echo $$ > {}; exec sleep 60", pidfile.display());
    fs.write("clone", clone.as_bytes()).await.unwrap();
    fs.write("jobs/long/ctl", b"run").await.unwrap();
    wait_for("the run to start", Duration::from_secs(10), async || std::fs::read_to_string(&pidfile).is_ok_and(|p| !p.is_empty()))
        .await;
    let pid: u32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert!(alive(pid));
    c.kill(leader).await.unwrap();
    wait_for("the job process to die with its node", Duration::from_secs(5), async || !alive(pid)).await;
    let new = c.wait_leader().await.unwrap();
    wait_for("the run marked lost on every node", Duration::from_secs(20), async || {
        let mut all = true;
        for i in (0..3).filter(|i| *i != leader) {
            all &= c.read(i, "jobs/long/runs").await.trim_end().ends_with(" lost");
        }
        all
    })
    .await;
    assert!(c.read(new, "jobs/long/log").await.contains(" lost in "));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_whose_clock_runs_ahead_says_so_and_never_fires_early() {
    let skewed = 0;
    let c = Cluster::start_with_env(3, |i| {
        if i == skewed {
            vec![("JOBD_TEST_CLOCK_OFFSET_MS".into(), "30000".into())]
        } else {
            vec![]
        }
    })
    .await
    .expect("cluster");
    // 30 s: one fresh-clone CI run here timed out at 10 s (not reproduced in 3 runs alone).
    wait_for("the skewed node to see its skew", Duration::from_secs(30), async || {
        c.ctl(skewed).await.ok().and_then(|m| m.get("clock-skew-ms").and_then(|v| v.parse::<i64>().ok())).is_some_and(|s| s > 25_000)
    })
    .await;
    let leader = c.wait_leader().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let witness = dir.path().join("witness");
    let fs = c.client(leader).await.unwrap();
    // The job records the test machine's real clock next to its scheduled time.
    let clone = format!("tick:* * * * * *:echo $JOBD_SCHEDULED_TIME $(date +%s.%N) >> {}", witness.display());
    fs.write("clone", clone.as_bytes()).await.unwrap();
    fs.write("jobs/tick/ctl", b"start").await.unwrap();
    if leader == skewed {
        // The skewed leader must not fire at all.
        tokio::time::sleep_until(tokio::time::Instant::now() + Duration::from_secs(3)).await;
        assert!(!witness.exists(), "a skewed leader fired");
        assert_eq!(c.read(leader, "jobs/tick/runs").await, "");
    } else {
        wait_for("three runs", Duration::from_secs(15), async || {
            std::fs::read_to_string(&witness).is_ok_and(|w| w.lines().count() >= 3)
        })
        .await;
        for line in std::fs::read_to_string(&witness).unwrap().lines() {
            let (sched, real) = line.split_once(' ').unwrap();
            let sched = chrono::DateTime::parse_from_rfc3339(sched).unwrap().timestamp_millis() as f64 / 1000.0;
            let real: f64 = real.parse().unwrap();
            assert!(real >= sched, "a run started before its time: {line}");
        }
    }
}
