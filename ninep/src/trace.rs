//! One line of text per message, for the debug trace (what the seed's
//! `-debug` flag printed): `Twalk tag 3 fid 1 newfid 2 ["jobs" "x"]`.

use std::fmt;

use crate::fcall::{Rmsg, Tmsg};

/// A message with its tag, displayed as one trace line.
pub struct Traced<'a, M>(pub u16, pub &'a M);

fn data_preview(d: &[u8]) -> String {
    let n = d.len().min(32);
    let mut s = format!("{:?}", String::from_utf8_lossy(&d[..n]));
    if d.len() > n {
        s.push_str("...");
    }
    s
}

impl fmt::Display for Traced<'_, Tmsg> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Tmsg::*;
        let tag = self.0;
        match self.1 {
            Version { msize, version } => write!(f, "Tversion tag {tag} msize {msize} version {version:?}"),
            Auth { afid, uname, aname, .. } => write!(f, "Tauth tag {tag} afid {afid} uname {uname:?} aname {aname:?}"),
            Attach { fid, afid, uname, aname, n_uname } => write!(
                f,
                "Tattach tag {tag} fid {fid} afid {afid:#x} uname {uname:?} aname {aname:?} n_uname {n_uname:#x}"
            ),
            Flush { oldtag } => write!(f, "Tflush tag {tag} oldtag {oldtag}"),
            Walk { fid, newfid, wnames } => write!(f, "Twalk tag {tag} fid {fid} newfid {newfid} {wnames:?}"),
            Open { fid, mode } => write!(f, "Topen tag {tag} fid {fid} mode {mode:#x}"),
            Create { fid, name, perm, mode, .. } => {
                write!(f, "Tcreate tag {tag} fid {fid} name {name:?} perm {perm:#o} mode {mode:#x}")
            }
            Read { fid, offset, count } => write!(f, "Tread tag {tag} fid {fid} offset {offset} count {count}"),
            Write { fid, offset, data } => write!(
                f,
                "Twrite tag {tag} fid {fid} offset {offset} count {} {}",
                data.len(),
                data_preview(data)
            ),
            Clunk { fid } => write!(f, "Tclunk tag {tag} fid {fid}"),
            Remove { fid } => write!(f, "Tremove tag {tag} fid {fid}"),
            Stat { fid } => write!(f, "Tstat tag {tag} fid {fid}"),
            Wstat { fid, stat } => write!(f, "Twstat tag {tag} fid {fid} {stat:?}"),
            Statfs { fid } => write!(f, "Tstatfs tag {tag} fid {fid}"),
            Lopen { fid, flags } => write!(f, "Tlopen tag {tag} fid {fid} flags {flags:#o}"),
            Lcreate { fid, name, flags, mode, gid } => write!(
                f,
                "Tlcreate tag {tag} fid {fid} name {name:?} flags {flags:#o} mode {mode:#o} gid {gid}"
            ),
            Readdir { fid, offset, count } => {
                write!(f, "Treaddir tag {tag} fid {fid} offset {offset} count {count}")
            }
            Getattr { fid, mask } => write!(f, "Tgetattr tag {tag} fid {fid} mask {mask:#x}"),
            Setattr { fid, attr } => write!(f, "Tsetattr tag {tag} fid {fid} {attr:?}"),
            Mkdir { dfid, name, mode, gid } => {
                write!(f, "Tmkdir tag {tag} dfid {dfid} name {name:?} mode {mode:#o} gid {gid}")
            }
            Unlinkat { dirfid, name, flags } => {
                write!(f, "Tunlinkat tag {tag} dirfid {dirfid} name {name:?} flags {flags:#x}")
            }
            other => write!(f, "T{other:?} tag {tag}"),
        }
    }
}

impl fmt::Display for Traced<'_, Rmsg> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Rmsg::*;
        let tag = self.0;
        match self.1 {
            Version { msize, version } => write!(f, "Rversion tag {tag} msize {msize} version {version:?}"),
            Attach { qid } => write!(f, "Rattach tag {tag} qid {qid}"),
            Error { ename, errno } => write!(f, "Rerror tag {tag} ename {ename:?} errno {errno}"),
            Lerror { ecode } => write!(f, "Rlerror tag {tag} ecode {ecode}"),
            Walk { wqids } => {
                write!(f, "Rwalk tag {tag} nwqid {}", wqids.len())?;
                wqids.iter().try_for_each(|q| write!(f, " {q}"))
            }
            Open { qid, iounit } => write!(f, "Ropen tag {tag} qid {qid} iounit {iounit}"),
            Lopen { qid, iounit } => write!(f, "Rlopen tag {tag} qid {qid} iounit {iounit}"),
            Create { qid, iounit } => write!(f, "Rcreate tag {tag} qid {qid} iounit {iounit}"),
            Lcreate { qid, iounit } => write!(f, "Rlcreate tag {tag} qid {qid} iounit {iounit}"),
            Read { data } => write!(f, "Rread tag {tag} count {} {}", data.len(), data_preview(data)),
            Readdir { data } => write!(f, "Rreaddir tag {tag} count {}", data.len()),
            Write { count } => write!(f, "Rwrite tag {tag} count {count}"),
            Stat { stat } => write!(f, "Rstat tag {tag} {stat:?}"),
            Getattr(a) => write!(f, "Rgetattr tag {tag} qid {} mode {:#o} size {}", a.qid, a.mode, a.size),
            other => write!(f, "R{other:?} tag {tag}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_message() {
        let walk = Tmsg::Walk { fid: 1, newfid: 2, wnames: vec!["jobs".into(), "x".into()] };
        assert_eq!(Traced(3, &walk).to_string(), r#"Twalk tag 3 fid 1 newfid 2 ["jobs", "x"]"#);
        let err = Rmsg::Error { ename: "file does not exist".into(), errno: 2 };
        assert_eq!(Traced(3, &err).to_string(), r#"Rerror tag 3 ename "file does not exist" errno 2"#);
        let read = Rmsg::Read { data: b"line\nnext".to_vec() };
        assert_eq!(Traced(4, &read).to_string(), r#"Rread tag 4 count 9 "line\nnext""#);
    }
}
