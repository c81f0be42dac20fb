//! Which jobs the state machine has written since the scheduler last
//! asked, so the scheduler reads again only those (and the ones whose time
//! is near) instead of every started job ten times a second: with 10,000
//! started jobs that reading and decoding was a steady half of a core on
//! the leader, in a herd's busiest seconds too (`docs/BENCHMARKS.md` §8).
//!
//! An apply marks the names it wrote *after* its batch is in RocksDB, so
//! a reader that takes the marks and then reads the job sees that write or
//! a later one (whose mark it takes next time): a change can be read twice,
//! never missed. A snapshot install changes everything.

use std::collections::HashSet;
use std::sync::Mutex;

/// Past this many distinct names nobody has taken (a follower's, say),
/// the set is replaced by `All`: the memory stays bounded.
const MAX_NAMES: usize = 100_000;

/// What changed since the last `take`.
#[derive(Debug, PartialEq, Eq)]
pub enum Changed {
    /// Anything may have: read every job again.
    All,
    Jobs(HashSet<String>),
}

pub struct JobChanges {
    inner: Mutex<Changed>,
}

impl Default for JobChanges {
    /// Nobody has read anything yet.
    fn default() -> Self {
        JobChanges { inner: Mutex::new(Changed::All) }
    }
}

impl JobChanges {
    /// These jobs' records were written (their batch is applied).
    pub fn wrote(&self, names: impl IntoIterator<Item = String>) {
        let mut inner = crate::lock::lock(&self.inner);
        if let Changed::Jobs(set) = &mut *inner {
            set.extend(names);
            if set.len() > MAX_NAMES {
                *inner = Changed::All;
            }
        }
    }

    /// The whole state was replaced.
    pub fn everything(&self) {
        *crate::lock::lock(&self.inner) = Changed::All;
    }

    /// What changed since the last call; from now on, nothing.
    pub fn take(&self) -> Changed {
        std::mem::replace(&mut *crate::lock::lock(&self.inner), Changed::Jobs(HashSet::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Changed {
        Changed::Jobs(n.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn everything_at_first_then_what_was_written() {
        let c = JobChanges::default();
        c.wrote(["a".to_string()]);
        assert_eq!(c.take(), Changed::All);
        assert_eq!(c.take(), names(&[]));
        c.wrote(["a".to_string(), "b".to_string()]);
        c.wrote(["a".to_string()]);
        assert_eq!(c.take(), names(&["a", "b"]));
        c.everything();
        c.wrote(["c".to_string()]);
        assert_eq!(c.take(), Changed::All);
    }

    #[test]
    fn too_many_names_become_all() {
        let c = JobChanges::default();
        c.take();
        c.wrote((0..=MAX_NAMES).map(|i| i.to_string()));
        assert_eq!(c.take(), Changed::All);
    }
}
