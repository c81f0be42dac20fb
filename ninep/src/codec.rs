//! The byte layout of every message: `size[4] type[1] tag[2] body`, as the
//! 9P manual (intro(9P)) and the Linux client (`include/net/9p/9p.h`,
//! `net/9p/protocol.c`) define it. Pure functions; no I/O.

use crate::dialect::Dialect;
use crate::dotl::{Attr, Flock, SetAttr, Statfs};
use crate::fcall::{ty, Rmsg, Tmsg, MAXWELEM};
use crate::stat::Stat;
use crate::wire::{DecodeError, Reader, Writer};

/// Bytes of `size[4] type[1] tag[2]`.
pub const HEADER_LEN: usize = 7;
/// Read replies with at least this much data are encoded apart (`Rmsg::encode_split`).
pub const SPLIT_DATA_AT: usize = 16 << 10;

/// Reads `size[4]` from the start of a frame.
pub fn frame_size(head: [u8; 4]) -> u32 {
    u32::from_le_bytes(head)
}

fn frame(type_byte: u8, tag: u16, body: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(0);
    w.u8(type_byte);
    w.u16(tag);
    body(&mut w);
    let size = w.buf.len() as u32;
    w.buf[..4].copy_from_slice(&size.to_le_bytes());
    w.buf
}

/// Splits a whole frame (size included) into its type, tag and body.
pub fn split_header(frame: &[u8]) -> Result<(u8, u16, &[u8]), DecodeError> {
    let mut r = Reader::new(frame);
    r.u32()?;
    let t = r.u8()?;
    let tag = r.u16()?;
    Ok((t, tag, &frame[HEADER_LEN..]))
}

fn flock(r: &mut Reader<'_>, with_flags: bool) -> Result<Flock, DecodeError> {
    Ok(Flock {
        ty: r.u8()?,
        flags: if with_flags { r.u32()? } else { 0 },
        start: r.u64()?,
        length: r.u64()?,
        proc_id: r.u32()?,
        client_id: r.string()?,
    })
}

fn put_flock(w: &mut Writer, l: &Flock, with_flags: bool) {
    w.u8(l.ty);
    if with_flags {
        w.u32(l.flags);
    }
    w.u64(l.start);
    w.u64(l.length);
    w.u32(l.proc_id);
    w.string(&l.client_id);
}

/// A stat inside Twstat/Rstat is preceded by its own `n[2]` length.
fn nstat(r: &mut Reader<'_>, dotu: bool) -> Result<Stat, DecodeError> {
    let n = r.u16()? as usize;
    Stat::decode(&mut Reader::new(r.bytes(n)?), dotu)
}

fn put_nstat(w: &mut Writer, s: &Stat, dotu: bool) {
    let b = s.to_bytes(dotu);
    w.u16(b.len() as u16);
    w.buf.extend_from_slice(&b);
}

impl Tmsg {
    pub fn type_byte(&self) -> u8 {
        use Tmsg::*;
        match self {
            Version { .. } => ty::TVERSION,
            Auth { .. } => ty::TAUTH,
            Attach { .. } => ty::TATTACH,
            Flush { .. } => ty::TFLUSH,
            Walk { .. } => ty::TWALK,
            Open { .. } => ty::TOPEN,
            Create { .. } => ty::TCREATE,
            Read { .. } => ty::TREAD,
            Write { .. } => ty::TWRITE,
            Clunk { .. } => ty::TCLUNK,
            Remove { .. } => ty::TREMOVE,
            Stat { .. } => ty::TSTAT,
            Wstat { .. } => ty::TWSTAT,
            Statfs { .. } => ty::TSTATFS,
            Lopen { .. } => ty::TLOPEN,
            Lcreate { .. } => ty::TLCREATE,
            Symlink { .. } => ty::TSYMLINK,
            Mknod { .. } => ty::TMKNOD,
            Rename { .. } => ty::TRENAME,
            Readlink { .. } => ty::TREADLINK,
            Getattr { .. } => ty::TGETATTR,
            Setattr { .. } => ty::TSETATTR,
            Xattrwalk { .. } => ty::TXATTRWALK,
            Xattrcreate { .. } => ty::TXATTRCREATE,
            Readdir { .. } => ty::TREADDIR,
            Fsync { .. } => ty::TFSYNC,
            Lock { .. } => ty::TLOCK,
            Getlock { .. } => ty::TGETLOCK,
            Link { .. } => ty::TLINK,
            Mkdir { .. } => ty::TMKDIR,
            Renameat { .. } => ty::TRENAMEAT,
            Unlinkat { .. } => ty::TUNLINKAT,
        }
    }

    /// Encodes a whole frame.
    pub fn encode(&self, tag: u16, d: Dialect) -> Vec<u8> {
        use Tmsg::*;
        let u = d.dotu_fields();
        frame(self.type_byte(), tag, |w| match self {
            Version { msize, version } => {
                w.u32(*msize);
                w.string(version);
            }
            Auth { afid, uname, aname, n_uname } => {
                w.u32(*afid);
                w.string(uname);
                w.string(aname);
                if u {
                    w.u32(*n_uname);
                }
            }
            Attach { fid, afid, uname, aname, n_uname } => {
                w.u32(*fid);
                w.u32(*afid);
                w.string(uname);
                w.string(aname);
                if u {
                    w.u32(*n_uname);
                }
            }
            Flush { oldtag } => w.u16(*oldtag),
            Walk { fid, newfid, wnames } => {
                w.u32(*fid);
                w.u32(*newfid);
                w.u16(wnames.len() as u16);
                for n in wnames {
                    w.string(n);
                }
            }
            Open { fid, mode } => {
                w.u32(*fid);
                w.u8(*mode);
            }
            Create { fid, name, perm, mode, extension } => {
                w.u32(*fid);
                w.string(name);
                w.u32(*perm);
                w.u8(*mode);
                if d == Dialect::P2000U {
                    w.string(extension);
                }
            }
            Read { fid, offset, count } | Readdir { fid, offset, count } => {
                w.u32(*fid);
                w.u64(*offset);
                w.u32(*count);
            }
            Write { fid, offset, data } => {
                w.u32(*fid);
                w.u64(*offset);
                w.data(data);
            }
            Clunk { fid } | Remove { fid } | Stat { fid } | Statfs { fid } | Readlink { fid } => {
                w.u32(*fid)
            }
            Wstat { fid, stat } => {
                w.u32(*fid);
                put_nstat(w, stat, u);
            }
            Lopen { fid, flags } => {
                w.u32(*fid);
                w.u32(*flags);
            }
            Lcreate { fid, name, flags, mode, gid } => {
                w.u32(*fid);
                w.string(name);
                w.u32(*flags);
                w.u32(*mode);
                w.u32(*gid);
            }
            Symlink { fid, name, target, gid } => {
                w.u32(*fid);
                w.string(name);
                w.string(target);
                w.u32(*gid);
            }
            Mknod { dfid, name, mode, major, minor, gid } => {
                w.u32(*dfid);
                w.string(name);
                for v in [*mode, *major, *minor, *gid] {
                    w.u32(v);
                }
            }
            Rename { fid, dfid, name } => {
                w.u32(*fid);
                w.u32(*dfid);
                w.string(name);
            }
            Getattr { fid, mask } => {
                w.u32(*fid);
                w.u64(*mask);
            }
            Setattr { fid, attr: a } => {
                w.u32(*fid);
                for v in [a.valid, a.mode, a.uid, a.gid] {
                    w.u32(v);
                }
                for v in [a.size, a.atime_sec, a.atime_nsec, a.mtime_sec, a.mtime_nsec] {
                    w.u64(v);
                }
            }
            Xattrwalk { fid, newfid, name } => {
                w.u32(*fid);
                w.u32(*newfid);
                w.string(name);
            }
            Xattrcreate { fid, name, size, flags } => {
                w.u32(*fid);
                w.string(name);
                w.u64(*size);
                w.u32(*flags);
            }
            Fsync { fid, datasync } => {
                w.u32(*fid);
                w.u32(*datasync);
            }
            Lock { fid, lock } => {
                w.u32(*fid);
                put_flock(w, lock, true);
            }
            Getlock { fid, lock } => {
                w.u32(*fid);
                put_flock(w, lock, false);
            }
            Link { dfid, fid, name } => {
                w.u32(*dfid);
                w.u32(*fid);
                w.string(name);
            }
            Mkdir { dfid, name, mode, gid } => {
                w.u32(*dfid);
                w.string(name);
                w.u32(*mode);
                w.u32(*gid);
            }
            Renameat { olddirfid, oldname, newdirfid, newname } => {
                w.u32(*olddirfid);
                w.string(oldname);
                w.u32(*newdirfid);
                w.string(newname);
            }
            Unlinkat { dirfid, name, flags } => {
                w.u32(*dirfid);
                w.string(name);
                w.u32(*flags);
            }
        })
    }

    /// Decodes a message body of the given type. Messages of 9P2000.L are
    /// known only in that dialect; elsewhere they are `UnknownType`. Bytes
    /// after the last field are ignored, as the Linux server side does
    /// (older clients send Tfsync without `datasync`).
    pub fn decode(type_byte: u8, body: &[u8], d: Dialect) -> Result<Tmsg, DecodeError> {
        let u = d.dotu_fields();
        let r = &mut Reader::new(body);
        if type_byte < ty::TVERSION && d != Dialect::P2000L {
            return Err(DecodeError::UnknownType(type_byte));
        }
        let m = match type_byte {
            ty::TVERSION => Tmsg::Version { msize: r.u32()?, version: r.string()? },
            ty::TAUTH => Tmsg::Auth {
                afid: r.u32()?,
                uname: r.string()?,
                aname: r.string()?,
                n_uname: if u { r.u32()? } else { crate::fcall::NOFID },
            },
            ty::TATTACH => Tmsg::Attach {
                fid: r.u32()?,
                afid: r.u32()?,
                uname: r.string()?,
                aname: r.string()?,
                n_uname: if u { r.u32()? } else { crate::fcall::NOFID },
            },
            ty::TFLUSH => Tmsg::Flush { oldtag: r.u16()? },
            ty::TWALK => {
                let fid = r.u32()?;
                let newfid = r.u32()?;
                let n = r.u16()?;
                if n as usize > MAXWELEM {
                    return Err(DecodeError::TooManyWalkNames(n));
                }
                let wnames = (0..n).map(|_| r.string()).collect::<Result<_, _>>()?;
                Tmsg::Walk { fid, newfid, wnames }
            }
            ty::TOPEN => Tmsg::Open { fid: r.u32()?, mode: r.u8()? },
            ty::TCREATE => Tmsg::Create {
                fid: r.u32()?,
                name: r.string()?,
                perm: r.u32()?,
                mode: r.u8()?,
                extension: if d == Dialect::P2000U { r.string()? } else { String::new() },
            },
            ty::TREAD => Tmsg::Read { fid: r.u32()?, offset: r.u64()?, count: r.u32()? },
            ty::TWRITE => Tmsg::Write { fid: r.u32()?, offset: r.u64()?, data: r.data()? },
            ty::TCLUNK => Tmsg::Clunk { fid: r.u32()? },
            ty::TREMOVE => Tmsg::Remove { fid: r.u32()? },
            ty::TSTAT => Tmsg::Stat { fid: r.u32()? },
            ty::TWSTAT => Tmsg::Wstat { fid: r.u32()?, stat: nstat(r, u)? },
            ty::TSTATFS => Tmsg::Statfs { fid: r.u32()? },
            ty::TLOPEN => Tmsg::Lopen { fid: r.u32()?, flags: r.u32()? },
            ty::TLCREATE => Tmsg::Lcreate {
                fid: r.u32()?,
                name: r.string()?,
                flags: r.u32()?,
                mode: r.u32()?,
                gid: r.u32()?,
            },
            ty::TSYMLINK => Tmsg::Symlink {
                fid: r.u32()?,
                name: r.string()?,
                target: r.string()?,
                gid: r.u32()?,
            },
            ty::TMKNOD => Tmsg::Mknod {
                dfid: r.u32()?,
                name: r.string()?,
                mode: r.u32()?,
                major: r.u32()?,
                minor: r.u32()?,
                gid: r.u32()?,
            },
            ty::TRENAME => Tmsg::Rename { fid: r.u32()?, dfid: r.u32()?, name: r.string()? },
            ty::TREADLINK => Tmsg::Readlink { fid: r.u32()? },
            ty::TGETATTR => Tmsg::Getattr { fid: r.u32()?, mask: r.u64()? },
            ty::TSETATTR => Tmsg::Setattr {
                fid: r.u32()?,
                attr: SetAttr {
                    valid: r.u32()?,
                    mode: r.u32()?,
                    uid: r.u32()?,
                    gid: r.u32()?,
                    size: r.u64()?,
                    atime_sec: r.u64()?,
                    atime_nsec: r.u64()?,
                    mtime_sec: r.u64()?,
                    mtime_nsec: r.u64()?,
                },
            },
            ty::TXATTRWALK => {
                Tmsg::Xattrwalk { fid: r.u32()?, newfid: r.u32()?, name: r.string()? }
            }
            ty::TXATTRCREATE => Tmsg::Xattrcreate {
                fid: r.u32()?,
                name: r.string()?,
                size: r.u64()?,
                flags: r.u32()?,
            },
            ty::TREADDIR => Tmsg::Readdir { fid: r.u32()?, offset: r.u64()?, count: r.u32()? },
            ty::TFSYNC => Tmsg::Fsync {
                fid: r.u32()?,
                datasync: if r.remaining() >= 4 { r.u32()? } else { 0 },
            },
            ty::TLOCK => Tmsg::Lock { fid: r.u32()?, lock: flock(r, true)? },
            ty::TGETLOCK => Tmsg::Getlock { fid: r.u32()?, lock: flock(r, false)? },
            ty::TLINK => Tmsg::Link { dfid: r.u32()?, fid: r.u32()?, name: r.string()? },
            ty::TMKDIR => Tmsg::Mkdir {
                dfid: r.u32()?,
                name: r.string()?,
                mode: r.u32()?,
                gid: r.u32()?,
            },
            ty::TRENAMEAT => Tmsg::Renameat {
                olddirfid: r.u32()?,
                oldname: r.string()?,
                newdirfid: r.u32()?,
                newname: r.string()?,
            },
            ty::TUNLINKAT => {
                Tmsg::Unlinkat { dirfid: r.u32()?, name: r.string()?, flags: r.u32()? }
            }
            other => return Err(DecodeError::UnknownType(other)),
        };
        Ok(m)
    }
}

impl Rmsg {
    pub fn type_byte(&self) -> u8 {
        use Rmsg::*;
        match self {
            Error { .. } => ty::RERROR,
            Lerror { .. } => ty::RLERROR,
            Version { .. } => ty::TVERSION + 1,
            Auth { .. } => ty::TAUTH + 1,
            Attach { .. } => ty::TATTACH + 1,
            Flush => ty::TFLUSH + 1,
            Walk { .. } => ty::TWALK + 1,
            Open { .. } => ty::TOPEN + 1,
            Create { .. } => ty::TCREATE + 1,
            Read { .. } => ty::TREAD + 1,
            Write { .. } => ty::TWRITE + 1,
            Clunk => ty::TCLUNK + 1,
            Remove => ty::TREMOVE + 1,
            Stat { .. } => ty::TSTAT + 1,
            Wstat => ty::TWSTAT + 1,
            Statfs(_) => ty::TSTATFS + 1,
            Lopen { .. } => ty::TLOPEN + 1,
            Lcreate { .. } => ty::TLCREATE + 1,
            Symlink { .. } => ty::TSYMLINK + 1,
            Mknod { .. } => ty::TMKNOD + 1,
            Rename => ty::TRENAME + 1,
            Readlink { .. } => ty::TREADLINK + 1,
            Getattr(_) => ty::TGETATTR + 1,
            Setattr => ty::TSETATTR + 1,
            Xattrwalk { .. } => ty::TXATTRWALK + 1,
            Xattrcreate => ty::TXATTRCREATE + 1,
            Readdir { .. } => ty::TREADDIR + 1,
            Fsync => ty::TFSYNC + 1,
            Lock { .. } => ty::TLOCK + 1,
            Getlock(_) => ty::TGETLOCK + 1,
            Link => ty::TLINK + 1,
            Mkdir { .. } => ty::TMKDIR + 1,
            Renameat => ty::TRENAMEAT + 1,
            Unlinkat => ty::TUNLINKAT + 1,
        }
    }

    /// Encodes the frame, but a big read's data is handed back apart
    /// instead of copied in: the frame is the first part followed by the
    /// second. (A 1 MiB read reply would otherwise be copied once more
    /// here, after the file system's own copy.)
    pub fn encode_split(self, tag: u16, d: Dialect) -> (Vec<u8>, Option<Vec<u8>>) {
        match self {
            Rmsg::Read { data } if data.len() >= SPLIT_DATA_AT => {
                let mut w = Writer::default();
                w.u32((HEADER_LEN + 4 + data.len()) as u32);
                w.u8(ty::TREAD + 1);
                w.u16(tag);
                w.u32(data.len() as u32);
                (w.buf, Some(data))
            }
            other => (other.encode(tag, d), None),
        }
    }

    /// Encodes a whole frame.
    pub fn encode(&self, tag: u16, d: Dialect) -> Vec<u8> {
        use Rmsg::*;
        let u = d.dotu_fields();
        frame(self.type_byte(), tag, |w| match self {
            Version { msize, version } => {
                w.u32(*msize);
                w.string(version);
            }
            Auth { aqid: q } | Attach { qid: q } | Symlink { qid: q } | Mknod { qid: q }
            | Mkdir { qid: q } => w.qid(q),
            Error { ename, errno } => {
                w.string(ename);
                if d == Dialect::P2000U {
                    w.u32(*errno);
                }
            }
            Lerror { ecode } => w.u32(*ecode),
            Walk { wqids } => {
                w.u16(wqids.len() as u16);
                for q in wqids {
                    w.qid(q);
                }
            }
            Open { qid, iounit } | Create { qid, iounit } | Lopen { qid, iounit }
            | Lcreate { qid, iounit } => {
                w.qid(qid);
                w.u32(*iounit);
            }
            Read { data } | Readdir { data } => w.data(data),
            Write { count } => w.u32(*count),
            Stat { stat } => put_nstat(w, stat, u),
            Statfs(s) => {
                w.u32(s.ty);
                w.u32(s.bsize);
                for v in [s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.fsid] {
                    w.u64(v);
                }
                w.u32(s.namelen);
            }
            Readlink { target } => w.string(target),
            Getattr(a) => a.encode(w),
            Xattrwalk { size } => w.u64(*size),
            Lock { status } => w.u8(*status),
            Getlock(l) => put_flock(w, l, false),
            Flush | Clunk | Remove | Wstat | Rename | Setattr | Xattrcreate | Fsync | Link
            | Renameat | Unlinkat => {}
        })
    }

    pub fn decode(type_byte: u8, body: &[u8], d: Dialect) -> Result<Rmsg, DecodeError> {
        let u = d.dotu_fields();
        let r = &mut Reader::new(body);
        let m = match type_byte.wrapping_sub(1) {
            _ if type_byte == ty::RERROR => Rmsg::Error {
                ename: r.string()?,
                errno: if d == Dialect::P2000U && r.remaining() >= 4 { r.u32()? } else { 0 },
            },
            _ if type_byte == ty::RLERROR => Rmsg::Lerror { ecode: r.u32()? },
            ty::TVERSION => Rmsg::Version { msize: r.u32()?, version: r.string()? },
            ty::TAUTH => Rmsg::Auth { aqid: r.qid()? },
            ty::TATTACH => Rmsg::Attach { qid: r.qid()? },
            ty::TFLUSH => Rmsg::Flush,
            ty::TWALK => {
                let n = r.u16()?;
                if n as usize > MAXWELEM {
                    return Err(DecodeError::TooManyWalkNames(n));
                }
                Rmsg::Walk { wqids: (0..n).map(|_| r.qid()).collect::<Result<_, _>>()? }
            }
            ty::TOPEN => Rmsg::Open { qid: r.qid()?, iounit: r.u32()? },
            ty::TCREATE => Rmsg::Create { qid: r.qid()?, iounit: r.u32()? },
            ty::TREAD => Rmsg::Read { data: r.data()? },
            ty::TWRITE => Rmsg::Write { count: r.u32()? },
            ty::TCLUNK => Rmsg::Clunk,
            ty::TREMOVE => Rmsg::Remove,
            ty::TSTAT => Rmsg::Stat { stat: nstat(r, u)? },
            ty::TWSTAT => Rmsg::Wstat,
            ty::TSTATFS => Rmsg::Statfs(Statfs {
                ty: r.u32()?,
                bsize: r.u32()?,
                blocks: r.u64()?,
                bfree: r.u64()?,
                bavail: r.u64()?,
                files: r.u64()?,
                ffree: r.u64()?,
                fsid: r.u64()?,
                namelen: r.u32()?,
            }),
            ty::TLOPEN => Rmsg::Lopen { qid: r.qid()?, iounit: r.u32()? },
            ty::TLCREATE => Rmsg::Lcreate { qid: r.qid()?, iounit: r.u32()? },
            ty::TSYMLINK => Rmsg::Symlink { qid: r.qid()? },
            ty::TMKNOD => Rmsg::Mknod { qid: r.qid()? },
            ty::TRENAME => Rmsg::Rename,
            ty::TREADLINK => Rmsg::Readlink { target: r.string()? },
            ty::TGETATTR => Rmsg::Getattr(Attr::decode(r)?),
            ty::TSETATTR => Rmsg::Setattr,
            ty::TXATTRWALK => Rmsg::Xattrwalk { size: r.u64()? },
            ty::TXATTRCREATE => Rmsg::Xattrcreate,
            ty::TREADDIR => Rmsg::Readdir { data: r.data()? },
            ty::TFSYNC => Rmsg::Fsync,
            ty::TLOCK => Rmsg::Lock { status: r.u8()? },
            ty::TGETLOCK => Rmsg::Getlock(flock(r, false)?),
            ty::TLINK => Rmsg::Link,
            ty::TMKDIR => Rmsg::Mkdir { qid: r.qid()? },
            ty::TRENAMEAT => Rmsg::Renameat,
            ty::TUNLINKAT => Rmsg::Unlinkat,
            _ => return Err(DecodeError::UnknownType(type_byte)),
        };
        if m.is_dotl() && d != Dialect::P2000L && type_byte != ty::RERROR {
            return Err(DecodeError::UnknownType(type_byte));
        }
        Ok(m)
    }
}
