//! Write forwarding: a follower passes a command to the leader, which
//! commits it and answers with the log index, so the follower can wait
//! until it has applied that index itself (read-your-writes).

use std::time::{Duration, Instant};

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use proto::raft::forward_client::ForwardClient;
use proto::raft::forward_server::Forward;
use proto::raft::{ForwardReply, ForwardRequest, ReadIndexReply, ReadIndexRequest};
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status};

use crate::command::{Command, Response as CmdResponse};
use crate::propose::ProposeError;
use crate::stages::{self, Stage};
use crate::net::raft_client::Network;
use crate::net::{decode, encode, MAX_MESSAGE_BYTES};
use crate::types::{NodeId, Raft};

/// Why the leader did not commit a forwarded command.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub enum ForwardError {
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    /// Nothing was proposed (`ProposeError::may_commit`): the follower
    /// sends the command again.
    #[error("the leader could not commit: {0}")]
    Failed(String),
    #[error("the leader timed out; the write may still commit")]
    Timeout,
}

pub type ForwardResult = Result<(u64, CmdResponse), ForwardError>;

pub struct ForwardService {
    pub raft: Raft,
    /// Forwarded writes join the leader's own in its batches.
    pub proposer: crate::propose::Proposer,
    pub commit_timeout: Duration,
}

#[tonic::async_trait]
impl Forward for ForwardService {
    async fn write(&self, req: Request<ForwardRequest>) -> Result<Response<ForwardReply>, Status> {
        let cmd: Command = decode(&req.into_inner().command)?;
        let start = Instant::now();
        let result: ForwardResult = match tokio::time::timeout(self.commit_timeout, self.proposer.propose(cmd)).await {
            Err(_) => Err(ForwardError::Timeout),
            Ok(proposed) => proposed.map_err(refusal),
        };
        let result = encode(&result).map_err(|e| Status::internal(e.to_string()))?;
        stages::since(Stage::ForwardServe, start);
        Ok(Response::new(ForwardReply { result }))
    }

    /// The leader confirms it still leads (a quorum round trip) and answers
    /// the index a linearizable read must wait for.
    async fn read_index(&self, _req: Request<ReadIndexRequest>) -> Result<Response<ReadIndexReply>, Status> {
        let result: Result<u64, ForwardError> = match tokio::time::timeout(self.commit_timeout, self.raft.ensure_linearizable()).await {
            Err(_) => Err(ForwardError::Timeout),
            Ok(Ok(id)) => Ok(id.map_or(0, |l| l.index)),
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                Err(ForwardError::NotLeader { leader: f.leader_id })
            }
            Ok(Err(e)) => Err(ForwardError::Failed(e.to_string())),
        };
        let result = encode(&result).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(ReadIndexReply { result }))
    }
}

/// What the follower is told of a proposal that failed on the leader:
/// `Failed` only when nothing was proposed (the follower then tries again),
/// `Timeout` when the command may still commit (`ProposeError::may_commit`).
fn refusal(e: ProposeError) -> ForwardError {
    match e {
        ProposeError::Raft(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => ForwardError::NotLeader { leader: f.leader_id },
        e if e.may_commit() => ForwardError::Timeout,
        e => ForwardError::Failed(e.to_string()),
    }
}

/// Why a call to the leader's forward service got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// No connection was made: the leader never saw the request.
    NotSent,
    /// The request may have reached the leader and no answer came back:
    /// the outcome is unknown.
    Unknown,
}

impl From<Status> for Unanswered {
    fn from(s: Status) -> Unanswered {
        if s.code() == tonic::Code::Unavailable {
            Unanswered::NotSent
        } else {
            Unanswered::Unknown
        }
    }
}

/// Asks the leader (`leader` at `addr`) for its read index.
pub async fn read_index(net: &Network, leader: NodeId, addr: &str, deadline: Duration) -> Result<Result<u64, ForwardError>, Unanswered> {
    let channel = net.channel_to(leader, addr).map_err(|_| Unanswered::NotSent)?;
    let mut client = ForwardClient::new(channel);
    let mut req = Request::new(ReadIndexRequest {});
    req.set_timeout(deadline);
    let reply = client.read_index(crate::net::with_token(req, net.token.as_deref())).await?.into_inner();
    Ok(decode(&reply.result)?)
}

/// Sends `cmd` to the leader's (`leader` at `addr`) forward service.
pub async fn forward(net: &Network, leader: NodeId, addr: &str, cmd: &Command, deadline: Duration) -> Result<ForwardResult, Unanswered> {
    let channel = net.channel_to(leader, addr).map_err(|_| Unanswered::NotSent)?;
    let mut client = ForwardClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
    // A command that does not encode never left this node.
    let command = encode(cmd).map_err(|_| Unanswered::NotSent)?;
    let mut req = Request::new(ForwardRequest { command });
    req.set_timeout(deadline);
    let reply = client.write(crate::net::with_token(req, net.token.as_deref())).await?.into_inner();
    Ok(decode(&reply.result)?)
}

#[cfg(test)]
mod tests {
    use openraft::error::{Fatal, ForwardToLeader};

    use super::*;

    #[test]
    fn a_follower_retries_only_what_the_leader_did_not_propose() {
        let not_leader = ProposeError::Raft(RaftError::APIError(ClientWriteError::ForwardToLeader(ForwardToLeader::empty())));
        assert!(matches!(refusal(not_leader), ForwardError::NotLeader { leader: None }));
        assert!(matches!(refusal(ProposeError::Closed), ForwardError::Failed(_)));
        // Raft stopped with the command perhaps appended: the next leader
        // may commit it, so the follower must not send it again.
        for stopped in [Fatal::Stopped, Fatal::Panicked] {
            assert!(matches!(refusal(ProposeError::Raft(RaftError::Fatal(stopped))), ForwardError::Timeout));
        }
        assert!(matches!(refusal(ProposeError::Timeout), ForwardError::Timeout));
        assert!(matches!(refusal(ProposeError::Abandoned), ForwardError::Timeout));
    }
}
