//! 3. Failover: leader SIGKILLs with three tick jobs firing every second
//! (the chaos harness with only `KillLeader` and no client): kill → the
//! others agree on a new leader, new leader → its first fire, kill → first
//! fire; then the checkers (no duplicate, no silent miss). Beside it, etcd:
//! kill its leader → the first put that succeeds through another member.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::figure;
use crate::chaos::{self, nemesis::Fault, Plan};
use crate::etcd::kv_client::KvClient;
use crate::etcd::PutRequest;
use crate::etcd_cluster::EtcdCluster;

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    if v.is_empty() {
        println!("{name:>24}: none measured");
        return;
    }
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0;
    println!("{name:>24}: min {:>6.0}  median {:>6.0}  p99 {:>6.0}  max {:>6.0} ms  (n={})", q(0.0), q(0.5), q(0.99), q(1.0), v.len());
    let key = name.replace(' ', "_").replace("->", "to").replace("__", "_");
    for (s, p) in [("min", 0.0), ("median", 0.5), ("p99", 0.99), ("max", 1.0)] {
        figure(&format!("failover.{key}.{s}"), q(p), "ms");
    }
}

async fn etcd_kills(kills: usize) -> Result<Vec<Duration>> {
    let mut e = EtcdCluster::start(3).await?;
    let mut out = vec![];
    for k in 0..kills {
        let leader = e.leader().await?;
        let other = e.clients[(leader + 1) % 3];
        let t = Instant::now();
        e.kill(leader).await?;
        loop {
            let put = PutRequest { key: format!("k{k}").into_bytes(), value: vec![b'v'; 256], ..Default::default() };
            let attempt = async { KvClient::connect(format!("http://{other}")).await?.put(put).await.map_err(anyhow::Error::from) };
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), attempt).await {
                break;
            }
            if t.elapsed() > Duration::from_secs(30) {
                anyhow::bail!("etcd: no put succeeded within 30 s of killing its leader");
            }
        }
        out.push(t.elapsed());
        e.restart(leader).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    e.stop().await;
    Ok(out)
}

pub async fn run(kills: usize, seed: u64) -> Result<()> {
    println!("failover: {kills} leader SIGKILLs, 3 jobs firing every second (seed {seed}); etcd: {kills} leader SIGKILLs");
    let plan = Plan { duration: Duration::from_secs(3600), max_faults: kills, only: Some(Fault::KillLeader), workload: false, env: vec![] };
    let report = chaos::run(seed, plan).await?;
    let kill_leader: Vec<Duration> = report.faults.iter().filter_map(|f| f.to_leader).collect();
    let kill_fire: Vec<Duration> = report.faults.iter().filter_map(|f| f.to_fire).collect();
    let leader_fire: Vec<Duration> =
        report.faults.iter().filter_map(|f| Some(f.to_fire?.saturating_sub(f.to_leader?))).collect();
    stats("jobd kill -> leader", kill_leader);
    stats("jobd leader -> fire", leader_fire);
    stats("jobd kill -> fire", kill_fire);
    let v = &report.verdict;
    println!(
        "{:>24}: {} fires, {} duplicated, {} unaccounted, {} skipped by catch-up, {} lost or not started; checkers {}",
        "jobd runs",
        v.fires,
        v.duplicates,
        v.unaccounted,
        v.skipped,
        v.missed_accounted_lost,
        if report.passed() { "pass" } else { "FAIL" }
    );
    for f in &v.failures {
        println!("  {f}");
    }
    figure("failover.duplicated", v.duplicates as f64, "count");
    figure("failover.unaccounted", v.unaccounted as f64, "count");
    stats("etcd kill -> put", etcd_kills(kills).await?);
    Ok(())
}
