//! `/jobs/NAME/wait`: a read blocks until a run of the job ends, and
//! answers that run's `runs` line; the fid then reads end-of-file. The run
//! answered is the first to end after the fid was *opened* (not after the
//! read was sent), so a run that ends between the open and the read is not
//! missed: at open the fid notes the job's count of ended runs, and each
//! run's record keeps the count its end made (`Run::ended_nth`).
//!
//! The read waits on this node's applies (openraft's metrics change with
//! each), checking again at least once a second. A flushed read is simply
//! dropped by the 9P server (answered Rflush). A job deleted while the read
//! waits answers ENOENT "deleted"; a job that was started at open and is
//! stopped while the read waits answers ENOENT "stopped" once none of its
//! runs is left going (those still running end, and are answered; a job
//! stopped at open may still end a manual run, so its waits go on). The
//! answer is the run whose end was the first after the open, exactly: if
//! `runs-kept` has already dropped its record, EIO says so.

use std::time::Duration;

use ninep::error::errno;
use ninep::{Error, Result};

use super::{content, errors, Fid, JobFs};
use crate::state::{self, Job};

/// How often a waiting read looks again when no apply woke it.
const RECHECK: Duration = Duration::from_secs(1);

/// What the job was when a `wait` fid was opened.
#[derive(Debug, Clone)]
pub(super) struct Opened {
    ended: u64,
    started: bool,
    /// Once answered: the line; later reads serve it by offset, then EOF.
    answer: Option<Vec<u8>>,
}

impl Opened {
    pub(super) fn now(job: &Job) -> Opened {
        Opened {
            ended: job.runs,
            started: job.started,
            answer: None,
        }
    }
}

fn slice(bytes: &[u8], offset: u64, count: u32) -> Vec<u8> {
    let start = offset.min(bytes.len() as u64) as usize;
    let end = start.saturating_add(count as usize).min(bytes.len());
    bytes[start..end].to_vec()
}

impl JobFs {
    pub(super) async fn read_wait(
        &self,
        fid: &Fid,
        name: &str,
        incarnation: u64,
        offset: u64,
        count: u32,
    ) -> Result<Vec<u8>> {
        let opened = fid.state().waiting.clone();
        // The 9P server refuses a read on a fid that was not opened.
        let Some(opened) = opened else {
            return Err(Error::new(errno::EBADF, "wait is read after it is opened"));
        };
        if let Some(answer) = &opened.answer {
            return Ok(slice(answer, offset, count));
        }
        let mut applies = self.raft.metrics();
        loop {
            // Marked seen before looking, so an apply after the look wakes us.
            applies.borrow_and_update();
            if let Some(line) = self.ended_since(name, incarnation, &opened)? {
                let out = slice(&line, offset, count);
                if let Some(w) = fid.state().waiting.as_mut() {
                    w.answer = Some(line);
                }
                return Ok(out);
            }
            tokio::select! {
                changed = applies.changed() => if changed.is_err() {
                    return Err(Error::new(errno::EIO, "this node is stopping"));
                },
                () = tokio::time::sleep(RECHECK) => {}
            }
        }
    }

    /// The `runs` line of the first run that ended after `opened`, if one
    /// has; an error if the job went away or was stopped meanwhile.
    fn ended_since(&self, name: &str, incarnation: u64, opened: &Opened) -> Result<Option<Vec<u8>>> {
        let job = match self.sm.job(name).map_err(errors::from_store)? {
            Some(j) if j.incarnation == incarnation => j,
            _ => {
                return Err(Error::new(
                    errno::ENOENT,
                    format!("job {name} was deleted while this read waited for a run to end"),
                ))
            }
        };
        // Runs are read only when one ended or the job was stopped: a
        // waiting read looks again at every apply.
        let stopped = opened.started && !job.started;
        if job.runs <= opened.ended && !stopped {
            return Ok(None);
        }
        let mut runs = vec![];
        for id in &job.recent_runs {
            if let Some(run) = state::run::load_run(&self.sm, incarnation, *id).map_err(errors::from_store)? {
                runs.push(run);
            }
        }
        if job.runs <= opened.ended {
            // Stopped: no run will end once those still going have.
            if runs.iter().all(|r| r.ended()) {
                return Err(Error::new(
                    errno::ENOENT,
                    format!("job {name} was stopped while this read waited for a run to end"),
                ));
            }
            return Ok(None);
        }
        let next = opened.ended + 1;
        match runs.into_iter().find(|r| r.ended_nth == Some(next)) {
            Some(run) => Ok(Some(content::runs(&[run]).into_bytes())),
            None => Err(Error::new(
                errno::EIO,
                format!("the runs of {name} that ended since this wait was opened are no longer kept (runs-kept)"),
            )),
        }
    }
}
