//! A cluster of real `jobd` processes formed from the command line, as an
//! operator would: `--peers` and `--initial-cluster-state new`, each node in
//! its own directory on free ports (`jobd::reserve_port`). Nodes can be killed (SIGKILL) and
//! restarted on the same directory, wiped and rejoined under a new id, and
//! have their wall clock shifted while running; only processes started
//! here are ended, by pid (a child is killed when its handle drops, also on
//! panic).
//!
//! Node ids: slot `i` (an index into `nodes`, with its own directory, ports
//! and proxies) starts as id `i + 1`; each rejoin under a new id adds `n`,
//! so slot `i` only ever holds ids `i + 1 + k·n`. The proxies' routes are
//! set up for those ids in advance, as nodes cannot learn new routes.

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
    /// `new` for the founding members; `existing` once rejoined under a new id.
    initial_state: &'static str,
}

/// How many ids a slot can hold over a run (rejoins under new ids).
const IDS_PER_SLOT: u64 = 64;

/// The file whose offset (ms) the node's clock seam re-reads.
fn clock_file(dir: &std::path::Path) -> PathBuf {
    dir.join("clock-offset-ms")
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
        let extra: Vec<(String, String)> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Cluster::start_proxied_with(n, |_| extra.clone()).await
    }

    /// `start_proxied`; `extra(i)` is the extra environment of node `i`.
    pub async fn start_proxied_with(n: usize, extra: impl Fn(usize) -> Vec<(String, String)>) -> Result<Cluster> {
        // Raft addresses first, so the proxies know where to forward; held
        // until the proxies are bound, so the OS cannot hand one to a proxy.
        let held: Vec<std::net::TcpListener> =
            (0..n).map(|_| crate::jobd::reserve_port()).collect::<Result<_>>()?;
        let raft: Vec<SocketAddr> = held.iter().map(|l| l.local_addr()).collect::<std::io::Result<_>>()?;
        let mut links = std::collections::HashMap::new();
        for i in 0..n {
            for j in (0..n).filter(|j| *j != i) {
                links.insert((i, j), crate::proxy::Proxy::start(raft[j]).await?);
            }
        }
        drop(held);
        let env = |i: usize| {
            let addrs: Vec<String> = (0..n)
                .filter(|j| *j != i)
                .flat_map(|j| (0..IDS_PER_SLOT).map(move |k| (j, j as u64 + 1 + k * n as u64)))
                .map(|(j, id)| format!("{id}={}", links[&(i, j)].addr))
                .collect();
            let mut env = vec![("JOBD_TEST_PEER_ADDRS".to_string(), addrs.join(","))];
            env.extend(extra(i));
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
        // `JOBD_TEST_KEEP_CLUSTER=1` keeps the nodes' directories and logs
        // after the run, for reading a slow failover's log afterwards.
        let keep = std::env::var_os("JOBD_TEST_KEEP_CLUSTER").is_some();
        let root = tempfile::Builder::new().prefix("jobd-cluster-").disable_cleanup(keep).tempdir()?;
        if keep {
            eprintln!("cluster directory kept: {}", root.path().display());
        }
        // Every address is held until all are chosen, so no two collide.
        let mut held = vec![];
        let mut reserve = || -> Result<SocketAddr> {
            let l = crate::jobd::reserve_port()?;
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
            let mut env = env(i);
            env.push(("JOBD_TEST_CLOCK_OFFSET_FILE".into(), clock_file(&dir).display().to_string()));
            nodes.push(NodeProc { env, id: i as u64 + 1, fs_addr, raft_addr, dir, child: None, initial_state: "new" });
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
        // A rejoining node knows only itself; it waits to be added.
        let own = format!("{id}={}", n.raft_addr);
        let peers = if n.initial_state == "new" { &self.peers } else { &own };
        let args = ["--id", &id, "--peers", peers, "--initial-cluster-state", n.initial_state];
        let child = spawn_jobd(&n.dir, n.fs_addr, n.raft_addr, &args, &n.env, &n.dir.join("jobd.log"))?;
        n.child = Some(child);
        Ok(())
    }

    pub fn log_tails(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            // Lossy: a tail must show even if a line is not UTF-8.
            let text = String::from_utf8_lossy(&std::fs::read(n.dir.join("jobd.log")).unwrap_or_default()).into_owned();
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

    /// A number from node `i`'s `/ctl` (`None` if unreadable or absent).
    pub async fn ctl_num(&self, i: usize, key: &str) -> Option<i64> {
        self.ctl(i).await.ok()?.get(key)?.parse().ok()
    }

    /// The voters named in node `i`'s `/ctl`.
    async fn voters(&self, i: usize) -> Result<Vec<u64>> {
        let ctl = self.ctl(i).await?;
        Ok(ctl.get("members").map(|m| m.split(',').filter_map(|id| id.trim().parse().ok()).collect()).unwrap_or_default())
    }

    /// The slot of the node with id `id`.
    pub fn index_of(&self, id: u64) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
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
                let at = self.index_of(*l);
                let leader_alive = at.is_some_and(|i| self.nodes[i].child.is_some() && among.contains(&i));
                if let (true, Some(i)) = (leader_alive && seen.iter().all(|s| *s == Some(*l)), at) {
                    return Ok(i);
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

    /// Shifts node `i`'s wall clock by `ms` (0 puts it back), while it runs;
    /// returns once the node's `/ctl` shows it sees its skew (or, for 0,
    /// no longer does).
    pub async fn skew(&self, i: usize, ms: i64) -> Result<()> {
        std::fs::write(clock_file(&self.nodes[i].dir), ms.to_string())?;
        let start = tokio::time::Instant::now();
        loop {
            let seen = self.ctl_num(i, "clock-skew-ms").await;
            if seen.is_some_and(|s| if ms == 0 { s.abs() < 1000 } else { (s - ms).abs() < 5000 }) {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("node {} shows clock-skew-ms {seen:?} 30 s after its clock was shifted by {ms} ms", i + 1);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Writes a membership verb to the leader's `/ctl` (the leader that the
    /// nodes in `among` agree on), retrying until it is acknowledged.
    async fn member_ctl(&self, verb: &str, among: &[usize]) -> Result<()> {
        let start = tokio::time::Instant::now();
        loop {
            let leader = self.wait_leader_among(among).await?;
            let err = match self.client(leader).await {
                Ok(c) => match c.write("ctl", verb.as_bytes()).await {
                    Ok(_) => return Ok(()),
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            if start.elapsed() > Duration::from_secs(30) {
                bail!("`{verb}` not acknowledged within 30 s: {err}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Membership change, as an operator replaces a broken machine: removes
    /// node `i` (a follower) from the cluster, ends its process, wipes its
    /// data, starts it empty under a new id on the same addresses, adds it
    /// as a learner, waits until it has caught up with the leader's commit,
    /// and promotes it to voter. Returns the new id.
    pub async fn replace(&mut self, i: usize) -> Result<u64> {
        let n = self.nodes.len() as u64;
        let (old, new) = (self.nodes[i].id, self.nodes[i].id + n);
        if new > i as u64 + 1 + (IDS_PER_SLOT - 1) * n {
            bail!("slot {i} has used all its ids");
        }
        let others: Vec<usize> = (0..self.nodes.len()).filter(|j| *j != i).collect();
        self.member_ctl(&format!("remove {old}"), &others).await?;
        let leader = self.wait_leader_among(&others).await?;
        let members = self.voters(leader).await?;
        if members.contains(&old) {
            bail!("node {old} is still a member after `remove`: {members:?}");
        }
        if self.nodes[i].child.is_some() {
            self.kill(i).await?;
        }
        std::fs::remove_dir_all(self.nodes[i].dir.join("db"))?;
        self.nodes[i].id = new;
        self.nodes[i].initial_state = "existing";
        self.spawn(i)?;
        let addr = self.nodes[i].raft_addr;
        // Until it is added the new node names no leader: ask the others.
        self.member_ctl(&format!("add {new} {addr}"), &others).await?;
        let start = tokio::time::Instant::now();
        loop {
            let leader = self.wait_leader_among(&others).await?;
            let commit = self.ctl_num(leader, "commit").await;
            let applied = self.ctl_num(i, "applied").await;
            if let (Some(c), Some(a)) = (commit, applied) {
                if a >= c {
                    break;
                }
            }
            if start.elapsed() > Duration::from_secs(60) {
                bail!("node {new} (learner) did not catch up within 60 s\n{}", self.log_tails());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.member_ctl(&format!("promote {new}"), &all).await?;
        let leader = self.wait_leader().await?;
        let members = self.voters(leader).await?;
        if !members.contains(&new) {
            bail!("node {new} is not a voter after `promote`: {members:?}");
        }
        Ok(new)
    }
}
