//! 8. The tree over HTTP, beside its peers at the same concurrency on the
//! same three nodes: reads (`GET /jobs/NAME/cmd` against a 9P read of the
//! same file) and creates (`POST /clone` against etcd puts on three
//! members, with 9P's `clone` write for reference), each pair alternated
//! round by round (which goes first alternates too), reported as the
//! median ratio and its range; then the dashboard's first job row with
//! many jobs, measured in Chromium from navigation (`performance.mark`
//! in the page).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ninep::client::{Client, Options};

use super::{drive, figure, median_range, Load};
use crate::cluster::Cluster;
use crate::etcd::kv_client::KvClient;
use crate::etcd::PutRequest;
use crate::etcd_cluster::EtcdCluster;

type Http = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// One keep-alive connection's client (as each 9P client has its own).
fn http_client() -> Http {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1)
        .build_http()
}

/// Each of `n` clients' own HTTP client and the URL of `path` on the
/// node it talks to (clients spread over the nodes).
fn http_conns(addrs: &[SocketAddr], n: usize, path: &str) -> Arc<Vec<(Http, String)>> {
    Arc::new(
        (0..n)
            .map(|c| {
                (
                    http_client(),
                    format!("http://{}{path}", addrs[c % addrs.len()]),
                )
            })
            .collect(),
    )
}

/// Each of `n` clients' own 9P connection, spread over the nodes.
async fn ninep_conns(jobd: &Cluster, n: usize) -> anyhow::Result<Arc<Vec<Client>>> {
    let mut conns = vec![];
    for c in 0..n {
        conns.push(
            Client::connect(jobd.nodes[c % jobd.nodes.len()].fs_addr, Options::default()).await?,
        );
    }
    Ok(Arc::new(conns))
}

/// `a`'s and `b`'s loads, `a` first in even rounds and `b` first in odd
/// ones, so neither always runs on the machine the other just warmed.
async fn alternated(
    round: usize,
    a: impl AsyncFnOnce() -> anyhow::Result<Load>,
    b: impl AsyncFnOnce() -> anyhow::Result<Load>,
) -> anyhow::Result<(Load, Load)> {
    if round % 2 == 0 {
        let a = a().await?;
        Ok((a, b().await?))
    } else {
        let b = b().await?;
        Ok((a().await?, b))
    }
}

/// One request, its body read to the end; whether it answered `want`.
async fn request(c: &Http, method: &str, url: &str, body: Bytes, want: u16) -> bool {
    let Ok(req) = http::Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(body))
    else {
        return false;
    };
    match c.request(req).await {
        Ok(r) => r.status().as_u16() == want && r.into_body().collect().await.is_ok(),
        Err(_) => false,
    }
}

pub async fn run(
    clients: &[usize],
    seconds: u64,
    rounds: usize,
    dashboard_jobs: usize,
) -> anyhow::Result<()> {
    println!(
        "http: the tree over HTTP against 9P and etcd (3 nodes, 3 members), {seconds} s a system a round, {rounds} rounds alternated"
    );
    let addrs: Vec<SocketAddr> = (0..3)
        .map(|_| crate::jobd::free_addr())
        .collect::<anyhow::Result<_>>()?;
    let env = |i: usize| vec![("JOBD_HTTP_ADDR".to_string(), addrs[i].to_string())];
    let jobd = Cluster::start_with_env(3, env).await?;
    let leader = jobd.wait_leader().await?;
    jobd.client(leader)
        .await?
        .write("clone", b"r:@yearly:echo a command to read")
        .await?;
    // First, while the cluster holds only the jobs it asks for (the
    // creates below add tens of thousands).
    dashboard(
        &jobd,
        leader,
        addrs[(leader + 1) % 3],
        dashboard_jobs,
        rounds,
    )
    .await?;
    reads(&jobd, &addrs, clients, seconds, rounds).await?;
    creates(&jobd, &addrs, clients, seconds, rounds).await?;
    Ok(())
}

/// A table row: the median of each side's rate and p99, the median ratio and its range.
fn report(name: &str, n: usize, a: &[Load], b: &[Load], ratios: &mut [f64]) {
    let med = |mut v: Vec<f64>| median_range(&mut v).0;
    let (ar, ap) = (
        med(a.iter().map(Load::rate).collect()),
        med(a.iter().map(|l| l.pct(0.99)).collect()),
    );
    let (br, bp) = (
        med(b.iter().map(Load::rate).collect()),
        med(b.iter().map(|l| l.pct(0.99)).collect()),
    );
    let (m, lo, hi) = median_range(ratios);
    let errors: usize = a.iter().chain(b).map(|l| l.errors).sum();
    println!(
        "{n:>8} {ar:>10.0} {ap:>8.2} {br:>10.0} {bp:>8.2} {m:>7.2}x ({lo:.2}-{hi:.2}){}",
        if errors > 0 {
            format!("  errors {errors}")
        } else {
            String::new()
        }
    );
    figure(&format!("http.{name}.c{n}.ratio_median"), m, "x");
    figure(&format!("http.{name}.c{n}.ratio_min"), lo, "x");
    figure(&format!("http.{name}.c{n}.ratio_max"), hi, "x");
    figure(&format!("http.{name}.c{n}.http_p99"), ap, "ms");
    figure(&format!("http.{name}.c{n}.peer_p99"), bp, "ms");
}

async fn reads(
    jobd: &Cluster,
    addrs: &[SocketAddr],
    clients: &[usize],
    seconds: u64,
    rounds: usize,
) -> anyhow::Result<()> {
    println!("reads of /jobs/r/cmd, each client its own connection, spread over the nodes");
    println!(
        "{:>8} {:>10} {:>8} {:>10} {:>8} {:>8}",
        "clients", "http/s", "p99 ms", "9p/s", "p99 ms", "ratio"
    );
    for &n in clients {
        let (mut h, mut p, mut ratios) = (vec![], vec![], vec![]);
        for round in 0..rounds {
            let http_load = async || {
                let conns = http_conns(addrs, n, "/jobs/r/cmd");
                Ok(drive(n, seconds, move |c, _| {
                    let conns = conns.clone();
                    async move { request(&conns[c].0, "GET", &conns[c].1, Bytes::new(), 200).await }
                })
                .await)
            };
            let ninep_load = async || {
                let conns = ninep_conns(jobd, n).await?;
                Ok(drive(n, seconds, move |c, _| {
                    let conns = conns.clone();
                    async move { conns[c].read("jobs/r/cmd").await.is_ok() }
                })
                .await)
            };
            let (a, b) = alternated(round, http_load, ninep_load).await?;
            ratios.push(a.rate() / b.rate());
            h.push(a);
            p.push(b);
        }
        report("read", n, &h, &p, &mut ratios);
    }
    Ok(())
}

async fn creates(
    jobd: &Cluster,
    addrs: &[SocketAddr],
    clients: &[usize],
    seconds: u64,
    rounds: usize,
) -> anyhow::Result<()> {
    let etcd = EtcdCluster::start(3).await?;
    println!("creates: POST /clone (one round trip) against etcd puts of 256 bytes; 9P clone writes for reference");
    println!(
        "{:>8} {:>10} {:>8} {:>10} {:>8} {:>8}   {:>8}",
        "clients", "http/s", "p99 ms", "etcd/s", "p99 ms", "ratio", "9p/s"
    );
    let serial = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for &n in clients {
        let (mut h, mut e, mut p, mut ratios) = (vec![], vec![], vec![], vec![]);
        for round in 0..rounds {
            let http_load = async || {
                let conns = http_conns(addrs, n, "/clone");
                let serial = serial.clone();
                Ok(drive(n, seconds, move |c, _| {
                    let (conns, serial) = (conns.clone(), serial.clone());
                    async move {
                        let i = serial.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let body = Bytes::from(format!("h{i}:@yearly:true"));
                        request(&conns[c].0, "POST", &conns[c].1, body, 201).await
                    }
                })
                .await)
            };
            let etcd_load = async || {
                let mut kvs = vec![];
                for c in 0..n {
                    kvs.push(KvClient::connect(format!("http://{}", etcd.clients[c % 3])).await?);
                }
                let kvs = Arc::new(kvs);
                let serial = serial.clone();
                Ok(drive(n, seconds, move |c, _| {
                    let (kvs, serial) = (kvs.clone(), serial.clone());
                    async move {
                        let i = serial.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let put = PutRequest {
                            key: format!("{i:016}").into_bytes(),
                            value: vec![b'v'; 256],
                            ..Default::default()
                        };
                        kvs[c].clone().put(put).await.is_ok()
                    }
                })
                .await)
            };
            let (a, b) = alternated(round, http_load, etcd_load).await?;
            ratios.push(a.rate() / b.rate());
            h.push(a);
            e.push(b);
            // 9P's create, for reference (not alternated).
            let conns = ninep_conns(jobd, n).await?;
            let serial = serial.clone();
            p.push(
                drive(n, seconds, move |c, _| {
                    let (conns, serial) = (conns.clone(), serial.clone());
                    async move {
                        let i = serial.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        conns[c]
                            .write("clone", format!("p{i}:@yearly:true").as_bytes())
                            .await
                            .is_ok()
                    }
                })
                .await,
            );
        }
        let mut r9 = p.iter().map(Load::rate).collect::<Vec<_>>();
        let nine = median_range(&mut r9).0;
        report("create", n, &h, &e, &mut ratios);
        println!("{:>8} 9P clone writes: {nine:.0}/s (median)", "");
        figure(&format!("http.create.c{n}.ninep_per_s"), nine, "1/s");
    }
    etcd.stop().await;
    Ok(())
}

/// The dashboard loaded from `at` with `jobs` more jobs (a tenth started):
/// navigation to first job row, and to every row listed, each in a fresh
/// browser session.
async fn dashboard(
    jobd: &Cluster,
    leader: usize,
    at: SocketAddr,
    jobs: usize,
    rounds: usize,
) -> anyhow::Result<()> {
    super::create_jobs(jobd, leader, 16, jobs, |i| {
        (format!("d{i:05}"), "@yearly:true".into(), i % 10 == 0)
    })
    .await?;
    let listed = jobd.client(leader).await?.readdir("jobs").await?.len();
    println!(
        "dashboard: {listed} jobs, loaded from a follower in a fresh headless Chromium each round"
    );
    let (_driver, webdriver) = crate::browser::chromedriver().await;
    let (mut first, mut every) = (vec![], vec![]);
    for _ in 0..rounds {
        let b = crate::browser::browser(&webdriver).await;
        b.goto(&format!("http://{at}/")).await?;
        let mark = async |name: &str| -> Option<f64> {
            let js = format!(
                "return performance.getEntriesByName('{name}').map(e => e.startTime)[0] ?? null"
            );
            b.execute(&js, vec![]).await.ok()?.as_f64()
        };
        let f = crate::poll::poll(
            "the first row",
            Duration::from_secs(60),
            Duration::from_millis(50),
            async || mark("jobd-first-row").await,
        )
        .await;
        let e = crate::poll::poll(
            "every row",
            Duration::from_secs(120),
            Duration::from_millis(100),
            async || mark("jobd-every-row").await,
        )
        .await;
        first.push(f);
        every.push(e);
        b.close().await?;
    }
    let (fm, flo, fhi) = median_range(&mut first);
    let (em, elo, ehi) = median_range(&mut every);
    println!("  first job row {fm:.0} ms after navigation ({flo:.0}-{fhi:.0}); every row listed {em:.0} ms ({elo:.0}-{ehi:.0})");
    figure("http.dashboard.first_row", fm, "ms");
    figure("http.dashboard.every_row", em, "ms");
    Ok(())
}
