//! The operator's material works: the systemd unit passes
//! `systemd-analyze verify`, and `deploy/local-cluster.sh` runs the README's
//! failover demo end to end — start, create a job through node 2, start it,
//! see its log on node 3, kill the leader, see the job keep firing, stop.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use cluster_tests::jobd::binary;
use cluster_tests::tools::require_tool;
use cluster_tests::wait_for;
use tokio::process::Command;

fn repo() -> PathBuf {
    cluster_tests::crate_dir().join("..").canonicalize().expect("the repository")
}

#[tokio::test]
async fn the_systemd_unit_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let systemd = repo().join("deploy/systemd");
    let unit = std::fs::read_to_string(systemd.join("jobd@.service")).unwrap();
    // The installed paths, pointed at what exists here.
    let unit = unit
        .replace("/usr/local/bin/jobd", binary().unwrap().to_str().unwrap())
        .replace("/etc/jobd/%i.env", systemd.join("jobd-1.env").to_str().unwrap());
    let path = dir.path().join("jobd@1.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new(require_tool("systemd-analyze")).arg("verify").arg(&path).output().await.unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");
}

/// A base port with base..base+2 and base+100..base+102 free right now.
fn free_base() -> u16 {
    for attempt in 0..200u16 {
        let base = 20_000 + (std::process::id() as u16 % 200) * 100 + attempt * 7 % 20_000;
        let ports = [base, base + 1, base + 2, base + 100, base + 101, base + 102];
        if ports.iter().all(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok()) {
            return base;
        }
    }
    panic!("no free port range");
}

struct Script {
    base: u16,
    dir: tempfile::TempDir,
}

impl Script {
    async fn run(&self, verb: &str) -> Output {
        Command::new(repo().join("deploy/local-cluster.sh"))
            .arg(verb)
            .env("JOBD_BASE_PORT", self.base.to_string())
            .env("JOBD_CLUSTER_DIR", self.dir.path())
            .env("JOBD_BIN", binary().unwrap())
            .output()
            .await
            .unwrap()
    }

    async fn ok(&self, verb: &str) -> String {
        let out = self.run(verb).await;
        assert!(out.status.success(), "local-cluster.sh {verb}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    async fn jobd_9p(&self, node: u16, args: &[&str]) -> String {
        let addr = format!("127.0.0.1:{}", self.base + node - 1);
        let out = Command::new(binary().unwrap()).arg("9p").args(["--addr", &addr]).args(args).output().await.unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        // Stop what the script started, also when an assertion failed.
        let _ = std::process::Command::new(repo().join("deploy/local-cluster.sh"))
            .arg("stop")
            .env("JOBD_BASE_PORT", self.base.to_string())
            .env("JOBD_CLUSTER_DIR", self.dir.path())
            .env("JOBD_BIN", binary().unwrap())
            .output();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn local_cluster_script_runs_the_failover_demo() {
    let s = Script { base: free_base(), dir: tempfile::tempdir().unwrap() };
    let started = s.ok("start").await;
    assert!(started.contains("leader: node"), "{started}");
    s.jobd_9p(2, &["write", "/clone", "tick:* * * * * *:echo tick"]).await;
    s.jobd_9p(2, &["write", "/jobs/tick/ctl", "start"]).await;
    wait_for("the job's log on node 3", Duration::from_secs(20), async || {
        s.jobd_9p(3, &["read", "/jobs/tick/log"]).await.contains(":tick\n")
    })
    .await;
    let killed = s.ok("kill-leader").await;
    let leader: u16 = killed.split_whitespace().nth(2).unwrap().parse().unwrap();
    let live = if leader == 1 { 2 } else { 1 };
    let ticks = async |n| s.jobd_9p(n, &["read", "/jobs/tick/log"]).await.matches(":tick\n").count();
    let before = ticks(live).await;
    wait_for("the job to keep firing after the kill", Duration::from_secs(20), async || ticks(live).await >= before + 2).await;
    assert!(s.ok("status").await.contains(&format!("node {leader}: stopped")));
    s.ok("stop").await;
    let status = s.ok("status").await;
    assert_eq!(status.matches(": stopped").count(), 3, "{status}");
}

/// The Kubernetes manifests are checked against the API's schemas
/// (`kubernetes-validate --strict`, from PyPI; the set-up installs it), and
/// a misspelt field is caught, so the check is not vacuous.
#[tokio::test]
async fn the_kubernetes_manifests_validate() {
    let manifest = repo().join("deploy/kubernetes/jobd.yaml");
    let validate = |path: PathBuf| async move {
        Command::new(require_tool("kubernetes-validate"))
            .args(["--strict", "--quiet"])
            .arg(path)
            .output()
            .await
            .unwrap()
    };
    let out = validate(manifest.clone()).await;
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&bad, text.replace("serviceName: jobd", "servicename: jobd")).unwrap();
    assert!(!validate(bad).await.status.success(), "a misspelt field passed");
    // The image puts the entrypoint and jobd where the manifest expects them.
    let dockerfile = std::fs::read_to_string(repo().join("deploy/kubernetes/Dockerfile")).unwrap();
    assert!(dockerfile.contains("/usr/local/bin/jobd-entrypoint") && text.contains("[/usr/local/bin/jobd, 9p,"));
}

/// Pod NAME-N becomes node N+1 with every first member as a peer; pods
/// beyond the first cluster join as learners; a pod name without an
/// ordinal is refused.
#[tokio::test]
async fn the_kubernetes_entrypoint_maps_pods_to_nodes() {
    let run = |host: &'static str| async move {
        Command::new(repo().join("deploy/kubernetes/entrypoint.sh"))
            .arg("--debug")
            .env("HOSTNAME", host)
            .env("JOBD_SERVICE", "jobd")
            .env("JOBD_NAMESPACE", "cron")
            .env("JOBD_REPLICAS", "3")
            .env("JOBD_BIN", "echo")
            .output()
            .await
            .unwrap()
    };
    let peers = "1=jobd-0.jobd.cron.svc:5740,2=jobd-1.jobd.cron.svc:5740,3=jobd-2.jobd.cron.svc:5740";
    let out = String::from_utf8(run("jobd-2").await.stdout).unwrap();
    assert_eq!(
        out.trim(),
        format!("--id 3 --raftaddr jobd-2.jobd.cron.svc:5740 --fsaddr 0.0.0.0:5640 --peers {peers} --initial-cluster-state new --debug")
    );
    let out = String::from_utf8(run("jobd-3").await.stdout).unwrap();
    assert!(out.contains(&format!("--id 4 ")) && out.contains(&format!("{peers},4=jobd-3.jobd.cron.svc:5740 --initial-cluster-state existing")), "{out}");
    let out = run("jobd").await;
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("does not end in -ORDINAL"));
}
