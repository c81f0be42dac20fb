//! `--run-as USER`: job processes drop to that user and its primary group
//! (supplementary groups are cleared), so a job cannot do what jobd's own
//! user (often root) can. The user is resolved once, at start.

use std::ffi::{CStr, CString};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The user's home directory, for `HOME`.
    pub home: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RunAsError {
    #[error("--run-as: no user named {0:?}")]
    NoSuchUser(String),
    #[error("--run-as {user}: jobd runs as uid {me}, and only root can run jobs as another user")]
    NotRoot { user: String, me: u32 },
    #[error("--run-as: handing the jobs' directory {dir} to {user}: {source}")]
    Chown { dir: String, user: String, source: std::io::Error },
}

impl RunAs {
    /// Looks `name` up in the user database.
    pub fn lookup(name: &str) -> Result<RunAs, RunAsError> {
        let missing = || RunAsError::NoSuchUser(name.to_string());
        let cname = CString::new(name).map_err(|_| missing())?;
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut buf = vec![0 as libc::c_char; 16 << 10];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; on success the
        // strings in `pw` point into `buf`, which outlives their use here.
        let rc = unsafe { libc::getpwnam_r(cname.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut found) };
        if rc != 0 || found.is_null() {
            return Err(missing());
        }
        // SAFETY: pw_dir is a NUL-terminated string inside `buf`.
        let home = unsafe { CStr::from_ptr(pw.pw_dir) }.to_string_lossy().into_owned();
        let me = unsafe { libc::geteuid() };
        if me != 0 && me != pw.pw_uid {
            return Err(RunAsError::NotRoot { user: name.to_string(), me });
        }
        Ok(RunAs { name: name.to_string(), uid: pw.pw_uid, gid: pw.pw_gid, home })
    }

    /// Gives the jobs' working directory to the user, so its jobs can
    /// write there.
    pub fn own(&self, dir: &Path) -> Result<(), RunAsError> {
        std::os::unix::fs::chown(dir, Some(self.uid), Some(self.gid)).map_err(|source| RunAsError::Chown {
            dir: dir.display().to_string(),
            user: self.name.clone(),
            source,
        })
    }

    /// In the child, between fork and exec: groups, then group, then user
    /// (after setuid there is no permission left to change the others).
    /// Runs after the chdir into the working directory, which may sit
    /// below a directory only root can enter.
    pub fn drop_privileges(&self) -> std::io::Result<()> {
        // SAFETY: async-signal-safe system calls with no pointers but a
        // null, empty group list.
        unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(self.gid) != 0
                || libc::setuid(self.uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_users_are_refused() {
        let e = RunAs::lookup("no-such-user-here").unwrap_err().to_string();
        assert_eq!(e, "--run-as: no user named \"no-such-user-here\"");
        assert!(RunAs::lookup("bad\0name").is_err());
    }

    #[test]
    fn root_is_found_by_root_and_refused_to_others() {
        match RunAs::lookup("root") {
            Ok(r) => assert_eq!((r.uid, r.gid, r.home.as_str(), unsafe { libc::geteuid() }), (0, 0, "/root", 0)),
            Err(e) => assert!(matches!(e, RunAsError::NotRoot { .. }), "{e}"),
        }
    }
}
