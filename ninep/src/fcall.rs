//! 9P messages as values: [`Tmsg`] (requests) and [`Rmsg`] (replies) for
//! 9P2000, 9P2000.u and 9P2000.L, one object model for all three. The
//! byte layout lives in `codec.rs`, the debug text in `trace.rs`.

use crate::dotl::{Attr, Flock, SetAttr, Statfs};
use crate::qid::Qid;
use crate::stat::Stat;

/// The tag of Tversion, and the "no tag" value.
pub const NOTAG: u16 = 0xFFFF;
/// The "no fid" value (the afid of an unauthenticated Tattach).
pub const NOFID: u32 = 0xFFFF_FFFF;
/// At most this many names in one Twalk.
pub const MAXWELEM: usize = 16;
/// Bytes of header around Tread/Twrite data; `msize - IOHDRSZ` is the largest count.
pub const IOHDRSZ: u32 = 24;

/// Message type numbers.
pub mod ty {
    pub const RLERROR: u8 = 7;
    pub const TSTATFS: u8 = 8;
    pub const TLOPEN: u8 = 12;
    pub const TLCREATE: u8 = 14;
    pub const TSYMLINK: u8 = 16;
    pub const TMKNOD: u8 = 18;
    pub const TRENAME: u8 = 20;
    pub const TREADLINK: u8 = 22;
    pub const TGETATTR: u8 = 24;
    pub const TSETATTR: u8 = 26;
    pub const TXATTRWALK: u8 = 30;
    pub const TXATTRCREATE: u8 = 32;
    pub const TREADDIR: u8 = 40;
    pub const TFSYNC: u8 = 50;
    pub const TLOCK: u8 = 52;
    pub const TGETLOCK: u8 = 54;
    pub const TLINK: u8 = 70;
    pub const TMKDIR: u8 = 72;
    pub const TRENAMEAT: u8 = 74;
    pub const TUNLINKAT: u8 = 76;
    pub const TVERSION: u8 = 100;
    pub const TAUTH: u8 = 102;
    pub const TATTACH: u8 = 104;
    pub const RERROR: u8 = 107;
    pub const TFLUSH: u8 = 108;
    pub const TWALK: u8 = 110;
    pub const TOPEN: u8 = 112;
    pub const TCREATE: u8 = 114;
    pub const TREAD: u8 = 116;
    pub const TWRITE: u8 = 118;
    pub const TCLUNK: u8 = 120;
    pub const TREMOVE: u8 = 122;
    pub const TSTAT: u8 = 124;
    pub const TWSTAT: u8 = 126;
}

/// Topen mode bits.
pub mod omode {
    pub const OREAD: u8 = 0;
    pub const OWRITE: u8 = 1;
    pub const ORDWR: u8 = 2;
    pub const OEXEC: u8 = 3;
    pub const OTRUNC: u8 = 0x10;
    pub const ORCLOSE: u8 = 0x40;
}

/// A request. `n_uname` (Tauth, Tattach) and `extension` (Tcreate) travel
/// only in 9P2000.u and .L; in 9P2000 they decode as `NOFID`/empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tmsg {
    Version { msize: u32, version: String },
    Auth { afid: u32, uname: String, aname: String, n_uname: u32 },
    Attach { fid: u32, afid: u32, uname: String, aname: String, n_uname: u32 },
    Flush { oldtag: u16 },
    Walk { fid: u32, newfid: u32, wnames: Vec<String> },
    Open { fid: u32, mode: u8 },
    Create { fid: u32, name: String, perm: u32, mode: u8, extension: String },
    Read { fid: u32, offset: u64, count: u32 },
    Write { fid: u32, offset: u64, data: Vec<u8> },
    Clunk { fid: u32 },
    Remove { fid: u32 },
    Stat { fid: u32 },
    Wstat { fid: u32, stat: Stat },
    // 9P2000.L
    Statfs { fid: u32 },
    Lopen { fid: u32, flags: u32 },
    Lcreate { fid: u32, name: String, flags: u32, mode: u32, gid: u32 },
    Symlink { fid: u32, name: String, target: String, gid: u32 },
    Mknod { dfid: u32, name: String, mode: u32, major: u32, minor: u32, gid: u32 },
    Rename { fid: u32, dfid: u32, name: String },
    Readlink { fid: u32 },
    Getattr { fid: u32, mask: u64 },
    Setattr { fid: u32, attr: SetAttr },
    Xattrwalk { fid: u32, newfid: u32, name: String },
    Xattrcreate { fid: u32, name: String, size: u64, flags: u32 },
    Readdir { fid: u32, offset: u64, count: u32 },
    Fsync { fid: u32, datasync: u32 },
    Lock { fid: u32, lock: Flock },
    Getlock { fid: u32, lock: Flock },
    Link { dfid: u32, fid: u32, name: String },
    Mkdir { dfid: u32, name: String, mode: u32, gid: u32 },
    Renameat { olddirfid: u32, oldname: String, newdirfid: u32, newname: String },
    Unlinkat { dirfid: u32, name: String, flags: u32 },
}

/// A reply. `Error` is 9P2000's Rerror (its `errno` travels only in .u);
/// `Lerror` is 9P2000.L's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rmsg {
    Version { msize: u32, version: String },
    Auth { aqid: Qid },
    Attach { qid: Qid },
    Error { ename: String, errno: u32 },
    Lerror { ecode: u32 },
    Flush,
    Walk { wqids: Vec<Qid> },
    Open { qid: Qid, iounit: u32 },
    Create { qid: Qid, iounit: u32 },
    Read { data: Vec<u8> },
    Write { count: u32 },
    Clunk,
    Remove,
    Stat { stat: Stat },
    Wstat,
    // 9P2000.L
    Statfs(Statfs),
    Lopen { qid: Qid, iounit: u32 },
    Lcreate { qid: Qid, iounit: u32 },
    Symlink { qid: Qid },
    Mknod { qid: Qid },
    Rename,
    Readlink { target: String },
    Getattr(Attr),
    Setattr,
    Xattrwalk { size: u64 },
    Xattrcreate,
    Readdir { data: Vec<u8> },
    Fsync,
    Lock { status: u8 },
    Getlock(Flock),
    Link,
    Mkdir { qid: Qid },
    Renameat,
    Unlinkat,
}

impl Tmsg {
    /// The message's name, as the protocol spells it (`"Twalk"`).
    pub fn name(&self) -> &'static str {
        use Tmsg::*;
        match self {
            Version { .. } => "Tversion",
            Auth { .. } => "Tauth",
            Attach { .. } => "Tattach",
            Flush { .. } => "Tflush",
            Walk { .. } => "Twalk",
            Open { .. } => "Topen",
            Create { .. } => "Tcreate",
            Read { .. } => "Tread",
            Write { .. } => "Twrite",
            Clunk { .. } => "Tclunk",
            Remove { .. } => "Tremove",
            Stat { .. } => "Tstat",
            Wstat { .. } => "Twstat",
            Statfs { .. } => "Tstatfs",
            Lopen { .. } => "Tlopen",
            Lcreate { .. } => "Tlcreate",
            Symlink { .. } => "Tsymlink",
            Mknod { .. } => "Tmknod",
            Rename { .. } => "Trename",
            Readlink { .. } => "Treadlink",
            Getattr { .. } => "Tgetattr",
            Setattr { .. } => "Tsetattr",
            Xattrwalk { .. } => "Txattrwalk",
            Xattrcreate { .. } => "Txattrcreate",
            Readdir { .. } => "Treaddir",
            Fsync { .. } => "Tfsync",
            Lock { .. } => "Tlock",
            Getlock { .. } => "Tgetlock",
            Link { .. } => "Tlink",
            Mkdir { .. } => "Tmkdir",
            Renameat { .. } => "Trenameat",
            Unlinkat { .. } => "Tunlinkat",
        }
    }

    /// True for the messages that exist only in 9P2000.L.
    pub fn is_dotl(&self) -> bool {
        self.type_byte() < ty::TVERSION
    }
}

impl Rmsg {
    /// True for the messages that exist only in 9P2000.L.
    pub fn is_dotl(&self) -> bool {
        self.type_byte() < ty::TVERSION + 1
    }
}
