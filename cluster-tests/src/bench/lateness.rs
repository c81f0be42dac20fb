//! 2. Fire lateness: N started jobs on three nodes, each firing every 5 s,
//! staggered across the 5 s by their expressions (`S/5 * * * * ?` with S
//! = i mod 5, so N/5 jobs share each second), for a window of seconds. For
//! every run the replicated record gives its scheduled time and the time
//! the leader started its process (ms resolution): lateness = start −
//! scheduled. Every scheduled time in the window is matched to its runs:
//! none is a miss, two a duplicate. Beside it, the machine's floor: tokio
//! timer wake-up lateness and the cost of spawning `sh -c true`.
//!
//! The recorded start is the moment the run's gate opened (its process
//! was created before its time and waited there: `node/src/sched/spawn.rs`).
//! The command itself runs once its guard shell has started it, which
//! takes longer when many are let through at once: it reads `/proc/uptime`
//! (a shell builtin, no process created; 10 ms resolution) and appends it
//! to a witness file, and "cmd" is that start minus the scheduled time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use chrono::DateTime;

use super::{create_jobs, figure, quantile};
use crate::cluster::Cluster;

const PERIOD_S: i64 = 5;

fn ms(t: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(t).ok().map(|d| d.timestamp_millis())
}

/// Timer wake-up lateness (ms) of `tokio::time::sleep_until`, sorted.
async fn timer_floor() -> Vec<f64> {
    let mut v = vec![];
    for _ in 0..500 {
        let due = tokio::time::Instant::now() + Duration::from_millis(2);
        tokio::time::sleep_until(due).await;
        v.push(due.elapsed().as_secs_f64() * 1000.0);
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

/// Spawn-to-exit of `sh -c true` (ms), sorted.
pub(super) async fn spawn_floor() -> Result<Vec<f64>> {
    let mut v = vec![];
    for _ in 0..200 {
        let t = Instant::now();
        tokio::process::Command::new("/bin/sh").args(["-c", "true"]).status().await?;
        v.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok(v)
}

pub(super) struct Outcome {
    pub lateness_ms: Vec<f64>,
    /// end − scheduled of the same runs.
    pub ended_ms: Vec<f64>,
    /// The command's own start − scheduled, by the witness.
    cmd_ms: Vec<f64>,
    pub expected: usize,
    pub missed: usize,
    pub duplicated: usize,
    pub not_run: usize,
    /// With a reader of `/events`: run end → its line read there, ms.
    pub events_ms: Vec<f64>,
    /// The scheduled times counted, Unix ms: `from..to`.
    pub window: (i64, i64),
}

/// One round: `jobs` jobs for `secs` seconds on a fresh cluster.
async fn round(jobs: usize, secs: u64) -> Result<Outcome> {
    round_with(jobs, secs, None, None).await
}

/// A round; with `reader`, a client follows `/events` meanwhile on the
/// leader (`Some(true)`) or on a follower (`Some(false)`); with `notify`,
/// every run's end is POSTed there (`notify URL always` on /ctl).
pub(super) async fn round_with(jobs: usize, secs: u64, reader: Option<bool>, notify: Option<&str>) -> Result<Outcome> {
    let cluster = Cluster::start(3).await?;
    let leader = cluster.wait_leader().await?;
    if let Some(url) = notify {
        cluster.client(leader).await?.write("ctl", format!("notify {url} always").as_bytes()).await?;
    }
    let dir = tempfile::tempdir()?;
    let witness = dir.path().join("witness");
    let cmd = format!("read up rest < /proc/uptime; echo $JOBD_SCHEDULED_TIME $up >> {}", witness.display());
    let conns =
        create_jobs(&cluster, leader, 16, jobs, move |i| (format!("j{i}"), format!("{}/{PERIOD_S} * * * * ?:{cmd}", i as i64 % PERIOD_S), true))
            .await?;
    let boot = super::herd::boot_wall_ms()?;
    // The window: whole seconds after every job is armed, ending a few
    // seconds before the last read so every run in it has been recorded.
    let now = chrono::Utc::now().timestamp_millis();
    let from = (now / 1000 + 2) * 1000;
    let to = from + secs as i64 * 1000;
    let wait = (to + 3000 - now).max(0) as u64;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let follow = reader.map(|on_leader| {
        let node = if on_leader { leader } else { (leader + 1) % 3 };
        let addr = cluster.nodes[node].fs_addr;
        tokio::spawn(super::events::follow(addr, from, to, stopped))
    });
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let _ = stop.send(true);
    let events_ms = match follow {
        Some(task) => task.await??,
        None => vec![],
    };

    let c = &conns[0];
    let mut out = Outcome { lateness_ms: vec![], ended_ms: vec![], cmd_ms: vec![], expected: 0, missed: 0, duplicated: 0, not_run: 0, events_ms, window: (from, to) };
    for line in std::fs::read_to_string(&witness).unwrap_or_default().lines() {
        let Some((scheduled, up)) = line.split_once(' ') else { continue };
        let (Some(t), Ok(up)) = (ms(scheduled), up.parse::<f64>()) else { continue };
        if (from..to).contains(&t) {
            out.cmd_ms.push(boot + up * 1000.0 - t as f64);
        }
    }
    out.cmd_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    for i in 0..jobs {
        let text = String::from_utf8(c.read(&format!("jobs/j{i}/runs")).await?)?;
        let mut by_time: HashMap<i64, Vec<(Option<i64>, Option<i64>)>> = HashMap::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let [_, scheduled, "schedule", _, start, end, ..] = f.as_slice() else { continue };
            let Some(t) = ms(scheduled) else { bail!("bad runs line {line:?}") };
            by_time.entry(t).or_default().push((ms(start), ms(end)));
        }
        let offset = (i as i64 % PERIOD_S) * 1000;
        let mut t = from;
        while t < to {
            if (t / 1000) % PERIOD_S == offset / 1000 {
                out.expected += 1;
                match by_time.get(&t).map(Vec::as_slice) {
                    None | Some([]) => out.missed += 1,
                    Some([(Some(start), end)]) => {
                        out.lateness_ms.push((start - t) as f64);
                        out.ended_ms.extend(end.map(|e| (e - t) as f64));
                    }
                    Some([(None, _)]) => out.not_run += 1,
                    Some(_) => out.duplicated += 1,
                }
            }
            t += 1000;
        }
    }
    out.lateness_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    out.ended_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    drop(cluster);
    Ok(out)
}

pub async fn run(job_counts: &[usize], secs: u64) -> Result<()> {
    println!("lateness: jobs every {PERIOD_S} s, staggered by second, on 3 nodes; {secs} s window per round");
    let timer = timer_floor().await;
    let spawn = spawn_floor().await?;
    println!(
        "floor: timer wake-up lateness p50 {:.3} ms p99 {:.3} ms; sh -c true spawn-to-exit p50 {:.2} ms p99 {:.2} ms",
        quantile(&timer, 0.5),
        quantile(&timer, 0.99),
        quantile(&spawn, 0.5),
        quantile(&spawn, 0.99)
    );
    figure("lateness.timer_p99", quantile(&timer, 0.99), "ms");
    figure("lateness.spawn_p50", quantile(&spawn, 0.5), "ms");
    println!(
        "{:>6} {:>8} {:>9} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>9} {:>9}",
        "jobs", "fires/s", "expected", "p50 ms", "p99 ms", "max ms", "missed", "dupl", "unrun", "cmd p50", "cmd p99"
    );
    let mut ceiling = None;
    for &jobs in job_counts {
        let o = round(jobs, secs).await?;
        let rate = jobs as f64 / PERIOD_S as f64;
        let (p50, p99) = (quantile(&o.lateness_ms, 0.5), quantile(&o.lateness_ms, 0.99));
        let max = o.lateness_ms.last().copied().unwrap_or(f64::NAN);
        let (end50, end99) = (quantile(&o.ended_ms, 0.5), quantile(&o.ended_ms, 0.99));
        let (cmd50, cmd99) = (quantile(&o.cmd_ms, 0.5), quantile(&o.cmd_ms, 0.99));
        println!(
            "{jobs:>6} {rate:>8.0} {:>9} {p50:>8.0} {p99:>8.0} {max:>8.0} {:>7} {:>7} {:>7} {cmd50:>9.0} {cmd99:>9.0}",
            o.expected, o.missed, o.duplicated, o.not_run
        );
        let n = format!("lateness.j{jobs}");
        figure(&format!("{n}.fires_per_s"), rate, "1/s");
        figure(&format!("{n}.p50"), p50, "ms");
        figure(&format!("{n}.p99"), p99, "ms");
        figure(&format!("{n}.max"), max, "ms");
        figure(&format!("{n}.end_p50"), end50, "ms");
        figure(&format!("{n}.end_p99"), end99, "ms");
        figure(&format!("{n}.cmd_p50"), cmd50, "ms");
        figure(&format!("{n}.cmd_p99"), cmd99, "ms");
        figure(&format!("{n}.missed"), o.missed as f64, "count");
        figure(&format!("{n}.duplicated"), o.duplicated as f64, "count");
        figure(&format!("{n}.not_run"), o.not_run as f64, "count");
        if p99 <= 5.0 && cmd99 <= 50.0 && o.missed == 0 && o.duplicated == 0 {
            ceiling = Some(rate);
        }
    }
    match ceiling {
        Some(r) => println!("ceiling: {r:.0} fires/s with gate p99 <= 5 ms, command start p99 <= 50 ms, none missed or duplicated (of the rates tried)"),
        None => println!("ceiling: no rate tried kept gate p99 <= 5 ms and command start p99 <= 50 ms"),
    }
    figure("lateness.ceiling_fires_per_s", ceiling.unwrap_or(0.0), "1/s");
    Ok(())
}
