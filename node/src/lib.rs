//! jobd: cron as a replicated 9P file system. The library behind the
//! `jobd` binary, so tests can run nodes in one process.
//!
//! **Architecture invariants:** `state` (the state machine's logic) does no
//! I/O and reads no clock; `store` adapts it to RocksDB and openraft; only
//! `net` touches `proto`'s generated types; wall-clock time enters through
//! `clock`.

pub mod cli;
pub mod client_cli;
pub mod clock;
pub mod command;
pub mod fs;
pub mod cron;
pub mod net;
pub mod leadership;
pub mod metrics;
pub mod node;
pub mod propose;
pub mod sched;
pub mod state;
pub mod store;
pub mod types;
