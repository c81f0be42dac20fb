//! The jobd file tree, served by every node through `ninep`:
//!
//! ```text
//! /clone  /ctl  /events  /jobs/NAME/{ctl,cmd,schedule,log,runs,wait}
//! ```
//!
//! Reads serve this node's applied state; every change is a command
//! through the write path (`write.rs`), acted on at Twrite and
//! answered once applied here.

mod content;
pub mod errors;
mod wait;
pub use jobd_core::input;
pub mod path;

use std::sync::{Arc, Mutex};

use ninep::error::errno;
use ninep::{Error, Filesystem, OpenMode, Qid, Result, Stat, DMDIR};

use crate::clock::{now_ms, PeerClocks};
use crate::command::{Command, Response};
use crate::state::{self, Job};
use crate::store::state_machine::StateMachine;
use crate::types::Raft;
use crate::write::Writer;
use input::{ClusterVerb, Verb};
use path::{Entry, JobFile};

/// Largest single write accepted, by default (`--max-write`).
pub const MAX_WRITE: usize = 64 << 10;

/// Per-fid state: what a clone write created, and the content a read at
/// offset 0 generated (later offsets read from it, so a file never tears
/// between two reads of one `cat`).
#[derive(Default)]
struct FidState {
    created: Option<String>,
    content: Option<Vec<u8>>,
    /// For `log` and `events`: how far this fid's offsets lag the logical
    /// ones, after a read below the oldest kept line was served from that line.
    log_shift: u64,
    /// For `wait`: what the job was when this fid was opened.
    waiting: Option<wait::Opened>,
}

pub struct Fid {
    entry: Entry,
    state: Arc<Mutex<FidState>>,
}

/// A cloned fid (Twalk with no names) starts with no per-open state.
impl Clone for Fid {
    fn clone(&self) -> Fid {
        Fid::new(self.entry.clone())
    }
}

impl Fid {
    fn new(entry: Entry) -> Fid {
        Fid {
            entry,
            state: Arc::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FidState> {
        crate::lock::lock(&self.state)
    }
}

pub struct JobFs {
    /// Refuse every change (EROFS): a tree for monitoring mounts.
    pub read_only: bool,
    /// Largest single write accepted, in bytes.
    pub max_write: usize,
    /// Confirm with the leader before serving a read (a job lookup, a read
    /// at offset 0, a directory listing), instead of serving this node's
    /// applied state.
    pub linearizable: bool,
    pub id: u64,
    pub incarnation: u64,
    pub executor: crate::sched::executor::Executor,
    pub raft: Raft,
    pub sm: StateMachine,
    pub db: Arc<rocksdb::DB>,
    /// The node's `--dbdir`, where backups go.
    pub dbdir: std::path::PathBuf,
    pub clocks: Arc<PeerClocks>,
    pub writer: Writer,
}

impl JobFs {
    /// The job a fid names, if that incarnation still exists.
    fn job(&self, name: &str, incarnation: u64) -> Result<Arc<Job>> {
        match self.sm.job(name).map_err(errors::from_store)? {
            Some(j) if j.incarnation == incarnation => Ok(j),
            Some(_) => Err(Error::new(
                errno::ENOENT,
                format!("job {name} was deleted (a new one has its name)"),
            )),
            None => Err(errors::no_job(name)),
        }
    }

    fn writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::new(
                errno::EROFS,
                "this listener is read-only (--read-only)",
            ));
        }
        Ok(())
    }

    async fn linearize(&self) -> Result<()> {
        if self.linearizable {
            self.writer.linearize().await.map_err(errors::from_write)?;
        }
        Ok(())
    }

    async fn write_cmd(&self, cmd: Command, name: &str) -> Result<Response> {
        let resp = self.writer.write(cmd).await.map_err(errors::from_write)?;
        errors::check(resp, name)
    }

    fn stat_of(&self, entry: &Entry) -> Result<Stat> {
        let job = match entry {
            Entry::Job { name, incarnation }
            | Entry::File {
                name, incarnation, ..
            } => Some(self.job(name, *incarnation)?),
            _ => None,
        };
        let mut stat = stat_from(entry, job.as_deref());
        if *entry == Entry::Events {
            stat.length = state::events::span(&self.sm).map_err(errors::from_store)?.end;
        }
        Ok(stat)
    }

    fn cluster_status(&self) -> Result<content::ClusterStatus> {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let members: Vec<u64> = membership.voter_ids().collect();
        let learners: Vec<u64> = membership.learner_ids().collect();
        let leader_fsaddr = match m.current_leader {
            Some(l) => state::load_node(&self.sm, l)
                .map_err(errors::from_store)?
                .map(|n| n.fs_addr),
            None => None,
        };
        let (applied, digest) = self.sm.digest().map_err(errors::from_store)?;
        let commit = crate::store::committed_index(&self.db)
            .map_err(|e| Error::new(errno::EIO, e.to_string()))?;
        let labels = members
            .iter()
            .chain(&learners)
            .map(|id| Ok((*id, state::load_node(&self.sm, *id)?.map(|n| n.labels).unwrap_or_default())))
            .collect::<std::result::Result<_, state::KvError>>()
            .map_err(errors::from_store)?;
        Ok(content::ClusterStatus {
            id: self.id,
            leader: m.current_leader,
            leader_fsaddr,
            term: m.current_term,
            members,
            learners,
            commit: commit.max(applied),
            applied,
            digest,
            clock_skew_ms: self.clocks.skew_ms(),
            peers: self.clocks.peers(),
            snapshot: m.snapshot.map_or(0, |l| l.index),
            purged: m.purged.map_or(0, |l| l.index),
            backup: crate::store::backup::latest(&self.dbdir).map(|p| p.display().to_string()),
            limits: state::limits::load(&self.sm).map_err(errors::from_store)?,
            notify: state::notify::load_state(&self.sm).map_err(errors::from_store)?,
            labels,
            runs: self.executor.counts(),
        })
    }

    /// The bytes a generated file reads as right now.
    fn generate(&self, fid: &Fid) -> Result<Vec<u8>> {
        let now = now_ms();
        let text = match &fid.entry {
            Entry::Clone => fid
                .state()
                .created
                .as_ref()
                .map(|n| format!("{n}\n"))
                .unwrap_or_default(),
            Entry::Ctl => content::cluster_ctl(&self.cluster_status()?),
            Entry::Events => return Err(Error::new(errno::EIO, "events are read by offset")),
            Entry::File {
                name,
                incarnation,
                file,
            } => {
                let job = self.job(name, *incarnation)?;
                match file {
                    JobFile::Ctl => content::job_ctl(&job, now),
                    JobFile::Cmd => content::cmd(&job),
                    JobFile::Env => state::env::text(&job.env),
                    JobFile::Schedule => content::schedule(&job, now),
                    JobFile::Runs => {
                        let mut runs = vec![];
                        for id in &job.recent_runs {
                            if let Some(r) = state::run::load_run(&self.sm, job.incarnation, *id)
                                .map_err(errors::from_store)?
                            {
                                runs.push(r);
                            }
                        }
                        content::runs(&runs)
                    }
                    JobFile::Log | JobFile::Wait => {
                        return Err(Error::new(errno::EIO, "read by offset, not generated"))
                    }
                }
            }
            _ => return Err(Error::new(errno::EISDIR, "is a directory")),
        };
        Ok(text.into_bytes())
    }

    async fn write_job_ctl(&self, name: &str, incarnation: u64, data: &[u8]) -> Result<()> {
        let verbs = input::parse_ctl(data).map_err(errors::invalid)?;
        for verb in verbs {
            let job = self.job(name, incarnation)?;
            let at_ms = now_ms();
            let cmd = match verb {
                Verb::Spread(spread_ms) => {
                    if let Some(spread) = spread_ms {
                        crate::times::check_spread(spread, &job.schedule, &job.tz, at_ms)
                            .map_err(errors::invalid)?;
                    }
                    Command::SetPolicy {
                        name: name.into(),
                        policy: crate::command::Policy::Spread { spread_ms, at_ms },
                        at_ms,
                    }
                }
                Verb::Start => Command::StartJob {
                    name: name.into(),
                    at_ms,
                },
                Verb::Stop => Command::StopJob {
                    name: name.into(),
                    at_ms,
                },
                Verb::Delete => Command::DeleteJob { name: name.into() },
                Verb::Tz(tz) => {
                    // A zone can shorten the period (a day is 23 hours when
                    // the clocks go forward): the spread must still fit.
                    if let Some(spread) = job.spread_ms {
                        let why = |e: String| {
                            errors::invalid(format!(
                                "{e} in {tz}; set a shorter spread (or spread off) first"
                            ))
                        };
                        crate::times::check_spread(spread, &job.schedule, &tz, at_ms)
                            .map_err(why)?;
                    }
                    Command::SetTz {
                        name: name.into(),
                        tz,
                        at_ms,
                    }
                }
                Verb::Policy(policy) => Command::SetPolicy {
                    name: name.into(),
                    policy,
                    at_ms,
                },
                Verb::Notify(rule) => Command::SetNotify {
                    name: Some(name.into()),
                    rule,
                },
                Verb::After(after) => Command::Follow {
                    name: name.into(),
                    after,
                },
                Verb::Kill => Command::KillRuns {
                    name: name.into(),
                    incarnation,
                    at_ms,
                },
                Verb::Run { force } => {
                    // A manual run is carried out by the node that took it.
                    let fence =
                        crate::leadership::manual_run_fence(&self.raft, self.id, self.incarnation);
                    Command::RunNow {
                        name: name.into(),
                        incarnation,
                        fence,
                        at_ms,
                        force,
                        claims: true,
                    }
                }
            };
            let manual_fence = match &cmd {
                Command::RunNow { fence, .. } => Some(*fence),
                _ => None,
            };
            let resp = self.write_cmd(cmd, name).await?;
            if resp == Response::SkippedForOverlap {
                return Err(Error::new(
                    errno::EBUSY,
                    format!("job {name} is running and its overlap policy is skip; use run force"),
                ));
            }
            if let (Response::Accepted { run_id }, Some(fence)) = (resp, manual_fence) {
                let order = crate::sched::executor::RunOrder {
                    name: name.into(),
                    incarnation,
                    run_id,
                    scheduled_ms: at_ms,
                    trigger: crate::command::Trigger::Manual,
                    fence,
                    begin_at_ms: 0,
                    attempt: 1,
                    after_run: None,
                };
                if let Some(active) = self.executor.register(run_id) {
                    tokio::spawn(self.executor.clone().run(order, active));
                }
            }
        }
        Ok(())
    }

    /// Checkpoints this node's database once it has applied everything
    /// the leader had committed when asked (so the backup holds every write
    /// acknowledged before it, wherever it was made).
    async fn backup(&self) -> Result<()> {
        self.writer.linearize().await.map_err(errors::from_write)?;
        let applied = self
            .raft
            .metrics()
            .borrow()
            .last_applied
            .map_or(0, |l| l.index);
        let (db, dbdir, at_ms) = (self.db.clone(), self.dbdir.clone(), now_ms());
        let made = tokio::task::spawn_blocking(move || {
            crate::store::backup::checkpoint(&db, &dbdir, applied, at_ms)
        })
        .await
        .map_err(|e| Error::new(errno::EIO, format!("backup task failed: {e}")))?;
        let dir = made.map_err(|e| Error::new(errno::EIO, e.to_string()))?;
        tracing::info!(dir = %dir.display(), applied, "backup taken");
        Ok(())
    }

    async fn write_cluster_ctl(&self, data: &[u8]) -> Result<()> {
        for verb in input::parse_cluster_ctl(data).map_err(errors::invalid)? {
            let raft = self.raft.clone();
            match verb {
                ClusterVerb::Add { id, raft_addr } => {
                    let member = crate::types::Member { raft_addr };
                    self.change_membership("adding the learner and its catching up", async move {
                        raft.add_learner(id, member, true).await.map(drop)
                    })
                    .await?;
                }
                ClusterVerb::Promote { id } => {
                    self.change_membership("the membership change", async move {
                        raft.change_membership(
                            openraft::ChangeMembers::AddVoterIds([id].into()),
                            false,
                        )
                        .await
                        .map(drop)
                    })
                    .await?;
                }
                ClusterVerb::Remove { id } => {
                    self.change_membership("the membership change", async move {
                        raft.change_membership(
                            openraft::ChangeMembers::RemoveVoters([id].into()),
                            false,
                        )
                        .await?;
                        raft.change_membership(
                            openraft::ChangeMembers::RemoveNodes([id].into()),
                            false,
                        )
                        .await
                        .map(drop)
                    })
                    .await?;
                }
                ClusterVerb::Backup => self.backup().await?,
                ClusterVerb::Limit { name, value } => {
                    self.write_cmd(Command::SetLimit { name, value }, "")
                        .await?;
                }
                ClusterVerb::Notify(to) => {
                    let rule = to.map_or(crate::command::NotifyRule::Off, crate::command::NotifyRule::To);
                    self.write_cmd(Command::SetNotify { name: None, rule }, "").await?;
                }
            }
        }
        Ok(())
    }

    /// Carries out a membership change on a task of its own and answers
    /// within the write timeout, like every write. openraft waits for a
    /// membership entry to commit however long that takes (a leader that
    /// lost its quorum would leave the client waiting for good), and it
    /// proposes the second, uniform configuration of a change from the
    /// caller's future once the joint one commits: so the change is not
    /// dropped when the answer gives up, and completes if it can.
    /// One voter at a time, each through openraft's joint configuration:
    /// why the lease's quorums intersect across a change is in the
    /// README's "Firing".
    async fn change_membership(
        &self,
        what: &str,
        change: impl std::future::Future<Output = std::result::Result<(), crate::propose::RaftWriteError>>
            + Send
            + 'static,
    ) -> Result<()> {
        let bound = self.writer.timeout();
        match tokio::time::timeout(bound, tokio::spawn(change)).await {
            Err(_) => Err(Error::new(
                errno::ETIMEDOUT,
                format!(
                    "{what} did not finish within {} ms; it may still (see /ctl)",
                    bound.as_millis()
                ),
            )),
            Ok(Err(e)) => Err(Error::new(errno::EIO, format!("{what} failed: {e}"))),
            Ok(Ok(Err(e))) => Err(Error::new(
                errno::EAGAIN,
                format!("{e}; write membership commands to the leader's /ctl"),
            )),
            Ok(Ok(Ok(()))) => Ok(()),
        }
    }
}

/// A file read as lines at logical offsets (`state/lines.rs`).
enum Lines {
    Log(Arc<Job>),
    Events,
}

/// The stat of `entry`, from its job's record (`job`: needed for a job's
/// directory and files).
fn stat_from(entry: &Entry, job: Option<&Job>) -> Stat {
    let qid = entry.qid();
    let mtime = job.map_or(0, |j| secs(j.created_at_ms));
    let length = match (entry, job) {
        (
            Entry::File {
                file: JobFile::Log, ..
            },
            Some(j),
        ) => j.log_end,
        _ => 0,
    };
    let dir = if qid.is_dir() { DMDIR } else { 0 };
    Stat {
        qid,
        mode: dir | entry.perm(),
        atime: mtime,
        mtime,
        length,
        name: entry.name().to_string(),
        uid: "jobd".into(),
        gid: "jobd".into(),
        muid: "jobd".into(),
        ..Stat::default()
    }
}

fn secs(ms: i64) -> u32 {
    (ms / 1000).clamp(0, u32::MAX as i64) as u32
}

fn whole(offset: u64, what: &str) -> Result<()> {
    if offset != 0 {
        return Err(errors::invalid(format!(
            "writes to {what} must be whole (offset 0), not at offset {offset}"
        )));
    }
    Ok(())
}

impl Filesystem for JobFs {
    type Fid = Fid;

    /// The attach name is ignored: every client sees the same tree.
    async fn attach(&self, _uname: &str, _aname: &str) -> Result<(Fid, Qid)> {
        Ok((Fid::new(Entry::Root), Entry::Root.qid()))
    }

    async fn walk(&self, dir: &Fid, name: &str) -> Result<(Fid, Qid)> {
        let next = match (&dir.entry, name) {
            (n, "..") => n.parent(),
            (Entry::Root, "clone") => Entry::Clone,
            (Entry::Root, "ctl") => Entry::Ctl,
            (Entry::Root, "jobs") => Entry::Jobs,
            (Entry::Root, "events") => Entry::Events,
            (Entry::Jobs, name) => match self
                .linearize()
                .await
                .and_then(|()| self.sm.job(name).map_err(errors::from_store))?
            {
                Some(job) => Entry::Job {
                    name: job.name.clone(),
                    incarnation: job.incarnation,
                },
                None => return Err(errors::no_job(name)),
            },
            (Entry::Job { name, incarnation }, file) => {
                self.job(name, *incarnation)?;
                let file = JobFile::from_name(file).ok_or_else(Error::not_found)?;
                Entry::File {
                    name: name.clone(),
                    incarnation: *incarnation,
                    file,
                }
            }
            _ => return Err(Error::not_found()),
        };
        let qid = next.qid();
        Ok((Fid::new(next), qid))
    }

    async fn open(&self, fid: &Fid, mode: OpenMode) -> Result<Qid> {
        if mode.write {
            self.writable()?;
        }
        match &fid.entry {
            Entry::Job { name, incarnation } => {
                self.job(name, *incarnation)?;
            }
            Entry::File {
                name,
                incarnation,
                file,
            } => {
                let job = self.job(name, *incarnation)?;
                if mode.write && !file.writable() {
                    return Err(errors::read_only(file.name()));
                }
                if *file == JobFile::Wait {
                    fid.state().waiting = Some(wait::Opened::now(&job));
                }
            }
            Entry::Events if mode.write => return Err(errors::read_only("events")),
            _ => {}
        }
        Ok(fid.entry.qid())
    }

    async fn read(&self, fid: &Fid, offset: u64, count: u32) -> Result<Vec<u8>> {
        // `clone` answers from the fid itself: nothing to confirm, and a
        // create already acknowledged must not be answered EAGAIN after.
        // A wait needs no confirming: it answers what this node applies next.
        if let Entry::File {
            name,
            incarnation,
            file: JobFile::Wait,
        } = &fid.entry
        {
            return self.read_wait(fid, name, *incarnation, offset, count).await;
        }
        if offset == 0 && fid.entry != Entry::Clone {
            self.linearize().await?;
        }
        // The files kept as lines at logical offsets: a job's log, the events.
        let lines = match &fid.entry {
            Entry::File {
                name,
                incarnation,
                file: JobFile::Log,
            } => Some(Lines::Log(self.job(name, *incarnation)?)),
            Entry::Events => Some(Lines::Events),
            _ => None,
        };
        if let Some(lines) = lines {
            let mut st = fid.state();
            if offset == 0 {
                st.log_shift = 0;
            }
            let want = offset + st.log_shift;
            let (at, bytes) = match lines {
                Lines::Log(job) => state::log::read(&self.sm, &job, want, count as usize),
                Lines::Events => state::events::read(&self.sm, want, count as usize),
            }
            .map_err(errors::from_store)?;
            // Served from the oldest kept line: later offsets follow on from it.
            st.log_shift += at - want;
            return Ok(bytes);
        }
        let mut state = fid.state();
        let cached = state.content.take();
        drop(state);
        let content = match cached {
            Some(c) if offset != 0 => c,
            _ => self.generate(fid)?,
        };
        let start = (offset.min(content.len() as u64)) as usize;
        let end = start.saturating_add(count as usize).min(content.len());
        let out = content[start..end].to_vec();
        fid.state().content = Some(content);
        Ok(out)
    }

    fn logical_end(&self, fid: &Fid) -> Option<u64> {
        match &fid.entry {
            Entry::File {
                name,
                incarnation,
                file: JobFile::Log,
            } => self.job(name, *incarnation).ok().map(|j| j.log_end),
            Entry::Events => state::events::span(&self.sm).ok().map(|s| s.end),
            _ => None,
        }
    }

    /// A log read below its oldest kept line was served from that line:
    /// this fid's offsets lag the logical ones by the gap.
    fn logical_offset(&self, fid: &Fid, offset: u64) -> u64 {
        offset + fid.state().log_shift
    }

    async fn readdir(&self, dir: &Fid) -> Result<Vec<Stat>> {
        self.linearize().await?;
        let children: Vec<Entry> = match &dir.entry {
            Entry::Root => vec![Entry::Clone, Entry::Ctl, Entry::Events, Entry::Jobs],
            Entry::Jobs => {
                // Each stat from the record the scan just read (not read again).
                let mut stats = vec![];
                for (k, v) in self
                    .sm
                    .scan(state::JOB_PREFIX)
                    .map_err(errors::from_store)?
                {
                    let job: Job = state::decode(&k, &v).map_err(errors::from_store)?;
                    let entry = Entry::Job {
                        name: job.name.clone(),
                        incarnation: job.incarnation,
                    };
                    stats.push(stat_from(&entry, Some(&job)));
                }
                return Ok(stats);
            }
            Entry::Job { name, incarnation } => {
                self.job(name, *incarnation)?;
                JobFile::ALL
                    .iter()
                    .map(|f| Entry::File {
                        name: name.clone(),
                        incarnation: *incarnation,
                        file: *f,
                    })
                    .collect()
            }
            _ => return Err(Error::new(errno::ENOTDIR, "not a directory")),
        };
        // A job deleted since the scan is simply left out.
        Ok(children
            .iter()
            .filter_map(|n| self.stat_of(n).ok())
            .collect())
    }

    async fn write(&self, fid: &Fid, offset: u64, data: &[u8]) -> Result<u32> {
        self.writable()?;
        if data.len() > self.max_write {
            return Err(errors::invalid(format!(
                "write of {} bytes; at most {}",
                data.len(),
                self.max_write
            )));
        }
        match &fid.entry {
            Entry::Clone => {
                whole(offset, "clone")?;
                let req = input::parse_clone(data).map_err(errors::invalid)?;
                let cmd = Command::CreateJob {
                    name: req.name.clone(),
                    schedule: req.schedule,
                    cmd: req.cmd,
                    at_ms: now_ms(),
                };
                self.write_cmd(cmd, &req.name).await?;
                fid.state().created = Some(req.name);
            }
            Entry::Ctl => self.write_cluster_ctl(data).await?,
            Entry::File {
                name,
                incarnation,
                file,
            } => match file {
                JobFile::Ctl => self.write_job_ctl(name, *incarnation, data).await?,
                JobFile::Cmd => {
                    whole(offset, "cmd")?;
                    self.job(name, *incarnation)?;
                    let cmd = input::text(data).map_err(errors::invalid)?;
                    if cmd.trim().is_empty() {
                        return Err(errors::invalid("empty command".into()));
                    }
                    self.write_cmd(
                        Command::SetCmd {
                            name: name.clone(),
                            cmd: cmd.into(),
                        },
                        name,
                    )
                    .await?;
                }
                JobFile::Env => {
                    whole(offset, "env")?;
                    self.job(name, *incarnation)?;
                    let env = input::parse_env(data).map_err(errors::invalid)?;
                    self.write_cmd(Command::SetEnv { name: name.clone(), env }, name).await?;
                }
                JobFile::Schedule => {
                    whole(offset, "schedule")?;
                    let job = self.job(name, *incarnation)?;
                    let expr = input::text(data)
                        .map_err(errors::invalid)?
                        .trim()
                        .to_string();
                    crate::cron::Schedule::parse_new(&expr).map_err(errors::invalid)?;
                    if let Some(spread) = job.spread_ms {
                        let why = |e: String| {
                            errors::invalid(format!(
                                "{e}; set a shorter spread (or spread off) first"
                            ))
                        };
                        crate::times::check_spread(spread, &expr, &job.tz, now_ms())
                            .map_err(why)?;
                    }
                    let cmd = Command::SetSchedule {
                        name: name.clone(),
                        schedule: expr,
                        at_ms: now_ms(),
                    };
                    self.write_cmd(cmd, name).await?;
                }
                JobFile::Log | JobFile::Runs | JobFile::Wait => {
                    return Err(errors::read_only(file.name()))
                }
            },
            Entry::Events => return Err(errors::read_only("events")),
            _ => return Err(Error::new(errno::EISDIR, "is a directory")),
        }
        Ok(data.len() as u32)
    }

    /// `mkdir jobs/NAME`: an empty, stopped job whose cmd and schedule are
    /// written next.
    async fn create(
        &self,
        dir: &Fid,
        name: &str,
        perm: u32,
        _mode: OpenMode,
    ) -> Result<(Fid, Qid)> {
        self.writable()?;
        if dir.entry != Entry::Jobs || perm & DMDIR == 0 {
            return Err(errors::not_permitted(format!(
                "cannot create {name} here; create jobs with mkdir in /jobs or by writing /clone"
            )));
        }
        input::check_name(name).map_err(errors::invalid)?;
        let cmd = Command::CreateJob {
            name: name.into(),
            schedule: String::new(),
            cmd: String::new(),
            at_ms: now_ms(),
        };
        let incarnation = match self.write_cmd(cmd, name).await? {
            Response::Created { incarnation } => incarnation,
            other => {
                return Err(Error::new(
                    errno::EIO,
                    format!("unexpected answer {other:?}"),
                ))
            }
        };
        let entry = Entry::Job {
            name: name.into(),
            incarnation,
        };
        let qid = entry.qid();
        Ok((Fid::new(entry), qid))
    }

    /// Removing a job's directory deletes the job; removing one of its
    /// files succeeds and does nothing, so `rm -r` works.
    async fn remove(&self, fid: &Fid) -> Result<()> {
        self.writable()?;
        match &fid.entry {
            Entry::Job { name, incarnation } => {
                self.job(name, *incarnation)?;
                self.write_cmd(Command::DeleteJob { name: name.clone() }, name)
                    .await
                    .map(|_| ())
            }
            Entry::File { .. } => Ok(()),
            n => Err(errors::not_permitted(format!(
                "{} cannot be removed",
                n.name()
            ))),
        }
    }

    async fn stat(&self, fid: &Fid) -> Result<Stat> {
        self.stat_of(&fid.entry)
    }
}
