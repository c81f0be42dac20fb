//! A complete RAM file server: directories and files that live in memory,
//! created, written, truncated, renamed and removed through any 9P client.
//! It is the library's documentation by example and its conformance target.
//!
//!     cargo run --release -p ninep --example ramfs -- --addr 127.0.0.1:5640
//!     diodls -s 127.0.0.1:5640 -l /      diodcat -s 127.0.0.1:5640 hello

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use clap::Parser;
use ninep::error::errno::{EEXIST, ENOTEMPTY};
use ninep::{Error, Filesystem, OpenMode, Qid, Result, Stat, Wstat, DMDIR};

struct Node {
    name: String,
    qid: Qid,
    perm: u32,
    mtime: u32,
    /// Shared, so a read copies it outside the lock (copy-on-write).
    data: Arc<Vec<u8>>,
    parent: u64,
    children: BTreeMap<String, u64>,
}

/// The tree: nodes by qid path. A fid is the qid path of its node.
pub struct RamFs {
    nodes: Mutex<(HashMap<u64, Node>, u64)>,
}

const ROOT: u64 = 0;

impl RamFs {
    pub fn new() -> RamFs {
        let root = Node {
            name: "/".into(),
            qid: Qid::dir(ROOT),
            perm: 0o777,
            mtime: 0,
            data: Arc::default(),
            parent: ROOT,
            children: BTreeMap::new(),
        };
        let fs = RamFs { nodes: Mutex::new((HashMap::from([(ROOT, root)]), ROOT + 1)) };
        fs.add(ROOT, "hello", 0o666, b"hello, world\n").expect("fresh tree");
        fs
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<u64, Node>, &mut u64) -> Result<T>) -> Result<T> {
        let mut guard = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        let (nodes, next) = &mut *guard;
        f(nodes, next)
    }

    fn add(&self, dir: u64, name: &str, perm: u32, data: &[u8]) -> Result<(u64, Qid)> {
        self.with(|nodes, next| {
            let parent = nodes.get_mut(&dir).ok_or_else(Error::not_found)?;
            if parent.children.contains_key(name) {
                return Err(Error::new(EEXIST, format!("{name} exists")));
            }
            let path = *next;
            *next += 1;
            parent.children.insert(name.to_owned(), path);
            let qid = if perm & DMDIR != 0 { Qid::dir(path) } else { Qid::file(path) };
            let node = Node {
                name: name.to_owned(),
                qid,
                perm: perm & 0o777,
                mtime: 0,
                data: Arc::new(data.to_vec()),
                parent: dir,
                children: BTreeMap::new(),
            };
            nodes.insert(path, node);
            Ok((path, qid))
        })
    }
}

fn stat_of(n: &Node) -> Stat {
    let dir = if n.qid.is_dir() { DMDIR } else { 0 };
    Stat {
        qid: n.qid,
        mode: dir | n.perm,
        mtime: n.mtime,
        atime: n.mtime,
        length: if n.qid.is_dir() { 0 } else { n.data.len() as u64 },
        name: n.name.clone(),
        uid: "ramfs".into(),
        gid: "ramfs".into(),
        muid: "ramfs".into(),
        ..Stat::default()
    }
}

fn get(nodes: &mut HashMap<u64, Node>, fid: u64) -> Result<&mut Node> {
    nodes.get_mut(&fid).ok_or_else(Error::not_found)
}

impl Filesystem for RamFs {
    type Fid = u64;

    async fn attach(&self, _uname: &str, _aname: &str) -> Result<(u64, Qid)> {
        Ok((ROOT, Qid::dir(ROOT)))
    }

    async fn walk(&self, dir: &u64, name: &str) -> Result<(u64, Qid)> {
        self.with(|nodes, _| {
            let d = get(nodes, *dir)?;
            let child = if name == ".." { d.parent } else { *d.children.get(name).ok_or_else(Error::not_found)? };
            Ok((child, get(nodes, child)?.qid))
        })
    }

    async fn open(&self, fid: &u64, mode: OpenMode) -> Result<Qid> {
        self.with(|nodes, _| {
            let n = get(nodes, *fid)?;
            if mode.truncate {
                Arc::make_mut(&mut n.data).clear();
            }
            Ok(n.qid)
        })
    }

    async fn read(&self, fid: &u64, offset: u64, count: u32) -> Result<Vec<u8>> {
        // Only the handle is taken under the lock: concurrent reads copy in parallel.
        let data = self.with(|nodes, _| Ok(get(nodes, *fid)?.data.clone()))?;
        let start = (offset.min(data.len() as u64)) as usize;
        let end = start.saturating_add(count as usize).min(data.len());
        Ok(data[start..end].to_vec())
    }

    async fn readdir(&self, dir: &u64) -> Result<Vec<Stat>> {
        self.with(|nodes, _| {
            let children: Vec<u64> = get(nodes, *dir)?.children.values().copied().collect();
            Ok(children.iter().filter_map(|c| nodes.get(c)).map(stat_of).collect())
        })
    }

    async fn write(&self, fid: &u64, offset: u64, data: &[u8]) -> Result<u32> {
        self.with(|nodes, _| {
            let n = get(nodes, *fid)?;
            let end = usize::try_from(offset).ok().and_then(|o| o.checked_add(data.len()));
            let end = end.filter(|&e| e <= 1 << 30).ok_or_else(|| Error::invalid("file too large"))?;
            let file = Arc::make_mut(&mut n.data);
            if file.len() < end {
                file.resize(end, 0);
            }
            file[end - data.len()..end].copy_from_slice(data);
            n.qid.version += 1;
            Ok(data.len() as u32)
        })
    }

    async fn create(&self, dir: &u64, name: &str, perm: u32, mode: OpenMode) -> Result<(u64, Qid)> {
        let made = self.add(*dir, name, perm, b"")?;
        let _ = mode; // a new file is empty; every open mode is fine
        Ok(made)
    }

    async fn remove(&self, fid: &u64) -> Result<()> {
        self.with(|nodes, _| {
            let n = get(nodes, *fid)?;
            if *fid == ROOT {
                return Err(Error::permission());
            }
            if !n.children.is_empty() {
                return Err(Error::new(ENOTEMPTY, "directory not empty"));
            }
            let (parent, name) = (n.parent, n.name.clone());
            nodes.remove(fid);
            get(nodes, parent)?.children.remove(&name);
            Ok(())
        })
    }

    async fn stat(&self, fid: &u64) -> Result<Stat> {
        self.with(|nodes, _| Ok(stat_of(get(nodes, *fid)?)))
    }

    async fn wstat(&self, fid: &u64, w: &Wstat) -> Result<()> {
        self.with(|nodes, _| {
            let n = get(nodes, *fid)?;
            let (parent, old) = (n.parent, n.name.clone());
            if let Some(new) = w.name.as_ref().filter(|new| **new != old) {
                let siblings = &mut get(nodes, parent)?.children;
                if siblings.contains_key(new) {
                    return Err(Error::new(EEXIST, format!("{new} exists")));
                }
                let path = siblings.remove(&old).ok_or_else(Error::not_found)?;
                siblings.insert(new.clone(), path);
                get(nodes, *fid)?.name = new.clone();
            }
            let n = get(nodes, *fid)?;
            if let Some(len) = w.length {
                Arc::make_mut(&mut n.data).resize(usize::try_from(len).map_err(|_| Error::invalid("bad length"))?.min(1 << 30), 0);
            }
            if let Some(mode) = w.mode {
                n.perm = mode & 0o777;
            }
            if let Some(mtime) = w.mtime {
                n.mtime = mtime;
            }
            Ok(())
        })
    }
}

#[derive(Parser)]
/// Serve a RAM file system over 9P.
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5640")]
    addr: String,
    /// Trace every 9P message.
    #[arg(long)]
    debug: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let level = if args.debug { "debug" } else { "info" };
    tracing_subscriber::fmt().with_env_filter(level).init();
    let listener = tokio::net::TcpListener::bind(&args.addr).await?;
    println!("ramfs: serving 9P on {}", listener.local_addr()?);
    let fs = std::sync::Arc::new(RamFs::new());
    ninep::serve(listener, fs, async { tokio::signal::ctrl_c().await.unwrap_or(()) }).await?;
    Ok(())
}
