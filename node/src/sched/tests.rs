//! What the scheduler proposes, for each catch-up policy, as a function of
//! the job's replicated state and the time.

use super::*;
use super::plan::LEAD_MS;
use crate::command::Catchup;

fn job(schedule: &str, last_accepted_ms: Option<i64>, catchup: Catchup, window_ms: Option<i64>) -> Job {
    let mut j = Job::new("j", 1, "true", schedule, 0);
    j.started = true;
    j.armed_at_ms = Some(0);
    j.last_accepted_ms = last_accepted_ms;
    j.catchup = catchup;
    j.catchup_window_ms = window_ms;
    j
}

const S: i64 = 1000;

#[test]
fn on_time_fires_are_proposed_just_before_t() {
    let j = job("* * * * * *", Some(10 * S), Catchup::Once, None);
    assert_eq!(due(&j, 10 * S + 100, LEAD_MS), Err(11 * S - (10 * S + 100) - LEAD_MS));
    assert_eq!(due(&j, 11 * S - 40, LEAD_MS), Ok(Due::Fire { scheduled_ms: 11 * S, trigger: Trigger::Schedule, skipped: 0 }));
    // Up to the fire window after T it is still on time.
    assert_eq!(due(&j, 12 * S - 1, LEAD_MS), Ok(Due::Fire { scheduled_ms: 11 * S, trigger: Trigger::Schedule, skipped: 0 }));
}

#[test]
fn the_fire_window_does_not_follow_the_jobs_deadline() {
    // A long deadline lets a fired run wait; it does not make a time missed
    // in an outage a late `schedule` run: past the window it is catch-up.
    let mut j = job("*/10 * * * * *", Some(10 * S), Catchup::Once, None);
    j.deadline_ms = Some(3_600 * S);
    assert_eq!(due(&j, 20 * S + FIRE_WINDOW_MS, LEAD_MS), Ok(Due::Fire { scheduled_ms: 20 * S, trigger: Trigger::Schedule, skipped: 0 }));
    assert_eq!(due(&j, 20 * S + FIRE_WINDOW_MS + 1, LEAD_MS), Ok(Due::Fire { scheduled_ms: 20 * S, trigger: Trigger::Catchup, skipped: 0 }));
}

#[test]
fn catchup_once_runs_the_latest_missed_time_and_counts_the_rest() {
    let j = job("* * * * * *", Some(10 * S), Catchup::Once, None);
    assert_eq!(due(&j, 20 * S + 500, LEAD_MS), Ok(Due::Fire { scheduled_ms: 20 * S, trigger: Trigger::Catchup, skipped: 9 }));
}

#[test]
fn catchup_skip_and_all() {
    let j = job("* * * * * *", Some(10 * S), Catchup::Skip, None);
    assert_eq!(due(&j, 20 * S + 500, LEAD_MS), Ok(Due::Skip { until_ms: 20 * S, count: 10, reason: "catch-up skip" }));
    let j = job("* * * * * *", Some(10 * S), Catchup::All, None);
    assert_eq!(due(&j, 20 * S + 500, LEAD_MS), Ok(Due::Fire { scheduled_ms: 11 * S, trigger: Trigger::Catchup, skipped: 0 }));
    // More than 100 missed: the older ones are skipped, the last 100 run.
    let j = job("* * * * * *", Some(0), Catchup::All, None);
    assert_eq!(due(&j, 500 * S + 500, LEAD_MS), Ok(Due::Skip { until_ms: 400 * S, count: 400, reason: "catch-up all runs the last 100" }));
}

#[test]
fn times_older_than_the_window_are_skipped_first() {
    let j = job("* * * * * *", Some(10 * S), Catchup::Once, Some(5 * S));
    assert_eq!(due(&j, 20 * S + 500, LEAD_MS), Ok(Due::Skip { until_ms: 15 * S, count: 5, reason: "outside the catch-up window" }));
    let j = job("* * * * * *", Some(15 * S), Catchup::Once, Some(5 * S));
    assert_eq!(due(&j, 20 * S + 500, LEAD_MS), Ok(Due::Fire { scheduled_ms: 20 * S, trigger: Trigger::Catchup, skipped: 4 }));
}

#[test]
fn a_pending_retry_is_proposed_at_its_retry_at_and_first_when_both_are_near() {
    let mut j = job("0 * * * * *", Some(60 * S), Catchup::Once, None);
    j.retry_pending = Some(crate::state::retry::PendingRetry { scheduled_ms: 60 * S, attempt: 2, at_ms: 70 * S, lost: false, failed_run: None });
    // Not yet: the wait is the retry's, the sooner of the two.
    assert_eq!(due(&j, 65 * S, LEAD_MS), Err(70 * S - 65 * S - LEAD_MS));
    assert_eq!(plan::next_time(&j), Some(70 * S));
    let retry = Due::Retry { scheduled_ms: 60 * S, attempt: 2, at_ms: 70 * S };
    assert_eq!(due(&j, 70 * S - LEAD_MS, LEAD_MS), Ok(retry));
    // Due during an outage: proposed at once.
    assert_eq!(due(&j, 119 * S, LEAD_MS), Ok(Due::Retry { scheduled_ms: 60 * S, attempt: 2, at_ms: 70 * S }));
    // A retry-at after the next time: the time is the sooner.
    j.retry_pending = Some(crate::state::retry::PendingRetry { scheduled_ms: 60 * S, attempt: 2, at_ms: 200 * S, lost: false, failed_run: None });
    assert_eq!(plan::next_time(&j), Some(120 * S));
    assert_eq!(due(&j, 120 * S - 50, LEAD_MS), Ok(Due::Fire { scheduled_ms: 120 * S, trigger: Trigger::Schedule, skipped: 0 }));
}
