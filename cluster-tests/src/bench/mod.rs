//! The benchmark suite behind the `bench` binary: each benchmark runs jobd
//! and its peer in the same invocation, prints a table, and prints every
//! figure on its own line as `figure NAME VALUE UNIT`.

pub mod clients;
pub mod create;
pub mod events;
pub mod failover;
pub mod growth;
pub mod herd;
pub mod http;
pub mod lateness;
pub mod notify;
pub mod scale;
pub mod serve9p;
pub mod stages;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Load {
    pub ops: usize,
    pub errors: usize,
    pub secs: f64,
    pub latencies_ms: Vec<f64>,
}

impl Load {
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }
    pub fn pct(&self, p: f64) -> f64 {
        if self.latencies_ms.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_ms.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_ms[i]
    }
}

/// Runs `clients` loops of `op` for `secs` seconds.
pub async fn drive<F, Fut>(clients: usize, secs: u64, op: F) -> Load
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
    Load {
        ops: all.len(),
        errors,
        secs,
        latencies_ms: all,
    }
}

/// The disk's floor for a durable commit: 4 KiB write + fdatasync, p50 in ms.
pub fn fsync_p50_ms() -> f64 {
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

pub fn figure(name: &str, value: f64, unit: &str) {
    println!("figure {name} {value:.3} {unit}");
}

/// The median of `v` (sorted in place) and its range: how alternated
/// rounds are reported, as this machine is shared and noisy.
pub fn median_range(v: &mut [f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v[0], v[n - 1])
}

/// The `p` quantile (0..=1) of sorted values.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The bytes under `dir`, in MiB (a node's database size).
pub fn dir_mib(dir: &std::path::Path) -> f64 {
    fn walk(p: &std::path::Path) -> u64 {
        std::fs::read_dir(p).map_or(0, |d| {
            d.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
    }
    walk(dir) as f64 / (1 << 20) as f64
}

/// The part of a RocksDB directory that is write-ahead log (`*.log`).
pub fn wal_mib(db: &std::path::Path) -> f64 {
    let wal: u64 = std::fs::read_dir(db).map_or(0, |d| {
        d.flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    });
    wal as f64 / (1 << 20) as f64
}

/// Creates jobs `0..jobs` through `workers` connections spread over the
/// nodes from the leader on, each worker taking every `workers`-th job.
/// `spec(i)` is job i's name, its `SCHEDULE:CMD`, and whether to start it.
/// Returns the connections for further use.
pub async fn create_jobs<S>(
    c: &crate::cluster::Cluster,
    leader: usize,
    workers: usize,
    jobs: usize,
    spec: S,
) -> anyhow::Result<Arc<Vec<ninep::client::Client>>>
where
    S: Fn(usize) -> (String, String, bool) + Send + Sync + 'static,
{
    let mut conns = vec![];
    for w in 0..workers {
        let addr = c.nodes[(leader + w) % c.nodes.len()].fs_addr;
        conns.push(ninep::client::Client::connect(addr, ninep::client::Options::default()).await?);
    }
    let (conns, spec) = (Arc::new(conns), Arc::new(spec));
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (conns, spec) = (conns.clone(), spec.clone());
            tokio::spawn(async move {
                for i in (w..jobs).step_by(workers) {
                    let (name, rest, start) = spec(i);
                    conns[w]
                        .write("clone", format!("{name}:{rest}").as_bytes())
                        .await?;
                    if start {
                        conns[w]
                            .write(&format!("jobs/{name}/ctl"), b"start")
                            .await?;
                    }
                }
                Ok::<_, ninep::client::ClientError>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok(conns)
}
