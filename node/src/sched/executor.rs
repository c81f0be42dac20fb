//! Starting and following runs on the node that proposed them: create the
//! run's process at its gate (`spawn.rs`), have the gate thread open it at
//! the scheduled time within the start deadline (`gate.rs`; else kill it
//! and record `not-started`), stream its output back into the replicated
//! log in numbered batches, and record how it ended. Every record is a command
//! through the write path, retried until it is applied (each is
//! idempotent: a repeat is refused by the state machine, not doubled).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::gate::Refusal;
use crate::clock::now_ms;
use crate::command::{Command, Response, RunStatus, Trigger};
use crate::write::{WriteError, Writer};
use crate::state;
use crate::store::state_machine::StateMachine;

/// How late after its scheduled time a run may still start.
pub const START_DEADLINE_MS: i64 = 1000;
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
    /// Runs this node carries out at once (`--max-concurrent-runs`);
    /// beyond it a run is `not-started`.
    pub max_runs: usize,
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
struct Active(Arc<Mutex<HashMap<u64, Option<u32>>>>, u64);

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
        Command::RunEnded { name: o.name.clone(), incarnation: o.incarnation, run_id: o.run_id, status, at_ms }
    }

    /// The job of a run, if that incarnation still wants it run (started,
    /// or the run is manual).
    fn still_wanted(&self, o: &RunOrder) -> Option<state::Job> {
        match state::load_job(&self.sm, &o.name) {
            Ok(Some(j)) if j.incarnation == o.incarnation && (j.started || o.trigger == Trigger::Manual) => Some(j),
            _ => None,
        }
    }

    /// The last checks before run `o` starts, at `now`. The scheduler does
    /// not fire while this node's clock is off; the skew check catches a
    /// clock that stepped after the fire was proposed (whose scheduled time
    /// came from the stepped clock).
    fn may_start(&self, o: &RunOrder, now: i64) -> Result<(), Refusal> {
        let late_ms = now - o.scheduled_ms;
        if o.trigger == Trigger::Schedule && late_ms > START_DEADLINE_MS {
            return Err(Refusal::TooLate { late_ms });
        }
        let skew_ms = self.clocks.skew_ms();
        if o.trigger != Trigger::Manual && skew_ms.abs() > self.max_clock_skew_ms {
            return Err(Refusal::ClockOff { skew_ms });
        }
        if *self.stopping.borrow() {
            return Err(Refusal::Stopping);
        }
        self.still_wanted(o).map(|_| ()).ok_or(Refusal::NotWanted)
    }

    fn over_limit(&self) -> bool {
        crate::lock::lock(&self.active).values().filter(|p| p.is_some()).count() >= self.max_runs
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

    /// Carries out one run from its scheduled time to its end.
    pub async fn run(self, o: RunOrder) {
        crate::lock::lock(&self.active).insert(o.run_id, None);
        let _active = Active(self.active.clone(), o.run_id);
        // Stop and delete cancel accepted runs that have not started.
        let Some(job) = self.still_wanted(&o) else { return self.record(self.end(&o, RunStatus::NotStarted)).await };
        if self.over_limit() {
            warn!(job = %o.name, run = o.run_id, "{} runs already running here (--max-concurrent-runs): not starting", self.max_runs);
            return self.record(self.end(&o, RunStatus::NotStarted)).await;
        }
        let env = [
            ("JOBD_JOB", o.name.clone()),
            ("JOBD_RUN_ID", o.run_id.to_string()),
            ("JOBD_SCHEDULED_TIME", crate::time::rfc3339_secs(o.scheduled_ms)),
            ("JOBD_TRIGGER", o.trigger.to_string()),
            ("JOBD_NODE", self.node.to_string()),
        ];
        // The process is created now, before its time, off the async
        // workers (a fork blocks its thread), and waits at its gate.
        let created = self.creator.create(job.cmd.clone(), env.to_vec(), self.workdir.clone(), self.run_as.clone()).await;
        let mut gated = match created {
            Ok(g) => g,
            Err(e) => {
                warn!(job = %o.name, "cannot start: {e}");
                return self.record(self.end(&o, RunStatus::NotStarted)).await;
            }
        };
        crate::lock::lock(&self.active).insert(o.run_id, gated.child.id());
        // At its time (a scheduled run; others now), on the gate thread:
        // still wanted, not too late, this node's clock not off?
        let at_ms = if o.trigger == Trigger::Schedule { o.scheduled_ms } else { 0 };
        let (me, order) = (self.clone(), o.clone());
        let check: super::gate::Check = Box::new(move |now| me.may_start(&order, now));
        let opened = match gated.gate() {
            Some(gate) => self.gates.open_at(at_ms, gate, check).await,
            None => Err(Refusal::Io("the gate is closed".into())),
        };
        let started = match opened {
            Ok(at) => at,
            Err(why) => {
                warn!(job = %o.name, run = o.run_id, "not starting: {why}");
                gated.abandon().await;
                return self.record(self.end(&o, RunStatus::NotStarted)).await;
            }
        };
        info!(job = %o.name, run = o.run_id, late_ms = started - o.scheduled_ms, "started");
        if o.trigger == Trigger::Schedule {
            self.metrics.lateness_seconds.observe((started - o.scheduled_ms).max(0) as f64 / 1000.0);
        }
        // Recorded while the process runs, not before following it: the
        // commit must not delay reading its output or noting its end. The
        // output sender waits for it, so the log keeps start, output, end.
        let start = Command::RunStarted { name: o.name.clone(), incarnation: o.incarnation, run_id: o.run_id, at_ms: started };
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
        // The guard has exited: its watcher may go (see spawn.rs).
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
                    Command::Output { name: o.name.clone(), incarnation: o.incarnation, run_id: o.run_id, seq, lines, at_ms: now_ms() };
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
