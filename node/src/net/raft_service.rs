//! The gRPC service that hands peers' Raft RPCs to our openraft instance
//! and records the clock each one carries.
//!
//! A node that restarted refuses votes until an election timeout
//! (`election-max`) after its start. The lease (README, "Firing") rests on
//! each follower that acknowledged a leader's heartbeat round refusing to
//! vote for another candidate until `election-max` after it; openraft keeps
//! that memory in the process only, so a follower restarted within that
//! time would vote at once and could help elect a new leader while the old
//! one still holds its lease. Refusing for `election-max` after the start
//! covers every acknowledgement sent before it. A node that starts a new
//! cluster has acknowledged nobody and does not wait.
//!
//! A refused vote may make this node stand at once (`stand.rs`).

use std::sync::Arc;
use std::time::Instant;

use openraft::raft::{AppendEntriesRequest, VoteRequest};
use proto::raft::raft_server::Raft as RaftRpc;
use proto::raft::{RaftReply, RaftRequest};
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::clock::{now_ms, PeerClocks};
use crate::net::stand::StandAtOnce;
use crate::net::{decode, encode};
use crate::stages::{self, Stage};
use crate::types::{NodeId, Raft, TypeConfig};

pub struct RaftService {
    pub raft: Raft,
    pub me: NodeId,
    pub clocks: Arc<PeerClocks>,
    /// Votes are refused until then (see the module's comment).
    pub votes_from: Instant,
    pub standing: Arc<StandAtOnce>,
}

impl RaftService {
    fn reply<T: serde::Serialize>(&self, result: &T) -> Result<Response<RaftReply>, Status> {
        let payload = encode(result).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(RaftReply { payload, sent_at_unix_ms: now_ms(), from_node: self.me }))
    }

    fn observe(&self, req: &RaftRequest) {
        self.clocks.observe_request(req.from_node, req.sent_at_unix_ms, now_ms());
    }
}

/// What is logged while serving a peer's RPC names that peer.
fn peer_span(req: &RaftRequest) -> tracing::Span {
    tracing::info_span!("raft_peer", peer = req.from_node)
}

#[tonic::async_trait]
impl RaftRpc for RaftService {
    async fn vote(&self, req: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let req = req.into_inner();
        self.observe(&req);
        let wait = self.votes_from.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            // The candidate counts this as a voter it could not reach.
            return Err(Status::unavailable(format!("node {} restarted: refusing votes for another {} ms", self.me, wait.as_millis())));
        }
        let vote: VoteRequest<NodeId> = decode(&req.payload)?;
        let res = self.raft.vote(vote.clone()).instrument(peer_span(&req)).await;
        if let Ok(answer) = &res {
            self.standing.answered(&vote, answer);
        }
        self.reply(&res)
    }

    async fn append_entries(&self, req: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let req = req.into_inner();
        self.observe(&req);
        let handling = self.standing.handling().await;
        let start = Instant::now();
        let rpc: AppendEntriesRequest<TypeConfig> = decode(&req.payload)?;
        // Heartbeats (no entries) are not part of a write.
        let carries = !rpc.entries.is_empty();
        let res = self.raft.append_entries(rpc).instrument(peer_span(&req)).await;
        if carries {
            stages::since(Stage::ReplicateServe, start);
        }
        self.standing.heard_from_leader(handling);
        self.reply(&res)
    }

    async fn install_snapshot(&self, req: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let req = req.into_inner();
        self.observe(&req);
        let handling = self.standing.handling().await;
        let res = self.raft.install_snapshot(decode(&req.payload)?).instrument(peer_span(&req)).await;
        self.standing.heard_from_leader(handling);
        self.reply(&res)
    }
}
