//! jobd's pure core: what the cluster agrees on and how it is read.
//!
//! - `command`: the vocabulary — every change is a [`command::Command`],
//!   proposed through Raft and applied by the state machine.
//! - `state`: the state machine's logic, a deterministic function of
//!   (state, command) over a key-value view ([`state::Kv`]).
//! - `cron`: cron expressions and their next times in a time zone.
//! - `times`: a job's scheduled times (its expression, zone and spread).
//! - `input`: the parsers of what a client writes to `clone` and `ctl`.
//! - `time`: how times are written (RFC 3339 UTC from Unix milliseconds).
//!
//! Nothing here does I/O, reads a clock or needs an async runtime: times
//! arrive as arguments (Unix milliseconds), and this crate's dependencies
//! (serde, chrono, chrono-tz, thiserror) are what keeps that checked by
//! the compiler. The `node` crate adapts it to RocksDB, openraft, tokio
//! and 9P.

pub mod command;
pub mod cron;
pub mod input;
pub mod state;
pub mod time;
pub mod times;
