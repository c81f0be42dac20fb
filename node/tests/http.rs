//! The tree over HTTP, driven by `curl` as a user would, against three
//! nodes in one process, each serving HTTP beside 9P: every method, the
//! errno classes as statuses, writes through a follower read back there,
//! the body limit, paths that try to leave the tree, tokens, and the Host
//! and Origin checks.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

use common::{eventually, Cluster};
use tokio::net::TcpListener;

/// Serves node `i`'s tree over HTTP on a port-0 listener.
async fn serve_http(c: &Cluster, i: usize, guard: node::http::Guard) -> SocketAddr {
    serve_http_within(c, i, guard, node::http::Bounds::default()).await
}

/// `serve_http`, with the listener's bounds given.
async fn serve_http_within(
    c: &Cluster,
    i: usize,
    guard: node::http::Guard,
    bounds: node::http::Bounds,
) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let mut fs = c.node(i).tree();
    fs.max_write = 1024;
    tokio::spawn(node::http::serve(
        l,
        Arc::new(fs),
        guard,
        1024,
        bounds,
        std::future::pending(),
    ));
    addr
}

/// `curl` with `args`, answering the status and the body.
async fn curl(args: &[&str]) -> (u16, String) {
    let curl = common::tools::require_tool("curl");
    let mut cmd = Command::new(curl);
    cmd.args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"])
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        code.trim().parse().unwrap_or_else(|_| {
            panic!(
                "curl {args:?}: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        }),
        body.to_string(),
    )
}

/// A GET of `url`: the body and `X-Jobd-Next-Offset`.
async fn read_on(url: &str) -> (String, u64) {
    // This -w replaces `curl`'s own, so it ends with the status as that one does.
    let (code, out) = curl(&["-w", "\n%header{x-jobd-next-offset}\n%{http_code}", url]).await;
    assert_eq!(code, 200, "{url}: {out}");
    let (body, next) = out.rsplit_once('\n').unwrap_or(("", &out));
    (
        body.to_string(),
        next.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{url}: no next offset in {out:?}")),
    )
}

/// Waits until job `name` has `n` runs ended `exit 0`.
async fn runs_ended(at: SocketAddr, name: &str, n: usize) {
    let runs = url(at, &format!("/jobs/{name}/runs"));
    common::poll::poll(
        "the runs to end",
        common::DEADLINE,
        std::time::Duration::from_millis(100),
        async || (curl(&[&runs]).await.1.matches("exit 0").count() >= n).then_some(()),
    )
    .await;
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_does_what_a_9p_client_does_through_any_node() {
    let c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    let follower = (leader + 1) % 3;
    let at = serve_http(&c, follower, node::http::Guard::default()).await;
    // Created through a follower, answered once applied there.
    let (code, body) = curl(&[
        "--data-binary",
        "nightly:0 0 3 * * *:echo hello",
        &url(at, "/clone"),
    ])
    .await;
    assert_eq!((code, body.as_str()), (201, "nightly\n"));
    assert_eq!(
        curl(&[&url(at, "/jobs/nightly/cmd")]).await,
        (200, "echo hello\n".into())
    );
    assert_eq!(
        curl(&[
            "-X",
            "PUT",
            "--data-binary",
            "echo bye",
            &url(at, "/jobs/nightly/cmd")
        ])
        .await
        .0,
        204
    );
    assert_eq!(curl(&[&url(at, "/jobs/nightly/cmd")]).await.1, "echo bye\n");
    assert_eq!(
        curl(&["--data-binary", "start", &url(at, "/jobs/nightly/ctl")])
            .await
            .0,
        204
    );
    let (code, listing) = curl(&[&url(at, "/jobs/")]).await;
    assert_eq!((code, listing.as_str()), (200, "nightly/\n"));
    let (code, json) = curl(&["-H", "Accept: application/json", &url(at, "/jobs")]).await;
    assert_eq!(code, 200);
    let jobs: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(jobs[0]["name"], "nightly");
    assert_eq!(jobs[0]["state"], "started", "{json}");
    assert!(
        jobs[0]["next"]
            .as_str()
            .is_some_and(|n| n.contains("03:00:00")),
        "{json}"
    );
    // The log from a logical offset, and where to go on from.
    let (_, log) = curl(&[&url(at, "/jobs/nightly/log")]).await;
    let (code, tail) = curl(&[&url(at, "/jobs/nightly/log?offset=5")]).await;
    assert_eq!((code, tail.as_str()), (200, log.get(5..).unwrap_or("")));
    // Another node serves the same job; the root lists the tree.
    let other = serve_http(&c, leader, node::http::Guard::default()).await;
    assert_eq!(
        curl(&[&url(other, "/jobs/nightly/schedule")])
            .await
            .1
            .lines()
            .next(),
        Some("0 0 3 * * *")
    );
    assert_eq!(curl(&[&url(other, "/")]).await.1, "clone\nctl\nevents\njobs/\n");
    assert_eq!(
        curl(&["-X", "DELETE", &url(at, "/jobs/nightly")]).await.0,
        204
    );
    assert_eq!(curl(&[&url(at, "/jobs/nightly/cmd")]).await.0, 404);
    eventually("the delete on every node", || {
        (!c.has_job(leader, "nightly")).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refusal_has_its_status_and_one_line_reason() {
    let mut c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    let at = serve_http(&c, leader, node::http::Guard::default()).await;
    assert_eq!(
        curl(&["--data-binary", "a:* * * * *:true", &url(at, "/clone")])
            .await
            .0,
        201
    );
    let (code, reason) = curl(&["--data-binary", "b:not cron:true", &url(at, "/clone")]).await;
    assert_eq!(code, 400, "a bad expression: {reason}");
    assert_eq!(reason.lines().count(), 1, "one line: {reason:?}");
    assert_eq!(
        curl(&["--data-binary", "a:* * * * *:true", &url(at, "/clone")])
            .await
            .0,
        409,
        "exists"
    );
    assert_eq!(curl(&[&url(at, "/jobs/nope/cmd")]).await.0, 404);
    assert_eq!(
        curl(&["--data-binary", "x", &url(at, "/jobs/a/log")])
            .await
            .0,
        403,
        "log is read-only"
    );
    assert_eq!(
        curl(&["--data-binary", "x", &url(at, "/jobs/a")]).await.0,
        400,
        "a directory"
    );
    assert_eq!(
        curl(&["--data-binary", "frobnicate", &url(at, "/jobs/a/ctl")])
            .await
            .0,
        400,
        "an unknown verb"
    );
    assert_eq!(
        curl(&["--path-as-is", &url(at, "/jobs/../ctl")]).await.0,
        400,
        "a path that leaves its directory"
    );
    assert_eq!(
        curl(&["--path-as-is", &url(at, "/jobs/a/%2e%2e/a")])
            .await
            .0,
        400
    );
    assert_eq!(
        curl(&["-X", "DELETE", &url(at, "/jobs/a/cmd")]).await.0,
        400,
        "only a job's directory is deleted"
    );
    assert_eq!(curl(&["-X", "PATCH", &url(at, "/jobs/a/cmd")]).await.0, 405);
    let big = "x".repeat(2000);
    let (code, reason) = curl(&["-X", "PUT", "--data-binary", &big, &url(at, "/jobs/a/cmd")]).await;
    assert_eq!(code, 413, "{reason}");
    assert_eq!(
        curl(&[&url(at, "/jobs/a/cmd")]).await.1,
        "true\n",
        "the refused write changed nothing"
    );
    // No quorum: nothing done (503, Retry-After) or not known in time (504).
    for i in (0..3).filter(|i| *i != leader) {
        c.stop(i).await;
    }
    let (code, reason) = curl(&["--data-binary", "c:* * * * *:true", &url(at, "/clone")]).await;
    assert!(code == 503 || code == 504, "{code} {reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_hosts_and_origins_are_checked_before_the_tree() {
    let c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    let guard = node::http::Guard {
        token: Some("s3cret".into()),
        read_token: None,
        hosts: vec![],
    };
    let at = serve_http(&c, leader, guard).await;
    let (code, reason) = curl(&["--data-binary", "t:* * * * *:true", &url(at, "/clone")]).await;
    assert_eq!(code, 401, "{reason}");
    assert!(!c.has_job(leader, "t"), "a refused request changed nothing");
    let auth = ["-H", "Authorization: Bearer s3cret"];
    assert_eq!(
        curl(&[
            auth[0],
            auth[1],
            "--data-binary",
            "t:* * * * *:true",
            &url(at, "/clone")
        ])
        .await
        .0,
        201
    );
    assert_eq!(
        curl(&[&url(at, "/jobs/t/cmd")]).await.0,
        200,
        "reads need no token without --http-read-token"
    );
    let evil_host = ["-H", "Host: evil.example"];
    assert_eq!(
        curl(&[evil_host[0], evil_host[1], &url(at, "/jobs/t/cmd")])
            .await
            .0,
        403,
        "DNS rebinding"
    );
    let origin = ["-H", "Origin: http://evil.example"];
    let (code, _) = curl(&[
        auth[0],
        auth[1],
        origin[0],
        origin[1],
        "--data-binary",
        "stop",
        &url(at, "/jobs/t/ctl"),
    ])
    .await;
    assert_eq!(code, 403, "a page elsewhere");
}

/// A log past its retention limit is served from its oldest kept line, and
/// `X-Jobd-Next-Offset` is the logical offset after what was served, so a
/// client that reads on from it sees each line once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trimmed_log_is_read_on_from_its_logical_end() {
    let c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    let at = serve_http(&c, leader, node::http::Guard::default()).await;
    assert_eq!(
        curl(&["--data-binary", "limit log-bytes 4096", &url(at, "/ctl")])
            .await
            .0,
        204
    );
    assert_eq!(
        curl(&[
            "--data-binary",
            "chatty:0 0 3 * * *:seq 1 300",
            &url(at, "/clone")
        ])
        .await
        .0,
        201
    );
    assert_eq!(
        curl(&["--data-binary", "run", &url(at, "/jobs/chatty/ctl")])
            .await
            .0,
        204
    );
    runs_ended(at, "chatty", 1).await;
    let log = url(at, "/jobs/chatty/log");
    let (kept, end) = read_on(&log).await;
    assert!(
        kept.len() <= 4096 && end > kept.len() as u64 + 4096,
        "trimmed: {} bytes kept of {end}",
        kept.len()
    );
    assert!(
        kept.lines().last().is_some_and(|l| l.contains("exit 0")),
        "{kept}"
    );
    let at_end = format!("{log}?offset={end}");
    assert_eq!(
        read_on(&at_end).await,
        (String::new(), end),
        "nothing past the end"
    );
    assert_eq!(
        curl(&[
            "-X",
            "PUT",
            "--data-binary",
            "echo again",
            &url(at, "/jobs/chatty/cmd")
        ])
        .await
        .0,
        204
    );
    assert_eq!(
        curl(&["--data-binary", "run", &url(at, "/jobs/chatty/ctl")])
            .await
            .0,
        204
    );
    runs_ended(at, "chatty", 2).await;
    let (new, _) = read_on(&at_end).await;
    assert_eq!(
        new.lines().count(),
        3,
        "the second run's lines, once each: {new}"
    );
    assert!(
        new.lines()
            .next()
            .is_some_and(|l| l.contains("started run"))
            && new.contains(":again\n"),
        "{new}"
    );
}

/// `?follow=1` sends the log as it is, then each line as it is appended,
/// and ends when the job is deleted; `?tail=N` starts at a line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_log_sends_new_lines_and_ends_with_its_job() {
    use tokio::io::AsyncReadExt;
    let c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    let at = serve_http(&c, (leader + 1) % 3, node::http::Guard::default()).await;
    assert_eq!(
        curl(&[
            "--data-binary",
            "echo:0 0 3 * * *:echo line-$JOBD_RUN_ID",
            &url(at, "/clone")
        ])
        .await
        .0,
        201
    );
    assert_eq!(
        curl(&["--data-binary", "run", &url(at, "/jobs/echo/ctl")])
            .await
            .0,
        204
    );
    runs_ended(at, "echo", 1).await;
    let (log, _) = read_on(&url(at, "/jobs/echo/log")).await;
    let (tail, _) = read_on(&url(at, "/jobs/echo/log?tail=150")).await;
    assert!(
        !tail.is_empty() && tail.len() <= 150 && log.ends_with(&tail),
        "{tail:?} of {log:?}"
    );
    let from = log.len() - tail.len();
    assert!(
        from > 0 && log.as_bytes()[from - 1] == b'\n',
        "from a line's start: {tail:?} of {log:?}"
    );
    assert_eq!(
        curl(&[&url(at, "/jobs/echo/log?tail=1&offset=3")]).await.0,
        400,
        "tail and offset both"
    );
    // The Range header, the standard spelling of the same.
    let log_url = url(at, "/jobs/echo/log");
    let ranged = async |range: &str| {
        let range = format!("Range: bytes={range}");
        let w = "\n%header{content-range}\n%{http_code}";
        curl(&["-H", &range, "-w", w, &log_url]).await
    };
    let (code, out) = ranged("5-9").await;
    assert_eq!((code, out), (206, format!("{}\nbytes 5-9/*", &log[5..10])));
    let (code, out) = ranged("-10").await;
    let from = log.len() - 10;
    let want = format!("{}\nbytes {from}-{}/*", &log[from..], log.len() - 1);
    assert_eq!((code, out), (206, want));
    let (code, out) = ranged(&format!("{}-", log.len())).await;
    let want = format!(
        "nothing there: the file ends at {0}\n\nbytes */{0}",
        log.len()
    );
    assert_eq!((code, out), (416, want));
    let (code, out) = ranged(&format!("{}-", log.len() + 1000)).await;
    assert_eq!(code, 416);
    assert!(
        out.ends_with(&format!("bytes */{}", log.len())),
        "the log's end, not the start asked: {out}"
    );
    let cmd_follow = url(at, "/jobs/echo/cmd?follow=1");
    assert_eq!(curl(&[&cmd_follow]).await.0, 400, "only a log grows");

    let mut follow = tokio::process::Command::new(common::tools::require_tool("curl"))
        .args([
            "-sSN",
            "--max-time",
            "60",
            &url(at, "/jobs/echo/log?follow=1"),
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("curl runs");
    let mut out = follow.stdout.take().unwrap();
    let mut seen = String::new();
    let mut read_until = async |what: &str, seen: &mut String| {
        let mut buf = [0u8; 4096];
        tokio::time::timeout(common::DEADLINE, async {
            while !seen.contains(what) {
                let n = out.read(&mut buf).await.unwrap();
                assert!(n > 0, "the stream ended before {what:?}: {seen}");
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {what:?} in time: {seen}"));
    };
    read_until(&log, &mut seen).await;
    assert!(seen.starts_with(&log), "the log as it was first: {seen}");
    assert_eq!(
        curl(&["--data-binary", "run", &url(at, "/jobs/echo/ctl")])
            .await
            .0,
        204
    );
    runs_ended(at, "echo", 2).await;
    let runs = curl(&[&url(at, "/jobs/echo/runs")]).await.1;
    let second = runs
        .lines()
        .nth(1)
        .and_then(|l| l.split(' ').next())
        .unwrap()
        .to_string();
    read_until(&format!(":line-{second}\n"), &mut seen).await;
    assert_eq!(
        seen.matches("started run").count(),
        2,
        "each line once: {seen}"
    );
    // Deleted and at once created again: another job, another log.
    assert_eq!(curl(&["-X", "DELETE", &url(at, "/jobs/echo")]).await.0, 204);
    let again = "echo:0 0 3 * * *:echo again";
    assert_eq!(
        curl(&["--data-binary", again, &url(at, "/clone")]).await.0,
        201
    );
    let status = tokio::time::timeout(common::DEADLINE, follow.wait())
        .await
        .expect("the stream ends with its job, not follow its successor")
        .unwrap();
    assert!(status.success(), "a clean end: {status}");
}

/// The dashboard's page and assets are served without a token (they hold
/// no data) but under the Host check; the tree behind them still asks for
/// one. `?limit=` pages the JSON listing, which names each expression.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_served_and_the_tree_behind_it_keeps_its_guard() {
    let c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    let guard = node::http::Guard {
        token: Some("w".into()),
        read_token: Some("r".into()),
        hosts: vec![],
    };
    let at = serve_http(&c, leader, guard).await;
    let html = ["-H", "Accept: text/html,*/*;q=0.8"];
    let (code, page) = curl(&[html[0], html[1], &url(at, "/")]).await;
    assert_eq!(code, 200);
    assert!(page.contains("<script src=\"/-/app.js\""), "{page}");
    let (code, headers) = curl(&["-sI", html[0], html[1], &url(at, "/")]).await;
    assert_eq!(code, 200);
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'"),
        "{headers}"
    );
    assert_eq!(curl(&[&url(at, "/-/app.js")]).await.0, 200);
    assert_eq!(curl(&[&url(at, "/-/style.css")]).await.0, 200);
    assert_eq!(curl(&[&url(at, "/-/other.js")]).await.0, 404);
    assert_eq!(
        curl(&["-H", "Host: evil.example", html[0], html[1], &url(at, "/")])
            .await
            .0,
        403
    );
    assert_eq!(
        curl(&[&url(at, "/")]).await.0,
        401,
        "the root's listing needs the read token"
    );
    assert_eq!(curl(&[&url(at, "/ctl")]).await.0, 401);

    let (r, w) = (
        ["-H", "Authorization: Bearer r"],
        ["-H", "Authorization: Bearer w"],
    );
    for name in ["a", "b", "c"] {
        let clone = format!("{name}:0 0 3 * * *:true");
        assert_eq!(
            curl(&[w[0], w[1], "--data-binary", &clone, &url(at, "/clone")])
                .await
                .0,
            201
        );
    }
    let page = async |q: &str| {
        let u = url(at, q);
        curl(&[
            r[0],
            r[1],
            "-H",
            "Accept: application/json",
            "-w",
            "\n%header{x-jobd-after}\n%{http_code}",
            &u,
        ])
        .await
    };
    let (code, out) = page("/jobs/?limit=2").await;
    assert_eq!(code, 200, "{out}");
    let (body, after) = out.rsplit_once('\n').unwrap();
    let first: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!((first.as_array().unwrap().len(), after), (2, "b"), "{out}");
    assert_eq!(first[0]["schedule"], "0 0 3 * * *");
    let (_, out) = page("/jobs/?limit=2&after=b").await;
    let (body, after) = out.rsplit_once('\n').unwrap();
    let rest: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        (
            rest[0]["name"].as_str(),
            rest.as_array().unwrap().len(),
            after
        ),
        (Some("c"), 1, "")
    );
    assert_eq!(page("/jobs/?limit=0").await.0, 400);
}

/// A connection that never finishes its request's head is closed after
/// the header timeout, and one beyond the connection bound at once, so
/// silent clients cannot take the node's descriptors; then the freed
/// slots serve again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_and_bounded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    let bounds = node::http::Bounds {
        max_connections: 3,
        header_timeout: std::time::Duration::from_secs(1),
    };
    let at = serve_http_within(&c, leader, node::http::Guard::default(), bounds).await;
    let mut silent = vec![];
    for _ in 0..3 {
        let mut s = tokio::net::TcpStream::connect(at).await.unwrap();
        s.write_all(b"GET /ctl HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        silent.push(s);
    }
    // Let the server accept all three before the fourth.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let closed = async |s: &mut tokio::net::TcpStream, within: std::time::Duration| {
        let mut buf = [0u8; 256];
        match tokio::time::timeout(within, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(_)) => true, // an error answer, then the close
            Err(_) => false,
        }
    };
    let mut fourth = tokio::net::TcpStream::connect(at).await.unwrap();
    assert!(
        closed(&mut fourth, std::time::Duration::from_millis(500)).await,
        "one past the bound is closed at once"
    );
    for s in &mut silent {
        assert!(
            closed(s, common::DEADLINE).await,
            "a silent connection is closed after the header timeout"
        );
    }
    common::poll::poll(
        "a slot free again",
        common::DEADLINE,
        std::time::Duration::from_millis(100),
        async || (curl(&[&url(at, "/ctl")]).await.0 == 200).then_some(()),
    )
    .await;
}
