//! Webhooks on a real cluster, against a real HTTP receiver on port 0
//! (`cluster_tests::receiver`): a failed run's end reaches it signed, after
//! the receiver refused it three times; a leader SIGKILLed while
//! deliveries are pending loses none, and duplicates stay within the
//! leader changes; a receiver that never answers delays neither fires nor
//! another receiver's deliveries; HTTPS is checked against the trust store
//! (`SSL_CERT_FILE` names one); bad notify verbs are refused with one line
//! and change nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cluster_tests::cluster::Cluster;
use cluster_tests::poll::poll;
use cluster_tests::receiver::{signed_with, Answer, Receiver};
use ninep::client::{Client, Options};
use ninep::Dialect;

const SECRET: &str = "s3cret-for-the-test";

/// `runs` lines of a job: (run id, start ms, end ms, status); unended runs left out.
fn ended_runs(text: &str) -> Vec<(u64, i64, i64, String)> {
    let ms = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok().map(|t| t.timestamp_millis());
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let status = f.get(6..)?.join(" ");
            if status == "pending" || status == "running" {
                return None;
            }
            Some((f.first()?.parse().ok()?, ms(f.get(4)?).unwrap_or(0), ms(f.get(5)?)?, status))
        })
        .collect()
}

fn ctl_value(ctl: &str, key: &str) -> String {
    ctl.lines().find_map(|l| l.strip_prefix(&format!("{key} "))).unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_run_reaches_the_receiver_signed_once_it_stops_refusing() {
    let rx = Receiver::start(|_, seen| Answer::Status(if seen < 3 { 500 } else { 200 })).await.unwrap();
    let env = vec![("JOBD_NOTIFY_SECRET".to_string(), SECRET.to_string())];
    let c = Cluster::start_with_env(3, |_| env.clone()).await.expect("cluster");
    let leader = c.wait_leader().await.unwrap();
    let fs = c.client((leader + 1) % 3).await.unwrap();
    fs.write("clone", b"f:@yearly:echo starting; echo 'it broke' >&2; exit 3").await.unwrap();
    fs.write("clone", b"ok:@yearly:true").await.unwrap();
    // f names its own receiver; ok takes the cluster's default, failures only.
    fs.write("jobs/f/ctl", format!("notify {}", rx.url()).as_bytes()).await.unwrap();
    fs.write("ctl", format!("notify {} failure", rx.url()).as_bytes()).await.unwrap();
    let ctl = String::from_utf8(fs.read("jobs/f/ctl").await.unwrap()).unwrap();
    assert_eq!(ctl_value(&ctl, "notify"), format!("{} failure", rx.url()), "{ctl}");
    assert_eq!(ctl_value(&String::from_utf8(fs.read("jobs/ok/ctl").await.unwrap()).unwrap(), "notify"), "default");
    fs.write("jobs/ok/ctl", b"run").await.unwrap();
    fs.write("jobs/f/ctl", b"run").await.unwrap();

    let run = poll("f's run to end", Duration::from_secs(10), Duration::from_millis(20), async || {
        ended_runs(&c.read(leader, "jobs/f/runs").await).first().cloned()
    })
    .await;
    assert_eq!(run.3, "exit 3");
    // While the receiver refuses, the delivery is pending and says why.
    let failing = poll("the first refusal to show in f's ctl", Duration::from_secs(10), Duration::from_millis(50), async || {
        let ctl = c.read(leader, "jobs/f/ctl").await;
        (ctl_value(&ctl, "notify-error") != "-").then_some(ctl)
    })
    .await;
    assert_eq!(ctl_value(&failing, "notify-error"), "HTTP 500 Internal Server Error", "{failing}");
    assert_eq!(ctl_value(&failing, "notify-pending"), "1", "{failing}");
    // Backoff 1 s, 2 s, 4 s: the fourth attempt is answered 200.
    poll("the delivery to be answered 200", Duration::from_secs(30), Duration::from_millis(100), async || {
        rx.delivered().contains_key(&run.0).then_some(())
    })
    .await;
    let hits = rx.hits();
    assert_eq!(hits.iter().map(|h| (h.id, h.attempt)).collect::<Vec<_>>(), (1..=4).map(|a| (run.0, a)).collect::<Vec<_>>(), "one delivery, four attempts, nothing for ok's success: {hits:?}");
    for h in &hits {
        assert!(signed_with(SECRET.as_bytes(), h), "attempt {} is signed with the secret: {h:?}", h.attempt);
        assert!(!signed_with(b"another secret", h));
        assert!((h.timestamp * 1000 - h.at_ms).abs() < 5000, "the timestamp is the attempt's: {h:?}");
        assert_eq!(h.body, hits[0].body, "every attempt sends the same document");
    }
    let doc = hits[0].json();
    assert_eq!(doc["delivery"], run.0);
    assert_eq!((doc["job"].as_str(), doc["status"].as_str(), doc["exit_code"].as_i64()), (Some("f"), Some("exit 3"), Some(3)), "{doc}");
    assert_eq!(doc["trigger"], "manual");
    let output: Vec<String> = serde_json::from_value(doc["output"].clone()).unwrap();
    assert!(output.iter().any(|l| l.ends_with("starting")) && output.iter().any(|l| l.ends_with("it broke")), "{output:?}");
    // Gone from every node once delivered.
    for i in 0..3 {
        poll("every node to count it delivered", Duration::from_secs(5), Duration::from_millis(50), async || {
            let ctl = c.read(i, "ctl").await;
            (ctl_value(&ctl, "notify-pending") == "0" && ctl_value(&ctl, "notify-delivered") == "1").then_some(())
        })
        .await;
        let f = c.read(i, "jobs/f/ctl").await;
        assert_eq!((ctl_value(&f, "notify-pending").as_str(), ctl_value(&f, "notify-error").as_str()), ("0", "-"), "{f}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_kill_with_deliveries_pending_loses_none_and_duplicates_at_most_once_per_leader_change() {
    let open = Arc::new(AtomicBool::new(false));
    let gate = open.clone();
    let rx = Receiver::start(move |_, _| Answer::Status(if gate.load(Ordering::SeqCst) { 200 } else { 503 })).await.unwrap();
    let mut c = Cluster::start(3).await.expect("cluster");
    let old = c.wait_leader().await.unwrap();
    let watcher = (old + 1) % 3;
    let fs = c.client(watcher).await.unwrap();
    fs.write("clone", b"tick:* * * * * *:true").await.unwrap();
    fs.write("jobs/tick/ctl", format!("notify {} always\nstart", rx.url()).as_bytes()).await.unwrap();
    // Deliveries pile up while the receiver answers 503...
    poll("five deliveries pending", Duration::from_secs(20), Duration::from_millis(100), async || {
        let n: u64 = ctl_value(&c.read(watcher, "jobs/tick/ctl").await, "notify-pending").parse().unwrap_or(0);
        (n >= 5).then_some(())
    })
    .await;
    // ...the receiver opens and the leader dies at once, mid-stream.
    open.store(true, Ordering::SeqCst);
    c.kill(old).await.unwrap();
    let others: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    let new = c.wait_leader_among(&others).await.unwrap();
    let new_id = (new + 1).to_string();
    poll("a run ended under the new leader", Duration::from_secs(20), Duration::from_millis(100), async || {
        let runs = c.read(new, "jobs/tick/runs").await;
        runs.lines().any(|l| l.split(' ').nth(3) == Some(new_id.as_str()) && l.ends_with("exit 0")).then_some(())
    })
    .await;
    fs.write("jobs/tick/ctl", b"stop").await.unwrap();
    // Every run that ended has its delivery answered 200 at least once.
    // The runs are read before the count: an end read as ended was
    // pending before the count of pending read 0.
    let (ended, delivered) = poll("every delivery to be answered", Duration::from_secs(60), Duration::from_millis(200), async || {
        let runs = c.read(new, "jobs/tick/runs").await;
        if runs.lines().any(|l| l.ends_with(" pending") || l.ends_with(" running")) {
            return None;
        }
        let ctl = c.read(new, "ctl").await;
        (ctl_value(&ctl, "notify-pending") == "0").then(|| (ended_runs(&runs), rx.delivered()))
    })
    .await;
    assert!(ended.len() >= 6, "{ended:?}");
    let missing: Vec<u64> = ended.iter().map(|r| r.0).filter(|id| !delivered.contains_key(id)).collect();
    assert!(missing.is_empty(), "ends never delivered: {missing:?}\n{}", c.log_tails());
    // An attempt answered 200 whose outcome the dying leader could not
    // commit is sent again by the next: once more per leader change, at most.
    let leader_changes = 1;
    let over: HashMap<&u64, &usize> = delivered.iter().filter(|(_, n)| **n > 1 + leader_changes).collect();
    assert!(over.is_empty(), "delivered more than {} times: {over:?}", 1 + leader_changes);
    let extra: HashMap<&u64, &usize> = delivered.iter().filter(|(id, _)| !ended.iter().any(|r| r.0 == **id)).collect();
    assert!(extra.is_empty(), "deliveries of runs that never ended: {extra:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_never_answers_delays_neither_fires_nor_other_deliveries() {
    let silent = Receiver::start(|_, _| Answer::Never).await.unwrap();
    let good = Receiver::ok().await.unwrap();
    // A port nothing listens on: each attempt is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let c = Cluster::start(1).await.expect("cluster");
    c.wait_leader().await.unwrap();
    let fs = c.client(0).await.unwrap();
    for (job, url) in [("slow", silent.url()), ("fast", good.url()), ("refused", format!("http://{closed}/hook"))] {
        fs.write("clone", format!("{job}:* * * * * *:true").as_bytes()).await.unwrap();
        fs.write(&format!("jobs/{job}/ctl"), format!("notify {url} always\nstart").as_bytes()).await.unwrap();
    }
    poll("fast to run eight times", Duration::from_secs(30), Duration::from_millis(200), async || {
        (ended_runs(&c.read(0, "jobs/fast/runs").await).len() >= 8).then_some(())
    })
    .await;
    let fast = ended_runs(&c.read(0, "jobs/fast/runs").await);
    let hits = good.hits();
    for (id, _, end, _) in &fast {
        let h = hits.iter().find(|h| h.id == *id).unwrap_or_else(|| panic!("run {id} of fast not delivered: {hits:?}"));
        assert!(h.at_ms - end < 1000, "run {id} delivered {} ms after its end, behind a silent receiver", h.at_ms - end);
    }
    // The silent receiver holds its requests; its job still fires every second.
    let slow = ended_runs(&c.read(0, "jobs/slow/runs").await);
    assert!(slow.len() >= 7, "{slow:?}");
    assert!(!silent.hits().is_empty(), "the silent receiver was asked");
    let refused = c.read(0, "jobs/refused/ctl").await;
    assert!(ctl_value(&refused, "notify-error").contains("onnection refused"), "{refused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_notify_verbs_are_refused_with_one_line_and_change_nothing() {
    let c = Cluster::start(1).await.expect("cluster");
    c.wait_leader().await.unwrap();
    let opts = Options { dialect: Dialect::P2000U, ..Default::default() };
    let fs = Client::connect(c.nodes[0].fs_addr, opts).await.unwrap();
    fs.write("clone", b"a:@yearly:true").await.unwrap();
    let before = String::from_utf8(fs.read("jobs/a/ctl").await.unwrap()).unwrap();
    let cluster_before = ctl_value(&String::from_utf8(fs.read("ctl").await.unwrap()).unwrap(), "notify");
    for (file, verb, want) in [
        ("jobs/a/ctl", "notify ftp://h/x", "want an http:// or https:// URL"),
        ("jobs/a/ctl", "notify http://h/x sometimes", "use success, failure or always"),
        ("jobs/a/ctl", "notify http:///x", "names no host"),
        ("jobs/a/ctl", "notify", "unknown command"),
        ("ctl", "notify default", "want an http:// or https:// URL"),
        ("ctl", "notify hook.example", "want an http:// or https:// URL"),
        ("ctl", "limit notify-pending 0", "between 1 and 1000000"),
    ] {
        let err = fs.write(file, verb.as_bytes()).await.expect_err(verb).to_string();
        assert!(err.contains(want), "{verb}: {err}");
        assert!(!err.contains('\n'), "{verb}: one line: {err:?}");
    }
    assert_eq!(String::from_utf8(fs.read("jobs/a/ctl").await.unwrap()).unwrap(), before);
    assert_eq!(ctl_value(&String::from_utf8(fs.read("ctl").await.unwrap()).unwrap(), "notify"), cluster_before);
    assert_eq!(cluster_before, "off");
}

/// A CA and a certificate for 127.0.0.1 signed by it, in `dir`, by the
/// deploy recipe (openssl).
fn certs(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let script = cluster_tests::crate_dir().join("../deploy/make-certs.sh");
    let out = std::process::Command::new(script).arg(dir).arg("receiver").output().expect("run deploy/make-certs.sh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (dir.join("ca.pem"), dir.join("receiver.pem"), dir.join("receiver-key.pem"))
}

#[tokio::test(flavor = "multi_thread")]
async fn https_is_checked_against_the_trust_store_ssl_cert_file_can_name() {
    let (trusted, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ca, cert, key) = certs(trusted.path());
    let (_, other_cert, other_key) = certs(other.path());
    let rx = Receiver::start_tls(&cert, &key, |_, _| Answer::Status(200)).await.unwrap();
    let stranger = Receiver::start_tls(&other_cert, &other_key, |_, _| Answer::Status(200)).await.unwrap();
    assert!(rx.url().starts_with("https://127.0.0.1:"));
    // The node trusts the first CA only (rustls-native-certs reads SSL_CERT_FILE).
    let env = vec![("SSL_CERT_FILE".to_string(), ca.display().to_string())];
    let c = Cluster::start_with_env(1, |_| env.clone()).await.expect("cluster");
    c.wait_leader().await.unwrap();
    let fs = c.client(0).await.unwrap();
    for (job, url) in [("a", rx.url()), ("b", stranger.url())] {
        fs.write("clone", format!("{job}:@yearly:exit 1").as_bytes()).await.unwrap();
        fs.write(&format!("jobs/{job}/ctl"), format!("notify {url}\nrun").as_bytes()).await.unwrap();
    }
    poll("a's end to arrive over HTTPS", Duration::from_secs(15), Duration::from_millis(50), async || {
        (rx.delivered().len() == 1).then_some(())
    })
    .await;
    assert_eq!(rx.hits()[0].json()["job"], "a");
    // b's receiver has a certificate from a CA the node does not trust:
    // refused at the handshake, nothing sent, and the ctl says why.
    let refused = poll("b's delivery to fail", Duration::from_secs(15), Duration::from_millis(50), async || {
        let ctl = c.read(0, "jobs/b/ctl").await;
        (ctl_value(&ctl, "notify-error") != "-").then_some(ctl)
    })
    .await;
    assert!(ctl_value(&refused, "notify-error").contains("certificate"), "{refused}");
    assert_eq!(ctl_value(&refused, "notify-pending"), "1");
    assert!(stranger.hits().is_empty(), "no request reached the stranger: {:?}", stranger.hits());
}
