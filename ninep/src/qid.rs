//! Qids: the server's unique identity of a file (type, version, path).

/// `QTDIR`: the file is a directory.
pub const QTDIR: u8 = 0x80;
/// `QTAPPEND`: append-only file.
pub const QTAPPEND: u8 = 0x40;
/// `QTEXCL`: exclusive-use file.
pub const QTEXCL: u8 = 0x20;
/// `QTAUTH`: authentication file.
pub const QTAUTH: u8 = 0x08;
/// `QTFILE`: plain file.
pub const QTFILE: u8 = 0x00;

/// A qid as it travels on the wire (13 bytes).
///
/// Files whose content is generated on each read should carry `version` 0:
/// the Linux client then bypasses its page cache for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Qid {
    pub ty: u8,
    pub version: u32,
    pub path: u64,
}

impl Qid {
    pub fn dir(path: u64) -> Qid {
        Qid { ty: QTDIR, version: 0, path }
    }
    pub fn file(path: u64) -> Qid {
        Qid { ty: QTFILE, version: 0, path }
    }
    pub fn is_dir(&self) -> bool {
        self.ty & QTDIR != 0
    }
}

impl std::fmt::Display for Qid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({:x} {} {})", self.path, self.version, if self.is_dir() { "d" } else { "" })
    }
}
