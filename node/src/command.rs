//! Commands: every change to jobd's state is one of these, proposed through
//! Raft and applied by the state machine. Times travel inside commands (the
//! state machine never reads a clock), as Unix milliseconds.

use serde::{Deserialize, Serialize};

use crate::leadership::Fence;
use crate::types::NodeId;

/// Why a run exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trigger {
    Schedule,
    Catchup,
    Manual,
}

/// How a run ended (or that it is still going).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunStatus {
    /// Accepted, not started yet.
    Pending,
    Running,
    Exit(i32),
    Signal(String),
    Timeout,
    Killed,
    Lost,
    NotStarted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A node process tells the cluster where its 9P service listens, and
    /// which process incarnation it is (runs fenced by an older one died
    /// with it).
    AnnounceNode { id: NodeId, fs_addr: String, incarnation: u64 },
    /// Creates a stopped job. `schedule` has been parsed by the proposer.
    CreateJob { name: String, schedule: String, cmd: String, at_ms: i64 },
    StartJob { name: String, at_ms: i64 },
    StopJob { name: String },
    DeleteJob { name: String },
    SetCmd { name: String, cmd: String },
    SetSchedule { name: String, schedule: String, at_ms: i64 },
    /// Sets the job's time zone (an IANA name, checked by the proposer).
    SetTz { name: String, tz: String, at_ms: i64 },
    /// The leader asks to run `incarnation` of the job for `scheduled_ms`.
    /// Accepted only if that incarnation is started and the time is later
    /// than both its last accepted time and its armed-at; `skipped` times
    /// before it were passed over by the catch-up policy.
    Fire { name: String, incarnation: u64, scheduled_ms: i64, trigger: Trigger, skipped: u32, fence: Fence },
    /// A manual run (`run`, `run force`): never moves the last accepted time.
    RunNow { name: String, incarnation: u64, fence: Fence, at_ms: i64 },
    /// The proposing node started the run's process.
    RunStarted { name: String, incarnation: u64, run_id: u64, at_ms: i64 },
    /// Lines of a run's output, in order: `seq` counts batches from 0.
    Output { name: String, incarnation: u64, run_id: u64, seq: u64, lines: Vec<String>, at_ms: i64 },
    /// The run is over (or never started, or was lost).
    RunEnded { name: String, incarnation: u64, run_id: u64, status: RunStatus, at_ms: i64 },
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
}
