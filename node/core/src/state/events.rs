//! `/events`: one line per run transition across the whole cluster,
//! written by the apply that makes the transition, so every node keeps the
//! same lines at the same logical offsets and serves the same bytes.
//!
//! ```text
//! TIME RUNID JOB SCHEDULED TRIGGER NODE began
//! TIME RUNID JOB SCHEDULED TRIGGER NODE ended STATUS DURATION
//! TIME RUNID JOB SCHEDULED TRIGGER NODE not-started [(REASON)]
//! TIME RUNID JOB SCHEDULED TRIGGER NODE lost
//! TIME - JOB SCHEDULED TRIGGER NODE skipped N REASON
//! ```
//!
//! TIME is the transition's (the time in the command that made it),
//! times are RFC 3339 UTC to the millisecond, a field nobody knows is `-`.
//! Kept as `lines.rs` keeps lines under `event/OFFSET`, trimmed from the
//! oldest line to stay under the cluster's `limit events-bytes`.

use super::lines::{Lines, Span};
use super::run::{format_duration, status_text, Run};
use super::{decode, encode, Job, Kv, KvError, KvRead, KvSeek};
use crate::command::{RunStatus, Trigger};
use crate::time::rfc3339_millis;

const SPAN_KEY: &[u8] = b"\x00events";
const LINES: Lines<'static> = Lines { prefix: b"event/", kind: "events", name: "" };

/// The offsets of the lines kept (both 0 before the first event).
pub fn span(kv: &impl KvRead) -> Result<Span, KvError> {
    Ok(kv.get(SPAN_KEY)?.map(|v| decode(SPAN_KEY, &v)).transpose()?.unwrap_or_default())
}

/// Reads `count` bytes from logical `offset` (below the oldest kept line:
/// from that line); the bytes and the offset they start at.
pub fn read(kv: &impl KvSeek, offset: u64, count: usize) -> Result<(u64, Vec<u8>), KvError> {
    LINES.read(kv, span(kv)?, offset, count)
}

fn append(kv: &mut impl Kv, line: String) -> Result<(), KvError> {
    let mut span = span(kv)?;
    LINES.push(kv, &mut span, line.into_bytes());
    LINES.trim(kv, &mut span, super::limits::load(kv)?.events_bytes)?;
    kv.put(SPAN_KEY.to_vec(), encode(&span));
    Ok(())
}

fn run_fields(at_ms: i64, job: &Job, run: &Run) -> String {
    format!(
        "{} {} {} {} {} {}",
        rfc3339_millis(at_ms),
        run.id,
        job.name,
        rfc3339_millis(run.scheduled_ms),
        run.trigger,
        run.node
    )
}

/// The run began (its start is recorded).
pub fn began(kv: &mut impl Kv, job: &Job, run: &Run, at_ms: i64) -> Result<(), KvError> {
    append(kv, format!("{} began\n", run_fields(at_ms, job, run)))
}

/// The run ended with the status in its record.
pub fn ended(kv: &mut impl Kv, job: &Job, run: &Run, at_ms: i64) -> Result<(), KvError> {
    let what = match &run.status {
        RunStatus::Lost => "lost".to_string(),
        RunStatus::NotStarted(_) => status_text(&run.status),
        status => {
            let took = run.start_ms.map_or(0, |s| at_ms - s);
            format!("ended {} {}", status_text(status), format_duration(took))
        }
    };
    append(kv, format!("{} {what}\n", run_fields(at_ms, job, run)))
}

/// Scheduled times passed over without a run: `count` up to `scheduled_ms`.
pub struct Skipped<'a> {
    pub scheduled_ms: i64,
    pub trigger: Option<Trigger>,
    pub node: u64,
    pub count: u64,
    pub reason: &'a str,
}

pub fn skipped(kv: &mut impl Kv, job: &Job, at_ms: i64, s: Skipped) -> Result<(), KvError> {
    let trigger = s.trigger.map_or("-", Trigger::word);
    let line = format!(
        "{} - {} {} {trigger} {} skipped {} {}\n",
        rfc3339_millis(at_ms),
        job.name,
        rfc3339_millis(s.scheduled_ms),
        s.node,
        s.count,
        s.reason
    );
    append(kv, line)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::command::{Command, Fence, NotStarted, Response};

    const FENCE: Fence = Fence { term: 2, node: 3, incarnation: 7 };
    const T0: i64 = 1_796_230_800_000; // 2026-12-02T17:00:00Z

    struct T {
        kv: BTreeMap<Vec<u8>, Vec<u8>>,
        index: u64,
    }

    impl T {
        fn new() -> T {
            let mut t = T { kv: BTreeMap::new(), index: 0 };
            t.apply(Command::CreateJob { name: "j".into(), schedule: "* * * * * *".into(), cmd: "true".into(), at_ms: 0 });
            t.apply(Command::StartJob { name: "j".into(), at_ms: 1000 });
            t
        }
        fn apply(&mut self, c: Command) -> Response {
            self.index += 1;
            crate::state::apply(&mut self.kv, self.index, &c).unwrap()
        }
        fn fire(&mut self, at: i64, skipped: u32) -> u64 {
            let fire = Command::Fire { name: "j".into(), incarnation: 1, scheduled_ms: at, trigger: Trigger::Schedule, skipped, fence: FENCE, at_ms: at - 200, claims: true };
            match self.apply(fire) {
                Response::Accepted { run_id } => run_id,
                other => panic!("fire refused: {other:?}"),
            }
        }
        fn run(&mut self, at: i64, status: RunStatus) {
            let run_id = self.fire(at, 0);
            self.apply(Command::Begin { name: "j".into(), incarnation: 1, run_id, fence: FENCE });
            self.apply(Command::RunStarted { name: "j".into(), incarnation: 1, run_id, at_ms: at + 2, fence: Some(FENCE) });
            self.apply(Command::RunEnded { name: "j".into(), incarnation: 1, run_id, status, at_ms: at + 1502, fence: Some(FENCE) });
        }
        fn text(&self) -> String {
            String::from_utf8(read(&self.kv, 0, usize::MAX).unwrap().1).unwrap()
        }
    }

    #[test]
    fn each_transition_is_one_line() {
        let mut t = T::new();
        t.run(T0, RunStatus::Exit(0));
        let id = t.fire(T0 + 1000, 0);
        t.apply(Command::RunEnded { name: "j".into(), incarnation: 1, run_id: id, status: RunStatus::NotStarted(NotStarted::Deadline), at_ms: T0 + 61_000, fence: Some(FENCE) });
        t.fire(T0 + 5000, 2);
        t.apply(Command::SkipTimes { name: "j".into(), incarnation: 1, until_ms: T0 + 9000, count: 3, reason: "catch-up skip".into(), fence: FENCE });
        let want = "\
2026-12-02T17:00:00.002Z 3 j 2026-12-02T17:00:00.000Z schedule 3 began
2026-12-02T17:00:01.502Z 3 j 2026-12-02T17:00:00.000Z schedule 3 ended exit 0 1.500s
2026-12-02T17:01:01.000Z 7 j 2026-12-02T17:00:01.000Z schedule 3 not-started (deadline)
2026-12-02T17:00:04.800Z - j 2026-12-02T17:00:05.000Z schedule 3 skipped 2 catch-up once
2026-12-02T17:00:09.000Z - j 2026-12-02T17:00:09.000Z - 3 skipped 3 catch-up skip
";
        assert_eq!(t.text(), want);
    }

    #[test]
    fn the_oldest_whole_lines_go_past_the_limit() {
        let mut t = T::new();
        t.apply(Command::SetLimit { name: "events-bytes".into(), value: 4096 });
        for i in 0..100 {
            t.run(T0 + i * 10_000, RunStatus::Exit(1));
        }
        let s = span(&t.kv).unwrap();
        assert!(s.end - s.start <= 4096 && s.end - s.start > 3000, "{s:?}");
        let (at, bytes) = read(&t.kv, 0, usize::MAX).unwrap();
        assert_eq!((at, at + bytes.len() as u64), (s.start, s.end), "a read below the oldest line starts at it");
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("2026-") && text.ends_with("ended exit 1 1.500s\n"), "{text}");
        // A read from the middle of a line reads from there; at the end, nothing.
        let (_, part) = read(&t.kv, s.end - 7, 100).unwrap();
        assert_eq!(part, b"1.500s\n");
        assert!(read(&t.kv, s.end, 100).unwrap().1.is_empty());
    }
}
