//! An async 9P client (9P2000, .u and .L) with concurrent requests on one
//! connection: used by `jobd 9p`, the cluster tests and the benchmarks.
//!
//! Paths are relative to the attach root, `/`-separated. Errors the server
//! sends come back as [`ClientError::Server`] carrying its reason (9P2000,
//! .u) or the errno's usual text (.L).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::oneshot;

use crate::codec::{frame_size, split_header, HEADER_LEN};
use crate::dialect::Dialect;
use crate::dotl::{oflags, Dirent};
use crate::error::Error;
use crate::fcall::{omode, Rmsg, Tmsg, IOHDRSZ, MAXWELEM, NOFID, NOTAG};
use crate::qid::Qid;
use crate::stat::{Stat, DMDIR};
use crate::wire::Reader;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The server refused the request.
    #[error("{0}")]
    Server(#[from] Error),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("connection closed")]
    Closed,
}

impl ClientError {
    /// The errno of a server refusal.
    pub fn errno(&self) -> Option<u32> {
        match self {
            ClientError::Server(e) => Some(e.errno),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// How to open a session.
#[derive(Debug, Clone)]
pub struct Options {
    pub dialect: Dialect,
    pub msize: u32,
    pub uname: String,
    pub aname: String,
}

impl Default for Options {
    fn default() -> Self {
        Options { dialect: Dialect::P2000L, msize: 1 << 20, uname: "nobody".into(), aname: String::new() }
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub qid: Qid,
}

type Pending = HashMap<u16, oneshot::Sender<Result<Rmsg>>>;

struct Inner {
    writer: tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>,
    pending: Mutex<Pending>,
    tags: Mutex<HashSet<u16>>,
    next_tag: AtomicU32,
    next_fid: AtomicU32,
    dialect: Dialect,
    msize: u32,
    root: u32,
    /// The task reading replies; ended with the last clone of the client,
    /// which closes the connection.
    reader: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(r) = lock(&self.reader).take() {
            r.abort();
        }
    }
}

/// A connected, attached session. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn read_frame<R: AsyncRead + Unpin>(rd: &mut R, msize: u32) -> Result<Vec<u8>> {
    let mut head = [0u8; 4];
    rd.read_exact(&mut head).await?;
    let size = frame_size(head);
    if (size as usize) < HEADER_LEN || size > msize {
        return Err(ClientError::Protocol(format!("reply of {size} bytes")));
    }
    let mut buf = vec![0u8; size as usize];
    buf[..4].copy_from_slice(&head);
    rd.read_exact(&mut buf[4..]).await?;
    Ok(buf)
}

fn decode(buf: &[u8], d: Dialect) -> Result<(u16, Rmsg)> {
    let (t, tag, body) = split_header(buf).map_err(|e| ClientError::Protocol(e.to_string()))?;
    let m = Rmsg::decode(t, body, d).map_err(|e| ClientError::Protocol(e.to_string()))?;
    Ok((tag, m))
}

fn server_error(m: Rmsg) -> Result<Rmsg> {
    match m {
        Rmsg::Error { ename, errno } => {
            // 9P2000 carries no errno: infer one from the reason.
            let errno = if errno == 0 { crate::error::errno_for_reason(&ename) } else { errno };
            Err(ClientError::Server(Error::new(errno, ename)))
        }
        Rmsg::Lerror { ecode } => Err(ClientError::Server(Error::from_errno(ecode))),
        m => Ok(m),
    }
}

fn unexpected<T>(m: Rmsg) -> Result<T> {
    Err(ClientError::Protocol(format!("unexpected reply {m:?}")))
}

fn split_path(path: &str) -> Vec<String> {
    path.split('/').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Frees a request's tag if its future is dropped before the reply, after
/// flushing it so the server is done with the tag first.
struct TagGuard {
    client: Client,
    tag: u16,
    done: bool,
}

impl TagGuard {
    /// The request could not be sent (the connection is broken): free its
    /// tag without a Tflush, which would fail the same way and, through its
    /// own guard, send another.
    fn forget(&mut self) {
        self.done = true;
        lock(&self.client.inner.pending).remove(&self.tag);
        lock(&self.client.inner.tags).remove(&self.tag);
    }
}

impl Drop for TagGuard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        lock(&self.client.inner.pending).remove(&self.tag);
        let (client, tag) = (self.client.clone(), self.tag);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = client.rpc(Tmsg::Flush { oldtag: tag }).await;
                lock(&client.inner.tags).remove(&tag);
            });
        }
    }
}

impl Client {
    /// Connects over TCP, negotiates the version and attaches.
    pub async fn connect(addr: impl ToSocketAddrs, opts: Options) -> Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Client::from_stream(stream, opts).await
    }

    pub async fn from_stream<S>(stream: S, opts: Options) -> Result<Client>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let version = Tmsg::Version { msize: opts.msize, version: opts.dialect.version_string().into() };
        wr.write_all(&version.encode(NOTAG, Dialect::P2000)).await?;
        let (msize, dialect) = match decode(&read_frame(&mut rd, opts.msize.max(8192)).await?, Dialect::P2000)? {
            (_, Rmsg::Version { msize, version }) => match Dialect::negotiate(&version) {
                Some(d) if version != "unknown" => (msize.min(opts.msize), d),
                _ => return Err(ClientError::Protocol(format!("server speaks {version:?}"))),
            },
            (_, m) => return server_error(m).and_then(unexpected),
        };
        let inner = Arc::new(Inner {
            writer: tokio::sync::Mutex::new(Box::new(wr)),
            pending: Mutex::new(HashMap::new()),
            tags: Mutex::new(HashSet::new()),
            next_tag: AtomicU32::new(1),
            next_fid: AtomicU32::new(1),
            dialect,
            msize,
            root: 0,
            reader: Mutex::new(None),
        });
        let weak = Arc::downgrade(&inner);
        let reader = tokio::spawn(async move {
            let err = loop {
                match read_frame(&mut rd, msize).await.and_then(|b| decode(&b, dialect)) {
                    Ok((tag, m)) => {
                        let Some(inner) = weak.upgrade() else { return };
                        let waiter = lock(&inner.pending).remove(&tag);
                        if let Some(w) = waiter {
                            let _ = w.send(Ok(m));
                        }
                    }
                    Err(e) => break e,
                }
            };
            if let Some(inner) = weak.upgrade() {
                let msg = err.to_string();
                for (_, w) in lock(&inner.pending).drain() {
                    let _ = w.send(Err(ClientError::Protocol(format!("connection lost: {msg}"))));
                }
            }
        });
        *lock(&inner.reader) = Some(reader.abort_handle());
        let client = Client { inner };
        let attach = Tmsg::Attach { fid: 0, afid: NOFID, uname: opts.uname, aname: opts.aname, n_uname: NOFID };
        match client.rpc(attach).await? {
            Rmsg::Attach { .. } => Ok(client),
            m => unexpected(m),
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.inner.dialect
    }

    pub fn msize(&self) -> u32 {
        self.inner.msize
    }

    /// The fid of the attach root.
    pub fn root(&self) -> u32 {
        self.inner.root
    }

    fn alloc_tag(&self) -> u16 {
        let mut tags = lock(&self.inner.tags);
        loop {
            let t = (self.inner.next_tag.fetch_add(1, Ordering::Relaxed) % 0xFFFF) as u16;
            if t != NOTAG && tags.insert(t) {
                return t;
            }
        }
    }

    /// A fid number not in use by this client.
    pub fn alloc_fid(&self) -> u32 {
        self.inner.next_fid.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends one request and waits for its reply; a server refusal is an `Err`.
    pub async fn rpc(&self, msg: Tmsg) -> Result<Rmsg> {
        let tag = self.alloc_tag();
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.pending).insert(tag, tx);
        let mut guard = TagGuard { client: self.clone(), tag, done: false };
        let bytes = msg.encode(tag, self.inner.dialect);
        if let Err(e) = self.inner.writer.lock().await.write_all(&bytes).await {
            guard.forget();
            return Err(e.into());
        }
        let reply = rx.await.map_err(|_| ClientError::Closed)?;
        guard.done = true;
        lock(&self.inner.tags).remove(&tag);
        server_error(reply?)
    }

    /// Sends `msgs` in one write without waiting between them, then waits
    /// for every reply: the answers, in the order of `msgs`. The server runs
    /// requests that share a fid in the order they were sent, so a walk to
    /// a new fid and what uses it can go together. `Err` when the messages
    /// could not all be sent (the connection is broken).
    pub async fn rpcs(&self, msgs: Vec<Tmsg>) -> Result<Vec<Result<Rmsg>>> {
        let mut waits = Vec::with_capacity(msgs.len());
        let mut bytes = Vec::new();
        for msg in msgs {
            let tag = self.alloc_tag();
            let (tx, rx) = oneshot::channel();
            lock(&self.inner.pending).insert(tag, tx);
            bytes.extend(msg.encode(tag, self.inner.dialect));
            waits.push((TagGuard { client: self.clone(), tag, done: false }, rx));
        }
        if let Err(e) = self.inner.writer.lock().await.write_all(&bytes).await {
            for (guard, _) in &mut waits {
                guard.forget();
            }
            return Err(e.into());
        }
        let mut out = Vec::with_capacity(waits.len());
        for (mut guard, rx) in waits {
            let Ok(reply) = rx.await else {
                out.push(Err(ClientError::Closed));
                continue;
            };
            guard.done = true;
            lock(&self.inner.tags).remove(&guard.tag);
            out.push(reply.and_then(server_error));
        }
        Ok(out)
    }

    /// Walks from the root to `path` into a new fid.
    pub async fn walk(&self, path: &str) -> Result<u32> {
        let names = split_path(path);
        let newfid = self.alloc_fid();
        let mut from = self.inner.root;
        let mut chunks: Vec<&[String]> = names.chunks(MAXWELEM).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        for chunk in chunks {
            let msg = Tmsg::Walk { fid: from, newfid, wnames: chunk.to_vec() };
            match self.rpc(msg).await {
                Ok(Rmsg::Walk { wqids }) if wqids.len() == chunk.len() => from = newfid,
                Ok(Rmsg::Walk { .. }) => {
                    if from == newfid {
                        let _ = self.clunk(newfid).await;
                    }
                    return Err(ClientError::Server(Error::not_found()));
                }
                Ok(m) => return unexpected(m),
                Err(e) => {
                    if from == newfid {
                        let _ = self.clunk(newfid).await;
                    }
                    return Err(e);
                }
            }
        }
        Ok(newfid)
    }

    pub async fn clunk(&self, fid: u32) -> Result<()> {
        self.rpc(Tmsg::Clunk { fid }).await.map(|_| ())
    }

    /// Opens a walked fid with a 9P2000 mode byte (`omode::*`); returns the iounit.
    pub async fn open(&self, fid: u32, mode: u8) -> Result<u32> {
        match self.rpc(self.open_msg(fid, mode)).await? {
            Rmsg::Open { iounit, .. } | Rmsg::Lopen { iounit, .. } => Ok(self.iounit(iounit)),
            m => unexpected(m),
        }
    }

    /// Topen, or Tlopen in 9P2000.L, of `fid` with a 9P2000 mode byte.
    fn open_msg(&self, fid: u32, mode: u8) -> Tmsg {
        if self.inner.dialect == Dialect::P2000L {
            let mut flags = match mode & 3 {
                omode::OWRITE => oflags::O_WRONLY,
                omode::ORDWR => oflags::O_RDWR,
                _ => 0,
            };
            if mode & omode::OTRUNC != 0 {
                flags |= oflags::O_TRUNC;
            }
            Tmsg::Lopen { fid, flags }
        } else {
            Tmsg::Open { fid, mode }
        }
    }

    fn iounit(&self, offered: u32) -> u32 {
        let max = self.inner.msize.saturating_sub(IOHDRSZ).max(1);
        if offered == 0 { max } else { offered.min(max) }
    }

    /// Runs `f` on a fid walked to `path` and opened with `mode`, then clunks it.
    async fn with_open<T>(&self, path: &str, mode: u8, f: impl AsyncFnOnce(u32, u32) -> Result<T>) -> Result<T> {
        let fid = self.walk(path).await?;
        let res = match self.open(fid, mode).await {
            Ok(iounit) => f(fid, iounit).await,
            Err(e) => Err(e),
        };
        let clunked = self.clunk(fid).await;
        let out = res?;
        clunked.map(|()| out)
    }

    /// One Tread of an open fid.
    pub async fn read_at(&self, fid: u32, offset: u64, count: u32) -> Result<Vec<u8>> {
        match self.rpc(Tmsg::Read { fid, offset, count }).await? {
            Rmsg::Read { data } => Ok(data),
            m => unexpected(m),
        }
    }

    /// One Twrite of an open fid.
    pub async fn write_at(&self, fid: u32, offset: u64, data: &[u8]) -> Result<u32> {
        match self.rpc(Tmsg::Write { fid, offset, data: data.to_vec() }).await? {
            Rmsg::Write { count } => Ok(count),
            m => unexpected(m),
        }
    }

    /// The whole content of a file, read until a read returns nothing.
    pub async fn read(&self, path: &str) -> Result<Vec<u8>> {
        self.with_open(path, omode::OREAD, async |fid, iounit| {
            let mut out = Vec::new();
            loop {
                let chunk = self.read_at(fid, out.len() as u64, iounit).await?;
                if chunk.is_empty() {
                    return Ok(out);
                }
                out.extend_from_slice(&chunk);
            }
        })
        .await
    }

    /// Writes `data` to a file from offset 0, as one open; returns the bytes
    /// written. Data that fits one message goes in one round trip: walk,
    /// open, write and clunk sent together (`rpcs`).
    pub async fn write(&self, path: &str, data: &[u8]) -> Result<u64> {
        let wnames = split_path(path);
        if wnames.len() > MAXWELEM || data.len() > self.inner.msize.saturating_sub(IOHDRSZ) as usize {
            return self.write_stepwise(path, data).await;
        }
        let (fid, walked) = (self.alloc_fid(), wnames.len());
        let msgs = vec![
            Tmsg::Walk { fid: self.inner.root, newfid: fid, wnames },
            self.open_msg(fid, omode::OWRITE),
            Tmsg::Write { fid, offset: 0, data: data.to_vec() },
            Tmsg::Clunk { fid },
        ];
        let Ok([walk, open, write, clunk]) = <[Result<Rmsg>; 4]>::try_from(self.rpcs(msgs).await?) else {
            return Err(ClientError::Protocol("a reply missing".into()));
        };
        // A walk short of the path made no fid; what followed it failed.
        match walk? {
            Rmsg::Walk { wqids } if wqids.len() == walked => {}
            Rmsg::Walk { .. } => return Err(ClientError::Server(Error::not_found())),
            m => return unexpected(m),
        }
        // The walk made the fid: it must be clunked. A clunk refused for too
        // many requests outstanding is sent again; any other failure still
        // frees the fid (clunk(5)), and does not undo the write.
        if let Err(e) = clunk {
            if e.errno() == Some(crate::error::errno::EAGAIN) {
                let _ = self.clunk(fid).await;
            }
        }
        match write {
            Ok(Rmsg::Write { count }) => Ok(count as u64),
            // A write answered EBADF wrote nothing: the fid was not open
            // when it ran. A server that runs pipelined requests out of
            // order (jobd before fid ordering) does that; so does any
            // server whose open failed. One step at a time tells them apart.
            Err(e) if e.errno() == Some(crate::error::errno::EBADF) => self.write_stepwise(path, data).await,
            Err(e) => Err(e),
            Ok(m) => {
                open?;
                unexpected(m)
            }
        }
    }

    /// `write` one request at a time, in iounit-sized writes.
    async fn write_stepwise(&self, path: &str, data: &[u8]) -> Result<u64> {
        self.with_open(path, omode::OWRITE, async |fid, iounit| {
            let mut done = 0u64;
            for chunk in data.chunks(iounit as usize) {
                let n = self.write_at(fid, done, chunk).await?;
                done += n as u64;
                if (n as usize) < chunk.len() {
                    break;
                }
            }
            // An empty write still reaches the server (e.g. an empty command).
            if data.is_empty() {
                self.write_at(fid, 0, &[]).await?;
            }
            Ok(done)
        })
        .await
    }

    /// Creates `path` (a directory when `perm` has `DMDIR`).
    pub async fn create(&self, path: &str, perm: u32) -> Result<Qid> {
        let mut names = split_path(path);
        let name = names.pop().ok_or_else(|| ClientError::Server(Error::invalid("empty path")))?;
        let dfid = self.walk(&names.join("/")).await?;
        let msg = match (self.inner.dialect, perm & DMDIR != 0) {
            (Dialect::P2000L, true) => Tmsg::Mkdir { dfid, name, mode: perm & 0o777, gid: 0 },
            (Dialect::P2000L, false) => Tmsg::Lcreate { fid: dfid, name, flags: 0, mode: perm & 0o777, gid: 0 },
            _ => Tmsg::Create { fid: dfid, name, perm, mode: omode::OREAD, extension: String::new() },
        };
        let res = self.rpc(msg).await;
        let _ = self.clunk(dfid).await;
        match res? {
            Rmsg::Create { qid, .. } | Rmsg::Lcreate { qid, .. } | Rmsg::Mkdir { qid } => Ok(qid),
            m => unexpected(m),
        }
    }

    /// Removes `path` (Tremove, which clunks the fid either way).
    pub async fn remove(&self, path: &str) -> Result<()> {
        let fid = self.walk(path).await?;
        self.rpc(Tmsg::Remove { fid }).await.map(|_| ())
    }

    /// The file's metadata (Tstat; Tgetattr in .L, which has no names, so
    /// `name` is the path's last element there).
    pub async fn stat(&self, path: &str) -> Result<Stat> {
        let fid = self.walk(path).await?;
        let msg = if self.inner.dialect == Dialect::P2000L {
            Tmsg::Getattr { fid, mask: crate::dotl::getattr::BASIC }
        } else {
            Tmsg::Stat { fid }
        };
        let res = self.rpc(msg).await;
        let _ = self.clunk(fid).await;
        match res? {
            Rmsg::Stat { stat } => Ok(stat),
            Rmsg::Getattr(a) => Ok(Stat {
                qid: a.qid,
                mode: (a.mode & 0o777) | if a.qid.is_dir() { DMDIR } else { 0 },
                atime: a.atime_sec as u32,
                mtime: a.mtime_sec as u32,
                length: a.size,
                name: split_path(path).pop().unwrap_or_else(|| "/".into()),
                n_uid: a.uid,
                n_gid: a.gid,
                ..Stat::default()
            }),
            m => unexpected(m),
        }
    }

    /// The entries of a directory.
    pub async fn readdir(&self, path: &str) -> Result<Vec<DirEntry>> {
        let dotl = self.inner.dialect == Dialect::P2000L;
        let dotu = self.inner.dialect.dotu_fields();
        self.with_open(path, omode::OREAD, async |fid, iounit| {
            let mut out = Vec::new();
            let mut offset = 0u64;
            loop {
                if dotl {
                    let data = match self.rpc(Tmsg::Readdir { fid, offset, count: iounit }).await? {
                        Rmsg::Readdir { data } => data,
                        m => return unexpected(m),
                    };
                    let ents = Dirent::parse_all(&data).map_err(|e| ClientError::Protocol(e.to_string()))?;
                    let Some(last) = ents.last() else { return Ok(out) };
                    offset = last.offset;
                    out.extend(ents.into_iter().map(|d| DirEntry { name: d.name, qid: d.qid }));
                } else {
                    let data = self.read_at(fid, offset, iounit).await?;
                    if data.is_empty() {
                        return Ok(out);
                    }
                    offset += data.len() as u64;
                    let mut r = Reader::new(&data);
                    while r.remaining() > 0 {
                        let s = Stat::decode(&mut r, dotu).map_err(|e| ClientError::Protocol(e.to_string()))?;
                        out.push(DirEntry { name: s.name, qid: s.qid });
                    }
                }
            }
        })
        .await
    }
}
