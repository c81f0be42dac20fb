//! The workload: a client creating, starting, stopping and deleting jobs
//! through random nodes over 9P, keeping a ledger of what each answer lets
//! it know about each job. An acknowledged change is known; a create
//! refused as existing (decided by the state machine) is knowledge too and
//! must agree with the ledger; an EAGAIN changed nothing; a timeout or a broken connection leaves the job
//! unknown until a later answer settles it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use ninep::client::{Client, Options};
use ninep::error::errno;
use tokio::sync::watch;

use super::rng::Rng;

const NAMES: u64 = 16;

/// What the ledger knows of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub exists: bool,
    pub started: bool,
}

#[derive(Debug, Default)]
pub struct Ledger {
    pub acked: usize,
    pub failed: usize,
    pub unknown: usize,
    pub refused: usize,
    /// Per job name: `Some` when the answers so far settle its state.
    pub known: BTreeMap<String, Option<Known>>,
    /// Answers that contradict an earlier acknowledged change.
    pub violations: Vec<String>,
}

enum Answer {
    Ok,
    Errno(u32),
    /// Nothing was sent (no connection).
    NotSent,
    /// Sent, answer unknown (timeout, connection lost).
    Lost,
}

async fn ask(addr: SocketAddr, path: &str, data: &[u8]) -> Answer {
    let attempt = async {
        let Ok(c) = Client::connect(addr, Options::default()).await else { return Answer::NotSent };
        match c.write(path, data).await {
            Ok(_) => Answer::Ok,
            Err(e) => e.errno().map_or(Answer::Lost, Answer::Errno),
        }
    };
    tokio::time::timeout(Duration::from_secs(8), attempt).await.unwrap_or(Answer::Lost)
}

impl Ledger {
    fn record(&mut self, name: &str, verb: &str, answer: Answer) {
        let before = self.known.get(name).copied().flatten();
        let mut contradiction = |what: &str| self.violations.push(format!("{verb} {name}: {what}, after the ledger had {before:?}"));
        let after = match answer {
            Answer::Ok => {
                self.acked += 1;
                match verb {
                    "create" => Some(Known { exists: true, started: false }),
                    "delete" => Some(Known { exists: false, started: false }),
                    "start" => Some(Known { exists: true, started: true }),
                    _ => Some(Known { exists: true, started: false }),
                }
            }
            Answer::Errno(e) if e == errno::EAGAIN => {
                self.failed += 1;
                before
            }
            Answer::Errno(e) if e == errno::EEXIST && verb == "create" => {
                self.refused += 1;
                if before.is_some_and(|k| !k.exists) {
                    contradiction("refused as existing");
                }
                before.filter(|k| k.exists)
            }
            // Not knowledge: the walk to jobs/NAME/ctl is answered from the
            // serving node's applied state, which may lag (reads are not
            // linearizable by default), so a job just created can be
            // missing there. The final check (P1) reads every node after
            // they converge.
            Answer::Errno(e) if e == errno::ENOENT => {
                self.refused += 1;
                before
            }
            Answer::NotSent => {
                self.failed += 1;
                before
            }
            Answer::Errno(_) | Answer::Lost => {
                self.unknown += 1;
                None
            }
        };
        self.known.insert(name.to_string(), after);
    }
}

/// Runs until `stop` is set; one operation at a time.
pub async fn run(addrs: Vec<SocketAddr>, seed: u64, mut stop: watch::Receiver<bool>) -> Ledger {
    let mut rng = Rng::new(seed);
    let mut ledger = Ledger::default();
    while !*stop.borrow() {
        let name = format!("w{}", rng.below(NAMES));
        let addr = addrs[rng.below(addrs.len() as u64) as usize];
        let (verb, path, data) = match rng.below(4) {
            0 => ("create", "clone".to_string(), format!("{name}:@yearly:true")),
            1 => ("delete", format!("jobs/{name}/ctl"), "delete".to_string()),
            2 => ("start", format!("jobs/{name}/ctl"), "start".to_string()),
            _ => ("stop", format!("jobs/{name}/ctl"), "stop".to_string()),
        };
        let answer = ask(addr, &path, data.as_bytes()).await;
        ledger.record(&name, verb, answer);
        tokio::select! {
            _ = tokio::time::sleep(rng.ms(20, 120)) => {}
            _ = stop.changed() => {}
        }
    }
    ledger
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_settles_and_catches_contradictions() {
        let mut l = Ledger::default();
        l.record("a", "create", Answer::Ok);
        l.record("a", "start", Answer::Ok);
        assert_eq!(l.known["a"], Some(Known { exists: true, started: true }));
        l.record("a", "stop", Answer::Lost);
        assert_eq!(l.known["a"], None, "a lost answer unsettles");
        l.record("a", "delete", Answer::Ok);
        l.record("a", "start", Answer::Errno(errno::ENOENT));
        assert!(l.violations.is_empty());
        l.record("a", "create", Answer::Errno(errno::EEXIST));
        assert_eq!(l.violations.len(), 1, "EEXIST after an acknowledged delete: {:?}", l.violations);
        l.record("b", "create", Answer::Errno(errno::EAGAIN));
        assert_eq!(l.known["b"], None);
        assert_eq!((l.acked, l.failed, l.unknown, l.refused), (3, 1, 1, 2));
    }
}
