//! CPU placement for the one-request-in-flight 9P round: pins every thread
//! of a server process, or the calling thread, to chosen CPUs. With one
//! request in flight each message wakes the other side; on this machine's
//! virtual CPUs a wake-up onto an idle CPU costs far more than serving the
//! message, so the round is also measured with client and server on one
//! CPU (no cross-CPU wake-up) and on two (one every message).

use std::io;

fn set(tid: libc::pid_t, cpus: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data (all zeroes: the empty set); CPU_SET
    // writes only inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: `set` lives across the call and its size is passed with it.
    let rc = unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The CPUs this process may run on.
pub fn allowed() -> io::Result<Vec<usize>> {
    // SAFETY: as in `set`; sched_getaffinity fills `set`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect())
}

/// Pins the calling thread (threads it creates later inherit it).
pub fn this_thread(cpus: &[usize]) -> io::Result<()> {
    set(0, cpus)
}

/// Pins every thread of process `pid`. Twice over the thread list, so a
/// thread created while the first pass ran (from an unpinned thread) is
/// caught by the second.
pub fn process(pid: u32, cpus: &[usize]) -> io::Result<()> {
    for _ in 0..2 {
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            let Some(tid) = task?.file_name().to_str().and_then(|t| t.parse().ok()) else { continue };
            match set(tid, cpus) {
                Ok(()) => {}
                // The thread ended between the listing and the call.
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
