//! Backup and restore.
//!
//! A backup is a RocksDB checkpoint of the running node's database (hard
//! links where it can, so it is quick and small): every column family at
//! one instant, so the state machine in it is exactly the state after its
//! last-applied entry. It lands in `DBDIR/backups/STAMP-applied-N`.
//!
//! A restore starts a *new* one-node cluster from a backup's state, never
//! the old cluster: the old Raft log, vote, membership and node records
//! are dropped, and the new database looks as if its node had just taken a
//! snapshot of that state and purged its log behind it. That matters for
//! growing it back to three nodes: a member added later cannot replay the
//! state from a log that does not hold it, so it is sent the snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use openraft::{CommittedLeaderId, Membership, RaftSnapshotBuilder};
use rocksdb::{IteratorMode, Options, WriteBatch, DB};

use super::log_store::{KEY_COMMITTED, KEY_LAST_PURGED, KEY_VOTE};
use super::state_machine::{StateMachine, KEY_APPLIED, KEY_MEMBERSHIP};
use super::{cf, synced, CF_LOG, CF_META, CF_SM, CF_SNAPSHOT};
use crate::types::{LogId, Member, NodeId, StoredMembership, Vote};

/// Where a node keeps its backups, under its `--dbdir`.
pub const BACKUP_DIR: &str = "backups";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("creating {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
    #[error("checkpoint into {dir}: {source}")]
    Checkpoint { dir: String, source: rocksdb::Error },
    #[error("{0} is not a jobd backup (no database with jobd's column families): {1}")]
    NotABackup(String, rocksdb::Error),
    #[error("{0} already holds data; restore only into a new, empty --dbdir")]
    TargetNotEmpty(String),
    #[error("restoring into {dir}: {source}")]
    Write { dir: String, source: rocksdb::Error },
    #[error("building the first snapshot: {0}")]
    Snapshot(String),
    #[error("the backup holds a run record that does not decode: {0}")]
    Corrupt(String),
}

/// A run the backup shows unfinished may have been claimed and begun by
/// the old cluster after the backup was taken: in the restored one it is
/// marked claimed, so no leader takes it over (README, "Firing") and the
/// sweep ends it `lost`, not run a second time.
fn unclaimable(key: &[u8], value: Vec<u8>) -> Result<Vec<u8>, BackupError> {
    if !key.starts_with(crate::state::run::RUN_PREFIX) {
        return Ok(value);
    }
    let mut run: crate::state::run::Run = crate::state::decode(key, &value).map_err(|e| BackupError::Corrupt(e.to_string()))?;
    if run.ended() || run.claimed {
        return Ok(value);
    }
    run.claimed = true;
    Ok(crate::state::encode(&run))
}

/// Takes a checkpoint of `db` into `DBDIR/backups/<UTC stamp>-applied-<N>`,
/// the stamp being `at_ms` (the caller's clock reading: wall-clock time
/// enters through `clock`, not here).
pub fn checkpoint(db: &DB, dbdir: &Path, applied: u64, at_ms: i64) -> Result<PathBuf, BackupError> {
    let parent = dbdir.join(BACKUP_DIR);
    std::fs::create_dir_all(&parent).map_err(|source| BackupError::Dir { dir: parent.display().to_string(), source })?;
    let stamp = chrono::DateTime::from_timestamp_millis(at_ms).unwrap_or_default().format("%Y%m%dT%H%M%S%.3fZ");
    let dir = parent.join(format!("{stamp}-applied-{applied}"));
    let err = |source| BackupError::Checkpoint { dir: dir.display().to_string(), source };
    rocksdb::checkpoint::Checkpoint::new(db).map_err(err)?.create_checkpoint(&dir).map_err(err)?;
    Ok(dir)
}

/// The newest backup under `dbdir`, if any (names sort by time).
pub fn latest(dbdir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dbdir.join(BACKUP_DIR)).ok()?;
    entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).max()
}

/// What a restore carried over.
#[derive(Debug, PartialEq, Eq)]
pub struct Restored {
    /// State keys copied (jobs, their logs and runs).
    pub keys: u64,
    /// The log index the new cluster starts after.
    pub index: u64,
}

/// Makes `to` (new or empty) the database of a new one-node cluster whose
/// only member is `id` at `raft_addr`, holding the state in backup `from`.
pub async fn restore(from: &Path, to: &Path, id: NodeId, raft_addr: &str) -> Result<Restored, BackupError> {
    let to_s = to.display().to_string();
    if std::fs::read_dir(to).is_ok_and(|mut d| d.next().is_some()) {
        return Err(BackupError::TargetNotEmpty(to_s));
    }
    let old = DB::open_cf_for_read_only(&Options::default(), from, [CF_LOG, CF_META, CF_SM, CF_SNAPSHOT], false)
        .map_err(|e| BackupError::NotABackup(from.display().to_string(), e))?;
    let db = super::open(to).map_err(|source| BackupError::Write { dir: to_s.clone(), source })?;
    let werr = |source| BackupError::Write { dir: to_s.clone(), source };

    // The state, without the old cluster's Raft bookkeeping and node
    // records (their addresses and incarnations mean nothing here; runs
    // they left active are ended as lost by the new leader's sweep).
    let mut keys = 0u64;
    let mut batch = WriteBatch::default();
    for item in old.iterator_cf(cf(&old, CF_SM), IteratorMode::Start) {
        let (k, v) = item.map_err(werr)?;
        if k.as_ref() == KEY_APPLIED || k.as_ref() == KEY_MEMBERSHIP || k.starts_with(crate::state::NODE_PREFIX) {
            continue;
        }
        let v = unclaimable(&k, v.to_vec())?;
        batch.put_cf(cf(&db, CF_SM), &k, &v);
        keys += 1;
        if batch.len() >= 10_000 {
            db.write(std::mem::take(&mut batch)).map_err(werr)?;
        }
    }

    // As if entry 1 of term 1 had been applied, snapshotted and purged.
    let last = LogId::new(CommittedLeaderId::new(1, id), 1);
    let members = BTreeMap::from([(id, Member { raft_addr: raft_addr.to_string() })]);
    let membership = StoredMembership::new(Some(last), Membership::new(vec![BTreeSet::from([id])], members));
    batch.put_cf(cf(&db, CF_SM), KEY_APPLIED, crate::state::encode(&last));
    batch.put_cf(cf(&db, CF_SM), KEY_MEMBERSHIP, crate::state::encode(&membership));
    batch.put_cf(cf(&db, CF_META), KEY_VOTE, crate::state::encode(&Vote::new_committed(1, id)));
    batch.put_cf(cf(&db, CF_META), KEY_COMMITTED, crate::state::encode(&Some(last)));
    batch.put_cf(cf(&db, CF_META), KEY_LAST_PURGED, crate::state::encode(&last));
    db.write_opt(batch, &synced()).map_err(werr)?;
    StateMachine::new(db.clone()).build_snapshot().await.map_err(|e| BackupError::Snapshot(e.to_string()))?;
    db.flush_wal(true).map_err(werr)?;
    Ok(Restored { keys, index: last.index })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Fence, RunStatus, Trigger};
    use crate::state::run::{run_key, Run};

    fn run(status: RunStatus) -> Run {
        let fence = Fence { term: 2, node: 1, incarnation: 7 };
        Run {
            id: 9,
            job: "j".into(),
            scheduled_ms: 1000,
            trigger: Trigger::Schedule,
            node: 1,
            fence,
            start_ms: None,
            end_ms: None,
            status,
            next_seq: 0,
            cancel: false,
            output_bytes: 0,
            begin_by_ms: None,
            proposed_ms: None,
            stopped: false,
            claimed: false,
            claims: true,
            attempt: 1,
            not_before_ms: None,
            released: false,
            ended_nth: None,
            after_run: None,
            tail: vec![],
        }
    }

    #[test]
    fn a_restored_unfinished_run_is_claimed_and_others_are_copied_as_they_are() {
        let key = run_key(5, 9);
        let restored = |r: &Run| -> Run { crate::state::decode(&key, &unclaimable(&key, crate::state::encode(r)).unwrap()).unwrap() };
        assert!(restored(&run(RunStatus::Pending)).claimed, "a pending run the old cluster may have begun");
        assert!(restored(&run(RunStatus::Running)).claimed);
        assert_eq!(restored(&run(RunStatus::Exit(0))), run(RunStatus::Exit(0)));
        let job = b"job/j".to_vec();
        assert_eq!(unclaimable(&job, b"not a run".to_vec()).unwrap(), b"not a run");
        assert!(matches!(unclaimable(&key, b"{".to_vec()), Err(BackupError::Corrupt(_))));
    }
}
