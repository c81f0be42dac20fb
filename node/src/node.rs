//! One jobd node, started and stopped: its RocksDB, its openraft instance,
//! its gRPC service, its scheduler and executor, and the file tree it
//! serves. The pieces live in their own modules (`store`, `net`, `write`,
//! `sched`, `fs`); this one wires them together, and only the command line
//! (`cli`) imports it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::SnapshotPolicy;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::clock::PeerClocks;
use crate::command::{Command, Response};
use crate::fs::JobFs;
use crate::net::forward::ForwardService;
use crate::net::raft_client::Network;
use crate::net::raft_service::RaftService;
use crate::net::serve::GrpcServer;
use crate::propose::Proposer;
use crate::store::{self, log_store::LogStore, state_machine::StateMachine};
use crate::types::{Member, NodeId, Raft};
use crate::write::{WriteError, Writer};

/// How a node with an empty data directory starts (like etcd's
/// `--initial-cluster-state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InitialState {
    /// Form a new cluster of the given peers (start all of them with the same list).
    New,
    /// Join an existing cluster as a learner, once a member adds this node.
    Existing,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub id: NodeId,
    pub dbdir: PathBuf,
    /// This node's Raft address as peers reach it.
    pub raft_addr: String,
    /// This node's 9P address, announced to the cluster.
    pub fs_addr: String,
    /// All voters of a new cluster, this node included; empty for a single node.
    pub peers: Vec<(NodeId, String)>,
    pub initial_state: Option<InitialState>,
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    pub install_snapshot_timeout_ms: u64,
    /// Take a snapshot (and purge the log behind it) every this many entries.
    pub snapshot_every: u64,
    /// ... or once this many bytes were appended to the log since its last purge.
    pub snapshot_log_bytes: u64,
    /// How long a write may take before it fails.
    pub write_timeout: Duration,
    /// A node whose clock is further than this from the quorum's does not fire.
    pub max_clock_skew_ms: i64,
    /// A shared secret every Raft and forwarding RPC must carry.
    pub cluster_token: Option<String>,
    /// Mutual TLS on every peer link, when set.
    pub tls: Option<crate::net::tls::Tls>,
    /// Run job processes as this user (jobd must be root).
    pub run_as: Option<String>,
    /// Runs this node carries out at once.
    pub max_concurrent_runs: usize,
    /// Signs webhook requests (`notify`); the same on every node.
    pub notify_secret: Option<String>,
    /// `--labels`, sorted by key: announced with the node's address.
    pub labels: Vec<(String, String)>,
}

/// The defaults of [`Config`], suited to a loaded 2-core machine, written
/// once: `Config::new` and the command line's flags (`cli.rs`) both read
/// them.
pub mod defaults {
    pub const HEARTBEAT_MS: u64 = 100;
    pub const ELECTION_MIN_MS: u64 = 300;
    pub const ELECTION_MAX_MS: u64 = 600;
    pub const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 5000;
    pub const SNAPSHOT_EVERY: u64 = 10_000;
    pub const SNAPSHOT_LOG_BYTES: u64 = 64 << 20;
    pub const WRITE_TIMEOUT_MS: u64 = 5000;
    pub const MAX_CLOCK_SKEW_MS: i64 = 500;
    pub const MAX_CONCURRENT_RUNS: usize = crate::sched::executor::MAX_CONCURRENT_RUNS;
}

impl Config {
    /// A node with the [`defaults`].
    pub fn new(id: NodeId, dbdir: PathBuf, raft_addr: String, fs_addr: String) -> Config {
        Config {
            id,
            dbdir,
            raft_addr,
            fs_addr,
            peers: vec![],
            initial_state: None,
            heartbeat_ms: defaults::HEARTBEAT_MS,
            election_min_ms: defaults::ELECTION_MIN_MS,
            election_max_ms: defaults::ELECTION_MAX_MS,
            install_snapshot_timeout_ms: defaults::INSTALL_SNAPSHOT_TIMEOUT_MS,
            snapshot_every: defaults::SNAPSHOT_EVERY,
            snapshot_log_bytes: defaults::SNAPSHOT_LOG_BYTES,
            write_timeout: Duration::from_millis(defaults::WRITE_TIMEOUT_MS),
            max_clock_skew_ms: defaults::MAX_CLOCK_SKEW_MS,
            cluster_token: None,
            tls: None,
            run_as: None,
            max_concurrent_runs: defaults::MAX_CONCURRENT_RUNS,
            notify_secret: None,
            labels: vec![],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "{0} is empty and --peers is set: pass --initial-cluster-state new to form a new cluster \
         or existing to join one; a wiped node must not vote again under its old id"
    )]
    FreshNeedsInitialState(String),
    #[error("cannot create --dbdir {dir}: {source}")]
    DataDir { dir: String, source: std::io::Error },
    #[error("opening the database in {dir}: {source}")]
    Db { dir: String, source: rocksdb::Error },
    #[error("{0}")]
    RunAs(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("bad raft configuration: {0}")]
    Config(String),
    #[error("starting raft: {0}")]
    Raft(String),
    #[error("starting the process-creating thread: {source}")]
    Thread { source: std::io::Error },
}

pub struct Node {
    pub id: NodeId,
    /// Chosen at start: tells this process's fences from a restarted one's.
    pub incarnation: u64,
    pub executor: crate::sched::executor::Executor,
    /// `Some(fence)` while this node is the confirmed leader.
    pub leadership: watch::Receiver<Option<crate::command::Fence>>,
    pub raft: Raft,
    proposer: Proposer,
    pub sm: StateMachine,
    pub clocks: Arc<PeerClocks>,
    pub db: Arc<rocksdb::DB>,
    /// The `--dbdir` the database lives in.
    pub dbdir: std::path::PathBuf,
    net: Network,
    write_timeout: Duration,
    /// Tells the scheduler and the runs that the node is stopping.
    stopping: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Opens the database, starts Raft and its gRPC service on `listener`,
    /// forms or joins the cluster as the config says, and announces this
    /// node's 9P address in the background.
    pub async fn start(cfg: Config, listener: TcpListener) -> Result<Node, StartError> {
        // First, while this process is small: the reaper is a fork, and
        // keeps a copy of the memory it was forked with (`sched/reaper.rs`).
        let reaper = crate::sched::reaper::Reaper::start().map_err(|source| StartError::Thread { source })?;
        let (db, fresh) = open_db(&cfg)?;
        let raft_config = raft_config(&cfg)?;
        let clocks = Arc::new(PeerClocks::default());
        let mut net = Network::new(cfg.id, clocks.clone());
        let token: Option<Arc<str>> = cfg.cluster_token.as_deref().map(Arc::from);
        net.token = token.clone();
        net.tls = cfg.tls.as_ref().map(|t| t.client.clone());
        let grpc = GrpcServer::new(cfg.tls.as_ref(), token.clone()).map_err(|e| StartError::Tls(e.to_string()))?;
        let sm = StateMachine::new(db.clone());
        let log = LogStore::new(db.clone());
        let appended = log.appended();
        let raft = Raft::new(cfg.id, Arc::new(raft_config), net.clone(), log, sm.clone())
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;

        let (stop, stopped) = watch::channel(false);
        let mut tasks = vec![store::log_bytes::watch(raft.clone(), appended, cfg.snapshot_log_bytes, stopped.clone())];
        // A restarted node may have acknowledged a leader's round just before.
        let votes_from = if fresh { Instant::now() } else { Instant::now() + Duration::from_millis(cfg.election_max_ms) };
        let standing = Arc::new(crate::net::stand::StandAtOnce::new(
            raft.clone(),
            cfg.id,
            Duration::from_millis(cfg.election_min_ms),
            Duration::from_millis(cfg.election_max_ms),
        ));
        tasks.push(standing.clone().watch(Duration::from_millis(cfg.heartbeat_ms), stopped.clone()));
        let raft_svc = RaftService { raft: raft.clone(), me: cfg.id, clocks: clocks.clone(), votes_from, standing };
        let proposer = Proposer::start(raft.clone(), cfg.write_timeout);
        let fwd_svc = ForwardService { raft: raft.clone(), proposer: proposer.clone(), commit_timeout: cfg.write_timeout };
        tasks.push(grpc.spawn(listener, raft_svc, fwd_svc, stopped.clone()));

        if fresh {
            form_or_wait(&raft, &cfg).await;
        }

        let incarnation = crate::clock::now_ms() as u64;
        // Confirmed once a heartbeat: each confirmation renews the lease,
        // which lasts a little less than the shortest election timeout.
        let recheck = Duration::from_millis(cfg.heartbeat_ms);
        let lease = Arc::new(crate::leadership::Lease::new(Duration::from_millis(cfg.election_min_ms)));
        let leadership = crate::leadership::watch_leadership(raft.clone(), cfg.id, incarnation, recheck, lease.clone());
        let writer = Writer::new(cfg.id, raft.clone(), proposer.clone(), net.clone(), cfg.write_timeout);
        let (stopping, stopping_rx) = watch::channel(false);
        let executor = executor(&cfg, sm.clone(), writer, clocks.clone(), stopping_rx, lease, raft.clone(), reaper)?;
        let scheduler = crate::sched::Scheduler {
            executor: executor.clone(),
            leadership: leadership.clone(),
            clocks: clocks.clone(),
            max_clock_skew_ms: cfg.max_clock_skew_ms,
            incarnation,
            answer_bound: cfg.write_timeout,
        };
        tasks.push(tokio::spawn(scheduler.run()));
        let deliverer = crate::notify::Deliverer {
            sm: sm.clone(),
            proposer: proposer.clone(),
            leadership: leadership.clone(),
            secret: cfg.notify_secret.as_ref().map(|s| Arc::from(s.as_bytes())),
            metrics: executor.metrics.clone(),
        };
        tasks.push(tokio::spawn(deliverer.run()));
        let node = Node { id: cfg.id, incarnation, executor, leadership, stopping, raft, proposer, sm, clocks, db, dbdir: cfg.dbdir.clone(), net, write_timeout: cfg.write_timeout, stop, tasks };
        node.announce(cfg.fs_addr.clone(), cfg.labels.clone(), incarnation, stopped);
        Ok(node)
    }

    /// Writes this node's 9P address into the replicated state, then its
    /// labels if it has any or had some (so a cluster that never uses
    /// labels never holds the command), each retried until it is
    /// committed or the node stops.
    fn announce(&self, fs_addr: String, labels: Vec<(String, String)>, incarnation: u64, mut stopped: watch::Receiver<bool>) {
        let writer = self.writer();
        let id = self.id;
        // Read here, not in the task: the task must hold nothing of the
        // database, which a restart in the same process opens again.
        let had = crate::state::load_node(&self.sm, id).ok().flatten().is_some_and(|n| !n.labels.is_empty());
        tokio::spawn(async move {
            let mut writes = vec![Command::AnnounceNode { id, fs_addr, incarnation }];
            if had || !labels.is_empty() {
                writes.push(Command::NodeLabels { id, labels });
            }
            for cmd in writes {
                loop {
                    match writer.write(cmd.clone()).await {
                        Ok(_) => break,
                        Err(WriteError::ShuttingDown) => return,
                        Err(_) => {}
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = stopped.wait_for(|s| *s) => return,
                    }
                }
            }
        });
    }

    /// A handle that can write without holding the node.
    pub fn writer(&self) -> Writer {
        Writer::new(self.id, self.raft.clone(), self.proposer.clone(), self.net.clone(), self.write_timeout)
    }

    pub async fn write(&self, cmd: Command) -> Result<Response, WriteError> {
        self.writer().write(cmd).await
    }

    pub fn applied_index(&self) -> u64 {
        self.raft.metrics().borrow().last_applied.map_or(0, |l| l.index)
    }

    pub fn current_leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// The file tree this node serves over 9P (read-write, default limits;
    /// the caller sets `read_only`, `max_write` and `linearizable`).
    pub fn tree(&self) -> JobFs {
        JobFs {
            read_only: false,
            max_write: crate::fs::MAX_WRITE,
            linearizable: false,
            id: self.id,
            incarnation: self.incarnation,
            executor: self.executor.clone(),
            raft: self.raft.clone(),
            sm: self.sm.clone(),
            db: self.db.clone(),
            dbdir: self.dbdir.clone(),
            clocks: self.clocks.clone(),
            writer: self.writer(),
        }
    }

    /// Stops scheduling, lets running jobs end (TERM, then KILL after a
    /// grace) and records them while Raft still runs, then stops Raft and
    /// the gRPC service; the database closes when dropped.
    pub async fn shutdown(self) {
        let _ = self.stopping.send(true);
        let grace = crate::sched::executor::KILL_GRACE;
        self.executor.drain(grace + Duration::from_secs(2)).await;
        let _ = self.stop.send(true);
        if let Err(e) = self.raft.shutdown().await {
            warn!("raft shutdown: {e}");
        }
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Opens (or creates) the database in `--dbdir`, and says whether it holds
/// no Raft state yet; a fresh member of a multi-node cluster must be told
/// whether it forms the cluster or joins it.
fn open_db(cfg: &Config) -> Result<(Arc<rocksdb::DB>, bool), StartError> {
    let dir = || cfg.dbdir.display().to_string();
    std::fs::create_dir_all(&cfg.dbdir).map_err(|source| StartError::DataDir { dir: dir(), source })?;
    let db = store::open(&cfg.dbdir).map_err(|source| StartError::Db { dir: dir(), source })?;
    let fresh = store::is_fresh(&db).map_err(|source| StartError::Db { dir: dir(), source })?;
    if fresh && !cfg.peers.is_empty() && cfg.initial_state.is_none() {
        return Err(StartError::FreshNeedsInitialState(dir()));
    }
    Ok((db, fresh))
}

/// openraft's configuration from the node's.
fn raft_config(cfg: &Config) -> Result<openraft::Config, StartError> {
    openraft::Config {
        cluster_name: "jobd".into(),
        heartbeat_interval: cfg.heartbeat_ms,
        election_timeout_min: cfg.election_min_ms,
        election_timeout_max: cfg.election_max_ms,
        install_snapshot_timeout: cfg.install_snapshot_timeout_ms,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_every),
        max_in_snapshot_log_to_keep: 0,
        ..Default::default()
    }
    .validate()
    .map_err(|e| StartError::Config(e.to_string()))
}

/// With an empty data directory: form the new cluster the config names
/// (a single node forms its own), or wait to be added as a learner.
async fn form_or_wait(raft: &Raft, cfg: &Config) {
    let members: BTreeMap<NodeId, Member> = if cfg.peers.is_empty() {
        BTreeMap::from([(cfg.id, Member { raft_addr: cfg.raft_addr.clone() })])
    } else {
        cfg.peers.iter().map(|(id, addr)| (*id, Member { raft_addr: addr.clone() })).collect()
    };
    if cfg.peers.is_empty() || cfg.initial_state == Some(InitialState::New) {
        info!(node = cfg.id, members = ?members.keys().collect::<Vec<_>>(), "forming a new cluster");
        if let Err(e) = raft.initialize(members).await {
            // Another member may have initialized first; that is fine.
            info!("initialize: {e}");
        }
    } else {
        info!(node = cfg.id, "empty data directory: waiting to be added as a learner");
    }
}

/// The executor: the jobs' working directory under `--dbdir` (given to
/// `--run-as`'s user), the process-creating and gate threads, and the
/// reaper the creating thread hands each run to.
fn executor(
    cfg: &Config,
    sm: StateMachine,
    writer: Writer,
    clocks: Arc<PeerClocks>,
    stopping: watch::Receiver<bool>,
    lease: Arc<crate::leadership::Lease>,
    raft: Raft,
    reaper: crate::sched::reaper::Reaper,
) -> Result<crate::sched::executor::Executor, StartError> {
    let workdir = cfg.dbdir.join("work");
    std::fs::create_dir_all(&workdir).map_err(|source| StartError::DataDir { dir: workdir.display().to_string(), source })?;
    let run_as = cfg.run_as.as_deref().map(crate::sched::run_as::RunAs::lookup).transpose().map_err(|e| StartError::RunAs(e.to_string()))?;
    if let Some(user) = &run_as {
        user.own(&workdir).map_err(|e| StartError::RunAs(e.to_string()))?;
    }
    Ok(crate::sched::executor::Executor {
        sm,
        raft,
        writer,
        node: cfg.id,
        workdir,
        stopping,
        active: Arc::default(),
        run_as: run_as.map(Arc::new),
        creator: Arc::new(crate::sched::spawn::Creator::start(reaper).map_err(|source| StartError::Thread { source })?),
        gates: Arc::new(crate::sched::gate::Gatekeeper::start().map_err(|source| StartError::Thread { source })?),
        clocks,
        max_clock_skew_ms: cfg.max_clock_skew_ms,
        slots: crate::sched::slots::Slots::new(cfg.max_concurrent_runs),
        lease,
        metrics: crate::metrics::Metrics::new(),
    })
}
