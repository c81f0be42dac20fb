//! Chains: `after JOB [success|failure|always]` on a job's ctl makes the
//! job run once for each run of JOB that ends as asked. The follower's run
//! is accepted by the very apply that records the end (so once per
//! triggering run, whatever the leaders do), under no node's fence
//! (`NOBODY`): only a leader's `TakeOver` can claim it, and the claim
//! rule lets one claim win, so one node at most begins it (README,
//! "Firing").
//!
//! Each rule is kept on the follower (`Job::after`) and its name on the
//! job it follows (`Job::followers`), so an end finds its followers
//! without a scan. Rules that would make a cycle are refused when written.

use super::run::{self, Asked, NewRun, Run};
use super::{load_job, log, store_job, Job, Kv, KvError};
use crate::command::{After, Fence, On, Response, RunStatus, Trigger};

/// The fence of a run nobody was asked to begin: a chained run. No node
/// holds it, so only a `TakeOver` claims the run.
pub const NOBODY: Fence = Fence { term: 0, node: 0, incarnation: 0 };

/// Rules one job may have.
pub const MAX_RULES: usize = 32;

fn reject(reason: String) -> Response {
    Response::Rejected { reason }
}

/// The path from `from` to `to` along `after` rules, if one exists.
fn path_to(kv: &impl Kv, from: &str, to: &str) -> Result<Option<Vec<String>>, KvError> {
    let mut stack = vec![vec![from.to_string()]];
    let mut seen = std::collections::HashSet::new();
    while let Some(path) = stack.pop() {
        let at = path.last().cloned().unwrap_or_default();
        if at == to {
            return Ok(Some(path));
        }
        if !seen.insert(at.clone()) {
            continue;
        }
        if let Some(job) = load_job(kv, &at)? {
            for rule in &job.after {
                let mut next = path.clone();
                next.push(rule.job.clone());
                stack.push(next);
            }
        }
    }
    Ok(None)
}

/// `Command::Follow` on `job` (loaded; stored by the caller).
pub fn follow(kv: &mut impl Kv, job: &mut Job, after: Option<&After>) -> Result<Response, KvError> {
    let Some(rule) = after else {
        for rule in std::mem::take(&mut job.after) {
            unlink(kv, &rule.job, &job.name)?;
        }
        return Ok(Response::Done);
    };
    if rule.job == job.name {
        return Ok(reject(format!("job {} cannot follow itself", job.name)));
    }
    let Some(mut leader) = load_job(kv, &rule.job)? else {
        return Ok(reject(format!("after {}: no such job", rule.job)));
    };
    if let Some(path) = path_to(kv, &rule.job, &job.name)? {
        let cycle = [job.name.as_str()].into_iter().chain(path.iter().map(String::as_str)).collect::<Vec<_>>().join(" → ");
        return Ok(reject(format!("after {} makes a cycle: {cycle}", rule.job)));
    }
    let count = job.after.len();
    match job.after.iter_mut().find(|r| r.job == rule.job) {
        Some(r) => r.on = rule.on,
        None if count >= MAX_RULES => {
            return Ok(reject(format!("job {} has {MAX_RULES} after rules, the most a job may have", job.name)));
        }
        None => job.after.push(rule.clone()),
    }
    if !leader.followers.contains(&job.name) {
        leader.followers.push(job.name.clone());
        store_job(kv, &leader);
    }
    Ok(Response::Done)
}

/// `follower` no longer follows `leader` (its rule cleared, or it was deleted).
pub fn unlink(kv: &mut impl Kv, leader: &str, follower: &str) -> Result<(), KvError> {
    if let Some(mut l) = load_job(kv, leader)? {
        l.followers.retain(|f| f != follower);
        store_job(kv, &l);
    }
    Ok(())
}

/// Whether an end with `status` matches `on`: `lost` and `not-started`
/// have no outcome, so only `always` follows them.
fn matches(on: On, status: &RunStatus) -> bool {
    match on {
        On::Always => true,
        On::Success => *status == RunStatus::Exit(0),
        On::Failure => matches!(status, RunStatus::Exit(n) if *n != 0) || matches!(status, RunStatus::Signal(_) | RunStatus::Timeout | RunStatus::Killed),
    }
}

/// After `ended` (its status stored, and its retry, if any, made pending):
/// accepts one run of each started follower whose rule the end matches.
/// A failed attempt with another attempt to come is not the end of its
/// scheduled time: followers see only the final attempt.
pub fn after_end(kv: &mut impl Kv, index: u64, job: &Job, ended: &Run, at_ms: i64, retrying: bool) -> Result<(), KvError> {
    if job.followers.is_empty() || retrying {
        return Ok(());
    }
    for name in job.followers.clone() {
        let Some(mut follower) = load_job(kv, &name)? else { continue };
        let Some(rule) = follower.after.iter().find(|r| r.job == job.name) else { continue };
        if !follower.started || !matches(rule.on, &ended.status) {
            continue;
        }
        let asked = Asked { scheduled_ms: at_ms, trigger: Trigger::After, node: NOBODY.node };
        if run::overlap(kv, &mut follower, at_ms, asked)?.is_some() {
            store_job(kv, &follower);
            continue;
        }
        let new = NewRun {
            scheduled_ms: at_ms,
            trigger: Trigger::After,
            fence: NOBODY,
            deadline_from_ms: at_ms,
            proposed_ms: at_ms,
            claims: true,
            attempt: 1,
            not_before_ms: None,
            after_run: Some(ended.id),
        };
        if let Response::Accepted { run_id } = run::new_run(kv, index, &mut follower, new)? {
            let why = super::run::status_text(&ended.status);
            log::append(kv, &mut follower, at_ms, &format!("run {run_id} after run {} of {} ({why})", ended.id, job.name))?;
        }
        store_job(kv, &follower);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::command::{Command, Retry};
    use crate::state::{apply, run::load_run};

    const FENCE: Fence = Fence { term: 2, node: 1, incarnation: 7 };

    struct T {
        kv: BTreeMap<Vec<u8>, Vec<u8>>,
        index: u64,
    }

    impl T {
        fn new(jobs: &[(&str, &str)]) -> T {
            let mut t = T { kv: BTreeMap::new(), index: 0 };
            for (name, schedule) in jobs {
                t.apply(Command::CreateJob { name: (*name).into(), schedule: (*schedule).into(), cmd: "true".into(), at_ms: 0 });
            }
            t
        }
        fn apply(&mut self, c: Command) -> Response {
            self.index += 1;
            apply(&mut self.kv, self.index, &c).unwrap()
        }
        fn follow(&mut self, name: &str, job: &str, on: On) -> Response {
            self.apply(Command::Follow { name: name.into(), after: Some(After { job: job.into(), on }) })
        }
        fn start(&mut self, name: &str) -> Response {
            self.apply(Command::StartJob { name: name.into(), at_ms: 1000 })
        }
        fn job(&self, name: &str) -> Job {
            load_job(&self.kv, name).unwrap().unwrap()
        }
        /// A run of `name` fired at `at`, begun, and ended with `status`.
        fn run(&mut self, name: &str, at: i64, status: RunStatus) -> u64 {
            let inc = self.job(name).incarnation;
            let fire = Command::Fire { name: name.into(), incarnation: inc, scheduled_ms: at, trigger: Trigger::Schedule, skipped: 0, fence: FENCE, at_ms: at, claims: true };
            let Response::Accepted { run_id } = self.apply(fire) else { panic!("fire refused") };
            self.end(name, run_id, at, status);
            run_id
        }
        fn end(&mut self, name: &str, run_id: u64, at: i64, status: RunStatus) {
            let inc = self.job(name).incarnation;
            self.apply(Command::Begin { name: name.into(), incarnation: inc, run_id, fence: FENCE });
            self.apply(Command::RunStarted { name: name.into(), incarnation: inc, run_id, at_ms: at, fence: Some(FENCE) });
            self.apply(Command::RunEnded { name: name.into(), incarnation: inc, run_id, status, at_ms: at + 10, fence: Some(FENCE) });
        }
        /// The chained runs of `name`: (their triggering run, status).
        fn chained(&self, name: &str) -> Vec<(Option<u64>, RunStatus, Fence, bool)> {
            let job = self.job(name);
            job.recent_runs.iter().map(|id| load_run(&self.kv, job.incarnation, *id).unwrap().unwrap()).map(|r| (r.after_run, r.status, r.fence, r.claimed)).collect()
        }
    }

    fn refused(r: Response, want: &str) {
        match r {
            Response::Rejected { reason } => assert!(reason.contains(want), "{reason:?} should say {want:?}"),
            other => panic!("expected a refusal saying {want:?}, got {other:?}"),
        }
    }

    #[test]
    fn rules_are_refused_for_missing_jobs_self_and_cycles_and_change_nothing() {
        let mut t = T::new(&[("a", "* * * * * *"), ("b", ""), ("c", "")]);
        refused(t.follow("b", "nope", On::Success), "nope: no such job");
        refused(t.follow("b", "b", On::Success), "cannot follow itself");
        assert_eq!(t.follow("b", "a", On::Success), Response::Done);
        assert_eq!(t.follow("c", "b", On::Failure), Response::Done);
        refused(t.follow("a", "c", On::Always), "makes a cycle: a → c → b → a");
        assert!(t.job("a").after.is_empty(), "a refused rule is not kept");
        assert_eq!(t.job("a").followers, ["b"]);
        // Written again: its condition replaced, not a second rule.
        assert_eq!(t.follow("b", "a", On::Always), Response::Done);
        assert_eq!(t.job("b").after, [After { job: "a".into(), on: On::Always }]);
        // A job others follow cannot be deleted; its followers can, and
        // `after off` clears every rule.
        refused(t.apply(Command::DeleteJob { name: "a".into() }), "followed by b");
        assert_eq!(t.apply(Command::Follow { name: "b".into(), after: None }), Response::Done);
        assert!(t.job("a").followers.is_empty() && t.job("b").after.is_empty());
        assert_eq!(t.apply(Command::DeleteJob { name: "c".into() }), Response::Done);
        assert!(t.job("b").followers.is_empty(), "a deleted follower is unlinked");
        assert_eq!(t.apply(Command::DeleteJob { name: "a".into() }), Response::Done);
    }

    #[test]
    fn a_job_with_only_after_rules_starts_and_runs_once_per_matching_end() {
        let mut t = T::new(&[("a", "* * * * * *"), ("b", "")]);
        refused(t.start("b"), "no schedule (or after rule)");
        t.follow("b", "a", On::Success);
        assert_eq!(t.start("b"), Response::Done);
        t.start("a");
        let first = t.run("a", 2000, RunStatus::Exit(0));
        t.run("a", 3000, RunStatus::Exit(1));
        let third = t.run("a", 4000, RunStatus::Exit(0));
        let chained = t.chained("b");
        assert_eq!(chained.len(), 2, "one run per successful end: {chained:?}");
        assert_eq!(chained.iter().map(|c| c.0).collect::<Vec<_>>(), [Some(first), Some(third)]);
        // Accepted, unclaimed, under no node's fence: only a take-over claims it.
        assert!(chained.iter().all(|c| c.1 == RunStatus::Pending && c.2 == NOBODY && !c.3));
        let b = t.job("b");
        let run = load_run(&t.kv, b.incarnation, b.recent_runs[0]).unwrap().unwrap();
        assert_eq!((run.trigger, run.scheduled_ms, run.claims), (Trigger::After, 2010, true));
        let take = |fence: Fence| Command::TakeOver { name: "b".into(), incarnation: b.incarnation, run_id: run.id, fence, at_ms: 2100 };
        assert_eq!(t.apply(take(Fence { term: 3, ..FENCE })), Response::Done);
        refused(t.apply(take(Fence { term: 4, node: 2, incarnation: 9 })), "claimed by node 1");
        // A stopped follower gets no run.
        t.apply(Command::StopJob { name: "b".into(), at_ms: 5000 });
        t.run("a", 6000, RunStatus::Exit(0));
        assert_eq!(t.chained("b").len(), 2);
    }

    #[test]
    fn failure_follows_the_final_attempt_and_lost_ends_only_always() {
        let mut t = T::new(&[("a", "* * * * * *"), ("f", ""), ("any", "")]);
        t.follow("f", "a", On::Failure);
        t.follow("any", "a", On::Always);
        for n in ["f", "any", "a"] {
            t.start(n);
        }
        t.apply(Command::SetPolicy { name: "a".into(), policy: crate::command::Policy::Retry(Some(Retry { retries: 1, backoff_ms: 1000 })), at_ms: 1500 });
        t.run("a", 2000, RunStatus::Exit(3));
        assert!(t.chained("f").is_empty() && t.chained("any").is_empty(), "a retry is still to come");
        let inc = t.job("a").incarnation;
        let retry = Command::FireRetry { name: "a".into(), incarnation: inc, scheduled_ms: 2000, attempt: 2, fence: FENCE, at_ms: 3010 };
        let Response::Accepted { run_id } = t.apply(retry) else { panic!("retry refused") };
        t.end("a", run_id, 3100, RunStatus::Signal("KILL".into()));
        assert_eq!(t.chained("f").len(), 1, "the final attempt failed");
        assert_eq!(t.chained("any").len(), 1);
        // A lost run has no outcome: only `always` follows it.
        let fire = Command::Fire { name: "a".into(), incarnation: inc, scheduled_ms: 9000, trigger: Trigger::Schedule, skipped: 0, fence: FENCE, at_ms: 9000, claims: true };
        let Response::Accepted { run_id } = t.apply(fire) else { panic!("fire refused") };
        t.apply(Command::Begin { name: "a".into(), incarnation: inc, run_id, fence: FENCE });
        t.apply(Command::RunEnded { name: "a".into(), incarnation: inc, run_id, status: RunStatus::Lost, at_ms: 9500, fence: Some(FENCE) });
        assert_eq!((t.chained("f").len(), t.chained("any").len()), (1, 2));
    }

    #[test]
    fn a_failure_whose_retry_is_cancelled_was_the_last_and_is_followed_then() {
        let mut t = T::new(&[("a", "* * * * * *"), ("f", "")]);
        t.follow("f", "a", On::Failure);
        t.start("f");
        t.start("a");
        t.apply(Command::SetPolicy { name: "a".into(), policy: crate::command::Policy::Retry(Some(Retry { retries: 1, backoff_ms: 300_000 })), at_ms: 1500 });
        let first = t.run("a", 2000, RunStatus::Exit(1));
        assert!(t.chained("f").is_empty(), "its retry is pending");
        // Another time fails: the first one's retry is cancelled, so its
        // failure was final.
        let second = t.run("a", 3000, RunStatus::Exit(2));
        assert_eq!(t.chained("f").iter().map(|c| c.0).collect::<Vec<_>>(), [Some(first)]);
        // `stop` cancels the second one's retry.
        t.apply(Command::StopJob { name: "a".into(), at_ms: 4000 });
        assert_eq!(t.chained("f").iter().map(|c| c.0).collect::<Vec<_>>(), [Some(first), Some(second)]);
    }
}
