//! The fid table of one session: what each client fid points at, whether it
//! is open, and the directory listing it is reading through.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{errno, reason, Error, Result};
use crate::fs::OpenMode;
use crate::qid::Qid;
use crate::stat::Stat;

pub(crate) struct Fid<T> {
    pub file: T,
    pub qid: Qid,
    /// Names walked below the attach root; `..` at depth 0 stays put.
    pub depth: u32,
    pub state: Mutex<FidState>,
}

#[derive(Default)]
pub(crate) struct FidState {
    pub open: Option<OpenMode>,
    pub dir: Option<DirSnapshot>,
}

/// The entries of a directory as they were when the client read offset 0.
pub(crate) struct DirSnapshot {
    pub entries: Vec<Stat>,
    /// Index of the next entry a 9P2000 read returns.
    pub next_index: usize,
    /// The byte offset that read must ask for.
    pub next_offset: u64,
}

impl<T> Fid<T> {
    pub fn new(file: T, qid: Qid, depth: u32) -> Self {
        Fid { file, qid, depth, state: Mutex::new(FidState::default()) }
    }

    pub fn opened(file: T, qid: Qid, depth: u32, mode: OpenMode) -> Self {
        let fid = Fid::new(file, qid, depth);
        lock(&fid.state).open = Some(mode);
        fid
    }

    pub fn open_mode(&self) -> Option<OpenMode> {
        lock(&self.state).open
    }
}

/// Locks a mutex whose holders never panic while holding it; if one did,
/// the data is still a plain table, so carry on with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) struct FidTable<T> {
    map: Mutex<HashMap<u32, Arc<Fid<T>>>>,
    max: usize,
}

impl<T> FidTable<T> {
    pub fn new(max: usize) -> Self {
        FidTable { map: Mutex::new(HashMap::new()), max }
    }

    pub fn get(&self, fid: u32) -> Result<Arc<Fid<T>>> {
        lock(&self.map).get(&fid).cloned().ok_or_else(Error::unknown_fid)
    }

    pub fn check_unused(&self, fid: u32) -> Result<()> {
        let map = lock(&self.map);
        if map.contains_key(&fid) {
            return Err(Error::new(errno::EBADF, reason::DUPLICATE_FID));
        }
        if map.len() >= self.max {
            return Err(Error::new(errno::EMFILE, reason::TOO_MANY_FIDS));
        }
        Ok(())
    }

    /// Adds a fid that must not exist yet.
    pub fn insert_new(&self, fid: u32, entry: Fid<T>) -> Result<()> {
        let mut map = lock(&self.map);
        if map.contains_key(&fid) {
            return Err(Error::new(errno::EBADF, reason::DUPLICATE_FID));
        }
        if map.len() >= self.max {
            return Err(Error::new(errno::EMFILE, reason::TOO_MANY_FIDS));
        }
        map.insert(fid, Arc::new(entry));
        Ok(())
    }

    /// Points an existing fid (or a walk's newfid equal to fid) elsewhere.
    pub fn replace(&self, fid: u32, entry: Fid<T>) {
        lock(&self.map).insert(fid, Arc::new(entry));
    }

    pub fn remove(&self, fid: u32) -> Result<Arc<Fid<T>>> {
        lock(&self.map).remove(&fid).ok_or_else(Error::unknown_fid)
    }

    pub fn drain(&self) -> Vec<Arc<Fid<T>>> {
        lock(&self.map).drain().map(|(_, f)| f).collect()
    }
}
