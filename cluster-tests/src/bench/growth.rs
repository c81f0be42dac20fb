//! 6. Growth: output-heavy jobs (each printing 1 KiB every second) on
//! three nodes for some minutes; every 15 s each node's database size and
//! Raft log length (committed − purged entries) are printed, to show they
//! level off at what the retention settings allow (1 MiB of log per job,
//! the last 100 runs, a snapshot every 10,000 entries or 64 MiB of log
//! with the log purged behind it, 64 MiB of RocksDB write-ahead log)
//! instead of growing with time; node 1's write-ahead log is shown apart.
//! At 1 KiB a second a job's log reaches the default 1 MiB cap only after
//! 17 minutes; `--growth-log-bytes` sets a smaller cap (`limit log-bytes`
//! on /ctl) so a shorter run reaches it.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::{dir_mib, figure, wal_mib};
use crate::cluster::Cluster;


pub async fn run(jobs: usize, minutes: f64, log_bytes: Option<u64>) -> Result<()> {
    let cap = log_bytes.map_or("jobd's default".to_string(), |b| format!("{b} bytes"));
    println!("growth: {jobs} jobs printing 1 KiB every second, 3 nodes, {minutes} min, log retention {cap} per job");
    let c = Cluster::start(3).await?;
    let leader = c.wait_leader().await?;
    let client = c.client(leader).await?;
    if let Some(b) = log_bytes {
        client.write("ctl", format!("limit log-bytes {b}").as_bytes()).await?;
    }
    for i in 0..jobs {
        // printf is a shell builtin: one process per run, 1 KiB of output.
        client.write("clone", format!("g{i}:* * * * * ?:printf '%01023d\\n' {i}").as_bytes()).await?;
        client.write(&format!("jobs/g{i}/ctl"), b"start").await?;
    }
    let start = Instant::now();
    let (mut max_db, mut max_log, mut max_wal) = (0f64, 0u64, 0f64);
    println!("{:>6} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}", "min", "n1 MiB", "n2 MiB", "n3 MiB", "n1 WAL", "log len", "applied");
    while start.elapsed() < Duration::from_secs_f64(minutes * 60.0) {
        tokio::time::sleep(Duration::from_secs(15)).await;
        let sizes: Vec<f64> = c.nodes.iter().map(|n| dir_mib(&n.dir.join("db"))).collect();
        let wal = wal_mib(&c.nodes[0].dir.join("db"));
        max_wal = max_wal.max(wal);
        let ctl = c.ctl(c.wait_leader().await?).await?;
        let num = |k: &str| ctl.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let log_len = num("commit").saturating_sub(num("purged"));
        max_db = sizes.iter().copied().fold(max_db, f64::max);
        max_log = max_log.max(log_len);
        println!(
            "{:>6.1} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>10} {:>10}",
            start.elapsed().as_secs_f64() / 60.0,
            sizes[0],
            sizes[1],
            sizes[2],
            wal,
            log_len,
            num("applied")
        );
    }
    figure("growth.max_db", max_db, "MiB");
    figure("growth.max_log_entries", max_log as f64, "count");
    figure("growth.n1_max_wal", max_wal, "MiB");
    Ok(())
}
