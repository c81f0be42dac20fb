//! The sweep: once a second every node looks at the accepted runs it is not
//! carrying out, and decides for each whether to leave it, begin it after
//! all (a leader: `TakeOver`, or `adopt` for one of its own fence), or end
//! it. The decision is `judge`, a pure function of the run's record and
//! what this node knows of its node, so its table (docs/DESIGN.md, "Runs
//! nobody will end") has unit tests; `Scheduler::sweep` gathers those
//! facts and carries the decision out.
//!
//! What it must never do: begin a run whose claim another fence may hold.
//! A take-over is a claim like any other (the first in the log wins), an
//! adoption claims under the run's own fence (so its node's other task, if
//! any, is the same process's, and `Executor::register` lets one task of a
//! process carry a run), and an end is written under the fence judged
//! gone (refused once the run is taken over; `lost` if it was claimed
//! since the read).

use std::time::Duration;

use tracing::warn;

use crate::clock::now_ms;
use crate::command::{Command, Fence, NotStarted, RunStatus, Trigger};
use crate::state::{self, run::Run};

/// A run whose node has not been heard from for this long is lost.
pub(super) const LEASE: Duration = Duration::from_secs(3);
/// A run of this leadership that no task here carries is adopted only once
/// it was proposed this long ago: its answer follows its apply within
/// milliseconds, so one not here by then is late (or lost), not on its way.
const ANSWER_LATE_MS: i64 = 1000;
/// A deposed node's unclaimed run is ended past its deadline only this much
/// later by the leader's clock (at least the most two clocks may differ
/// while either fires: `--max-clock-skew-ms`, 500 by default, twice).
const DEADLINE_MARGIN_MS: i64 = 1000;

/// A test seam: `JOBD_TEST_HOLD_CHAINS_MS` leaves a chained run (trigger
/// `after`) unclaimed until it was accepted this long ago, so a test can
/// kill the leader between a run's end and its follower's take-over
/// (`cluster-tests/tests/chains.rs`).
fn hold_chains_ms() -> i64 {
    static HOLD: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *HOLD.get_or_init(|| std::env::var("JOBD_TEST_HOLD_CHAINS_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Whether the test seam still holds `run` back from a take-over.
pub fn held_back(run: &Run, now: i64) -> bool {
    let hold = hold_chains_ms();
    hold > 0 && run.trigger == Trigger::After && now < run.proposed().saturating_add(hold)
}

/// What this node knows about a run it is not carrying out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seen {
    /// This process fired (or took) it: its fence is this process's.
    pub mine: bool,
    /// The answer accepting it can no longer reach this process (its
    /// write gave up: `--write-timeout-ms` plus `LEASE` after it was
    /// proposed). Only asked of `mine`.
    pub answer_gone: bool,
    /// Its answer is late: `ANSWER_LATE_MS` after it was proposed. Only
    /// asked of `mine`.
    pub answer_late: bool,
    /// Its node restarted, went silent past `LEASE`, or is an earlier
    /// process of this node. Only asked of runs not `mine`.
    pub node_gone: bool,
}

/// What the sweep does with a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Leave,
    /// Claim it under the leader's fence, then begin it.
    TakeOver,
    /// Begin it under its own fence, which is the leader's current one.
    Adopt,
    /// Record its end, under its own fence.
    End(RunStatus),
}

/// Whether `run` could be taken over or adopted at `now` (the state
/// machine decides; this only saves asking in vain).
pub fn may_take_over(run: &Run, now: i64) -> bool {
    run.status == RunStatus::Pending && run.claims && !run.claimed && !run.stopped && !run.cancel && now <= run.begin_by()
}

/// A run the fire protocol hands to a later leader when its node can no
/// longer begin it: fired (or retried) by a version that claims, still
/// pending and unclaimed. A manual run is not: a follower makes up its
/// fence in the leader's term, so no later term tells it is over.
fn for_a_later_leader(run: &Run) -> bool {
    run.claims && run.trigger != Trigger::Manual && run.status == RunStatus::Pending && !run.claimed
}

/// How a run nobody will begin ends, for reason `why`: unclaimed and
/// pending, by what the record says first (killed, stopped), else `why`;
/// claimed or running, `lost` (it may have begun).
fn end_for(run: &Run, why: NotStarted) -> RunStatus {
    if run.status != RunStatus::Pending || run.claimed {
        RunStatus::Lost
    } else if run.cancel {
        RunStatus::Killed
    } else if run.stopped {
        RunStatus::NotStarted(NotStarted::Stopped)
    } else {
        RunStatus::NotStarted(why)
    }
}

/// A run of an earlier term whose node can no longer begin it: taken over
/// if it may be; otherwise as `until_deadline`.
fn deposed(run: &Run, now: i64) -> Action {
    if may_take_over(run, now) {
        Action::TakeOver
    } else {
        until_deadline(run, now)
    }
}

/// A pending, unclaimed run this node cannot claim now: ended if killed,
/// stopped or past its deadline (by a margin, for a node whose clock is
/// behind this one's); else left for the next sweep, which may find a
/// leader of a later term that can.
fn until_deadline(run: &Run, now: i64) -> Action {
    if run.cancel || run.stopped {
        Action::End(end_for(run, NotStarted::FenceLost))
    } else if now <= run.begin_by() + DEADLINE_MARGIN_MS {
        Action::Leave
    } else {
        Action::End(RunStatus::NotStarted(NotStarted::Deadline))
    }
}

/// A run this leadership claimed (a take-over whose task gave up before
/// the entry committed) that no task here carries: no task of this
/// process began it (one that did holds its registration until the end
/// is recorded), so this process may begin it, under its claim.
fn claimed_by_this_leadership(run: &Run, now: i64) -> bool {
    run.status == RunStatus::Pending && run.claimed && !run.stopped && !run.cancel && now <= run.begin_by()
}

/// The sweep's decision for `run`, which this process is not carrying
/// out, as of `now`, by a node leading under `leading` (or not leading).
pub fn judge(run: &Run, leading: Option<Fence>, seen: Seen, now: i64) -> Action {
    match leading {
        // This leadership's own run whose fire's answer is late (or whose
        // task left it to the leader): begun after all, under its own
        // fence; its `Begin` decides, and `register` keeps an answer that
        // does come from starting a second task. One its task gave back
        // (a lease lapsed for long, then renewed in the same term) no
        // fence of this term may claim: it waits for its deadline, or for
        // a later term's leader.
        Some(f) if seen.mine && run.fence == f => {
            if (may_take_over(run, now) && !run.released || claimed_by_this_leadership(run, now)) && seen.answer_late {
                Action::Adopt
            } else if run.released && for_a_later_leader(run) {
                until_deadline(run, now)
            } else if seen.answer_gone {
                Action::End(end_for(run, NotStarted::Unanswered))
            } else {
                Action::Leave
            }
        }
        // An earlier term's run of this process (it led before, lost the
        // term, and leads again; the run's task gave it back or never
        // got its answer): the same as any deposed leader's, at once.
        Some(f) if seen.mine && run.fence.term < f.term && for_a_later_leader(run) => deposed(run, now),
        Some(f) if seen.mine && run.fence.term < f.term && may_take_over(run, now) => Action::TakeOver,
        // A chained run: accepted by an end's apply under no node's fence,
        // so no node will ever begin it but a leader that takes it over;
        // its deadline counts with the margin, as a deposed node's run.
        Some(_) if run.fence == crate::state::chain::NOBODY => deposed(run, now),
        Some(f) if !seen.mine => {
            if seen.node_gone {
                if may_take_over(run, now) {
                    Action::TakeOver
                } else {
                    Action::End(end_for(run, NotStarted::NodeGone))
                }
            } else if run.fence.term < f.term && for_a_later_leader(run) {
                deposed(run, now)
            } else {
                Action::Leave
            }
        }
        // Not leading (or leading a term the run is not of): only this
        // process's own runs, once their answer can no longer come; one a
        // later leader can take over is left to it (ending it here raced
        // that take-over and lost the run).
        _ if seen.mine && seen.answer_gone && !for_a_later_leader(run) => Action::End(end_for(run, NotStarted::Unanswered)),
        _ => Action::Leave,
    }
}

impl super::Scheduler {
    /// Looks at every accepted run this process is not carrying out and
    /// carries out `judge`'s decision; `leading` is this node's confirmed
    /// fence and for how long it has held it.
    pub(super) fn sweep(&self, leading: Option<(Fence, Duration)>) {
        let now = now_ms();
        let me = self.executor.node;
        for (incarnation, run) in self.active_runs() {
            if held_back(&run, now) {
                continue;
            }
            let owner = run.fence.node;
            let mine = owner == me && run.fence.incarnation == self.incarnation;
            let answer_gone = now > run.proposed() + self.answer_bound.as_millis() as i64 + LEASE.as_millis() as i64;
            let answer_late = now > run.proposed() + ANSWER_LATE_MS;
            let node_gone = !mine
                && leading.is_some_and(|(fence, leading_for)| {
                    let restarted = state::load_node(&self.executor.sm, owner)
                        .ok()
                        .flatten()
                        .is_some_and(|n| n.incarnation != run.fence.incarnation);
                    let silent = owner != fence.node
                        && leading_for > LEASE
                        && self.clocks.silent_for(owner).is_none_or(|d| d > LEASE);
                    // An earlier process of this very node is gone too.
                    let my_old_self = owner == fence.node;
                    restarted || silent || my_old_self
                });
            let fence = leading.map(|(f, _)| f);
            match judge(&run, fence, Seen { mine, answer_gone, answer_late, node_gone }, now) {
                Action::Leave => {}
                Action::TakeOver => {
                    if let Some(fence) = fence {
                        self.take_over(incarnation, run, fence);
                    }
                }
                Action::Adopt => self.adopt(incarnation, run),
                Action::End(status) => {
                    warn!(job = %run.job, run = run.id, node = owner, ?status, "ending a run its node cannot finish");
                    // Under the fence judged gone: refused if the run was
                    // taken over since this read (and made `lost` if it was
                    // claimed since).
                    let cmd = Command::RunEnded { name: run.job.clone(), incarnation, run_id: run.id, status, at_ms: now, fence: Some(run.fence) };
                    let writer = self.executor.writer.clone();
                    tokio::spawn(async move {
                        let _ = writer.write(cmd).await;
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X: Fence = Fence { term: 4, node: 1, incarnation: 7 };
    const X_AGAIN: Fence = Fence { term: 6, node: 1, incarnation: 7 };
    const Y: Fence = Fence { term: 5, node: 2, incarnation: 9 };
    const T: i64 = 100_000;

    /// A scheduled run of X's, accepted and not yet claimed, with a minute's deadline.
    fn pending() -> Run {
        Run {
            id: 42,
            job: "j".into(),
            scheduled_ms: T,
            trigger: Trigger::Schedule,
            node: X.node,
            fence: X,
            start_ms: None,
            end_ms: None,
            status: RunStatus::Pending,
            next_seq: 0,
            cancel: false,
            output_bytes: 0,
            begin_by_ms: Some(T + 60_000),
            proposed_ms: Some(T - 200),
            stopped: false,
            claimed: false,
            claims: true,
            attempt: 1,
            not_before_ms: None,
            released: false,
            ended_nth: None,
            after_run: None,
            tail: vec![],
        }
    }

    const MINE: Seen = Seen { mine: true, answer_gone: false, answer_late: false, node_gone: false };
    const MINE_LATE: Seen = Seen { answer_late: true, ..MINE };
    const MINE_GONE: Seen = Seen { mine: true, answer_gone: true, answer_late: true, node_gone: false };
    const THEIRS: Seen = Seen { mine: false, answer_gone: false, answer_late: false, node_gone: false };

    #[test]
    fn a_leader_again_takes_over_at_once_what_it_fired_in_an_earlier_term() {
        // It fired the run in term 4, lost the term before claiming (its
        // task left the run to the next leader), and leads term 6: no
        // waiting for the answer bound, whose end raced the take-over.
        assert_eq!(judge(&pending(), Some(X_AGAIN), MINE, T + 500), Action::TakeOver);
        let given_back = Run { released: true, ..pending() };
        assert_eq!(judge(&given_back, Some(X_AGAIN), MINE, T + 500), Action::TakeOver);
        // Stopped meanwhile: ended, and says so.
        let stopped = Run { stopped: true, ..pending() };
        assert_eq!(judge(&stopped, Some(X_AGAIN), MINE, T + 500), Action::End(RunStatus::NotStarted(NotStarted::Stopped)));
        // Past its deadline, by the margin.
        assert_eq!(judge(&pending(), Some(X_AGAIN), MINE, T + 60_500), Action::Leave);
        assert_eq!(judge(&pending(), Some(X_AGAIN), MINE, T + 61_001), Action::End(RunStatus::NotStarted(NotStarted::Deadline)));
    }

    #[test]
    fn a_process_that_does_not_lead_leaves_its_unanswered_runs_to_a_later_leader() {
        assert_eq!(judge(&pending(), None, MINE_GONE, T + 10_000), Action::Leave);
        // A manual run has no later leader to go to; claimed, it may have begun.
        let manual = Run { trigger: Trigger::Manual, ..pending() };
        assert_eq!(judge(&manual, None, MINE_GONE, T + 10_000), Action::End(RunStatus::NotStarted(NotStarted::Unanswered)));
        let claimed = Run { claimed: true, ..pending() };
        assert_eq!(judge(&claimed, None, MINE_GONE, T + 10_000), Action::End(RunStatus::Lost));
        assert_eq!(judge(&manual, None, MINE, T + 10_000), Action::Leave, "its answer may still come");
    }

    #[test]
    fn a_leader_adopts_its_own_runs_of_this_term_once_their_answer_is_late() {
        assert_eq!(judge(&pending(), Some(X), MINE, T - 150), Action::Leave, "its answer is on its way");
        assert_eq!(judge(&pending(), Some(X), MINE_LATE, T + 800), Action::Adopt);
        // Claimed by this leadership (a take-over whose task gave up
        // before it committed): no task here began it.
        let claimed = Run { claimed: true, ..pending() };
        assert_eq!(judge(&claimed, Some(X), MINE_LATE, T + 800), Action::Adopt);
        assert_eq!(judge(&claimed, Some(X), MINE_GONE, T + 61_000), Action::End(RunStatus::Lost));
        // Given back in this term: no fence of the term may claim it, so
        // it waits for its deadline (or a later term's leader).
        let given_back = Run { released: true, ..pending() };
        assert_eq!(judge(&given_back, Some(X), MINE_GONE, T + 10_000), Action::Leave);
        assert_eq!(judge(&given_back, Some(X), MINE_GONE, T + 61_001), Action::End(RunStatus::NotStarted(NotStarted::Deadline)));
        let killed = Run { cancel: true, ..pending() };
        assert_eq!(judge(&killed, Some(X), MINE_GONE, T + 10_000), Action::End(RunStatus::Killed));
    }

    #[test]
    fn a_leader_takes_over_another_nodes_runs_only_when_that_node_is_gone_or_deposed() {
        // X's run, Y leading a later term: X can no longer begin it.
        assert_eq!(judge(&pending(), Some(Y), THEIRS, T), Action::TakeOver);
        // A manual run of a live node: its own to begin.
        let manual = Run { trigger: Trigger::Manual, fence: Fence { term: 5, ..X }, ..pending() };
        assert_eq!(judge(&manual, Some(Y), THEIRS, T), Action::Leave);
        let gone = Seen { node_gone: true, ..THEIRS };
        assert_eq!(judge(&manual, Some(Y), gone, T), Action::TakeOver);
        let claimed = Run { claimed: true, ..pending() };
        assert_eq!(judge(&claimed, Some(Y), gone, T), Action::End(RunStatus::Lost));
        let late = judge(&pending(), Some(Y), gone, T + 70_000);
        assert_eq!(late, Action::End(RunStatus::NotStarted(NotStarted::NodeGone)));
        // Not leading: another node's runs are not this node's business.
        assert_eq!(judge(&pending(), None, gone, T), Action::Leave);
    }
}
