//! Where one create's time goes at one client: the client's four 9P round
//! trips timed one by one (then the same creates pipelined, as jobd's
//! client sends them), and each node's write stages (`jobd`'s
//! `jobd_write_stage_seconds`, read from its metrics before and after)
//! divided by the creates, through the leader and through a follower in
//! alternated rounds; beside the floors this machine sets (one fdatasync,
//! one loopback round trip, one wake-up of another thread).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Instant;

use ninep::client::{Client, Options};
use ninep::fcall::omode;

use super::{figure, fsync_p50_ms, median_range, quantile};
use crate::cluster::Cluster;

/// Creates per route and round, one at a time.
const CREATES: usize = 400;

/// Each stage's (count, seconds) on one node, from its metrics text.
type Stages = std::collections::BTreeMap<String, (f64, f64)>;

pub async fn run(rounds: usize) -> anyhow::Result<()> {
    println!("create-stages: one create at a time through 9P, by stage; {rounds} rounds of {CREATES} creates per route");
    floors();
    let metrics: Vec<SocketAddr> = (0..3).map(|_| crate::jobd::free_addr()).collect::<Result<_, _>>()?;
    let env_metrics = metrics.clone();
    let c = Cluster::start_with_env(3, move |i| vec![("JOBD_METRICS_ADDR".into(), env_metrics[i].to_string())]).await?;
    let leader = c.wait_leader().await?;
    let follower = (leader + 1) % 3;
    let mut seen: std::collections::BTreeMap<(String, String), Vec<f64>> = Default::default();
    for round in 0..rounds {
        for (route, via) in [("leader", leader), ("follower", follower)] {
            let client = Client::connect(c.nodes[via].fs_addr, Options::default()).await?;
            // Warm the connection and the forward channel.
            for i in 0..20 {
                client.write("clone", format!("w{round}{route}{i}:@yearly:true").as_bytes()).await?;
            }
            let before: Vec<Stages> = metrics.iter().map(|a| scrape(*a)).collect::<anyhow::Result<_>>()?;
            let mut ops: [Vec<f64>; 5] = Default::default();
            for i in 0..CREATES {
                let t0 = Instant::now();
                let fid = client.walk("clone").await?;
                let t1 = Instant::now();
                client.open(fid, omode::OWRITE).await?;
                let t2 = Instant::now();
                client.write_at(fid, 0, format!("s{round}{route}{i}:@yearly:true").as_bytes()).await?;
                let t3 = Instant::now();
                client.clunk(fid).await?;
                let t4 = Instant::now();
                for (k, (a, b)) in [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t0, t4)].into_iter().enumerate() {
                    ops[k].push((b - a).as_secs_f64() * 1000.0);
                }
            }
            let after: Vec<Stages> = metrics.iter().map(|a| scrape(*a)).collect::<anyhow::Result<_>>()?;
            // The same creates as jobd's client sends them: the four
            // requests together, one round trip (`Client::rpcs`).
            let mut together = vec![];
            for i in 0..CREATES {
                let t = Instant::now();
                client.write("clone", format!("p{round}{route}{i}:@yearly:true").as_bytes()).await?;
                together.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            println!("round {}, through the {route} (node {}):", round + 1, c.nodes[via].id);
            let mean = together.iter().sum::<f64>() / together.len() as f64;
            together.sort_by(|a, b| a.total_cmp(b));
            println!("  client pipelined mean {mean:>6.3} ms  p50 {:>6.3}  p99 {:>6.3}", quantile(&together, 0.5), quantile(&together, 0.99));
            seen.entry((route.into(), "client pipelined mean".into())).or_default().push(mean);
            seen.entry((route.into(), "client pipelined p50".into())).or_default().push(quantile(&together, 0.5));
            for (k, name) in ["walk", "open", "write", "clunk", "create"].into_iter().enumerate() {
                let v = &mut ops[k];
                let mean = v.iter().sum::<f64>() / v.len() as f64;
                v.sort_by(|a, b| a.total_cmp(b));
                println!("  client {name:<8} mean {mean:>6.3} ms  p50 {:>6.3}  p99 {:>6.3}", quantile(v, 0.5), quantile(v, 0.99));
                seen.entry((route.into(), format!("client {name} mean"))).or_default().push(mean);
                seen.entry((route.into(), format!("client {name} p50"))).or_default().push(quantile(v, 0.5));
            }
            for (n, (b, a)) in before.iter().zip(&after).enumerate() {
                let role = if n == leader {
                    "leader".to_string()
                } else if n == via {
                    "entry follower".to_string()
                } else {
                    format!("follower {}", c.nodes[n].id)
                };
                for (stage, (count, secs)) in a {
                    let (c0, s0) = b.get(stage).copied().unwrap_or((0.0, 0.0));
                    let (calls, ms) = ((count - c0) / CREATES as f64, (secs - s0) * 1000.0 / CREATES as f64);
                    if calls > 0.0 {
                        println!("  {role:<14} {stage:<18} {ms:>6.3} ms per create  {calls:>5.2} calls per create  {:>6.3} ms per call", ms / calls);
                        seen.entry((route.into(), format!("{role} {stage}"))).or_default().push(ms);
                    }
                }
            }
        }
    }
    println!("medians over {rounds} rounds (range), ms per create:");
    for ((route, what), v) in &mut seen {
        let (m, lo, hi) = median_range(v);
        println!("  {route:<9} {what:<36} {m:>6.3}  ({lo:.3}–{hi:.3})");
        figure(&format!("stages.{route}.{}", what.replace(' ', "_")), m, "ms");
    }
    drop(c);
    Ok(())
}

/// This machine's floors, p50: a durable write, a loopback round trip
/// between two threads, and one thread waking another.
fn floors() {
    let fsync = fsync_p50_ms();
    let rtt = loopback_rtt_ms();
    let wake = wake_ms();
    println!("floors: fdatasync {fsync:.3} ms, loopback TCP round trip {rtt:.3} ms, a thread waking another {wake:.3} ms (p50)");
    figure("stages.floor.fdatasync", fsync, "ms");
    figure("stages.floor.loopback_rtt", rtt, "ms");
    figure("stages.floor.wake", wake, "ms");
}

fn loopback_rtt_ms() -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let echo = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_nodelay(true).expect("nodelay");
        let mut b = [0u8; 1];
        while s.read_exact(&mut b).is_ok() {
            if s.write_all(&b).is_err() {
                break;
            }
        }
    });
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let mut lat: Vec<f64> = (0..2000)
        .map(|_| {
            let t = Instant::now();
            s.write_all(b"x").expect("write");
            let mut b = [0u8; 1];
            s.read_exact(&mut b).expect("read");
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    drop(s);
    let _ = echo.join();
    lat.sort_by(|a, b| a.total_cmp(b));
    quantile(&lat, 0.5)
}

/// Half of a ping-pong between two threads over channels.
fn wake_ms() -> f64 {
    let (to, from_main) = std::sync::mpsc::channel::<Instant>();
    let (back, from_thread) = std::sync::mpsc::channel::<Instant>();
    let t = std::thread::spawn(move || {
        while let Ok(x) = from_main.recv() {
            if back.send(x).is_err() {
                break;
            }
        }
    });
    let mut lat: Vec<f64> = (0..2000)
        .map(|_| {
            to.send(Instant::now()).expect("send");
            let sent = from_thread.recv().expect("recv");
            sent.elapsed().as_secs_f64() * 1000.0 / 2.0
        })
        .collect();
    drop(to);
    let _ = t.join();
    lat.sort_by(|a, b| a.total_cmp(b));
    quantile(&lat, 0.5)
}

/// The write stages' totals from a node's metrics endpoint.
fn scrape(addr: SocketAddr) -> anyhow::Result<Stages> {
    let mut s = TcpStream::connect(addr)?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let mut out = Stages::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("jobd_write_stage_seconds_") else { continue };
        let Some((kind, rest)) = rest.split_once("{stage=\"") else { continue };
        let Some((stage, value)) = rest.split_once("\"} ") else { continue };
        let value: f64 = value.trim().parse()?;
        let e = out.entry(stage.to_string()).or_default();
        match kind {
            "count" => e.0 = value,
            "sum" => e.1 = value,
            _ => {}
        }
    }
    anyhow::ensure!(!out.is_empty(), "no write stages in {addr}'s metrics");
    Ok(out)
}
