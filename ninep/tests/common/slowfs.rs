//! A file system with one file whose reads never finish ("slow"), one
//! that answers at once ("fast"), one whose read panics ("panic", a
//! bug in a callback) and one whose walk and open take a while ("lazy"),
//! to test flush, concurrency, ordering, limits and recovery.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ninep::{Error, Filesystem, OpenMode, Qid, Result, Stat, DMDIR};

#[derive(Default)]
pub struct SlowFs {
    /// Slow reads whose futures were dropped (cancelled by a flush or reset).
    pub cancelled: Arc<AtomicUsize>,
    pub started: Arc<AtomicUsize>,
}

struct OnDrop(Arc<AtomicUsize>);
impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn qid_of(name: &str) -> Qid {
    match name {
        "slow" => Qid::file(1),
        "fast" => Qid::file(2),
        "panic" => Qid::file(3),
        "lazy" => Qid::file(4),
        _ => Qid::dir(0),
    }
}

impl Filesystem for SlowFs {
    type Fid = String;
    async fn attach(&self, _: &str, _: &str) -> Result<(String, Qid)> {
        Ok((String::new(), Qid::dir(0)))
    }
    async fn walk(&self, _: &String, name: &str) -> Result<(String, Qid)> {
        match name {
            "lazy" => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Ok((name.to_string(), qid_of(name)))
            }
            "slow" | "fast" | "panic" => Ok((name.to_string(), qid_of(name))),
            _ => Err(Error::not_found()),
        }
    }
    async fn open(&self, fid: &String, _: OpenMode) -> Result<Qid> {
        if fid == "lazy" {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Ok(qid_of(fid))
    }
    async fn read(&self, fid: &String, _: u64, _: u32) -> Result<Vec<u8>> {
        if fid == "slow" {
            self.started.fetch_add(1, Ordering::SeqCst);
            let _guard = OnDrop(self.cancelled.clone());
            std::future::pending::<()>().await;
        }
        if fid == "panic" {
            tokio::task::yield_now().await;
            panic!("a bug in the file system");
        }
        Ok(b"fast".to_vec())
    }
    async fn readdir(&self, _: &String) -> Result<Vec<Stat>> {
        Ok(vec![])
    }
    async fn write(&self, _: &String, _: u64, d: &[u8]) -> Result<u32> {
        Ok(d.len() as u32)
    }
    async fn stat(&self, fid: &String) -> Result<Stat> {
        let qid = qid_of(fid);
        let mode = if qid.is_dir() { DMDIR | 0o755 } else { 0o444 };
        Ok(Stat { qid, mode, name: fid.clone(), ..Stat::default() })
    }
}
