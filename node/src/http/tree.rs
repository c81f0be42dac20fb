//! What an HTTP request does to the tree, as a 9P client would do it:
//! attach, walk one name at a time, open, read or write, clunk. Through
//! the `Filesystem` trait, the same callbacks the 9P server calls, so an
//! HTTP client meets every rule, limit and error a 9P client meets.

use ninep::error::errno;
use ninep::{Error, Filesystem, OpenMode, Result};

/// How much one read asks for (a 9P client's msize, less its header).
const READ_CHUNK: u32 = 64 << 10;
/// Most bytes one GET returns; a longer file is read on with `?offset=`.
pub const MAX_READ: usize = 16 << 20;

/// The names of a URL path, checked: no empty name but a trailing slash,
/// no `.` or `..` (a path never leaves the tree), at most 255 bytes each.
pub fn names(path: &str) -> Result<Vec<String>> {
    let mut out = vec![];
    for raw in path.trim_start_matches('/').split('/') {
        if raw.is_empty() {
            continue;
        }
        let name = percent_decode(raw)
            .ok_or_else(|| Error::new(errno::EINVAL, format!("bad percent-encoding in {raw:?}")))?;
        if name == "." || name == ".." || name.contains('/') || name.contains('\0') {
            return Err(Error::new(
                errno::EINVAL,
                format!("a path may not contain {name:?}"),
            ));
        }
        if name.len() > 255 {
            return Err(Error::new(
                errno::ENAMETOOLONG,
                "a name in the path is longer than 255 bytes",
            ));
        }
        out.push(name);
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A fid walked to a path. A clunk is async, so it is not a `Drop`:
/// every request that walks ends in `done` (one whose client went away
/// mid-request is dropped without it; jobd's tree keeps nothing per fid
/// beyond the fid itself, so nothing is left behind).
pub struct Walked<F: Filesystem> {
    pub fid: F::Fid,
    pub is_dir: bool,
    /// The qid's path: a job's files have a new one when the job is
    /// deleted and created again under the same name.
    pub qid_path: u64,
}

/// Walks from the root to `names`, clunking each fid it leaves behind.
pub async fn walk<F: Filesystem>(fs: &F, names: &[String]) -> Result<Walked<F>> {
    let (mut fid, mut qid) = fs.attach("http", "").await?;
    for name in names {
        if !qid.is_dir() {
            fs.clunk(&fid).await;
            return Err(Error::new(
                errno::ENOTDIR,
                format!("{name:?} is below a file"),
            ));
        }
        let next = fs.walk(&fid, name).await;
        fs.clunk(&fid).await;
        (fid, qid) = next?;
    }
    Ok(Walked {
        fid,
        is_dir: qid.is_dir(),
        qid_path: qid.path,
    })
}

pub async fn done<F: Filesystem>(fs: &F, w: Walked<F>) {
    fs.clunk(&w.fid).await;
}

/// Reads a walked file from `offset` to its end, or `MAX_READ` bytes;
/// answers them and the logical offset after them (where the next read
/// goes on from: further than `offset` plus their length when the file
/// served a read from further on, as a trimmed log does).
pub async fn read_file<F: Filesystem>(
    fs: &F,
    w: &Walked<F>,
    offset: u64,
) -> Result<(Vec<u8>, u64)> {
    read_upto(fs, w, offset, MAX_READ).await
}

/// `read_file`, at most `max` bytes (and never more than `MAX_READ`).
pub async fn read_upto<F: Filesystem>(
    fs: &F,
    w: &Walked<F>,
    offset: u64,
    max: usize,
) -> Result<(Vec<u8>, u64)> {
    let max = max.min(MAX_READ);
    fs.open(&w.fid, OpenMode::READ).await?;
    let mut out = Vec::new();
    let mut at = offset;
    while out.len() < max {
        let mut chunk = fs.read(&w.fid, at, READ_CHUNK).await?;
        if chunk.is_empty() {
            break;
        }
        // As the 9P library does: never more than was asked for.
        chunk.truncate((READ_CHUNK as usize).min(max - out.len()));
        at += chunk.len() as u64;
        out.extend_from_slice(&chunk);
    }
    Ok((out, fs.logical_offset(&w.fid, at)))
}

/// The last `n` bytes of a walked file (at most `MAX_READ`), with
/// `whole_lines` from the start of a line (a partial first line is left
/// out, unless it is the only one), and the logical offset after them.
/// A log, which knows its end, is read from just before its last `n`
/// bytes (one byte more says whether they begin a line); any other file
/// (generated, small, stat as length 0) is read through.
pub async fn read_tail<F: Filesystem>(
    fs: &F,
    w: &Walked<F>,
    n: usize,
    whole_lines: bool,
) -> Result<(Vec<u8>, u64)> {
    let n = n.min(MAX_READ);
    fs.open(&w.fid, OpenMode::READ).await?;
    let mut kept: Vec<u8> = Vec::new();
    // Whether `kept` begins at a line: at the file's start, at a trimmed
    // log's oldest kept line, or (once cut) just after a newline.
    let mut at_line = true;
    let end = fs.logical_end(&w.fid);
    let mut at = end.map_or(0, |end| end.saturating_sub(n as u64 + 1));
    loop {
        let mut chunk = fs.read(&w.fid, at, READ_CHUNK).await?;
        if chunk.is_empty() {
            break;
        }
        chunk.truncate(READ_CHUNK as usize);
        at += chunk.len() as u64;
        kept.extend_from_slice(&chunk);
        if kept.len() > 2 * n {
            let cut = kept.len() - n;
            at_line = kept[cut - 1] == b'\n';
            kept.drain(..cut);
        }
    }
    if kept.len() > n {
        let cut = kept.len() - n;
        at_line = kept[cut - 1] == b'\n';
        kept.drain(..cut);
    }
    if whole_lines && !at_line {
        if let Some(nl) = kept
            .iter()
            .position(|b| *b == b'\n')
            .filter(|nl| nl + 1 < kept.len())
        {
            kept.drain(..=nl);
        }
    }
    Ok((kept, fs.logical_offset(&w.fid, at)))
}

/// Writes `body` to a walked file at offset 0, as one write (files like
/// `clone` and `cmd` take whole writes only); for `clone`, answers what a
/// read on the same fid then gives (the new job's name).
pub async fn write_file<F: Filesystem>(
    fs: &F,
    w: &Walked<F>,
    body: &[u8],
    read_back: bool,
) -> Result<Vec<u8>> {
    if w.is_dir {
        return Err(Error::new(
            errno::EISDIR,
            "is a directory; write to a file in it",
        ));
    }
    let mode = OpenMode {
        read: read_back,
        write: true,
        truncate: false,
        remove_on_close: false,
    };
    fs.open(&w.fid, mode).await?;
    let n = fs.write(&w.fid, 0, body).await?;
    if n as usize != body.len() {
        return Err(Error::new(
            errno::EIO,
            format!("wrote {n} of {} bytes", body.len()),
        ));
    }
    if !read_back {
        return Ok(vec![]);
    }
    fs.read(&w.fid, 0, READ_CHUNK).await
}

/// A directory's entries: name, and whether each is a directory.
pub async fn list<F: Filesystem>(fs: &F, w: &Walked<F>) -> Result<Vec<(String, bool)>> {
    fs.open(&w.fid, OpenMode::READ).await?;
    let stats = fs.readdir(&w.fid).await?;
    Ok(stats
        .into_iter()
        .map(|s| (s.name.clone(), s.qid.is_dir()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_split_decoded_and_kept_inside_the_tree() {
        assert_eq!(names("/jobs/a%20b/ctl").unwrap(), ["jobs", "a b", "ctl"]);
        assert_eq!(names("/jobs/").unwrap(), ["jobs"]);
        assert!(names("/").unwrap().is_empty());
        for bad in [
            "/jobs/../ctl",
            "/jobs/%2e%2e/ctl",
            "/./ctl",
            "/jobs/a%2Fb",
            "/jobs/%zz",
            "/jobs/%00",
        ] {
            assert_eq!(names(bad).unwrap_err().errno, errno::EINVAL, "{bad}");
        }
    }
}
