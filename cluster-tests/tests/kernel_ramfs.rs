//! The Linux kernel mounts the ramfs example in each dialect and uses it
//! with the shell tools people use: ls -l, cat, echo > file, mkdir, rm.

#[path = "../../ninep/examples/ramfs.rs"]
#[allow(dead_code)]
mod ramfs;

use std::sync::Arc;

use cluster_tests::v9fs::Vm;

const SCRIPT: &str = r#"
set -e
ls -l
cat hello
echo first > new
echo replaced > new
cat new
mkdir d
echo inside > d/f
ls -l d
rm d/f
rmdir d
rm new
ls
if cat nope 2>/dev/null; then exit 1; fi
echo done
"#;

#[tokio::test(flavor = "multi_thread")]
async fn kernel_mounts_ramfs_in_every_dialect() {
    let vm = Vm::prepare().await.expect("kernel and initramfs");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ninep::serve(listener, Arc::new(ramfs::RamFs::new()), async {
        let _ = stopped.await;
    }));
    for version in ["default", "9p2000.u", "9p2000"] {
        let run = vm.run(port, version, SCRIPT).await.expect("vm run");
        assert_eq!(run.exit, 0, "{version}: script failed:\n{}", run.console);
        let out = &run.output;
        assert!(out.lines().any(|l| l.starts_with("-rw-rw-rw-") && l.ends_with(" hello")), "{version}: {out}");
        assert!(out.contains("hello, world\nreplaced\n"), "{version}: {out}");
        assert!(out.lines().any(|l| l.starts_with("-rw-r--r--") && l.ends_with(" f")), "{version}: {out}");
        assert!(out.ends_with("hello\ndone\n"), "{version}: only hello is left: {out}");
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
