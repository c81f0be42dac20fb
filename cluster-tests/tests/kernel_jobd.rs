//! The Linux kernel mounts a real jobd process in each dialect and runs the
//! original jobd's session with the shell tools a user would use, including
//! the errors a user would see; diod's tools read the same tree.

use cluster_tests::jobd::Jobd;
use cluster_tests::tools::require_tool;
use cluster_tests::v9fs::Vm;
use tokio::process::Command;

const SESSION: &str = r#"
set -e
ls -l
echo -n 'hello:0 0/5 * * * ? *:echo hello world' > clone
ls -l jobs/hello
echo -n start > jobs/hello/ctl
cat jobs/hello/cmd
cat jobs/hello/schedule
head -n 1 jobs/hello/ctl
echo -n stop > jobs/hello/ctl
head -n 1 jobs/hello/ctl
cat jobs/hello/log
echo "-- errors"
if echo -n 'no-colons' > clone 2>/err; then echo "bad clone accepted"; exit 1; fi
cat /err
if echo -n 'hello:* * * * *:true' > clone 2>/err; then echo "duplicate accepted"; exit 1; fi
cat /err
if echo -n frob > jobs/hello/ctl 2>/err; then echo "bad verb accepted"; exit 1; fi
cat /err
if echo x > jobs/hello/log 2>/err; then echo "log write accepted"; exit 1; fi
cat /err
echo "-- mkdir and rm"
mkdir jobs/made
echo 'echo made' > jobs/made/cmd
echo '@every 10s' > jobs/made/schedule
echo start > jobs/made/ctl
head -n 1 jobs/made/ctl
rm -r jobs/hello jobs/made
ls jobs
echo done
"#;

#[tokio::test(flavor = "multi_thread")]
async fn kernel_runs_the_seed_session_on_jobd_in_every_dialect() {
    let vm = Vm::prepare().await.expect("kernel and initramfs");
    let jobd = Jobd::single().await.expect("jobd starts");
    // Linux maps legacy error strings through a fixed table: that mount
    // needs errno texts (the reason is in jobd's log).
    let legacy = Jobd::single_with(&["--legacy-errors", "errno"]).await.expect("jobd starts");
    for version in ["default", "9p2000.u", "9p2000"] {
        let jobd = if version == "9p2000" { &legacy } else { &jobd };
        let run = vm.run(jobd.fs_addr.port(), version, SESSION).await.expect("vm run");
        let out = &run.output;
        assert_eq!(run.exit, 0, "{version}: session failed:\n{}\njobd:\n{}", run.console, jobd.log_tail());
        assert!(out.contains("echo hello world\n0 0/5 * * * ? *\n"), "{version}: {out}");
        assert!(out.contains("state started\n") && out.contains("state stopped\n"), "{version}: {out}");
        assert!(out.lines().any(|l| l.starts_with("-rw-rw-rw-") && l.ends_with(" ctl")), "{version}: {out}");
        assert!(out.lines().any(|l| l.starts_with("-r--r--r--") && l.ends_with(" log")), "{version}: {out}");
        let errors = out.split("-- errors\n").nth(1).unwrap_or("");
        for want in ["Invalid argument", "File exists", "Invalid argument", "Read-only file system"] {
            assert!(errors.contains(want), "{version}: the user sees {want:?}: {errors}");
        }
        assert!(out.ends_with("state started\ndone\n"), "{version}: both jobs removed: {out}");
    }
    jobd.stop().await.expect("jobd stops on SIGTERM");
    legacy.stop().await.expect("jobd stops on SIGTERM");
}

#[tokio::test]
async fn diod_tools_read_jobd() {
    let jobd = Jobd::single().await.expect("jobd starts");
    let c = ninep::client::Client::connect(jobd.fs_addr, Default::default()).await.unwrap();
    c.write("clone", b"hello:0 0/5 * * * ? *:echo hello world").await.unwrap();
    let addr = jobd.fs_addr.to_string();
    let ls = Command::new(require_tool("diodls")).args(["-s", &addr, "-l", "/jobs/hello"]).output().await.unwrap();
    let ls = String::from_utf8_lossy(&ls.stdout).into_owned();
    for f in ["ctl", "cmd", "schedule", "log", "runs", "wait", "env"] {
        assert!(ls.lines().any(|l| l.ends_with(&format!(" {f}"))), "diodls shows {f}: {ls}");
    }
    let root = Command::new(require_tool("diodls")).args(["-s", &addr, "/"]).output().await.unwrap();
    assert_eq!(String::from_utf8_lossy(&root.stdout).lines().collect::<Vec<_>>().len(), 4);
    let cat = Command::new(require_tool("diodcat")).args(["-s", &addr, "jobs/hello/schedule"]).output().await.unwrap();
    assert_eq!(String::from_utf8_lossy(&cat.stdout), "0 0/5 * * * ? *\n");
    let log = Command::new(require_tool("diodcat")).args(["-s", &addr, "jobs/hello/log"]).output().await.unwrap();
    assert!(log.status.success() && log.stdout.is_empty());
    let status = jobd.stop().await.unwrap();
    assert!(status.success(), "jobd exits 0 on SIGTERM: {status:?}");
}
