//! Standing at once for an election a candidate with a shorter log cannot
//! win.
//!
//! When a leader dies, the follower whose timer runs out first stands. If
//! its log is behind the other follower's (the dead leader's last entries
//! reached only one of them), that follower refuses it, and openraft 0.9
//! (no pre-vote) then waits: the better follower stands only when its own
//! timer runs out, a leader lease plus an election timeout (0.9–1.2 s with
//! the defaults) after it last heard from the leader, and often in the same
//! term as the first candidate, which refuses it (two votes of one term),
//! so the election takes a second round. In the soak this was every
//! kill → first fire over 1.5 s (docs/BENCHMARKS.md §11).
//!
//! So a follower that refuses a vote because its own log is ahead, and
//! that has not heard from a leader for longer than `election-max`, stands
//! at once, in a term above the candidate's. `election-max` is openraft's
//! leader lease on a follower: past it, openraft itself would grant this
//! candidate's vote (were its log long enough), so standing then gives
//! nothing away that the lease rule (README, "Firing") counts on. The time
//! kept here is taken *after* openraft has handled the leader's message,
//! later than the time openraft keeps, so this node's lease reads as over
//! no earlier than openraft's does; and a leader's message cannot slip in
//! between the check and the stand: each is handled under a shared lock
//! that the stand takes exclusively, re-checking the time, and the
//! elections are queued to openraft before any later message (one
//! channel, in order), which then meets the higher vote and is refused,
//! not acknowledged.
//!
//! The same rule keeps openraft's own timer from standing late. A
//! candidate that met a longer log remembers it and adds twice
//! `election-max` to its election timeout, and forgets it only when its
//! timer next elects it: a node that lost one election that way, and did
//! not stand again since, carries the penalty into the next failover (in
//! the soak, both followers carried it once, and that election took 2.2 s
//! instead of about 1.1). With the stand above, the penalty is not needed:
//! a shorter log that stands first makes the longer one stand at once. So
//! a follower of an established leader (its vote committed) that has heard
//! nothing for a lease plus an election timeout drawn from
//! `[election-min, election-max]` (openraft's timer without the penalty)
//! stands itself, under the same lock and check as above.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::raft::{VoteRequest, VoteResponse};
use openraft::ServerState;
use tokio::sync::{watch, RwLock, RwLockReadGuard};
use tokio::task::JoinHandle;

use crate::types::{NodeId, Raft};

/// At most this many terms are stepped over to stand above a candidate
/// (each is one vote written to disk); a candidate further ahead has been
/// standing alone for a long time, and openraft's own timer is left to it.
const MAX_TERMS_AHEAD: u64 = 16;

pub struct StandAtOnce {
    raft: Raft,
    me: NodeId,
    /// openraft's leader lease on followers, which is `election-max`, the
    /// longest election timeout.
    lease: Duration,
    /// Stand at most once per this long (`election-min`); also the
    /// shortest election timeout.
    every: Duration,
    /// Held shared while a leader's message is handled, exclusively while
    /// standing (see the module's comment).
    handling: RwLock<()>,
    times: Mutex<Times>,
}

struct Times {
    /// When this node last finished handling a leader's append or
    /// snapshot (or started).
    heard: Instant,
    /// When it last stood here.
    stood: Option<Instant>,
}

impl StandAtOnce {
    pub fn new(raft: Raft, me: NodeId, election_min: Duration, election_max: Duration) -> StandAtOnce {
        StandAtOnce {
            raft,
            me,
            lease: election_max,
            every: election_min,
            handling: RwLock::new(()),
            times: Mutex::new(Times { heard: Instant::now(), stood: None }),
        }
    }

    /// To hold while a leader's AppendEntries or InstallSnapshot is
    /// handled; hand it to `heard_from_leader` once it has been.
    pub async fn handling(&self) -> RwLockReadGuard<'_, ()> {
        self.handling.read().await
    }

    /// A leader's message has just been handled (under `handling`).
    pub fn heard_from_leader(&self, _handled: RwLockReadGuard<'_, ()>) {
        self.times().heard = Instant::now();
    }

    fn times(&self) -> std::sync::MutexGuard<'_, Times> {
        self.times.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether no leader has been heard for longer than the lease.
    fn lease_over(&self) -> Option<Duration> {
        let silent = self.times().heard.elapsed();
        (silent > self.lease).then_some(silent)
    }

    /// Called with each vote this node answered; stands at once when the
    /// answer refused a candidate whose log is behind this node's and no
    /// leader has been heard for longer than the lease.
    pub fn answered(self: &Arc<Self>, req: &VoteRequest<NodeId>, resp: &VoteResponse<NodeId>) {
        if resp.vote_granted || req.last_log_id >= resp.last_log_id {
            return;
        }
        let state = self.raft.metrics().borrow().state;
        if !matches!(state, ServerState::Follower | ServerState::Candidate) {
            return;
        }
        let ours = resp.vote.leader_id().term;
        let theirs = req.vote.leader_id().term;
        // Each election goes one term above this node's current vote; a
        // node already above the candidate has nothing to gain.
        let elections = match (theirs + 1).checked_sub(ours) {
            Some(n @ 1..=MAX_TERMS_AHEAD) => n,
            _ => return,
        };
        if !self.may_stand() {
            return;
        }
        let candidate = req.vote.leader_id().voted_for();
        let me = self.clone();
        // Off the vote's answer: the lock may wait for a message being handled.
        tokio::spawn(async move {
            me.stand(elections, |silent| {
                tracing::info!(
                    candidate,
                    their_term = theirs,
                    our_term = ours,
                    silent_ms = silent.as_millis() as u64,
                    "standing at once: the candidate's log is behind ours and no leader was heard for longer than the lease"
                )
            })
            .await
        });
    }

    /// Whether the lease is over and this node has not stood lately; if
    /// so, notes that it stands now.
    fn may_stand(&self) -> bool {
        let mut t = self.times();
        if t.heard.elapsed() <= self.lease || t.stood.is_some_and(|s| s.elapsed() < self.every) {
            return false;
        }
        t.stood = Some(Instant::now());
        true
    }

    /// Stands `elections` times in a row (each one term up), alone against
    /// a leader's message, if the lease is still over once alone.
    async fn stand(&self, elections: u64, log: impl FnOnce(Duration)) {
        let _alone = self.handling.write().await;
        let Some(silent) = self.lease_over() else { return };
        log(silent);
        for _ in 0..elections {
            if let Err(e) = self.raft.trigger().elect().await {
                tracing::warn!(node = self.me, error = %e, "could not stand");
                return;
            }
        }
    }

    /// Stands when openraft's timer, without its longer-log penalty, would
    /// (see the module's comment); checks every `every_tick` until `stopped`.
    pub fn watch(self: Arc<Self>, every_tick: Duration, mut stopped: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every_tick);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // This silence's election timeout, drawn when it began.
            let mut timeout: Option<Duration> = None;
            let mut last_vote = None;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.wait_for(|s| *s) => return,
                }
                let (state, vote) = {
                    let m = self.raft.metrics();
                    let m = m.borrow();
                    (m.state, m.vote)
                };
                // A new vote starts the clock again, as it does openraft's
                // (a leader that stepped down for a newer one, say, has
                // heard no append for as long as it led).
                if last_vote != Some(vote) {
                    last_vote = Some(vote);
                    self.times().heard = Instant::now();
                }
                let committed = vote.is_committed();
                let silent = self.times().heard.elapsed();
                if state != ServerState::Follower || !committed || silent <= self.lease {
                    timeout = None;
                    continue;
                }
                let due = *timeout.get_or_insert_with(|| self.lease + jitter(self.every, self.lease));
                if silent > due && self.may_stand() {
                    timeout = None;
                    self.stand(1, |silent| {
                        tracing::info!(silent_ms = silent.as_millis() as u64, "standing: no leader heard for a lease and an election timeout")
                    })
                    .await;
                }
            }
        })
    }
}

/// A duration drawn from `[low, high]` (a process-seeded hash of the time:
/// election jitter, not cryptography).
fn jitter(low: Duration, high: Duration) -> Duration {
    use std::hash::BuildHasher;
    let draw = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    let span = high.saturating_sub(low).as_micros() as u64;
    low + Duration::from_micros(draw % (span + 1))
}
