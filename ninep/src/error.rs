//! The one error type a file system returns and the wire carries: a one-line
//! reason and a Linux errno. 9P2000 sends the reason, 9P2000.u the reason and
//! the errno, 9P2000.L only the errno (the caller should log the reason).
//!
//! Errors the library itself raises use the strings of Plan 9's lib9p and the
//! Linux kernel's error table (`net/9p/error.c`), so a legacy (9P2000) client
//! that maps strings back to errnos understands them.

use std::borrow::Cow;

/// Linux errno values used on the wire.
pub mod errno {
    pub const EPERM: u32 = 1;
    pub const ENOENT: u32 = 2;
    pub const EIO: u32 = 5;
    pub const EBADF: u32 = 9;
    pub const EAGAIN: u32 = 11;
    pub const ENOMEM: u32 = 12;
    pub const EACCES: u32 = 13;
    pub const EBUSY: u32 = 16;
    pub const EEXIST: u32 = 17;
    pub const EXDEV: u32 = 18;
    pub const ENOTDIR: u32 = 20;
    pub const EISDIR: u32 = 21;
    pub const EINVAL: u32 = 22;
    pub const EMFILE: u32 = 24;
    pub const EFBIG: u32 = 27;
    pub const ENOSPC: u32 = 28;
    pub const EROFS: u32 = 30;
    pub const ENAMETOOLONG: u32 = 36;
    pub const ENOSYS: u32 = 38;
    pub const ENOTEMPTY: u32 = 39;
    pub const ENODATA: u32 = 61;
    pub const EPROTO: u32 = 71;
    pub const EBADMSG: u32 = 74;
    pub const EMSGSIZE: u32 = 90;
    pub const EOPNOTSUPP: u32 = 95;
    pub const ECONNREFUSED: u32 = 111;
    pub const ETIMEDOUT: u32 = 110;
}

/// Reasons the library raises itself (lib9p's and the Linux table's words).
pub mod reason {
    pub const UNKNOWN_FID: &str = "unknown fid";
    pub const DUPLICATE_FID: &str = "duplicate fid";
    pub const DUPLICATE_TAG: &str = "duplicate tag";
    pub const NOT_FOUND: &str = "file does not exist";
    pub const WALK_NO_DIR: &str = "walk in non-directory";
    pub const CREATE_NON_DIR: &str = "create in non-directory";
    pub const IS_DIR: &str = "is a directory";
    pub const NOT_DIR: &str = "not a directory";
    pub const FID_OPEN: &str = "fid is already open";
    pub const NOT_OPEN_READ: &str = "fid not open for reading";
    pub const NOT_OPEN_WRITE: &str = "fid not open for writing";
    pub const BAD_OFFSET: &str = "bad offset";
    pub const BAD_NAME: &str = "bad file name";
    pub const NO_AUTH: &str = "authentication not required";
    pub const NOT_SUPPORTED: &str = "operation not supported";
    pub const NO_VERSION: &str = "version not negotiated";
    pub const TOO_MANY_FIDS: &str = "too many fids on this connection";
    pub const TOO_MANY_REQUESTS: &str = "too many outstanding requests on this connection";
    pub const TOO_MANY_CONNECTIONS: &str = "too many connections; try again later";
    pub const PERMISSION: &str = "permission denied";
    /// A file-system callback panicked; the server logs where.
    pub const INTERNAL: &str = "internal error (the server logged it)";
}

/// An error as 9P carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub errno: u32,
    pub reason: Cow<'static, str>,
}

impl Error {
    pub fn new(errno: u32, reason: impl Into<Cow<'static, str>>) -> Self {
        Error { errno, reason: reason.into() }
    }

    /// An error known only by its errno (what an Rlerror carries): the
    /// reason is the usual C library text for it.
    pub fn from_errno(errno: u32) -> Self {
        Error { errno, reason: Cow::Borrowed(strerror(errno)) }
    }

    pub fn not_found() -> Self {
        Error::new(errno::ENOENT, reason::NOT_FOUND)
    }
    pub fn invalid(reason: impl Into<Cow<'static, str>>) -> Self {
        Error::new(errno::EINVAL, reason)
    }
    pub fn not_supported() -> Self {
        Error::new(errno::EOPNOTSUPP, reason::NOT_SUPPORTED)
    }
    pub fn permission() -> Self {
        Error::new(errno::EPERM, reason::PERMISSION)
    }
    pub(crate) fn unknown_fid() -> Self {
        Error::new(errno::EBADF, reason::UNKNOWN_FID)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Error {}

/// The glibc wording for the errnos 9P servers send.
pub fn strerror(e: u32) -> &'static str {
    match e {
        errno::EPERM => "Operation not permitted",
        errno::ENOENT => "No such file or directory",
        errno::EIO => "Input/output error",
        errno::EBADF => "Bad file descriptor",
        errno::EAGAIN => "Resource temporarily unavailable",
        errno::ENOMEM => "Cannot allocate memory",
        errno::EACCES => "Permission denied",
        errno::EBUSY => "Device or resource busy",
        errno::EEXIST => "File exists",
        errno::EXDEV => "Invalid cross-device link",
        errno::ENOTDIR => "Not a directory",
        errno::EISDIR => "Is a directory",
        errno::EINVAL => "Invalid argument",
        errno::EMFILE => "Too many open files",
        errno::EFBIG => "File too large",
        errno::ENOSPC => "No space left on device",
        errno::EROFS => "Read-only file system",
        errno::ENAMETOOLONG => "File name too long",
        errno::ENOSYS => "Function not implemented",
        errno::ENOTEMPTY => "Directory not empty",
        errno::ENODATA => "No data available",
        errno::EPROTO => "Protocol error",
        errno::EBADMSG => "Bad message",
        errno::EMSGSIZE => "Message too long",
        errno::EOPNOTSUPP => "Operation not supported",
        errno::ETIMEDOUT => "Connection timed out",
        errno::ECONNREFUSED => "Connection refused",
        _ => "Unknown error",
    }
}

/// The errno a 9P2000 reason stands for, as a legacy client must guess it
/// (the Linux client keeps a table like this one in `net/9p/error.c`).
/// Unknown reasons are EIO.
pub fn errno_for_reason(reason: &str) -> u32 {
    let r = reason.to_ascii_lowercase();
    let table: &[(&str, u32)] = &[
        ("does not exist", errno::ENOENT),
        ("no such file", errno::ENOENT),
        ("not found", errno::ENOENT),
        ("exists", errno::EEXIST),
        ("permission denied", errno::EPERM),
        ("not permitted", errno::EPERM),
        ("read-only", errno::EROFS),
        ("is a directory", errno::EISDIR),
        ("not a directory", errno::ENOTDIR),
        ("non-directory", errno::ENOTDIR),
        ("not empty", errno::ENOTEMPTY),
        ("unknown fid", errno::EBADF),
        ("not open", errno::EBADF),
        ("try again", errno::EAGAIN),
        ("temporarily unavailable", errno::EAGAIN),
        ("timed out", errno::ETIMEDOUT),
        ("not supported", errno::EOPNOTSUPP),
        ("bad offset", errno::EINVAL),
        ("invalid", errno::EINVAL),
    ];
    table.iter().find(|(needle, _)| r.contains(needle)).map_or(errno::EIO, |(_, e)| *e)
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
