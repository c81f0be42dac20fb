//! 1. Durable job creation through 9P on three jobd nodes against etcd
//! puts on three members, at the same concurrency.

use std::sync::Arc;

use ninep::client::{Client, Options};

use super::{drive, figure, fsync_p50_ms};
use crate::cluster::Cluster;
use crate::etcd::kv_client::KvClient;
use crate::etcd::PutRequest;
use crate::etcd_cluster::EtcdCluster;

pub async fn run(clients: &[usize], seconds: u64) -> anyhow::Result<()> {
    println!("create: durable job creation through 9P (3 jobd nodes) vs etcd puts (3 members), {} s each", seconds);
    let fsync = fsync_p50_ms();
    println!("disk: 4 KiB write + fdatasync p50 {fsync:.2} ms (the floor of a durable commit)");
    figure("create.fsync_p50", fsync, "ms");
    let jobd = Cluster::start(3).await?;
    let etcd = EtcdCluster::start(3).await?;
    println!("{:>8} {:>12} {:>10} {:>10} {:>12} {:>10} {:>10} {:>8}", "clients", "jobd/s", "p50 ms", "p99 ms", "etcd/s", "p50 ms", "p99 ms", "ratio");
    for (round, &n) in clients.iter().enumerate() {
        // jobd: each client its own 9P connection, spread over the nodes.
        let mut conns = vec![];
        for c in 0..n {
            conns.push(Client::connect(jobd.nodes[c % 3].fs_addr, Options::default()).await?);
        }
        let conns = Arc::new(conns);
        let j = drive(n, seconds, move |c, i| {
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
        let e = drive(n, seconds, move |c, i| {
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

