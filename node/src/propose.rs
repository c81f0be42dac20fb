//! Group commit on the leader. openraft 0.9 turns each `client_write` into
//! its own log entry with its own fsync and its own replication message,
//! one after another in its core task; with many writers at once that is
//! one disk flush per write. Every write on the leader (its own and those
//! forwarded by followers) goes through here instead: while an entry is
//! on its way (`IN_FLIGHT`), new commands wait, and the next entry
//! carries all that waited (`Command::Batch`). A lone write is proposed at
//! once, as itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::command::{Command, Response};
use crate::stages::{self, Stage};
use crate::types::{Member, NodeId, Raft};

/// Entries proposed and not yet answered. One: on this 2-core machine a
/// write is CPU-bound, and bigger batches beat overlapping the disk with
/// the network (64 clients creating jobs: 1 in flight 9.0k/s, 2 8.3k/s,
/// 4 7.7k/s; `docs/BENCHMARKS.md` §1).
const IN_FLIGHT: usize = 1;
/// At most this many commands share an entry...
const MAX_COMMANDS: usize = 512;
/// ...and about this many bytes (output lines), so an entry stays a
/// small part of a replication message.
const MAX_BYTES: usize = 1 << 20;

pub type RaftWriteError = RaftError<NodeId, ClientWriteError<NodeId, Member>>;

/// Why a proposal got no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProposeError {
    #[error(transparent)]
    Raft(#[from] RaftWriteError),
    /// Not committed in time; it may still be.
    #[error("not committed in time; the write may still commit")]
    Timeout,
    /// The batching task is gone before the command reached it: nothing
    /// was proposed.
    #[error("the node is shutting down")]
    Closed,
    /// This node leads as far as openraft knows, but no quorum has
    /// acknowledged its leadership yet: nothing was proposed (see
    /// `commit`), ask again shortly.
    #[error("this node's leadership is not acknowledged yet; nothing was done")]
    NotAcknowledged,
    /// The batching task went away while the command was on its way (the
    /// node is stopping): it may have been appended, and may still commit.
    #[error("the node stopped while the write was on its way; it may still commit")]
    Abandoned,
}

impl ProposeError {
    /// Whether the command may be in the Raft log, and so may still be
    /// committed. The one reading of these errors: the write path sends
    /// again only a command that is not (`write.rs`, and the forward
    /// service for a follower's writes, `net/forward.rs`), and answers one
    /// that is "may still be applied" — sending it again could apply it
    /// twice (two manual runs, or a create answered "exists").
    pub fn may_commit(&self) -> bool {
        match self {
            // Perhaps appended (or still on its way to Raft), not known
            // to be committed in time.
            ProposeError::Timeout | ProposeError::Abandoned => true,
            // Raft stopped: what it had appended may be committed by the
            // next leader.
            ProposeError::Raft(RaftError::Fatal(_)) => true,
            // Not the leader (or a membership change in the way): nearly
            // always refused before anything was appended. Known gap:
            // openraft 0.9 also answers ForwardToLeader when a newer
            // leader's log truncates an entry this node had appended
            // (raft_core.rs, DeleteConflictLog); other nodes may hold it,
            // and with five or more voters a later leader could commit it.
            // The error does not tell the two apart, and reading every
            // not-leader answer as "may commit" would turn each failover's
            // retries into ETIMEDOUT; closing it needs commands the state
            // machine can recognise as resent (request ids).
            ProposeError::Raft(RaftError::APIError(_)) => false,
            ProposeError::Closed | ProposeError::NotAcknowledged => false,
        }
    }
}

/// A committed command: the log index of its entry and what applying it did.
pub type Proposed = Result<(u64, Response), ProposeError>;

struct Waiting {
    cmd: Command,
    done: oneshot::Sender<Proposed>,
    /// When `propose` was called, for the wait's timing.
    since: Instant,
}

/// The handle writers hold; cheap to clone.
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::UnboundedSender<Waiting>,
}

impl Proposer {
    /// Starts the batching task for `raft`; an entry not committed within
    /// `timeout` is answered `Timeout` so its slot frees.
    pub fn start(raft: Raft, timeout: Duration) -> Proposer {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(batch_loop(raft, rx, timeout));
        Proposer { tx }
    }

    /// Proposes `cmd` (this node should be the leader; if it is not, the
    /// answer says so) and waits until it is committed and applied here.
    pub async fn propose(&self, cmd: Command) -> Proposed {
        let (done, answer) = oneshot::channel();
        self.tx.send(Waiting { cmd, done, since: Instant::now() }).map_err(|_| ProposeError::Closed)?;
        answer.await.unwrap_or(Err(ProposeError::Abandoned))
    }
}

async fn batch_loop(raft: Raft, mut rx: mpsc::UnboundedReceiver<Waiting>, timeout: Duration) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut held: Option<Waiting> = None;
    loop {
        let first = match held.take() {
            Some(w) => w,
            None => match rx.recv().await {
                Some(w) => w,
                None => return,
            },
        };
        // Wait for a slot; meanwhile more commands queue up behind `first`.
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let mut bytes = first.cmd.approx_bytes();
        let mut batch = vec![first];
        while batch.len() < MAX_COMMANDS {
            let Ok(w) = rx.try_recv() else { break };
            bytes += w.cmd.approx_bytes();
            if bytes > MAX_BYTES {
                held = Some(w);
                break;
            }
            batch.push(w);
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            commit(raft, batch, timeout).await;
            drop(slot);
        });
    }
}

/// Proposes one entry for `batch` and answers each waiter.
async fn commit(raft: Raft, mut batch: Vec<Waiting>, timeout: Duration) {
    let mut metrics = raft.metrics();
    let (term, acknowledged) = {
        let m = metrics.borrow();
        (m.current_term, m.millis_since_quorum_ack.is_some())
    };
    // A leader no quorum has acknowledged is not asked: openraft restarts
    // a node that led as leader of its old term until it hears of a newer
    // one, and an entry appended then is overwritten without an answer,
    // which held this one slot until the timeout, so a real leader's first
    // writes waited seconds behind it after a failover
    // (docs/BENCHMARKS.md §11). A new leader is acknowledged within a
    // round trip of its election (its first entry's replication).
    if !acknowledged {
        for w in batch {
            let _ = w.done.send(Err(ProposeError::NotAcknowledged));
        }
        return;
    }
    let start = Instant::now();
    for w in &batch {
        stages::record(Stage::ProposeWait, start - w.since);
    }
    // The commands move into the entry (an output batch can be 64 KiB).
    let mut cmds: Vec<Command> = batch.iter_mut().map(|w| std::mem::replace(&mut w.cmd, Command::Batch(vec![]))).collect();
    let cmd = if cmds.len() == 1 { cmds.remove(0) } else { Command::Batch(cmds) };
    // Once the term moves on, this node no longer leads the term it
    // proposed in, and openraft may never answer the entry (one a newer
    // leader overwrites is dropped unanswered): "may still commit" then,
    // at once, so the one slot frees for the writes behind it.
    let deposed = async move {
        while metrics.borrow_and_update().current_term == term {
            if metrics.changed().await.is_err() {
                break;
            }
        }
    };
    let result = tokio::select! {
        answer = tokio::time::timeout(timeout, raft.client_write(cmd)) => match answer {
            Err(_) => Err(ProposeError::Timeout),
            Ok(Err(e)) => Err(ProposeError::Raft(e)),
            Ok(Ok(r)) => Ok((r.log_id.index, r.data)),
        },
        _ = deposed => Err(ProposeError::Timeout),
    };
    stages::since(Stage::Commit, start);
    match result {
        Ok((index, Response::Batch(answers))) if batch.len() > 1 && answers.len() == batch.len() => {
            for (w, a) in batch.into_iter().zip(answers) {
                let _ = w.done.send(Ok((index, a)));
            }
        }
        Ok((index, answer)) if batch.len() == 1 => {
            let _ = batch.remove(0).done.send(Ok((index, answer)));
        }
        Ok((_, other)) => {
            // The state machine answers a batch with one answer per command.
            tracing::error!("a batch of {} commands was answered {other:?}", batch.len());
            for w in batch {
                let _ = w.done.send(Err(ProposeError::Timeout));
            }
        }
        Err(e) => {
            for w in batch {
                let _ = w.done.send(Err(e.clone()));
            }
        }
    }
}
