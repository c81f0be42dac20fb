//! Real `jobd` processes: started from the built binary with their own
//! directories and free ports (`reserve_port`), polled for readiness with a deadline,
//! and ended by pid (also when a test panics: the child is killed on drop).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ninep::client::{Client, Options};
use tokio::process::{Child, Command};

pub const READY_DEADLINE: Duration = Duration::from_secs(30);

/// The `jobd` binary built beside this program: `target/<profile>/jobd`,
/// next to a binary or one up from a test in `deps/`.
pub fn binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("no directory")?;
    let candidates = [dir.join("jobd"), dir.parent().context("no target dir")?.join("jobd")];
    match candidates.iter().find(|b| b.exists()) {
        Some(b) => Ok(b.clone()),
        None => bail!("jobd is not built beside {exe:?}; build it with cargo build --release -p node"),
    }
}

/// Starts `jobd` with its database in `dir/db`, the given addresses and
/// extra arguments and environment, its output appended to `log`.
pub fn spawn_jobd(
    dir: &std::path::Path,
    fs_addr: SocketAddr,
    raft_addr: SocketAddr,
    extra: &[&str],
    env: &[(String, String)],
    log: &std::path::Path,
) -> Result<Child> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    Command::new(binary()?)
        .arg("--dbdir")
        .arg(dir.join("db"))
        .args(["--fsaddr", &fs_addr.to_string(), "--raftaddr", &raft_addr.to_string()])
        .args(extra)
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting jobd")
}

/// A free port on 127.0.0.1, held by the returned listener until it is
/// dropped. Chosen below the kernel's ephemeral range (where the OS would
/// pick for port 0), at a random point, and checked free by binding it:
/// a node binds its address again when it starts or restarts, and in the
/// ephemeral range an outgoing connection (a peer's, a client's) can take
/// that port as its source port meanwhile, so the node's bind fails
/// ("Address already in use"; seen once at a cluster's start).
pub fn reserve_port() -> Result<std::net::TcpListener> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let low = ephemeral_low().max(FIRST_PORT + 1000);
    let span = (low - FIRST_PORT) as u64;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
    let mut seed = crate::chaos::rng::Rng::new(nanos ^ ((std::process::id() as u64) << 32) ^ NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    for _ in 0..256 {
        let port = FIRST_PORT + seed.below(span) as u16;
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return Ok(l);
        }
    }
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?)
}

/// The lowest port this harness picks (below: well-known and registered
/// services' usual ports).
const FIRST_PORT: u16 = 10_000;

/// The first port of `net.ipv4.ip_local_port_range` (Linux's default 32768).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A free port on 127.0.0.1 (`reserve_port`), released for the caller to bind.
pub fn free_addr() -> Result<SocketAddr> {
    Ok(reserve_port()?.local_addr()?)
}

pub struct Jobd {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub fs_addr: SocketAddr,
    pub raft_addr: SocketAddr,
    pub log_path: PathBuf,
}

impl Jobd {
    /// A single-node cluster.
    pub async fn single() -> Result<Jobd> {
        Jobd::single_with(&[]).await
    }

    /// A single-node cluster with extra flags.
    pub async fn single_with(extra: &[&str]) -> Result<Jobd> {
        let dir = tempfile::tempdir()?;
        let (fs_addr, raft_addr) = (free_addr()?, free_addr()?);
        let log_path = dir.path().join("jobd.log");
        let child = spawn_jobd(dir.path(), fs_addr, raft_addr, extra, &[], &log_path)?;
        let j = Jobd { child, dir, fs_addr, raft_addr, log_path };
        j.wait_ready().await?;
        Ok(j)
    }

    /// Polls until a 9P attach works and `/ctl` names a leader.
    pub async fn wait_ready(&self) -> Result<()> {
        let start = tokio::time::Instant::now();
        loop {
            if let Ok(c) = Client::connect(self.fs_addr, Options::default()).await {
                if let Ok(ctl) = c.read("ctl").await {
                    if !String::from_utf8_lossy(&ctl).contains("leader none") {
                        return Ok(());
                    }
                }
            }
            if start.elapsed() > READY_DEADLINE {
                bail!("jobd on {} not ready after {READY_DEADLINE:?}; its log:\n{}", self.fs_addr, self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Ends the process with SIGTERM and waits for it.
    pub async fn stop(mut self) -> Result<std::process::ExitStatus> {
        if let Some(pid) = self.child.id() {
            // Our own child, by pid.
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        }
        Ok(tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await??)
    }
}
