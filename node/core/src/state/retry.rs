//! Retries: a failed run of a scheduled or catch-up time (`exit` non-zero,
//! `signal`, `timeout`; with `onlost rerun` also `lost`) is run again as a
//! new attempt of the same time, while the job allows more attempts.
//!
//! The attempt due next is kept in the job's record (`retry_pending`), so
//! it survives a leader change and is never evicted with old runs. A
//! run's end is applied once, so each attempt is made pending at most
//! once; `FireRetry` is accepted only for the attempt pending and ends it,
//! so each attempt is accepted at most once; its run is then claimed and
//! begun under the same rules as any other (`run.rs`), so it begins at
//! most once. A job keeps one pending attempt: another time's failure
//! takes the place of the pending one (logged).

use serde::{Deserialize, Serialize};

use super::run::{self, NewRun, Run};
use super::{log, Job, Kv, KvError};
use crate::command::{Fence, OnLost, Response, Retry, RunStatus, Trigger};
use crate::time::rfc3339_secs;

/// The next attempt of a scheduled time, waiting for its retry-at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRetry {
    pub scheduled_ms: i64,
    /// The attempt it will be (2 is the first retry).
    pub attempt: u32,
    /// When it is due (its retry-at): the failed attempt's end plus the
    /// backoff.
    pub at_ms: i64,
    /// The attempt before it was lost (`onlost rerun`), not failed.
    #[serde(default)]
    pub lost: bool,
    /// The run whose end made it pending: if the attempt is cancelled or
    /// skipped, that end was the time's last, and the job's followers
    /// (`chain.rs`) see it then.
    #[serde(default)]
    pub failed_run: Option<u64>,
}

/// How many attempts of one time the job allows: `retry N` gives N + 1;
/// without it, `onlost rerun` gives one more for a lost run.
pub fn max_attempts(job: &Job, status: &RunStatus) -> u32 {
    match (job.retry, job.onlost, status) {
        (_, OnLost::Skip, RunStatus::Lost) => 1,
        (Some(r), _, _) => r.retries.saturating_add(1),
        (None, OnLost::Rerun, RunStatus::Lost) => 2,
        (None, _, _) => 1,
    }
}

/// How many attempts the job allows a time whose last attempt ended as
/// `lost` says (shown as `JOBD_ATTEMPT`'s second number).
pub fn attempts_for(job: &Job, lost: bool) -> u32 {
    max_attempts(job, if lost { &RunStatus::Lost } else { &RunStatus::Exit(1) })
}

/// After a change of policy: a pending attempt it no longer allows
/// (`retry off`, a smaller N, `onlost skip`) is cancelled.
pub fn still_allowed(kv: &mut impl Kv, index: u64, job: &mut Job, at_ms: i64) -> Result<(), KvError> {
    if job.retry_pending.is_some_and(|p| p.attempt > attempts_for(job, p.lost)) {
        cancel(kv, index, job, at_ms, "the policy allows no more attempts")?;
    }
    Ok(())
}

fn retryable(status: &RunStatus) -> bool {
    matches!(status, RunStatus::Exit(n) if *n != 0) || matches!(status, RunStatus::Signal(_) | RunStatus::Timeout | RunStatus::Lost)
}

/// Whether another attempt of `run`'s scheduled time is pending (after
/// `after_end`): then its end is not the time's last.
pub fn retrying(job: &Job, run: &Run) -> bool {
    job.retry_pending.is_some_and(|p| p.scheduled_ms == run.scheduled_ms && p.attempt > run.attempt)
}

/// After `run` ended (its status stored): makes its next attempt pending
/// if the job retries it. Manual runs are not retried (someone is there
/// to see them), nor runs of a job stopped since.
pub fn after_end(kv: &mut impl Kv, index: u64, job: &mut Job, run: &Run, at_ms: i64) -> Result<(), KvError> {
    if run.trigger == Trigger::Manual || !job.started || !retryable(&run.status) {
        return Ok(());
    }
    let max = max_attempts(job, &run.status);
    if run.attempt >= max {
        if max > 1 {
            let text = format!("run {}: attempt {}/{max} of {} failed; no attempts left", run.id, run.attempt, rfc3339_secs(run.scheduled_ms));
            log::append(kv, job, at_ms, &text)?;
        }
        return Ok(());
    }
    let backoff = job.retry.map_or(Retry::DEFAULT_BACKOFF_MS, |r| r.backoff_ms);
    let next = PendingRetry {
        scheduled_ms: run.scheduled_ms,
        attempt: run.attempt + 1,
        at_ms: at_ms.saturating_add(Retry::delay_after_ms(backoff, run.attempt)),
        lost: run.status == RunStatus::Lost,
        failed_run: Some(run.id),
    };
    cancel(kv, index, job, at_ms, &format!("another time failed ({})", rfc3339_secs(run.scheduled_ms)))?;
    let text = format!("run {}: attempt {}/{max} of {} at {}", run.id, next.attempt, rfc3339_secs(next.scheduled_ms), rfc3339_secs(next.at_ms));
    log::append(kv, job, at_ms, &text)?;
    job.retry_pending = Some(next);
    Ok(())
}

/// Drops the pending attempt, if any, saying why (`stop`, `kill`, `retry
/// off`, a later failure).
pub fn cancel(kv: &mut impl Kv, index: u64, job: &mut Job, at_ms: i64, why: &str) -> Result<(), KvError> {
    if let Some(p) = job.retry_pending.take() {
        let text = format!("attempt {} of {} cancelled: {why}", p.attempt, rfc3339_secs(p.scheduled_ms));
        log::append(kv, job, at_ms, &text)?;
        last_attempt_was(kv, index, job, p, at_ms)?;
    }
    Ok(())
}

/// Pending attempt `p` will not run: the end before it was its time's
/// last, so the job's followers see it now.
fn last_attempt_was(kv: &mut impl Kv, index: u64, job: &Job, p: PendingRetry, at_ms: i64) -> Result<(), KvError> {
    if let Some(run) = p.failed_run.map(|id| run::load_run(kv, job.incarnation, id)).transpose()?.flatten() {
        super::chain::after_end(kv, index, job, &run, at_ms, false)?;
    }
    Ok(())
}

/// What `FireRetry` asks for.
#[derive(Debug, Clone, Copy)]
pub struct RetryAt {
    pub scheduled_ms: i64,
    pub attempt: u32,
    /// The proposer's clock.
    pub proposed_ms: i64,
}

/// The retry firing rule: the job started and this very attempt pending.
/// Accepting it ends the pending attempt, so it is accepted once; the
/// overlap policy applies as to any fire. Its deadline counts from its
/// retry-at (from when it was fired, if that is later: a retry due during
/// an outage, like a catch-up run).
pub fn fire(kv: &mut impl Kv, index: u64, job: &mut Job, at: RetryAt, fence: Fence) -> Result<Response, KvError> {
    if !job.started {
        return Ok(Response::Rejected { reason: format!("job {} is stopped", job.name) });
    }
    let Some(p) = job.retry_pending.filter(|p| p.scheduled_ms == at.scheduled_ms && p.attempt == at.attempt) else {
        return Ok(Response::Rejected { reason: format!("attempt {} of {} is not pending", at.attempt, at.scheduled_ms) });
    };
    job.retry_pending = None;
    let asked = run::Asked { scheduled_ms: p.scheduled_ms, trigger: Trigger::Retry, node: fence.node };
    if let Some(skip) = run::overlap(kv, job, p.at_ms, asked)? {
        log::append(kv, job, p.at_ms, &format!("attempt {} of {} skipped (overlap)", p.attempt, rfc3339_secs(p.scheduled_ms)))?;
        last_attempt_was(kv, index, job, p, p.at_ms)?;
        return Ok(skip);
    }
    let new = NewRun {
        scheduled_ms: p.scheduled_ms,
        trigger: Trigger::Retry,
        fence,
        deadline_from_ms: p.at_ms.max(at.proposed_ms),
        proposed_ms: at.proposed_ms,
        claims: true,
        attempt: p.attempt,
        not_before_ms: Some(p.at_ms),
        after_run: None,
    };
    run::new_run(kv, index, job, new)
}
