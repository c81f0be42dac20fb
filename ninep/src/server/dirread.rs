//! Slicing a directory listing into reads: whole stat entries at
//! byte offsets for 9P2000/.u, opaque cookies for 9P2000.L's Treaddir.

use crate::dotl::Dirent;
use crate::error::{errno, reason, Error, Result};
use crate::qid::QTDIR;
use crate::server::fids::DirSnapshot;
use crate::wire::Writer;

const DT_DIR: u8 = 4;
const DT_REG: u8 = 8;

/// A 9P2000 directory read. `offset` must be 0 (which the caller answers
/// by taking a fresh snapshot) or the previous offset + previous count.
/// Only whole entries are returned; 0 bytes when the next does not fit.
pub(crate) fn read_stats(snap: &mut DirSnapshot, offset: u64, count: u32, dotu: bool) -> Result<Vec<u8>> {
    if offset != snap.next_offset {
        return Err(Error::new(errno::EINVAL, reason::BAD_OFFSET));
    }
    let mut out = Vec::new();
    while let Some(stat) = snap.entries.get(snap.next_index) {
        let bytes = stat.to_bytes(dotu);
        if out.len() + bytes.len() > count as usize {
            break;
        }
        out.extend_from_slice(&bytes);
        snap.next_index += 1;
    }
    snap.next_offset += out.len() as u64;
    Ok(out)
}

/// A 9P2000.L Treaddir: the cookie of an entry is its index + 1, so
/// `offset` is where to continue; an empty reply marks the end.
pub(crate) fn read_dirents(snap: &DirSnapshot, offset: u64, count: u32) -> Vec<u8> {
    let mut w = Writer::default();
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    for (i, stat) in snap.entries.iter().enumerate().skip(start) {
        let ty = if stat.qid.ty & QTDIR != 0 { DT_DIR } else { DT_REG };
        let d = Dirent { qid: stat.qid, offset: i as u64 + 1, ty, name: stat.name.clone() };
        if w.buf.len() + d.encoded_len() > count as usize {
            break;
        }
        d.encode(&mut w);
    }
    w.buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qid::Qid;
    use crate::stat::Stat;

    fn snap(names: &[&str]) -> DirSnapshot {
        let entries = names
            .iter()
            .enumerate()
            .map(|(i, n)| Stat { name: n.to_string(), qid: Qid::file(i as u64), ..Stat::default() })
            .collect();
        DirSnapshot { entries, next_index: 0, next_offset: 0 }
    }

    #[test]
    fn whole_entries_and_offsets() {
        let mut s = snap(&["a", "b", "c"]);
        let one = s.entries[0].to_bytes(false).len() as u32;
        let first = read_stats(&mut s, 0, one * 2 + 1, false).unwrap();
        assert_eq!(first.len() as u32, one * 2);
        // An offset that is not previous offset + previous count is refused.
        assert_eq!(read_stats(&mut s, 5, 1000, false).unwrap_err().reason, reason::BAD_OFFSET);
        // A count too small for the next entry gives 0 bytes, not half an entry.
        assert!(read_stats(&mut s, one as u64 * 2, one - 1, false).unwrap().is_empty());
        let rest = read_stats(&mut s, one as u64 * 2, 1000, false).unwrap();
        assert_eq!(rest.len() as u32, one);
        assert!(read_stats(&mut s, one as u64 * 3, 1000, false).unwrap().is_empty());
    }

    #[test]
    fn cookies_continue_and_end_empty() {
        let s = snap(&["a", "b", "c"]);
        let all = Dirent::parse_all(&read_dirents(&s, 0, 4096)).unwrap();
        assert_eq!(all.iter().map(|d| d.offset).collect::<Vec<_>>(), vec![1, 2, 3]);
        let tail = Dirent::parse_all(&read_dirents(&s, 2, 4096)).unwrap();
        assert_eq!(tail.len(), 1);
        assert_eq!(tail[0].name, "c");
        assert!(read_dirents(&s, 3, 4096).is_empty());
        assert!(read_dirents(&s, 0, 10).is_empty());
    }
}
