//! jobd: cron as a replicated 9P file system. The library behind the
//! `jobd` binary, so tests can run nodes in one process.
//!
//! **Architecture invariants:** `state` (the state machine's logic) does no
//! I/O and reads no clock; `store` adapts it to RocksDB and openraft; only
//! `net` touches `proto`'s generated types; wall-clock time enters through
//! `clock`.

// The pure core (its own crate, so "no I/O" is the compiler's to check),
// under the names the rest of this crate has always used.
pub use jobd_core::{command, cron, state, time, times};

pub mod cli;
pub mod client_cli;
pub mod clock;
pub mod fs;
pub mod http;
pub mod net;
pub mod leadership;
pub mod lock;
pub mod metrics;
pub mod node;
pub mod notify;
pub mod propose;
pub mod sched;
pub mod stages;
pub mod store;
pub mod types;
pub mod write;
