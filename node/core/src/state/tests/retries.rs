//! Retries as transcripts: which ends make an attempt pending, that each
//! attempt is accepted once, and what cancels one.

use super::*;
use crate::command::{NotStarted, OnLost, Policy, Retry};

const OTHER: Fence = Fence { term: 3, node: 2, incarnation: 8 };

impl T {
    fn policy(&mut self, policy: Policy) {
        assert_eq!(self.apply(Command::SetPolicy { name: "j".into(), policy, at_ms: 0 }), Response::Done);
    }
    fn retry(&mut self, retries: u32, backoff_ms: i64) {
        self.policy(Policy::Retry(Some(Retry { retries, backoff_ms })));
    }
    /// Claims, starts and ends run `id` (of `fence`) with `status` at `at`.
    fn end(&mut self, id: u64, fence: Fence, status: RunStatus, at: i64) {
        assert_eq!(self.apply(Command::Begin { name: "j".into(), incarnation: 1, run_id: id, fence }), Response::Done);
        let start = Command::RunStarted { name: "j".into(), incarnation: 1, run_id: id, at_ms: at - 1, fence: Some(fence) };
        assert_eq!(self.apply(start), Response::Done);
        let end = Command::RunEnded { name: "j".into(), incarnation: 1, run_id: id, status, at_ms: at, fence: Some(fence) };
        assert_eq!(self.apply(end), Response::Done);
    }
    fn fire_retry(&mut self, scheduled_ms: i64, attempt: u32, fence: Fence) -> Response {
        self.apply(Command::FireRetry { name: "j".into(), incarnation: 1, scheduled_ms, attempt, fence, at_ms: 0 })
    }
    /// The pending attempt, without the run that made it pending (the
    /// chain tests, `chain.rs`, look at that).
    fn pending(&self) -> Option<retry::PendingRetry> {
        self.job().retry_pending.map(|p| retry::PendingRetry { failed_run: None, ..p })
    }
}

fn pending(scheduled_ms: i64, attempt: u32, at_ms: i64) -> Option<retry::PendingRetry> {
    Some(retry::PendingRetry { scheduled_ms, attempt, at_ms, lost: false, failed_run: None })
}

#[test]
fn a_failed_run_is_retried_with_a_doubling_backoff_each_attempt_accepted_once() {
    let mut t = T::new();
    t.retry(2, 10_000);
    let id = accepted(&t.fire_claiming(2000));
    t.end(id, FENCE, RunStatus::Exit(1), 2500);
    assert_eq!(t.pending(), pending(2000, 2, 12_500), "the first retry one backoff after the end");
    // Only the attempt pending, and only once, whichever leader asks.
    assert!(matches!(t.fire_retry(2000, 3, FENCE), Response::Rejected { .. }), "not that attempt");
    assert!(matches!(t.fire_retry(3000, 2, FENCE), Response::Rejected { .. }), "not that time");
    let id2 = accepted(&t.fire_retry(2000, 2, FENCE));
    assert!(matches!(t.fire_retry(2000, 2, OTHER), Response::Rejected { .. }), "an attempt is accepted once");
    assert_eq!(t.pending(), None);
    let run = run::load_run(&t.kv, 1, id2).unwrap().unwrap();
    assert_eq!((run.scheduled_ms, run.trigger, run.attempt, run.begin_at()), (2000, Trigger::Retry, 2, 12_500));
    assert_eq!(run.begin_by(), 12_500 + 60_000, "its deadline counts from its retry-at");
    assert!(run.claims, "claimed before begun, so it may be taken over");
    // The second failure waits twice as long; the third is the last allowed.
    t.end(id2, FENCE, RunStatus::Timeout, 13_000);
    assert_eq!(t.pending(), pending(2000, 3, 33_000));
    let id3 = accepted(&t.fire_retry(2000, 3, FENCE));
    t.end(id3, FENCE, RunStatus::Signal("SIGKILL".into()), 34_000);
    assert_eq!(t.pending(), None, "retry 2 allows three attempts");
    assert!(t.log().contains("attempt 3/3 of 1970-01-01T00:00:02Z failed; no attempts left"), "{}", t.log());
}

#[test]
fn only_failures_of_scheduled_times_are_retried_and_lost_only_with_onlost_rerun() {
    let mut t = T::new();
    t.retry(3, 1000);
    for (at, status) in [(2000, RunStatus::Exit(0)), (3000, RunStatus::Killed)] {
        let id = accepted(&t.fire_claiming(at));
        t.end(id, FENCE, status, at + 10);
        assert_eq!(t.pending(), None);
    }
    // Never begun: not a failure of the command.
    let id = accepted(&t.fire_claiming(4000));
    let end = Command::RunEnded { name: "j".into(), incarnation: 1, run_id: id, status: RunStatus::NotStarted(NotStarted::Deadline), at_ms: 4100, fence: Some(FENCE) };
    t.apply(end);
    assert_eq!(t.pending(), None);
    // A manual run: someone is there to see it.
    let id = accepted(&t.apply(Command::RunNow { name: "j".into(), incarnation: 1, fence: FENCE, at_ms: 4500, force: true, claims: true }));
    t.end(id, FENCE, RunStatus::Exit(3), 4600);
    assert_eq!(t.pending(), None);
    // Lost: at most once unless the user says rerun.
    let id = accepted(&t.fire_claiming(5000));
    t.end(id, FENCE, RunStatus::Lost, 5100);
    assert_eq!(t.pending(), None, "onlost skip");
    t.policy(Policy::Retry(None));
    t.policy(Policy::OnLost(OnLost::Rerun));
    let id = accepted(&t.fire_claiming(6000));
    t.end(id, FENCE, RunStatus::Exit(1), 6100);
    assert_eq!(t.pending(), None, "retry off: a failure is not retried");
    // A claimed run whose node the sweep judged gone ends lost, and reruns once.
    let id = accepted(&t.fire_claiming(7000));
    t.apply(Command::Begin { name: "j".into(), incarnation: 1, run_id: id, fence: FENCE });
    let swept = Command::RunEnded { name: "j".into(), incarnation: 1, run_id: id, status: RunStatus::NotStarted(NotStarted::NodeGone), at_ms: 7100, fence: Some(FENCE) };
    t.apply(swept);
    assert_eq!(t.pending(), Some(retry::PendingRetry { scheduled_ms: 7000, attempt: 2, at_ms: 17_100, lost: true, failed_run: None }));
    let id = accepted(&t.fire_retry(7000, 2, OTHER));
    t.end(id, OTHER, RunStatus::Lost, 18_000);
    assert_eq!(t.pending(), None, "onlost rerun without retry: one more attempt");
}

#[test]
fn stop_kill_and_a_smaller_policy_cancel_a_pending_attempt_and_a_later_failure_replaces_it() {
    let mut t = T::new();
    t.retry(1, 10_000);
    let id = accepted(&t.fire_claiming(2000));
    t.end(id, FENCE, RunStatus::Exit(1), 2100);
    t.apply(Command::StopJob { name: "j".into(), at_ms: 2200 });
    assert_eq!(t.pending(), None);
    assert!(matches!(t.fire_retry(2000, 2, FENCE), Response::Rejected { .. }), "stop cancelled it");
    assert!(t.log().contains("attempt 2 of 1970-01-01T00:00:02Z cancelled: the job was stopped"), "{}", t.log());
    t.apply(Command::StartJob { name: "j".into(), at_ms: 2500 });
    assert_eq!(t.pending(), None, "a start does not bring it back");

    let id = accepted(&t.fire_claiming(3000));
    t.end(id, FENCE, RunStatus::Exit(1), 3100);
    t.apply(Command::KillRuns { name: "j".into(), incarnation: 1, at_ms: 3200 });
    assert_eq!(t.pending(), None, "kill");

    let id = accepted(&t.fire_claiming(4000));
    t.end(id, FENCE, RunStatus::Exit(1), 4100);
    t.policy(Policy::OnLost(OnLost::Rerun));
    assert_eq!(t.pending(), pending(4000, 2, 14_100), "a policy that still allows it keeps it");
    t.policy(Policy::Retry(None));
    assert_eq!(t.pending(), None, "retry off");

    t.retry(5, 10_000);
    let a = accepted(&t.fire_claiming(5000));
    let b = accepted(&t.fire_claiming(6000));
    t.end(a, FENCE, RunStatus::Exit(1), 6500);
    t.end(b, FENCE, RunStatus::Exit(1), 6600);
    assert_eq!(t.pending(), pending(6000, 2, 16_600), "the later failure's attempt takes the place");
    assert!(t.log().contains("cancelled: another time failed"), "{}", t.log());
    let r = accepted(&t.fire_retry(6000, 2, FENCE));
    t.apply(Command::DeleteJob { name: "j".into() });
    assert!(run::load_run(&t.kv, 1, r).unwrap().is_none());
}

#[test]
fn a_pending_attempt_outlives_runs_kept_and_a_retry_respects_overlap() {
    let mut t = T::new();
    t.apply(Command::SetLimit { name: "runs-kept".into(), value: 1 });
    t.retry(1, 1000);
    let id = accepted(&t.fire_claiming(2000));
    t.end(id, FENCE, RunStatus::Exit(1), 2100);
    for at in [3000, 4000] {
        let id = accepted(&t.fire_claiming(at));
        t.end(id, FENCE, RunStatus::Exit(0), at + 10);
    }
    assert!(run::load_run(&t.kv, 1, id).unwrap().is_none(), "the failed run was evicted");
    assert_eq!(t.pending(), pending(2000, 2, 3100), "its next attempt was not");
    // A run still going and overlap skip: the attempt is skipped, not queued.
    t.policy(Policy::Overlap(crate::command::Overlap::Skip));
    accepted(&t.fire_claiming(5000));
    assert_eq!(t.fire_retry(2000, 2, FENCE), Response::SkippedForOverlap);
    assert_eq!(t.pending(), None);
}
