//! One jobd node: its RocksDB, its openraft instance, its gRPC service, and
//! the write path every change goes through (propose here when leader,
//! forward to the leader otherwise, and answer once applied here).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, SnapshotPolicy};
use proto::raft::forward_server::ForwardServer;
use proto::raft::raft_server::RaftServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::clock::PeerClocks;
use crate::command::{Command, Response};
use crate::net::forward::{forward, ForwardError, ForwardService};
use crate::net::raft_client::Network;
use crate::net::raft_service::RaftService;
use crate::net::MAX_MESSAGE_BYTES;
use crate::propose::{ProposeError, Proposer};
use crate::store::{self, log_store::LogStore, state_machine::StateMachine};
use crate::types::{Member, NodeId, Raft};

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
}

impl Config {
    /// Defaults suited to a loaded 2-core machine.
    pub fn new(id: NodeId, dbdir: PathBuf, raft_addr: String, fs_addr: String) -> Config {
        Config {
            id,
            dbdir,
            raft_addr,
            fs_addr,
            peers: vec![],
            initial_state: None,
            heartbeat_ms: 100,
            election_min_ms: 300,
            election_max_ms: 600,
            install_snapshot_timeout_ms: 5000,
            snapshot_every: 10_000,
            snapshot_log_bytes: 64 << 20,
            write_timeout: Duration::from_secs(5),
            max_clock_skew_ms: 500,
            cluster_token: None,
            tls: None,
            run_as: None,
            max_concurrent_runs: crate::sched::executor::MAX_CONCURRENT_RUNS,
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

/// Why a write failed; each maps to one errno class at the 9P edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// Nothing was proposed (no leader, or it cannot be reached). EAGAIN.
    #[error("no leader or no quorum; nothing was done, try again")]
    NoQuorum,
    /// Proposed, but not known to be committed in time. ETIMEDOUT.
    #[error("timed out; the change may still be applied")]
    Timeout,
    #[error("the node is shutting down")]
    ShuttingDown,
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
        std::fs::create_dir_all(&cfg.dbdir)
            .map_err(|source| StartError::DataDir { dir: cfg.dbdir.display().to_string(), source })?;
        let db = store::open(&cfg.dbdir).map_err(|source| StartError::Db { dir: cfg.dbdir.display().to_string(), source })?;
        let fresh = store::is_fresh(&db).map_err(|source| StartError::Db { dir: cfg.dbdir.display().to_string(), source })?;
        if fresh && !cfg.peers.is_empty() && cfg.initial_state.is_none() {
            return Err(StartError::FreshNeedsInitialState(cfg.dbdir.display().to_string()));
        }
        let raft_config = openraft::Config {
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
        .map_err(|e| StartError::Config(e.to_string()))?;
        let clocks = Arc::new(PeerClocks::default());
        let mut net = Network::new(cfg.id, clocks.clone());
        let token: Option<Arc<str>> = cfg.cluster_token.as_deref().map(Arc::from);
        net.token = token.clone();
        net.tls = cfg.tls.as_ref().map(|t| t.client.clone());
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = &cfg.tls {
            builder = builder.tls_config(tls.server.clone()).map_err(|e| StartError::Tls(e.to_string()))?;
        }
        let sm = StateMachine::new(db.clone());
        let log = LogStore::new(db.clone());
        let appended = log.appended();
        let raft = Raft::new(cfg.id, Arc::new(raft_config), net.clone(), log, sm.clone())
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;

        let (stop, stopped) = watch::channel(false);
        let mut tasks = vec![store::log_bytes::watch(raft.clone(), appended, cfg.snapshot_log_bytes, stopped.clone())];
        let raft_svc = RaftService { raft: raft.clone(), me: cfg.id, clocks: clocks.clone() };
        let proposer = Proposer::start(raft.clone(), cfg.write_timeout);
        let fwd_svc = ForwardService { raft: raft.clone(), proposer: proposer.clone(), commit_timeout: cfg.write_timeout };
        let mut server_stop = stopped.clone();
        tasks.push(tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let res = builder
                .add_service(tonic::service::interceptor::InterceptedService::new(
                    RaftServer::new(raft_svc).max_decoding_message_size(MAX_MESSAGE_BYTES),
                    crate::net::check_token(token.clone()),
                ))
                .add_service(tonic::service::interceptor::InterceptedService::new(
                    ForwardServer::new(fwd_svc).max_decoding_message_size(MAX_MESSAGE_BYTES),
                    crate::net::check_token(token),
                ))
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = server_stop.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = res {
                warn!("raft gRPC service ended: {e}");
            }
        }));

        if fresh {
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

        let incarnation = crate::clock::now_ms() as u64;
        let recheck = Duration::from_millis(cfg.heartbeat_ms * 2);
        let leadership = crate::leadership::watch_leadership(raft.clone(), cfg.id, incarnation, recheck);
        let writer = Writer { id: cfg.id, raft: raft.clone(), proposer: proposer.clone(), net: net.clone(), timeout: cfg.write_timeout };
        let workdir = cfg.dbdir.join("work");
        std::fs::create_dir_all(&workdir).map_err(|source| StartError::DataDir { dir: workdir.display().to_string(), source })?;
        let run_as = cfg.run_as.as_deref().map(crate::sched::run_as::RunAs::lookup).transpose().map_err(|e| StartError::RunAs(e.to_string()))?;
        if let Some(user) = &run_as {
            user.own(&workdir).map_err(|e| StartError::RunAs(e.to_string()))?;
        }
        let (stopping, stopping_rx) = watch::channel(false);
        let executor = crate::sched::executor::Executor {
            sm: sm.clone(),
            writer,
            node: cfg.id,
            workdir,
            stopping: stopping_rx,
            active: Arc::default(),
            run_as: run_as.map(Arc::new),
            creator: Arc::new(crate::sched::spawn::Creator::start().map_err(|source| StartError::Thread { source })?),
            gates: Arc::new(crate::sched::gate::Gatekeeper::start().map_err(|source| StartError::Thread { source })?),
            clocks: clocks.clone(),
            max_clock_skew_ms: cfg.max_clock_skew_ms,
            max_runs: cfg.max_concurrent_runs,
            metrics: crate::metrics::Metrics::new(),
        };
        let scheduler = crate::sched::Scheduler {
            executor: executor.clone(),
            leadership: leadership.clone(),
            clocks: clocks.clone(),
            max_clock_skew_ms: cfg.max_clock_skew_ms,
            incarnation,
        };
        tasks.push(tokio::spawn(scheduler.run()));
        let node = Node { id: cfg.id, incarnation, executor, leadership, stopping, raft, proposer, sm, clocks, db, dbdir: cfg.dbdir.clone(), net, write_timeout: cfg.write_timeout, stop, tasks };
        node.announce(cfg.fs_addr.clone(), incarnation, stopped);
        Ok(node)
    }

    /// Writes this node's 9P address into the replicated state, retrying
    /// until it is committed or the node stops.
    fn announce(&self, fs_addr: String, incarnation: u64, mut stopped: watch::Receiver<bool>) {
        let writer = self.writer();
        let id = self.id;
        tokio::spawn(async move {
            loop {
                match writer.write(Command::AnnounceNode { id, fs_addr: fs_addr.clone(), incarnation }).await {
                    Ok(_) => return,
                    Err(WriteError::ShuttingDown) => return,
                    Err(_) => {}
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stopped.wait_for(|s| *s) => return,
                }
            }
        });
    }

    /// A handle that can write without holding the node.
    pub fn writer(&self) -> Writer {
        Writer { id: self.id, raft: self.raft.clone(), proposer: self.proposer.clone(), net: self.net.clone(), timeout: self.write_timeout }
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

    /// Adds `id` as a learner (it then receives the log; it does not vote).
    pub async fn add_learner(&self, id: NodeId, raft_addr: String) -> Result<(), String> {
        self.raft.add_learner(id, Member { raft_addr }, true).await.map(|_| ()).map_err(|e| e.to_string())
    }

    /// Makes a learner a voter.
    pub async fn promote(&self, id: NodeId) -> Result<(), String> {
        let change = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
        self.raft.change_membership(change, false).await.map(|_| ()).map_err(|e| e.to_string())
    }

    /// Removes `id` from the voters and learners.
    pub async fn remove(&self, id: NodeId) -> Result<(), String> {
        let voters = ChangeMembers::RemoveVoters(BTreeSet::from([id]));
        self.raft.change_membership(voters, false).await.map_err(|e| e.to_string())?;
        let learners = ChangeMembers::RemoveNodes(BTreeSet::from([id]));
        self.raft.change_membership(learners, false).await.map(|_| ()).map_err(|e| e.to_string())
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

/// The write path: propose when leader, forward otherwise; either way the
/// answer comes once the command is applied on this node.
#[derive(Clone)]
pub struct Writer {
    id: NodeId,
    raft: Raft,
    proposer: Proposer,
    net: Network,
    timeout: Duration,
}

impl Writer {
    pub async fn write(&self, cmd: Command) -> Result<Response, WriteError> {
        let deadline = Instant::now() + self.timeout;
        // Only NoQuorum is retried: the command was not proposed anywhere.
        loop {
            match self.try_write(&cmd, deadline).await {
                Err(WriteError::NoQuorum) if Instant::now() + Duration::from_millis(50) < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    }

    /// Waits until this node has applied everything committed before now,
    /// as confirmed by the leader with a quorum: a read after this is
    /// linearizable. Fails like a write that proposed nothing.
    pub async fn linearize(&self) -> Result<(), WriteError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let metrics = self.raft.metrics().borrow().clone();
            let leader = metrics.current_leader;
            let index = if leader == Some(self.id) {
                match tokio::time::timeout_at(deadline, self.raft.ensure_linearizable()).await {
                    Ok(Ok(id)) => Some(id.map_or(0, |l| l.index)),
                    Ok(Err(_)) => None,
                    Err(_) => return Err(WriteError::Timeout),
                }
            } else if let Some(member) = leader.and_then(|l| metrics.membership_config.membership().get_node(&l).cloned()) {
                let channel = self.net.channel_to(leader.unwrap_or_default(), &member.raft_addr).map_err(|_| WriteError::NoQuorum)?;
                let left = deadline.saturating_duration_since(Instant::now());
                match crate::net::forward::read_index(channel, left, self.net.token.as_deref()).await {
                    Ok(Ok(i)) => Some(i),
                    _ => None,
                }
            } else {
                None
            };
            if let Some(index) = index {
                let left = deadline.saturating_duration_since(Instant::now());
                let applied = self.raft.wait(Some(left)).applied_index_at_least(Some(index), "linearizable read").await;
                return applied.map(|_| ()).map_err(|_| WriteError::Timeout);
            }
            if Instant::now() + Duration::from_millis(50) >= deadline {
                return Err(WriteError::NoQuorum);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn try_write(&self, cmd: &Command, deadline: Instant) -> Result<Response, WriteError> {
        let metrics = self.raft.metrics().borrow().clone();
        if metrics.running_state.is_err() {
            return Err(WriteError::ShuttingDown);
        }
        let Some(leader) = metrics.current_leader else { return Err(WriteError::NoQuorum) };
        if leader == self.id {
            return match tokio::time::timeout_at(deadline, self.proposer.propose(cmd.clone())).await {
                Err(_) | Ok(Err(ProposeError::Timeout)) => Err(WriteError::Timeout),
                Ok(Ok((_, r))) => Ok(r),
                Ok(Err(ProposeError::Raft(RaftError::APIError(ClientWriteError::ForwardToLeader(_))))) => Err(WriteError::NoQuorum),
                Ok(Err(ProposeError::Raft(RaftError::APIError(ClientWriteError::ChangeMembershipError(_))))) => {
                    Err(WriteError::NoQuorum)
                }
                Ok(Err(ProposeError::Raft(RaftError::Fatal(_)) | ProposeError::Closed)) => Err(WriteError::ShuttingDown),
            };
        }
        let Some(member) = metrics.membership_config.membership().get_node(&leader).cloned() else {
            return Err(WriteError::NoQuorum);
        };
        let channel = self.net.channel_to(leader, &member.raft_addr).map_err(|_| WriteError::NoQuorum)?;
        let left = deadline.saturating_duration_since(Instant::now());
        let (index, resp) = match forward(channel, cmd, left, self.net.token.as_deref()).await {
            Ok(Ok(done)) => done,
            Ok(Err(ForwardError::NotLeader { .. })) => return Err(WriteError::NoQuorum),
            Ok(Err(ForwardError::Failed(_))) => return Err(WriteError::NoQuorum),
            Ok(Err(ForwardError::Timeout)) => return Err(WriteError::Timeout),
            // The request may have reached the leader: the outcome is unknown,
            // unless the connection was never made.
            Err(s) if s.code() == tonic::Code::Unavailable => return Err(WriteError::NoQuorum),
            Err(_) => return Err(WriteError::Timeout),
        };
        // Committed: answer once it is applied here too (read-your-writes).
        let left = deadline.saturating_duration_since(Instant::now());
        let applied = self.raft.wait(Some(left)).applied_index_at_least(Some(index), "forwarded write").await;
        applied.map(|_| resp).map_err(|_| WriteError::Timeout)
    }
}
