//! The `stat` structure of 9P2000 and its 9P2000.u extension, and the
//! "don't touch" reading of a Twstat.

use crate::qid::Qid;
use crate::wire::{DecodeError, Reader, Writer};

/// Directory bit of `Stat::mode` (and of a Tcreate `perm`).
pub const DMDIR: u32 = 0x8000_0000;
pub const DMAPPEND: u32 = 0x4000_0000;
pub const DMEXCL: u32 = 0x2000_0000;
pub const DMAUTH: u32 = 0x0800_0000;

/// One file's metadata, the object model behind Rstat, 9P2000 directory
/// reads and (converted) 9P2000.L's Rgetattr and Rreaddir.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stat {
    pub ty: u16,
    pub dev: u32,
    pub qid: Qid,
    pub mode: u32,
    pub atime: u32,
    pub mtime: u32,
    pub length: u64,
    pub name: String,
    pub uid: String,
    pub gid: String,
    pub muid: String,
    /// 9P2000.u only.
    pub extension: String,
    pub n_uid: u32,
    pub n_gid: u32,
    pub n_muid: u32,
}

impl Stat {
    /// Encodes with its own `size[2]` prefix, as it appears in directory reads.
    pub fn encode(&self, w: &mut Writer, dotu: bool) {
        let start = w.buf.len();
        w.u16(0); // size, patched below
        w.u16(self.ty);
        w.u32(self.dev);
        w.qid(&self.qid);
        w.u32(self.mode);
        w.u32(self.atime);
        w.u32(self.mtime);
        w.u64(self.length);
        w.string(&self.name);
        w.string(&self.uid);
        w.string(&self.gid);
        w.string(&self.muid);
        if dotu {
            w.string(&self.extension);
            w.u32(self.n_uid);
            w.u32(self.n_gid);
            w.u32(self.n_muid);
        }
        let size = (w.buf.len() - start - 2) as u16;
        w.buf[start..start + 2].copy_from_slice(&size.to_le_bytes());
    }

    pub fn to_bytes(&self, dotu: bool) -> Vec<u8> {
        let mut w = Writer::default();
        self.encode(&mut w, dotu);
        w.buf
    }

    /// Decodes one stat including its `size[2]` prefix. Fields past those
    /// the size covers are not read, so a .u stat parsed as plain is fine.
    pub fn decode(r: &mut Reader<'_>, dotu: bool) -> Result<Stat, DecodeError> {
        let size = r.u16()? as usize;
        let mut r = Reader::new(r.bytes(size)?);
        let mut s = Stat {
            ty: r.u16()?,
            dev: r.u32()?,
            qid: r.qid()?,
            mode: r.u32()?,
            atime: r.u32()?,
            mtime: r.u32()?,
            length: r.u64()?,
            name: r.string()?,
            uid: r.string()?,
            gid: r.string()?,
            muid: r.string()?,
            ..Stat::default()
        };
        if dotu {
            s.extension = r.string()?;
            s.n_uid = r.u32()?;
            s.n_gid = r.u32()?;
            s.n_muid = r.u32()?;
        }
        Ok(s)
    }

    /// A stat whose every field says "don't touch" (what a Twstat that only
    /// syncs carries): integers all ones, strings empty.
    pub fn dont_touch() -> Stat {
        Stat {
            ty: u16::MAX,
            dev: u32::MAX,
            qid: Qid { ty: u8::MAX, version: u32::MAX, path: u64::MAX },
            mode: u32::MAX,
            atime: u32::MAX,
            mtime: u32::MAX,
            length: u64::MAX,
            n_uid: u32::MAX,
            n_gid: u32::MAX,
            n_muid: u32::MAX,
            ..Stat::default()
        }
    }
}

/// What a Twstat or Tsetattr asks to change; `None` means "don't touch".
/// All `None` is a sync request. The file system decides what each change
/// means (truncating a generated file, for instance, may be a no-op).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Wstat {
    pub mode: Option<u32>,
    pub atime: Option<u32>,
    pub mtime: Option<u32>,
    pub length: Option<u64>,
    pub name: Option<String>,
    pub uid: Option<String>,
    pub gid: Option<String>,
    pub n_uid: Option<u32>,
    pub n_gid: Option<u32>,
}

impl Wstat {
    /// Reads a Twstat's stat: integer fields of all ones and empty strings
    /// mean "don't touch" (plan9port's 9pfuse sends mode 0xFFFFFFFF). The
    /// numeric ids exist only in 9P2000.u (`dotu`); otherwise untouched.
    pub fn from_stat(s: &Stat, dotu: bool) -> Wstat {
        fn int<T: PartialEq + Copy>(v: T, none: T) -> Option<T> {
            (v != none).then_some(v)
        }
        fn text(v: &str) -> Option<String> {
            (!v.is_empty()).then(|| v.to_owned())
        }
        Wstat {
            mode: int(s.mode, u32::MAX),
            atime: int(s.atime, u32::MAX),
            mtime: int(s.mtime, u32::MAX),
            length: int(s.length, u64::MAX),
            name: text(&s.name),
            uid: text(&s.uid),
            gid: text(&s.gid),
            n_uid: int(s.n_uid, u32::MAX).filter(|_| dotu),
            n_gid: int(s.n_gid, u32::MAX).filter(|_| dotu),
        }
    }

    pub fn is_sync(&self) -> bool {
        *self == Wstat::default()
    }

    /// Only `length = 0` and/or times: what `echo > file` sends through a
    /// legacy or .u mount before writing.
    pub fn is_truncate(&self) -> bool {
        let rest = Wstat { length: None, atime: None, mtime: None, ..self.clone() };
        self.length == Some(0) && rest.is_sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_ones_is_sync() {
        assert!(Wstat::from_stat(&Stat::dont_touch(), true).is_sync());
        // 9P2000 has no numeric ids: their zero default is not a change.
        let plain = Stat { n_uid: 0, n_gid: 0, ..Stat::dont_touch() };
        assert!(Wstat::from_stat(&plain, false).is_sync());
    }

    #[test]
    fn truncate_with_mtime_is_truncate() {
        let s = Stat { length: 0, mtime: 1234, ..Stat::dont_touch() };
        let w = Wstat::from_stat(&s, true);
        assert!(w.is_truncate());
        assert_eq!(w.mtime, Some(1234));
        assert!(!w.is_sync());
    }
}
