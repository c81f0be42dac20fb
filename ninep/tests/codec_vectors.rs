//! Byte-exact vectors for every message of every dialect. They do not come
//! from the encoder under test: the first set is traffic captured from
//! Debian's diod clients (`diodls -l /`, `diodcat`), the rest is built field
//! by field from the layouts in intro(9P) and the Linux client's
//! `net/9p/protocol.c`, with the tiny builder below. Each vector must decode
//! to the expected value and that value must encode to the same bytes.

use ninep::codec::split_header;
use ninep::dotl::{Attr, Flock, SetAttr, Statfs};
use ninep::stat::Stat;
use ninep::{Dialect, Qid, Rmsg, Tmsg};

use Dialect::{P2000 as P, P2000L as L, P2000U as U};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// A field of a frame, written in little-endian as intro(9P) says.
#[derive(Clone)]
enum F<'a> {
    B(u8),
    W(u16),
    D(u32),
    Q(u64),
    S(&'a str),
    /// qid: type[1] version[4] path[8]
    Qid(u8, u32, u64),
    Raw(Vec<u8>),
}
use F::*;

fn fields(fs: &[F]) -> Vec<u8> {
    let mut b = vec![];
    for f in fs {
        match f {
            B(v) => b.push(*v),
            W(v) => b.extend(v.to_le_bytes()),
            D(v) => b.extend(v.to_le_bytes()),
            Q(v) => b.extend(v.to_le_bytes()),
            S(s) => {
                b.extend((s.len() as u16).to_le_bytes());
                b.extend(s.as_bytes());
            }
            Qid(t, v, p) => {
                b.push(*t);
                b.extend(v.to_le_bytes());
                b.extend(p.to_le_bytes());
            }
            Raw(r) => b.extend(r),
        }
    }
    b
}

/// size[4] type[1] tag[2] fields...
fn frame(ty: u8, tag: u16, fs: &[F]) -> Vec<u8> {
    let body = fields(fs);
    let mut b = ((7 + body.len()) as u32).to_le_bytes().to_vec();
    b.push(ty);
    b.extend(tag.to_le_bytes());
    b.extend(body);
    b
}

fn check_t(d: Dialect, bytes: &[u8], want: Tmsg) {
    let (ty, tag, body) = split_header(bytes).unwrap();
    assert_eq!(Tmsg::decode(ty, body, d).unwrap(), want, "{d:?} decode {}", hexs(bytes));
    assert_eq!(want.encode(tag, d), bytes, "{d:?} encode {want:?}");
}

fn check_r(d: Dialect, bytes: &[u8], want: Rmsg) {
    let (ty, tag, body) = split_header(bytes).unwrap();
    assert_eq!(Rmsg::decode(ty, body, d).unwrap(), want, "{d:?} decode {}", hexs(bytes));
    assert_eq!(want.encode(tag, d), bytes, "{d:?} encode {want:?}");
}

fn hexs(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn captured_from_diod_clients() {
    check_t(L, &hex("1500000064ffff0000010008003950323030302e4c"), Tmsg::Version { msize: 65536, version: s("9P2000.L") });
    check_t(L, &hex("16000000660000000000000000030063746c00000000"), Tmsg::Auth { afid: 0, uname: s(""), aname: s("ctl"), n_uname: 0 });
    check_t(
        L,
        &hex("1a00000068000000000000ffffffff0000030063746c00000000"),
        Tmsg::Attach { fid: 0, afid: u32::MAX, uname: s(""), aname: s("ctl"), n_uname: 0 },
    );
    check_t(L, &hex("110000006e000000000000010000000000"), Tmsg::Walk { fid: 0, newfid: 1, wnames: vec![] });
    check_t(L, &hex("180000006e000001000000020000000100050068656c6c6f"), Tmsg::Walk { fid: 1, newfid: 2, wnames: vec![s("hello")] });
    check_t(L, &hex("0f0000000c00000100000000000000"), Tmsg::Lopen { fid: 1, flags: 0 });
    check_t(L, &hex("1300000018000001000000ff07000000000000"), Tmsg::Getattr { fid: 1, mask: 0x7ff });
    check_t(L, &hex("17000000280000010000000000000000000000e8ff0000"), Tmsg::Readdir { fid: 1, offset: 0, count: 65512 });
    check_t(L, &hex("17000000740000010000000d00000000000000e8ff0000"), Tmsg::Read { fid: 1, offset: 13, count: 65512 });
    check_t(L, &hex("0b00000078000002000000"), Tmsg::Clunk { fid: 2 });
}

fn stat_bytes(dotu: bool) -> Vec<u8> {
    let mut f = vec![W(1), D(2), Qid(0x80, 3, 4), D(0x8000_01ed), D(5), D(6), Q(7), S("name"), S("uid"), S("gid"), S("muid")];
    if dotu {
        f.extend([S("ext"), D(1000), D(1001), D(1002)]);
    }
    let body = fields(&f);
    let mut b = (body.len() as u16).to_le_bytes().to_vec();
    b.extend(body);
    b
}

fn stat_value(dotu: bool) -> Stat {
    Stat {
        ty: 1,
        dev: 2,
        qid: Qid { ty: 0x80, version: 3, path: 4 },
        mode: 0x8000_01ed,
        atime: 5,
        mtime: 6,
        length: 7,
        name: s("name"),
        uid: s("uid"),
        gid: s("gid"),
        muid: s("muid"),
        extension: if dotu { s("ext") } else { s("") },
        n_uid: if dotu { 1000 } else { 0 },
        n_gid: if dotu { 1001 } else { 0 },
        n_muid: if dotu { 1002 } else { 0 },
    }
}

/// Twstat and Rstat carry the stat behind its own n[2].
fn nstat(dotu: bool) -> F<'static> {
    let st = stat_bytes(dotu);
    let mut b = (st.len() as u16).to_le_bytes().to_vec();
    b.extend(st);
    Raw(b)
}

#[test]
fn messages_common_to_all_dialects() {
    for d in [P, U, L] {
        check_t(d, &frame(100, 0xffff, &[D(8192), S("9P2000")]), Tmsg::Version { msize: 8192, version: s("9P2000") });
        check_r(d, &frame(101, 0xffff, &[D(8192), S("9P2000")]), Rmsg::Version { msize: 8192, version: s("9P2000") });
        check_t(d, &frame(108, 5, &[W(4)]), Tmsg::Flush { oldtag: 4 });
        check_r(d, &frame(109, 5, &[]), Rmsg::Flush);
        check_t(d, &frame(110, 1, &[D(1), D(2), W(2), S("a"), S("bc")]), Tmsg::Walk { fid: 1, newfid: 2, wnames: vec![s("a"), s("bc")] });
        check_r(d, &frame(111, 1, &[W(1), Qid(0x80, 1, 2)]), Rmsg::Walk { wqids: vec![Qid { ty: 0x80, version: 1, path: 2 }] });
        check_t(d, &frame(116, 1, &[D(3), Q(10), D(100)]), Tmsg::Read { fid: 3, offset: 10, count: 100 });
        check_r(d, &frame(117, 1, &[D(3), Raw(b"abc".to_vec())]), Rmsg::Read { data: b"abc".to_vec() });
        check_t(d, &frame(118, 1, &[D(3), Q(10), D(2), Raw(b"hi".to_vec())]), Tmsg::Write { fid: 3, offset: 10, data: b"hi".to_vec() });
        check_r(d, &frame(119, 1, &[D(2)]), Rmsg::Write { count: 2 });
        check_t(d, &frame(120, 1, &[D(3)]), Tmsg::Clunk { fid: 3 });
        check_r(d, &frame(121, 1, &[]), Rmsg::Clunk);
        check_t(d, &frame(122, 1, &[D(3)]), Tmsg::Remove { fid: 3 });
        check_r(d, &frame(123, 1, &[]), Rmsg::Remove);
        check_t(d, &frame(112, 1, &[D(3), B(0x10)]), Tmsg::Open { fid: 3, mode: 0x10 });
        check_r(d, &frame(113, 1, &[Qid(0, 1, 2), D(8168)]), Rmsg::Open { qid: Qid::file(2).with_version(1), iounit: 8168 });
        check_t(d, &frame(124, 1, &[D(3)]), Tmsg::Stat { fid: 3 });
        check_r(d, &frame(127, 1, &[]), Rmsg::Wstat);
        check_r(d, &frame(103, 1, &[Qid(0x08, 0, 9)]), Rmsg::Auth { aqid: Qid { ty: 0x08, version: 0, path: 9 } });
        check_r(d, &frame(105, 1, &[Qid(0x80, 0, 0)]), Rmsg::Attach { qid: Qid::dir(0) });
        check_r(d, &frame(115, 1, &[Qid(0, 0, 7), D(0)]), Rmsg::Create { qid: Qid::file(7), iounit: 0 });
    }
}

#[test]
fn messages_that_differ_between_9p2000_and_u() {
    // Tauth/Tattach: .u and .L add n_uname[4].
    check_t(P, &frame(102, 1, &[D(5), S("glenda"), S("")]), Tmsg::Auth { afid: 5, uname: s("glenda"), aname: s(""), n_uname: u32::MAX });
    check_t(U, &frame(102, 1, &[D(5), S("glenda"), S(""), D(1000)]), Tmsg::Auth { afid: 5, uname: s("glenda"), aname: s(""), n_uname: 1000 });
    check_t(P, &frame(104, 1, &[D(0), D(u32::MAX), S("glenda"), S("/")]), Tmsg::Attach { fid: 0, afid: u32::MAX, uname: s("glenda"), aname: s("/"), n_uname: u32::MAX });
    check_t(U, &frame(104, 1, &[D(0), D(u32::MAX), S("glenda"), S("/"), D(7)]), Tmsg::Attach { fid: 0, afid: u32::MAX, uname: s("glenda"), aname: s("/"), n_uname: 7 });
    // Tcreate: .u adds extension[s].
    check_t(P, &frame(114, 1, &[D(1), S("f"), D(0o644), B(1)]), Tmsg::Create { fid: 1, name: s("f"), perm: 0o644, mode: 1, extension: s("") });
    check_t(U, &frame(114, 1, &[D(1), S("f"), D(0o644), B(1), S("")]), Tmsg::Create { fid: 1, name: s("f"), perm: 0o644, mode: 1, extension: s("") });
    // Rerror: .u adds errno[4].
    check_r(P, &frame(107, 1, &[S("file does not exist")]), Rmsg::Error { ename: s("file does not exist"), errno: 0 });
    check_r(U, &frame(107, 1, &[S("file does not exist"), D(2)]), Rmsg::Error { ename: s("file does not exist"), errno: 2 });
    // stat: .u adds extension[s] n_uid[4] n_gid[4] n_muid[4].
    for (d, dotu) in [(P, false), (U, true)] {
        check_r(d, &frame(125, 1, &[nstat(dotu)]), Rmsg::Stat { stat: stat_value(dotu) });
        check_t(d, &frame(126, 1, &[D(3), nstat(dotu)]), Tmsg::Wstat { fid: 3, stat: stat_value(dotu) });
    }
}

#[test]
fn messages_of_dotl() {
    let q = Qid { ty: 0, version: 1, path: 2 };
    let qf = Qid(0, 1, 2);
    check_r(L, &frame(7, 1, &[D(2)]), Rmsg::Lerror { ecode: 2 });
    check_t(L, &frame(8, 1, &[D(1)]), Tmsg::Statfs { fid: 1 });
    check_r(
        L,
        &frame(9, 1, &[D(0x01021997), D(4096), Q(1), Q(2), Q(3), Q(4), Q(5), Q(6), D(255)]),
        Rmsg::Statfs(Statfs { ty: 0x01021997, bsize: 4096, blocks: 1, bfree: 2, bavail: 3, files: 4, ffree: 5, fsid: 6, namelen: 255 }),
    );
    check_t(L, &frame(12, 1, &[D(1), D(0o1001)]), Tmsg::Lopen { fid: 1, flags: 0o1001 });
    check_r(L, &frame(13, 1, &[qf.clone(), D(0)]), Rmsg::Lopen { qid: q, iounit: 0 });
    check_t(L, &frame(14, 1, &[D(1), S("f"), D(0o101), D(0o644), D(100)]), Tmsg::Lcreate { fid: 1, name: s("f"), flags: 0o101, mode: 0o644, gid: 100 });
    check_r(L, &frame(15, 1, &[qf.clone(), D(8168)]), Rmsg::Lcreate { qid: q, iounit: 8168 });
    check_t(L, &frame(16, 1, &[D(1), S("l"), S("t"), D(100)]), Tmsg::Symlink { fid: 1, name: s("l"), target: s("t"), gid: 100 });
    check_r(L, &frame(17, 1, &[qf.clone()]), Rmsg::Symlink { qid: q });
    check_t(L, &frame(18, 1, &[D(1), S("n"), D(0o644), D(1), D(2), D(100)]), Tmsg::Mknod { dfid: 1, name: s("n"), mode: 0o644, major: 1, minor: 2, gid: 100 });
    check_r(L, &frame(19, 1, &[qf.clone()]), Rmsg::Mknod { qid: q });
    check_t(L, &frame(20, 1, &[D(1), D(2), S("n")]), Tmsg::Rename { fid: 1, dfid: 2, name: s("n") });
    check_r(L, &frame(21, 1, &[]), Rmsg::Rename);
    check_t(L, &frame(22, 1, &[D(1)]), Tmsg::Readlink { fid: 1 });
    check_r(L, &frame(23, 1, &[S("target")]), Rmsg::Readlink { target: s("target") });
    check_t(L, &frame(24, 1, &[D(1), Q(0x7ff)]), Tmsg::Getattr { fid: 1, mask: 0x7ff });
    let attr_fields: Vec<F> = [vec![Q(0x7ff), qf.clone(), D(0o100644), D(1000), D(1001)], (1..=15u64).map(Q).collect()].concat();
    let attr = Attr {
        valid: 0x7ff, qid: q, mode: 0o100644, uid: 1000, gid: 1001,
        nlink: 1, rdev: 2, size: 3, blksize: 4, blocks: 5, atime_sec: 6, atime_nsec: 7, mtime_sec: 8,
        mtime_nsec: 9, ctime_sec: 10, ctime_nsec: 11, btime_sec: 12, btime_nsec: 13, gen: 14, data_version: 15,
    };
    check_r(L, &frame(25, 1, &attr_fields), Rmsg::Getattr(attr));
    check_t(
        L,
        &frame(26, 1, &[D(1), D(0x8), D(0o644), D(1), D(2), Q(0), Q(3), Q(4), Q(5), Q(6)]),
        Tmsg::Setattr { fid: 1, attr: SetAttr { valid: 8, mode: 0o644, uid: 1, gid: 2, size: 0, atime_sec: 3, atime_nsec: 4, mtime_sec: 5, mtime_nsec: 6 } },
    );
    check_r(L, &frame(27, 1, &[]), Rmsg::Setattr);
    check_t(L, &frame(30, 1, &[D(1), D(2), S("user.x")]), Tmsg::Xattrwalk { fid: 1, newfid: 2, name: s("user.x") });
    check_r(L, &frame(31, 1, &[Q(10)]), Rmsg::Xattrwalk { size: 10 });
    check_t(L, &frame(32, 1, &[D(1), S("user.x"), Q(10), D(0)]), Tmsg::Xattrcreate { fid: 1, name: s("user.x"), size: 10, flags: 0 });
    check_r(L, &frame(33, 1, &[]), Rmsg::Xattrcreate);
    check_t(L, &frame(40, 1, &[D(1), Q(0), D(4096)]), Tmsg::Readdir { fid: 1, offset: 0, count: 4096 });
    let dirent = fields(&[qf.clone(), Q(1), B(8), S("a")]);
    check_r(L, &frame(41, 1, &[D(dirent.len() as u32), Raw(dirent.clone())]), Rmsg::Readdir { data: dirent });
    check_t(L, &frame(50, 1, &[D(1), D(1)]), Tmsg::Fsync { fid: 1, datasync: 1 });
    check_r(L, &frame(51, 1, &[]), Rmsg::Fsync);
    let lock = Flock { ty: 1, flags: 2, start: 3, length: 4, proc_id: 5, client_id: s("c") };
    check_t(L, &frame(52, 1, &[D(1), B(1), D(2), Q(3), Q(4), D(5), S("c")]), Tmsg::Lock { fid: 1, lock: lock.clone() });
    check_r(L, &frame(53, 1, &[B(0)]), Rmsg::Lock { status: 0 });
    let getlock = Flock { flags: 0, ..lock };
    check_t(L, &frame(54, 1, &[D(1), B(1), Q(3), Q(4), D(5), S("c")]), Tmsg::Getlock { fid: 1, lock: getlock.clone() });
    check_r(L, &frame(55, 1, &[B(1), Q(3), Q(4), D(5), S("c")]), Rmsg::Getlock(getlock));
    check_t(L, &frame(70, 1, &[D(1), D(2), S("k")]), Tmsg::Link { dfid: 1, fid: 2, name: s("k") });
    check_r(L, &frame(71, 1, &[]), Rmsg::Link);
    check_t(L, &frame(72, 1, &[D(1), S("d"), D(0o755), D(100)]), Tmsg::Mkdir { dfid: 1, name: s("d"), mode: 0o755, gid: 100 });
    check_r(L, &frame(73, 1, &[Qid(0x80, 0, 2)]), Rmsg::Mkdir { qid: Qid::dir(2) });
    check_t(L, &frame(74, 1, &[D(1), S("a"), D(2), S("b")]), Tmsg::Renameat { olddirfid: 1, oldname: s("a"), newdirfid: 2, newname: s("b") });
    check_r(L, &frame(75, 1, &[]), Rmsg::Renameat);
    check_t(L, &frame(76, 1, &[D(1), S("a"), D(0x200)]), Tmsg::Unlinkat { dirfid: 1, name: s("a"), flags: 0x200 });
    check_r(L, &frame(77, 1, &[]), Rmsg::Unlinkat);
    // Tfsync without datasync (older clients) still decodes.
    let (ty, _, body) = split_header(&frame(50, 1, &[D(9)])).map(|(a, b, c)| (a, b, c.to_vec())).unwrap();
    assert_eq!(Tmsg::decode(ty, &body, L).unwrap(), Tmsg::Fsync { fid: 9, datasync: 0 });
}

trait WithVersion {
    fn with_version(self, v: u32) -> Self;
}
impl WithVersion for Qid {
    fn with_version(mut self, v: u32) -> Qid {
        self.version = v;
        self
    }
}
