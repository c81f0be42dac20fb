//! 8. A herd: N jobs that share one expression (`*/30 * * * * *`), so all N
//! are due at the same instant, as every crontab that puts its jobs at
//! `0 * * * *` makes them; two instants per N, three nodes, jobd's
//! defaults (a cap of 512 runs per node, a deadline of one minute).
//!
//! Each run records its own start, from a clock outside jobd: the command
//! reads `/proc/uptime` (a shell builtin `read`, so no process is created
//! for it; 10 ms resolution) and appends it beside its job and scheduled
//! time to a witness file; the bench converts uptime to wall time with one
//! reading of both. Per N: runs seen by the witness, the records' outcomes
//! (`not-started` by reason, `lost`), start lateness p50 / p99 / max, the
//! last start after T, the machine's peak task count above its baseline
//! (`/proc/loadavg`, every thread and process on the machine) and each
//! node's peak RSS, sampled every 200 ms. Beside it, the machine's spawn
//! floor (fork and exec of `sh -c true`).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{create_jobs, figure, quantile};
use crate::cluster::Cluster;

const PERIOD_S: i64 = 30;
/// Instants measured per N.
const INSTANTS: i64 = 2;

/// Wall-clock milliseconds at boot, by `/proc/uptime` (CLOCK_BOOTTIME).
pub(super) fn boot_wall_ms() -> Result<f64> {
    let up: f64 = std::fs::read_to_string("/proc/uptime")?.split(' ').next().context("uptime")?.parse()?;
    Ok(chrono::Utc::now().timestamp_millis() as f64 - up * 1000.0)
}

/// Every task (process or thread) on the machine, from `/proc/loadavg`.
fn tasks() -> u64 {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split(' ').nth(3).and_then(|f| f.split('/').nth(1)).and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0.0);
    kib / 1024.0
}

struct Outcome {
    expected: usize,
    ran: usize,
    duplicated: usize,
    lateness_ms: Vec<f64>,
    not_started: HashMap<String, usize>,
    lost: usize,
    peak_tasks: u64,
    peak_rss_mib: Vec<f64>,
}

async fn round(jobs: usize) -> Result<Outcome> {
    let cluster = Cluster::start(3).await?;
    let leader = cluster.wait_leader().await?;
    let dir = tempfile::tempdir()?;
    let witness = dir.path().join("witness");
    let cmd = format!("read up rest < /proc/uptime; echo $JOBD_JOB $JOBD_SCHEDULED_TIME $up >> {}", witness.display());
    let conns = create_jobs(&cluster, leader, 16, jobs, move |i| (format!("h{i}"), format!("*/{PERIOD_S} * * * * *:{cmd}"), true)).await?;
    // The first instant at least 3 s after the last start.
    let now = chrono::Utc::now().timestamp();
    let first = (now + 3 + PERIOD_S - 1) / PERIOD_S * PERIOD_S;
    let instants: Vec<i64> = (0..INSTANTS).map(|k| first + k * PERIOD_S).collect();
    let stamps: HashMap<String, i64> = instants
        .iter()
        .map(|t| (chrono::DateTime::from_timestamp(*t, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true), *t))
        .collect();
    let of_instants = |text: &str| text.lines().filter(|l| l.split(' ').nth(1).is_some_and(|s| stamps.contains_key(s))).count();
    let baseline = tasks();
    let pids: Vec<u32> = cluster.nodes.iter().filter_map(|n| n.child.as_ref().and_then(|c| c.id())).collect();
    let mut peak_tasks = 0;
    let mut peak_rss = vec![0.0f64; pids.len()];
    // Sample until the last instant's runs are all in, or a deadline.
    let end = (instants[instants.len() - 1] + PERIOD_S) * 1000;
    let boot = boot_wall_ms()?;
    loop {
        peak_tasks = peak_tasks.max(tasks().saturating_sub(baseline));
        for (p, pid) in peak_rss.iter_mut().zip(&pids) {
            *p = p.max(rss_mib(*pid));
        }
        let seen = of_instants(&std::fs::read_to_string(&witness).unwrap_or_default());
        let now = chrono::Utc::now().timestamp_millis();
        if seen >= jobs * instants.len() && now > instants[instants.len() - 1] * 1000 + 2000 || now > end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The witness: job, scheduled time, start by uptime.
    let mut per: HashMap<(String, i64), usize> = HashMap::new();
    let mut lateness = vec![];
    for line in std::fs::read_to_string(&witness).unwrap_or_default().lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let [job, scheduled, up] = f.as_slice() else { continue };
        let Some(t) = stamps.get(*scheduled) else { continue };
        let Ok(up) = up.parse::<f64>() else { continue };
        *per.entry((job.to_string(), *t)).or_default() += 1;
        lateness.push(boot + up * 1000.0 - (*t * 1000) as f64);
    }
    lateness.sort_by(|a, b| a.partial_cmp(b).unwrap());
    // The records, for what did not run.
    let mut not_started: HashMap<String, usize> = HashMap::new();
    let mut lost = 0;
    let c = &conns[0];
    for i in 0..jobs {
        let text = String::from_utf8(c.read(&format!("jobs/h{i}/runs")).await?)?;
        for line in text.lines() {
            let f: Vec<&str> = line.splitn(7, ' ').collect();
            let Some(status) = f.get(6) else { continue };
            if let Some(why) = status.strip_prefix("not-started") {
                *not_started.entry(why.trim().trim_matches(['(', ')']).to_string()).or_default() += 1;
            } else if *status == "lost" {
                lost += 1;
            }
        }
    }
    drop(cluster);
    Ok(Outcome {
        expected: jobs * instants.len(),
        ran: per.len(),
        duplicated: per.values().map(|n| n - 1).sum(),
        lateness_ms: lateness,
        not_started,
        lost,
        peak_tasks,
        peak_rss_mib: peak_rss,
    })
}

pub async fn run(job_counts: &[usize]) -> Result<()> {
    println!("herd: N jobs due at the same instant (*/{PERIOD_S} * * * * *), {INSTANTS} instants, 3 nodes, default cap and deadline");
    let spawn = super::lateness::spawn_floor().await?;
    println!("floor: sh -c true fork+exec to exit p50 {:.2} ms p99 {:.2} ms", quantile(&spawn, 0.5), quantile(&spawn, 0.99));
    figure("herd.spawn_p50", quantile(&spawn, 0.5), "ms");
    println!(
        "{:>6} {:>9} {:>6} {:>5} {:>12} {:>5} {:>8} {:>8} {:>8} {:>11} {:>15}",
        "jobs", "expected", "ran", "dupl", "not-started", "lost", "p50 ms", "p99 ms", "last ms", "peak tasks", "peak RSS MiB"
    );
    for &jobs in job_counts {
        let o = round(jobs).await?;
        let (p50, p99) = (quantile(&o.lateness_ms, 0.5), quantile(&o.lateness_ms, 0.99));
        let last = o.lateness_ms.last().copied().unwrap_or(f64::NAN);
        let not_started: usize = o.not_started.values().sum();
        let rss = o.peak_rss_mib.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join("/");
        println!(
            "{jobs:>6} {:>9} {:>6} {:>5} {not_started:>12} {:>5} {p50:>8.0} {p99:>8.0} {last:>8.0} {:>11} {rss:>15}",
            o.expected, o.ran, o.duplicated, o.lost, o.peak_tasks
        );
        if !o.not_started.is_empty() {
            println!("       not-started by reason: {:?}", o.not_started);
        }
        let n = format!("herd.j{jobs}");
        figure(&format!("{n}.ran"), o.ran as f64, "count");
        figure(&format!("{n}.expected"), o.expected as f64, "count");
        figure(&format!("{n}.duplicated"), o.duplicated as f64, "count");
        figure(&format!("{n}.not_started"), not_started as f64, "count");
        figure(&format!("{n}.lost"), o.lost as f64, "count");
        figure(&format!("{n}.p50"), p50, "ms");
        figure(&format!("{n}.p99"), p99, "ms");
        figure(&format!("{n}.last"), last, "ms");
        figure(&format!("{n}.peak_tasks"), o.peak_tasks as f64, "count");
        figure(&format!("{n}.peak_rss_max"), o.peak_rss_mib.iter().copied().fold(0.0, f64::max), "MiB");
    }
    Ok(())
}
