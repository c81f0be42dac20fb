//! Three etcd members on loopback, the peer jobd's benchmarks compare
//! against (Debian's `etcd-server`), started and ended like jobd nodes.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};

use crate::etcd::kv_client::KvClient;
use crate::etcd::PutRequest;
use crate::jobd::free_addr;

pub struct EtcdCluster {
    pub clients: Vec<SocketAddr>,
    children: Vec<Child>,
    _dir: tempfile::TempDir,
}

impl EtcdCluster {
    pub async fn start(n: usize) -> Result<EtcdCluster> {
        let bin = which("etcd").context("etcd is not installed (Debian: apt-get install etcd-server)")?;
        let dir = tempfile::tempdir()?;
        let clients: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect::<Result<_>>()?;
        let peers: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect::<Result<_>>()?;
        let initial = (0..n).map(|i| format!("e{i}=http://{}", peers[i])).collect::<Vec<_>>().join(",");
        let mut children = vec![];
        for i in 0..n {
            let log = std::fs::File::create(dir.path().join(format!("e{i}.log")))?;
            children.push(
                Command::new(&bin)
                    .args(["--name", &format!("e{i}")])
                    .arg("--data-dir")
                    .arg(dir.path().join(format!("e{i}")))
                    .args(["--listen-client-urls", &format!("http://{}", clients[i])])
                    .args(["--advertise-client-urls", &format!("http://{}", clients[i])])
                    .args(["--listen-peer-urls", &format!("http://{}", peers[i])])
                    .args(["--initial-advertise-peer-urls", &format!("http://{}", peers[i])])
                    .args(["--initial-cluster", &initial, "--initial-cluster-state", "new"])
                    .stdin(Stdio::null())
                    .stdout(log.try_clone()?)
                    .stderr(log)
                    .kill_on_drop(true)
                    .spawn()?,
            );
        }
        let c = EtcdCluster { clients, children, _dir: dir };
        let start = tokio::time::Instant::now();
        loop {
            if let Ok(mut kv) = KvClient::connect(format!("http://{}", c.clients[0])).await {
                let put = PutRequest { key: b"ready".to_vec(), value: b"1".to_vec(), ..Default::default() };
                if kv.put(put).await.is_ok() {
                    return Ok(c);
                }
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("etcd cluster not ready after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the members, by pid.
    pub async fn stop(mut self) {
        for c in &mut self.children {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| std::path::Path::new(d).join(name)).find(|p| p.exists())
}
