//! Properties of the codec: every message survives encode → decode in every
//! dialect (minus the fields a dialect does not carry), and decoding any
//! bytes at all returns a value or an error, never a panic.

use ninep::codec::split_header;
use ninep::dotl::{Attr, Flock, SetAttr, Statfs};
use ninep::stat::Stat;
use ninep::{Dialect, Qid, Rmsg, Tmsg, NOFID};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._ é-]{0,12}"
}
fn qid() -> impl Strategy<Value = Qid> {
    (any::<u8>(), any::<u32>(), any::<u64>()).prop_map(|(ty, version, path)| Qid { ty, version, path })
}
fn stat() -> impl Strategy<Value = Stat> {
    (
        (any::<u16>(), any::<u32>(), qid(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u64>()),
        (name(), name(), name(), name(), name(), any::<u32>(), any::<u32>(), any::<u32>()),
    )
        .prop_map(|((ty, dev, qid, mode, atime, mtime, length), (name, uid, gid, muid, extension, n_uid, n_gid, n_muid))| Stat {
            ty, dev, qid, mode, atime, mtime, length, name, uid, gid, muid, extension, n_uid, n_gid, n_muid,
        })
}
fn flock() -> impl Strategy<Value = Flock> {
    (any::<u8>(), any::<u32>(), any::<u64>(), any::<u64>(), any::<u32>(), name())
        .prop_map(|(ty, flags, start, length, proc_id, client_id)| Flock { ty, flags, start, length, proc_id, client_id })
}
fn data() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..64)
}

fn tmsg() -> impl Strategy<Value = Tmsg> {
    let (u, s) = (any::<u32>, name);
    prop_oneof![
        (u(), s()).prop_map(|(msize, version)| Tmsg::Version { msize, version }),
        (u(), s(), s(), u()).prop_map(|(afid, uname, aname, n_uname)| Tmsg::Auth { afid, uname, aname, n_uname }),
        (u(), u(), s(), s(), u()).prop_map(|(fid, afid, uname, aname, n_uname)| Tmsg::Attach { fid, afid, uname, aname, n_uname }),
        any::<u16>().prop_map(|oldtag| Tmsg::Flush { oldtag }),
        (u(), u(), prop::collection::vec(s(), 0..=16)).prop_map(|(fid, newfid, wnames)| Tmsg::Walk { fid, newfid, wnames }),
        (u(), any::<u8>()).prop_map(|(fid, mode)| Tmsg::Open { fid, mode }),
        (u(), s(), u(), any::<u8>(), s()).prop_map(|(fid, name, perm, mode, extension)| Tmsg::Create { fid, name, perm, mode, extension }),
        (u(), any::<u64>(), u()).prop_map(|(fid, offset, count)| Tmsg::Read { fid, offset, count }),
        (u(), any::<u64>(), data()).prop_map(|(fid, offset, data)| Tmsg::Write { fid, offset, data }),
        u().prop_map(|fid| Tmsg::Clunk { fid }),
        u().prop_map(|fid| Tmsg::Remove { fid }),
        u().prop_map(|fid| Tmsg::Stat { fid }),
        (u(), stat()).prop_map(|(fid, stat)| Tmsg::Wstat { fid, stat }),
        u().prop_map(|fid| Tmsg::Statfs { fid }),
        (u(), u()).prop_map(|(fid, flags)| Tmsg::Lopen { fid, flags }),
        (u(), s(), u(), u(), u()).prop_map(|(fid, name, flags, mode, gid)| Tmsg::Lcreate { fid, name, flags, mode, gid }),
        (u(), s(), s(), u()).prop_map(|(fid, name, target, gid)| Tmsg::Symlink { fid, name, target, gid }),
        (u(), s(), u(), u(), u(), u()).prop_map(|(dfid, name, mode, major, minor, gid)| Tmsg::Mknod { dfid, name, mode, major, minor, gid }),
        (u(), u(), s()).prop_map(|(fid, dfid, name)| Tmsg::Rename { fid, dfid, name }),
        u().prop_map(|fid| Tmsg::Readlink { fid }),
        (u(), any::<u64>()).prop_map(|(fid, mask)| Tmsg::Getattr { fid, mask }),
        (u(), u(), u(), u(), u(), any::<[u64; 5]>()).prop_map(|(fid, valid, mode, uid, gid, t)| Tmsg::Setattr {
            fid,
            attr: SetAttr { valid, mode, uid, gid, size: t[0], atime_sec: t[1], atime_nsec: t[2], mtime_sec: t[3], mtime_nsec: t[4] }
        }),
        (u(), u(), s()).prop_map(|(fid, newfid, name)| Tmsg::Xattrwalk { fid, newfid, name }),
        (u(), s(), any::<u64>(), u()).prop_map(|(fid, name, size, flags)| Tmsg::Xattrcreate { fid, name, size, flags }),
        (u(), any::<u64>(), u()).prop_map(|(fid, offset, count)| Tmsg::Readdir { fid, offset, count }),
        (u(), u()).prop_map(|(fid, datasync)| Tmsg::Fsync { fid, datasync }),
        (u(), flock()).prop_map(|(fid, lock)| Tmsg::Lock { fid, lock }),
        (u(), flock()).prop_map(|(fid, lock)| Tmsg::Getlock { fid, lock }),
        (u(), u(), s()).prop_map(|(dfid, fid, name)| Tmsg::Link { dfid, fid, name }),
        (u(), s(), u(), u()).prop_map(|(dfid, name, mode, gid)| Tmsg::Mkdir { dfid, name, mode, gid }),
        (u(), s(), u(), s()).prop_map(|(olddirfid, oldname, newdirfid, newname)| Tmsg::Renameat { olddirfid, oldname, newdirfid, newname }),
        (u(), s(), u()).prop_map(|(dirfid, name, flags)| Tmsg::Unlinkat { dirfid, name, flags }),
    ]
}

fn rmsg() -> impl Strategy<Value = Rmsg> {
    let u = any::<u32>;
    prop_oneof![
        (u(), name()).prop_map(|(msize, version)| Rmsg::Version { msize, version }),
        qid().prop_map(|aqid| Rmsg::Auth { aqid }),
        qid().prop_map(|qid| Rmsg::Attach { qid }),
        (name(), u()).prop_map(|(ename, errno)| Rmsg::Error { ename, errno }),
        u().prop_map(|ecode| Rmsg::Lerror { ecode }),
        Just(Rmsg::Flush),
        prop::collection::vec(qid(), 0..=16).prop_map(|wqids| Rmsg::Walk { wqids }),
        (qid(), u()).prop_map(|(qid, iounit)| Rmsg::Open { qid, iounit }),
        (qid(), u()).prop_map(|(qid, iounit)| Rmsg::Create { qid, iounit }),
        data().prop_map(|data| Rmsg::Read { data }),
        u().prop_map(|count| Rmsg::Write { count }),
        Just(Rmsg::Clunk),
        Just(Rmsg::Remove),
        stat().prop_map(|stat| Rmsg::Stat { stat }),
        Just(Rmsg::Wstat),
        (any::<[u32; 3]>(), any::<[u64; 6]>()).prop_map(|(a, b)| Rmsg::Statfs(Statfs {
            ty: a[0], bsize: a[1], namelen: a[2], blocks: b[0], bfree: b[1], bavail: b[2], files: b[3], ffree: b[4], fsid: b[5]
        })),
        (qid(), u()).prop_map(|(qid, iounit)| Rmsg::Lopen { qid, iounit }),
        (qid(), u()).prop_map(|(qid, iounit)| Rmsg::Lcreate { qid, iounit }),
        qid().prop_map(|qid| Rmsg::Symlink { qid }),
        qid().prop_map(|qid| Rmsg::Mknod { qid }),
        Just(Rmsg::Rename),
        name().prop_map(|target| Rmsg::Readlink { target }),
        (qid(), any::<[u32; 3]>(), any::<[u64; 16]>()).prop_map(|(qid, a, b)| Rmsg::Getattr(Attr {
            valid: b[0], qid, mode: a[0], uid: a[1], gid: a[2], nlink: b[1], rdev: b[2], size: b[3], blksize: b[4],
            blocks: b[5], atime_sec: b[6], atime_nsec: b[7], mtime_sec: b[8], mtime_nsec: b[9], ctime_sec: b[10],
            ctime_nsec: b[11], btime_sec: b[12], btime_nsec: b[13], gen: b[14], data_version: b[15],
        })),
        Just(Rmsg::Setattr),
        any::<u64>().prop_map(|size| Rmsg::Xattrwalk { size }),
        Just(Rmsg::Xattrcreate),
        data().prop_map(|data| Rmsg::Readdir { data }),
        Just(Rmsg::Fsync),
        any::<u8>().prop_map(|status| Rmsg::Lock { status }),
        flock().prop_map(|l| Rmsg::Getlock(Flock { flags: 0, ..l })),
        Just(Rmsg::Link),
        qid().prop_map(|qid| Rmsg::Mkdir { qid }),
        Just(Rmsg::Renameat),
        Just(Rmsg::Unlinkat),
    ]
}

fn dialect() -> impl Strategy<Value = Dialect> {
    prop_oneof![Just(Dialect::P2000), Just(Dialect::P2000U), Just(Dialect::P2000L)]
}

/// The fields `d` does not carry, as decoding leaves them.
fn strip_stat(s: &mut Stat, d: Dialect) {
    if !d.dotu_fields() {
        (s.extension, s.n_uid, s.n_gid, s.n_muid) = (String::new(), 0, 0, 0);
    }
}

fn t_as_seen(mut m: Tmsg, d: Dialect) -> Tmsg {
    match &mut m {
        Tmsg::Auth { n_uname, .. } | Tmsg::Attach { n_uname, .. } if !d.dotu_fields() => *n_uname = NOFID,
        Tmsg::Create { extension, .. } if d != Dialect::P2000U => extension.clear(),
        Tmsg::Wstat { stat, .. } => strip_stat(stat, d),
        Tmsg::Getlock { lock, .. } => lock.flags = 0,
        _ => {}
    }
    m
}

fn r_as_seen(mut m: Rmsg, d: Dialect) -> Rmsg {
    match &mut m {
        Rmsg::Error { errno, .. } if d != Dialect::P2000U => *errno = 0,
        Rmsg::Stat { stat } => strip_stat(stat, d),
        _ => {}
    }
    m
}

proptest! {
    #[test]
    fn tmsg_roundtrip(m in tmsg(), d in dialect(), tag in any::<u16>()) {
        prop_assume!(!m.is_dotl() || d == Dialect::P2000L);
        let bytes = m.encode(tag, d);
        prop_assert_eq!(u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize, bytes.len());
        let (ty, got_tag, body) = split_header(&bytes).unwrap();
        prop_assert_eq!(got_tag, tag);
        prop_assert_eq!(Tmsg::decode(ty, body, d).unwrap(), t_as_seen(m, d));
    }

    #[test]
    fn rmsg_roundtrip(m in rmsg(), d in dialect(), tag in any::<u16>()) {
        prop_assume!(!m.is_dotl() || d == Dialect::P2000L);
        let bytes = m.encode(tag, d);
        let (ty, got_tag, body) = split_header(&bytes).unwrap();
        prop_assert_eq!(got_tag, tag);
        prop_assert_eq!(Rmsg::decode(ty, body, d).unwrap(), r_as_seen(m, d));
    }

    #[test]
    fn decoding_any_bytes_never_panics(ty in any::<u8>(), body in prop::collection::vec(any::<u8>(), 0..200), d in dialect()) {
        let _ = Tmsg::decode(ty, &body, d);
        let _ = Rmsg::decode(ty, &body, d);
        let _ = Stat::decode(&mut ninep::wire::Reader::new(&body), d.dotu_fields());
        let _ = ninep::dotl::Dirent::parse_all(&body);
    }

    /// Truncating a valid message anywhere gives an error, not a panic or a wrong value.
    #[test]
    fn truncated_messages_are_errors(m in tmsg(), cut in any::<prop::sample::Index>()) {
        let d = Dialect::P2000L;
        let bytes = m.encode(1, d);
        let body = &bytes[7..];
        prop_assume!(!body.is_empty());
        let cut = cut.index(body.len());
        if let Ok(decoded) = Tmsg::decode(bytes[4], &body[..cut], d) {
            // Only Tfsync may end early (its datasync is optional).
            prop_assert!(matches!(decoded, Tmsg::Fsync { datasync: 0, .. }), "{decoded:?}");
        }
    }
}

proptest! {
    /// A read reply encoded in two parts is byte for byte the whole frame.
    #[test]
    fn a_split_read_reply_is_the_whole_frame(len in 0usize..(40 << 10), tag in any::<u16>(), seed in any::<u8>()) {
        let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
        for d in [Dialect::P2000, Dialect::P2000U, Dialect::P2000L] {
            let whole = Rmsg::Read { data: data.clone() }.encode(tag, d);
            let (head, tail) = Rmsg::Read { data: data.clone() }.encode_split(tag, d);
            prop_assert_eq!(tail.is_some(), len >= ninep::codec::SPLIT_DATA_AT);
            let mut joined = head;
            joined.extend_from_slice(tail.as_deref().unwrap_or_default());
            prop_assert_eq!(joined, whole);
        }
    }
}
