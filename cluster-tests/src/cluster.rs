//! A cluster of real `jobd` processes formed from the command line, as an
//! operator would: `--peers` and `--initial-cluster-state new`, each node in
//! its own directory on OS-chosen ports. Nodes can be killed (SIGKILL) and
//! restarted on the same directory; only processes started here are ended,
//! by pid (a child is killed when its handle drops, also on panic).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ninep::client::{Client, Options};
use tokio::process::Child;

use crate::jobd::{spawn_jobd, READY_DEADLINE};

pub struct NodeProc {
    /// Extra environment (for example JOBD_TEST_CLOCK_OFFSET_MS).
    pub env: Vec<(String, String)>,
    pub id: u64,
    pub fs_addr: SocketAddr,
    pub raft_addr: SocketAddr,
    pub dir: PathBuf,
    pub child: Option<Child>,
}

pub struct Cluster {
    pub nodes: Vec<NodeProc>,
    /// With `start_proxied`: the proxy on the link from node i to node j.
    pub links: std::collections::HashMap<(usize, usize), crate::proxy::Proxy>,
    peers: String,
    _root: tempfile::TempDir,
    /// One cluster at a time per test binary: three nodes with sub-second
    /// election timeouts flap on 2 cores if another cluster runs beside them.
    _serial: tokio::sync::OwnedMutexGuard<()>,
}

fn serial() -> std::sync::Arc<tokio::sync::Mutex<()>> {
    static LOCK: std::sync::OnceLock<std::sync::Arc<tokio::sync::Mutex<()>>> = std::sync::OnceLock::new();
    LOCK.get_or_init(Default::default).clone()
}

impl Cluster {
    pub async fn start(n: usize) -> Result<Cluster> {
        Cluster::start_with_env(n, |_| vec![]).await
    }

    /// Starts `n` nodes with every peer link through a proxy the test controls.
    pub async fn start_proxied(n: usize) -> Result<Cluster> {
        Cluster::start_proxied_with_env(n, &[]).await
    }

    /// `start_proxied`, with extra environment for every node.
    pub async fn start_proxied_with_env(n: usize, extra: &[(&str, &str)]) -> Result<Cluster> {
        // Raft addresses first, so the proxies know where to forward; held
        // until the proxies are bound, so the OS cannot hand one to a proxy.
        let held: Vec<std::net::TcpListener> =
            (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0")).collect::<std::io::Result<_>>()?;
        let raft: Vec<SocketAddr> = held.iter().map(|l| l.local_addr()).collect::<std::io::Result<_>>()?;
        let mut links = std::collections::HashMap::new();
        for i in 0..n {
            for j in (0..n).filter(|j| *j != i) {
                links.insert((i, j), crate::proxy::Proxy::start(raft[j]).await?);
            }
        }
        drop(held);
        let env = |i: usize| {
            let addrs: Vec<String> = (0..n).filter(|j| *j != i).map(|j| format!("{}={}", j + 1, links[&(i, j)].addr)).collect();
            let mut env = vec![("JOBD_TEST_PEER_ADDRS".to_string(), addrs.join(","))];
            env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            env
        };
        let mut c = Cluster::start_inner(n, env, Some(raft)).await?;
        c.links = links;
        Ok(c)
    }

    /// Cuts (or heals) every link into and out of node `i`.
    pub fn isolate(&self, i: usize, cut: bool) {
        for ((a, b), p) in &self.links {
            if *a == i || *b == i {
                p.cut(cut);
            }
        }
    }

    /// Starts `n` nodes; `env(i)` is the extra environment of node `i`.
    pub async fn start_with_env(n: usize, env: impl Fn(usize) -> Vec<(String, String)>) -> Result<Cluster> {
        Cluster::start_inner(n, env, None).await
    }

    async fn start_inner(n: usize, env: impl Fn(usize) -> Vec<(String, String)>, raft: Option<Vec<SocketAddr>>) -> Result<Cluster> {
        let serial = serial().lock_owned().await;
        let root = tempfile::tempdir()?;
        // Every address is held until all are chosen, so no two collide.
        let mut held = vec![];
        let mut reserve = || -> Result<SocketAddr> {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            let a = l.local_addr()?;
            held.push(l);
            Ok(a)
        };
        let mut nodes = vec![];
        for i in 0..n {
            let dir = root.path().join(format!("n{}", i + 1));
            std::fs::create_dir_all(&dir)?;
            let fs_addr = reserve()?;
            let raft_addr = match &raft {
                Some(r) => r[i],
                None => reserve()?,
            };
            nodes.push(NodeProc { env: env(i), id: i as u64 + 1, fs_addr, raft_addr, dir, child: None });
        }
        drop(held);
        let peers = nodes.iter().map(|n| format!("{}={}", n.id, n.raft_addr)).collect::<Vec<_>>().join(",");
        let mut c = Cluster { nodes, peers, _root: root, _serial: serial, links: Default::default() };
        for i in 0..n {
            c.spawn(i)?;
        }
        c.wait_leader().await?;
        Ok(c)
    }

    fn spawn(&mut self, i: usize) -> Result<()> {
        let n = &mut self.nodes[i];
        let id = n.id.to_string();
        let args = ["--id", &id, "--peers", &self.peers, "--initial-cluster-state", "new"];
        let child = spawn_jobd(&n.dir, n.fs_addr, n.raft_addr, &args, &n.env, &n.dir.join("jobd.log"))?;
        n.child = Some(child);
        Ok(())
    }

    pub fn log_tails(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let text = std::fs::read_to_string(n.dir.join("jobd.log")).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out += &format!("--- node {} ---\n{}\n", n.id, lines[lines.len().saturating_sub(20)..].join("\n"));
        }
        out
    }

    pub async fn client(&self, i: usize) -> Result<Client> {
        Ok(Client::connect(self.nodes[i].fs_addr, Options::default()).await?)
    }

    /// A file of node `i`'s tree as text (empty if it cannot be read).
    pub async fn read(&self, i: usize, path: &str) -> String {
        match self.client(i).await {
            Ok(c) => String::from_utf8_lossy(&c.read(path).await.unwrap_or_default()).into_owned(),
            Err(_) => String::new(),
        }
    }

    /// `/ctl` of node `i` as key → value.
    pub async fn ctl(&self, i: usize) -> Result<std::collections::HashMap<String, String>> {
        let text = String::from_utf8(self.client(i).await?.read("ctl").await?)?;
        Ok(text.lines().filter_map(|l| l.split_once(' ')).map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// Waits until every running node names the same leader; returns its index.
    pub async fn wait_leader(&self) -> Result<usize> {
        self.wait_leader_among(&(0..self.nodes.len()).collect::<Vec<_>>()).await
    }

    /// Like `wait_leader`, asking only the nodes in `among`.
    pub async fn wait_leader_among(&self, among: &[usize]) -> Result<usize> {
        let start = tokio::time::Instant::now();
        loop {
            let mut seen = vec![];
            for (i, n) in self.nodes.iter().enumerate() {
                if n.child.is_some() && among.contains(&i) {
                    seen.push(self.ctl(i).await.ok().and_then(|c| c.get("leader").and_then(|l| l.parse::<u64>().ok())));
                }
            }
            if let Some(Some(l)) = seen.first() {
                let leader_alive = self.nodes.get(*l as usize - 1).is_some_and(|n| n.child.is_some()) && among.contains(&(*l as usize - 1));
                if leader_alive && seen.iter().all(|s| *s == Some(*l)) {
                    return Ok(*l as usize - 1);
                }
            }
            if start.elapsed() > READY_DEADLINE {
                bail!("no agreed leader after {READY_DEADLINE:?}\n{}", self.log_tails());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, by pid, and reap.
    pub async fn kill(&mut self, i: usize) -> Result<()> {
        let mut child = self.nodes[i].child.take().context("node is not running")?;
        child.start_kill()?;
        child.wait().await?;
        Ok(())
    }

    /// SIGTERM, by pid, and wait for the drain; fails unless jobd exits 0.
    pub async fn terminate(&mut self, i: usize) -> Result<()> {
        let mut child = self.nodes[i].child.take().context("node is not running")?;
        let pid = child.id().context("node has exited")?;
        tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await?;
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.context("no exit within 20 s of SIGTERM")??;
        if !status.success() {
            bail!("node {} exited {status} after SIGTERM", i + 1);
        }
        Ok(())
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`) to node `i`, by pid; returns
    /// once the process shows as stopped (or running again).
    pub async fn pause(&self, i: usize, stop: bool) -> Result<()> {
        let pid = self.nodes[i].child.as_ref().and_then(|c| c.id()).context("node is not running")?;
        let sig = if stop { "-STOP" } else { "-CONT" };
        let status = tokio::process::Command::new("kill").args([sig, &pid.to_string()]).status().await?;
        if !status.success() {
            bail!("kill {sig} {pid} failed");
        }
        // The signal is delivered asynchronously (every thread must stop or
        // resume): return once /proc shows it.
        let start = tokio::time::Instant::now();
        while self.is_paused(i) != stop {
            if start.elapsed() > Duration::from_secs(5) {
                bail!("node {} did not {} within 5 s of kill {sig}", i + 1, if stop { "stop" } else { "resume" });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Whether node `i`'s process is stopped (state T in /proc).
    pub fn is_paused(&self, i: usize) -> bool {
        let Some(pid) = self.nodes[i].child.as_ref().and_then(|c| c.id()) else { return false };
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") T "))
    }

    /// Starts node `i` again on its directory and ports.
    pub async fn restart(&mut self, i: usize) -> Result<()> {
        self.spawn(i)?;
        let start = tokio::time::Instant::now();
        while self.ctl(i).await.is_err() {
            if start.elapsed() > READY_DEADLINE {
                bail!("node {} did not come back\n{}", i + 1, self.log_tails());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}
