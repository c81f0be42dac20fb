//! The one place that decides "this node is the confirmed leader under
//! fence (term, node, process incarnation)". openraft's `state == Leader`
//! is not enough (a restarted ex-leader can briefly report it, and a
//! partitioned leader keeps reporting it), so leadership is confirmed with
//! `ensure_linearizable` — a round trip to a quorum — and re-confirmed
//! every `recheck` while it lasts. The scheduler fires only under a fence.
//! A manual run, which any node may take, carries a fence made here too.

use std::time::Duration;

use openraft::ServerState;
use tokio::sync::watch;
use tracing::info;

use crate::command::Fence;
use crate::types::{NodeId, Raft};

/// What leadership depends on in openraft's metrics.
fn role(m: &openraft::RaftMetrics<NodeId, crate::types::Member>) -> (ServerState, Option<NodeId>, u64, bool) {
    (m.state, m.current_leader, m.current_term, m.running_state.is_ok())
}

/// Watches openraft and publishes `Some(fence)` while leadership is
/// confirmed, `None` otherwise. Ends when `raft` shuts down.
pub fn watch_leadership(raft: Raft, me: NodeId, incarnation: u64, recheck: Duration) -> watch::Receiver<Option<Fence>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let mut metrics = raft.metrics();
        loop {
            let m = metrics.borrow_and_update().clone();
            if m.running_state.is_err() {
                tx.send_replace(None);
                return;
            }
            let candidate = m.state == ServerState::Leader && m.current_leader == Some(me);
            let fence = if candidate {
                match tokio::time::timeout(recheck * 4, raft.ensure_linearizable()).await {
                    Ok(Ok(_)) => Some(Fence { term: m.current_term, node: me, incarnation }),
                    _ => None,
                }
            } else {
                None
            };
            let before = *tx.borrow();
            if before != fence {
                info!(node = me, term = m.current_term, leader = ?m.current_leader, confirmed = fence.is_some(), "leadership changed");
                tx.send_replace(fence);
            }
            // Wake when the role, term or leader changes, and re-confirm
            // while leading. Not on every metrics change: confirming itself
            // moves the metrics (replication progress, quorum acks), and
            // waking on those made a tight loop of quorum round trips —
            // thousands a second, a core's worth, once a follower died.
            let wait = if candidate { recheck } else { Duration::from_secs(3600) };
            let seen = role(&m);
            let until = tokio::time::Instant::now() + wait;
            loop {
                tokio::select! {
                    changed = metrics.changed() => {
                        if changed.is_err() {
                            tx.send_replace(None);
                            return;
                        }
                        if role(&metrics.borrow()) != seen {
                            break;
                        }
                    }
                    _ = tokio::time::sleep_until(until) => break,
                    _ = tx.closed() => return,
                }
            }
        }
    });
    rx
}

/// The fence a manual run (`run` on a job's ctl) is proposed under: this
/// process, in the current term. Any node may take a manual run, leader
/// or not; the fence names the process that carries it out, so a later
/// leader's sweep can tell when that process is gone.
pub fn manual_run_fence(raft: &Raft, me: NodeId, incarnation: u64) -> Fence {
    Fence { term: raft.metrics().borrow().current_term, node: me, incarnation }
}
