//! What the leader's scheduler keeps between its ticks: each started job's
//! next time, read again only when an apply wrote the job
//! (`store/job_changes.rs`) or its time is near. Reading and decoding
//! every started job and parsing its expression ten times a second cost a
//! tenth of both cores with 2,000 jobs and grows with the count; a tick now
//! reads the jobs that changed and the ones it is about to fire.
//!
//! And how early each time is proposed (its lead): a time that many jobs
//! share needs their processes created before it (`spawn.rs`), one after
//! another on one thread, so its lead grows with the herd: `LEAD_MS`, plus
//! the creation of as many processes as the cap lets wait at their gates,
//! at the creating thread's measured cost, up to `MAX_LEAD_MS`. A time's
//! lead never shrinks while its herd is being proposed (the count falls as
//! the herd's fires are applied and their jobs move on to the next time).

use std::collections::{BTreeMap, HashMap};

use tracing::warn;

use crate::state::{self, Job};
use crate::store::job_changes::Changed;
use crate::store::state_machine::StateMachine;
use crate::times::Times;

/// Propose a lone time this long before it, so its commit and the creation
/// of its process are hidden from the lateness. Each millisecond of lead is
/// also a window in which a leader crash leaves that time not-started
/// instead of fired by the next leader, and in which the overlap policy is
/// judged early (it is judged when the fire is accepted).
pub const LEAD_MS: i64 = 200;
/// The most a herd's time is proposed ahead.
pub const MAX_LEAD_MS: i64 = 1000;

/// A job whose record could not be read: looked at again every tick.
const UNREAD: i64 = i64::MIN;

/// The time a job's next time comes after: its last accepted one, or when
/// it was last armed (started, or its expression changed), or created.
pub fn last_time(job: &Job) -> i64 {
    job.last_accepted_ms.max(job.armed_at_ms).unwrap_or(job.created_at_ms)
}

/// The next time a job is due (None: never): its next scheduled time,
/// or its pending retry's retry-at if that is sooner.
pub fn next_time(job: &Job) -> Option<i64> {
    let scheduled = Times::of(job).and_then(|t| t.next_after(last_time(job)));
    let retry = job.retry_pending.map(|p| p.at_ms);
    match (scheduled, retry) {
        (Some(s), Some(r)) => Some(s.min(r)),
        (s, r) => s.or(r),
    }
}

/// How long before a time shared by `herd` jobs to propose it, given the
/// cap on runs waiting at their gates and what creating one process costs.
pub fn lead_ms(herd: usize, cap: usize, create_cost_us: u64) -> i64 {
    let ahead = i64::try_from(herd.min(cap)).unwrap_or(i64::MAX);
    let cost = i64::try_from(create_cost_us).unwrap_or(i64::MAX);
    LEAD_MS.saturating_add(ahead.saturating_mul(cost) / 1000).min(MAX_LEAD_MS)
}

#[derive(Default)]
pub struct Plan {
    /// Started jobs: the next time of each (`i64::MAX`: none; `UNREAD`).
    next: HashMap<String, i64>,
    /// The lead given to each time near now.
    leads: BTreeMap<i64, i64>,
}

/// A job to look at now, with the lead its time was given.
pub struct Near {
    pub name: String,
    pub lead_ms: i64,
}

impl Plan {
    /// Reads what changed since the last call: every started job the first
    /// time, then the jobs applies wrote.
    pub fn refresh(&mut self, sm: &StateMachine) {
        match sm.take_job_changes() {
            Changed::All => {
                self.next.clear();
                match sm.scan(state::STARTED_PREFIX) {
                    Ok(started) => {
                        for (k, _) in started {
                            self.read(sm, &String::from_utf8_lossy(&k[state::STARTED_PREFIX.len()..]));
                        }
                    }
                    Err(e) => {
                        warn!("scheduler cannot read jobs: {e}");
                        // Nothing was read: all of it again next time.
                        sm.mark_all_jobs_changed();
                    }
                }
            }
            Changed::Jobs(names) => {
                for name in names {
                    self.read(sm, &name);
                }
            }
        }
    }

    /// Reads one job again: kept while started, with its next time.
    fn read(&mut self, sm: &StateMachine, name: &str) {
        match state::load_job(sm, name) {
            Ok(Some(job)) if job.started => {
                self.next.insert(name.to_owned(), next_time(&job).unwrap_or(i64::MAX));
            }
            Ok(_) => {
                self.next.remove(name);
            }
            Err(e) => {
                warn!(job = name, "scheduler cannot read a job: {e}");
                self.next.insert(name.to_owned(), UNREAD);
            }
        }
    }

    /// The jobs whose time is within its lead of `now`, and how long until
    /// the next one is (`i64::MAX`: none). `lead` answers a time's lead
    /// from the number of jobs that share it.
    pub fn near(&mut self, now: i64, lead: impl Fn(usize) -> i64) -> (Vec<Near>, i64) {
        let mut herds: HashMap<i64, usize> = HashMap::new();
        for &t in self.next.values() {
            if t != UNREAD && t >= now && t - now <= MAX_LEAD_MS {
                *herds.entry(t).or_default() += 1;
            }
        }
        self.leads = self.leads.split_off(&now);
        for (t, n) in herds {
            let l = self.leads.entry(t).or_insert(0);
            *l = (*l).max(lead(n));
        }
        let mut near = vec![];
        let mut wait = i64::MAX;
        for (name, &t) in &self.next {
            if t == i64::MAX {
                continue;
            }
            let lead_ms = self.leads.get(&t).copied().unwrap_or(LEAD_MS);
            let until = t.saturating_sub(now).saturating_sub(lead_ms);
            if t == UNREAD || until <= 0 {
                near.push(Near { name: name.clone(), lead_ms });
            } else {
                wait = wait.min(until);
            }
        }
        (near, wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_time_has_the_base_lead_and_a_herd_more_up_to_the_bound() {
        assert_eq!(lead_ms(1, 512, 1000), LEAD_MS + 1);
        assert_eq!(lead_ms(300, 512, 1000), LEAD_MS + 300);
        // Only as many as the cap lets wait at their gates are created ahead.
        assert_eq!(lead_ms(2000, 512, 1000), LEAD_MS + 512);
        assert_eq!(lead_ms(2000, 512, 10_000), MAX_LEAD_MS);
        assert_eq!(lead_ms(usize::MAX, usize::MAX, u64::MAX), MAX_LEAD_MS);
    }

    fn plan(times: &[(&str, i64)]) -> Plan {
        Plan { next: times.iter().map(|(n, t)| (n.to_string(), *t)).collect(), leads: BTreeMap::new() }
    }

    fn names(near: &[Near]) -> Vec<&str> {
        let mut v: Vec<&str> = near.iter().map(|n| n.name.as_str()).collect();
        v.sort();
        v
    }

    #[test]
    fn a_herd_is_near_earlier_than_a_lone_time() {
        // Two jobs share 10,000; one is alone at 10,500; one has no time.
        let mut p = plan(&[("a", 10_000), ("b", 10_000), ("c", 10_500), ("d", i64::MAX)]);
        let lead = |n: usize| LEAD_MS + 100 * n as i64;
        let (near, wait) = p.near(9_500, lead);
        assert!(near.is_empty());
        assert_eq!(wait, 10_000 - 9_500 - 400);
        let (near, wait) = p.near(9_600, lead);
        assert_eq!(names(&near), ["a", "b"]);
        assert!(near.iter().all(|n| n.lead_ms == 400));
        assert_eq!(wait, 10_500 - 9_600 - 300);
        // `a` was fired and moved on; `b`'s time keeps its lead.
        p.next.insert("a".into(), 20_000);
        let (near, _) = p.near(9_600, lead);
        assert_eq!(names(&near), ["b"]);
        assert_eq!(near[0].lead_ms, 400);
    }

    #[test]
    fn missed_and_unread_jobs_are_near_at_once() {
        let mut p = plan(&[("old", 1_000), ("bad", UNREAD)]);
        let (near, wait) = p.near(50_000, |_| LEAD_MS);
        assert_eq!(names(&near), ["bad", "old"]);
        assert_eq!(wait, i64::MAX);
    }
}
