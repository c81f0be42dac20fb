//! The harness for tests that run jobd and its clients for real: processes,
//! sockets, and the Linux kernel's own 9P client in a VM.
//!
//! **Architecture invariant:** everything here talks to jobd the way users
//! and operators do (9P, signals, its command line); nothing reaches into
//! its internals.

pub mod bench;
pub mod browser;
pub mod chaos;
pub mod cluster;
pub mod etcd_cluster;

/// etcd's KV service (Put), generated from `proto/etcd_kv.proto`.
pub mod etcd {
    tonic::include_proto!("etcdserverpb");
}
pub mod jobd;
pub mod poll;
pub mod proxy;
pub mod receiver;
pub mod tools;
pub mod v9fs;

use std::path::PathBuf;
use std::time::Duration;

/// This crate's directory in the checkout being tested. Read at run time:
/// `env!("CARGO_MANIFEST_DIR")` is baked in at compile time, and with a
/// target directory shared between checkouts (as `.ci/run` does) a test
/// binary built from one checkout would otherwise use another's files.
pub fn crate_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Polls `f` every 100 ms until it holds; panics naming `what` after `deadline`.
pub async fn wait_for(what: &str, deadline: Duration, mut f: impl AsyncFnMut() -> bool) {
    poll::poll(what, deadline, Duration::from_millis(100), async || {
        f().await.then_some(())
    })
    .await
}
