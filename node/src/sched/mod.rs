//! Leader-only scheduling. While this node holds a confirmed fence, it
//! follows every started job (`plan.rs`), and shortly before each job's
//! next time T (earlier for a time many jobs share) proposes
//! `Fire(job incarnation, T, fence)` — one fire per job at a time, in
//! order. Only an accepted fire is run, by this node, at T
//! (`executor.rs`), or by a later leader that takes it over if this node
//! never claimed it (`take_over_all`). The state machine's firing rules make a time run at
//! most once whatever the leaders do; this loop makes every time count.
//!
//! Missed times (no leader, or a leader that could not fire) follow the
//! job's catch-up policy (`due`): `once` runs the latest missed time and
//! counts the rest, `skip` counts them all, `all` runs each (the last 100);
//! times older than the catch-up window are counted and skipped first. A
//! node whose clock is more than `max_clock_skew_ms` from the quorum's does
//! not fire at all. Once a second it also ends (or, leading, takes over)
//! runs nobody will end (`sweep.rs`).

pub mod executor;
pub mod gate;
pub mod plan;
pub mod reaper;
pub mod run_as;
pub mod slots;
pub mod spawn;
pub mod sweep;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::clock::{now_ms, PeerClocks};
use crate::command::{Command, Trigger};
use crate::command::Fence;
use crate::times::Times;
use crate::state::{self, Job};
use executor::{accepted, Executor, RunOrder};
use plan::Plan;

/// Look at the jobs at least this often.
const TICK: Duration = Duration::from_millis(100);
/// At most this many missed times are counted for one catch-up.
const CATCHUP_COUNT_CAP: u32 = 100_000;
/// A time is fired as `schedule` while it is at most this late; older, it
/// was missed (no leader, or one that could not fire) and goes through the
/// job's catch-up policy, so an outage does not end in a string of late
/// `schedule` runs. How late a fired run may still *begin* is the job's
/// deadline, a separate thing (`state::run::Run::begin_by`).
pub const FIRE_WINDOW_MS: i64 = 1000;

pub struct Scheduler {
    pub executor: Executor,
    pub leadership: watch::Receiver<Option<Fence>>,
    pub clocks: Arc<PeerClocks>,
    pub max_clock_skew_ms: i64,
    /// This process's incarnation (its runs are its own to finish).
    pub incarnation: u64,
    /// How long a write may wait for its answer (`--write-timeout-ms`):
    /// after it, an accepted run nobody took up never will be.
    pub answer_bound: Duration,
}

/// How often the leader looks for runs that will never end by themselves.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// When this node's current leadership was confirmed, to log how long its
/// first fire took (a slow one after a failover: README, "Firing").
struct Leading {
    fence: Fence,
    confirmed: Instant,
    first_fire_logged: std::sync::atomic::AtomicBool,
}

/// What to propose for a job now.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    Fire { scheduled_ms: i64, trigger: Trigger, skipped: u32 },
    /// Pass over `count` missed times up to `until_ms` without a run.
    Skip { until_ms: i64, count: u32, reason: &'static str },
    /// The job's pending attempt of `scheduled_ms`, due at `at_ms`.
    Retry { scheduled_ms: i64, attempt: u32, at_ms: i64 },
}

/// At most this many missed times are run by catch-up `all`.
const CATCHUP_ALL_CAP: usize = 100;

/// The next thing to propose for `job` as of `now_ms`, proposing a time
/// `lead_ms` before it (`plan::lead_ms`): `Ok(due)` when it should be
/// proposed now, `Err(wait_ms)` when not yet (or never: `i64::MAX`). A
/// pending retry (`state::retry`) is proposed like a scheduled time, at
/// its retry-at, and first when both are near.
pub fn due(job: &Job, now_ms: i64, lead_ms: i64) -> Result<Due, i64> {
    let retry_wait = match job.retry_pending {
        Some(p) if p.at_ms - now_ms <= lead_ms => {
            return Ok(Due::Retry { scheduled_ms: p.scheduled_ms, attempt: p.attempt, at_ms: p.at_ms });
        }
        Some(p) => p.at_ms - now_ms - lead_ms,
        None => i64::MAX,
    };
    due_time(job, now_ms, lead_ms).map_err(|wait| wait.min(retry_wait))
}

/// `due` for the job's scheduled times.
fn due_time(job: &Job, now_ms: i64, lead_ms: i64) -> Result<Due, i64> {
    use crate::command::Catchup;
    let Some(times) = Times::of(job) else { return Err(i64::MAX) };
    let Some(next_ms) = times.next_after(plan::last_time(job)) else { return Err(i64::MAX) };
    if next_ms - now_ms > lead_ms {
        return Err(next_ms - now_ms - lead_ms);
    }
    if now_ms - next_ms <= FIRE_WINDOW_MS {
        return Ok(Due::Fire { scheduled_ms: next_ms, trigger: Trigger::Schedule, skipped: 0 });
    }
    // Missed times: those older than the window first, then the policy.
    let window_start = job.catchup_window_ms.map_or(i64::MIN, |w| now_ms - w);
    let mut outside = (0u32, None::<i64>);
    let mut inside: Vec<i64> = vec![];
    let mut inside_count = 0u32;
    let mut ms = next_ms;
    for _ in 0..CATCHUP_COUNT_CAP {
        if ms > now_ms {
            break;
        }
        if ms < window_start {
            outside = (outside.0 + 1, Some(ms));
        } else {
            inside_count += 1;
            if inside.len() < CATCHUP_ALL_CAP + 1 {
                inside.push(ms);
            } else {
                // Keep the most recent ones for `all`.
                inside.remove(0);
                inside.push(ms);
            }
        }
        match times.next_after(ms) {
            Some(n) => ms = n,
            None => break,
        }
    }
    if let (n, Some(until_ms)) = outside {
        return Ok(Due::Skip { until_ms, count: n, reason: "outside the catch-up window" });
    }
    let Some(&last) = inside.last() else { return Err(TICK.as_millis() as i64) };
    Ok(match job.catchup {
        Catchup::Once => Due::Fire { scheduled_ms: last, trigger: Trigger::Catchup, skipped: inside_count - 1 },
        Catchup::Skip => Due::Skip { until_ms: last, count: inside_count, reason: "catch-up skip" },
        Catchup::All if inside_count as usize > CATCHUP_ALL_CAP => {
            // `inside` holds the last 101: skip up to the one before the last 100.
            let until_ms = inside[inside.len() - CATCHUP_ALL_CAP - 1];
            Due::Skip { until_ms, count: inside_count - CATCHUP_ALL_CAP as u32, reason: "catch-up all runs the last 100" }
        }
        Catchup::All => Due::Fire { scheduled_ms: inside[0], trigger: Trigger::Catchup, skipped: 0 },
    })
}

impl Scheduler {
    /// Runs until the node's leadership watch closes.
    pub async fn run(mut self) {
        let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
        let mut warned_skew = false;
        let mut leading_since: Option<Arc<Leading>> = None;
        let mut last_sweep = Instant::now();
        // What is known of the started jobs, while leading.
        let mut plan: Option<Plan> = None;
        loop {
            if *self.executor.stopping.borrow() {
                return;
            }
            let Some(fence) = *self.leadership.borrow_and_update() else {
                leading_since = None;
                // Read everything afresh when leading again.
                plan = None;
                // Not leading: only this process's own unanswered runs.
                if last_sweep.elapsed() >= SWEEP_EVERY {
                    last_sweep = Instant::now();
                    self.sweep(None);
                }
                tokio::select! {
                    _ = tokio::time::sleep(SWEEP_EVERY) => {}
                    changed = self.leadership.changed() => if changed.is_err() { return },
                }
                continue;
            };
            let leading = match &leading_since {
                Some(l) if l.fence == fence => l.clone(),
                _ => {
                    let l = Arc::new(Leading { fence, confirmed: Instant::now(), first_fire_logged: Default::default() });
                    leading_since = Some(l.clone());
                    // Confirmed, so everything earlier terms committed is applied here.
                    self.take_over_all(fence);
                    l
                }
            };
            if last_sweep.elapsed() >= SWEEP_EVERY {
                last_sweep = Instant::now();
                self.sweep(Some((fence, leading.confirmed.elapsed())));
            }
            let skew = self.clocks.skew_ms();
            let mut wait_ms = TICK.as_millis() as i64;
            if skew.abs() > self.max_clock_skew_ms {
                if !warned_skew {
                    warn!(skew_ms = skew, max_ms = self.max_clock_skew_ms, "clock differs from the quorum's: not firing");
                    warned_skew = true;
                }
            } else {
                warned_skew = false;
                let plan = plan.get_or_insert_with(|| {
                    self.executor.sm.mark_all_jobs_changed();
                    Plan::default()
                });
                wait_ms = wait_ms.min(self.tick(&leading, plan, &in_flight));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait_ms.clamp(1, TICK.as_millis() as i64) as u64)) => {}
                changed = self.leadership.changed() => if changed.is_err() { return },
            }
        }
    }

    /// The runs, not ended, this node is not carrying out.
    fn active_runs(&self) -> Vec<(u64, state::run::Run)> {
        let active = match self.executor.sm.scan(state::run::ACTIVE_PREFIX) {
            Ok(r) => r,
            Err(e) => {
                warn!("cannot read runs: {e}");
                return vec![];
            }
        };
        let p = state::run::ACTIVE_PREFIX.len();
        let mut out = vec![];
        for (k, _) in active {
            let (Some(inc), Some(id)) = (k.get(p..p + 8), k.get(p + 8..p + 16)) else { continue };
            let incarnation = u64::from_be_bytes(inc.try_into().unwrap_or_default());
            let id = u64::from_be_bytes(id.try_into().unwrap_or_default());
            if self.executor.is_active(id) {
                continue;
            }
            if let Ok(Some(run)) = state::run::load_run(&self.executor.sm, incarnation, id) {
                if !run.ended() {
                    out.push((incarnation, run));
                }
            }
        }
        out
    }

    /// As a newly confirmed leader: claims every accepted run that nobody
    /// claimed, still within its deadline, of any process but this one or
    /// of this one in an earlier term (the old leader's fires it died
    /// before beginning, a node's manual runs, the runs this process gave
    /// back when its lease of an earlier term ran out), and begins each
    /// itself (README, "Firing": the first claim in the log wins, so a node
    /// that claims it too is refused).
    fn take_over_all(&self, fence: Fence) {
        let now = now_ms();
        for (incarnation, run) in self.active_runs() {
            let mine = run.fence.node == self.executor.node && run.fence.incarnation == self.incarnation;
            if (!mine || run.fence.term < fence.term) && sweep::may_take_over(&run, now) && !sweep::held_back(&run, now) {
                self.take_over(incarnation, run, fence);
            }
        }
    }

    /// Carries out a run of this leadership that no task here carries
    /// (`sweep`): its fire's answer never came, or has not yet. Its claim
    /// (`Begin`, under the run's own fence) decides, and `register` makes
    /// sure an answer that does come starts no second task.
    fn adopt(&self, incarnation: u64, run: state::run::Run) {
        let Some(active) = self.executor.register(run.id) else { return };
        info!(job = %run.job, run = run.id, "carrying out a run of this leadership whose fire's answer has not come");
        self.executor.metrics.taken_over.inc();
        let order = RunOrder::of_run(incarnation, &run, run.fence);
        tokio::spawn(self.executor.clone().run(order, active));
    }

    /// Proposes `TakeOver` for `run` under `fence`; once accepted, carries
    /// it out as this node's own.
    fn take_over(&self, incarnation: u64, run: state::run::Run, fence: Fence) {
        // Registered first, so no sweep looks at it meanwhile.
        let Some(active) = self.executor.register(run.id) else { return };
        let executor = self.executor.clone();
        tokio::spawn(async move {
            let cmd = Command::TakeOver { name: run.job.clone(), incarnation, run_id: run.id, fence, at_ms: now_ms() };
            let answer = executor.writer.write(cmd).await;
            // Decided by the applied state, as a claim is: an answer lost
            // (or a repeat refused) after the take-over committed still
            // leaves the run ours to carry out.
            let ours = state::run::load_run(&executor.sm, incarnation, run.id)
                .ok()
                .flatten()
                .is_some_and(|r| r.claimed && r.fence == fence && !r.ended());
            if !ours {
                return debug!(job = %run.job, run = run.id, "take-over not ours: {answer:?}");
            }
            info!(job = %run.job, run = run.id, from = run.fence.node, "took over a run nobody claimed");
            executor.metrics.taken_over.inc();
            let order = RunOrder::of_run(incarnation, &run, fence);
            executor.clone().run(order, active).await;
        });
    }

    /// Proposes what is due; returns how long until something may be.
    fn tick(&self, leading: &Arc<Leading>, plan: &mut Plan, in_flight: &Arc<Mutex<HashSet<String>>>) -> i64 {
        plan.refresh(&self.executor.sm);
        let (cap, cost_us) = (self.executor.slots.max(), self.executor.creator.cost_us());
        let now = now_ms();
        let (near, mut wait) = plan.near(now, |herd| plan::lead_ms(herd, cap, cost_us));
        for plan::Near { name, lead_ms } in near {
            if crate::lock::lock(in_flight).contains(&name) {
                continue;
            }
            // Decided on the record as applied now, not as last read.
            let Ok(Some(job)) = state::load_job(&self.executor.sm, &name) else { continue };
            if !job.started {
                continue;
            }
            match due(&job, now, lead_ms) {
                Err(w) => wait = wait.min(w),
                Ok(d) => {
                    crate::lock::lock(in_flight).insert(name.clone());
                    let (executor, in_flight, leading) = (self.executor.clone(), in_flight.clone(), leading.clone());
                    // The job's next fire waits until this one is applied here
                    // (which marks the job changed, so the plan reads it again).
                    tokio::spawn(async move {
                        fire(executor, job, d, &leading).await;
                        crate::lock::lock(&in_flight).remove(&name);
                    });
                }
            }
        }
        wait
    }
}

/// Proposes one fire (or skip, or retry) and, if accepted, carries out its run.
async fn fire(executor: Executor, job: Job, d: Due, leading: &Leading) {
    let fence = leading.fence;
    let (scheduled_ms, trigger, skipped) = match d {
        Due::Fire { scheduled_ms, trigger, skipped } => (scheduled_ms, trigger, skipped),
        Due::Retry { scheduled_ms, attempt, at_ms } => return fire_retry(executor, job, (scheduled_ms, attempt, at_ms), fence).await,
        Due::Skip { until_ms, count, reason } => {
            let cmd = Command::SkipTimes {
                name: job.name.clone(),
                incarnation: job.incarnation,
                until_ms,
                count,
                reason: reason.into(),
                fence,
            };
            match executor.writer.write(cmd).await {
                Ok(crate::command::Response::Done) => executor.metrics.skipped_times.inc_by(count as u64),
                Ok(_) => {}
                Err(e) => debug!(job = %job.name, "skip not committed: {e}"),
            }
            return;
        }
    };
    let cmd = Command::Fire { name: job.name.clone(), incarnation: job.incarnation, scheduled_ms, trigger, skipped, fence, at_ms: now_ms(), claims: true };
    let proposed = Instant::now();
    let answer = executor.writer.write(cmd).await;
    let answer = if lose_fire_answer() { Err(crate::write::WriteError::Timeout) } else { answer };
    match answer {
        Ok(r) => match accepted(&r) {
            Some(run_id) => {
                if !leading.first_fire_logged.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    info!(
                        job = %job.name,
                        term = fence.term,
                        confirmed_to_proposed_ms = proposed.duration_since(leading.confirmed).as_millis() as u64,
                        proposed_to_applied_ms = proposed.elapsed().as_millis() as u64,
                        "first fire of this leadership"
                    );
                }
                executor.metrics.fires.inc();
                executor.metrics.skipped_times.inc_by(skipped as u64);
                let begin_at_ms = if trigger == Trigger::Schedule { scheduled_ms } else { 0 };
                let order = RunOrder { name: job.name, incarnation: job.incarnation, run_id, scheduled_ms, trigger, fence, begin_at_ms, attempt: 1, after_run: None };
                carry_out(executor, order);
            }
            None => debug!(job = %job.name, "fire refused: {r:?}"),
        },
        Err(e) => debug!(job = %job.name, "fire not committed: {e}"),
    }
}

/// A test seam: `JOBD_TEST_LOSE_FIRE_ANSWERS=N` drops the answers to this
/// process's first N fire proposals (answered as a write that timed out;
/// an accepted one stays accepted, as such a write may be), so a test can
/// check that such a run is still begun, once
/// (`cluster-tests/tests/takeover.rs`).
fn lose_fire_answer() -> bool {
    static LEFT: std::sync::OnceLock<std::sync::atomic::AtomicU32> = std::sync::OnceLock::new();
    let left = LEFT.get_or_init(|| {
        let n = std::env::var("JOBD_TEST_LOSE_FIRE_ANSWERS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        std::sync::atomic::AtomicU32::new(n)
    });
    left.fetch_update(std::sync::atomic::Ordering::Relaxed, std::sync::atomic::Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
}

/// Carries out an accepted fire's run, unless this process already does
/// (the sweep adopted it while the fire's answer was late).
fn carry_out(executor: Executor, order: RunOrder) {
    match executor.register(order.run_id) {
        Some(active) => drop(tokio::spawn(executor.run(order, active))),
        None => debug!(job = %order.name, run = order.run_id, "already carried out here"),
    }
}

/// Proposes the job's pending attempt (`FireRetry`) and, if accepted,
/// carries out its run from its retry-at.
async fn fire_retry(executor: Executor, job: Job, (scheduled_ms, attempt, at_ms): (i64, u32, i64), fence: Fence) {
    let cmd = Command::FireRetry { name: job.name.clone(), incarnation: job.incarnation, scheduled_ms, attempt, fence, at_ms: now_ms() };
    match executor.writer.write(cmd).await {
        Ok(r) => match accepted(&r) {
            Some(run_id) => {
                executor.metrics.retries.inc();
                let trigger = Trigger::Retry;
                let order = RunOrder { name: job.name, incarnation: job.incarnation, run_id, scheduled_ms, trigger, fence, begin_at_ms: at_ms, attempt, after_run: None };
                carry_out(executor, order);
            }
            None => debug!(job = %job.name, attempt, "retry refused: {r:?}"),
        },
        Err(e) => debug!(job = %job.name, attempt, "retry not committed: {e}"),
    }
}

#[cfg(test)]
mod tests;
