//! Events: how soon a run's end is readable in `/events` on another node,
//! and what a reader of `/events` costs the firing. 1,000 jobs each fire
//! every 5 s (200 fires/s, the lateness benchmark's load) on three nodes;
//! rounds alternate three settings on fresh clusters: no reader, a reader
//! following `/events` on a follower, a reader on the leader. The reader
//! reads on from its offset every 5 ms (a `tail -f` polls once a second;
//! this is the worst case for the node and the best for latency), and for
//! each `ended` line of a run scheduled in the window takes the moment it
//! read the line minus the line's TIME (the end as recorded by the node
//! that ran it: the same machine's clock).

use std::time::Duration;

use anyhow::Result;
use ninep::client::Client;
use ninep::fcall::omode;

use super::lateness::round_with;
use super::{figure, quantile};

/// How often the reader reads on from where it stopped.
const EVERY: Duration = Duration::from_millis(5);

fn ms(t: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t).ok().map(|d| d.timestamp_millis())
}

/// Follows `/events` at `addr` from its end until `stop`; the latency of
/// each `ended` line whose run was scheduled in `from..to`, sorted.
pub(super) async fn follow(addr: std::net::SocketAddr, from: i64, to: i64, mut stop: tokio::sync::watch::Receiver<bool>) -> Result<Vec<f64>> {
    let c = Client::connect(addr, Default::default()).await?;
    let fid = c.walk("events").await?;
    c.open(fid, omode::OREAD).await?;
    let mut at = c.stat("events").await?.length;
    let (mut pending, mut out) = (String::new(), vec![]);
    while !*stop.borrow_and_update() {
        let chunk = c.read_at(fid, at, 1 << 16).await?;
        if chunk.is_empty() {
            tokio::select! {
                () = tokio::time::sleep(EVERY) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        let seen = chrono::Utc::now().timestamp_millis();
        at += chunk.len() as u64;
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(i) = pending.find('\n') {
            let line: String = pending.drain(..=i).collect();
            let f: Vec<&str> = line.split(' ').collect();
            let (Some(time), Some(scheduled)) = (f.first().and_then(|t| ms(t)), f.get(3).and_then(|t| ms(t))) else { continue };
            if f.get(6) == Some(&"ended") && (from..to).contains(&scheduled) {
                out.push((seen - time) as f64);
            }
        }
    }
    out.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok(out)
}

pub async fn run(jobs: usize, secs: u64, rounds: usize) -> Result<()> {
    let fires = jobs as f64 / 5.0;
    println!("events: {jobs} jobs every 5 s ({fires:.0} fires/s) on 3 nodes, {secs} s window per round, {rounds} rounds of each setting, alternated");
    println!("{:>5} {:>16} {:>10} {:>10} {:>9} {:>12} {:>12} {:>12} {:>7}", "round", "reader", "gate p50", "gate p99", "ends", "event p50", "event p99", "event max", "missed");
    let settings = [(None, "none"), (Some(false), "on a follower"), (Some(true), "on the leader")];
    let mut by: Vec<(Vec<f64>, Vec<f64>, Vec<f64>)> = vec![(vec![], vec![], vec![]); settings.len()];
    for r in 0..rounds {
        // Which setting goes first turns round by round.
        for k in 0..settings.len() {
            let s = (k + r) % settings.len();
            let (reader, name) = settings[s];
            let o = round_with(jobs, secs, reader, None).await?;
            let (g50, g99) = (quantile(&o.lateness_ms, 0.5), quantile(&o.lateness_ms, 0.99));
            let (e50, e99) = (quantile(&o.events_ms, 0.5), quantile(&o.events_ms, 0.99));
            let emax = o.events_ms.last().copied().unwrap_or(f64::NAN);
            println!("{r:>5} {name:>16} {g50:>10.1} {g99:>10.1} {:>9} {e50:>12.1} {e99:>12.1} {emax:>12.1} {:>7}", o.events_ms.len(), o.missed + o.duplicated + o.not_run);
            by[s].0.push(g99);
            if reader.is_some() {
                by[s].1.push(e50);
                by[s].2.push(e99);
            }
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        quantile(&v, 0.5)
    };
    let range = |v: &[f64]| format!("{:.1}–{:.1}", v.iter().cloned().fold(f64::INFINITY, f64::min), v.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
    for (s, (_, name)) in settings.iter().enumerate() {
        let (g, e50, e99) = &by[s];
        let key = name.replace(' ', "_");
        println!("reader {name}: gate p99 median {:.1} ms ({}){}", median(g), range(g), if e99.is_empty() { String::new() } else { format!("; run end → line read p50 median {:.1} ms, p99 median {:.1} ms ({})", median(e50), median(e99), range(e99)) });
        figure(&format!("events.{key}.gate_p99"), median(g), "ms");
        if !e99.is_empty() {
            figure(&format!("events.{key}.p50"), median(e50), "ms");
            figure(&format!("events.{key}.p99"), median(e99), "ms");
        }
    }
    Ok(())
}
