//! The Raft log on RocksDB (openraft's `RaftLogStorage`). Keys of the `log`
//! column family are big-endian log indexes, so they sort; values are
//! serde-encoded entries.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::time::Instant;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, ErrorSubject, ErrorVerb, RaftLogReader, StorageIOError};
use rocksdb::{Direction, IteratorMode, WriteBatch, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::log_bytes::LogBytes;
use super::{cf, synced, CF_LOG, CF_META};
use crate::stages::{self, Stage};
use crate::types::{Entry, LogId, NodeId, StorageError, TypeConfig, Vote};

pub const KEY_VOTE: &[u8] = b"vote";
pub const KEY_COMMITTED: &[u8] = b"committed";
pub const KEY_LAST_PURGED: &[u8] = b"last_purged";

#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    appended: Arc<LogBytes>,
}

fn io_err(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::new(subject, verb, AnyError::new(&e)).into()
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

impl LogStore {
    pub fn new(db: Arc<DB>) -> Self {
        LogStore { db, appended: Arc::default() }
    }

    /// The count of bytes appended since the last purge, for `log_bytes::watch`.
    pub fn appended(&self) -> Arc<LogBytes> {
        self.appended.clone()
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &[u8], subject: ErrorSubject<NodeId>) -> Result<Option<T>, StorageError> {
        let v = self.db.get_cf(cf(&self.db, CF_META), key).map_err(|e| io_err(subject.clone(), ErrorVerb::Read, e))?;
        v.map(|b| serde_json::from_slice(&b).map_err(|e| io_err(subject, ErrorVerb::Read, e))).transpose()
    }

    fn put_meta<T: Serialize>(&self, key: &[u8], v: &T, subject: ErrorSubject<NodeId>) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(v).map_err(|e| io_err(subject.clone(), ErrorVerb::Write, e))?;
        self.db
            .put_cf_opt(cf(&self.db, CF_META), key, bytes, &synced())
            .map_err(|e| io_err(subject, ErrorVerb::Write, e))
    }

    fn decode_entry(bytes: &[u8]) -> Result<Entry, StorageError> {
        serde_json::from_slice(bytes).map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let mut out = Vec::new();
        let from = index_key(start);
        for item in self.db.iterator_cf(cf(&self.db, CF_LOG), IteratorMode::From(&from, Direction::Forward)) {
            let (key, value) = item.map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            let index = u64::from_be_bytes(key.as_ref().try_into().map_err(|_| {
                io_err(ErrorSubject::Logs, ErrorVerb::Read, std::io::Error::other("log key is not 8 bytes"))
            })?);
            if !range.contains(&index) {
                break;
            }
            out.push(Self::decode_entry(&value)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last = self.db.iterator_cf(cf(&self.db, CF_LOG), IteratorMode::End).next();
        let last_log_id = match last {
            None => None,
            Some(item) => {
                let (_, value) = item.map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
                Some(Self::decode_entry(&value)?.log_id)
            }
        };
        let last_purged_log_id: Option<LogId> = self.get_meta(KEY_LAST_PURGED, ErrorSubject::Store)?;
        Ok(LogState { last_purged_log_id, last_log_id: last_log_id.or(last_purged_log_id) })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    /// The vote must be on disk before this returns: a node that forgot
    /// its vote could vote twice in one term.
    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.put_meta(KEY_VOTE, vote, ErrorSubject::Vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.get_meta(KEY_VOTE, ErrorSubject::Vote)
    }

    /// Not synced: openraft calls this on every commit, in its core task,
    /// and losing the latest value only means re-applying from an older
    /// one. The next synced write (an append, the vote) syncs it anyway.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(&committed).map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        self.db.put_cf(cf(&self.db, CF_META), KEY_COMMITTED, bytes).map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.get_meta::<Option<LogId>>(KEY_COMMITTED, ErrorSubject::Store)?.flatten())
    }

    /// Completes `callback` only once the whole batch is synced to disk.
    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let start = Instant::now();
        let mut batch = WriteBatch::default();
        let log = cf(&self.db, CF_LOG);
        let mut total = 0;
        for entry in entries {
            let bytes = serde_json::to_vec(&entry).map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Write, e))?;
            total += bytes.len() as u64;
            batch.put_cf(log, index_key(entry.log_id.index), bytes);
        }
        let res = self.db.write_opt(batch, &synced());
        match res {
            Ok(()) => {
                stages::since(Stage::LogAppend, start);
                self.appended.add(total);
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(io_err(ErrorSubject::Logs, ErrorVerb::Write, e))
            }
        }
    }

    /// Removes `[log_id.index, ∞)`, synced: a conflicting suffix must not
    /// reappear after a restart.
    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(cf(&self.db, CF_LOG), index_key(log_id.index), index_key(u64::MAX));
        batch.delete_cf(cf(&self.db, CF_LOG), index_key(u64::MAX));
        self.db.write_opt(batch, &synced()).map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Write, e))
    }

    /// Records the purge point (synced) before deleting `[0, log_id.index]`:
    /// entries at or below it are ignored from then on.
    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.put_meta(KEY_LAST_PURGED, &log_id, ErrorSubject::Store)?;
        let end = log_id.index.saturating_add(1);
        self.db
            .delete_range_cf_opt(cf(&self.db, CF_LOG), index_key(0), index_key(end), &synced())
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        self.appended.reset();
        Ok(())
    }
}
