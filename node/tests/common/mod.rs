//! A cluster of jobd nodes in one process, on port-0 listeners, each also
//! serving its 9P tree.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use node::command::Command;
use node::node::{Config, InitialState, Node};
use node::state::{job_key, KvRead};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The outside programs these tests run (`deploy/dev-tools.txt`).
#[path = "../../../cluster-tests/src/tools.rs"]
pub mod tools;

pub const DEADLINE: Duration = Duration::from_secs(20);

pub struct Cluster {
    _dirs: Vec<TempDir>,
    pub configs: Vec<Config>,
    pub nodes: Vec<Option<Node>>,
    /// The 9P address of each node, and the switch that stops its server.
    pub fs_addrs: Vec<SocketAddr>,
    fs_stops: Vec<Option<oneshot::Sender<()>>>,
}

pub fn create(name: &str) -> Command {
    Command::CreateJob { name: name.into(), schedule: "* * * * *".into(), cmd: "true".into(), at_ms: 0 }
}

/// How the workspace's tests wait (`cluster-tests/src/poll.rs`).
#[path = "../../../cluster-tests/src/poll.rs"]
pub mod poll;

/// Polls `f` until it gives a value or the deadline passes.
pub async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    poll::poll(what, DEADLINE, Duration::from_millis(20), async || f()).await
}

impl Cluster {
    pub async fn start(n: usize, snapshot_every: u64) -> Cluster {
        Cluster::start_with(n, snapshot_every, |_| {}).await
    }

    /// `start`, with `tweak` applied to every node's configuration.
    pub async fn start_with(n: usize, snapshot_every: u64, tweak: impl Fn(&mut Config)) -> Cluster {
        let mut listeners = vec![];
        for _ in 0..n {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let peers: Vec<(u64, String)> =
            listeners.iter().enumerate().map(|(i, l)| (i as u64 + 1, l.local_addr().unwrap().to_string())).collect();
        let dirs: Vec<TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
        let configs: Vec<Config> = peers
            .iter()
            .zip(&dirs)
            .map(|((id, addr), dir)| {
                let mut c = Config::new(*id, PathBuf::from(dir.path()), addr.clone(), format!("127.0.0.1:{}", 7000 + id));
                c.peers = peers.clone();
                c.initial_state = Some(InitialState::New);
                c.snapshot_every = snapshot_every;
                c.write_timeout = Duration::from_secs(3);
                tweak(&mut c);
                c
            })
            .collect();
        let mut c = Cluster { _dirs: dirs, configs, nodes: vec![], fs_addrs: vec![], fs_stops: vec![] };
        for (cfg, l) in c.configs.clone().into_iter().zip(listeners) {
            let node = Node::start(cfg, l).await.expect("node starts");
            let (addr, stop) = serve_9p(&node).await;
            c.nodes.push(Some(node));
            c.fs_addrs.push(addr);
            c.fs_stops.push(Some(stop));
        }
        c
    }

    pub fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().expect("node is running")
    }

    pub async fn leader(&self) -> usize {
        eventually("a leader", || {
            let running: Vec<&Node> = self.nodes.iter().flatten().collect();
            let l = running.first()?.current_leader()?;
            let idx = (l - 1) as usize;
            (self.nodes[idx].is_some() && running.iter().all(|n| n.current_leader() == Some(l))).then_some(idx)
        })
        .await
    }

    pub async fn stop(&mut self, i: usize) {
        if let Some(s) = self.fs_stops[i].take() {
            let _ = s.send(());
        }
        self.nodes[i].take().expect("running").shutdown().await;
    }

    pub async fn restart(&mut self, i: usize) {
        let c = self.configs[i].clone();
        let listener = TcpListener::bind(&c.raft_addr).await.expect("rebind the node's address");
        let node = Node::start(c, listener).await.expect("restart");
        let (addr, stop) = serve_9p(&node).await;
        self.fs_addrs[i] = addr;
        self.fs_stops[i] = Some(stop);
        self.nodes[i] = Some(node);
    }

    pub fn has_job(&self, i: usize, name: &str) -> bool {
        self.node(i).sm.get(&job_key(name)).unwrap().is_some()
    }
}



/// Serves `node`'s tree on a new port-0 listener until the sender fires.
pub async fn serve_9p(node: &Node) -> (SocketAddr, oneshot::Sender<()>) {
    serve_9p_with(node, false).await
}

pub async fn serve_9p_with(node: &Node, linearizable: bool) -> (SocketAddr, oneshot::Sender<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let mut fs = node.tree();
    fs.linearizable = linearizable;
    tokio::spawn(ninep::serve(l, Arc::new(fs), async {
        let _ = stopped.await;
    }));
    (addr, stop)
}
