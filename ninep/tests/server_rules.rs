//! The protocol rules the library enforces for every file system, checked
//! frame by frame against the ramfs example.

mod common;

use common::{error_of, ramfs, ramfs_with, Raw};
use ninep::dotl::{setattr, Dirent, SetAttr};
use ninep::fcall::{omode, NOTAG};
use ninep::stat::Stat;
use ninep::wire::Reader;
use ninep::{Dialect, Rmsg, Tmsg, NOFID};

fn s(v: &str) -> String {
    v.to_string()
}

#[tokio::test]
async fn version_rule_and_msize() {
    let srv = ramfs_with(ninep::Config { max_msize: 65536, ..Default::default() }).await;
    let mut c = Raw::connect(srv.addr).await;
    for (asked, answer) in [("9P2000.L", "9P2000.L"), ("9P2000.u", "9P2000.u"), ("9P2000", "9P2000"), ("9P2000.X", "9P2000"), ("9P1", "unknown")] {
        let r = c.rpc(NOTAG, Tmsg::Version { msize: 8192, version: s(asked) }).await;
        assert_eq!(r, Rmsg::Version { msize: 8192, version: s(answer) }, "asked {asked}");
    }
    let r = c.rpc(NOTAG, Tmsg::Version { msize: 100, version: s("9P2000") }).await;
    assert_eq!(r, Rmsg::Version { msize: 4096, version: s("9P2000") }, "at least 4096");
    let r = c.rpc(NOTAG, Tmsg::Version { msize: 1 << 24, version: s("9P2000") }).await;
    assert_eq!(r, Rmsg::Version { msize: 65536, version: s("9P2000") }, "at most the server's max");
}

#[tokio::test]
async fn tversion_resets_the_session() {
    let srv = ramfs().await;
    let mut c = Raw::session(srv.addr, Dialect::P2000).await;
    assert!(matches!(c.rpc(2, Tmsg::Stat { fid: 0 }).await, Rmsg::Stat { .. }));
    c.rpc(NOTAG, Tmsg::Version { msize: 8192, version: s("9P2000") }).await;
    let r = c.rpc(2, Tmsg::Stat { fid: 0 }).await;
    assert_eq!(error_of(&r).unwrap().0, "unknown fid");
}

#[tokio::test]
async fn requests_before_tversion_are_refused() {
    let srv = ramfs().await;
    let mut c = Raw::connect(srv.addr).await;
    let r = c.rpc(1, Tmsg::Stat { fid: 0 }).await;
    assert_eq!(error_of(&r).unwrap().0, "version not negotiated");
}

#[tokio::test]
async fn walk_rules() {
    let srv = ramfs().await;
    let mut c = Raw::session(srv.addr, Dialect::P2000U).await;
    // The first name failing is an Rerror.
    let r = c.walk(0, 1, &["nope"]).await;
    assert_eq!(error_of(&r).unwrap(), (s("file does not exist"), 2));
    // A later name failing is a short Rwalk, and newfid stays unused.
    c.rpc(1, Tmsg::Create { fid: 0, name: s("d"), perm: ninep::DMDIR | 0o777, mode: 0, extension: s("") }).await;
    c.rpc(1, Tmsg::Clunk { fid: 0 }).await;
    let mut c = Raw::session(srv.addr, Dialect::P2000U).await;
    let r = c.walk(0, 1, &["d", "nope", "x"]).await;
    assert!(matches!(&r, Rmsg::Walk { wqids } if wqids.len() == 1), "{r:?}");
    assert_eq!(error_of(&c.rpc(1, Tmsg::Stat { fid: 1 }).await).unwrap().0, "unknown fid");
    // nwname 0 clones.
    assert_eq!(c.walk(0, 2, &[]).await, Rmsg::Walk { wqids: vec![] });
    assert!(matches!(c.rpc(1, Tmsg::Stat { fid: 2 }).await, Rmsg::Stat { .. }));
    // ".." at the root stays at the root; below it, goes up.
    let root = match c.rpc(1, Tmsg::Stat { fid: 0 }).await {
        Rmsg::Stat { stat } => stat.qid,
        r => panic!("{r:?}"),
    };
    assert_eq!(c.walk(0, 3, &[".."]).await, Rmsg::Walk { wqids: vec![root] });
    let r = c.walk(0, 4, &["d", ".."]).await;
    assert!(matches!(&r, Rmsg::Walk { wqids } if wqids[1] == root), "{r:?}");
    // newfid in use is refused, unless it is fid itself.
    assert_eq!(error_of(&c.walk(0, 2, &["d"]).await).unwrap().0, "duplicate fid");
    assert!(matches!(c.walk(2, 2, &["d"]).await, Rmsg::Walk { wqids } if wqids.len() == 1));
    // More than 16 names is refused and the connection goes on.
    let names: Vec<&str> = vec!["d"; 17];
    let r = c.walk(0, 5, &names).await;
    assert!(error_of(&r).unwrap().0.contains("too many names"), "{r:?}");
    // An open fid cannot be walked from (9P2000, .u).
    assert!(matches!(c.rpc(1, Tmsg::Open { fid: 2, mode: omode::OREAD }).await, Rmsg::Open { .. }));
    assert_eq!(error_of(&c.walk(2, 6, &[]).await).unwrap().0, "fid is already open");
    // Walking from a file is refused.
    let r = c.walk(0, 7, &["hello"]).await;
    assert!(matches!(r, Rmsg::Walk { .. }));
    assert_eq!(error_of(&c.walk(7, 8, &["x"]).await).unwrap().0, "walk in non-directory");
}

async fn make_files(c: &mut Raw, names: &[&str]) {
    for (i, n) in names.iter().enumerate() {
        let fid = 100 + i as u32;
        assert!(matches!(c.walk(0, fid, &[]).await, Rmsg::Walk { .. }));
        let r = c.rpc(1, Tmsg::Create { fid, name: s(n), perm: 0o666, mode: omode::OWRITE, extension: s("") }).await;
        assert!(matches!(r, Rmsg::Create { .. }), "{r:?}");
        c.rpc(1, Tmsg::Clunk { fid }).await;
    }
}

#[tokio::test]
async fn directory_reads_return_whole_entries_at_valid_offsets() {
    let srv = ramfs().await;
    let mut c = Raw::session(srv.addr, Dialect::P2000).await;
    make_files(&mut c, &["a", "b", "c"]).await;
    c.walk(0, 1, &[]).await;
    c.rpc(1, Tmsg::Open { fid: 1, mode: omode::OREAD }).await;
    let one = Stat { name: s("a"), uid: s("ramfs"), gid: s("ramfs"), muid: s("ramfs"), ..Stat::default() }
        .to_bytes(false)
        .len() as u32;
    // Room for one entry and a half: exactly one comes back.
    let Rmsg::Read { data } = c.rpc(1, Tmsg::Read { fid: 1, offset: 0, count: one + one / 2 }).await else { panic!() };
    assert_eq!(data.len() as u32, one);
    let st = Stat::decode(&mut Reader::new(&data), false).unwrap();
    assert_eq!(st.name, "a");
    // Not previous offset + previous count.
    let r = c.rpc(1, Tmsg::Read { fid: 1, offset: 3, count: 4096 }).await;
    assert_eq!(error_of(&r).unwrap().0, "bad offset");
    // Too small for the next entry: 0 bytes.
    let r = c.rpc(1, Tmsg::Read { fid: 1, offset: one as u64, count: one - 1 }).await;
    assert_eq!(r, Rmsg::Read { data: vec![] });
    let Rmsg::Read { data } = c.rpc(1, Tmsg::Read { fid: 1, offset: one as u64, count: 8000 }).await else { panic!() };
    let mut r = Reader::new(&data);
    let mut names = vec![];
    while r.remaining() > 0 {
        names.push(Stat::decode(&mut r, false).unwrap().name);
    }
    assert_eq!(names, ["b", "c", "hello"]);
    // Offset 0 starts over.
    let Rmsg::Read { data } = c.rpc(1, Tmsg::Read { fid: 1, offset: 0, count: 8000 }).await else { panic!() };
    assert_eq!(data.len() as u32, one * 3 + Stat { name: s("hello"), uid: s("ramfs"), gid: s("ramfs"), muid: s("ramfs"), ..Stat::default() }.to_bytes(false).len() as u32);
}

#[tokio::test]
async fn treaddir_cookies_and_end() {
    let srv = ramfs().await;
    let mut c = Raw::session(srv.addr, Dialect::P2000L).await;
    make_files_l(&mut c, &["a", "b"]).await;
    c.walk(0, 1, &[]).await;
    assert!(matches!(c.rpc(1, Tmsg::Lopen { fid: 1, flags: 0 }).await, Rmsg::Lopen { .. }));
    let Rmsg::Readdir { data } = c.rpc(1, Tmsg::Readdir { fid: 1, offset: 0, count: 40 }).await else { panic!() };
    let first = Dirent::parse_all(&data).unwrap();
    assert_eq!(first.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["a"]);
    let cookie = first[0].offset;
    let Rmsg::Readdir { data } = c.rpc(1, Tmsg::Readdir { fid: 1, offset: cookie, count: 4000 }).await else { panic!() };
    let rest = Dirent::parse_all(&data).unwrap();
    assert_eq!(rest.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["b", "hello"]);
    let end = rest.last().unwrap().offset;
    assert_eq!(c.rpc(1, Tmsg::Readdir { fid: 1, offset: end, count: 4000 }).await, Rmsg::Readdir { data: vec![] });
}

async fn make_files_l(c: &mut Raw, names: &[&str]) {
    for (i, n) in names.iter().enumerate() {
        let fid = 100 + i as u32;
        c.walk(0, fid, &[]).await;
        let r = c.rpc(1, Tmsg::Lcreate { fid, name: s(n), flags: 1, mode: 0o644, gid: 0 }).await;
        assert!(matches!(r, Rmsg::Lcreate { .. }), "{r:?}");
        c.rpc(1, Tmsg::Clunk { fid }).await;
    }
}

#[tokio::test]
async fn truncation_and_sync_are_accepted() {
    let srv = ramfs().await;
    for d in [Dialect::P2000, Dialect::P2000U] {
        let mut c = Raw::session(srv.addr, d).await;
        c.walk(0, 1, &["hello"]).await;
        // Twstat setting only length 0 and mtime: what `echo > file` sends.
        let trunc = Stat { length: 0, mtime: 1_700_000_000, ..Stat::dont_touch() };
        assert_eq!(c.rpc(1, Tmsg::Wstat { fid: 1, stat: trunc }).await, Rmsg::Wstat);
        // The all-"don't touch" Twstat: fsync.
        assert_eq!(c.rpc(1, Tmsg::Wstat { fid: 1, stat: Stat::dont_touch() }).await, Rmsg::Wstat);
        let Rmsg::Stat { stat } = c.rpc(1, Tmsg::Stat { fid: 1 }).await else { panic!() };
        assert_eq!((stat.length, stat.mode & 0o777), (0, 0o666), "mode ~0 left the mode alone");
        // Topen with OTRUNC.
        let r = c.rpc(1, Tmsg::Open { fid: 1, mode: omode::OWRITE | omode::OTRUNC }).await;
        assert!(matches!(r, Rmsg::Open { .. }), "{r:?}");
    }
    let mut c = Raw::session(srv.addr, Dialect::P2000L).await;
    c.walk(0, 1, &["hello"]).await;
    let attr = SetAttr { valid: setattr::SIZE | setattr::MTIME | setattr::CTIME, ..SetAttr::default() };
    assert_eq!(c.rpc(1, Tmsg::Setattr { fid: 1, attr }).await, Rmsg::Setattr);
    assert_eq!(c.rpc(1, Tmsg::Fsync { fid: 1, datasync: 0 }).await, Rmsg::Fsync);
}

#[tokio::test]
async fn tauth_is_refused_and_nofid_attach_works() {
    let srv = ramfs().await;
    for d in [Dialect::P2000, Dialect::P2000U, Dialect::P2000L] {
        let mut c = Raw::connect(srv.addr).await;
        c.rpc(NOTAG, Tmsg::Version { msize: 8192, version: s(d.version_string()) }).await;
        c.dialect = d;
        let r = c.rpc(1, Tmsg::Auth { afid: 5, uname: s("u"), aname: s(""), n_uname: 0 }).await;
        assert!(error_of(&r).is_some(), "{r:?}");
        let r = c.rpc(1, Tmsg::Attach { fid: 0, afid: NOFID, uname: s("u"), aname: s("anything"), n_uname: 0 }).await;
        assert!(matches!(r, Rmsg::Attach { .. }));
    }
}

#[tokio::test]
async fn clunk_and_remove_always_invalidate_the_fid() {
    let srv = ramfs().await;
    let mut c = Raw::session(srv.addr, Dialect::P2000).await;
    // Removing the root fails, and the fid is gone anyway.
    c.walk(0, 1, &[]).await;
    assert!(error_of(&c.rpc(1, Tmsg::Remove { fid: 1 }).await).is_some());
    assert_eq!(error_of(&c.rpc(1, Tmsg::Stat { fid: 1 }).await).unwrap().0, "unknown fid");
    // A clunk whose remove-on-close fails still clunks.
    c.walk(0, 2, &[]).await;
    c.rpc(1, Tmsg::Open { fid: 2, mode: omode::OREAD | omode::ORCLOSE }).await;
    assert!(error_of(&c.rpc(1, Tmsg::Clunk { fid: 2 }).await).is_some());
    assert_eq!(error_of(&c.rpc(1, Tmsg::Clunk { fid: 2 }).await).unwrap().0, "unknown fid");
}

#[tokio::test]
async fn dotl_extras_answer_eopnotsupp_or_enodata() {
    let srv = ramfs().await;
    let mut c = Raw::session(srv.addr, Dialect::P2000L).await;
    let xattr = Tmsg::Xattrwalk { fid: 0, newfid: 9, name: s("security.selinux") };
    assert_eq!(c.rpc(1, xattr).await, Rmsg::Lerror { ecode: 61 });
    assert_eq!(c.rpc(1, Tmsg::Xattrwalk { fid: 0, newfid: 9, name: s("") }).await, Rmsg::Lerror { ecode: 95 });
    let unsupported = [
        Tmsg::Symlink { fid: 0, name: s("l"), target: s("hello"), gid: 0 },
        Tmsg::Mknod { dfid: 0, name: s("n"), mode: 0o644, major: 1, minor: 1, gid: 0 },
        Tmsg::Link { dfid: 0, fid: 0, name: s("k") },
        Tmsg::Lock { fid: 0, lock: Default::default() },
        Tmsg::Getlock { fid: 0, lock: Default::default() },
    ];
    for m in unsupported {
        assert_eq!(c.rpc(1, m.clone()).await, Rmsg::Lerror { ecode: 95 }, "{m:?}");
    }
    assert!(matches!(c.rpc(1, Tmsg::Statfs { fid: 0 }).await, Rmsg::Statfs(_)));
}

#[tokio::test]
async fn errors_take_the_dialects_form() {
    let srv = ramfs().await;
    let mut c = Raw::session(srv.addr, Dialect::P2000).await;
    assert_eq!(c.walk(0, 1, &["nope"]).await, Rmsg::Error { ename: s("file does not exist"), errno: 0 });
    let mut c = Raw::session(srv.addr, Dialect::P2000U).await;
    assert_eq!(c.walk(0, 1, &["nope"]).await, Rmsg::Error { ename: s("file does not exist"), errno: 2 });
    let mut c = Raw::session(srv.addr, Dialect::P2000L).await;
    assert_eq!(c.walk(0, 1, &["nope"]).await, Rmsg::Lerror { ecode: 2 });
}

#[tokio::test]
async fn io_on_wrong_fids_is_refused() {
    let srv = ramfs().await;
    let mut c = Raw::session(srv.addr, Dialect::P2000U).await;
    c.walk(0, 1, &["hello"]).await;
    // Read on an unopened fid.
    let r = c.rpc(1, Tmsg::Read { fid: 1, offset: 0, count: 10 }).await;
    assert_eq!(error_of(&r).unwrap(), (s("fid not open for reading"), 9));
    // Write through a fid opened for reading.
    c.rpc(1, Tmsg::Open { fid: 1, mode: omode::OREAD }).await;
    let r = c.rpc(1, Tmsg::Write { fid: 1, offset: 0, data: b"x".to_vec() }).await;
    assert_eq!(error_of(&r).unwrap().0, "fid not open for writing");
    // Opening a directory for writing, and writing to one.
    c.walk(0, 2, &[]).await;
    let r = c.rpc(1, Tmsg::Open { fid: 2, mode: omode::OWRITE }).await;
    assert_eq!(error_of(&r).unwrap(), (s("is a directory"), 21));
    let r = c.rpc(1, Tmsg::Write { fid: 2, offset: 0, data: b"x".to_vec() }).await;
    assert_eq!(error_of(&r).unwrap().0, "is a directory");
    // Unknown fid, and attaching over a fid in use.
    assert_eq!(error_of(&c.rpc(1, Tmsg::Clunk { fid: 77 }).await).unwrap().0, "unknown fid");
    let r = c.rpc(1, Tmsg::Attach { fid: 1, afid: NOFID, uname: s("u"), aname: s(""), n_uname: 0 }).await;
    assert_eq!(error_of(&r).unwrap().0, "duplicate fid");
}

#[tokio::test]
async fn read_counts_are_clamped_to_msize() {
    let srv = ramfs().await;
    let mut c = Raw::session(srv.addr, Dialect::P2000).await;
    c.walk(0, 1, &[]).await;
    c.rpc(1, Tmsg::Create { fid: 1, name: s("big"), perm: 0o666, mode: omode::ORDWR, extension: s("") }).await;
    for i in 0..4u64 {
        let r = c.rpc(1, Tmsg::Write { fid: 1, offset: i * 4000, data: vec![b'x'; 4000] }).await;
        assert_eq!(r, Rmsg::Write { count: 4000 });
    }
    // msize is 8192: a read asking for 1 MiB gets at most 8192 - 24.
    let Rmsg::Read { data } = c.rpc(1, Tmsg::Read { fid: 1, offset: 0, count: 1 << 20 }).await else { panic!() };
    assert_eq!(data.len(), 8192 - 24);
}

#[tokio::test]
async fn legacy_errors_can_carry_the_errno_text_for_linux() {
    let srv = ramfs_with(ninep::Config { legacy_errors: ninep::LegacyErrors::Errno, ..Default::default() }).await;
    let mut c = Raw::session(srv.addr, Dialect::P2000).await;
    assert_eq!(c.walk(0, 1, &["nope"]).await, Rmsg::Error { ename: s("No such file or directory"), errno: 0 });
    // .u still carries the reason.
    let mut u = Raw::session(srv.addr, Dialect::P2000U).await;
    assert_eq!(u.walk(0, 1, &["nope"]).await, Rmsg::Error { ename: s("file does not exist"), errno: 2 });
}
