//! Requests on one connection run concurrently, in order where they share
//! a fid; Tflush cancels; limits hold.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::slowfs::SlowFs;
use common::{error_of, eventually, serve_fs, Raw};
use ninep::fcall::omode;
use ninep::{Config, Dialect, Rmsg, Tmsg};

async fn slow_server(config: Config) -> (common::Server, Arc<SlowFs>) {
    let fs = Arc::new(SlowFs::default());
    (serve_fs(fs.clone(), config).await, fs)
}

async fn open(c: &mut Raw, fid: u32, name: &str) {
    assert!(matches!(c.walk(0, fid, &[name]).await, Rmsg::Walk { .. }));
    assert!(matches!(c.rpc(1, Tmsg::Open { fid, mode: omode::OREAD }).await, Rmsg::Open { .. }));
}

#[tokio::test]
async fn a_slow_read_does_not_block_a_stat() {
    let (srv, fs) = slow_server(Config::default()).await;
    let mut c = Raw::session(srv.addr, Dialect::P2000).await;
    open(&mut c, 1, "slow").await;
    c.send(10, Tmsg::Read { fid: 1, offset: 0, count: 100 }).await;
    eventually("the slow read to start", || fs.started.load(Ordering::SeqCst) == 1).await;
    let r = c.rpc(11, Tmsg::Stat { fid: 0 }).await;
    assert!(matches!(r, Rmsg::Stat { .. }));
}

#[tokio::test]
async fn tflush_cancels_and_the_flushed_request_is_never_answered() {
    let (srv, fs) = slow_server(Config::default()).await;
    let mut c = Raw::session(srv.addr, Dialect::P2000).await;
    open(&mut c, 1, "slow").await;
    c.send(10, Tmsg::Read { fid: 1, offset: 0, count: 100 }).await;
    eventually("the slow read to start", || fs.started.load(Ordering::SeqCst) == 1).await;
    assert_eq!(c.rpc(11, Tmsg::Flush { oldtag: 10 }).await, Rmsg::Flush);
    assert_eq!(fs.cancelled.load(Ordering::SeqCst), 1, "the read's future was dropped before Rflush");
    // Tag 10 is free again and the next reply is for the next request, not the flushed one.
    open(&mut c, 2, "fast").await;
    assert_eq!(c.rpc(10, Tmsg::Read { fid: 2, offset: 0, count: 100 }).await, Rmsg::Read { data: b"fast".to_vec() });
}

#[tokio::test]
async fn flushing_an_unknown_tag_answers_rflush() {
    let (srv, _fs) = slow_server(Config::default()).await;
    for d in [Dialect::P2000, Dialect::P2000L] {
        let mut c = Raw::session(srv.addr, d).await;
        assert_eq!(c.rpc(5, Tmsg::Flush { oldtag: 4242 }).await, Rmsg::Flush);
    }
}

#[tokio::test]
async fn tversion_aborts_outstanding_requests() {
    let (srv, fs) = slow_server(Config::default()).await;
    let mut c = Raw::session(srv.addr, Dialect::P2000).await;
    open(&mut c, 1, "slow").await;
    c.send(10, Tmsg::Read { fid: 1, offset: 0, count: 100 }).await;
    eventually("the slow read to start", || fs.started.load(Ordering::SeqCst) == 1).await;
    let r = c.rpc(ninep::NOTAG, Tmsg::Version { msize: 8192, version: "9P2000".into() }).await;
    assert!(matches!(r, Rmsg::Version { .. }), "the next frame is Rversion, not the aborted Rread: {r:?}");
    assert_eq!(fs.cancelled.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_in_use_tag_is_refused() {
    let (srv, fs) = slow_server(Config::default()).await;
    let mut c = Raw::session(srv.addr, Dialect::P2000).await;
    open(&mut c, 1, "slow").await;
    c.send(10, Tmsg::Read { fid: 1, offset: 0, count: 100 }).await;
    eventually("the slow read to start", || fs.started.load(Ordering::SeqCst) == 1).await;
    let r = c.rpc(10, Tmsg::Stat { fid: 0 }).await;
    assert_eq!(error_of(&r).unwrap().0, "duplicate tag");
}

#[tokio::test]
async fn outstanding_requests_are_limited() {
    let (srv, fs) = slow_server(Config { max_outstanding: 4, ..Config::default() }).await;
    let mut c = Raw::session(srv.addr, Dialect::P2000).await;
    open(&mut c, 1, "slow").await;
    for tag in 10..14 {
        c.send(tag, Tmsg::Read { fid: 1, offset: 0, count: 100 }).await;
    }
    eventually("four slow reads", || fs.started.load(Ordering::SeqCst) == 4).await;
    let r = c.rpc(20, Tmsg::Stat { fid: 0 }).await;
    assert_eq!(error_of(&r).unwrap().0, ninep::error::reason::TOO_MANY_REQUESTS);
    // Flushing one makes room.
    assert_eq!(c.rpc(21, Tmsg::Flush { oldtag: 10 }).await, Rmsg::Flush);
    assert!(matches!(c.rpc(22, Tmsg::Stat { fid: 0 }).await, Rmsg::Stat { .. }));
}

#[tokio::test]
async fn fids_are_limited() {
    let (srv, _fs) = slow_server(Config { max_fids: 3, ..Config::default() }).await;
    let mut c = Raw::session(srv.addr, Dialect::P2000).await;
    assert!(matches!(c.walk(0, 1, &[]).await, Rmsg::Walk { .. }));
    assert!(matches!(c.walk(0, 2, &[]).await, Rmsg::Walk { .. }));
    let r = c.walk(0, 3, &[]).await;
    assert_eq!(error_of(&r).unwrap().0, ninep::error::reason::TOO_MANY_FIDS);
    c.rpc(1, Tmsg::Clunk { fid: 2 }).await;
    assert!(matches!(c.walk(0, 3, &[]).await, Rmsg::Walk { .. }));
}

#[tokio::test]
async fn connections_are_limited() {
    let (srv, _fs) = slow_server(Config { max_connections: 1, ..Config::default() }).await;
    let mut first = Raw::session(srv.addr, Dialect::P2000).await;
    let mut second = Raw::connect(srv.addr).await;
    let r = second.rpc(ninep::NOTAG, Tmsg::Version { msize: 8192, version: "9P2000".into() }).await;
    assert_eq!(error_of(&r).unwrap().0, ninep::error::reason::TOO_MANY_CONNECTIONS);
    assert!(second.closed().await);
    assert!(matches!(first.rpc(2, Tmsg::Stat { fid: 0 }).await, Rmsg::Stat { .. }));
}

/// What Linux sends for `echo > file` on a legacy (9P2000) mount: a Twstat
/// with length 0 and mtime. A file system with the default wstat accepts it.
#[tokio::test]
async fn legacy_truncate_reaches_a_default_wstat_as_truncation() {
    let (srv, _fs) = slow_server(Config::default()).await;
    for d in [Dialect::P2000, Dialect::P2000U] {
        let mut c = Raw::session(srv.addr, d).await;
        c.walk(0, 1, &["fast"]).await;
        // Decoded in 9P2000, the .u-only numeric ids read as 0.
        let stat = ninep::Stat { length: 0, mtime: 1_795_850_699, n_uid: 0, n_gid: 0, n_muid: 0, ..ninep::Stat::dont_touch() };
        let stat = if d == Dialect::P2000 { stat } else { ninep::Stat { n_uid: u32::MAX, n_gid: u32::MAX, n_muid: u32::MAX, ..stat } };
        assert_eq!(c.rpc(1, Tmsg::Wstat { fid: 1, stat }).await, Rmsg::Wstat, "{d:?}");
    }
}

/// A bug in a callback must not wedge a client: the request is answered
/// (EIO, with a reason in .u), its tag is free again, and the session and
/// the other requests on it go on.
#[tokio::test]
async fn a_panicking_callback_is_answered_with_eio_and_frees_its_tag() {
    let (srv, _fs) = slow_server(Config { max_outstanding: 4, ..Config::default() }).await;
    for d in [Dialect::P2000U, Dialect::P2000L] {
        let mut c = Raw::session(srv.addr, d).await;
        let mode = if d == Dialect::P2000L { 0 } else { omode::OREAD as u32 };
        assert!(matches!(c.walk(0, 1, &["panic"]).await, Rmsg::Walk { .. }));
        let opened = if d == Dialect::P2000L { Tmsg::Lopen { fid: 1, flags: mode } } else { Tmsg::Open { fid: 1, mode: mode as u8 } };
        assert!(matches!(c.rpc(1, opened).await, Rmsg::Open { .. } | Rmsg::Lopen { .. }));
        // More panics than the request limit: each frees its slot, or the
        // fifth would be refused with "too many outstanding requests".
        for _ in 0..6 {
            let r = c.rpc(10, Tmsg::Read { fid: 1, offset: 0, count: 100 }).await;
            let (reason, errno) = error_of(&r).expect("an error reply");
            assert_eq!(errno, ninep::error::errno::EIO, "{d:?}: {r:?}");
            if d == Dialect::P2000U {
                assert_eq!(reason, ninep::error::reason::INTERNAL);
            }
        }
        // The session goes on: another file, on the same tag.
        assert!(matches!(c.walk(0, 2, &["fast"]).await, Rmsg::Walk { .. }));
        let opened = if d == Dialect::P2000L { Tmsg::Lopen { fid: 2, flags: mode } } else { Tmsg::Open { fid: 2, mode: mode as u8 } };
        assert!(matches!(c.rpc(1, opened).await, Rmsg::Open { .. } | Rmsg::Lopen { .. }));
        assert_eq!(c.rpc(10, Tmsg::Read { fid: 2, offset: 0, count: 100 }).await, Rmsg::Read { data: b"fast".to_vec() });
    }
}

/// A client may send Twalk to a new fid, Topen, Twrite and Tclunk in one
/// write, without waiting: each runs after the one before it on that fid,
/// however long the walk and the open take.
#[tokio::test]
async fn pipelined_requests_on_a_fresh_fid_run_in_order() {
    let (srv, _fs) = slow_server(Config::default()).await;
    for d in [Dialect::P2000, Dialect::P2000L] {
        let mut c = Raw::session(srv.addr, d).await;
        let open = if d == Dialect::P2000L { Tmsg::Lopen { fid: 1, flags: 1 } } else { Tmsg::Open { fid: 1, mode: omode::OWRITE } };
        let mut bytes = vec![];
        for (tag, m) in [
            (10, Tmsg::Walk { fid: 0, newfid: 1, wnames: vec!["lazy".into()] }),
            (11, open),
            (12, Tmsg::Write { fid: 1, offset: 0, data: b"hello".to_vec() }),
            (13, Tmsg::Clunk { fid: 1 }),
        ] {
            bytes.extend(m.encode(tag, d));
        }
        c.send_bytes(&bytes).await;
        let mut replies = std::collections::BTreeMap::new();
        for _ in 0..4 {
            let (tag, r) = c.recv().await;
            replies.insert(tag, r);
        }
        assert!(matches!(&replies[&10], Rmsg::Walk { wqids } if wqids.len() == 1), "{d:?}: {replies:?}");
        assert!(matches!(replies[&11], Rmsg::Open { .. } | Rmsg::Lopen { .. }), "{d:?}: {replies:?}");
        assert_eq!(replies[&12], Rmsg::Write { count: 5 }, "{d:?}: {replies:?}");
        assert_eq!(replies[&13], Rmsg::Clunk, "{d:?}: {replies:?}");
        // The fid is gone after the pipelined clunk; a walk that fails
        // makes no fid, so what was sent after it fails too.
        let mut bytes = vec![];
        for (tag, m) in [
            (20, Tmsg::Walk { fid: 0, newfid: 1, wnames: vec!["nothing".into()] }),
            (21, Tmsg::Stat { fid: 1 }),
            (22, Tmsg::Clunk { fid: 1 }),
        ] {
            bytes.extend(m.encode(tag, d));
        }
        c.send_bytes(&bytes).await;
        for _ in 0..3 {
            let (tag, r) = c.recv().await;
            assert!(error_of(&r).is_some(), "{d:?}: tag {tag} answered {r:?}");
        }
    }
}

/// Requests that only use an open fid still run side by side; one that
/// ends it waits for those before it (here until the slow read is flushed).
#[tokio::test]
async fn a_clunk_waits_for_the_requests_before_it_on_its_fid() {
    let (srv, fs) = slow_server(Config::default()).await;
    let mut c = Raw::session(srv.addr, Dialect::P2000).await;
    open(&mut c, 1, "slow").await;
    c.send(10, Tmsg::Read { fid: 1, offset: 0, count: 100 }).await;
    eventually("the slow read to start", || fs.started.load(Ordering::SeqCst) == 1).await;
    assert!(matches!(c.rpc(11, Tmsg::Stat { fid: 1 }).await, Rmsg::Stat { .. }), "a stat of the same fid is not held");
    c.send(12, Tmsg::Clunk { fid: 1 }).await;
    let early = tokio::time::timeout(std::time::Duration::from_millis(200), c.recv()).await;
    assert!(early.is_err(), "the clunk was answered while the read on its fid ran: {early:?}");
    c.send(13, Tmsg::Flush { oldtag: 10 }).await;
    let mut got = vec![c.recv().await, c.recv().await];
    got.sort_by_key(|(tag, _)| *tag);
    assert_eq!(got, vec![(12, Rmsg::Clunk), (13, Rmsg::Flush)]);
}
