//! How a run dies with its node: one reaper process per node.
//!
//! At start a node forks a small process, `jobd-reaper`, that keeps only
//! the read end of a pipe. The node tells it of each run's process group
//! as soon as the run's process is created (before its gate can open) and
//! again when the run has ended; when the node's process ends, however it
//! ends, the kernel closes the write end, the reaper reads end-of-file and
//! SIGKILLs every group it still holds, then exits. A job's own background
//! processes that outlive its run are left alone, as cron leaves them.
//!
//! Why one process per node and not one per run: earlier, each run's
//! guard shell forked a watcher that waited on the gate pipe. That fork
//! came after the gate, in the tens of milliseconds after T in which a
//! herd's shells all wake and compete for the cores, so every run's
//! command started later (`docs/BENCHMARKS.md` §14 measures both). The
//! reaper costs one fork per node start.
//!
//! Why fork and not exec a helper binary: the node is a library that test
//! binaries embed too, so there is no program path to exec that is sure to
//! be jobd. The child runs only async-signal-safe calls (the parent has
//! threads, and another thread may hold the allocator's lock): `setpgid`,
//! `sigaction`, `prctl`, `close`, `dup2`, `close_range`, `read`, `kill`,
//! `_exit`, on memory allocated before the fork (a bitmap of every
//! possible pid). A fork shares the parent's pages until one side writes
//! them, and jobd goes on writing its own, so the reaper ends up holding a
//! copy of what jobd's memory was at the fork: the node forks it first
//! thing at start, before the database is open (`node.rs`).
//!
//! If the reaper itself dies (someone SIGKILLs it), a thread of the node
//! that waits on it starts another (at most once a second) and tells it
//! every group still held; between the two, a node that dies leaves its
//! runs running. A reaper forked then holds a copy of jobd's memory as it
//! is at that moment.
//!
//! The messages are 8 bytes (an operation and a pid), written whole in one
//! `write`: a pipe never interleaves writes of up to `PIPE_BUF` bytes, so
//! the threads that write need no order between them.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{error, warn};

/// Linux's largest possible pid (`PID_MAX_LIMIT` on 64-bit).
const PID_LIMIT: usize = 1 << 22;
const ADD: u32 = 1;
const REMOVE: u32 = 2;
/// A reaper that died is replaced at most this often.
const REFORK_EVERY: Duration = Duration::from_secs(1);
/// Descriptors closed one by one in the child if `close_range` is refused
/// (a kernel before 5.9, a seccomp filter), at most.
const CLOSE_AT_MOST: i32 = 1 << 20;

/// The node's reaper: while it lives, every watched group dies with the
/// node. Dropping it (the node stopped) ends every group still watched.
pub struct Reaper {
    shared: Arc<Shared>,
}

struct Shared {
    inner: Mutex<Inner>,
    /// The node is stopping: a reaper that ends is not replaced.
    closing: AtomicBool,
}

struct Inner {
    /// The write end of the current reaper's pipe (None between a reaper's
    /// death and its replacement, and once closing).
    pipe: Option<File>,
    /// The current reaper's pid (0: none yet).
    pid: libc::pid_t,
    /// Every group watched now, to tell a replacement reaper.
    live: HashSet<libc::pid_t>,
}

/// A watched process group; dropping it tells the reaper to let the group
/// be (drop it only once the group's leader has been waited for, so its
/// pid cannot have been reused).
pub struct Watched {
    shared: Arc<Shared>,
    pgid: libc::pid_t,
}

impl Reaper {
    /// Forks the reaper and starts the thread that waits on it.
    pub fn start() -> std::io::Result<Reaper> {
        let (pid, pipe) = fork_reaper(&[])?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner { pipe: Some(pipe), pid, live: HashSet::new() }),
            closing: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::Builder::new().name("jobd-reaper-wait".into()).spawn(move || s.keep_alive())?;
        Ok(Reaper { shared })
    }

    /// Watches the group `pgid` (a run's process, which leads its group).
    pub fn watch(&self, pgid: libc::pid_t) -> Watched {
        let mut inner = crate::lock::lock(&self.shared.inner);
        inner.live.insert(pgid);
        // A failed write means the reaper has died: the waiting thread
        // tells its replacement from `live`.
        if let Some(pipe) = &inner.pipe {
            let _ = send(pipe, ADD, pgid);
        }
        Watched { shared: self.shared.clone(), pgid }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        // Closing the write end: the reaper ends what it holds and exits,
        // and the waiting thread, seeing `closing`, ends after it.
        crate::lock::lock(&self.shared.inner).pipe = None;
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let mut inner = crate::lock::lock(&self.shared.inner);
        inner.live.remove(&self.pgid);
        if let Some(pipe) = &inner.pipe {
            let _ = send(pipe, REMOVE, self.pgid);
        }
    }
}

impl Shared {
    /// Waits for the reaper to exit; unless the node is stopping, starts
    /// another and tells it every group still watched.
    fn keep_alive(&self) {
        let mut forked = std::time::Instant::now();
        loop {
            let pid = crate::lock::lock(&self.inner).pid;
            if pid > 0 {
                let mut status = 0;
                // SAFETY: waitpid on our own child; nothing else waits for
                // this pid (tokio waits only for the children it spawned).
                while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
                    && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
                {}
            }
            if self.closing.load(Ordering::SeqCst) {
                return;
            }
            // One that dies at once (something keeps killing it) is not
            // re-forked in a tight loop: each fork copies jobd's page tables.
            if forked.elapsed() < REFORK_EVERY {
                std::thread::sleep(REFORK_EVERY);
            }
            forked = std::time::Instant::now();
            let mut inner = crate::lock::lock(&self.inner);
            inner.pipe = None;
            inner.pid = 0;
            warn!(pid, "the reaper process ended; starting another (runs must die with this node)");
            let live: Vec<libc::pid_t> = inner.live.iter().copied().collect();
            match fork_reaper(&live) {
                Ok((pid, pipe)) => {
                    inner.pid = pid;
                    // Stopping meanwhile: let the new one go (it exits on
                    // end-of-file, ending what it holds) and wait for it.
                    if !self.closing.load(Ordering::SeqCst) {
                        inner.pipe = Some(pipe);
                    }
                }
                Err(e) => {
                    error!("cannot start a reaper process ({e}); trying again in a second");
                    drop(inner);
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }
}

fn send(pipe: &File, op: u32, pid: libc::pid_t) -> std::io::Result<()> {
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&op.to_ne_bytes());
    msg[4..].copy_from_slice(&pid.to_ne_bytes());
    // 8 bytes to a pipe: one write, whole (PIPE_BUF is 4096).
    (&*pipe).write_all(&msg)
}

/// Forks a reaper already holding `live`; returns its pid and the write
/// end of its pipe.
fn fork_reaper(live: &[libc::pid_t]) -> std::io::Result<(libc::pid_t, File)> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills two fds, both close-on-exec (so no run inherits
    // the write end and keeps a dead node's reaper waiting).
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors from pipe2, owned from here on.
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // Allocated before the fork: the child must not allocate.
    let mut held = vec![0u64; PID_LIMIT / 64];
    for &pid in live {
        mark(&mut held, pid, true);
    }
    let (read_fd, write_fd) = (fds[0], fds[1]);
    // SAFETY: sysconf has no preconditions.
    let open_max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) };
    let fd_bound = i32::try_from(open_max).unwrap_or(CLOSE_AT_MOST).clamp(3, CLOSE_AT_MOST);
    // SAFETY: the child runs only async-signal-safe calls (see `reap`).
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        // SAFETY: in the child: `reap` never returns.
        0 => unsafe { reap(read_fd, write_fd, fd_bound, &mut held) },
        pid => {
            drop(read_end);
            Ok((pid, File::from(write_end)))
        }
    }
}

fn mark(held: &mut [u64], pid: libc::pid_t, on: bool) {
    let Ok(pid) = usize::try_from(pid) else { return };
    if let Some(word) = held.get_mut(pid / 64) {
        let bit = 1u64 << (pid % 64);
        if on {
            *word |= bit;
        } else {
            *word &= !bit;
        }
    }
}

/// The reaper's whole life, in the forked child: keep the pipe, follow
/// its messages, and at its end-of-file SIGKILL every group held.
///
/// # Safety
/// Call only in a freshly forked child. Everything here is
/// async-signal-safe: no allocation, no locks, no panics.
unsafe fn reap(read_fd: i32, write_fd: i32, fd_bound: i32, held: &mut [u64]) -> ! {
    // Its own group, so a terminal's ^C to jobd's group does not reach it;
    // the signals that stop a service ignored (it ends at end-of-file,
    // after jobd, so a `systemctl stop` that signals the whole unit does
    // not end it while jobd drains its runs); the rest at their default
    // (jobd's handlers point at descriptors closed below), none blocked;
    // a name for `ps`.
    libc::setpgid(0, 0);
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
        libc::signal(sig, libc::SIG_IGN);
    }
    for sig in [libc::SIGPIPE, libc::SIGCHLD, libc::SIGUSR1, libc::SIGUSR2] {
        libc::signal(sig, libc::SIG_DFL);
    }
    let mut none: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut none);
    libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    libc::prctl(libc::PR_SET_NAME, c"jobd-reaper".as_ptr() as libc::c_ulong, 0, 0, 0);
    // Keep only the pipe, as fd 0: its own write end first (held, it would
    // never see end-of-file), then everything else — a copy of the node's
    // listening sockets or data files would outlive the node.
    libc::close(write_fd);
    libc::dup2(read_fd, 0);
    if libc::syscall(libc::SYS_close_range, 1u32, u32::MAX, 0u32) != 0 {
        for fd in 1..fd_bound {
            libc::close(fd);
        }
    }
    let mut buf = [0u8; 4096];
    let mut have = 0usize;
    loop {
        let n = libc::read(0, buf.as_mut_ptr().add(have) as *mut libc::c_void, buf.len() - have);
        if n == 0 {
            break;
        }
        if n < 0 {
            if *libc::__errno_location() == libc::EINTR {
                continue;
            }
            break;
        }
        have += n as usize;
        let whole = have - have % 8;
        for msg in buf[..whole].chunks_exact(8) {
            let op = u32::from_ne_bytes([msg[0], msg[1], msg[2], msg[3]]);
            let pid = libc::pid_t::from_ne_bytes([msg[4], msg[5], msg[6], msg[7]]);
            mark(held, pid, op == ADD);
        }
        buf.copy_within(whole..have, 0);
        have -= whole;
    }
    for (i, word) in held.iter().enumerate() {
        let mut bits = *word;
        while bits != 0 {
            let pid = (i * 64 + bits.trailing_zeros() as usize) as libc::pid_t;
            libc::kill(-pid, libc::SIGKILL);
            bits &= bits - 1;
        }
    }
    libc::_exit(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::time::Instant;

    impl Reaper {
        fn pid(&self) -> libc::pid_t {
            crate::lock::lock(&self.shared.inner).pid
        }
    }

    /// A `sleep` leading its own group, as a run's process does.
    fn group() -> std::process::Child {
        std::process::Command::new("sleep").arg("60").process_group(0).spawn().expect("sleep")
    }

    /// Whether `child` ends within `secs` (reaped here if so).
    fn ends(child: &mut std::process::Child, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if child.try_wait().expect("try_wait").is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn watched_groups_die_with_the_reaper_and_released_ones_do_not() {
        let reaper = Reaper::start().unwrap();
        let (mut held, mut let_go) = (group(), group());
        let _held = reaper.watch(held.id() as libc::pid_t);
        drop(reaper.watch(let_go.id() as libc::pid_t));
        drop(reaper);
        assert!(ends(&mut held, 5), "a watched group outlived its node's reaper");
        assert!(!ends(&mut let_go, 1), "a released group was killed");
        let _ = let_go.kill();
        let _ = let_go.wait();
    }

    #[test]
    fn a_killed_reaper_is_replaced_and_told_every_group_still_held() {
        let reaper = Reaper::start().unwrap();
        let mut held = group();
        let _held = reaper.watch(held.id() as libc::pid_t);
        let first = reaper.pid();
        // SAFETY: kill(2) on the reaper this test started.
        unsafe { libc::kill(first, libc::SIGKILL) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while reaper.pid() == first || reaper.pid() == 0 {
            assert!(Instant::now() < deadline, "no new reaper after the first was killed");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!ends(&mut held, 1), "killing the reaper killed a run");
        drop(reaper);
        assert!(ends(&mut held, 5), "the replacement did not hold the group watched before it started");
    }
}
