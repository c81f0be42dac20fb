//! The witness: a file outside the cluster to which every run of a tick
//! job appends `JOB SCHEDULED-TIME NODE RUN-ID START-MS TRIGGER ATTEMPT TERM` (its command does,
//! with jobd's environment; START-MS is the test machine's own clock when
//! the command began, TERM the term of the fence it was begun under), so what actually ran, and when, is known
//! independently of jobd's records and of any node's clock.

use std::path::Path;

/// The command a tick job runs: the real time first, two output lines (for
/// the run-integrity check), then its witness line. A `flaky` one then
/// fails the first attempt of every fifth run id, for its retries.
pub fn command(witness: &Path, flaky: bool) -> String {
    let fail = if flaky { "; [ ${JOBD_ATTEMPT%/*} -gt 1 ] || [ $((JOBD_RUN_ID % 5)) -ne 0 ]" } else { "" };
    format!(
        "t=$(date +%s%3N); echo out1 $JOBD_RUN_ID; echo out2 $JOBD_RUN_ID; echo \"$JOBD_JOB $JOBD_SCHEDULED_TIME $JOBD_NODE $JOBD_RUN_ID $t $JOBD_TRIGGER $JOBD_ATTEMPT $JOBD_TERM\" >> {}{fail}",
        witness.display()
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub job: String,
    pub scheduled_s: i64,
    pub node: u64,
    pub run: u64,
    /// When the run's command began, by the test machine's clock.
    pub start_ms: i64,
    /// `schedule`, `catchup`, `manual` or `retry`.
    pub trigger: String,
    /// Which attempt of its scheduled time (`JOBD_ATTEMPT`'s first number).
    pub attempt: u32,
    /// The term of the fence it was begun under (`JOBD_TERM`).
    pub term: u64,
}

/// Every whole line of the witness file (a line being appended is skipped).
pub fn read(path: &Path) -> Vec<Line> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [job, t, node, run, start, trigger, attempt, term] = f.as_slice() else { return None };
            Some(Line {
                job: job.to_string(),
                scheduled_s: chrono::DateTime::parse_from_rfc3339(t).ok()?.timestamp(),
                node: node.parse().ok()?,
                run: run.parse().ok()?,
                start_ms: start.parse().ok()?,
                trigger: trigger.to_string(),
                attempt: attempt.split_once('/')?.0.parse().ok()?,
                term: term.parse().ok()?,
            })
        })
        .collect()
}
