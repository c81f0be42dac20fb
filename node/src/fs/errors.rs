//! How refusals reach 9P: each failure of the write path or of a command
//! becomes one errno class (DESIGN.md, "Errors") with a one-line reason.

use ninep::error::errno;
use ninep::Error;

use crate::command::Response;
use crate::write::WriteError;
use crate::state::KvError;

pub fn from_write(e: WriteError) -> Error {
    let code = match e {
        WriteError::NoQuorum | WriteError::ShuttingDown => errno::EAGAIN,
        WriteError::Timeout => errno::ETIMEDOUT,
    };
    Error::new(code, e.to_string())
}

pub fn from_store(e: KvError) -> Error {
    Error::new(errno::EIO, e.to_string())
}

pub fn invalid(reason: String) -> Error {
    Error::new(errno::EINVAL, reason)
}

pub fn no_job(name: &str) -> Error {
    Error::new(errno::ENOENT, format!("no job {name}"))
}

/// A command's answer as success or the refusal it stands for.
pub fn check(resp: Response, name: &str) -> Result<Response, Error> {
    match resp {
        Response::AlreadyExists => Err(Error::new(errno::EEXIST, format!("job {name} exists"))),
        Response::NoSuchJob => Err(no_job(name)),
        Response::Rejected { reason } => Err(invalid(reason)),
        r => Ok(r),
    }
}

pub fn read_only(what: &str) -> Error {
    Error::new(errno::EROFS, format!("{what} is read-only"))
}

pub fn not_permitted(what: String) -> Error {
    Error::new(errno::EPERM, what)
}
