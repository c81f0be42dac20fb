//! 9P2000.L structures that have no 9P2000 counterpart: getattr/setattr
//! attributes, statfs, directory entries, locks — and the conversion from
//! the common [`Stat`] to an Rgetattr.

use crate::qid::Qid;
use crate::stat::{Stat, DMDIR};
use crate::wire::{DecodeError, Reader, Writer};

/// Tgetattr request_mask / Rgetattr valid bits.
pub mod getattr {
    pub const MODE: u64 = 0x1;
    pub const NLINK: u64 = 0x2;
    pub const UID: u64 = 0x4;
    pub const GID: u64 = 0x8;
    pub const RDEV: u64 = 0x10;
    pub const ATIME: u64 = 0x20;
    pub const MTIME: u64 = 0x40;
    pub const CTIME: u64 = 0x80;
    pub const INO: u64 = 0x100;
    pub const SIZE: u64 = 0x200;
    pub const BLOCKS: u64 = 0x400;
    pub const BASIC: u64 = 0x7ff;
}

/// Tsetattr valid bits.
pub mod setattr {
    pub const MODE: u32 = 0x1;
    pub const UID: u32 = 0x2;
    pub const GID: u32 = 0x4;
    pub const SIZE: u32 = 0x8;
    pub const ATIME: u32 = 0x10;
    pub const MTIME: u32 = 0x20;
    pub const CTIME: u32 = 0x40;
    pub const ATIME_SET: u32 = 0x80;
    pub const MTIME_SET: u32 = 0x100;
}

/// Linux open(2) flags as Tlopen/Tlcreate carry them.
pub mod oflags {
    pub const O_ACCMODE: u32 = 0o3;
    pub const O_WRONLY: u32 = 0o1;
    pub const O_RDWR: u32 = 0o2;
    pub const O_CREAT: u32 = 0o100;
    pub const O_EXCL: u32 = 0o200;
    pub const O_TRUNC: u32 = 0o1000;
    pub const O_APPEND: u32 = 0o2000;
}

pub const S_IFMT: u32 = 0o170000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
/// Tunlinkat flag: remove a directory.
pub const AT_REMOVEDIR: u32 = 0x200;

/// Rgetattr's body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attr {
    pub valid: u64,
    pub qid: Qid,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub atime_sec: u64,
    pub atime_nsec: u64,
    pub mtime_sec: u64,
    pub mtime_nsec: u64,
    pub ctime_sec: u64,
    pub ctime_nsec: u64,
    pub btime_sec: u64,
    pub btime_nsec: u64,
    pub gen: u64,
    pub data_version: u64,
}

impl Attr {
    pub fn from_stat(s: &Stat) -> Attr {
        let dir = s.mode & DMDIR != 0;
        let kind = if dir { S_IFDIR } else { S_IFREG };
        let blksize = 4096;
        Attr {
            valid: getattr::BASIC,
            qid: s.qid,
            mode: kind | (s.mode & 0o777),
            uid: if s.n_uid == u32::MAX { 0 } else { s.n_uid },
            gid: if s.n_gid == u32::MAX { 0 } else { s.n_gid },
            nlink: if dir { 2 } else { 1 },
            size: s.length,
            blksize,
            blocks: s.length.div_ceil(512),
            atime_sec: s.atime as u64,
            mtime_sec: s.mtime as u64,
            ctime_sec: s.mtime as u64,
            ..Attr::default()
        }
    }

    pub fn encode(&self, w: &mut Writer) {
        w.u64(self.valid);
        w.qid(&self.qid);
        w.u32(self.mode);
        w.u32(self.uid);
        w.u32(self.gid);
        for v in [
            self.nlink, self.rdev, self.size, self.blksize, self.blocks, self.atime_sec,
            self.atime_nsec, self.mtime_sec, self.mtime_nsec, self.ctime_sec, self.ctime_nsec,
            self.btime_sec, self.btime_nsec, self.gen, self.data_version,
        ] {
            w.u64(v);
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Attr, DecodeError> {
        Ok(Attr {
            valid: r.u64()?,
            qid: r.qid()?,
            mode: r.u32()?,
            uid: r.u32()?,
            gid: r.u32()?,
            nlink: r.u64()?,
            rdev: r.u64()?,
            size: r.u64()?,
            blksize: r.u64()?,
            blocks: r.u64()?,
            atime_sec: r.u64()?,
            atime_nsec: r.u64()?,
            mtime_sec: r.u64()?,
            mtime_nsec: r.u64()?,
            ctime_sec: r.u64()?,
            ctime_nsec: r.u64()?,
            btime_sec: r.u64()?,
            btime_nsec: r.u64()?,
            gen: r.u64()?,
            data_version: r.u64()?,
        })
    }
}

/// Tsetattr's body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetAttr {
    pub valid: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime_sec: u64,
    pub atime_nsec: u64,
    pub mtime_sec: u64,
    pub mtime_nsec: u64,
}

/// Rstatfs's body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Statfs {
    pub ty: u32,
    pub bsize: u32,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub fsid: u64,
    pub namelen: u32,
}

/// One entry of an Rreaddir: `qid[13] offset[8] type[1] name[s]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirent {
    pub qid: Qid,
    /// The cookie to pass as the next Treaddir offset to continue after this entry.
    pub offset: u64,
    pub ty: u8,
    pub name: String,
}

impl Dirent {
    pub fn encode(&self, w: &mut Writer) {
        w.qid(&self.qid);
        w.u64(self.offset);
        w.u8(self.ty);
        w.string(&self.name);
    }

    pub fn encoded_len(&self) -> usize {
        13 + 8 + 1 + 2 + self.name.len()
    }

    /// Parses the concatenated entries of an Rreaddir's data.
    pub fn parse_all(data: &[u8]) -> Result<Vec<Dirent>, DecodeError> {
        let mut r = Reader::new(data);
        let mut out = Vec::new();
        while r.remaining() > 0 {
            out.push(Dirent { qid: r.qid()?, offset: r.u64()?, ty: r.u8()?, name: r.string()? });
        }
        Ok(out)
    }
}

/// Tlock's body (and, without `flags`, Tgetlock's and Rgetlock's).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Flock {
    pub ty: u8,
    pub flags: u32,
    pub start: u64,
    pub length: u64,
    pub proc_id: u32,
    pub client_id: String,
}
