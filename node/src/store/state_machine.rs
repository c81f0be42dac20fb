//! The state machine on RocksDB (openraft's `RaftStateMachine`): runs
//! `state::apply` for each entry inside one write batch per apply call, with
//! the last-applied log id and the membership written in the same batch.
//! Snapshots are images of the whole `sm` column family taken from a
//! RocksDB snapshot, so they are consistent with their last-applied id.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder, StorageIOError,
};
use rocksdb::{IteratorMode, WriteBatch, DB};

use super::job_cache::JobCache;
use super::job_changes::{Changed, JobChanges};
use super::{cf, snapshot, synced, CF_SM, CF_SNAPSHOT};
use crate::command::Response;
use crate::stages::{self, Stage};
use crate::state::{self, Job, Kv, KvError, KvRead, KvSeek};
use crate::types::{LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

/// Internal keys sort before every state key (which start with a letter).
pub(crate) const KEY_APPLIED: &[u8] = b"\x00applied";
pub(crate) const KEY_MEMBERSHIP: &[u8] = b"\x00membership";
const SNAP_META: &[u8] = b"meta";
const SNAP_DATA: &[u8] = b"data";

#[derive(Clone)]
pub struct StateMachine {
    db: Arc<DB>,
    snapshots_built: Arc<AtomicU64>,
    jobs: Arc<JobCache>,
    changes: Arc<JobChanges>,
}

fn sm_err(verb: ErrorVerb, e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::new(ErrorSubject::StateMachine, verb, AnyError::new(&e)).into()
}

fn snap_err(meta: Option<&SnapshotMeta>, e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_snapshot(meta.map(|m| m.signature()), AnyError::new(&e)).into()
}

/// This apply's writes, and reads that see them before they are committed.
struct BatchKv<'a> {
    db: &'a DB,
    batch: WriteBatch,
    overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl KvRead for BatchKv<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        if let Some(v) = self.overlay.get(key) {
            return Ok(v.clone());
        }
        self.db
            .get_cf(cf(self.db, CF_SM), key)
            .map_err(|e| KvError::Read(e.to_string()))
    }
}

impl Kv for BatchKv<'_> {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.batch.put_cf(cf(self.db, CF_SM), &key, &value);
        self.overlay.insert(key, Some(value));
    }
    fn delete(&mut self, key: Vec<u8>) {
        self.batch.delete_cf(cf(self.db, CF_SM), &key);
        self.overlay.insert(key, None);
    }
}

impl StateMachine {
    pub fn new(db: Arc<DB>) -> Self {
        StateMachine {
            db,
            snapshots_built: Arc::new(AtomicU64::new(0)),
            jobs: Arc::default(),
            changes: Arc::default(),
        }
    }

    /// The jobs written since the last call (see `job_changes.rs`).
    pub fn take_job_changes(&self) -> Changed {
        self.changes.take()
    }

    /// The next `take_job_changes` answers `All` (a reader failed).
    pub fn mark_all_jobs_changed(&self) {
        self.changes.everything();
    }

    /// The job `name` as applied here, decoded once per change of state
    /// (see `job_cache.rs`).
    pub fn job(&self, name: &str) -> Result<Option<Arc<Job>>, KvError> {
        self.jobs.get(name, || state::load_job(self, name))
    }

    /// Calls `f` on every state key with `prefix` and its value, in order,
    /// holding none of them after (for a prefix too big to collect).
    pub fn visit(&self, prefix: &[u8], mut f: impl FnMut(&[u8], &[u8]) -> Result<(), KvError>) -> Result<(), KvError> {
        let mode = IteratorMode::From(prefix, rocksdb::Direction::Forward);
        for item in self.db.iterator_cf(cf(&self.db, CF_SM), mode) {
            let (k, v) = item.map_err(|e| KvError::Read(e.to_string()))?;
            if !k.starts_with(prefix) {
                break;
            }
            f(&k, &v)?;
        }
        Ok(())
    }

    /// Every state key with `prefix`, in order.
    pub fn scan(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, KvError> {
        let mut out = Vec::new();
        self.visit(prefix, |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            Ok(())
        })?;
        Ok(out)
    }

    /// A hash of the whole state at one applied index, and that index:
    /// nodes that applied the same entries print the same digest.
    pub fn digest(&self) -> Result<(u64, u64), KvError> {
        let view = self.db.snapshot();
        // FNV-1a, 64 bit: stable across builds and platforms.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut applied = 0;
        for item in view.iterator_cf(cf(&self.db, CF_SM), IteratorMode::Start) {
            let (k, v) = item.map_err(|e| KvError::Read(e.to_string()))?;
            if k.as_ref() == KEY_APPLIED {
                let id: Option<LogId> = state::decode(&k, &v)?;
                applied = id.map_or(0, |l| l.index);
            }
            for part in [
                k.as_ref(),
                &(k.len() as u32).to_be_bytes(),
                v.as_ref(),
                &(v.len() as u32).to_be_bytes(),
            ] {
                for b in part {
                    h ^= *b as u64;
                    h = h.wrapping_mul(0x0000_0100_0000_01b3);
                }
            }
        }
        Ok((applied, h))
    }

    fn read_json<T: for<'de> serde::Deserialize<'de>>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StorageError> {
        let v = self
            .db
            .get_cf(cf(&self.db, CF_SM), key)
            .map_err(|e| sm_err(ErrorVerb::Read, e))?;
        v.map(|b| serde_json::from_slice(&b).map_err(|e| sm_err(ErrorVerb::Read, e)))
            .transpose()
    }
}

/// The applied state, as the file tree reads it.
impl KvRead for StateMachine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.db
            .get_cf(cf(&self.db, CF_SM), key)
            .map_err(|e| KvError::Read(e.to_string()))
    }
}

impl KvSeek for StateMachine {
    fn key_at_or_before(&self, key: &[u8], prefix: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        let mut it = self.db.raw_iterator_cf(cf(&self.db, CF_SM));
        it.seek_for_prev(key);
        it.status().map_err(|e| KvError::Read(e.to_string()))?;
        Ok(it
            .key()
            .filter(|k| k.starts_with(prefix))
            .map(<[u8]>::to_vec))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let view = self.db.snapshot();
        let mut pairs = Vec::new();
        for item in view.iterator_cf(cf(&self.db, CF_SM), IteratorMode::Start) {
            let (k, v) = item.map_err(|e| sm_err(ErrorVerb::Read, e))?;
            pairs.push((k, v));
        }
        let find = |key: &[u8]| {
            pairs
                .iter()
                .find(|(k, _)| k.as_ref() == key)
                .map(|(_, v)| v.clone())
        };
        let decode_err = |e: serde_json::Error| sm_err(ErrorVerb::Read, e);
        let last_log_id: Option<LogId> = find(KEY_APPLIED)
            .map(|v| serde_json::from_slice(&v))
            .transpose()
            .map_err(decode_err)?;
        let last_membership: StoredMembership = find(KEY_MEMBERSHIP)
            .map(|v| serde_json::from_slice(&v))
            .transpose()
            .map_err(decode_err)?
            .unwrap_or_default();
        let data = snapshot::encode(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
        let n = self.snapshots_built.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match last_log_id {
            Some(l) => format!("{}-{}-{n}", l.leader_id, l.index),
            None => format!("none-{n}"),
        };
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        save_snapshot(&self.db, &meta, &data)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

/// The job a state key belongs to, if it is a job's record or its
/// started mark.
fn job_named(key: &[u8]) -> Option<String> {
    let name = key
        .strip_prefix(state::JOB_PREFIX)
        .or_else(|| key.strip_prefix(state::STARTED_PREFIX))?;
    Some(String::from_utf8_lossy(name).into_owned())
}

/// Keeps the latest snapshot so it can be sent to a follower after a restart.
fn save_snapshot(db: &DB, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StorageError> {
    let mut batch = WriteBatch::default();
    let meta_bytes = serde_json::to_vec(meta).map_err(|e| snap_err(Some(meta), e))?;
    batch.put_cf(cf(db, CF_SNAPSHOT), SNAP_META, meta_bytes);
    batch.put_cf(cf(db, CF_SNAPSHOT), SNAP_DATA, data);
    db.write_opt(batch, &synced())
        .map_err(|e| snap_err(Some(meta), e))
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = self.read_json(KEY_APPLIED)?;
        let membership = self.read_json(KEY_MEMBERSHIP)?.unwrap_or_default();
        Ok((applied, membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = crate::types::Entry> + Send,
        I::IntoIter: Send,
    {
        let start = Instant::now();
        let mut kv = BatchKv {
            db: &self.db,
            batch: WriteBatch::default(),
            overlay: BTreeMap::new(),
        };
        let mut responses = Vec::new();
        let mut last = None;
        let mut membership = None;
        for entry in entries {
            last = Some(entry.log_id);
            let resp = match &entry.payload {
                EntryPayload::Blank => Response::None,
                EntryPayload::Normal(cmd) => state::apply(&mut kv, entry.log_id.index, cmd)
                    .map_err(|e| StorageIOError::apply(entry.log_id, AnyError::new(&e)))?,
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(entry.log_id), m.clone()));
                    Response::None
                }
            };
            responses.push(resp);
        }
        if let Some(last) = last {
            kv.put(KEY_APPLIED.to_vec(), state::encode(&last));
        }
        if let Some(m) = membership {
            kv.put(KEY_MEMBERSHIP.to_vec(), state::encode(&m));
        }
        let BatchKv { batch, overlay, .. } = kv;
        self.db
            .write(batch)
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        self.jobs.changed();
        self.changes
            .wrote(overlay.keys().filter_map(|k| job_named(k)));
        stages::since(Stage::Apply, start);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    /// Replaces the whole state with the snapshot's, atomically: one synced
    /// batch deletes every key and writes the snapshot's.
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        data: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = data.into_inner();
        let pairs = snapshot::decode(&data).map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;
        let sm = cf(&self.db, CF_SM);
        let mut batch = WriteBatch::default();
        // State keys start with ASCII letters or \0, so [\0, \xff) covers them all.
        batch.delete_range_cf(sm, [0u8].as_slice(), [0xffu8].as_slice());
        batch.delete_cf(sm, [0u8].as_slice());
        for (k, v) in &pairs {
            batch.put_cf(sm, k, v);
        }
        batch.put_cf(sm, KEY_APPLIED, state::encode(&meta.last_log_id));
        batch.put_cf(sm, KEY_MEMBERSHIP, state::encode(&meta.last_membership));
        self.db
            .write_opt(batch, &synced())
            .map_err(|e| snap_err(Some(meta), e))?;
        self.jobs.changed();
        self.changes.everything();
        save_snapshot(&self.db, meta, &data)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let sc = cf(&self.db, CF_SNAPSHOT);
        let meta = self
            .db
            .get_cf(sc, SNAP_META)
            .map_err(|e| snap_err(None, e))?;
        let data = self
            .db
            .get_cf(sc, SNAP_DATA)
            .map_err(|e| snap_err(None, e))?;
        match (meta, data) {
            (Some(meta), Some(data)) => {
                let meta: SnapshotMeta =
                    serde_json::from_slice(&meta).map_err(|e| snap_err(None, e))?;
                Ok(Some(Snapshot {
                    meta,
                    snapshot: Box::new(Cursor::new(data)),
                }))
            }
            _ => Ok(None),
        }
    }
}
