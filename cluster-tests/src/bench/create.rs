//! 1. Durable job creation through 9P on three jobd nodes against etcd
//! puts on three members, at the same concurrency, in alternated rounds
//! (jobd first in odd rounds, etcd first in even ones), reported as the
//! median ratio with its range. One client is measured twice: sent to the
//! leader, and sent to a follower (which forwards it), on both systems.

use std::sync::Arc;

use ninep::client::{Client, Options};

use super::{drive, figure, fsync_p50_ms, median_range, Load};
use crate::cluster::Cluster;
use crate::etcd::kv_client::KvClient;
use crate::etcd::PutRequest;
use crate::etcd_cluster::EtcdCluster;

/// Where a setting's clients send their writes.
#[derive(Clone, Copy)]
enum Route {
    Leader,
    Follower,
    /// Client c to node c mod 3.
    Spread,
}

impl Route {
    fn node(self, leader: usize, c: usize) -> usize {
        match self {
            Route::Leader => leader,
            Route::Follower => (leader + 1) % 3,
            Route::Spread => c % 3,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Route::Leader => "leader",
            Route::Follower => "follower",
            Route::Spread => "spread",
        }
    }
}

pub async fn run(clients: &[usize], seconds: u64, rounds: usize) -> anyhow::Result<()> {
    println!("create: durable job creation through 9P (3 jobd nodes) vs etcd puts (3 members), {seconds} s each, {rounds} alternated rounds per setting");
    let fsync = fsync_p50_ms();
    println!("disk: 4 KiB write + fdatasync p50 {fsync:.2} ms (the floor of a durable commit)");
    figure("create.fsync_p50", fsync, "ms");
    let jobd = Cluster::start(3).await?;
    // Every round creates its own jobs: at 256 clients, three rounds of
    // each setting pass the default limit of 200,000 jobs.
    let leader = jobd.wait_leader().await?;
    jobd.client(leader).await?.write("ctl", b"limit max-jobs 10000000").await?;
    let etcd = EtcdCluster::start(3).await?;
    let mut settings = vec![];
    for &n in clients {
        if n == 1 {
            settings.extend([(1, Route::Leader), (1, Route::Follower)]);
        } else {
            settings.push((n, Route::Spread));
        }
    }
    println!(
        "{:>8} {:>9} {:>6} {:>10} {:>8} {:>8} {:>10} {:>8} {:>8} {:>7}",
        "clients", "to", "round", "jobd/s", "p50 ms", "p99 ms", "etcd/s", "p50 ms", "p99 ms", "ratio"
    );
    let mut serial = 0;
    for (n, route) in settings {
        let (mut ratios, mut j99, mut e99, mut jrate, mut erate) = (vec![], vec![], vec![], vec![], vec![]);
        for round in 0..rounds {
            // Leaders are looked up each round: a change would move the route.
            let (jl, el) = (jobd.wait_leader().await?, etcd.leader().await?);
            serial += 1;
            let (j, e) = if round % 2 == 0 {
                let j = jobd_load(&jobd, n, route, jl, seconds, serial).await?;
                (j, etcd_load(&etcd, n, route, el, seconds, serial).await?)
            } else {
                let e = etcd_load(&etcd, n, route, el, seconds, serial).await?;
                (jobd_load(&jobd, n, route, jl, seconds, serial).await?, e)
            };
            let ratio = j.rate() / e.rate();
            println!(
                "{n:>8} {:>9} {:>6} {:>10.0} {:>8.2} {:>8.2} {:>10.0} {:>8.2} {:>8.2} {:>6.2}x",
                route.name(),
                round + 1,
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
            ratios.push(ratio);
            j99.push(j.pct(0.99));
            e99.push(e.pct(0.99));
            jrate.push(j.rate());
            erate.push(e.rate());
        }
        let (r, rlo, rhi) = median_range(&mut ratios);
        let (jp, jlo, jhi) = median_range(&mut j99);
        let (ep, elo, ehi) = median_range(&mut e99);
        let (jr, er) = (median_range(&mut jrate).0, median_range(&mut erate).0);
        println!(
            "{n:>8} {:>9} median: {jr:.0}/s against {er:.0}/s, ratio {r:.2}x ({rlo:.2}–{rhi:.2}); p99 {jp:.2} ms ({jlo:.2}–{jhi:.2}) against {ep:.2} ms ({elo:.2}–{ehi:.2})",
            route.name()
        );
        let key = match route {
            Route::Spread => format!("create.c{n}"),
            r => format!("create.c{n}.{}", r.name()),
        };
        figure(&format!("{key}.jobd_per_s"), jr, "1/s");
        figure(&format!("{key}.etcd_per_s"), er, "1/s");
        figure(&format!("{key}.jobd_p99"), jp, "ms");
        figure(&format!("{key}.etcd_p99"), ep, "ms");
        figure(&format!("{key}.ratio_vs_etcd"), r, "x");
        figure(&format!("{key}.ratio_vs_etcd_min"), rlo, "x");
        figure(&format!("{key}.ratio_vs_etcd_max"), rhi, "x");
    }
    etcd.stop().await;
    drop(jobd);
    Ok(())
}

/// `n` clients creating jobs for `seconds`, each its own 9P connection.
async fn jobd_load(jobd: &Cluster, n: usize, route: Route, leader: usize, seconds: u64, serial: usize) -> anyhow::Result<Load> {
    let mut conns = vec![];
    for c in 0..n {
        conns.push(Client::connect(jobd.nodes[route.node(leader, c)].fs_addr, Options::default()).await?);
    }
    let conns = Arc::new(conns);
    let errors: Arc<std::sync::Mutex<std::collections::BTreeMap<String, usize>>> = Arc::default();
    let seen = errors.clone();
    let load = drive(n, seconds, move |c, i| {
        let (conns, errors) = (conns.clone(), errors.clone());
        async move {
            let res = conns[c].write("clone", format!("r{serial}c{c}i{i}:@yearly:true").as_bytes()).await;
            if let Err(e) = &res {
                *errors.lock().unwrap_or_else(|p| p.into_inner()).entry(e.to_string()).or_default() += 1;
            }
            res.is_ok()
        }
    })
    .await;
    for (e, count) in seen.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        println!("         jobd error {count}×: {e}");
    }
    Ok(load)
}

/// `n` clients putting 256-byte values for `seconds`, each its own gRPC channel.
async fn etcd_load(etcd: &EtcdCluster, n: usize, route: Route, leader: usize, seconds: u64, serial: usize) -> anyhow::Result<Load> {
    let mut kvs = vec![];
    for c in 0..n {
        kvs.push(KvClient::connect(format!("http://{}", etcd.clients[route.node(leader, c)])).await?);
    }
    let kvs = Arc::new(kvs);
    Ok(drive(n, seconds, move |c, i| {
        let mut kv = kvs[c].clone();
        async move {
            let key = format!("r{serial}c{c}i{i}").into_bytes();
            let put = PutRequest { key, value: vec![b'v'; 256], ..Default::default() };
            kv.put(put).await.is_ok()
        }
    })
    .await)
}
