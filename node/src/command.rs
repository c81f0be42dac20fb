//! Commands: every change to jobd's state is one of these, proposed through
//! Raft and applied by the state machine. Times travel inside commands (the
//! state machine never reads a clock), as Unix milliseconds.

use serde::{Deserialize, Serialize};

use crate::types::NodeId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A node tells the cluster where its 9P service listens.
    AnnounceNode { id: NodeId, fs_addr: String },
    /// Creates a stopped job. `schedule` has been parsed by the proposer.
    CreateJob { name: String, schedule: String, cmd: String, at_ms: i64 },
    StartJob { name: String, at_ms: i64 },
    StopJob { name: String },
    DeleteJob { name: String },
    SetCmd { name: String, cmd: String },
    SetSchedule { name: String, schedule: String, at_ms: i64 },
    /// Sets the job's time zone (an IANA name, checked by the proposer).
    SetTz { name: String, tz: String, at_ms: i64 },
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
}
