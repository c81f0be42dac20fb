//! The write path every change goes through: propose when this node is the
//! leader, forward to the leader otherwise, and answer once the command is
//! applied on this node (read-your-writes). Also the linearizable-read
//! barrier, which follows the same route. The tree (`fs`), the scheduler
//! and the executor (`sched`) and the node's own announcement all write
//! through a [`Writer`].

use std::time::Duration;

use tokio::time::Instant;

use crate::command::{Command, Response};
use crate::net::forward::{self, ForwardError, Unanswered};
use crate::net::raft_client::Network;
use crate::propose::{ProposeError, Proposer};
use crate::stages::{self, Stage};
use crate::types::{NodeId, Raft};

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

/// What a proposal that failed on this node (the leader) means for the
/// writer: retried (`NoQuorum`) only if nothing was proposed
/// (`ProposeError::may_commit`); stopped if this node's proposer is gone.
fn local_failure(e: ProposeError) -> WriteError {
    match e {
        e if e.may_commit() => WriteError::Timeout,
        ProposeError::Closed => WriteError::ShuttingDown,
        _ => WriteError::NoQuorum,
    }
}

/// How long to wait before asking again when no leader could take a write.
const RETRY_EVERY: Duration = Duration::from_millis(50);

/// A handle that writes through this node; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    id: NodeId,
    raft: Raft,
    proposer: Proposer,
    net: Network,
    timeout: Duration,
}

impl Writer {
    /// A writer for node `id`: its Raft, its leader-side proposer, its
    /// network (to reach the leader), and how long a write may take.
    pub fn new(id: NodeId, raft: Raft, proposer: Proposer, net: Network, timeout: Duration) -> Writer {
        Writer { id, raft, proposer, net, timeout }
    }

    /// How long a write may take before it is answered `Timeout`.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub async fn write(&self, cmd: Command) -> Result<Response, WriteError> {
        let deadline = Instant::now() + self.timeout;
        // Only NoQuorum is retried: the command was not proposed anywhere
        // (see ProposeError::may_commit for the one known exception).
        loop {
            match self.try_write(&cmd, deadline).await {
                Err(WriteError::NoQuorum) if Instant::now() + RETRY_EVERY < deadline => {
                    tokio::time::sleep(RETRY_EVERY).await;
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
            } else if let Some((leader, member)) = leader.and_then(|l| Some((l, metrics.membership_config.membership().get_node(&l)?.clone()))) {
                let left = deadline.saturating_duration_since(Instant::now());
                match forward::read_index(&self.net, leader, &member.raft_addr, left).await {
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
            if Instant::now() + RETRY_EVERY >= deadline {
                return Err(WriteError::NoQuorum);
            }
            tokio::time::sleep(RETRY_EVERY).await;
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
                Err(_) => Err(WriteError::Timeout),
                Ok(Ok((_, r))) => Ok(r),
                Ok(Err(e)) => Err(local_failure(e)),
            };
        }
        let Some(member) = metrics.membership_config.membership().get_node(&leader).cloned() else {
            return Err(WriteError::NoQuorum);
        };
        let start = Instant::now();
        let left = deadline.saturating_duration_since(start);
        let forwarded = forward::forward(&self.net, leader, &member.raft_addr, cmd, left).await;
        stages::since(Stage::ForwardCall, start.into_std());
        let (index, resp) = match forwarded {
            Ok(Ok(done)) => done,
            Ok(Err(ForwardError::NotLeader { .. })) => return Err(WriteError::NoQuorum),
            // Nothing was proposed on the leader (ProposeError::may_commit).
            Ok(Err(ForwardError::Failed(_))) => return Err(WriteError::NoQuorum),
            Ok(Err(ForwardError::Timeout)) => return Err(WriteError::Timeout),
            Err(Unanswered::NotSent) => return Err(WriteError::NoQuorum),
            Err(Unanswered::Unknown) => return Err(WriteError::Timeout),
        };
        // Committed: answer once it is applied here too (read-your-writes).
        let start = Instant::now();
        let left = deadline.saturating_duration_since(start);
        let applied = self.raft.wait(Some(left)).applied_index_at_least(Some(index), "forwarded write").await;
        stages::since(Stage::ForwardApplyWait, start.into_std());
        applied.map(|_| resp).map_err(|_| WriteError::Timeout)
    }
}

#[cfg(test)]
mod tests {
    use openraft::error::{ClientWriteError, Fatal, ForwardToLeader, RaftError};

    use super::*;

    #[test]
    fn the_leader_retries_only_what_it_did_not_propose() {
        let not_leader = ProposeError::Raft(RaftError::APIError(ClientWriteError::ForwardToLeader(ForwardToLeader::empty())));
        assert_eq!(local_failure(not_leader), WriteError::NoQuorum);
        assert_eq!(local_failure(ProposeError::Closed), WriteError::ShuttingDown);
        // Appended perhaps: "may still be applied", never sent again.
        assert_eq!(local_failure(ProposeError::Raft(RaftError::Fatal(Fatal::Stopped))), WriteError::Timeout);
        assert_eq!(local_failure(ProposeError::Timeout), WriteError::Timeout);
        assert_eq!(local_failure(ProposeError::Abandoned), WriteError::Timeout);
    }
}
