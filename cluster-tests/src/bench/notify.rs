//! Webhooks: how soon a run's end reaches a receiver, and what delivering
//! every end costs the firing. 1,000 jobs each fire every 5 s (200
//! fires/s, the lateness benchmark's load) on three nodes; rounds
//! alternate, on fresh clusters, no webhook and `notify URL always` on
//! /ctl (every end POSTed to a receiver on this machine, answering 200).
//! The latency of a delivery is the moment the receiver read it minus the
//! end its document records (the node's clock: the same machine's).

use anyhow::Result;

use super::lateness::round_with;
use super::{figure, quantile};
use crate::receiver::Receiver;

fn ms(t: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t).ok().map(|d| d.timestamp_millis())
}

pub async fn run(jobs: usize, secs: u64, rounds: usize) -> Result<()> {
    let fires = jobs as f64 / 5.0;
    println!("notify: {jobs} jobs every 5 s ({fires:.0} fires/s) on 3 nodes, {secs} s window per round, {rounds} rounds of each setting, alternated");
    println!("{:>5} {:>8} {:>10} {:>10} {:>9} {:>11} {:>11} {:>11} {:>10} {:>7}", "round", "webhook", "gate p50", "gate p99", "ends", "hook p50", "hook p99", "hook max", "delivered", "missed");
    let mut gate: [Vec<f64>; 2] = Default::default();
    let (mut p50, mut p99) = (vec![], vec![]);
    for r in 0..rounds {
        for k in 0..2 {
            let hook = (k + r) % 2 == 1;
            let rx = Receiver::ok().await?;
            let url = rx.url();
            let o = round_with(jobs, secs, None, hook.then_some(url.as_str())).await?;
            let (from, to) = o.window;
            let mut lat: Vec<f64> = vec![];
            let mut seen = std::collections::HashSet::new();
            for h in rx.hits() {
                let doc = h.json();
                let (Some(scheduled), Some(ended)) = (doc["scheduled"].as_str().and_then(ms), doc["ended"].as_str().and_then(ms)) else { continue };
                if (from..to).contains(&scheduled) && seen.insert(h.id) {
                    lat.push((h.at_ms - ended) as f64);
                }
            }
            lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let (g50, g99) = (quantile(&o.lateness_ms, 0.5), quantile(&o.lateness_ms, 0.99));
            let (h50, h99, hmax) = (quantile(&lat, 0.5), quantile(&lat, 0.99), lat.last().copied().unwrap_or(f64::NAN));
            let ends = o.ended_ms.len();
            let name = if hook { "every end" } else { "none" };
            println!("{r:>5} {name:>8} {g50:>10.1} {g99:>10.1} {ends:>9} {h50:>11.1} {h99:>11.1} {hmax:>11.1} {:>10} {:>7}", lat.len(), o.missed + o.duplicated + o.not_run);
            gate[usize::from(hook)].push(g99);
            if hook {
                p50.push(h50);
                p99.push(h99);
            }
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        quantile(&v, 0.5)
    };
    let range = |v: &[f64]| format!("{:.1}–{:.1}", v.iter().cloned().fold(f64::INFINITY, f64::min), v.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
    println!("gate p99 median: no webhook {:.1} ms ({}), every end POSTed {:.1} ms ({})", median(&gate[0]), range(&gate[0]), median(&gate[1]), range(&gate[1]));
    println!("run end → webhook received: p50 median {:.1} ms, p99 median {:.1} ms ({})", median(&p50), median(&p99), range(&p99));
    println!("reproduce: cargo run --release -p cluster-tests --bin bench -- notify --jobs {jobs} --window {secs} --rounds {rounds}");
    figure("notify.none.gate_p99", median(&gate[0]), "ms");
    figure("notify.every_end.gate_p99", median(&gate[1]), "ms");
    figure("notify.p50", median(&p50), "ms");
    figure("notify.p99", median(&p99), "ms");
    Ok(())
}
