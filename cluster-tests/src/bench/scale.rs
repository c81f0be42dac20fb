//! 4. Scale: N jobs (a tenth of them started, on `@yearly` so they are
//! armed but quiet) on three nodes: each node's RSS, `ls /jobs` time, the
//! time a restarted node takes to serve again, a `/ctl` read (it hashes the
//! whole state), and the snapshot a new member is sent (size, and time from
//! `add` until it holds every job).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ninep::client::{Client, Options};

use super::{create_jobs, dir_mib, figure};
use crate::cluster::Cluster;
use crate::jobd::{free_addr, spawn_jobd};

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(f64::NAN);
    kb / 1024.0
}

pub async fn run(jobs: usize) -> Result<()> {
    println!("scale: {jobs} jobs ({} started) on 3 nodes", jobs / 10);
    let mut c = Cluster::start(3).await?;
    let leader = c.wait_leader().await?;
    let t = Instant::now();
    create_jobs(&c, leader, 32, jobs, |i| (format!("s{i}"), "@yearly:true".into(), i % 10 == 0)).await?;
    println!("created in {:.1} s", t.elapsed().as_secs_f64());
    // Every node has applied everything (ls on each shows them all).
    let mut ls_secs = vec![];
    for i in 0..3 {
        let client = c.client(i).await?;
        let start = Instant::now();
        loop {
            let t = Instant::now();
            let n = client.readdir("jobs").await?.len();
            if n == jobs {
                ls_secs.push(t.elapsed().as_secs_f64());
                break;
            }
            if start.elapsed() > Duration::from_secs(120) {
                bail!("node {} lists {n} of {jobs} jobs after 120 s", i + 1);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    for (i, n) in c.nodes.iter().enumerate() {
        let pid = n.child.as_ref().and_then(|c| c.id()).context("node not running")?;
        let (rss, disk) = (rss_mib(pid), dir_mib(&n.dir.join("db")));
        println!("node {}: RSS {rss:.0} MiB, database {disk:.0} MiB, ls /jobs {:.3} s", i + 1, ls_secs[i]);
        figure(&format!("scale.n{}.rss", i + 1), rss, "MiB");
        figure(&format!("scale.n{}.ls_jobs", i + 1), ls_secs[i], "s");
        figure(&format!("scale.n{}.db", i + 1), disk, "MiB");
    }
    // `/ctl` hashes the whole state for its digest on every read.
    let t = Instant::now();
    c.ctl(leader).await?;
    let ctl_secs = t.elapsed().as_secs_f64();
    println!("read /ctl (digest over the whole state): {ctl_secs:.3} s");
    figure("scale.ctl_read", ctl_secs, "s");
    // A restarted follower: SIGKILL, start, time until it serves 9P with every job.
    let follower = (c.wait_leader().await? + 1) % 3;
    c.kill(follower).await?;
    let t = Instant::now();
    c.restart(follower).await?;
    let serving = t.elapsed();
    println!("restart to serving (9P attach and /ctl): {:.2} s", serving.as_secs_f64());
    figure("scale.restart_to_serving", serving.as_secs_f64(), "s");
    // A new member: added as a learner, sent the snapshot.
    let leader = c.wait_leader().await?;
    let ctl = c.ctl(leader).await?;
    let dir = tempfile::tempdir()?;
    let (fs, raft) = (free_addr()?, free_addr()?);
    let peers = format!("4={raft}");
    let args = ["--id", "4", "--peers", &peers, "--initial-cluster-state", "existing"];
    let log = dir.path().join("jobd.log");
    let mut child = spawn_jobd(dir.path(), fs, raft, &args, &[], &log)?;
    let client = c.client(leader).await?;
    let t = Instant::now();
    client.write("ctl", format!("add 4 {raft}").as_bytes()).await?;
    loop {
        if let Ok(n) = Client::connect(fs, Options::default()).await {
            if n.readdir("jobs").await.map(|l| l.len()).unwrap_or(0) == jobs {
                break;
            }
        }
        if t.elapsed() > Duration::from_secs(120) {
            bail!("the new member did not receive {jobs} jobs within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let install = t.elapsed();
    let snapshot_mib = dir_mib(&dir.path().join("db"));
    println!(
        "new member: every job within {:.2} s of `add` (leader's snapshot at log index {}); its database {snapshot_mib:.0} MiB",
        install.as_secs_f64(),
        ctl.get("snapshot").map_or("-", |s| s.as_str())
    );
    figure("scale.new_member_install", install.as_secs_f64(), "s");
    figure("scale.new_member_db", snapshot_mib, "MiB");
    let _ = child.start_kill();
    let _ = child.wait().await;
    Ok(())
}
