//! Runs a session of sminez's 9P2000 client against a server holding
//! `hello` = "hello, world\n"; exits 0 when every step saw what it should.
//!
//! Order matters: this client lists a directory by opening the fid it has
//! cached for it (fid 0 for `/`) and later walks from that same fid, which
//! intro(5) forbids and our server refuses. So `/` is listed last.

use ninep::fs::{Mode, Perm};
use ninep::sync::client::Client;

fn check(what: &str, ok: bool) {
    if !ok {
        eprintln!("sminez-interop: FAILED: {what}");
        std::process::exit(1);
    }
    println!("sminez-interop: ok: {what}");
}

fn names(c: &Client, dir: &str) -> Vec<String> {
    c.read_dir(dir).expect("read dir").into_iter().map(|s| s.name).collect()
}

fn main() {
    let addr = std::env::args().nth(1).expect("usage: sminez-interop HOST:PORT");
    let c = Client::new_tcp("glenda", addr.as_str(), "").expect("connect and attach");
    check("read hello", c.read_str("hello").ok().as_deref() == Some("hello, world\n"));
    check("stat hello", c.stat("hello").map(|s| s.n_bytes).ok() == Some(13));
    c.create("/", "made", Perm::OWNER_READ | Perm::OWNER_WRITE, Mode::WRITE).expect("create made");
    c.clunk_path("made").expect("clunk made");
    let n = c.write("made", 0, b"written by sminez").expect("write made");
    check("write made", n == 17);
    c.clunk_path("made").expect("clunk made");
    check("read made back", c.read_str("made").ok().as_deref() == Some("written by sminez"));
    c.clunk_path("made").expect("clunk made");
    let dir = Perm::DIRECTORY | Perm::OWNER_READ | Perm::OWNER_WRITE | Perm::OWNER_EXEC;
    c.create("/", "sub", dir, Mode::READ).expect("create sub");
    c.clunk_path("sub").expect("clunk sub");
    check("new directory is empty", names(&c, "sub").is_empty());
    c.remove("made").expect("remove made");
    check("missing file is an error", c.read("nope").is_err());
    let root = names(&c, "/");
    check("list / shows hello and sub, not made", root.contains(&"hello".into()) && root.contains(&"sub".into()) && !root.contains(&"made".into()));
    println!("sminez-interop: all ok");
}
