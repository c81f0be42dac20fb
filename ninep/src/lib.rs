//! A 9P2000, 9P2000.u and 9P2000.L library: a pure wire codec, an async
//! server and an async client.
//!
//! **Architecture invariant:** this crate knows nothing of jobs, cron or
//! Raft. It serves any [`Filesystem`]; `examples/ramfs.rs` is a complete
//! one and the conformance target of the tests.
//!
//! Layers, bottom up: `wire` (fields) → `codec` (frames ⇄ [`Tmsg`]/[`Rmsg`])
//! → `server` (connections, tags, fids, flush) → your [`Filesystem`]; and
//! [`client::Client`] on the other side of the wire.

pub mod client;
pub mod codec;
pub mod dialect;
pub mod dotl;
pub mod error;
pub mod fcall;
pub mod fs;
pub mod qid;
pub mod server;
pub mod stat;
pub mod trace;
pub mod wire;

pub use dialect::Dialect;
pub use error::{Error, Result};
pub use fcall::{Rmsg, Tmsg, NOFID, NOTAG};
pub use fs::{Filesystem, OpenMode};
pub use qid::Qid;
pub use server::{serve, serve_with, Config, LegacyErrors, Observer};
pub use stat::{Stat, Wstat, DMDIR};
