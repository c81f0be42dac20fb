//! The file server's side of the contract: a handful of async callbacks, as
//! in plan9port's lib9p. The library owns version, msize, fids, tags, flush
//! and directory-read offsets, and validates every request before a
//! callback sees it; the file system only answers for its files.

use std::future::Future;

use crate::error::{Error, Result};
use crate::fcall::omode;
use crate::qid::Qid;
use crate::stat::{Stat, Wstat};

/// How a fid was opened, the same for Topen and Tlopen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenMode {
    pub read: bool,
    pub write: bool,
    /// Truncate at open (OTRUNC / O_TRUNC); the file system decides what
    /// that means for its files.
    pub truncate: bool,
    /// Remove the file when the fid is clunked (ORCLOSE).
    pub remove_on_close: bool,
}

impl OpenMode {
    pub const READ: OpenMode = OpenMode {
        read: true,
        write: false,
        truncate: false,
        remove_on_close: false,
    };

    /// From a 9P2000 Topen/Tcreate mode byte.
    pub fn from_9p(mode: u8) -> OpenMode {
        let (read, write) = match mode & 3 {
            omode::OREAD | omode::OEXEC => (true, false),
            omode::OWRITE => (false, true),
            _ => (true, true),
        };
        OpenMode {
            read,
            write,
            truncate: mode & omode::OTRUNC != 0,
            remove_on_close: mode & omode::ORCLOSE != 0,
        }
    }

    /// From Linux open(2) flags (Tlopen/Tlcreate).
    pub fn from_linux(flags: u32) -> OpenMode {
        use crate::dotl::oflags::*;
        let (read, write) = match flags & O_ACCMODE {
            O_WRONLY => (false, true),
            O_RDWR => (true, true),
            _ => (true, false),
        };
        OpenMode {
            read,
            write,
            truncate: flags & O_TRUNC != 0,
            remove_on_close: false,
        }
    }
}

/// A file server. `Fid` is whatever the file system needs to find a file
/// again (a path, a node id, per-open state behind a lock); the library
/// keeps one per client fid and hands it back on every request.
///
/// Callbacks run concurrently, several at once per connection, and a
/// request the client flushes is cancelled by dropping its future.
pub trait Filesystem: Send + Sync + 'static {
    type Fid: Clone + Send + Sync + 'static;

    /// The root of the tree for a new session.
    fn attach(
        &self,
        uname: &str,
        aname: &str,
    ) -> impl Future<Output = Result<(Self::Fid, Qid)>> + Send;

    /// One step from a directory to a child. `..` reaches here only below
    /// the attach root (at the root the library keeps the fid where it is).
    fn walk(
        &self,
        dir: &Self::Fid,
        name: &str,
    ) -> impl Future<Output = Result<(Self::Fid, Qid)>> + Send;

    /// Prepares a fid for I/O; returns the file's (possibly updated) qid.
    /// Directories are only ever opened for reading.
    fn open(&self, fid: &Self::Fid, mode: OpenMode) -> impl Future<Output = Result<Qid>> + Send;

    /// Up to `count` bytes of a file at `offset`.
    fn read(
        &self,
        fid: &Self::Fid,
        offset: u64,
        count: u32,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send;

    /// A directory's entries; the library slices them into reads.
    fn readdir(&self, dir: &Self::Fid) -> impl Future<Output = Result<Vec<Stat>>> + Send;

    /// Writes `data` at `offset`; returns the count written.
    fn write(
        &self,
        fid: &Self::Fid,
        offset: u64,
        data: &[u8],
    ) -> impl Future<Output = Result<u32>> + Send;

    /// Creates `name` in `dir` (a directory when `perm` has `DMDIR`) and
    /// opens it with `mode`.
    fn create(
        &self,
        _dir: &Self::Fid,
        _name: &str,
        _perm: u32,
        _mode: OpenMode,
    ) -> impl Future<Output = Result<(Self::Fid, Qid)>> + Send {
        async { Err(Error::permission()) }
    }

    /// Removes the file; the library clunks the fid whatever the outcome.
    fn remove(&self, _fid: &Self::Fid) -> impl Future<Output = Result<()>> + Send {
        async { Err(Error::permission()) }
    }

    fn stat(&self, fid: &Self::Fid) -> impl Future<Output = Result<Stat>> + Send;

    /// Applies a Twstat/Tsetattr. By default a sync request (nothing to
    /// change) and truncation are accepted as no-ops and anything else is
    /// refused; the library never refuses truncation itself.
    fn wstat(&self, _fid: &Self::Fid, changes: &Wstat) -> impl Future<Output = Result<()>> + Send {
        let ok = changes.is_sync() || changes.is_truncate();
        async move {
            if ok {
                Ok(())
            } else {
                Err(Error::permission())
            }
        }
    }

    /// Where offset `offset` of an open fid lies in the file's own
    /// numbering, for a file whose reads may be served from further on
    /// than asked (jobd's `log` serves a read below its oldest kept line
    /// from that line, and its offsets count from the job's creation). A
    /// client of the library, not the library, asks: an HTTP front telling
    /// its caller where to read on from. By default, `offset`.
    fn logical_offset(&self, _fid: &Self::Fid, offset: u64) -> u64 {
        offset
    }

    /// For a file that only grows (jobd's `log`), its logical end now, in
    /// the numbering of `logical_offset`: what a reader of its last bytes
    /// counts back from, and where one waiting for more bytes goes on
    /// from. `None`, the default, for any other file. Asked, like
    /// `logical_offset`, by a client of the library, never by it.
    fn logical_end(&self, _fid: &Self::Fid) -> Option<u64> {
        None
    }

    /// The client is done with this fid (called once, after its last use).
    fn clunk(&self, _fid: &Self::Fid) -> impl Future<Output = ()> + Send {
        async {}
    }
}
