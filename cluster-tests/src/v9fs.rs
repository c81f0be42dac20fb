//! The Linux kernel's v9fs client, for real: boots Debian's kernel under
//! QEMU (software emulation, a few seconds a run), mounts a 9P server
//! listening on the host's loopback (the guest reaches it as 10.0.2.2) and
//! runs a busybox shell script on the mount.
//!
//! The kernel and initramfs are built on first use by `v9fs/build-initramfs.sh`
//! into `<target>/v9fs`; that needs `qemu-system-x86` and `busybox-static`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::process::Command;

/// How long one VM may run before it is killed.
pub const VM_DEADLINE: Duration = Duration::from_secs(120);

/// What a script printed and how it ended.
#[derive(Debug)]
pub struct Run {
    /// The script's exit status (254: the mount failed).
    pub exit: i32,
    /// Everything the script printed (stdout and stderr).
    pub output: String,
    /// The whole guest console, for diagnosis.
    pub console: String,
}

/// A prepared kernel and initramfs.
pub struct Vm {
    dir: PathBuf,
}

fn target_dir() -> PathBuf {
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(t);
    }
    crate::crate_dir().join("../target")
}

impl Vm {
    /// Builds the kernel and initramfs if they are not there yet.
    pub async fn prepare() -> Result<Vm> {
        for tool in ["qemu-system-x86_64", "busybox", "xz"] {
            crate::tools::find_tool(tool).map_err(anyhow::Error::msg)?;
        }
        let dir = target_dir().join("v9fs");
        let script = crate::crate_dir().join("v9fs/build-initramfs.sh");
        let out = Command::new(&script).arg(&dir).output().await.with_context(|| format!("running {script:?}"))?;
        if !out.status.success() {
            bail!(
                "{script:?} failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(Vm { dir })
    }

    /// Mounts `127.0.0.1:port` with `version` (`default`, `9p2000.L`,
    /// `9p2000.u`, `9p2000`) and runs `script` in the mount (cwd `/mnt`).
    pub async fn run(&self, port: u16, version: &str, script: &str) -> Result<Run> {
        let tmp = tempfile::tempdir()?;
        std::fs::write(tmp.path().join("test.sh"), script)?;
        // A second cpio appended to the base one adds /test.sh to the initramfs.
        let extra = Command::new("sh")
            .arg("-c")
            .arg("echo test.sh | busybox cpio -o -H newc 2>/dev/null | gzip -1")
            .current_dir(tmp.path())
            .output()
            .await?;
        let mut initrd = std::fs::read(self.dir.join("base.cpio.gz"))?;
        initrd.extend_from_slice(&extra.stdout);
        let initrd_path = tmp.path().join("initrd");
        std::fs::write(&initrd_path, initrd)?;
        let append = format!(
            "console=ttyS0 quiet loglevel=3 panic=-1 acpi=off nokaslr mitigations=off rodata=off audit=0 \
             cryptomgr.notests tsc=reliable no_timer_check jobd.port={port} jobd.version={version}"
        );
        let mut qemu = Command::new(crate::tools::find_tool("qemu-system-x86_64").map_err(anyhow::Error::msg)?);
        qemu.args(["-nodefaults", "-no-user-config", "-M", "pc", "-accel", "tcg", "-cpu", "qemu64", "-m", "128", "-smp", "1"])
            .arg("-kernel")
            .arg(self.dir.join("vmlinux"))
            .arg("-initrd")
            .arg(&initrd_path)
            .args(["-append", &append])
            .args(["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"])
            .args(["-display", "none", "-serial", "stdio", "-no-reboot"]);
        if Path::new("/usr/share/qemu/qboot.rom").exists() {
            qemu.args(["-bios", "/usr/share/qemu/qboot.rom"]);
        }
        let child = qemu.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true).spawn()?;
        let out = tokio::time::timeout(VM_DEADLINE, child.wait_with_output())
            .await
            .with_context(|| format!("the VM did not finish within {VM_DEADLINE:?}"))??;
        let console = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        let exit = console
            .lines()
            .find_map(|l| l.strip_prefix("JOBD-V9FS-EXIT="))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no exit marker; console:\n{console}\nqemu: {}", String::from_utf8_lossy(&out.stderr)))?;
        let output = console
            .split("JOBD-V9FS-BEGIN\n")
            .nth(1)
            .and_then(|rest| rest.split("JOBD-V9FS-END").next())
            .unwrap_or("")
            .to_string();
        Ok(Run { exit, output, console })
    }
}
