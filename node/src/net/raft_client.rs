//! openraft's network side: one lazily connected gRPC channel per peer,
//! reused by every replication stream to it. Every RPC carries our wall
//! clock and its deadline is openraft's hard TTL. A failure of the
//! transport itself (a refused connection, or one reset or broken under an
//! RPC, as when a peer is killed) is `Unreachable`, so openraft backs off
//! (`UNREACHABLE_BACKOFF`) instead of retrying at once: it did that, about
//! 3,000 times a second per dead peer, each logged, which starved the
//! replication to the live peer, so a new leader's first commit after a
//! failover waited seconds (docs/BENCHMARKS.md §11).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use proto::raft::raft_client::RaftClient;
use proto::raft::{RaftReply, RaftRequest};
use tonic::transport::{Channel, Endpoint};
use tracing::Instrument;

use crate::clock::{now_ms, PeerClocks};
use crate::net::{encode, MAX_MESSAGE_BYTES};
use crate::stages::{self, Stage};
use crate::types::{Member, NodeId, TypeConfig};

/// Makes a [`Peer`] for each replication target; channels are shared.
#[derive(Clone)]
pub struct Network {
    pub me: NodeId,
    pub clocks: Arc<PeerClocks>,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// Test seam: where this node dials each peer, if not at its member
    /// address (the cluster tests route every link through a proxy they
    /// control). From `JOBD_TEST_PEER_ADDRS=ID=HOST:PORT,...`.
    overrides: Arc<HashMap<NodeId, String>>,
    /// Sent with every RPC when the cluster has a token.
    pub token: Option<Arc<str>>,
    /// Dial peers over mutual TLS when set.
    pub tls: Option<tonic::transport::ClientTlsConfig>,
}

fn overrides_from_env() -> HashMap<NodeId, String> {
    let Ok(v) = std::env::var("JOBD_TEST_PEER_ADDRS") else { return HashMap::new() };
    v.split(',')
        .filter_map(|p| p.split_once('='))
        .filter_map(|(id, addr)| Some((id.trim().parse().ok()?, addr.trim().to_string())))
        .collect()
}

impl Network {
    pub fn new(me: NodeId, clocks: Arc<PeerClocks>) -> Self {
        Network { me, clocks, channels: Arc::default(), overrides: Arc::new(overrides_from_env()), token: None, tls: None }
    }

    /// The channel to peer `id`, whose member address is `addr`.
    pub fn channel_to(&self, id: NodeId, addr: &str) -> Result<Channel, tonic::transport::Error> {
        match self.overrides.get(&id) {
            Some(over) => self.channel(over),
            None => self.channel(addr),
        }
    }

    /// The channel to `addr`, created (not yet connected) on first use.
    pub fn channel(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let mut channels = crate::lock::lock(&self.channels);
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut e = Endpoint::from_shared(format!("{scheme}://{addr}"))?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true);
        if let Some(tls) = &self.tls {
            e = e.tls_config(tls.clone())?;
        }
        let c = e.connect_lazy();
        channels.insert(addr.to_string(), c.clone());
        Ok(c)
    }
}

pub struct Peer {
    net: Network,
    target: NodeId,
    addr: String,
    /// Every RPC to this peer, and what openraft logs while awaiting it,
    /// carries the peer's id and address.
    span: tracing::Span,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> Peer {
        let addr = self.overrides.get(&target).cloned().unwrap_or_else(|| node.raft_addr.clone());
        let span = tracing::info_span!("raft_peer", peer = target, %addr);
        Peer { net: self.clone(), target, addr, span }
    }
}

type RpcErr<E> = RPCError<NodeId, Member, RaftError<NodeId, E>>;

/// How long openraft waits before it sends to an unreachable peer again:
/// two heartbeats, so a peer that comes back is caught up soon.
const UNREACHABLE_BACKOFF: Duration = Duration::from_millis(200);

/// Whether a failed RPC never reached a server that answered: the
/// transport failed (a refused, reset or broken connection), not the
/// peer's handler, which answers with a status of its own and no source.
fn is_unreachable(status: &tonic::Status) -> bool {
    let transport = std::error::Error::source(status).is_some_and(|e| e.is::<tonic::transport::Error>());
    let text = format!("{status:?}").to_ascii_lowercase();
    transport
        || (status.code() == tonic::Code::Unavailable
            && (text.contains("connection refused") || text.contains("tcp connect") || text.contains("transport error")))
}

impl Peer {
    async fn call<Req, Resp, E>(&self, kind: RPCTypes, req: &Req, option: &RPCOption) -> Result<Resp, RpcErr<E>>
    where
        Req: serde::Serialize,
        Resp: for<'de> serde::Deserialize<'de>,
        E: std::error::Error + for<'de> serde::Deserialize<'de>,
    {
        let result = self.call_inner(kind, req, option).instrument(self.span.clone()).await;
        if let Err(e) = &result {
            self.span.in_scope(|| tracing::debug!(rpc = ?kind, "failed: {e}"));
        }
        result
    }

    async fn call_inner<Req, Resp, E>(&self, kind: RPCTypes, req: &Req, option: &RPCOption) -> Result<Resp, RpcErr<E>>
    where
        Req: serde::Serialize,
        Resp: for<'de> serde::Deserialize<'de>,
        E: std::error::Error + for<'de> serde::Deserialize<'de>,
    {
        let channel = self.net.channel(&self.addr).map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let mut client = RaftClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let payload = encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let sent = now_ms();
        let mut request = tonic::Request::new(RaftRequest { payload, sent_at_unix_ms: sent, from_node: self.net.me });
        let ttl = option.hard_ttl();
        request.set_timeout(ttl);
        let request = crate::net::with_token(request, self.net.token.as_deref());
        let reply: Result<tonic::Response<RaftReply>, tonic::Status> = match kind {
            RPCTypes::Vote => client.vote(request).await,
            RPCTypes::AppendEntries => client.append_entries(request).await,
            RPCTypes::InstallSnapshot => client.install_snapshot(request).await,
        };
        let reply = match reply {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == tonic::Code::DeadlineExceeded || s.code() == tonic::Code::Cancelled => {
                return Err(RPCError::Timeout(Timeout { action: kind, id: self.net.me, target: self.target, timeout: ttl }))
            }
            Err(s) if is_unreachable(&s) => return Err(RPCError::Unreachable(Unreachable::new(&s))),
            Err(s) => return Err(RPCError::Network(NetworkError::new(&s))),
        };
        self.net.clocks.observe_reply(self.target, sent, reply.sent_at_unix_ms, now_ms());
        let result: Result<Resp, RaftError<NodeId, E>> =
            serde_json::from_slice(&reply.payload).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(UNREACHABLE_BACKOFF))
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr<openraft::error::Infallible>> {
        // Heartbeats (no entries) are not part of a write.
        let carries = !rpc.entries.is_empty();
        let start = Instant::now();
        let result = self.call(RPCTypes::AppendEntries, &rpc, &option).await;
        if carries {
            stages::since(Stage::ReplicateCall, start);
        }
        result
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        self.call(RPCTypes::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr<openraft::error::Infallible>> {
        self.call(RPCTypes::Vote, &rpc, &option).await
    }
}
