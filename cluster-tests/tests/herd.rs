//! A herd: many jobs due at the same instant on a three-node cluster, more
//! than the leader's concurrency cap, which long runs hold when the herd
//! comes due, so every run of the herd must wait for a slot. Every job's
//! time must run exactly once (by a witness file the runs append to), and
//! none may end `not-started`. Before runs waited for a slot, every run
//! past the cap was recorded `not-started` at once: this test failed on
//! that code (checked once, on commit df9e32d).

use std::collections::HashMap;
use std::time::Duration;

use cluster_tests::cluster::Cluster;
use cluster_tests::wait_for;

const JOBS: usize = 200;
/// Far below the herd, so that queueing is what is tested, whatever the
/// machine's speed.
const CAP: usize = 5;

#[tokio::test(flavor = "multi_thread")]
async fn every_job_of_a_herd_past_the_cap_runs_its_time_once() {
    let c = Cluster::start_with_env(3, |_| vec![("JOBD_MAX_CONCURRENT_RUNS".into(), CAP.to_string())]).await.expect("cluster");
    let dir = tempfile::tempdir().unwrap();
    let witness = dir.path().join("witness");
    let leader = c.wait_leader().await.unwrap();
    let fs = c.client(leader).await.unwrap();
    // Each run holds its slot for 0.1 s: 200 of them through 5 slots take
    // at least 4 s, well past the 1 s the fire window allows.
    let cmd = format!("echo $JOBD_JOB $JOBD_SCHEDULED_TIME $(date +%s%3N) >> {}; sleep 0.1", witness.display());
    for k in 0..CAP {
        fs.write("clone", format!("hold{k}:@yearly:sleep 3").as_bytes()).await.unwrap();
    }
    for k in 0..JOBS {
        fs.write("clone", format!("h{k}:*/15 * * * * *:{cmd}").as_bytes()).await.unwrap();
    }
    for k in 0..JOBS {
        fs.write(&format!("jobs/h{k}/ctl"), b"start").await.unwrap();
    }
    // The first instant at least 2 s after the last start: every job has it.
    let now = chrono::Utc::now().timestamp();
    let t = (now + 2 + 14) / 15 * 15;
    let stamp = chrono::DateTime::from_timestamp(t, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // Every slot of the leader is taken when the herd comes due: runs of
    // 3 s from 1.5 s before T (manual runs run on the node that took them).
    let until = t * 1000 - 1500 - chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(Duration::from_millis(until.max(0) as u64)).await;
    for k in 0..CAP {
        fs.write(&format!("jobs/hold{k}/ctl"), b"run").await.unwrap();
    }
    let of_t = || -> Vec<(String, i64)> {
        let text = std::fs::read_to_string(&witness).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (f.len() == 3 && f[1] == stamp).then(|| (f[0].to_string(), f[2].parse().unwrap_or(0)))
            })
            .collect()
    };
    let waited = tokio::time::Instant::now();
    while of_t().len() < JOBS {
        if waited.elapsed() > Duration::from_secs(30) {
            let ctl = c.read(leader, "ctl").await;
            panic!("{} of {JOBS} runs of T seen after 30 s; the leader's /ctl:\n{ctl}\n{}", of_t().len(), c.log_tails());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Runs still waiting would show up as a second line for some job.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let runs = of_t();
    let mut per_job: HashMap<&str, usize> = HashMap::new();
    for (job, _) in &runs {
        *per_job.entry(job.as_str()).or_default() += 1;
    }
    assert_eq!(per_job.len(), JOBS, "every job ran its time");
    assert!(per_job.values().all(|n| *n == 1), "no time ran twice: {per_job:?}");
    let mut late: Vec<i64> = runs.iter().map(|(_, at)| at - t * 1000).collect();
    late.sort();
    assert!(late[0] >= 0, "no run began before its time: {} ms early", -late[0]);
    println!("herd: {JOBS} jobs at one instant, cap {CAP}: last began {} ms after T, median {} ms", late[JOBS - 1], late[JOBS / 2]);
    // And the records agree: every job's run of T ended exit 0.
    let stamp_ms = format!("{}.000Z", stamp.trim_end_matches('Z'));
    let mut not_ok = vec![];
    wait_for("every run of T recorded", Duration::from_secs(20), async || {
        not_ok.clear();
        for k in 0..JOBS {
            let records = c.read(leader, &format!("jobs/h{k}/runs")).await;
            let of_t: Vec<&str> = records.lines().filter(|l| l.split(' ').nth(1) == Some(stamp_ms.as_str())).collect();
            if of_t.len() != 1 || !of_t[0].ends_with(" exit 0") {
                not_ok.push(format!("h{k}: {of_t:?}"));
            }
        }
        not_ok.is_empty()
    })
    .await;
}
