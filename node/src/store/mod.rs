//! RocksDB under Raft: one database per node with a column family each
//! for the Raft log (`log`), the vote and log metadata (`meta`), the state
//! machine (`sm`) and the latest snapshot (`snapshot`). `log_bytes` adds a
//! snapshot trigger by log size to openraft's count of entries; `job_cache`
//! keeps decoded job records for the 9P tree between changes of state;
//! `job_changes` tells the scheduler which jobs an apply wrote.
//!
//! Durability: log appends, the vote, truncation and the purge marker are
//! written with `sync` before openraft is told they are done. State machine
//! applies and the committed id are not synced by themselves: every later
//! synced log write syncs the shared WAL behind them (RocksDB recovers a
//! prefix of it), and an apply lost to a power cut is re-applied from the
//! log on restart.

pub mod backup;
pub mod job_cache;
pub mod job_changes;
pub mod log_bytes;
pub mod log_store;
pub mod snapshot;
pub mod state_machine;

use std::path::Path;
use std::sync::Arc;

use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, Options, DB};

pub const CF_LOG: &str = "log";
pub const CF_META: &str = "meta";
pub const CF_SM: &str = "sm";
pub const CF_SNAPSHOT: &str = "snapshot";

/// Memory RocksDB may hold for unflushed writes, all column families
/// together. RocksDB's defaults (64 MiB per column family, two each) let
/// four families hold up to half a GiB: at 100,000 jobs a node sat at
/// 320 MiB RSS, mostly memtables (the Raft log and the snapshot copy).
const MEMTABLES_BYTES: usize = 64 << 20;
/// One block cache shared by every column family (by default each has its
/// own 32 MiB).
const BLOCK_CACHE_BYTES: usize = 32 << 20;
/// Write-ahead log kept on disk before RocksDB flushes the column families
/// that pin its oldest file. A WAL file is deleted only once every family
/// with data in it is flushed, and `meta` (the committed id, the vote) gets
/// so few bytes that its memtable never fills: with RocksDB's default
/// (four times all memtables, 512 MiB here) output-heavy jobs had 265 MiB
/// of WAL beside 62 MiB of tables after six minutes, and growing.
const MAX_WAL_BYTES: u64 = 64 << 20;

/// Opens (creating if needed) the node's database under `dir`.
pub fn open(dir: &Path) -> Result<Arc<DB>, rocksdb::Error> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    // Statistics let the tests see that appends really reach fsync.
    opts.enable_statistics();
    opts.set_db_write_buffer_size(MEMTABLES_BYTES);
    opts.set_max_total_wal_size(MAX_WAL_BYTES);
    let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
    let family = |name| {
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        let mut o = Options::default();
        o.set_block_based_table_factory(&table);
        o.set_write_buffer_size(MEMTABLES_BYTES / 4);
        if name == CF_SNAPSHOT {
            // Each snapshot rewrites one big value (the whole state): merge
            // as soon as a new file lands, so superseded copies do not wait
            // for the default four files (four dead copies of the state).
            o.set_level_zero_file_num_compaction_trigger(1);
        }
        ColumnFamilyDescriptor::new(name, o)
    };
    let cfs = [CF_LOG, CF_META, CF_SM, CF_SNAPSHOT].map(family);
    Ok(Arc::new(DB::open_cf_descriptors(&opts, dir, cfs)?))
}

/// A write that must be on disk before it is acknowledged.
pub fn synced() -> rocksdb::WriteOptions {
    let mut w = rocksdb::WriteOptions::default();
    w.set_sync(true);
    w
}

pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> &'a rocksdb::ColumnFamily {
    // Every column family is created by `open`; a missing one is a bug.
    db.cf_handle(name).unwrap_or_else(|| panic!("column family {name} is opened with the database"))
}

/// Whether the database holds any Raft state yet (a vote or a log entry).
pub fn is_fresh(db: &DB) -> Result<bool, rocksdb::Error> {
    let vote = db.get_cf(cf(db, CF_META), log_store::KEY_VOTE)?;
    let any_log = db.iterator_cf(cf(db, CF_LOG), rocksdb::IteratorMode::Start).next().transpose()?;
    Ok(vote.is_none() && any_log.is_none())
}

/// The last committed log index this node has recorded.
pub fn committed_index(db: &DB) -> Result<u64, rocksdb::Error> {
    let v = db.get_cf(cf(db, CF_META), log_store::KEY_COMMITTED)?;
    let id: Option<crate::types::LogId> = v.and_then(|b| serde_json::from_slice(&b).ok()).flatten();
    Ok(id.map_or(0, |l| l.index))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn wal_bytes(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .map(|e| e.metadata().unwrap().len())
            .sum()
    }

    fn sst_bytes(db: &DB, family: &str) -> u64 {
        db.property_int_value_cf(cf(db, family), "rocksdb.total-sst-files-size").unwrap().unwrap_or(0)
    }

    /// Five snapshots of 8 MiB written one after another: the files keep
    /// about one of them, not five.
    #[test]
    fn superseded_snapshots_are_compacted_away() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path()).unwrap();
        for i in 0u8..5 {
            // Incompressible, like a state full of output.
            let value: Vec<u8> = (0..8usize << 20).map(|b| (b.wrapping_mul(2_654_435_761) >> 13) as u8 ^ i).collect();
            db.put_cf(cf(&db, CF_SNAPSHOT), b"data", &value).unwrap();
            db.flush_cf(cf(&db, CF_SNAPSHOT)).unwrap();
        }
        let start = Instant::now();
        while sst_bytes(&db, CF_SNAPSHOT) > 12 << 20 {
            assert!(start.elapsed() < Duration::from_secs(20), "{} bytes of snapshot files", sst_bytes(&db, CF_SNAPSHOT));
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One small write to `meta`, then much more to `sm`: the old WAL files
    /// (pinned by `meta`'s unflushed write) must still be let go.
    #[test]
    fn a_rarely_written_family_does_not_pin_the_write_ahead_log() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path()).unwrap();
        db.put_cf(cf(&db, CF_META), b"committed", b"1").unwrap();
        let value = vec![7u8; 1 << 20];
        for i in 0u32..(3 * MAX_WAL_BYTES >> 20) as u32 {
            db.put_cf(cf(&db, CF_SM), i.to_be_bytes(), &value).unwrap();
        }
        let bound = MAX_WAL_BYTES + MAX_WAL_BYTES / 2;
        let start = Instant::now();
        while wal_bytes(dir.path()) > bound {
            assert!(start.elapsed() < Duration::from_secs(20), "{} bytes of WAL after writing {}", wal_bytes(dir.path()), 3 * MAX_WAL_BYTES);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
