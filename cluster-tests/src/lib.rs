//! The harness for tests that run jobd and its clients for real: processes,
//! sockets, and the Linux kernel's own 9P client in a VM.
//!
//! **Architecture invariant:** everything here talks to jobd the way users
//! and operators do (9P, signals, its command line); nothing reaches into
//! its internals.

pub mod cluster;
pub mod jobd;
pub mod v9fs;
