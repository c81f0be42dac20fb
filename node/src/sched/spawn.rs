//! Creating a run's process ahead of its scheduled time, held at a gate.
//!
//! Creating a process (fork, exec of `/bin/sh`) costs about a millisecond
//! here, and one core manages a few hundred a second; two hundred jobs due
//! at the same second would start up to a hundred milliseconds late if
//! their processes were created at that second. So a scheduled run's
//! process is created when its fire is committed (shortly before its
//! time): the guard shell first blocks reading its stdin, a pipe whose
//! other end the executor holds. At the scheduled time a gate thread
//! (`gate.rs`) writes one byte (the gate opens, in microseconds) or, if the
//! run must not start after all (stopped, deleted, too late), the executor
//! kills the waiting process group.
//! If jobd dies first, the pipe reaches end-of-file and the guard exits
//! without running anything.
//!
//! A run dies with its node through the node's reaper (`reaper.rs`): each
//! run's group is given to it as soon as the process exists, and taken
//! back once the run has ended.
//!
//! Why not the parent-death signal: it reaches only the run's first
//! process, not its group, and it needs code run in the child between
//! fork and exec, which rules out `posix_spawn`
//! (`vfork` semantics); a fork of jobd copies its page tables, and at 200
//! runs a second that copying was half a core on the one thread that
//! creates processes (profile in docs/BENCHMARKS.md). With nothing to run
//! between fork and exec, the standard library spawns through
//! `posix_spawn`. Only `--run-as` still forks (to change user).
//!
//! Every process is created on one thread per node (`Creator`), one at a
//! time, off the async workers. (While the parent-death signal was used, it
//! fired when the *thread* that forked the run ended — on tokio's blocking
//! pool, whose idle threads end after 10 s, that SIGKILLed every run
//! longer than 10 s on a quiet node.)

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::process::{Child, Command as Process};

use super::reaper::{Reaper, Watched};
use super::run_as::RunAs;

/// The guard shell around each command (given as `$0`), its stdin the
/// gate: it waits at the gate, then becomes the command: `eval` in the
/// same process, so a run is one process and one exec, not two and two (a
/// second `sh -c` cost a fork, an exec and its dynamic linking per run, the
/// largest share of a herd's CPU: `docs/BENCHMARKS.md` §8). So `$$` is the
/// run's process, the one jobd waits on, its exit status and signal are
/// the command's, and a TERM to the group reaches the command as it would
/// under `sh -c`. The gate is closed before the command runs, so the
/// command cannot hold it; `JOBD_GATE` is unset so the command sees only
/// its environment (a `JOBD_` name: a job's `env` cannot have one, so
/// none of its variables is lost here). (Unlike under `sh -c`, `$0` inside the command is the
/// command's text.)
const GUARD: &str = r#"umask 022
read -r JOBD_GATE || exit 0
unset JOBD_GATE
exec </dev/null
eval "$0""#;

/// The PATH jobs run with (jobd's own environment is not passed on).
const JOB_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A run's process, created and waiting at its gate.
pub struct Gated {
    pub child: Child,
    gate: Option<Arc<std::fs::File>>,
    /// Its group, held by the node's reaper until the run has ended.
    watched: Option<Watched>,
}

impl Gated {
    /// The gate, to open at the run's time (`gate.rs`: one byte opens it).
    pub fn gate(&self) -> Option<Arc<std::fs::File>> {
        self.gate.clone()
    }

    /// The run has ended (its process has been waited for): the reaper lets
    /// its group be, and the gate is closed.
    pub fn release(&mut self) {
        self.gate = None;
        self.watched = None;
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
        self.release();
    }
}

impl Drop for Gated {
    /// Dropped before its run ended (its task was cancelled: a node whose
    /// drain timed out): the group is killed here, before the reaper is told
    /// to let it be.
    fn drop(&mut self) {
        if self.watched.is_some() {
            if let Some(pid) = self.child.id() {
                // SAFETY: kill(2) on the group this child leads; its pid is
                // not free yet (the child has not been waited for).
                unsafe {
                    libc::kill(-(pid as i32), libc::SIGKILL);
                }
            }
        }
    }
}

/// One run's process to create, and where to send it.
struct Order {
    cmd: String,
    env: Vec<(String, String)>,
    workdir: PathBuf,
    run_as: Option<Arc<RunAs>>,
    reply: tokio::sync::oneshot::Sender<std::io::Result<Gated>>,
}

/// The node's process-creating thread; it ends when the last handle is
/// dropped (the node has stopped).
pub struct Creator {
    orders: std::sync::mpsc::Sender<Order>,
    /// What one creation costs on the thread lately, in microseconds (a
    /// moving average): the scheduler sizes a herd's lead by it.
    cost_us: Arc<AtomicU64>,
}

/// The cost assumed before anything was created (a fork and exec of
/// `/bin/sh` on a busy machine here).
const FIRST_COST_US: u64 = 1000;

impl Creator {
    /// Starts the thread, whose runs die with the node through `reaper`;
    /// call within the node's runtime (the processes are registered with
    /// its reactor, to be awaited there).
    pub fn start(reaper: Reaper) -> std::io::Result<Creator> {
        let (orders, rx) = std::sync::mpsc::channel::<Order>();
        let runtime = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        let cost_us = Arc::new(AtomicU64::new(FIRST_COST_US));
        let cost = cost_us.clone();
        std::thread::Builder::new().name("jobd-creator".into()).spawn(move || {
            let _inside = runtime.enter();
            for o in rx {
                let began = Instant::now();
                let created = create(&reaper, &o.cmd, &o.env, &o.workdir, o.run_as.as_deref());
                let took = began.elapsed().as_micros().min(u64::MAX as u128) as u64;
                // An average over the last eight or so.
                let avg = cost.load(Ordering::Relaxed);
                cost.store(avg - avg / 8 + took / 8, Ordering::Relaxed);
                let _ = o.reply.send(created);
            }
        })?;
        Ok(Creator { orders, cost_us })
    }

    /// What creating one process costs lately, in microseconds.
    pub fn cost_us(&self) -> u64 {
        self.cost_us.load(Ordering::Relaxed)
    }

    /// Creates a run's process at its gate (see `create`), on the thread.
    pub async fn create(
        &self,
        cmd: String,
        env: Vec<(String, String)>,
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
/// environment (a fixed `PATH`, `HOME` and `LANG`, then `env`, which may
/// override them, then `run_as`'s `HOME`, `USER` and `LOGNAME`, which win;
/// nothing of jobd's own), in `workdir`, as `run_as` if set, dying with
/// jobd (its group watched by `reaper`), and waiting at its gate.
fn create(reaper: &Reaper, cmd: &str, env: &[(String, String)], workdir: &Path, run_as: Option<&RunAs>) -> std::io::Result<Gated> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills two fds; both close on exec (the read end is
    // given to the child as its stdin, which clears the flag there).
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
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(workdir)
        .stdin(Stdio::from(read_end))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a kill reaches everything it started.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(user) = run_as {
        proc.env("HOME", &user.home).env("USER", &user.name).env("LOGNAME", &user.name);
        let user = user.clone();
        // SAFETY: setgroups/setgid/setuid are async-signal-safe and touch
        // only this child. (This is the one case that forks.)
        unsafe {
            proc.pre_exec(move || user.drop_privileges());
        }
    }
    let child = proc.spawn()?;
    // Watched before the gate can open. (A child already gone has no id:
    // it never passed its gate, which only this node's process holds.)
    let watched = child.id().map(|pid| reaper.watch(pid as libc::pid_t));
    Ok(Gated { child, gate: Some(Arc::new(std::fs::File::from(write_end))), watched })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    /// Whether `pid` runs (a zombie has exited).
    fn alive(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
    }

    async fn until(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_run_dropped_before_its_end_takes_its_whole_group_with_it() {
        let creator = Creator::start(Reaper::start().unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let cmd = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
        let gated = creator.create(cmd, vec![], dir.path().to_path_buf(), None).await.unwrap();
        (&*gated.gate().unwrap()).write_all(b"\n").unwrap();
        until("the command's background child", || std::fs::read_to_string(&pidfile).is_ok_and(|p| p.ends_with('\n'))).await;
        let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_string();
        assert!(alive(&pid));
        drop(gated);
        until("the group to be killed", || !alive(&pid)).await;
    }
}
