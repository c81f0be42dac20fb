//! The one place that decides "this node is the confirmed leader under
//! fence (term, node, process incarnation)". openraft's `state == Leader`
//! is not enough (a restarted ex-leader can briefly report it, and a
//! partitioned leader keeps reporting it), so leadership is confirmed with
//! `ensure_linearizable` — a round trip to a quorum — and re-confirmed
//! every `recheck` while it lasts. The scheduler fires only under a fence.
//! A manual run, which any node may take, carries a fence made here too.
//!
//! Each confirmation also renews the node's [`Lease`]: a gate thread
//! asks it, at the moment a run would begin, whether this node may still
//! begin runs fired in a given term (README, "Firing").

use std::sync::Mutex;
use std::time::Duration;

use crate::clock::since_boot;

use openraft::ServerState;
use tokio::sync::watch;
use tracing::info;

use crate::command::Fence;
use crate::types::{NodeId, Raft};

/// What leadership depends on in openraft's metrics.
fn role(m: &openraft::RaftMetrics<NodeId, crate::types::Member>) -> (ServerState, Option<NodeId>, u64, bool) {
    (m.state, m.current_leader, m.current_term, m.running_state.is_ok())
}

/// Margin for the rate error between this node's clock and a follower's:
/// the bound is shortened by this fraction. (NTP-disciplined
/// clocks differ by under 0.05 %; unsteered ones by well under 1 %.)
const RATE_MARGIN: f64 = 0.10;
/// Margin for a stall between a gate thread's reading of the clock and
/// its write that opens the gate (the thread is real-time, so this is
/// preemption by the kernel, not load).
const STALL_MARGIN: Duration = Duration::from_millis(50);

/// Whether this node may still begin runs fired in a term.
///
/// When a quorum acknowledges a heartbeat round this node sent at time `s`
/// in term `t`, each acknowledging follower refuses to
/// vote for anyone else until `election-max` after it received it (openraft's
/// leader lease on followers), so no other leader can exist in a later term
/// before `s + election-max` by their clocks. The lease here is shorter:
/// `s + election-min × (1 − RATE_MARGIN) − STALL_MARGIN`. Times are
/// `clock::since_boot`, which runs on while the process is stopped
/// (SIGSTOP) or the machine suspended, so a node that wakes after a pause
/// finds its lease over before anything else has run.
pub struct Lease {
    bound: Duration,
    held: Mutex<Option<Held>>,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    term: u64,
    /// On `clock::since_boot`.
    until: Duration,
    /// The leadership of `term` is over here (a new term, a lost quorum).
    over: bool,
}

/// What the lease says for a term at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Holds,
    /// Still leader of that term as far as this node knows, but no quorum
    /// acknowledged a heartbeat recently enough: wait for the next one.
    Lapsed { since: Duration },
    /// That term's leadership is over here, or was never held.
    Lost,
}

impl Lease {
    pub fn new(election_min: Duration) -> Lease {
        let bound = election_min.mul_f64(1.0 - RATE_MARGIN).saturating_sub(STALL_MARGIN);
        Lease { bound, held: Mutex::new(None) }
    }

    /// A quorum acknowledged a heartbeat round of `term` sent at `sent`
    /// (`clock::since_boot`).
    pub fn renew(&self, term: u64, sent: Duration) {
        let mut held = crate::lock::lock(&self.held);
        // Saturating: `since_boot` answers Duration::MAX if it cannot read
        // the clock, and a lease from then must not wrap into the past.
        let until = sent.saturating_add(self.bound);
        *held = Some(match *held {
            // A term once over here stays over; an older one is history.
            Some(h) if h.term > term || (h.term == term && h.over) => return,
            Some(h) if h.term == term => Held { until: until.max(h.until), ..h },
            _ => Held { term, until, over: false },
        });
    }

    /// This node's leadership (of whatever term) is over.
    pub fn end(&self) {
        if let Some(h) = crate::lock::lock(&self.held).as_mut() {
            h.over = true;
        }
    }

    /// The lease of `term` at `now` (`clock::since_boot`).
    pub fn standing(&self, term: u64, now: Duration) -> Standing {
        match *crate::lock::lock(&self.held) {
            Some(h) if h.term == term && !h.over => match now.checked_sub(h.until) {
                None => Standing::Holds,
                Some(since) => Standing::Lapsed { since },
            },
            _ => Standing::Lost,
        }
    }
}

/// One heartbeat round to a quorum, answering the term it was confirmed
/// in and when it was sent; `applied` also waits until this node has
/// applied everything committed before it (a fence is published only
/// then, so the scheduler reads a current state).
async fn confirm(raft: &Raft, term: u64, timeout: Duration, applied: bool) -> Option<Duration> {
    let sent = since_boot();
    let (read, _) = tokio::time::timeout(timeout, raft.get_read_log_id()).await.ok()?.ok()?;
    if raft.metrics().borrow().current_term != term {
        return None;
    }
    if applied {
        raft.wait(Some(timeout)).applied_index_at_least(read.map(|l| l.index), "leadership").await.ok()?;
    }
    Some(sent)
}

/// Watches openraft and publishes `Some(fence)` while leadership is
/// confirmed, `None` otherwise, renewing `lease` at each confirmation.
/// Ends when `raft` shuts down.
pub fn watch_leadership(
    raft: Raft,
    me: NodeId,
    incarnation: u64,
    recheck: Duration,
    lease: std::sync::Arc<Lease>,
) -> watch::Receiver<Option<Fence>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let mut metrics = raft.metrics();
        // When openraft first said this node leads the current term: the
        // log line of a confirmation says how long confirming took.
        let mut elected: Option<(u64, std::time::Instant)> = None;
        loop {
            let m = metrics.borrow_and_update().clone();
            if m.running_state.is_err() {
                lease.end();
                tx.send_replace(None);
                return;
            }
            let candidate = m.state == ServerState::Leader && m.current_leader == Some(me);
            if candidate && elected.is_none_or(|(t, _)| t != m.current_term) {
                elected = Some((m.current_term, std::time::Instant::now()));
            }
            let fence = if candidate {
                let published = tx.borrow().is_some_and(|f: Fence| f.term == m.current_term);
                match confirm(&raft, m.current_term, recheck * 4, !published).await {
                    Some(sent) => {
                        lease.renew(m.current_term, sent);
                        Some(Fence { term: m.current_term, node: me, incarnation })
                    }
                    None => None,
                }
            } else {
                None
            };
            // A confirmation that timed out (a busy node) leaves the lease
            // to lapse on its own; only a leadership that is over ends it.
            if !candidate {
                lease.end();
            }
            let before = *tx.borrow();
            if before != fence {
                let since_elected_ms = elected.filter(|(t, _)| fence.is_some() && *t == m.current_term).map(|(_, at)| at.elapsed().as_millis() as u64);
                info!(node = me, term = m.current_term, leader = ?m.current_leader, confirmed = fence.is_some(), ?since_elected_ms, "leadership changed");
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
                            lease.end();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_holds_for_its_bound_after_the_round_was_sent_and_only_in_its_term() {
        let lease = Lease::new(Duration::from_millis(300));
        let t0 = since_boot();
        assert_eq!(lease.standing(4, t0), Standing::Lost, "never held");
        lease.renew(4, t0);
        // 300 ms less 10 % less 50 ms: 220 ms.
        assert_eq!(lease.standing(4, t0 + Duration::from_millis(219)), Standing::Holds);
        assert_eq!(lease.standing(4, t0 + Duration::from_millis(230)), Standing::Lapsed { since: Duration::from_millis(10) });
        assert_eq!(lease.standing(3, t0), Standing::Lost, "another term");
        // An older round does not shorten it.
        lease.renew(4, t0 + Duration::from_millis(100));
        lease.renew(4, t0);
        assert_eq!(lease.standing(4, t0 + Duration::from_millis(300)), Standing::Holds);
        lease.end();
        assert_eq!(lease.standing(4, t0), Standing::Lost, "over");
        lease.renew(4, t0 + Duration::from_millis(200));
        assert_eq!(lease.standing(4, t0), Standing::Lost, "an ended term is not renewed");
        // A new term starts afresh; the old one stays lost.
        lease.renew(5, t0);
        assert_eq!((lease.standing(5, t0), lease.standing(4, t0)), (Standing::Holds, Standing::Lost));
    }
}
