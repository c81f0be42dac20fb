//! Three etcd members on loopback, the peer jobd's benchmarks compare
//! against (Debian's `etcd-server`), started and ended like jobd nodes.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};

use crate::etcd::kv_client::KvClient;
use crate::etcd::maintenance_client::MaintenanceClient;
use crate::etcd::{PutRequest, StatusRequest};
use crate::jobd::free_addr;

pub struct EtcdCluster {
    pub clients: Vec<SocketAddr>,
    children: Vec<Option<Child>>,
    peers: Vec<SocketAddr>,
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl EtcdCluster {
    pub async fn start(n: usize) -> Result<EtcdCluster> {
        let bin = crate::tools::find_tool("etcd").map_err(anyhow::Error::msg)?;
        let dir = tempfile::tempdir()?;
        let clients: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect::<Result<_>>()?;
        let peers: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect::<Result<_>>()?;
        let mut c = EtcdCluster { clients, children: (0..n).map(|_| None).collect(), peers, bin, dir };
        for i in 0..n {
            c.spawn(i)?;
        }
        c.wait_ready(0).await?;
        Ok(c)
    }

    /// Starts member `i` (again, on its data directory after a kill).
    fn spawn(&mut self, i: usize) -> Result<()> {
        let initial = (0..self.peers.len()).map(|j| format!("e{j}=http://{}", self.peers[j])).collect::<Vec<_>>().join(",");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join(format!("e{i}.log")))?;
        self.children[i] = Some(
            Command::new(&self.bin)
                .args(["--name", &format!("e{i}")])
                .arg("--data-dir")
                .arg(self.dir.path().join(format!("e{i}")))
                .args(["--listen-client-urls", &format!("http://{}", self.clients[i])])
                .args(["--advertise-client-urls", &format!("http://{}", self.clients[i])])
                .args(["--listen-peer-urls", &format!("http://{}", self.peers[i])])
                .args(["--initial-advertise-peer-urls", &format!("http://{}", self.peers[i])])
                .args(["--initial-cluster", &initial, "--initial-cluster-state", "new"])
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .kill_on_drop(true)
                .spawn()?,
        );
        Ok(())
    }

    /// The index of the member the others follow.
    pub async fn leader(&self) -> Result<usize> {
        let start = tokio::time::Instant::now();
        loop {
            let mut ids = vec![];
            let mut leader = None;
            for (i, a) in self.clients.iter().enumerate() {
                if self.children[i].is_none() {
                    ids.push(None);
                    continue;
                }
                match MaintenanceClient::connect(format!("http://{a}")).await {
                    Ok(mut m) => match m.status(StatusRequest {}).await {
                        Ok(r) => {
                            let r = r.into_inner();
                            ids.push(r.header.map(|h| h.member_id));
                            leader = leader.or(Some(r.leader)).filter(|l| *l != 0);
                        }
                        Err(_) => ids.push(None),
                    },
                    Err(_) => ids.push(None),
                }
            }
            if let Some(i) = leader.and_then(|l| ids.iter().position(|id| *id == Some(l))) {
                return Ok(i);
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("no etcd leader after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL member `i`, by pid.
    pub async fn kill(&mut self, i: usize) -> Result<()> {
        let mut c = self.children[i].take().context("member is not running")?;
        c.start_kill()?;
        c.wait().await?;
        Ok(())
    }

    pub async fn restart(&mut self, i: usize) -> Result<()> {
        self.spawn(i)?;
        self.wait_ready(i).await
    }

    /// Until a put through member `i` succeeds.
    async fn wait_ready(&self, i: usize) -> Result<()> {
        let start = tokio::time::Instant::now();
        loop {
            if let Ok(mut kv) = KvClient::connect(format!("http://{}", self.clients[i])).await {
                let put = PutRequest { key: b"ready".to_vec(), value: b"1".to_vec(), ..Default::default() };
                if kv.put(put).await.is_ok() {
                    return Ok(());
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
        for c in self.children.iter_mut().flatten() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }
}
