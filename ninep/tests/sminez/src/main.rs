//! Runs a session of sminez's 9P2000 client and exits 0 when every step
//! saw what it should: `sminez-interop ADDR` against the ramfs example
//! (`hello` = "hello, world\n"), `sminez-interop jobd ADDR` against jobd
//! (the original jobd's session: clone, start, cmd, schedule, log, stop,
//! delete); `sminez-interop creates ADDR N PREFIX` creates N jobs one after
//! another and prints each create's milliseconds (for `bench --
//! create-clients`).
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

fn jobd(addr: &str) {
    let c = Client::new_tcp("glenda", addr, "").expect("connect and attach");
    let write = |path: &str, text: &str| {
        c.write_str(path, 0, text).unwrap_or_else(|e| panic!("write {path}: {e:?}"));
        c.clunk_path(path).expect("clunk");
    };
    let read = |path: &str| {
        let t = c.read_str(path).unwrap_or_else(|e| panic!("read {path}: {e:?}"));
        c.clunk_path(path).expect("clunk");
        t
    };
    write("clone", "hello:0 0/5 * * * ? *:echo hello world");
    write("jobs/hello/ctl", "start");
    check("cmd", read("jobs/hello/cmd") == "echo hello world\n");
    let schedule = read("jobs/hello/schedule");
    check("schedule: expression, then next time", schedule.starts_with("0 0/5 * * * ? *\n") && schedule.lines().count() == 2);
    check("ctl says started", read("jobs/hello/ctl").starts_with("state started\n"));
    check("log is empty", read("jobs/hello/log").is_empty());
    write("jobs/hello/ctl", "stop");
    check("ctl says stopped", read("jobs/hello/ctl").starts_with("state stopped\n"));
    check("a bad verb is refused", c.write_str("jobs/hello/ctl", 0, "frob").is_err());
    c.clunk_path("jobs/hello/ctl").expect("clunk");
    write("jobs/hello/ctl", "delete");
    check("the job is gone", names(&c, "jobs").is_empty());
    println!("sminez-interop: all ok");
}

/// N creates through `clone`, each a write and a clunk (this client walks
/// and opens on the write), one line of milliseconds each.
fn creates(addr: &str, n: usize, prefix: &str) {
    let c = Client::new_tcp("glenda", addr, "").expect("connect and attach");
    for i in 0..n {
        let t = std::time::Instant::now();
        c.write_str("clone", 0, &format!("{prefix}{i}:@yearly:true")).unwrap_or_else(|e| panic!("create {i}: {e:?}"));
        c.clunk_path("clone").expect("clunk");
        println!("{:.4}", t.elapsed().as_secs_f64() * 1000.0);
    }
}

fn main() {
    let first = std::env::args().nth(1).expect("usage: sminez-interop [jobd|creates] HOST:PORT");
    if first == "creates" {
        let arg = |i: usize| std::env::args().nth(i).expect("usage: sminez-interop creates HOST:PORT N PREFIX");
        return creates(&arg(2), arg(3).parse().expect("a number"), &arg(4));
    }
    if first == "jobd" {
        return jobd(&std::env::args().nth(2).expect("usage: sminez-interop jobd HOST:PORT"));
    }
    let addr = first;
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
