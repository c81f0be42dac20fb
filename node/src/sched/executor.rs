//! Starting and following runs on the node that proposed them: wait for a
//! slot under the concurrency cap (`slots.rs`), create the run's process
//! at its gate (`spawn.rs`), have a gate thread open it at the scheduled
//! time if the run may still begin (`gate.rs`, `may_begin`; else kill it
//! and record `not-started` with the reason), stream its output back into
//! the replicated log in numbered batches, and record how it ended. Every
//! record is a command through the write path, retried until it is applied
//! (each is idempotent: a repeat is refused by the state machine, not
//! doubled).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::gate::Refusal;
use super::slots::{Slot, Slots, Waiting};
use crate::clock::{now_ms, since_boot};
use crate::command::{Command, Fence, NotStarted, Response, RunStatus, Trigger};
use crate::leadership::{Lease, Standing};
use crate::write::{WriteError, Writer};
use crate::state;
use crate::store::state_machine::StateMachine;

/// A manual run on a node that is not the leader begins only if this node
/// heard from the leader this recently (see `may_begin`).
const MANUAL_CONTACT: Duration = Duration::from_secs(1);
/// A run waiting for a slot checks this often that it is still to begin
/// (so a `kill` or `stop` of a queued run is recorded within it). Not
/// faster: ten thousand queued runs each read two records per check.
const QUEUED_CHECK_EVERY: Duration = Duration::from_secs(1);
/// While its lease has lapsed, a run at its gate asks again after this,
/// doubling up to `LAPSED_RETRY_MAX` (hundreds of runs may wait so).
const LAPSED_RETRY: Duration = Duration::from_millis(10);
const LAPSED_RETRY_MAX: Duration = Duration::from_millis(500);
/// A lease lapsed this long means the quorum has been out of reach for
/// longer than an election takes: the term is as good as over here.
const LAPSED_GIVE_UP: Duration = Duration::from_secs(2);
/// A scheduled run's claim (`Begin`) is proposed this long before its
/// time: long enough for its commit to be hidden from the lateness, short
/// because a node that dies between its claim and its gate leaves the run
/// `lost` where, unclaimed, the next leader would have taken it over.
const CLAIM_LEAD: Duration = Duration::from_millis(100);
/// A claim whose write failed is proposed again after this, doubling up
/// to `CLAIM_RETRY_MAX` (the applied state decides whether it is ours).
const CLAIM_RETRY: Duration = Duration::from_millis(20);
const CLAIM_RETRY_MAX: Duration = Duration::from_millis(500);
/// A test seam: `JOBD_TEST_HOLD_AFTER_CLAIM_MS` holds every run this long
/// between its applied claim and its gate, so a test can kill a node while
/// its runs are claimed and not begun (`cluster-tests/tests/takeover.rs`).
fn hold_after_claim() -> Option<Duration> {
    static HOLD: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();
    *HOLD.get_or_init(|| {
        let ms: u64 = std::env::var("JOBD_TEST_HOLD_AFTER_CLAIM_MS").ok()?.parse().ok()?;
        Some(Duration::from_millis(ms))
    })
}
/// Output is sent in batches of at most this many lines, or this often.
const BATCH_LINES: usize = 100;
const BATCH_EVERY: Duration = Duration::from_millis(100);
const BATCH_BYTES: usize = 64 << 10;
/// After SIGTERM, how long a run's processes get before SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// The default of `--max-concurrent-runs`.
pub const MAX_CONCURRENT_RUNS: usize = 512;

/// How often a running job is checked for its timeout and for cancellation.
const CHECK_EVERY: Duration = Duration::from_millis(200);
/// Longest output line; longer ones are split.
const MAX_LINE: usize = 4096;

#[derive(Clone)]
pub struct Executor {
    pub sm: StateMachine,
    pub writer: Writer,
    pub node: u64,
    /// Jobs run here (a directory under `--dbdir`).
    pub workdir: std::path::PathBuf,
    /// Set when the node stops: running jobs are told to end.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Runs this process is carrying out (waiting, running, recording),
    /// with the process group of those running.
    pub active: Arc<Mutex<HashMap<u64, Option<u32>>>>,
    /// The concurrency cap (`--max-concurrent-runs`): runs beyond it wait.
    pub slots: Arc<Slots>,
    /// Whether this node may still begin the runs it fired as leader.
    pub lease: Arc<Lease>,
    /// For a manual run on a follower: who leads, as openraft sees it.
    pub raft: crate::types::Raft,
    /// `--run-as`: the user job processes run as.
    pub run_as: Option<Arc<super::run_as::RunAs>>,
    /// Creates every run's process, on one long-lived thread.
    pub creator: Arc<super::spawn::Creator>,
    /// Opens every run's gate at its time, on another.
    pub gates: Arc<super::gate::Gatekeeper>,
    /// This node's clock against the quorum's, checked again at the gate.
    pub clocks: Arc<crate::clock::PeerClocks>,
    pub max_clock_skew_ms: i64,
}

/// Takes a run out of the active set when its carrying-out ends.
pub struct Active(Arc<Mutex<HashMap<u64, Option<u32>>>>, u64);

impl Drop for Active {
    fn drop(&mut self) {
        crate::lock::lock(&self.0).remove(&self.1);
    }
}

/// One accepted run to carry out.
#[derive(Debug, Clone)]
pub struct RunOrder {
    pub name: String,
    pub incarnation: u64,
    pub run_id: u64,
    pub scheduled_ms: i64,
    pub trigger: Trigger,
    /// The run's fence: its fire's, its manual run's, or a take-over's.
    pub fence: Fence,
    /// When its gate opens (`Run::begin_at`; 0: at once).
    pub begin_at_ms: i64,
    /// Which attempt of its time it is (1 unless a retry).
    pub attempt: u32,
    /// A chained run's triggering run (`JOBD_AFTER_RUN_ID`).
    pub after_run: Option<u64>,
}

impl RunOrder {
    /// The order for a run as recorded, under `fence` (a take-over's).
    pub fn of_run(incarnation: u64, run: &state::run::Run, fence: Fence) -> RunOrder {
        RunOrder {
            name: run.job.clone(),
            incarnation,
            run_id: run.id,
            scheduled_ms: run.scheduled_ms,
            trigger: run.trigger,
            fence,
            begin_at_ms: run.begin_at(),
            attempt: run.attempt,
            after_run: run.after_run,
        }
    }
}

impl Executor {
    /// Writes `cmd` until it is applied; gives up only when the node stops.
    async fn record(&self, cmd: Command) {
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.writer.write(cmd.clone()).await {
                Ok(_) | Err(WriteError::ShuttingDown) => return,
                Err(e) => {
                    warn!("recording a run: {e}; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// The end of run `o`, now.
    fn end(&self, o: &RunOrder, status: RunStatus) -> Command {
        self.end_at(o, status, now_ms())
    }

    fn end_at(&self, o: &RunOrder, status: RunStatus, at_ms: i64) -> Command {
        let outcome = match &status {
            RunStatus::Exit(0) => "succeeded".to_string(),
            RunStatus::Exit(_) => "failed".into(),
            s => state::run::status_text(s).split(' ').next().unwrap_or("other").into(),
        };
        self.metrics.runs.with_label_values(&[&outcome]).inc();
        Command::RunEnded { name: o.name.clone(), incarnation: o.incarnation, run_id: o.run_id, status, at_ms, fence: Some(o.fence) }
    }

    /// Whether run `o` is still to begin, as of `now`: its record still
    /// pending here, not killed, the job still wanting it, its deadline not
    /// passed, the node not stopping, and (fired as leader) the term it was
    /// fired in still led by this node. Checked while it waits for a slot
    /// and before its claim; answers the run's record and its job's.
    fn still_to_begin(&self, o: &RunOrder, now: i64) -> Result<(state::run::Run, state::Job), Refusal> {
        let run = self.run_still_to_begin(o, now)?;
        let job = match state::load_job(&self.sm, &o.name) {
            Ok(Some(j)) if j.incarnation == o.incarnation => j,
            Ok(_) => return Err(Refusal::NotStarted(NotStarted::Deleted)),
            Err(e) => return Err(Refusal::Io(e.to_string())),
        };
        if !job.started && o.trigger != Trigger::Manual {
            return Err(Refusal::NotStarted(NotStarted::Stopped));
        }
        Ok((run, job))
    }

    /// `still_to_begin` from the run's record alone, for a gate thread,
    /// where a herd's 500 gates are opened one after another and each read
    /// delays the next (the job's record is the larger of the two to
    /// decode). The record says all the job's would: `stop` marks the job's
    /// pending scheduled and catch-up runs `stopped` in the same apply,
    /// `delete` removes every run record the job keeps (`runs-kept` never
    /// evicts a run that has not ended), and a re-created job is a new
    /// incarnation, under other keys.
    fn run_still_to_begin(&self, o: &RunOrder, now: i64) -> Result<state::run::Run, Refusal> {
        let run = match state::run::load_run(&self.sm, o.incarnation, o.run_id) {
            Ok(Some(r)) => r,
            Ok(None) => return Err(Refusal::NotStarted(NotStarted::Deleted)),
            Err(e) => return Err(Refusal::Io(e.to_string())),
        };
        if run.status != RunStatus::Pending {
            return Err(Refusal::Ended);
        }
        if run.fence != o.fence {
            return Err(Refusal::TakenOver { node: run.fence.node });
        }
        if run.cancel {
            return Err(Refusal::Cancelled);
        }
        if run.stopped {
            return Err(Refusal::NotStarted(NotStarted::Stopped));
        }
        if now > run.begin_by() {
            return Err(Refusal::NotStarted(NotStarted::Deadline));
        }
        if *self.stopping.borrow() {
            return Err(Refusal::NotStarted(NotStarted::NodeStopping));
        }
        if o.trigger != Trigger::Manual && self.lease.standing(run.fence.term, since_boot()) == Standing::Lost {
            return Err(Refusal::NotStarted(NotStarted::FenceLost));
        }
        Ok(run)
    }

    /// The last checks, on a gate thread at the moment of opening (the
    /// rule is the README's "Firing"): everything `still_to_begin` asks;
    /// for a run this node fired as leader, its lease in the fire's term
    /// holds (a lapsed one is asked again) and its clock agrees with the
    /// quorum's (a clock that stepped after the fire was proposed); for a
    /// manual run, this node leads or heard from the leader within
    /// `MANUAL_CONTACT`.
    fn may_begin(&self, o: &RunOrder, now: i64) -> Result<(), Refusal> {
        let run = self.run_still_to_begin(o, now)?;
        if !run.claimed {
            return Err(Refusal::Io("the run's claim is not applied here".into()));
        }
        // openraft's view as of now, read once.
        let (term, leader, leading) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            (m.current_term, m.current_leader, m.state == openraft::ServerState::Leader && m.current_leader == Some(self.node))
        };
        if o.trigger == Trigger::Manual && !leading {
            // A follower's own fence: in touch with the leader, or not at all.
            let heard = leader.filter(|l| *l != self.node).and_then(|l| self.clocks.silent_for(l));
            return if heard.is_some_and(|d| d < MANUAL_CONTACT) { Ok(()) } else { Err(Refusal::NotStarted(NotStarted::FenceLost)) };
        }
        // A run this node fired, or a manual run taken while leading: the
        // lease of the fire's term (a manual run: the current one), taken
        // now, after the reads above.
        let lease_term = if o.trigger == Trigger::Manual { term } else { run.fence.term };
        match self.lease.standing(lease_term, since_boot()) {
            Standing::Holds => {}
            Standing::Lapsed { since } if since > LAPSED_GIVE_UP => return Err(Refusal::NotStarted(NotStarted::FenceLost)),
            Standing::Lapsed { since } => return Err(Refusal::LeaseLapsed { since_ms: since.as_millis() as u64 }),
            Standing::Lost => return Err(Refusal::NotStarted(NotStarted::FenceLost)),
        }
        // openraft's own view, as of now: a leader steps down when it
        // grants another candidate its vote (followers that acknowledged
        // the lease's round refuse to; the leader itself is not bound), and
        // its metrics say so soon after, often before the leadership task
        // has run (README, "Firing", for the window that remains).
        if term != lease_term || !leading {
            return Err(Refusal::NotStarted(NotStarted::FenceLost));
        }
        let skew_ms = self.clocks.skew_ms();
        if o.trigger != Trigger::Manual && skew_ms.abs() > self.max_clock_skew_ms {
            return Err(Refusal::NotStarted(NotStarted::Clock));
        }
        Ok(())
    }

    /// Commits this node's claim of run `o` (`Begin`), `CLAIM_LEAD` before
    /// its gate opens (a scheduled run's time, a retry's retry-at; others
    /// now): `Ok` once the applied
    /// state here shows the run claimed by `o`'s fence (README, "Firing":
    /// the first claim in the log wins, and only its node begins the run).
    /// A claim whose answer was lost is decided the same way, by the
    /// applied state, and proposed again while the run is still to begin.
    async fn claim(&self, o: &RunOrder) -> Result<(), Refusal> {
        let until = o.begin_at_ms - CLAIM_LEAD.as_millis() as i64 - now_ms();
        if until > 0 {
            tokio::time::sleep(Duration::from_millis(until as u64)).await;
        }
        let mut retry = CLAIM_RETRY;
        loop {
            let (run, _) = self.still_to_begin(o, now_ms())?;
            if run.claimed {
                return Ok(());
            }
            let begin = Command::Begin { name: o.name.clone(), incarnation: o.incarnation, run_id: o.run_id, fence: o.fence };
            match self.writer.write(begin).await {
                Ok(Response::Done) => return Ok(()),
                // Refused: what the state says next tells why.
                Ok(other) => {
                    let (run, _) = self.still_to_begin(o, now_ms())?;
                    if run.claimed {
                        return Ok(());
                    }
                    return Err(Refusal::Io(format!("its claim was refused: {other:?}")));
                }
                Err(WriteError::ShuttingDown) => return Err(Refusal::NotStarted(NotStarted::NodeStopping)),
                Err(e) => {
                    warn!(job = %o.name, run = o.run_id, "claiming a run: {e}; asking again");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(CLAIM_RETRY_MAX);
                }
            }
        }
    }

    /// Waits in the queue for a slot, checking every `QUEUED_CHECK_EVERY`
    /// that the run is still to begin.
    async fn wait_for_slot(&self, o: &RunOrder, waiting: Waiting) -> Result<Slot, Refusal> {
        let slot = waiting.slot();
        tokio::pin!(slot);
        loop {
            tokio::select! {
                s = &mut slot => return Ok(s),
                _ = tokio::time::sleep(QUEUED_CHECK_EVERY) => { self.still_to_begin(o, now_ms())?; }
            }
        }
    }

    /// Runs holding a slot here, and runs waiting for one.
    pub fn counts(&self) -> (usize, usize) {
        self.slots.counts()
    }

    fn show_counts(&self) {
        let (running, queued) = self.slots.counts();
        self.metrics.runs_running.set(running as i64);
        self.metrics.runs_queued.set(queued as i64);
    }

    /// Whether run `o`, which this node will not begin for `why`, is left
    /// to a leader to take over instead of ended: when this node may no
    /// longer begin it (a stopping node; a fire whose term it no longer
    /// leads) but another node may, and the run is still pending, this
    /// fence's, and fired by a version that claims. Unclaimed, it is left
    /// as it is; claimed, its claim is given back first (`Release`, after
    /// the gate was shut for good: the process is gone), and left only if
    /// the applied state shows it given back (README, "Firing").
    async fn give_back(&self, o: &RunOrder, why: &Refusal) -> bool {
        let reason = match why {
            Refusal::NotStarted(NotStarted::NodeStopping) => NotStarted::NodeStopping,
            // A follower's manual run has no later leader to go to.
            Refusal::NotStarted(NotStarted::FenceLost) | Refusal::LeaseLapsed { .. } if o.trigger != Trigger::Manual => NotStarted::FenceLost,
            _ => return false,
        };
        let ours = |r: &state::run::Run| r.status == RunStatus::Pending && r.fence == o.fence && r.claims;
        let run = match state::run::load_run(&self.sm, o.incarnation, o.run_id) {
            Ok(Some(r)) if ours(&r) => r,
            _ => return false,
        };
        if run.claimed {
            let release = Command::Release { name: o.name.clone(), incarnation: o.incarnation, run_id: o.run_id, fence: o.fence, why: reason, at_ms: now_ms() };
            let answer = self.writer.write(release).await;
            // Decided by the applied state, as a claim is.
            let given = state::run::load_run(&self.sm, o.incarnation, o.run_id).ok().flatten().is_some_and(|r| r.released || r.fence != o.fence);
            if !given {
                warn!(job = %o.name, run = o.run_id, "could not give its claim back: {answer:?}");
                return false;
            }
        }
        info!(job = %o.name, run = o.run_id, "not beginning it ({reason}): left to the leader to take over");
        true
    }

    /// Records that run `o` did not begin, and why (unless it is left to
    /// a leader, `give_back`).
    async fn refused(&self, o: &RunOrder, why: Refusal) {
        if self.give_back(o, &why).await {
            return;
        }
        warn!(job = %o.name, run = o.run_id, "not starting: {why}");
        if let Some(status) = why.status() {
            if let RunStatus::NotStarted(reason) = &status {
                self.metrics.not_started.with_label_values(&[reason.word()]).inc();
            }
            self.record(self.end(o, status)).await;
        }
    }

    pub fn is_active(&self, run_id: u64) -> bool {
        crate::lock::lock(&self.active).contains_key(&run_id)
    }

    /// Waits (up to `bound`) for every run to end and be recorded; the
    /// node has set `stopping`, so running jobs get TERM, then KILL.
    pub async fn drain(&self, bound: Duration) {
        let start = tokio::time::Instant::now();
        while !crate::lock::lock(&self.active).is_empty() && start.elapsed() < bound {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Whatever is left is killed outright.
        for pid in crate::lock::lock(&self.active).values().flatten() {
            // SAFETY: kill(2) on a process group this executor created.
            unsafe {
                libc::kill(-(*pid as i32), libc::SIGKILL);
            }
        }
    }

    /// Marks run `id` as carried out here, from now until the guard is
    /// dropped; `None` if it already is. Called as soon as the answer
    /// accepting it arrives, before the run's task is spawned, so that no
    /// sweep finds an accepted run of this process that is neither being
    /// carried out nor still awaiting its answer. At most one task of a
    /// process carries out a run: two under one fence would both find the
    /// run claimed by that fence, and both begin it.
    pub fn register(&self, id: u64) -> Option<Active> {
        let mut active = crate::lock::lock(&self.active);
        if active.contains_key(&id) {
            return None;
        }
        active.insert(id, None);
        Some(Active(self.active.clone(), id))
    }

    /// Carries out one run from its scheduled time to its end; `_active`
    /// is its registration.
    pub async fn run(self, o: RunOrder, _active: Active) {
        // A slot first, so that processes created ahead never outnumber the cap.
        let slot = match self.slots.take((o.scheduled_ms, o.run_id)) {
            Ok(slot) => Ok(slot),
            Err(waiting) => {
                self.show_counts();
                self.wait_for_slot(&o, waiting).await
            }
        };
        self.show_counts();
        let (slot, job) = match slot.and_then(|s| self.still_to_begin(&o, now_ms()).map(|(_, job)| (s, job))) {
            Ok(ready) => ready,
            Err(why) => return self.refused(&o, why).await,
        };
        self.carry_out(&o, &job, slot).await;
        self.show_counts();
    }

    /// Creates run `o`'s process, begins it at its time if it may, follows
    /// it, and records its end; `_slot` is held until then.
    async fn carry_out(&self, o: &RunOrder, job: &state::Job, _slot: Slot) {
        // The job's own variables first; jobd's cannot be among them
        // (`state::env`), so neither overrides the other.
        let mut env = job.env.clone();
        env.extend([
            ("JOBD_JOB", o.name.clone()),
            ("JOBD_RUN_ID", o.run_id.to_string()),
            ("JOBD_SCHEDULED_TIME", crate::time::rfc3339_secs(o.scheduled_ms)),
            ("JOBD_TRIGGER", o.trigger.to_string()),
            ("JOBD_NODE", self.node.to_string()),
            ("JOBD_TERM", o.fence.term.to_string()),
            ("JOBD_ATTEMPT", format!("{}/{}", o.attempt, state::retry::attempts_for(job, false).max(o.attempt))),
        ].map(|(k, v)| (k.to_string(), v)));
        if let Some(after) = o.after_run {
            env.push(("JOBD_AFTER_RUN_ID".into(), after.to_string()));
        }
        // The process is created now, before its time, off the async
        // workers (a fork blocks its thread), and waits at its gate.
        let created = self.creator.create(job.cmd.clone(), env, self.workdir.clone(), self.run_as.clone()).await;
        let mut gated = match created {
            Ok(g) => g,
            Err(e) => return self.refused(o, Refusal::Io(e.to_string())).await,
        };
        crate::lock::lock(&self.active).insert(o.run_id, gated.child.id());
        if let Err(why) = self.claim(o).await {
            gated.abandon().await;
            return self.refused(o, why).await;
        }
        if let Some(hold) = hold_after_claim() {
            tokio::time::sleep(hold).await;
        }
        // At its time (a scheduled run's, a retry's; others now), on the
        // gate thread.
        let mut at_ms = o.begin_at_ms;
        let mut retry = LAPSED_RETRY;
        let opened = loop {
            let Some(gate) = gated.gate() else { break Err(Refusal::Io("the gate is closed".into())) };
            let (me, order) = (self.clone(), o.clone());
            let check: super::gate::Check = Box::new(move |now| me.may_begin(&order, now));
            match self.gates.open_at(at_ms, gate, check).await {
                Err(Refusal::LeaseLapsed { .. }) => {
                    // Still leading that term: the next heartbeat round renews it.
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(LAPSED_RETRY_MAX);
                    at_ms = 0;
                }
                other => break other,
            }
        };
        let started = match opened {
            Ok(at) => at,
            Err(why) => {
                gated.abandon().await;
                return self.refused(o, why).await;
            }
        };
        info!(job = %o.name, run = o.run_id, late_ms = started - o.scheduled_ms, "started");
        if o.trigger == Trigger::Schedule {
            self.metrics.lateness_seconds.observe((started - o.scheduled_ms).max(0) as f64 / 1000.0);
        }
        // Recorded while the process runs, not before following it: the
        // commit must not delay reading its output or noting its end. The
        // output sender waits for it, so the log keeps start, output, end.
        let start = Command::RunStarted { name: o.name.clone(), incarnation: o.incarnation, run_id: o.run_id, at_ms: started, fence: Some(o.fence) };
        let o = o.clone();
        let recorded = tokio::spawn({
            let me = self.clone();
            async move { me.record(start).await }
        });
        let (tx, rx) = mpsc::channel::<String>(1024);
        if let Some(out) = gated.child.stdout.take() {
            tokio::spawn(lines(out, tx.clone()));
        }
        if let Some(err) = gated.child.stderr.take() {
            tokio::spawn(lines(err, tx.clone()));
        }
        drop(tx);
        let sender = tokio::spawn(self.clone().send_output(o.clone(), rx, recorded));
        let status = self.follow(&o, &mut gated.child, job.timeout_ms).await;
        let ended = now_ms();
        // The run has ended: the reaper may let its group be (spawn.rs).
        gated.release();
        // The start and all output are recorded before the end.
        let _ = sender.await;
        self.metrics.run_seconds.observe((ended - started).max(0) as f64 / 1000.0);
        self.record(self.end_at(&o, status, ended)).await;
    }

    /// Waits for the process, killing its group on timeout or when a newer
    /// run replaced it (overlap `replace`).
    async fn follow(&self, o: &RunOrder, child: &mut tokio::process::Child, timeout_ms: Option<i64>) -> RunStatus {
        let deadline = timeout_ms.map(|t| tokio::time::Instant::now() + Duration::from_millis(t.max(0) as u64));
        let mut verdict = None;
        let mut termed_at: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                done = child.wait() => {
                    return match (verdict, done) {
                        (Some(v), _) => v,
                        (None, Ok(s)) => exit_status(s),
                        (None, Err(e)) => {
                            warn!(job = %o.name, "waiting for the run: {e}");
                            RunStatus::Lost
                        }
                    };
                }
                _ = tokio::time::sleep(CHECK_EVERY) => {
                    if let Some(at) = termed_at {
                        if at.elapsed() >= KILL_GRACE {
                            signal_group(child, libc::SIGKILL);
                        }
                        continue;
                    }
                    let cancelled = state::run::load_run(&self.sm, o.incarnation, o.run_id).ok().flatten().is_some_and(|r| r.cancel);
                    let timed_out = deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
                    let stopping = *self.stopping.borrow();
                    if cancelled || timed_out || stopping {
                        verdict = Some(if timed_out { RunStatus::Timeout } else { RunStatus::Killed });
                        // TERM first; KILL if it is still there after the grace.
                        signal_group(child, libc::SIGTERM);
                        termed_at = Some(tokio::time::Instant::now());
                    }
                }
            }
        }
    }

    /// Records the run's output in batches, once `started` (the run's start
    /// being recorded) is done; lines wait in `rx` meanwhile.
    async fn send_output(self, o: RunOrder, mut rx: mpsc::Receiver<String>, started: JoinHandle<()>) {
        let _ = started.await;
        let mut seq = 0;
        let mut batch = Vec::new();
        // A batch goes out when full, when the run ends, or BATCH_EVERY
        // after its first line.
        let mut due = tokio::time::Instant::now();
        loop {
            let next = if batch.is_empty() {
                Ok(rx.recv().await)
            } else {
                tokio::time::timeout_at(due, rx.recv()).await
            };
            let closed = matches!(next, Ok(None));
            if let Ok(Some(line)) = next {
                if batch.is_empty() {
                    due = tokio::time::Instant::now() + BATCH_EVERY;
                }
                batch.push(line);
            }
            let bytes: usize = batch.iter().map(String::len).sum();
            let flush = closed || tokio::time::Instant::now() >= due || batch.len() >= BATCH_LINES || bytes >= BATCH_BYTES;
            if !batch.is_empty() && flush {
                let lines = std::mem::take(&mut batch);
                let cmd =
                    Command::Output { name: o.name.clone(), incarnation: o.incarnation, run_id: o.run_id, seq, lines, at_ms: now_ms(), fence: Some(o.fence) };
                self.record(cmd).await;
                seq += 1;
            }
            if closed {
                return;
            }
        }
    }
}

async fn lines<R: AsyncRead + Unpin>(r: R, tx: mpsc::Sender<String>) {
    let mut reader = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        // At most 64 KiB per read: a line without end cannot grow memory.
        match (&mut reader).take(64 << 10).read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                // Invalid UTF-8 is replaced, never dropped; long lines are split.
                let line = String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']).to_string();
                for piece in split_line(&line, MAX_LINE) {
                    if tx.send(piece.to_string()).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// `line` in pieces of at most `max` bytes, cut at character boundaries.
fn split_line(line: &str, max: usize) -> Vec<&str> {
    let mut out = vec![];
    let mut rest = line;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (head, tail) = rest.split_at(cut);
        out.push(head);
        rest = tail;
    }
    out.push(rest);
    out
}

/// A signal to the run's whole process group.
fn signal_group(child: &tokio::process::Child, sig: i32) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) on the group this child leads (process_group(0)).
        unsafe {
            libc::kill(-(pid as i32), sig);
        }
    }
}

fn exit_status(s: std::process::ExitStatus) -> RunStatus {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(code), _) => RunStatus::Exit(code),
        (None, Some(sig)) => RunStatus::Signal(signal_name(sig)),
        _ => RunStatus::Lost,
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGPIPE => "SIGPIPE".into(),
        n => format!("SIG{n}"),
    }
}

/// Whether a write's answer means the run was accepted, and as which id.
pub fn accepted(r: &Response) -> Option<u64> {
    match r {
        Response::Accepted { run_id } => Some(*run_id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::split_line;

    #[test]
    fn long_lines_are_split_at_character_boundaries() {
        assert_eq!(split_line("abcdef", 4), ["abcd", "ef"]);
        assert_eq!(split_line("", 4), [""]);
        let s = "ééé"; // two bytes each
        assert_eq!(split_line(s, 3), ["é", "é", "é"]);
    }
}
