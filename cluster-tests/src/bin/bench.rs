//! jobd's benchmarks, each beside its peer in the same invocation, printed
//! as a table and as `figure NAME VALUE UNIT` lines.
//!
//!     cargo run --release -p cluster-tests --bin bench -- create
//!     cargo run --release -p cluster-tests --bin bench -- all
//!
//! Implemented: `create` (durable job creation through 9P on three nodes
//! against etcd puts on three members, same concurrency). The others named
//! by the performance issue (lateness, failover, scale, serve9p, growth)
//! are not written yet and say so.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use cluster_tests::cluster::Cluster;
use cluster_tests::etcd::kv_client::KvClient;
use cluster_tests::etcd::PutRequest;
use cluster_tests::etcd_cluster::EtcdCluster;
use ninep::client::{Client, Options};

#[derive(Parser)]
struct Args {
    /// create | lateness | failover | scale | serve9p | growth | all
    bench: String,
    /// Concurrent clients, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    clients: Vec<usize>,
    /// Seconds of load per system and concurrency.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

struct Load {
    ops: usize,
    errors: usize,
    secs: f64,
    latencies_ms: Vec<f64>,
}

impl Load {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }
    fn pct(&self, p: f64) -> f64 {
        if self.latencies_ms.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_ms.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_ms[i]
    }
}

/// Runs `clients` loops of `op` for `secs` seconds.
async fn drive<F, Fut>(clients: usize, secs: u64, op: F) -> Load
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let stop = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let op = op.clone();
            tokio::spawn(async move {
                let (mut lat, mut errors, mut i) = (vec![], 0, 0);
                while Instant::now() < stop {
                    let t = Instant::now();
                    if op(c, i).await {
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    } else {
                        errors += 1;
                    }
                    i += 1;
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = vec![];
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.expect("load task");
        all.extend(lat);
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Load { ops: all.len(), errors, secs, latencies_ms: all }
}

/// The disk's floor for a durable commit: 4 KiB write + fdatasync, p50 in ms.
fn fsync_p50_ms() -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut f = std::fs::File::create(dir.path().join("probe")).expect("probe file");
    let block = vec![7u8; 4096];
    let mut lat: Vec<f64> = (0..200)
        .map(|_| {
            let t = Instant::now();
            f.write_all(&block).expect("write");
            f.sync_data().expect("fdatasync");
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    lat[lat.len() / 2]
}

fn figure(name: &str, value: f64, unit: &str) {
    println!("figure {name} {value:.3} {unit}");
}

async fn create(args: &Args) -> anyhow::Result<()> {
    println!("create: durable job creation through 9P (3 jobd nodes) vs etcd puts (3 members), {} s each", args.seconds);
    let fsync = fsync_p50_ms();
    println!("disk: 4 KiB write + fdatasync p50 {fsync:.2} ms (the floor of a durable commit)");
    figure("create.fsync_p50", fsync, "ms");
    let jobd = Cluster::start(3).await?;
    let etcd = EtcdCluster::start(3).await?;
    println!("{:>8} {:>12} {:>10} {:>10} {:>12} {:>10} {:>10} {:>8}", "clients", "jobd/s", "p50 ms", "p99 ms", "etcd/s", "p50 ms", "p99 ms", "ratio");
    for (round, &n) in args.clients.iter().enumerate() {
        // jobd: each client its own 9P connection, spread over the nodes.
        let mut conns = vec![];
        for c in 0..n {
            conns.push(Client::connect(jobd.nodes[c % 3].fs_addr, Options::default()).await?);
        }
        let conns = Arc::new(conns);
        let j = drive(n, args.seconds, move |c, i| {
            let conns = conns.clone();
            async move { conns[c].write("clone", format!("r{round}c{c}i{i}:@yearly:true").as_bytes()).await.is_ok() }
        })
        .await;
        // etcd: each client its own gRPC channel, spread over the members.
        let mut kvs = vec![];
        for c in 0..n {
            kvs.push(KvClient::connect(format!("http://{}", etcd.clients[c % 3])).await?);
        }
        let kvs = Arc::new(tokio::sync::Mutex::new(kvs));
        let e = drive(n, args.seconds, move |c, i| {
            let kvs = kvs.clone();
            async move {
                let key = format!("{:016}", (round * 1_000_000 + c * 10_000 + i) % 10_000_000_000_000_000).into_bytes();
                let put = PutRequest { key, value: vec![b'v'; 256], ..Default::default() };
                let mut kv = kvs.lock().await[c].clone();
                kv.put(put).await.is_ok()
            }
        })
        .await;
        let ratio = j.rate() / e.rate();
        println!(
            "{n:>8} {:>12.0} {:>10.2} {:>10.2} {:>12.0} {:>10.2} {:>10.2} {:>7.2}x",
            j.rate(),
            j.pct(0.5),
            j.pct(0.99),
            e.rate(),
            e.pct(0.5),
            e.pct(0.99),
            ratio
        );
        if j.errors + e.errors > 0 {
            println!("         errors: jobd {}, etcd {}", j.errors, e.errors);
        }
        figure(&format!("create.c{n}.jobd_per_s"), j.rate(), "1/s");
        figure(&format!("create.c{n}.jobd_p50"), j.pct(0.5), "ms");
        figure(&format!("create.c{n}.jobd_p99"), j.pct(0.99), "ms");
        figure(&format!("create.c{n}.etcd_per_s"), e.rate(), "1/s");
        figure(&format!("create.c{n}.etcd_p50"), e.pct(0.5), "ms");
        figure(&format!("create.c{n}.etcd_p99"), e.pct(0.99), "ms");
        figure(&format!("create.c{n}.ratio_vs_etcd"), ratio, "x");
    }
    etcd.stop().await;
    drop(jobd);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cmdline: Vec<String> = std::env::args().skip(1).collect();
    println!("reproduce: cargo run --release -p cluster-tests --bin bench -- {}", cmdline.join(" "));
    match args.bench.as_str() {
        "create" => create(&args).await,
        "all" => {
            create(&args).await?;
            for b in ["lateness", "failover", "scale", "serve9p", "growth"] {
                println!("{b}: not written yet");
            }
            Ok(())
        }
        b @ ("lateness" | "failover" | "scale" | "serve9p" | "growth") => anyhow::bail!("{b}: not written yet"),
        b => anyhow::bail!("unknown benchmark {b:?}; use create or all"),
    }
}
