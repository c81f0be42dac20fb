//! Commands: every change to jobd's state is one of these, proposed through
//! Raft and applied by the state machine. Times travel inside commands (the
//! state machine never reads a clock), as Unix milliseconds.

use serde::{Deserialize, Serialize};

/// A member's id in the cluster (openraft's node id).
pub type NodeId = u64;

/// Identifies one leadership of one process: commands proposed under a
/// fence can be told apart from those of any earlier leader or process.
/// Part of the vocabulary (commands carry it); `leadership.rs` decides when
/// a node holds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    pub term: u64,
    pub node: NodeId,
    /// Chosen when the process starts, so a restarted node is a new incarnation.
    pub incarnation: u64,
}

/// Why a run exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trigger {
    Schedule,
    Catchup,
    Manual,
    /// A later attempt of a scheduled or catch-up time whose run failed
    /// (`retry`) or was lost (`onlost rerun`).
    Retry,
    /// A run of a job this one follows ended as its `after` rule asks
    /// (`chain.rs`).
    After,
}

/// What to do when a run is due while an earlier one of the job still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Overlap {
    /// Run them side by side (classic cron).
    #[default]
    Allow,
    /// Skip the new time (counted in the log).
    Skip,
    /// Kill the running one, start the new one.
    Replace,
}

/// What to do with times missed while no leader could fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Catchup {
    /// One run for the whole missed period (systemd's `Persistent=`).
    #[default]
    Once,
    /// None: the missed times are counted and skipped.
    Skip,
    /// Every missed time, in order (the most recent 100 at most).
    All,
}

/// What to do with a run that ended `lost` (it may have begun, and may
/// even still run on a node that was only cut off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OnLost {
    /// Nothing: at most once.
    #[default]
    Skip,
    /// Run its time again as a new attempt: at least once, for jobs whose
    /// user says they can take it.
    Rerun,
}

/// `retry N [BACKOFF]`: a failed run of a scheduled time is run again, up
/// to `retries` more times, the first `backoff_ms` after the failure, each
/// next one twice as long after (at most `MAX_BACKOFF_MS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retry {
    pub retries: u32,
    pub backoff_ms: i64,
}

impl Retry {
    pub const MAX_RETRIES: u32 = 100;
    pub const DEFAULT_BACKOFF_MS: i64 = 10_000;
    pub const MAX_BACKOFF_MS: i64 = 3_600_000;

    /// How long after attempt `failed` (1 is the first) ended the next
    /// one is due: the backoff, doubled for each attempt before, capped.
    pub fn delay_after_ms(backoff_ms: i64, failed: u32) -> i64 {
        let doublings = failed.saturating_sub(1).min(32);
        backoff_ms.saturating_mul(1i64 << doublings).min(Retry::MAX_BACKOFF_MS)
    }
}

/// The words users read and write for [`Trigger`], [`Overlap`] and
/// [`Catchup`]: one table each, used by `Display` (the `runs` and `ctl`
/// files, `JOBD_TRIGGER`) and `FromStr` (ctl verbs). Debug is not a
/// format anyone reads.
macro_rules! spelled {
    ($ty:ident { $($variant:ident => $word:literal),+ $(,)? }) => {
        impl $ty {
            /// Every word, in the order the docs list them.
            pub const WORDS: &'static [&'static str] = &[$($word),+];

            pub fn word(self) -> &'static str {
                match self {
                    $($ty::$variant => $word),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.word())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = ();

            fn from_str(s: &str) -> Result<$ty, ()> {
                match s {
                    $($word => Ok($ty::$variant),)+
                    _ => Err(()),
                }
            }
        }
    };
}

spelled!(Trigger { Schedule => "schedule", Catchup => "catchup", Manual => "manual", Retry => "retry", After => "after" });
spelled!(On { Success => "success", Failure => "failure", Always => "always" });

/// Which ends of another job's runs start this one (`after JOB [ON]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum On {
    /// `exit 0`.
    #[default]
    Success,
    /// Any other status a run that began ends with: `exit N`, `signal`,
    /// `timeout`, `killed`.
    Failure,
    /// Every end, `lost` and `not-started` included.
    Always,
}

/// One `after` rule of a job: run when a run of `job` ends as `on` asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct After {
    pub job: String,
    pub on: On,
}
spelled!(OnLost { Skip => "skip", Rerun => "rerun" });
spelled!(Overlap { Allow => "allow", Skip => "skip", Replace => "replace" });
spelled!(Catchup { Once => "once", Skip => "skip", All => "all" });

/// `notify URL [ON]`: POST each matching run end to `url` (`state::notify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    pub url: String,
    pub on: On,
}

/// A job's notification setting.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum NotifyRule {
    /// The cluster's default (`notify` on /ctl), if any.
    #[default]
    Default,
    /// None, whatever the default.
    Off,
    To(Notify),
}

impl NotifyRule {
    pub fn is_default(&self) -> bool {
        *self == NotifyRule::Default
    }
}

/// A per-job policy, set through `ctl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Policy {
    Overlap(Overlap),
    /// The catch-up mode, and how far back missed times count (None: forever).
    Catchup { mode: Catchup, window_ms: Option<i64> },
    /// Kill a run after this long (None: never).
    Timeout(Option<i64>),
    /// How late an accepted run may still begin (None: the cluster's
    /// `limit deadline`).
    Deadline(Option<i64>),
    /// Move every time later by the name's offset in `[0, spread)` (None:
    /// off); like a change of expression, it re-arms the job at `at_ms`.
    Spread { spread_ms: Option<i64>, at_ms: i64 },
    /// Retries of failed scheduled runs (None: off). A pending attempt
    /// the new policy does not allow is cancelled.
    Retry(Option<Retry>),
    OnLost(OnLost),
}

/// How a run ended (or that it is still going).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "wire::RunStatus", into = "wire::RunStatus")]
pub enum RunStatus {
    /// Accepted, not started yet (waiting for its time, or for a slot).
    Pending,
    Running,
    Exit(i32),
    Signal(String),
    Timeout,
    Killed,
    Lost,
    /// Accepted but never begun, and why.
    NotStarted(NotStarted),
}

/// Why an accepted run never began. Every one is recorded, in `runs`, the
/// job's log and a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotStarted {
    /// The job was stopped before the run began.
    Stopped,
    /// The job was deleted (or deleted and created again).
    Deleted,
    /// Its deadline passed while it waited (for its node, or for a slot).
    Deadline,
    /// The node that was to begin it is no longer the leader of the term
    /// it was fired in (its lease ended without renewal).
    FenceLost,
    /// The node's clock disagreed with the quorum's at its time.
    Clock,
    /// The node was stopping.
    NodeStopping,
    /// The node that was to begin it restarted, went silent or never took
    /// it up; ended by the leader's sweep.
    NodeGone,
    /// Its process could not be created.
    CannotStart,
    /// Accepted, but the answer never reached the node that proposed it
    /// (its write gave up), so nobody took it up. (Stored as `Unclaimed`,
    /// its name before claims were a thing of their own.)
    #[serde(rename = "Unclaimed")]
    Unanswered,
    /// Recorded by a version that kept no reason.
    Unrecorded,
}

spelled!(NotStarted {
    Stopped => "stopped",
    Deleted => "deleted",
    Deadline => "deadline",
    FenceLost => "fence lost",
    Clock => "clock",
    NodeStopping => "node stopping",
    NodeGone => "node gone",
    CannotStart => "cannot start",
    Unanswered => "unanswered",
    Unrecorded => "unrecorded",
});

/// How a [`RunStatus`] is stored: records written before not-started had
/// a reason say `"NotStarted"`, and still read.
mod wire {
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Serialize, Deserialize)]
    pub enum RunStatus {
        Pending,
        Running,
        Exit(i32),
        Signal(String),
        Timeout,
        Killed,
        Lost,
        NotStarted,
        NotStartedBecause(crate::command::NotStarted),
    }

    impl From<RunStatus> for crate::command::RunStatus {
        fn from(w: RunStatus) -> crate::command::RunStatus {
            use crate::command::RunStatus as S;
            match w {
                RunStatus::Pending => S::Pending,
                RunStatus::Running => S::Running,
                RunStatus::Exit(n) => S::Exit(n),
                RunStatus::Signal(s) => S::Signal(s),
                RunStatus::Timeout => S::Timeout,
                RunStatus::Killed => S::Killed,
                RunStatus::Lost => S::Lost,
                RunStatus::NotStarted => S::NotStarted(crate::command::NotStarted::Unrecorded),
                RunStatus::NotStartedBecause(why) => S::NotStarted(why),
            }
        }
    }

    impl From<crate::command::RunStatus> for RunStatus {
        fn from(s: crate::command::RunStatus) -> RunStatus {
            use crate::command::RunStatus as S;
            match s {
                S::Pending => RunStatus::Pending,
                S::Running => RunStatus::Running,
                S::Exit(n) => RunStatus::Exit(n),
                S::Signal(s) => RunStatus::Signal(s),
                S::Timeout => RunStatus::Timeout,
                S::Killed => RunStatus::Killed,
                S::Lost => RunStatus::Lost,
                S::NotStarted(why) => RunStatus::NotStartedBecause(why),
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A node process tells the cluster where its 9P service listens, and
    /// which process incarnation it is (runs fenced by an older one died
    /// with it).
    AnnounceNode { id: NodeId, fs_addr: String, incarnation: u64 },
    /// A node's `--labels` (sorted by key), written after its
    /// `AnnounceNode` when it has any or had some. A command of its own,
    /// not a field of `AnnounceNode`: a version before labels must refuse
    /// it (and stop) rather than apply the announce without them and
    /// diverge from the nodes that kept them.
    NodeLabels { id: NodeId, labels: Vec<(String, String)> },
    /// Creates a stopped job. `schedule` has been parsed by the proposer.
    CreateJob { name: String, schedule: String, cmd: String, at_ms: i64 },
    StartJob { name: String, at_ms: i64 },
    /// Stops the job; `at_ms` (its proposer's clock; 0 from versions
    /// before retries) stamps what it cancels in the log.
    StopJob {
        name: String,
        #[serde(default)]
        at_ms: i64,
    },
    DeleteJob { name: String },
    SetCmd { name: String, cmd: String },
    SetSchedule { name: String, schedule: String, at_ms: i64 },
    /// Sets the job's time zone (an IANA name, checked by the proposer).
    SetTz { name: String, tz: String, at_ms: i64 },
    /// `after JOB [ON]` (`Some`: added, or its condition replaced) or
    /// `after off` (`None`: every rule cleared). Refused when JOB does not
    /// exist, is the job itself, or follows it already, directly or not
    /// (a cycle).
    Follow { name: String, after: Option<After> },
    /// The leader asks to run `incarnation` of the job for `scheduled_ms`.
    /// Accepted only if that incarnation is started and the time is later
    /// than both its last accepted time and its armed-at; `skipped` times
    /// before it were passed over by the catch-up policy. `at_ms` is when
    /// it was proposed (a catch-up run's deadline counts from it).
    Fire {
        name: String,
        incarnation: u64,
        scheduled_ms: i64,
        trigger: Trigger,
        skipped: u32,
        fence: Fence,
        #[serde(default)]
        at_ms: i64,
        /// The proposer claims its runs before beginning them (`Begin`),
        /// so a run it never claimed may be taken over. False from
        /// versions before claims: their runs are never taken over.
        #[serde(default)]
        claims: bool,
    },
    /// Scheduled times passed over without a run (catch-up `skip`, or
    /// outside the catch-up window): the last accepted time moves to
    /// `until_ms`, under the same rules as a fire.
    SkipTimes { name: String, incarnation: u64, until_ms: i64, count: u32, reason: String, fence: Fence },
    /// The leader asks to run the job's pending retry: attempt `attempt`
    /// of `scheduled_ms`. Accepted only if that incarnation is started
    /// and that very attempt is pending, which the acceptance ends, so an
    /// attempt is accepted at most once (README, "Retries"). `at_ms` as
    /// for `Fire`; its proposer always claims.
    FireRetry { name: String, incarnation: u64, scheduled_ms: i64, attempt: u32, fence: Fence, at_ms: i64 },
    /// A manual run (`run`, `run force`): never moves the last accepted
    /// time; unless forced, it respects the overlap policy.
    /// `claims` as for `Fire`.
    RunNow {
        name: String,
        incarnation: u64,
        fence: Fence,
        at_ms: i64,
        force: bool,
        #[serde(default)]
        claims: bool,
    },
    /// `at_ms`: its proposer's clock (0 from versions before retries),
    /// which stamps what it cancels in the log.
    SetPolicy {
        name: String,
        policy: Policy,
        #[serde(default)]
        at_ms: i64,
    },
    /// `kill` on ctl: the job's unfinished runs are told to end (`killed`).
    /// Also cancels a pending retry (`at_ms` as for `StopJob`).
    KillRuns {
        name: String,
        incarnation: u64,
        #[serde(default)]
        at_ms: i64,
    },
    /// The claim of the node that will begin the run (its own fire or
    /// manual run: `fence` is the run's). Accepted once per run, only if
    /// no claim came before it in the log; the node opens the run's gate
    /// only after its claim is applied and accepted (README, "Firing").
    Begin { name: String, incarnation: u64, run_id: u64, fence: Fence },
    /// A new leader's claim of an accepted run nobody claimed: the run
    /// becomes its own (`fence`, proposed `at_ms`), under the same rule as
    /// `Begin`: accepted only if no claim came before it.
    TakeOver { name: String, incarnation: u64, run_id: u64, fence: Fence, at_ms: i64 },
    /// The claimer gives its claim back: it shut the run's gate for good
    /// without beginning it (its lease in the fire's term ended, or the
    /// node is stopping), so a leader may take it over. Accepted only from
    /// the claim's own fence while the run is pending; from then on only
    /// a `TakeOver` may claim it (README, "Firing").
    Release { name: String, incarnation: u64, run_id: u64, fence: Fence, why: NotStarted, at_ms: i64 },
    /// The claiming node started the run's process. `fence`: the claim's
    /// (refused from any other); None from nodes from before claims.
    RunStarted {
        name: String,
        incarnation: u64,
        run_id: u64,
        at_ms: i64,
        #[serde(default)]
        fence: Option<Fence>,
    },
    /// Lines of a run's output, in order: `seq` counts batches from 0.
    /// `fence` as for `RunStarted`.
    Output {
        name: String,
        incarnation: u64,
        run_id: u64,
        seq: u64,
        lines: Vec<String>,
        at_ms: i64,
        #[serde(default)]
        fence: Option<Fence>,
    },
    /// The run is over (or never started, or was lost). `fence`: the
    /// run's own node's (refused from any other): its node's own end, or
    /// the sweep's for a node it judged gone; None from versions before
    /// claims.
    RunEnded {
        name: String,
        incarnation: u64,
        run_id: u64,
        status: RunStatus,
        at_ms: i64,
        #[serde(default)]
        fence: Option<Fence>,
    },
    /// A write of `/jobs/NAME/env`: the job's environment, replaced
    /// (`state::env` says what it may hold; apply checks again).
    SetEnv { name: String, env: Vec<(String, String)> },
    /// `limit NAME VALUE` on /ctl: one of the cluster's limits (`state::limits`).
    SetLimit { name: String, value: u64 },
    /// `notify ...` on a job's ctl (`name`), or on /ctl (`None`: the
    /// cluster's default, which cannot be `Default`).
    SetNotify { name: Option<String>, rule: NotifyRule },
    /// The leader's delivery loop: delivery `seq` was answered 2xx
    /// (removed), or failed (`error`: its attempt counted, its next one
    /// due after a backoff, or given up a day after it was made). A seq
    /// no longer pending is ignored (`state::notify`).
    Notified { seq: u64, error: Option<String>, at_ms: i64 },
    /// Several commands in one log entry (group commit on the leader,
    /// `propose.rs`), applied in order; never nested.
    Batch(Vec<Command>),
}

impl Command {
    /// Roughly how many bytes the command takes in an entry (its text).
    pub fn approx_bytes(&self) -> usize {
        64 + match self {
            Command::Output { lines, .. } => lines.iter().map(|l| l.len() + 4).sum(),
            Command::CreateJob { name, schedule, cmd, .. } => name.len() + schedule.len() + cmd.len(),
            Command::SetCmd { name, cmd } => name.len() + cmd.len(),
            // JSON may double a value (escaped quotes and backslashes).
            Command::SetEnv { name, env } => name.len() + env.iter().map(|(k, v)| k.len() + 2 * v.len() + 8).sum::<usize>(),
            Command::Notified { error, .. } => error.as_ref().map_or(0, |e| 2 * e.len()),
            Command::SetNotify { rule: NotifyRule::To(n), .. } => 2 * n.url.len(),
            Command::Batch(cmds) => cmds.iter().map(Command::approx_bytes).sum(),
            _ => 64,
        }
    }
}

/// What applying a command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Entries that are not commands (blank, membership).
    None,
    Done,
    /// A job was created; its incarnation tells it apart from any earlier
    /// job of the same name.
    Created { incarnation: u64 },
    AlreadyExists,
    NoSuchJob,
    /// Refused, with a one-line reason (for example `start` on a job with no command).
    Rejected { reason: String },
    /// A fire or manual run was accepted as run `run_id`.
    Accepted { run_id: u64 },
    /// The time was accepted but not run: an earlier run still runs and the
    /// overlap policy is `skip` (counted in the log).
    SkippedForOverlap,
    /// One answer per command of a `Batch`, in order.
    Batch(Vec<Response>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_as_itself() {
        for w in Trigger::WORDS {
            assert_eq!(w.parse::<Trigger>().map(|t| t.to_string()).as_deref(), Ok(*w));
        }
        for w in Overlap::WORDS {
            assert_eq!(w.parse::<Overlap>().map(|t| t.to_string()).as_deref(), Ok(*w));
        }
        for w in Catchup::WORDS {
            assert_eq!(w.parse::<Catchup>().map(|t| t.to_string()).as_deref(), Ok(*w));
        }
        assert_eq!("Skip".parse::<Overlap>(), Err(()));
        assert_eq!(Trigger::Catchup.to_string(), "catchup");
    }

    #[test]
    fn a_not_started_recorded_without_a_reason_still_reads() {
        let old: RunStatus = serde_json::from_str("\"NotStarted\"").unwrap();
        assert_eq!(old, RunStatus::NotStarted(NotStarted::Unrecorded));
        let new = RunStatus::NotStarted(NotStarted::FenceLost);
        let text = serde_json::to_string(&new).unwrap();
        assert_eq!(serde_json::from_str::<RunStatus>(&text).unwrap(), new);
        assert_eq!(serde_json::from_str::<RunStatus>("{\"Exit\":3}").unwrap(), RunStatus::Exit(3));
    }
}
