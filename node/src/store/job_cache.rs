//! Decoded job records for the 9P tree, kept while the state machine has
//! applied nothing new. Reading one job file takes four requests (walk,
//! open, read, clunk) and loads the job four times (the walk's two steps,
//! the open and the read), mostly to check it still exists: reading and
//! decoding the record was 42 % of jobd's instructions on that path
//! (callgrind, one connection reading a job's `cmd`).
//!
//! Every write to the state (an apply, a snapshot install) bumps the
//! generation *after* it is in RocksDB; a record is served from here only
//! while the generation it was read under is still current. A reader takes
//! the generation *before* it reads the record, so a write racing the read
//! can only make the entry look older than it is (a miss), never newer.
//! Absent jobs are not kept; the cache is emptied when it reaches its bound.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::state::{Job, KvError};

/// Jobs kept at most (a few hundred bytes each).
const MAX_JOBS: usize = 4096;

#[derive(Default)]
pub struct JobCache {
    generation: AtomicU64,
    jobs: Mutex<HashMap<String, (u64, Arc<Job>)>>,
}

impl JobCache {
    /// The state changed: every kept record is out of date.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The job `name`, from here while current, otherwise from `load`.
    pub fn get(&self, name: &str, load: impl FnOnce() -> Result<Option<Job>, KvError>) -> Result<Option<Arc<Job>>, KvError> {
        let generation = self.generation.load(Ordering::Acquire);
        let mut jobs = crate::lock::lock(&self.jobs);
        if let Some((g, job)) = jobs.get(name) {
            if *g == generation {
                return Ok(Some(job.clone()));
            }
        }
        // Not under the lock: other readers go on while this one decodes.
        drop(jobs);
        let Some(job) = load()?.map(Arc::new) else { return Ok(None) };
        jobs = crate::lock::lock(&self.jobs);
        if jobs.len() >= MAX_JOBS && !jobs.contains_key(name) {
            jobs.clear();
        }
        jobs.insert(name.to_owned(), (generation, job.clone()));
        Ok(Some(job))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn job(cmd: &str) -> Job {
        Job::new("a", 1, cmd, "@daily", 0)
    }

    #[test]
    fn a_job_is_loaded_once_until_the_state_changes() {
        let cache = JobCache::default();
        let loads = Cell::new(0);
        let load = |cmd: &'static str| {
            let loads = &loads;
            move || {
                loads.set(loads.get() + 1);
                Ok(Some(job(cmd)))
            }
        };
        assert_eq!(cache.get("a", load("old")).unwrap().unwrap().cmd, "old");
        assert_eq!(cache.get("a", load("ignored")).unwrap().unwrap().cmd, "old");
        assert_eq!(loads.get(), 1);
        cache.changed();
        assert_eq!(cache.get("a", load("new")).unwrap().unwrap().cmd, "new");
        assert_eq!(loads.get(), 2);
    }

    #[test]
    fn an_absent_job_is_not_kept_and_errors_pass_through() {
        let cache = JobCache::default();
        assert!(cache.get("a", || Ok(None)).unwrap().is_none());
        assert_eq!(cache.get("a", || Ok(Some(job("x")))).unwrap().unwrap().cmd, "x");
        cache.changed();
        assert!(cache.get("a", || Err(KvError::Read("disk".into()))).is_err());
        assert!(cache.get("a", || Ok(None)).unwrap().is_none(), "a deleted job is gone once the state changed");
    }

    #[test]
    fn the_cache_stays_within_its_bound() {
        let cache = JobCache::default();
        for i in 0..MAX_JOBS * 2 + 1 {
            cache.get(&format!("j{i}"), || Ok(Some(job("x")))).unwrap();
        }
        assert!(cache.jobs.lock().unwrap().len() <= MAX_JOBS);
    }
}
