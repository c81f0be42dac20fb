//! One negotiated session and the handling of every request but Tversion
//! and Tflush (those belong to the connection). Each handler validates the
//! protocol (fids, open modes, walk rules) before the file system sees it.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::dialect::Dialect;
use crate::dotl::{self, setattr, Attr, AT_REMOVEDIR};
use crate::error::{errno, reason, Error, Result};
use crate::fcall::{Rmsg, Tmsg, IOHDRSZ, MAXWELEM};
use crate::fs::{Filesystem, OpenMode};
use crate::server::dirread;
use crate::server::fids::{lock, DirSnapshot, Fid, FidTable};
use crate::stat::{self, DMDIR};

pub(crate) struct Session<F: Filesystem> {
    pub fs: Arc<F>,
    pub dialect: Dialect,
    pub msize: u32,
    pub fids: FidTable<F::Fid>,
}

fn valid_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(Error::invalid(reason::BAD_NAME));
    }
    Ok(())
}

/// `v` seconds, or now when the client asked for the server's time.
fn time_or_now(set: bool, v: u64) -> u32 {
    if set {
        return v.min(u32::MAX as u64) as u32;
    }
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as u32).unwrap_or(0)
}

impl<F: Filesystem> Session<F> {
    pub fn new(fs: Arc<F>, dialect: Dialect, msize: u32, max_fids: usize) -> Self {
        Session { fs, dialect, msize, fids: FidTable::new(max_fids) }
    }

    /// The largest data count of one read or write.
    fn max_io(&self) -> u32 {
        self.msize - IOHDRSZ
    }

    /// Clunks every fid (end of session).
    pub async fn clunk_all(&self) {
        for fid in self.fids.drain() {
            self.fs.clunk(&fid.file).await;
        }
    }

    pub async fn handle(&self, msg: Tmsg) -> Result<Rmsg> {
        use Tmsg::*;
        match msg {
            // The connection answers these itself; they never reach a session.
            Version { .. } | Flush { .. } => Err(Error::new(errno::EPROTO, "unexpected message")),
            // ENOENT: diod's client takes exactly that (or no errno) to mean
            // "authentication not required" and attaches with NOFID.
            Auth { .. } => Err(Error::new(errno::ENOENT, reason::NO_AUTH)),
            Attach { fid, uname, aname, .. } => {
                self.fids.check_unused(fid)?;
                let (file, qid) = self.fs.attach(&uname, &aname).await?;
                self.fids.insert_new(fid, Fid::new(file, qid, 0))?;
                Ok(Rmsg::Attach { qid })
            }
            Walk { fid, newfid, wnames } => self.walk(fid, newfid, wnames).await,
            Open { fid, mode } => {
                let qid = self.open(fid, OpenMode::from_9p(mode)).await?;
                Ok(Rmsg::Open { qid, iounit: self.max_io() })
            }
            Lopen { fid, flags } => {
                let qid = self.open(fid, OpenMode::from_linux(flags)).await?;
                Ok(Rmsg::Lopen { qid, iounit: self.max_io() })
            }
            Create { fid, name, perm, mode, .. } => {
                let qid = self.create(fid, &name, perm, OpenMode::from_9p(mode)).await?;
                Ok(Rmsg::Create { qid, iounit: self.max_io() })
            }
            Lcreate { fid, name, flags, mode, .. } => {
                let qid = self.create(fid, &name, mode & 0o777, OpenMode::from_linux(flags)).await?;
                Ok(Rmsg::Lcreate { qid, iounit: self.max_io() })
            }
            Mkdir { dfid, name, mode, .. } => {
                let dir = self.fids.get(dfid)?;
                if !dir.qid.is_dir() {
                    return Err(Error::new(errno::ENOTDIR, reason::CREATE_NON_DIR));
                }
                valid_name(&name)?;
                let (file, qid) = self.fs.create(&dir.file, &name, DMDIR | (mode & 0o777), OpenMode::READ).await?;
                self.fs.clunk(&file).await;
                Ok(Rmsg::Mkdir { qid })
            }
            Read { fid, offset, count } => self.read(fid, offset, count.min(self.max_io())).await,
            Readdir { fid, offset, count } => self.readdir(fid, offset, count.min(self.max_io())).await,
            Write { fid, offset, data } => {
                let f = self.fids.get(fid)?;
                if f.qid.is_dir() {
                    return Err(Error::new(errno::EISDIR, reason::IS_DIR));
                }
                if !f.open_mode().is_some_and(|m| m.write) {
                    return Err(Error::new(errno::EBADF, reason::NOT_OPEN_WRITE));
                }
                let count = self.fs.write(&f.file, offset, &data).await?;
                Ok(Rmsg::Write { count: count.min(data.len() as u32) })
            }
            Clunk { fid } => {
                // The fid is gone whatever happens next.
                let f = self.fids.remove(fid)?;
                let remove = f.open_mode().is_some_and(|m| m.remove_on_close);
                let res = if remove { self.fs.remove(&f.file).await } else { Ok(()) };
                self.fs.clunk(&f.file).await;
                res.map(|()| Rmsg::Clunk)
            }
            Remove { fid } => {
                // Tremove clunks the fid even when the remove fails.
                let f = self.fids.remove(fid)?;
                let res = self.fs.remove(&f.file).await;
                self.fs.clunk(&f.file).await;
                res.map(|()| Rmsg::Remove)
            }
            Unlinkat { dirfid, name, flags } => {
                let dir = self.fids.get(dirfid)?;
                valid_name(&name)?;
                let (child, qid) = self.fs.walk(&dir.file, &name).await?;
                let want_dir = flags & AT_REMOVEDIR != 0;
                let res = match (want_dir, qid.is_dir()) {
                    (true, false) => Err(Error::new(errno::ENOTDIR, reason::NOT_DIR)),
                    (false, true) => Err(Error::new(errno::EISDIR, reason::IS_DIR)),
                    _ => self.fs.remove(&child).await,
                };
                self.fs.clunk(&child).await;
                res.map(|()| Rmsg::Unlinkat)
            }
            Stat { fid } => {
                let f = self.fids.get(fid)?;
                Ok(Rmsg::Stat { stat: self.fs.stat(&f.file).await? })
            }
            Getattr { fid, .. } => {
                let f = self.fids.get(fid)?;
                Ok(Rmsg::Getattr(Attr::from_stat(&self.fs.stat(&f.file).await?)))
            }
            Wstat { fid, stat } => {
                let f = self.fids.get(fid)?;
                self.fs.wstat(&f.file, &stat::Wstat::from_stat(&stat, self.dialect.dotu_fields())).await?;
                Ok(Rmsg::Wstat)
            }
            Setattr { fid, attr: a } => {
                let f = self.fids.get(fid)?;
                let has = |bit| a.valid & bit != 0;
                let changes = stat::Wstat {
                    mode: has(setattr::MODE).then_some(a.mode & 0o7777),
                    n_uid: has(setattr::UID).then_some(a.uid),
                    n_gid: has(setattr::GID).then_some(a.gid),
                    length: has(setattr::SIZE).then_some(a.size),
                    atime: has(setattr::ATIME).then(|| time_or_now(has(setattr::ATIME_SET), a.atime_sec)),
                    mtime: has(setattr::MTIME).then(|| time_or_now(has(setattr::MTIME_SET), a.mtime_sec)),
                    ..stat::Wstat::default()
                };
                self.fs.wstat(&f.file, &changes).await?;
                Ok(Rmsg::Setattr)
            }
            Statfs { fid } => {
                self.fids.get(fid)?;
                // V9FS_MAGIC; the tree has no fixed capacity to report.
                let s = dotl::Statfs { ty: 0x0102_1997, bsize: 4096, namelen: 255, ..Default::default() };
                Ok(Rmsg::Statfs(s))
            }
            Fsync { fid, .. } => {
                self.fids.get(fid)?;
                Ok(Rmsg::Fsync)
            }
            Xattrwalk { fid, name, .. } => {
                self.fids.get(fid)?;
                // No extended attributes: "none set" for a name, "not
                // supported" for a listing. Never the kernel-internal 524.
                let e = if name.is_empty() { errno::EOPNOTSUPP } else { errno::ENODATA };
                Err(Error::from_errno(e))
            }
            Readlink { .. } => Err(Error::invalid("not a symbolic link")),
            Xattrcreate { .. } | Symlink { .. } | Mknod { .. } | Rename { .. } | Link { .. }
            | Lock { .. } | Getlock { .. } | Renameat { .. } => Err(Error::not_supported()),
        }
    }

    async fn walk(&self, fid: u32, newfid: u32, wnames: Vec<String>) -> Result<Rmsg> {
        debug_assert!(wnames.len() <= MAXWELEM, "the decoder bounds walks");
        let start = self.fids.get(fid)?;
        // intro(5): an open fid cannot be walked from. 9P2000.L servers
        // (diod) allow it, and diodls -l relies on that, so .L does too.
        if start.open_mode().is_some() && self.dialect != Dialect::P2000L {
            return Err(Error::new(errno::EBADF, reason::FID_OPEN));
        }
        if newfid != fid {
            self.fids.check_unused(newfid)?;
        }
        let (mut file, mut qid, mut depth) = (start.file.clone(), start.qid, start.depth);
        let mut wqids = Vec::with_capacity(wnames.len());
        for (i, name) in wnames.iter().enumerate() {
            let step = if !qid.is_dir() {
                Err(Error::new(errno::ENOTDIR, reason::WALK_NO_DIR))
            } else if name.is_empty() || name.contains('/') {
                Err(Error::invalid(reason::BAD_NAME))
            } else if name == "." {
                Ok((file.clone(), qid, depth))
            } else if name == ".." && depth == 0 {
                Ok((file.clone(), qid, 0))
            } else {
                let d = if name == ".." { depth - 1 } else { depth + 1 };
                self.fs.walk(&file, name).await.map(|(f, q)| (f, q, d))
            };
            match step {
                Ok((f, q, d)) => {
                    (file, qid, depth) = (f, q, d);
                    wqids.push(qid);
                }
                // The first name failing is an error; a later one a short Rwalk.
                Err(e) if i == 0 => return Err(e),
                Err(_) => return Ok(Rmsg::Walk { wqids }),
            }
        }
        let entry = Fid::new(file, qid, depth);
        if newfid == fid {
            self.fids.replace(fid, entry);
        } else {
            self.fids.insert_new(newfid, entry)?;
        }
        Ok(Rmsg::Walk { wqids })
    }

    async fn open(&self, fid: u32, mode: OpenMode) -> Result<crate::qid::Qid> {
        let f = self.fids.get(fid)?;
        if f.open_mode().is_some() {
            return Err(Error::new(errno::EBADF, reason::FID_OPEN));
        }
        if f.qid.is_dir() && (mode.write || mode.truncate) {
            return Err(Error::new(errno::EISDIR, reason::IS_DIR));
        }
        let qid = self.fs.open(&f.file, mode).await?;
        lock(&f.state).open = Some(mode);
        Ok(qid)
    }

    async fn create(&self, fid: u32, name: &str, perm: u32, mode: OpenMode) -> Result<crate::qid::Qid> {
        let dir = self.fids.get(fid)?;
        if !dir.qid.is_dir() {
            return Err(Error::new(errno::ENOTDIR, reason::CREATE_NON_DIR));
        }
        if dir.open_mode().is_some() {
            return Err(Error::new(errno::EBADF, reason::FID_OPEN));
        }
        valid_name(name)?;
        let (file, qid) = self.fs.create(&dir.file, name, perm, mode).await?;
        // The fid now stands for the new file, opened.
        self.fids.replace(fid, Fid::opened(file, qid, dir.depth + 1, mode));
        Ok(qid)
    }

    /// Takes a fresh listing at offset 0; later reads continue from it.
    async fn dir_snapshot(&self, f: &Fid<F::Fid>, offset: u64) -> Result<()> {
        if offset == 0 {
            let entries = self.fs.readdir(&f.file).await?;
            lock(&f.state).dir = Some(DirSnapshot { entries, next_index: 0, next_offset: 0 });
        }
        Ok(())
    }

    async fn read(&self, fid: u32, offset: u64, count: u32) -> Result<Rmsg> {
        let f = self.fids.get(fid)?;
        if !f.open_mode().is_some_and(|m| m.read) {
            return Err(Error::new(errno::EBADF, reason::NOT_OPEN_READ));
        }
        if !f.qid.is_dir() {
            let mut data = self.fs.read(&f.file, offset, count).await?;
            data.truncate(count as usize);
            return Ok(Rmsg::Read { data });
        }
        if self.dialect == Dialect::P2000L {
            return Err(Error::new(errno::EISDIR, reason::IS_DIR));
        }
        self.dir_snapshot(&f, offset).await?;
        let mut state = lock(&f.state);
        let snap = state.dir.as_mut().ok_or_else(|| Error::new(errno::EINVAL, reason::BAD_OFFSET))?;
        let data = dirread::read_stats(snap, offset, count, self.dialect.dotu_fields())?;
        Ok(Rmsg::Read { data })
    }

    async fn readdir(&self, fid: u32, offset: u64, count: u32) -> Result<Rmsg> {
        let f = self.fids.get(fid)?;
        if !f.qid.is_dir() {
            return Err(Error::new(errno::ENOTDIR, reason::NOT_DIR));
        }
        if !f.open_mode().is_some_and(|m| m.read) {
            return Err(Error::new(errno::EBADF, reason::NOT_OPEN_READ));
        }
        self.dir_snapshot(&f, offset).await?;
        let state = lock(&f.state);
        let snap = state.dir.as_ref().ok_or_else(|| Error::new(errno::EINVAL, reason::BAD_OFFSET))?;
        Ok(Rmsg::Readdir { data: dirread::read_dirents(snap, offset, count) })
    }
}
