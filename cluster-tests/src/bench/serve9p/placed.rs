//! The one-request-in-flight round again, with the CPUs chosen: the client
//! and every server thread on one CPU (`together`: a message never wakes
//! another CPU), then the servers on one CPU and the client on another
//! (`apart`: every message does). The difference between the two is the
//! machine's cross-CPU wake-up, which no server controls; `together` is
//! the servers' own cost per request.

use std::net::SocketAddr;

use anyhow::Result;

use super::{attach, big_reads, pin, small_reads};
use crate::bench::{figure, quantile, Load};

/// One server of the round.
#[derive(Clone)]
pub struct Placed {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub aname: String,
    pub pid: u32,
    /// The small file's path (walk + open + read + clunk).
    pub small: &'static str,
    /// Whether it serves the big file.
    pub big: bool,
}

/// Small-file load and big-file MiB/s (median of three, alternated), per server.
type Figures = Vec<(Load, Option<f64>)>;

/// Runs the round on a thread and runtime of its own pinned to `client_cpu`,
/// with every thread of every server pinned to `server_cpu`; the servers
/// are unpinned afterwards.
fn round(servers: &[Placed], client_cpu: usize, server_cpu: usize, msize: u32, seconds: u64) -> Result<Figures> {
    for s in servers {
        pin::process(s.pid, &[server_cpu])?;
    }
    let figures = std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<Figures> {
                pin::this_thread(&[client_cpu])?;
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                rt.block_on(async {
                    let mut clients = vec![];
                    for s in servers {
                        clients.push(attach(s.addr, &s.aname, msize).await?);
                    }
                    let mut small = vec![];
                    for (s, c) in servers.iter().zip(&clients) {
                        small.push(small_reads(c, s.small, 1, seconds).await);
                    }
                    let mut big = vec![vec![]; servers.len()];
                    for _ in 0..3 {
                        for (i, (s, c)) in servers.iter().zip(&clients).enumerate() {
                            if s.big {
                                big[i].push(big_reads(c, 1, 2).await?);
                            }
                        }
                    }
                    let median = |mut v: Vec<f64>| {
                        v.sort_by(|a, b| a.total_cmp(b));
                        (!v.is_empty()).then(|| quantile(&v, 0.5))
                    };
                    Ok(small.into_iter().zip(big.into_iter().map(median)).collect())
                })
            })
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the placed round's thread panicked")))
    });
    let all = pin::allowed()?;
    for s in servers {
        pin::process(s.pid, &all)?;
    }
    figures
}

/// Prints the round `together` and `apart`, with the cost of the
/// cross-CPU wake-ups per round trip. The first server is the peer the
/// ratios are taken against.
pub async fn run(servers: Vec<Placed>, msize: u32, seconds: u64) -> Result<()> {
    let cpus = pin::allowed()?;
    if cpus.len() < 2 {
        println!("placed round skipped: it needs two CPUs, this process may use {cpus:?}");
        return Ok(());
    }
    println!("one request in flight, placed: client and servers on CPU {0} (together); servers on {0}, client on {1} (apart)", cpus[0], cpus[1]);
    println!("{:>9} {:>8} {:>11} {:>9} {:>9} {:>9} {:>9}", "placement", "server", "small op/s", "p50 ms", "vs peer", "MiB/s", "vs peer");
    let mut p50 = vec![];
    for (label, client_cpu, server_cpu) in [("together", cpus[0], cpus[0]), ("apart", cpus[1], cpus[0])] {
        let s = servers.clone();
        let figures = tokio::task::spawn_blocking(move || round(&s, client_cpu, server_cpu, msize, seconds)).await??;
        let (peer_small, peer_big) = (figures[0].0.rate(), figures[0].1);
        for (i, (s, (small, big))) in servers.iter().zip(&figures).enumerate() {
            let ratio = small.rate() / peer_small;
            let big_ratio = big.zip(peer_big).map(|(b, p)| b / p);
            let big_cell = big.map_or("-".to_string(), |b| format!("{b:.0}"));
            let big_ratio_cell = big_ratio.map_or("-".to_string(), |r| format!("{r:.2}x"));
            let errors = if small.errors > 0 { format!(" {} errors", small.errors) } else { String::new() };
            println!(
                "{label:>9} {:>8} {:>11.0} {:>9.3} {:>8.2}x {big_cell:>9} {big_ratio_cell:>9}{errors}",
                s.name,
                small.rate(),
                small.pct(0.5),
                ratio,
            );
            figure(&format!("serve9p.{label}.small.c1.{}_per_s", s.name), small.rate(), "1/s");
            figure(&format!("serve9p.{label}.small.c1.{}_p50", s.name), small.pct(0.5), "ms");
            if let Some(b) = big {
                figure(&format!("serve9p.{label}.big.c1.{}_mib_per_s", s.name), *b, "MiB/s");
            }
            if i > 0 {
                figure(&format!("serve9p.{label}.small.c1.{}_ratio_vs_{}", s.name, servers[0].name), ratio, "x");
                if let Some(r) = big_ratio {
                    figure(&format!("serve9p.{label}.big.c1.{}_ratio_vs_{}", s.name, servers[0].name), r, "x");
                }
            }
        }
        p50.push(figures.iter().map(|(small, _)| small.pct(0.5)).collect::<Vec<_>>());
    }
    // A small-file operation is four round trips (walk, open, read, clunk).
    for (i, s) in servers.iter().enumerate() {
        let us = (p50[1][i] - p50[0][i]) * 1000.0 / 4.0;
        println!("{:>8}: apart costs {us:.0} us more per round trip than together (p50)", s.name);
        figure(&format!("serve9p.cross_cpu.{}_us_per_round_trip", s.name), us, "us");
    }
    Ok(())
}
