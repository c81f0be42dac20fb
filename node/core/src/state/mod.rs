//! The state machine's logic: a deterministic function of (state, command)
//! that reads and writes keys through [`Kv`] and does no other I/O. The
//! RocksDB adapter (`store/state_machine.rs`) runs it inside one write
//! batch per apply; tests run it on a `BTreeMap`.
//!
//! Keys are namespaced byte strings: `job/NAME`, `node/ID`, and per job
//! incarnation `log/INC/OFFSET` (`log.rs`) and `run/INC/RUNID` (`run.rs`),
//! the cluster's `event/OFFSET` (`events.rs`) and `notify/SEQ` (`notify.rs`),
//! numbers big-endian so they sort.

pub mod chain;
pub mod env;
pub mod labels;
pub mod events;
pub mod limits;
pub mod lines;
pub mod log;
pub mod notify;
pub mod retry;
pub mod run;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::command::{Command, Response};

/// Reads of the state.
pub trait KvRead {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError>;
}

/// A store that can also find the record at or before a key: a reader's
/// view of the applied state (a log read seeks to the line holding its
/// offset instead of walking from the oldest kept line).
pub trait KvSeek: KvRead {
    /// The key of the last record at or before `key` whose key starts
    /// with `prefix`, if any.
    fn key_at_or_before(&self, key: &[u8], prefix: &[u8]) -> Result<Option<Vec<u8>>, KvError>;
}

/// A key-value view of the state; reads see this apply's own writes.
pub trait Kv: KvRead {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>);
    fn delete(&mut self, key: Vec<u8>);
}

/// The store under the state machine failed, or holds something that does
/// not decode: the node must stop, not guess.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("reading the state machine: {0}")]
    Read(String),
    #[error("state machine record {key:?} does not decode: {reason}")]
    Corrupt { key: String, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub name: String,
    /// The log index that created this job (`take_id`): a job deleted and
    /// created again under the same name is a different incarnation.
    pub incarnation: u64,
    pub cmd: String,
    pub schedule: String,
    pub started: bool,
    /// When the job was last started, or its schedule changed while started:
    /// scheduled times at or before this are not "missed".
    pub armed_at_ms: Option<i64>,
    pub created_at_ms: i64,
    /// IANA time zone the schedule and the log's timestamps are read in.
    #[serde(default = "utc")]
    pub tz: String,
    /// The log's logical offsets: the first byte still kept, and the end.
    #[serde(default)]
    pub log_start: u64,
    #[serde(default)]
    pub log_end: u64,
    /// The latest scheduled time a fire was accepted for.
    #[serde(default)]
    pub last_accepted_ms: Option<i64>,
    /// Ids of the runs kept, oldest first.
    #[serde(default)]
    pub recent_runs: Vec<u64>,
    #[serde(default)]
    pub runs: u64,
    #[serde(default)]
    pub failures: u64,
    /// Scheduled times passed over by the catch-up policy.
    #[serde(default)]
    pub skipped: u64,
    #[serde(default)]
    pub last_start_ms: Option<i64>,
    #[serde(default)]
    pub last_status: Option<String>,
    #[serde(default)]
    pub overlap: crate::command::Overlap,
    #[serde(default)]
    pub catchup: crate::command::Catchup,
    #[serde(default)]
    pub catchup_window_ms: Option<i64>,
    #[serde(default)]
    pub timeout_ms: Option<i64>,
    /// How late an accepted run may still begin (None: the cluster's
    /// `limit deadline`). Each run keeps the value it was accepted with.
    #[serde(default)]
    pub deadline_ms: Option<i64>,
    /// Each time is moved later by a fixed offset in `[0, spread)` taken
    /// from the name (`times.rs`); None: no spread.
    #[serde(default)]
    pub spread_ms: Option<i64>,
    /// `retry N [BACKOFF]`; None: off.
    #[serde(default)]
    pub retry: Option<crate::command::Retry>,
    #[serde(default)]
    pub onlost: crate::command::OnLost,
    /// The next attempt of a time whose run failed, while one is due
    /// (`retry.rs`).
    #[serde(default)]
    pub retry_pending: Option<retry::PendingRetry>,
    /// `after` rules: the jobs whose runs' ends start this one (`chain.rs`).
    #[serde(default)]
    pub after: Vec<crate::command::After>,
    /// The jobs with an `after` rule naming this one.
    #[serde(default)]
    pub followers: Vec<String>,
    /// Whom its run ends are POSTed to (`notify.rs`). Left out of the
    /// record while unset (as the two below), so the jobs that never use
    /// webhooks keep the bytes earlier versions wrote.
    #[serde(default, skip_serializing_if = "crate::command::NotifyRule::is_default")]
    pub notify: crate::command::NotifyRule,
    /// Its deliveries not yet answered 2xx.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub notify_pending: u64,
    /// The last failed attempt's error, until a delivery succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_error: Option<String>,
    /// `KEY=VALUE` pairs added to each run's environment (`env.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn utc() -> String {
    "UTC".into()
}

impl Job {
    /// A new, stopped job with no history and the default policies.
    pub fn new(name: &str, incarnation: u64, cmd: &str, schedule: &str, created_at_ms: i64) -> Job {
        Job {
            name: name.into(),
            incarnation,
            cmd: cmd.into(),
            schedule: schedule.into(),
            started: false,
            armed_at_ms: None,
            created_at_ms,
            tz: utc(),
            log_start: 0,
            log_end: 0,
            last_accepted_ms: None,
            recent_runs: vec![],
            runs: 0,
            failures: 0,
            skipped: 0,
            last_start_ms: None,
            last_status: None,
            overlap: Default::default(),
            catchup: Default::default(),
            catchup_window_ms: None,
            timeout_ms: None,
            deadline_ms: None,
            spread_ms: None,
            retry: None,
            onlost: Default::default(),
            retry_pending: None,
            after: vec![],
            followers: vec![],
            notify: Default::default(),
            notify_pending: 0,
            notify_error: None,
            env: vec![],
        }
    }
}

const KEY_JOB_COUNT: &[u8] = b"\x00jobs";

fn job_count(kv: &impl KvRead) -> Result<u64, KvError> {
    Ok(kv
        .get(KEY_JOB_COUNT)?
        .map(|v| decode::<u64>(KEY_JOB_COUNT, &v))
        .transpose()?
        .unwrap_or(0))
}

fn set_job_count(kv: &mut impl Kv, n: u64) {
    kv.put(KEY_JOB_COUNT.to_vec(), encode(&n));
}

/// The lowest id not taken yet.
const KEY_NEXT_ID: &[u8] = b"\x00next_id";

/// A new id for a job incarnation or a run: the log index of the entry
/// that makes it, so ids are unique and grow. When one entry makes several
/// (a `Batch`), the later ones take the indexes after it, and the entries
/// after that start above them.
pub(crate) fn take_id(kv: &mut impl Kv, index: u64) -> Result<u64, KvError> {
    let next = kv
        .get(KEY_NEXT_ID)?
        .map(|v| decode::<u64>(KEY_NEXT_ID, &v))
        .transpose()?
        .unwrap_or(0);
    let id = index.max(next);
    kv.put(KEY_NEXT_ID.to_vec(), encode(&(id + 1)));
    Ok(id)
}

/// What the cluster knows of a node process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub fs_addr: String,
    pub incarnation: u64,
    /// `--labels`, sorted by key (left out of the record when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<(String, String)>,
}

pub fn load_node(kv: &impl KvRead, id: u64) -> Result<Option<NodeInfo>, KvError> {
    let key = node_key(id);
    kv.get(&key)?.map(|v| decode(&key, &v)).transpose()
}

pub fn job_key(name: &str) -> Vec<u8> {
    [b"job/".as_slice(), name.as_bytes()].concat()
}

pub fn node_key(id: u64) -> Vec<u8> {
    [b"node/".as_slice(), &id.to_be_bytes()].concat()
}

pub const JOB_PREFIX: &[u8] = b"job/";
/// `started/NAME` exists while the job is started: the scheduler reads
/// only these, so stopped jobs cost it nothing.
pub const STARTED_PREFIX: &[u8] = b"started/";

pub fn started_key(name: &str) -> Vec<u8> {
    [STARTED_PREFIX, name.as_bytes()].concat()
}
pub const NODE_PREFIX: &[u8] = b"node/";

pub fn decode<T: for<'de> Deserialize<'de>>(key: &[u8], value: &[u8]) -> Result<T, KvError> {
    serde_json::from_slice(value).map_err(|e| KvError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing these plain structs to JSON cannot fail (no maps with
    // non-string keys, no custom serializers).
    serde_json::to_vec(v).expect("state records serialize")
}

pub(crate) fn store_job(kv: &mut impl Kv, job: &Job) {
    kv.put(job_key(&job.name), encode(job));
}

/// A change of expression or time zone while started: times before it are
/// not "missed".
fn rearm(job: &mut Job, at_ms: i64) {
    if job.started {
        job.armed_at_ms = Some(at_ms);
    }
}

pub fn load_job(kv: &impl KvRead, name: &str) -> Result<Option<Job>, KvError> {
    let key = job_key(name);
    kv.get(&key)?.map(|v| decode(&key, &v)).transpose()
}

/// Runs `f` on the job if it is still `incarnation`, then stores it.
fn with_incarnation<K: Kv>(
    kv: &mut K,
    name: &str,
    incarnation: u64,
    f: impl FnOnce(&mut K, &mut Job) -> Result<Response, KvError>,
) -> Result<Response, KvError> {
    match load_job(kv, name)? {
        Some(mut job) if job.incarnation == incarnation => {
            let r = f(kv, &mut job)?;
            store_job(kv, &job);
            Ok(r)
        }
        Some(_) => Ok(Response::Rejected {
            reason: format!("job {name} was deleted and created again"),
        }),
        None => Ok(Response::NoSuchJob),
    }
}

/// Applies one command committed at log `index` (a batch: each of its
/// commands, in order).
pub fn apply(kv: &mut impl Kv, index: u64, cmd: &Command) -> Result<Response, KvError> {
    let Command::Batch(cmds) = cmd else {
        return apply_one(kv, index, cmd);
    };
    let mut answers = Vec::with_capacity(cmds.len());
    for c in cmds {
        answers.push(apply_one(kv, index, c)?);
    }
    Ok(Response::Batch(answers))
}

fn apply_one(kv: &mut impl Kv, index: u64, cmd: &Command) -> Result<Response, KvError> {
    use Command::*;
    let resp = match cmd {
        AnnounceNode {
            id,
            fs_addr,
            incarnation,
        } => {
            // Its labels stay until its `NodeLabels` says otherwise.
            let labels = load_node(kv, *id)?.map(|n| n.labels).unwrap_or_default();
            let info = NodeInfo {
                fs_addr: fs_addr.clone(),
                incarnation: *incarnation,
                labels,
            };
            kv.put(node_key(*id), encode(&info));
            Response::Done
        }
        NodeLabels { id, labels } => {
            let Some(mut info) = load_node(kv, *id)? else {
                return Ok(Response::Rejected { reason: format!("node {id} has not announced itself") });
            };
            if let Err(reason) = labels::check(labels) {
                return Ok(Response::Rejected { reason });
            }
            info.labels = labels.clone();
            kv.put(node_key(*id), encode(&info));
            Response::Done
        }
        CreateJob {
            name,
            schedule,
            cmd,
            at_ms,
        } => {
            if load_job(kv, name)?.is_some() {
                return Ok(Response::AlreadyExists);
            }
            let count = job_count(kv)?;
            let max = limits::load(kv)?.max_jobs;
            if count >= max {
                return Ok(Response::Rejected {
                    reason: format!(
                        "the cluster holds {max} jobs, its limit (max-jobs); delete some first"
                    ),
                });
            }
            set_job_count(kv, count + 1);
            let incarnation = take_id(kv, index)?;
            let job = Job::new(name, incarnation, cmd, schedule, *at_ms);
            store_job(kv, &job);
            Response::Created { incarnation }
        }
        StartJob { name, at_ms } => {
            let Some(mut job) = load_job(kv, name)? else {
                return Ok(Response::NoSuchJob);
            };
            // A job with `after` rules needs no schedule: it may run only
            // after others.
            if job.cmd.is_empty() || job.schedule.is_empty() && job.after.is_empty() {
                let what = if job.cmd.is_empty() {
                    "command"
                } else {
                    "schedule (or after rule)"
                };
                return Ok(Response::Rejected {
                    reason: format!("job {name} has no {what}; write it before start"),
                });
            }
            if !job.started {
                job.started = true;
                kv.put(started_key(name), vec![]);
                job.armed_at_ms = Some(*at_ms);
                store_job(kv, &job);
            }
            Response::Done
        }
        StopJob { name, at_ms } => {
            let Some(mut job) = load_job(kv, name)? else {
                return Ok(Response::NoSuchJob);
            };
            if job.started {
                job.started = false;
                kv.delete(started_key(name));
                run::stop_pending(kv, &job)?;
                retry::cancel(kv, index, &mut job, *at_ms, "the job was stopped")?;
                store_job(kv, &job);
            }
            Response::Done
        }
        DeleteJob { name } => {
            let Some(mut job) = load_job(kv, name)? else {
                return Ok(Response::NoSuchJob);
            };
            if !job.followers.is_empty() {
                let names = job.followers.join(", ");
                return Ok(Response::Rejected {
                    reason: format!("job {name} is followed by {names}; write `after off` (or delete) there first"),
                });
            }
            for rule in &job.after {
                chain::unlink(kv, &rule.job, name)?;
            }
            log::clear(kv, &mut job)?;
            for id in &job.recent_runs {
                kv.delete(run::run_key(job.incarnation, *id));
                kv.delete(run::active_key(job.incarnation, *id));
            }
            kv.delete(job_key(name));
            kv.delete(started_key(name));
            let count = job_count(kv)?;
            set_job_count(kv, count.saturating_sub(1));
            Response::Done
        }
        SetCmd { name, cmd } => {
            let Some(mut job) = load_job(kv, name)? else {
                return Ok(Response::NoSuchJob);
            };
            job.cmd = cmd.clone();
            store_job(kv, &job);
            Response::Done
        }
        SetSchedule {
            name,
            schedule,
            at_ms,
        } => {
            let Some(mut job) = load_job(kv, name)? else {
                return Ok(Response::NoSuchJob);
            };
            job.schedule = schedule.clone();
            rearm(&mut job, *at_ms);
            store_job(kv, &job);
            Response::Done
        }
        Fire {
            name,
            incarnation,
            scheduled_ms,
            trigger,
            skipped,
            fence,
            at_ms,
            claims,
        } => with_incarnation(kv, name, *incarnation, |kv, job| {
            let at = run::FireAt {
                scheduled_ms: *scheduled_ms,
                proposed_ms: *at_ms,
                trigger: *trigger,
                skipped: *skipped,
                claims: *claims,
            };
            run::fire(kv, index, job, at, *fence)
        })?,
        RunNow {
            name,
            incarnation,
            fence,
            at_ms,
            force,
            claims,
        } => with_incarnation(kv, name, *incarnation, |kv, job| {
            run::run_now(kv, index, job, *fence, *at_ms, *force, *claims)
        })?,
        SkipTimes {
            name,
            incarnation,
            until_ms,
            count,
            reason,
            fence,
        } => with_incarnation(kv, name, *incarnation, |kv, job| {
            run::skip_times(kv, job, *until_ms, *count, reason, *fence)
        })?,
        KillRuns {
            name,
            incarnation,
            at_ms,
        } => with_incarnation(kv, name, *incarnation, |kv, job| {
            retry::cancel(kv, index, job, *at_ms, "kill")?;
            run::cancel_all(kv, job)
        })?,
        FireRetry {
            name,
            incarnation,
            scheduled_ms,
            attempt,
            fence,
            at_ms,
        } => {
            let at = retry::RetryAt {
                scheduled_ms: *scheduled_ms,
                attempt: *attempt,
                proposed_ms: *at_ms,
            };
            with_incarnation(kv, name, *incarnation, |kv, job| {
                retry::fire(kv, index, job, at, *fence)
            })?
        }
        SetPolicy {
            name,
            policy,
            at_ms,
        } => {
            let Some(mut job) = load_job(kv, name)? else {
                return Ok(Response::NoSuchJob);
            };
            match policy {
                crate::command::Policy::Overlap(o) => job.overlap = *o,
                crate::command::Policy::Catchup { mode, window_ms } => {
                    job.catchup = *mode;
                    job.catchup_window_ms = *window_ms;
                }
                crate::command::Policy::Timeout(t) => job.timeout_ms = *t,
                crate::command::Policy::Deadline(d) => job.deadline_ms = *d,
                crate::command::Policy::Spread { spread_ms, at_ms } => {
                    // Like a change of expression: times before it are not missed.
                    job.spread_ms = *spread_ms;
                    rearm(&mut job, *at_ms);
                }
                crate::command::Policy::Retry(r) => job.retry = *r,
                crate::command::Policy::OnLost(o) => job.onlost = *o,
            }
            retry::still_allowed(kv, index, &mut job, *at_ms)?;
            store_job(kv, &job);
            Response::Done
        }
        Begin {
            name,
            incarnation,
            run_id,
            fence,
        } => with_incarnation(kv, name, *incarnation, |kv, job| {
            run::claim(kv, job, *run_id, run::Claim::Begin(*fence))
        })?,
        TakeOver {
            name,
            incarnation,
            run_id,
            fence,
            at_ms,
        } => {
            let claim = run::Claim::TakeOver {
                fence: *fence,
                at_ms: *at_ms,
            };
            with_incarnation(kv, name, *incarnation, |kv, job| {
                run::claim(kv, job, *run_id, claim)
            })?
        }
        Release {
            name,
            incarnation,
            run_id,
            fence,
            why,
            at_ms,
        } => with_incarnation(kv, name, *incarnation, |kv, job| {
            run::release(kv, job, *run_id, *fence, *why, *at_ms)
        })?,
        RunStarted {
            name,
            incarnation,
            run_id,
            at_ms,
            fence,
        } => with_incarnation(kv, name, *incarnation, |kv, job| {
            run::started(kv, job, *run_id, *at_ms, *fence)
        })?,
        Output {
            name,
            incarnation,
            run_id,
            seq,
            lines,
            at_ms,
            fence,
        } => with_incarnation(kv, name, *incarnation, |kv, job| {
            run::output(kv, job, *run_id, *seq, lines, *at_ms, *fence)
        })?,
        RunEnded {
            name,
            incarnation,
            run_id,
            status,
            at_ms,
            fence,
        } => with_incarnation(kv, name, *incarnation, |kv, job| {
            run::ended(kv, index, job, *run_id, status, *at_ms, *fence)
        })?,
        SetLimit { name, value } => {
            let mut l = limits::load(kv)?;
            match l.set(name, *value) {
                Ok(()) => {
                    limits::store(kv, &l);
                    Response::Done
                }
                Err(reason) => Response::Rejected { reason },
            }
        }
        Follow { name, after } => {
            let Some(mut job) = load_job(kv, name)? else {
                return Ok(Response::NoSuchJob);
            };
            let r = chain::follow(kv, &mut job, after.as_ref())?;
            if r == Response::Done {
                store_job(kv, &job);
            }
            r
        }
        SetEnv { name, env: pairs } => {
            let Some(mut job) = load_job(kv, name)? else {
                return Ok(Response::NoSuchJob);
            };
            if let Err(reason) = env::check(pairs) {
                return Ok(Response::Rejected { reason });
            }
            job.env = pairs.clone();
            store_job(kv, &job);
            Response::Done
        }
        SetNotify { name, rule } => notify::set(kv, name.as_deref(), rule)?,
        Notified { seq, error, at_ms } => notify::notified(kv, *seq, error.as_deref(), *at_ms)?,
        SetTz { name, tz, at_ms } => {
            let Some(mut job) = load_job(kv, name)? else {
                return Ok(Response::NoSuchJob);
            };
            job.tz = tz.clone();
            rearm(&mut job, *at_ms);
            store_job(kv, &job);
            Response::Done
        }
        Batch(_) => Response::Rejected {
            reason: "a batch inside a batch".into(),
        },
    };
    Ok(resp)
}

/// An in-memory [`Kv`], for tests and for reading snapshots.
impl KvRead for BTreeMap<Vec<u8>, Vec<u8>> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        Ok(BTreeMap::get(self, key).cloned())
    }
}

impl KvSeek for BTreeMap<Vec<u8>, Vec<u8>> {
    fn key_at_or_before(&self, key: &[u8], prefix: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self
            .range::<[u8], _>((std::ops::Bound::Unbounded, std::ops::Bound::Included(key)))
            .next_back()
            .map(|(k, _)| k.clone())
            .filter(|k| k.starts_with(prefix)))
    }
}

impl Kv for BTreeMap<Vec<u8>, Vec<u8>> {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.insert(key, value);
    }
    fn delete(&mut self, key: Vec<u8>) {
        self.remove(&key);
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod job_tests {
    use super::*;

    fn create(name: &str) -> Command {
        Command::CreateJob {
            name: name.into(),
            schedule: "* * * * *".into(),
            cmd: "true".into(),
            at_ms: 1,
        }
    }

    #[test]
    fn create_start_stop_delete() {
        let mut kv = BTreeMap::new();
        assert_eq!(
            apply(&mut kv, 5, &create("a")).unwrap(),
            Response::Created { incarnation: 5 }
        );
        assert_eq!(
            apply(&mut kv, 6, &create("a")).unwrap(),
            Response::AlreadyExists
        );
        let job = load_job(&kv, "a").unwrap().unwrap();
        assert!(!job.started, "new jobs are stopped");
        apply(
            &mut kv,
            7,
            &Command::StartJob {
                name: "a".into(),
                at_ms: 100,
            },
        )
        .unwrap();
        let job = load_job(&kv, "a").unwrap().unwrap();
        assert_eq!((job.started, job.armed_at_ms), (true, Some(100)));
        // Starting again does not move armed-at.
        apply(
            &mut kv,
            8,
            &Command::StartJob {
                name: "a".into(),
                at_ms: 200,
            },
        )
        .unwrap();
        assert_eq!(load_job(&kv, "a").unwrap().unwrap().armed_at_ms, Some(100));
        apply(
            &mut kv,
            9,
            &Command::StopJob {
                name: "a".into(),
                at_ms: 0,
            },
        )
        .unwrap();
        assert!(!load_job(&kv, "a").unwrap().unwrap().started);
        assert_eq!(
            apply(&mut kv, 10, &Command::DeleteJob { name: "a".into() }).unwrap(),
            Response::Done
        );
        assert_eq!(
            apply(
                &mut kv,
                11,
                &Command::StopJob {
                    name: "a".into(),
                    at_ms: 0
                }
            )
            .unwrap(),
            Response::NoSuchJob
        );
        // Re-created under the same name: a new incarnation.
        assert_eq!(
            apply(&mut kv, 12, &create("a")).unwrap(),
            Response::Created { incarnation: 12 }
        );
    }

    #[test]
    fn start_needs_command_and_schedule() {
        let mut kv = BTreeMap::new();
        let empty = Command::CreateJob {
            name: "m".into(),
            schedule: String::new(),
            cmd: String::new(),
            at_ms: 0,
        };
        apply(&mut kv, 1, &empty).unwrap();
        let r = apply(
            &mut kv,
            2,
            &Command::StartJob {
                name: "m".into(),
                at_ms: 0,
            },
        )
        .unwrap();
        assert!(matches!(r, Response::Rejected { .. }), "{r:?}");
        assert!(!load_job(&kv, "m").unwrap().unwrap().started);
    }

    #[test]
    fn schedule_change_rearms_a_started_job() {
        let mut kv = BTreeMap::new();
        apply(&mut kv, 1, &create("a")).unwrap();
        apply(
            &mut kv,
            2,
            &Command::StartJob {
                name: "a".into(),
                at_ms: 10,
            },
        )
        .unwrap();
        apply(
            &mut kv,
            3,
            &Command::SetSchedule {
                name: "a".into(),
                schedule: "@hourly".into(),
                at_ms: 50,
            },
        )
        .unwrap();
        assert_eq!(load_job(&kv, "a").unwrap().unwrap().armed_at_ms, Some(50));
    }
}
