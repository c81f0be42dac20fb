//! Leader SIGKILL during a long run: the run's process dies with its node
//! (checked by its pid), and the new leader marks the run `lost` within its
//! lease, on every node. (Clock skew is a scenario in `scenarios.rs`.)

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
