//! Runs in the state machine: fires accepted (or refused) by the firing
//! rules, manual runs, and each run's start, output and end. A run is
//! stored under `run/INCARNATION/RUNID`; its id is the log index of the
//! command that created it (`take_id`: the next free one after it when one
//! entry creates several), the same on every node.

use serde::{Deserialize, Serialize};

use super::events::{self, Skipped};
use super::{decode, encode, log, Job, Kv, KvError, KvRead};
use crate::command::{Fence, NotStarted, Response, RunStatus, Trigger};


#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub id: u64,
    /// The job's name (with the incarnation in the key, the job it belongs to).
    #[serde(default)]
    pub job: String,
    pub scheduled_ms: i64,
    pub trigger: Trigger,
    pub node: u64,
    pub fence: Fence,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub status: RunStatus,
    /// The next output batch expected.
    pub next_seq: u64,
    /// A newer run replaced this one (overlap `replace`): its node kills it.
    #[serde(default)]
    pub cancel: bool,
    /// Output bytes logged so far.
    #[serde(default)]
    pub output_bytes: u64,
    /// The latest time the run may begin: its scheduled time (a catch-up
    /// or manual run: the time it was proposed) plus the job's deadline
    /// when it was accepted, so a later change of deadline does not move
    /// runs already waiting. None in records from before deadlines.
    #[serde(default)]
    pub begin_by_ms: Option<i64>,
    /// When it was proposed, by the proposer's clock (None in records
    /// from before; a scheduled run's was shortly before its time).
    #[serde(default)]
    pub proposed_ms: Option<i64>,
    /// The job was stopped before this (scheduled or catch-up) run began:
    /// its node records it `not-started (stopped)` instead of beginning it.
    #[serde(default)]
    pub stopped: bool,
    /// A claim was accepted (`Begin` by its node, or `TakeOver` by a new
    /// leader, which made `fence` and `node` its own): only that node
    /// may begin it, and from now on a node that dies before recording
    /// its start leaves it `lost` (it may have begun), not `not-started`.
    #[serde(default)]
    pub claimed: bool,
    /// Its proposer claims before beginning (see `Command::Fire`): only
    /// then may an unclaimed run be taken over, and started only claimed.
    #[serde(default)]
    pub claims: bool,
    /// Which attempt of its scheduled time this run is: 1, or a retry's
    /// (`retry.rs`).
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// A retry begins no earlier than this (its retry-at); None: a
    /// scheduled run begins at its time, others at once.
    #[serde(default)]
    pub not_before_ms: Option<i64>,
    /// Its claimer gave the claim back (`release`): only a `TakeOver`,
    /// by another fence, may claim it again.
    #[serde(default)]
    pub released: bool,
    /// Which end of the job's this was: the job's `runs` count once it
    /// ended (None while it has not, and in records from before). A
    /// reader of `wait` that opened at count N answers the run ended Nth+1.
    #[serde(default)]
    pub ended_nth: Option<u64>,
    /// A chained run (trigger `after`): the run whose end started it.
    #[serde(default)]
    pub after_run: Option<u64>,
    /// Its last output lines while it runs, for its webhook
    /// (`notify.rs`); emptied when it ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tail: Vec<String>,
}

fn first_attempt() -> u32 {
    1
}

/// The start deadline records written before `begin_by_ms` existed had.
pub const OLD_START_DEADLINE_MS: i64 = 1000;

impl Run {
    pub fn ended(&self) -> bool {
        !matches!(self.status, RunStatus::Pending | RunStatus::Running)
    }

    /// The latest time the run may begin (see `begin_by_ms`).
    pub fn begin_by(&self) -> i64 {
        self.begin_by_ms.unwrap_or(self.scheduled_ms.saturating_add(OLD_START_DEADLINE_MS))
    }

    /// When it was proposed (see `proposed_ms`).
    pub fn proposed(&self) -> i64 {
        self.proposed_ms.unwrap_or(self.scheduled_ms)
    }

    /// When its gate opens: a scheduled run at its time, a retry at its
    /// retry-at, others at once (0).
    pub fn begin_at(&self) -> i64 {
        match self.trigger {
            Trigger::Schedule => self.scheduled_ms,
            _ => self.not_before_ms.unwrap_or(0),
        }
    }
}

/// What a fire asks for: the scheduled time, when it was proposed, why.
#[derive(Debug, Clone, Copy)]
pub struct FireAt {
    pub scheduled_ms: i64,
    /// The proposer's clock (0 from proposers that did not send it).
    pub proposed_ms: i64,
    pub trigger: Trigger,
    pub skipped: u32,
    /// The proposer claims before beginning (`Command::Fire`'s `claims`).
    pub claims: bool,
}

/// `active/INC/RUNID` exists while the run has not ended: the leader's
/// sweep for runs nobody will end reads only these.
pub const ACTIVE_PREFIX: &[u8] = b"active/";

pub fn active_key(incarnation: u64, id: u64) -> Vec<u8> {
    [ACTIVE_PREFIX, &incarnation.to_be_bytes(), &id.to_be_bytes()].concat()
}

pub const RUN_PREFIX: &[u8] = b"run/";

pub fn run_key(incarnation: u64, id: u64) -> Vec<u8> {
    [RUN_PREFIX, &incarnation.to_be_bytes(), &id.to_be_bytes()].concat()
}

pub fn load_run(kv: &impl KvRead, incarnation: u64, id: u64) -> Result<Option<Run>, KvError> {
    let key = run_key(incarnation, id);
    kv.get(&key)?.map(|v| decode(&key, &v)).transpose()
}

fn store_run(kv: &mut impl Kv, incarnation: u64, run: &Run) {
    kv.put(run_key(incarnation, run.id), encode(run));
}

fn reject(reason: String) -> Response {
    Response::Rejected { reason }
}

/// The firing rules: that incarnation started, and a time later than both
/// the last accepted one and armed-at.
fn acceptable(job: &Job, at_ms: i64) -> Result<(), Response> {
    if !job.started {
        return Err(reject(format!("job {} is stopped", job.name)));
    }
    if job.last_accepted_ms.is_some_and(|last| at_ms <= last) {
        return Err(reject(format!("time {at_ms} is not after the last accepted one")));
    }
    if job.armed_at_ms.is_some_and(|armed| at_ms <= armed) {
        return Err(reject(format!("time {at_ms} is not after armed-at")));
    }
    Ok(())
}

/// Runs of the job that have not ended.
fn unfinished(kv: &impl KvRead, job: &Job) -> Result<Vec<Run>, KvError> {
    let mut out = vec![];
    for id in &job.recent_runs {
        if let Some(r) = load_run(kv, job.incarnation, *id)? {
            if !r.ended() {
                out.push(r);
            }
        }
    }
    Ok(out)
}

/// Who asks for a new run, for the events a skip writes: the time it
/// would run, why, and the node that asked.
#[derive(Debug, Clone, Copy)]
pub(super) struct Asked {
    pub scheduled_ms: i64,
    pub trigger: Trigger,
    pub node: u64,
}

/// Applies the overlap policy before a new run: `Some(response)` when the
/// new time is skipped instead.
pub(super) fn overlap(kv: &mut impl Kv, job: &mut Job, at_ms: i64, asked: Asked) -> Result<Option<Response>, KvError> {
    use crate::command::Overlap;
    let running = unfinished(kv, job)?;
    if running.is_empty() {
        return Ok(None);
    }
    match job.overlap {
        Overlap::Allow => Ok(None),
        Overlap::Skip => {
            job.skipped += 1;
            log::append(kv, job, at_ms, "skipped 1 scheduled times (overlap)")?;
            let Asked { scheduled_ms, trigger, node } = asked;
            let skip = Skipped { scheduled_ms, trigger: Some(trigger), node, count: 1, reason: "overlap" };
            events::skipped(kv, job, at_ms, skip)?;
            Ok(Some(Response::SkippedForOverlap))
        }
        Overlap::Replace => {
            for mut r in running {
                r.cancel = true;
                store_run(kv, job.incarnation, &r);
            }
            Ok(None)
        }
    }
}

/// Marks every unfinished run of the job for killing by its node.
pub fn cancel_all(kv: &mut impl Kv, job: &mut Job) -> Result<Response, KvError> {
    for mut r in unfinished(kv, job)? {
        r.cancel = true;
        store_run(kv, job.incarnation, &r);
    }
    Ok(Response::Done)
}

/// Moves the last accepted time without a run, counting what was passed over.
pub fn skip_times(kv: &mut impl Kv, job: &mut Job, until_ms: i64, count: u32, reason: &str, fence: Fence) -> Result<Response, KvError> {
    if let Err(r) = acceptable(job, until_ms) {
        return Ok(r);
    }
    job.last_accepted_ms = Some(until_ms);
    job.skipped += count as u64;
    log::append(kv, job, until_ms, &format!("skipped {count} scheduled times ({reason})"))?;
    let skip = Skipped { scheduled_ms: until_ms, trigger: None, node: fence.node, count: count.into(), reason };
    events::skipped(kv, job, until_ms, skip)?;
    Ok(Response::Done)
}

pub fn fire(kv: &mut impl Kv, index: u64, job: &mut Job, at: FireAt, fence: Fence) -> Result<Response, KvError> {
    let FireAt { scheduled_ms, proposed_ms, trigger, skipped, claims } = at;
    if let Err(r) = acceptable(job, scheduled_ms) {
        return Ok(r);
    }
    job.last_accepted_ms = Some(scheduled_ms);
    let proposed = if proposed_ms == 0 { scheduled_ms } else { proposed_ms };
    if skipped > 0 {
        let text = format!("skipped {skipped} scheduled times (catch-up once)");
        log::append(kv, job, scheduled_ms, &text)?;
        job.skipped += skipped as u64;
        let skip = Skipped { scheduled_ms, trigger: Some(trigger), node: fence.node, count: skipped.into(), reason: "catch-up once" };
        events::skipped(kv, job, proposed, skip)?;
    }
    let asked = Asked { scheduled_ms, trigger, node: fence.node };
    if let Some(skip) = overlap(kv, job, scheduled_ms, asked)? {
        return Ok(skip);
    }
    // A scheduled run's deadline counts from its time; a catch-up run's
    // time is in the past by design, so from when it was fired.
    let from = if trigger == Trigger::Schedule { scheduled_ms } else { proposed.max(scheduled_ms) };
    new_run(kv, index, job, NewRun { scheduled_ms, trigger, fence, deadline_from_ms: from, proposed_ms: proposed, claims, attempt: 1, not_before_ms: None, after_run: None })
}

/// A manual run: keyed by its run id, the last accepted time untouched;
/// the overlap policy applies unless forced.
pub fn run_now(kv: &mut impl Kv, index: u64, job: &mut Job, fence: Fence, at_ms: i64, force: bool, claims: bool) -> Result<Response, KvError> {
    if !force {
        let asked = Asked { scheduled_ms: at_ms, trigger: Trigger::Manual, node: fence.node };
        if let Some(skip) = overlap(kv, job, at_ms, asked)? {
            return Ok(skip);
        }
    }
    let new = NewRun { scheduled_ms: at_ms, trigger: Trigger::Manual, fence, deadline_from_ms: at_ms, proposed_ms: at_ms, claims, attempt: 1, not_before_ms: None, after_run: None };
    new_run(kv, index, job, new)
}

/// What a new run record is made of.
pub(super) struct NewRun {
    pub scheduled_ms: i64,
    pub trigger: Trigger,
    pub fence: Fence,
    /// Its deadline counts from here.
    pub deadline_from_ms: i64,
    pub proposed_ms: i64,
    pub claims: bool,
    pub attempt: u32,
    pub not_before_ms: Option<i64>,
    /// A chained run's triggering run.
    pub after_run: Option<u64>,
}

/// `stop`: the job's accepted scheduled and catch-up runs that have not
/// begun will not (manual runs of a stopped job still may).
pub fn stop_pending(kv: &mut impl Kv, job: &Job) -> Result<(), KvError> {
    for mut r in unfinished(kv, job)? {
        if r.status == RunStatus::Pending && r.trigger != Trigger::Manual && !r.stopped {
            r.stopped = true;
            store_run(kv, job.incarnation, &r);
        }
    }
    Ok(())
}

/// The job's deadline now: its own, or the cluster's.
pub(super) fn deadline_ms(kv: &impl KvRead, job: &Job) -> Result<i64, KvError> {
    Ok(job.deadline_ms.unwrap_or(super::limits::load(kv)?.deadline_ms as i64))
}

pub(super) fn new_run(kv: &mut impl Kv, index: u64, job: &mut Job, new: NewRun) -> Result<Response, KvError> {
    let NewRun { scheduled_ms, trigger, fence, deadline_from_ms, proposed_ms, claims, attempt, not_before_ms, after_run } = new;
    let id = super::take_id(kv, index)?;
    let begin_by_ms = Some(deadline_from_ms.saturating_add(deadline_ms(kv, job)?));
    let run = Run {
        id,
        job: job.name.clone(),
        scheduled_ms,
        trigger,
        node: fence.node,
        fence,
        start_ms: None,
        end_ms: None,
        status: RunStatus::Pending,
        next_seq: 0,
        cancel: false,
        output_bytes: 0,
        begin_by_ms,
        proposed_ms: Some(proposed_ms),
        stopped: false,
        claimed: false,
        claims,
        attempt,
        not_before_ms,
        released: false,
        ended_nth: None,
        after_run,
        tail: vec![],
    };
    store_run(kv, job.incarnation, &run);
    kv.put(active_key(job.incarnation, id), vec![]);
    job.recent_runs.push(id);
    // The oldest ended runs go first; one that has not ended is never
    // dropped (its node still records into it), so the list may exceed
    // the limit while many wait.
    let kept = super::limits::load(kv)?.runs_kept as usize;
    let mut i = 0;
    while job.recent_runs.len() > kept && i < job.recent_runs.len() {
        let old = job.recent_runs[i];
        if load_run(kv, job.incarnation, old)?.is_some_and(|r| !r.ended()) {
            i += 1;
            continue;
        }
        job.recent_runs.remove(i);
        kv.delete(run_key(job.incarnation, old));
        kv.delete(active_key(job.incarnation, old));
    }
    Ok(Response::Accepted { run_id: id })
}

/// Who claims a run, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The run's own node (the fire's or manual run's fence).
    Begin(Fence),
    /// A new leader, for a run whose node never claimed it.
    TakeOver { fence: Fence, at_ms: i64 },
}

/// The claim rule: the first claim of a pending run that is still wanted
/// wins; every later one is refused. So whatever the leaders do, at most
/// one node holds a run's claim, and only it begins the run.
pub fn claim(kv: &mut impl Kv, job: &mut Job, run_id: u64, claim: Claim) -> Result<Response, KvError> {
    let Some(mut run) = load_run(kv, job.incarnation, run_id)? else { return Ok(reject(format!("no run {run_id}"))) };
    if run.status != RunStatus::Pending {
        return Ok(reject(format!("run {run_id} is not pending")));
    }
    if run.claimed {
        return Ok(reject(format!("run {run_id} is claimed by node {}", run.fence.node)));
    }
    if run.cancel {
        return Ok(reject(format!("run {run_id} was killed")));
    }
    if run.stopped || (!job.started && run.trigger != Trigger::Manual) {
        return Ok(reject(format!("job {} is stopped", job.name)));
    }
    match claim {
        Claim::Begin(fence) if fence != run.fence => {
            return Ok(reject(format!("run {run_id} is not node {}'s to begin", fence.node)));
        }
        Claim::Begin(_) if run.released => {
            return Ok(reject(format!("run {run_id} was given back by node {}", run.fence.node)));
        }
        Claim::Begin(_) => {}
        Claim::TakeOver { fence, at_ms } => {
            if !run.claims {
                return Ok(reject(format!("run {run_id}'s node begins without claiming (an older version)")));
            }
            if fence == run.fence {
                return Ok(reject(format!("run {run_id} is already node {}'s", fence.node)));
            }
            log::append(kv, job, at_ms, &format!("run {run_id} taken over by node {} from node {}", fence.node, run.fence.node))?;
            run.fence = fence;
            run.node = fence.node;
            run.proposed_ms = Some(at_ms);
            run.released = false;
        }
    }
    run.claimed = true;
    store_run(kv, job.incarnation, &run);
    Ok(Response::Done)
}

/// The claimer gives its claim back, having shut the gate for good
/// without beginning the run (`Command::Release`): the run is unclaimed
/// again, and only another fence's `TakeOver` may claim it. So a claim
/// still has one holder at a time, and the holder that begins is the one
/// whose claim is applied, held, at its gate.
pub fn release(kv: &mut impl Kv, job: &mut Job, run_id: u64, fence: Fence, why: NotStarted, at_ms: i64) -> Result<Response, KvError> {
    let Some(mut run) = load_run(kv, job.incarnation, run_id)? else { return Ok(reject(format!("no run {run_id}"))) };
    if run.status != RunStatus::Pending {
        return Ok(reject(format!("run {run_id} is not pending")));
    }
    if !run.claimed || run.fence != fence {
        return Ok(reject(format!("run {run_id} is not claimed by node {}", fence.node)));
    }
    run.claimed = false;
    run.released = true;
    store_run(kv, job.incarnation, &run);
    log::append(kv, job, at_ms, &format!("run {run_id} given back by node {} unbegun ({why})", fence.node))?;
    Ok(Response::Done)
}

/// A record about a run from `fence`: refused unless it is the run's own
/// node's (the leader's sweep writes under the fence it judged gone; None
/// comes from versions before claims).
fn from_its_node(run: &Run, fence: Option<Fence>) -> Result<(), Response> {
    match fence {
        Some(f) if f != run.fence => Err(reject(format!("run {} is node {}'s, not node {}'s", run.id, run.fence.node, f.node))),
        _ => Ok(()),
    }
}

pub fn started(kv: &mut impl Kv, job: &mut Job, run_id: u64, at_ms: i64, fence: Option<Fence>) -> Result<Response, KvError> {
    let Some(mut run) = load_run(kv, job.incarnation, run_id)? else { return Ok(reject(format!("no run {run_id}"))) };
    if run.status != RunStatus::Pending {
        return Ok(reject(format!("run {run_id} is not pending")));
    }
    if let Err(r) = from_its_node(&run, fence) {
        return Ok(r);
    }
    if (fence.is_some() || run.claims) && !run.claimed {
        return Ok(reject(format!("run {run_id} was not claimed")));
    }
    run.status = RunStatus::Running;
    run.start_ms = Some(at_ms);
    job.last_start_ms = Some(at_ms);
    store_run(kv, job.incarnation, &run);
    log::append(kv, job, at_ms, &format!("started run {run_id}"))?;
    events::began(kv, job, &run, at_ms)?;
    Ok(Response::Done)
}

/// Output batches apply once each and in order: a repeated or skipped
/// sequence number is refused, so a retried batch never doubles lines.
pub fn output(kv: &mut impl Kv, job: &mut Job, run_id: u64, seq: u64, lines: &[String], at_ms: i64, fence: Option<Fence>) -> Result<Response, KvError> {
    let Some(mut run) = load_run(kv, job.incarnation, run_id)? else { return Ok(reject(format!("no run {run_id}"))) };
    if run.ended() {
        return Ok(reject(format!("run {run_id} has ended")));
    }
    if let Err(r) = from_its_node(&run, fence) {
        return Ok(r);
    }
    if seq != run.next_seq {
        return Ok(reject(format!("output batch {seq} of run {run_id}; expected {}", run.next_seq)));
    }
    run.next_seq += 1;
    let limits = super::limits::load(kv)?;
    let (cap, log_bytes) = (limits.run_output_bytes, limits.log_bytes);
    for line in lines {
        if run.output_bytes >= cap {
            break;
        }
        run.output_bytes += line.len() as u64 + 1;
        log::append_within(kv, job, at_ms, line, log_bytes)?;
        super::notify::keep_tail(&mut run, line);
        if run.output_bytes >= cap {
            log::append_within(kv, job, at_ms, &format!("run {run_id}: output over {cap} bytes; the rest is dropped"), log_bytes)?;
        }
    }
    store_run(kv, job.incarnation, &run);
    Ok(Response::Done)
}

pub fn ended(kv: &mut impl Kv, index: u64, job: &mut Job, run_id: u64, status: &RunStatus, at_ms: i64, fence: Option<Fence>) -> Result<Response, KvError> {
    let Some(mut run) = load_run(kv, job.incarnation, run_id)? else { return Ok(reject(format!("no run {run_id}"))) };
    if run.ended() {
        return Ok(reject(format!("run {run_id} has already ended")));
    }
    if let Err(r) = from_its_node(&run, fence) {
        return Ok(r);
    }
    if matches!(status, RunStatus::Pending | RunStatus::Running) {
        return Ok(reject("a run cannot end as pending or running".into()));
    }
    // The sweep judged from a read that may predate the claim: a claimed
    // run may have begun, so its node being gone makes it lost.
    let swept = matches!(status, RunStatus::NotStarted(NotStarted::NodeGone | NotStarted::Unanswered));
    let status = &if swept && run.claimed { RunStatus::Lost } else { status.clone() };
    run.status = status.clone();
    run.end_ms = Some(at_ms);
    let tail = std::mem::take(&mut run.tail);
    job.runs += 1;
    run.ended_nth = Some(job.runs);
    store_run(kv, job.incarnation, &run);
    kv.delete(active_key(job.incarnation, run_id));
    if !matches!(status, RunStatus::Exit(0)) {
        job.failures += 1;
    }
    job.last_status = Some(status_text(status));
    let took = run.start_ms.map(|s| format_duration(at_ms - s)).unwrap_or_else(|| "0s".into());
    log::append(kv, job, at_ms, &format!("run {run_id} {} in {took}", status_text(status)))?;
    events::ended(kv, job, &run, at_ms)?;
    super::retry::after_end(kv, index, job, &run, at_ms)?;
    let retrying = super::retry::retrying(job, &run);
    super::notify::after_end(kv, job, &run, &tail, retrying, at_ms)?;
    super::chain::after_end(kv, index, job, &run, at_ms, retrying)?;
    Ok(Response::Done)
}

pub fn status_text(s: &RunStatus) -> String {
    match s {
        RunStatus::Pending => "pending".into(),
        RunStatus::Running => "running".into(),
        RunStatus::Exit(n) => format!("exit {n}"),
        RunStatus::Signal(name) => format!("signal {name}"),
        RunStatus::Timeout => "timeout".into(),
        RunStatus::Killed => "killed".into(),
        RunStatus::Lost => "lost".into(),
        RunStatus::NotStarted(crate::command::NotStarted::Unrecorded) => "not-started".into(),
        RunStatus::NotStarted(why) => format!("not-started ({why})"),
    }
}

pub fn format_duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}
