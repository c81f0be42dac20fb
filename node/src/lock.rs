//! Taking a `std::sync::Mutex` whether or not it is poisoned.
//!
//! A panic while a lock is held poisons it, and ninep catches a panicking
//! 9P callback and answers it (`ninep/src/server/unwind.rs`), so a node
//! keeps running past one. Every lock in this crate guards a map, a set or
//! a small record changed by one call at a time (an insert, a remove, a
//! replace), never left half-changed by a panic between two steps, so the
//! data behind a poisoned lock is whole and is used as it is.

use std::sync::{Mutex, MutexGuard};

pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
