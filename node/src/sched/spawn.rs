//! Creating a run's process ahead of its scheduled time, held at a gate.
//!
//! Creating a process (fork, exec of `/bin/sh`) costs about a millisecond
//! here, and one core manages a few hundred a second; two hundred jobs due
//! at the same second would start up to a hundred milliseconds late if
//! their processes were created at that second. So a scheduled run's
//! process is created when its fire is committed (shortly before its
//! time): the guard shell first blocks reading fd 3, a pipe whose other
//! end the executor holds. At the scheduled time the executor writes one
//! byte (the gate opens, in microseconds) or, if the run must not start
//! after all (stopped, deleted, too late), kills the waiting process group.
//! If jobd dies first, the pipe reaches end-of-file and the guard exits
//! without running anything.
//!
//! Every process is created on one thread per node (`Creator`), one at a
//! time, living as long as the node. Two reasons: forks of this large,
//! many-threaded process serialise on its memory map anyway (in parallel
//! they thrash), and the parent-death signal that ties a run to its node
//! fires when the *thread* that forked the run ends (prctl(2)), not the
//! process — created on tokio's blocking pool, whose threads end after
//! 10 s idle, any run that outlived its thread was SIGKILLed at 10 s.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use tokio::process::{Child, Command as Process};

use super::run_as::RunAs;

/// The guard shell around each command (given as `$0`): it waits at the
/// gate, then runs the command in the background so that a SIGTERM (sent
/// when jobd dies) is handled at once, by killing the run's process group;
/// it exits as the command did, re-raising a signal that killed it.
const GUARD: &str = r#"trap 'kill -KILL 0' TERM
read -r gate <&3 || exit 0
exec 3<&-
sh -c "$0" &
wait $!
s=$?
if [ $s -gt 128 ]; then trap - TERM; kill -$((s - 128)) $$; fi
exit $s"#;

/// The PATH jobs run with (jobd's own environment is not passed on).
const JOB_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A run's process, created and waiting at its gate.
pub struct Gated {
    pub child: Child,
    gate: Option<std::fs::File>,
}

impl Gated {
    /// Opens the gate: the command starts now.
    pub fn open(&mut self) -> std::io::Result<()> {
        let mut gate = self.gate.take().ok_or_else(|| std::io::Error::other("the gate was already opened"))?;
        gate.write_all(b"\n")
    }

    /// Ends a run that must not start: kills its waiting process group.
    pub async fn abandon(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) on the group this child leads (process_group(0)).
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
        }
        let _ = self.child.wait().await;
    }
}

/// One run's process to create, and where to send it.
struct Order {
    cmd: String,
    env: Vec<(&'static str, String)>,
    workdir: PathBuf,
    run_as: Option<Arc<RunAs>>,
    reply: tokio::sync::oneshot::Sender<std::io::Result<Gated>>,
}

/// The node's process-creating thread; it ends when the last handle is
/// dropped (the node has stopped), and with it, by the parent-death
/// signal, any run still going.
pub struct Creator {
    orders: std::sync::mpsc::Sender<Order>,
}

impl Creator {
    /// Starts the thread; call within the node's runtime (the processes
    /// are registered with its reactor, to be awaited there).
    pub fn start() -> std::io::Result<Creator> {
        let (orders, rx) = std::sync::mpsc::channel::<Order>();
        let runtime = tokio::runtime::Handle::current();
        std::thread::Builder::new().name("jobd-creator".into()).spawn(move || {
            let _inside = runtime.enter();
            for o in rx {
                let _ = o.reply.send(create(&o.cmd, &o.env, &o.workdir, o.run_as.as_deref()));
            }
        })?;
        Ok(Creator { orders })
    }

    /// Creates a run's process at its gate (see `create`), on the thread.
    pub async fn create(
        &self,
        cmd: String,
        env: Vec<(&'static str, String)>,
        workdir: PathBuf,
        run_as: Option<Arc<RunAs>>,
    ) -> std::io::Result<Gated> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let gone = || std::io::Error::other("the process-creating thread has ended");
        self.orders.send(Order { cmd, env, workdir, run_as, reply }).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// Creates `sh -c GUARD CMD` in its own process group, with a clean
/// environment (`env`, nothing of jobd's own), in `workdir`, as `run_as`
/// if set, dying with jobd, and waiting at its gate.
fn create(cmd: &str, env: &[(&str, String)], workdir: &Path, run_as: Option<&RunAs>) -> std::io::Result<Gated> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills two fds; both close on exec in every child but
    // this one, which gets the read end as fd 3 (dup2 clears the flag).
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors from pipe2, owned from here on.
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut proc = Process::new("/bin/sh");
    proc.arg("-c")
        .arg(GUARD)
        .arg(cmd)
        .env_clear()
        .env("PATH", JOB_PATH)
        .env("HOME", workdir)
        .env("LANG", "C.UTF-8")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a kill reaches everything it started.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(user) = run_as {
        proc.env("HOME", &user.home).env("USER", &user.name).env("LOGNAME", &user.name);
    }
    let run_as = run_as.cloned();
    let gate_fd = read_end.as_raw_fd();
    // The job dies with this node, so a run marked lost is not still
    // running: when jobd dies the guard shell gets SIGTERM and kills the
    // run's whole group; a stopping jobd kills each group itself. The
    // parent-death signal is cleared when the user changes, so it is set
    // after the drop.
    // SAFETY: setgroups/setgid/setuid, prctl, umask and dup2 are
    // async-signal-safe and touch only this child.
    unsafe {
        proc.pre_exec(move || {
            if let Some(user) = &run_as {
                user.drop_privileges()?;
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            libc::umask(0o022);
            // dup2 onto itself would keep close-on-exec: clear it instead.
            let ok = if gate_fd == 3 { libc::fcntl(3, libc::F_SETFD, 0) == 0 } else { libc::dup2(gate_fd, 3) == 3 };
            if !ok {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = proc.spawn()?;
    drop(read_end);
    Ok(Gated { child, gate: Some(std::fs::File::from(write_end)) })
}
