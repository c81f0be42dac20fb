//! The ramfs example against clients no one here wrote — Debian's diod
//! tools (9P2000.L) and sminez's `ninep` crate (9P2000) — and against our
//! own client in all three dialects.

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use common::ramfs;
use common::tools::require_tool;
use ninep::client::{Client, Options};
use ninep::{Dialect, DMDIR};
use tokio::process::Command;

/// Runs a command to completion within the deadline; returns its stdout.
async fn run(cmd: &mut Command, deadline: std::time::Duration) -> String {
    let what = format!("{cmd:?}");
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true).spawn();
    let child = child.unwrap_or_else(|e| panic!("{what}: {e}"));
    let out = tokio::time::timeout(deadline, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {deadline:?}"))
        .expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{what} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[tokio::test]
async fn diod_tools_list_and_read() {
    let srv = ramfs().await;
    let addr = srv.addr.to_string();
    let ls = run(Command::new(require_tool("diodls")).args(["-s", &addr, "-l", "/"]), common::DEADLINE).await;
    assert!(ls.lines().any(|l| l.ends_with(" hello") && l.starts_with("-rw-rw-rw-")), "diodls -l /: {ls}");
    let cat = run(Command::new(require_tool("diodcat")).args(["-s", &addr, "hello"]), common::DEADLINE).await;
    assert_eq!(cat, "hello, world\n");
}

#[tokio::test]
async fn sminez_client_session() {
    let srv = ramfs().await;
    // At run time: a binary built from another checkout sharing the target
    // directory would carry that checkout's path.
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test"));
    // Its own target directory: this test runs while cargo holds ours.
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| here.join("../target"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = run(
        Command::new(cargo)
            .args(["run", "--quiet", "--locked", "--manifest-path"])
            .arg(here.join("tests/sminez/Cargo.toml"))
            .arg("--")
            .arg(srv.addr.to_string())
            .env("CARGO_TARGET_DIR", target.join("sminez-interop")),
        std::time::Duration::from_secs(600),
    )
    .await;
    assert!(out.contains("sminez-interop: all ok"), "{out}");
}

#[tokio::test]
async fn own_client_in_every_dialect() {
    let srv = ramfs().await;
    for d in [Dialect::P2000, Dialect::P2000U, Dialect::P2000L] {
        let c = Client::connect(srv.addr, Options { dialect: d, ..Options::default() }).await.unwrap();
        assert_eq!(c.dialect(), d);
        assert_eq!(c.read("hello").await.unwrap(), b"hello, world\n");
        let dir = format!("dir-{}", d.version_string());
        c.create(&dir, DMDIR | 0o755).await.unwrap();
        let file = format!("{dir}/f");
        c.create(&file, 0o644).await.unwrap();
        // Larger than one message, so the write and the read span several.
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(c.write(&file, &body).await.unwrap(), body.len() as u64);
        assert_eq!(c.read(&file).await.unwrap(), body);
        let st = c.stat(&file).await.unwrap();
        assert_eq!((st.length, st.name.as_str()), (body.len() as u64, "f"));
        let names: Vec<String> = c.readdir(&dir).await.unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["f"]);
        let err = c.read("nope").await.unwrap_err();
        assert_eq!(err.errno(), Some(ninep::error::errno::ENOENT), "{err}");
        // A small write is one round trip (walk, open, write, clunk sent
        // together): its answer and its errors are those of the steps.
        let small = format!("{dir}/small");
        c.create(&small, 0o644).await.unwrap();
        assert_eq!(c.write(&small, b"small").await.unwrap(), 5);
        assert_eq!(c.read(&small).await.unwrap(), b"small");
        c.remove(&small).await.unwrap();
        let err = c.write(&format!("{dir}/nope/deeper"), b"x").await.unwrap_err();
        assert_eq!(err.errno(), Some(ninep::error::errno::ENOENT), "{err}");
        assert!(c.write(&dir, b"x").await.is_err(), "a directory is not written");
        c.remove(&file).await.unwrap();
        c.remove(&dir).await.unwrap();
        assert!(c.stat(&dir).await.is_err());
    }
}

#[tokio::test]
async fn own_client_runs_requests_concurrently() {
    let srv = ramfs().await;
    let c = Client::connect(srv.addr, Options::default()).await.unwrap();
    let reads = (0..32).map(|_| {
        let c = c.clone();
        tokio::spawn(async move { c.read("hello").await.unwrap() })
    });
    for r in reads {
        assert_eq!(r.await.unwrap(), b"hello, world\n");
    }
}

#[tokio::test]
async fn dropping_the_client_closes_its_connection() {
    struct Count(std::sync::atomic::AtomicI64);
    impl ninep::Observer for Count {
        fn connected(&self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        fn disconnected(&self) {
            self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let count = std::sync::Arc::new(Count(std::sync::atomic::AtomicI64::new(0)));
    let config = ninep::Config { observer: Some(count.clone()), ..Default::default() };
    let srv = common::ramfs_with(config).await;
    let c = Client::connect(srv.addr, Options::default()).await.unwrap();
    common::eventually("the server to see the connection", || count.0.load(std::sync::atomic::Ordering::SeqCst) == 1).await;
    let clone = c.clone();
    drop(c);
    assert_eq!(clone.read("hello").await.unwrap(), b"hello, world\n", "a clone keeps the connection");
    drop(clone);
    common::eventually("the server to see it closed", || count.0.load(std::sync::atomic::Ordering::SeqCst) == 0).await;
}

/// A server that runs pipelined requests out of order, as jobd's did before
/// fid ordering: its first open finds no fid (EBADF), and so does the write
/// behind it. The client's write then clunks the fid its walk made and
/// writes again one step at a time; every fid made is clunked.
#[tokio::test]
async fn a_pipelined_write_falls_back_on_a_server_that_runs_it_out_of_order() {
    use ninep::codec::split_header;
    use ninep::error::errno;
    use ninep::{Qid, Rmsg, Tmsg};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let (mut fids, mut opened, mut opens, mut written) = (std::collections::HashSet::new(), std::collections::HashSet::new(), 0, vec![]);
        let mut dialect = Dialect::P2000;
        loop {
            let mut head = [0u8; 4];
            if s.read_exact(&mut head).await.is_err() {
                return (fids, opens, written);
            }
            let mut frame = vec![0u8; u32::from_le_bytes(head) as usize];
            frame[..4].copy_from_slice(&head);
            s.read_exact(&mut frame[4..]).await.unwrap();
            let (t, tag, body) = split_header(&frame).unwrap();
            let reply = match Tmsg::decode(t, body, dialect).unwrap() {
                Tmsg::Version { msize, .. } => {
                    dialect = Dialect::P2000L;
                    Rmsg::Version { msize, version: "9P2000.L".into() }
                }
                Tmsg::Attach { .. } => Rmsg::Attach { qid: Qid::dir(0) },
                Tmsg::Walk { newfid, wnames, .. } => {
                    fids.insert(newfid);
                    Rmsg::Walk { wqids: wnames.iter().map(|_| Qid::file(1)).collect() }
                }
                Tmsg::Lopen { fid, .. } => {
                    opens += 1;
                    if opens == 1 {
                        Rmsg::Lerror { ecode: errno::EBADF }
                    } else {
                        opened.insert(fid);
                        Rmsg::Lopen { qid: Qid::file(1), iounit: 0 }
                    }
                }
                Tmsg::Write { fid, data, .. } if opened.contains(&fid) => {
                    written.push(data.clone());
                    Rmsg::Write { count: data.len() as u32 }
                }
                Tmsg::Write { .. } => Rmsg::Lerror { ecode: errno::EBADF },
                Tmsg::Clunk { fid } => {
                    fids.remove(&fid);
                    opened.remove(&fid);
                    Rmsg::Clunk
                }
                m => panic!("unexpected {m:?}"),
            };
            s.write_all(&reply.encode(tag, dialect)).await.unwrap();
        }
    });
    let c = Client::connect(addr, Options { dialect: Dialect::P2000L, ..Options::default() }).await.unwrap();
    let wrote = tokio::time::timeout(std::time::Duration::from_secs(10), c.write("clone", b"job:@yearly:true")).await;
    assert_eq!(wrote.expect("answered in time").unwrap(), 16);
    drop(c);
    let (fids, opens, written) = tokio::time::timeout(std::time::Duration::from_secs(10), server).await.expect("client closed").unwrap();
    assert_eq!(opens, 2, "the write was sent again, one step at a time");
    assert_eq!(written, vec![b"job:@yearly:true".to_vec()], "written once");
    assert!(fids.is_empty(), "fids left unclunked: {fids:?}");
}
