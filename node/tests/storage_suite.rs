//! openraft's own storage conformance suite against our RocksDB log store
//! and state machine, plus what the suite cannot see: that appends are
//! synced, and that state survives reopening the database.

use node::command::{Command, Response};
use node::state::KvRead;
use node::store::{self, log_store::LogStore, state_machine::StateMachine};
use node::types::{StorageError, TypeConfig};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{Entry, EntryPayload, LogId, RaftLogReader};
use tempfile::TempDir;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = store::open(dir.path()).expect("open rocksdb");
        Ok((dir, LogStore::new(db.clone()), StateMachine::new(db)))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).expect("the store passes openraft's suite");
}

fn entry(index: u64, cmd: Command) -> Entry<TypeConfig> {
    Entry { log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), index), payload: EntryPayload::Normal(cmd) }
}

fn wal_syncs(db: &rocksdb::DB) -> u64 {
    // "rocksdb.wal.synced COUNT : N" in the statistics dump.
    let opts_stats = db.property_value("rocksdb.options-statistics").ok().flatten().unwrap_or_default();
    opts_stats
        .lines()
        .find_map(|l| l.strip_prefix("rocksdb.wal.synced COUNT : "))
        .and_then(|n| n.trim().parse().ok())
        .expect("statistics are enabled")
}

#[tokio::test]
async fn every_append_is_synced_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = store::open(dir.path()).unwrap();
        let mut log = LogStore::new(db.clone());
        let mut sm = StateMachine::new(db.clone());
        for i in 1..=5u64 {
            let before = wal_syncs(&db);
            let e = entry(i, Command::AnnounceNode { id: i, fs_addr: format!("127.0.0.1:{i}"), incarnation: 1 });
            log.blocking_append([e.clone()]).await.unwrap();
            assert!(wal_syncs(&db) > before, "append {i} synced the WAL before returning");
            let r = sm.apply([e]).await.unwrap();
            assert_eq!(r, vec![Response::Done]);
        }
        let vote = openraft::Vote::new(3, 2);
        let before = wal_syncs(&db);
        log.save_vote(&vote).await.unwrap();
        assert!(wal_syncs(&db) > before, "the vote is synced");
    }
    let db = store::open(dir.path()).unwrap();
    assert!(!store::is_fresh(&db).unwrap());
    let mut log = LogStore::new(db.clone());
    let mut sm = StateMachine::new(db.clone());
    assert_eq!(log.read_vote().await.unwrap(), Some(openraft::Vote::new(3, 2)));
    assert_eq!(log.try_get_log_entries(1..=5).await.unwrap().len(), 5);
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(applied.map(|l| l.index), Some(5));
    assert!(sm.get(&node::state::node_key(4)).unwrap().is_some());
}

#[tokio::test]
async fn a_fresh_directory_is_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let db = store::open(dir.path()).unwrap();
    assert!(store::is_fresh(&db).unwrap());
}

/// The 9P tree reads jobs through the state machine's cache of decoded
/// records: every apply and every snapshot install must show through it.
#[tokio::test]
async fn cached_jobs_follow_applies_and_snapshot_installs() {
    let set_cmd = |cmd: &str| Command::SetCmd { name: "a".into(), cmd: cmd.into() };
    let create = Command::CreateJob { name: "a".into(), schedule: "@daily".into(), cmd: "one".into(), at_ms: 0 };
    let (dir, other_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut sm = StateMachine::new(store::open(dir.path()).unwrap());
    sm.apply([entry(1, create.clone())]).await.unwrap();
    assert_eq!(sm.job("a").unwrap().unwrap().cmd, "one");
    sm.apply([entry(2, set_cmd("two"))]).await.unwrap();
    assert_eq!(sm.job("a").unwrap().unwrap().cmd, "two", "an apply shows through the cache");

    // Another replica's state, where the job says "three", installed here.
    let mut other = StateMachine::new(store::open(other_dir.path()).unwrap());
    other.apply([entry(1, create), entry(2, set_cmd("three"))]).await.unwrap();
    let snap = openraft::RaftSnapshotBuilder::build_snapshot(&mut other).await.unwrap();
    sm.install_snapshot(&snap.meta, snap.snapshot).await.unwrap();
    assert_eq!(sm.job("a").unwrap().unwrap().cmd, "three", "a snapshot install shows through the cache");

    sm.apply([entry(3, Command::DeleteJob { name: "a".into() })]).await.unwrap();
    assert!(sm.job("a").unwrap().is_none(), "a deleted job is gone");
}
