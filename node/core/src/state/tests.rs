//! The firing rules and the log, as transcripts of commands.

use std::collections::BTreeMap;

use super::*;
use crate::command::Fence;
use crate::command::{RunStatus, Trigger};

type Mem = BTreeMap<Vec<u8>, Vec<u8>>;

const FENCE: Fence = Fence {
    term: 2,
    node: 1,
    incarnation: 7,
};

struct T {
    kv: Mem,
    index: u64,
}

impl T {
    fn new() -> T {
        let mut t = T {
            kv: Mem::new(),
            index: 0,
        };
        t.apply(Command::CreateJob {
            name: "j".into(),
            schedule: "* * * * * *".into(),
            cmd: "true".into(),
            at_ms: 0,
        });
        t.apply(Command::StartJob {
            name: "j".into(),
            at_ms: 1000,
        });
        t
    }
    fn apply(&mut self, c: Command) -> Response {
        self.index += 1;
        apply(&mut self.kv, self.index, &c).unwrap()
    }
    fn job(&self) -> Job {
        load_job(&self.kv, "j").unwrap().unwrap()
    }
    fn fire(&mut self, at: i64) -> Response {
        self.fire_inc(at, 1)
    }
    /// A fire from a version that claims its runs before beginning them.
    fn fire_claiming(&mut self, at: i64) -> Response {
        self.apply(Command::Fire {
            name: "j".into(),
            incarnation: 1,
            scheduled_ms: at,
            trigger: Trigger::Schedule,
            skipped: 0,
            fence: FENCE,
            at_ms: at - 200,
            claims: true,
        })
    }
    fn fire_inc(&mut self, at: i64, incarnation: u64) -> Response {
        self.apply(Command::Fire {
            name: "j".into(),
            incarnation,
            scheduled_ms: at,
            trigger: Trigger::Schedule,
            skipped: 0,
            fence: FENCE,
            at_ms: at - 200,
            claims: false,
        })
    }
    fn log(&self) -> String {
        let j = self.job();
        String::from_utf8(log::read(&self.kv, &j, 0, usize::MAX).unwrap().1).unwrap()
    }
}

fn accepted(r: &Response) -> u64 {
    match r {
        Response::Accepted { run_id } => *run_id,
        other => panic!("expected acceptance, got {other:?}"),
    }
}

#[test]
fn a_fire_is_accepted_once_and_only_in_order() {
    let mut t = T::new();
    accepted(&t.fire(2000));
    assert!(
        matches!(t.fire(2000), Response::Rejected { .. }),
        "duplicate"
    );
    assert!(matches!(t.fire(1500), Response::Rejected { .. }), "stale");
    accepted(&t.fire(3000));
    assert_eq!(t.job().last_accepted_ms, Some(3000));
}

#[test]
fn fires_respect_armed_at_stop_and_incarnation() {
    let mut t = T::new();
    assert!(
        matches!(t.fire(1000), Response::Rejected { .. }),
        "not after armed-at"
    );
    t.apply(Command::StopJob {
        name: "j".into(),
        at_ms: 0,
    });
    assert!(matches!(t.fire(5000), Response::Rejected { .. }), "stopped");
    t.apply(Command::StartJob {
        name: "j".into(),
        at_ms: 9000,
    });
    assert!(
        matches!(t.fire(8000), Response::Rejected { .. }),
        "a stopped period is not missed"
    );
    assert!(
        matches!(t.fire_inc(10_000, 99), Response::Rejected { .. }),
        "wrong incarnation"
    );
    accepted(&t.fire(10_000));
}

#[test]
fn manual_runs_do_not_move_the_last_accepted_time() {
    let mut t = T::new();
    accepted(&t.fire(2000));
    accepted(&t.apply(Command::RunNow {
        name: "j".into(),
        incarnation: 1,
        fence: FENCE,
        at_ms: 50_000,
        force: false,
        claims: false,
    }));
    assert_eq!(t.job().last_accepted_ms, Some(2000));
    accepted(&t.fire(3000));
}

#[test]
fn a_run_logs_its_start_output_and_end_once() {
    let mut t = T::new();
    let id = accepted(&t.fire(2000));
    let out = |seq, lines: &[&str]| Command::Output {
        name: "j".into(),
        incarnation: 1,
        run_id: id,
        seq,
        lines: lines.iter().map(|s| s.to_string()).collect(),
        at_ms: 2100,
        fence: None,
    };
    assert_eq!(
        t.apply(Command::RunStarted {
            name: "j".into(),
            incarnation: 1,
            run_id: id,
            at_ms: 2001,
            fence: None
        }),
        Response::Done
    );
    assert_eq!(t.apply(out(0, &["hello", "world"])), Response::Done);
    assert!(
        matches!(
            t.apply(out(0, &["hello", "world"])),
            Response::Rejected { .. }
        ),
        "a repeated batch"
    );
    assert!(
        matches!(t.apply(out(2, &["gap"])), Response::Rejected { .. }),
        "a skipped batch"
    );
    let end = Command::RunEnded {
        name: "j".into(),
        incarnation: 1,
        run_id: id,
        status: RunStatus::Exit(0),
        at_ms: 2501,
        fence: None,
    };
    assert_eq!(t.apply(end.clone()), Response::Done);
    assert!(
        matches!(t.apply(end), Response::Rejected { .. }),
        "ends once"
    );
    assert!(
        matches!(t.apply(out(1, &["late"])), Response::Rejected { .. }),
        "no output after the end"
    );
    let log = t.log();
    let texts: Vec<&str> = log
        .lines()
        .map(|l| l.split_once(" UTC:").unwrap().1)
        .collect();
    assert_eq!(
        texts,
        [
            format!("started run {id}").as_str(),
            "hello",
            "world",
            format!("run {id} exit 0 in 500ms").as_str()
        ]
    );
    assert!(
        log.starts_with("1970-01-01 00:00:02.001000000 +0000 UTC:started run"),
        "{log}"
    );
    let j = t.job();
    assert_eq!(
        (j.runs, j.failures, j.last_status.as_deref()),
        (1, 0, Some("exit 0"))
    );
}

#[test]
fn retention_trims_whole_lines_and_offsets_stay_logical() {
    let mut t = T::new();
    let mut job = t.job();
    for i in 0..10 {
        log::append(&mut t.kv, &mut job, 0, &format!("line {i}")).unwrap();
    }
    let line_len = job.log_end / 10;
    log::trim(&mut t.kv, &mut job, line_len * 3 + 1).unwrap();
    assert_eq!(
        job.log_start,
        line_len * 7,
        "exactly the oldest whole lines were dropped"
    );
    assert_eq!(job.log_end, line_len * 10, "the end does not move");
    // Below the oldest kept byte: reading starts at the oldest kept line.
    let (at, bytes) = log::read(&t.kv, &job, 0, usize::MAX).unwrap();
    assert_eq!(at, line_len * 7);
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.starts_with("1970") && text.lines().count() == 3 && text.ends_with("line 9\n"),
        "{text}"
    );
    // A read in the middle of a line continues from there.
    let (_, part) = log::read(&t.kv, &job, line_len * 9 + 3, 4).unwrap();
    assert_eq!(part.len(), 4);
    // At the end: nothing.
    assert!(log::read(&t.kv, &job, job.log_end, 100)
        .unwrap()
        .1
        .is_empty());
}

/// A read near the end of a long log gets only the lines it returns:
/// a follower of the log's end polls it, and a walk from the oldest kept
/// line on every read cost one get per kept line.
#[test]
fn a_log_read_seeks_to_its_line() {
    struct Counting<'a>(&'a BTreeMap<Vec<u8>, Vec<u8>>, std::cell::Cell<usize>);
    impl KvRead for Counting<'_> {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
            self.1.set(self.1.get() + 1);
            KvRead::get(self.0, key)
        }
    }
    impl KvSeek for Counting<'_> {
        fn key_at_or_before(&self, key: &[u8], prefix: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
            self.0.key_at_or_before(key, prefix)
        }
    }
    let mut t = T::new();
    let mut job = t.job();
    for i in 0..1000 {
        log::append(&mut t.kv, &mut job, 0, &format!("line {i:04}")).unwrap();
    }
    let line_len = job.log_end / 1000;
    let kv = Counting(&t.kv, std::cell::Cell::new(0));
    // From the middle of the second-to-last line to the end.
    let (at, bytes) = log::read(&kv, &job, line_len * 998 + 5, usize::MAX).unwrap();
    assert_eq!(
        (at, bytes.len() as u64),
        (line_len * 998 + 5, line_len * 2 - 5)
    );
    assert!(String::from_utf8(bytes)
        .unwrap()
        .ends_with(":line 0998\n1970-01-01 00:00:00.000000000 +0000 UTC:line 0999\n"));
    assert_eq!(kv.1.get(), 2, "one get per line read");
    let (_, none) = log::read(&kv, &job, job.log_end, 100).unwrap();
    assert!(none.is_empty());
    assert_eq!(kv.1.get(), 2, "nothing read at the end");
}

#[test]
fn deleting_a_job_removes_its_log_and_runs() {
    let mut t = T::new();
    let id = accepted(&t.fire(2000));
    t.apply(Command::RunStarted {
        name: "j".into(),
        incarnation: 1,
        run_id: id,
        at_ms: 2001,
        fence: None,
    });
    t.apply(Command::DeleteJob { name: "j".into() });
    let left: Vec<_> =
        t.kv.keys()
            .filter(|k| {
                [b"log/".as_slice(), b"run/", b"active/", b"started/"]
                    .iter()
                    .any(|p| k.starts_with(p))
            })
            .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn overlap_skip_counts_the_time_and_replace_cancels_the_running_one() {
    use crate::command::{Overlap, Policy};
    let mut t = T::new();
    t.apply(Command::SetPolicy {
        name: "j".into(),
        policy: Policy::Overlap(Overlap::Skip),
        at_ms: 0,
    });
    let first = accepted(&t.fire(2000));
    t.apply(Command::RunStarted {
        name: "j".into(),
        incarnation: 1,
        run_id: first,
        at_ms: 2000,
        fence: None,
    });
    assert_eq!(t.fire(3000), Response::SkippedForOverlap);
    assert_eq!(
        (t.job().last_accepted_ms, t.job().skipped),
        (Some(3000), 1),
        "the time is used up and counted"
    );
    assert!(t.log().contains("skipped 1 scheduled times (overlap)"));
    // Forced manual runs ignore the policy.
    accepted(&t.apply(Command::RunNow {
        name: "j".into(),
        incarnation: 1,
        fence: FENCE,
        at_ms: 3500,
        force: true,
        claims: false,
    }));
    t.apply(Command::SetPolicy {
        name: "j".into(),
        policy: Policy::Overlap(Overlap::Replace),
        at_ms: 0,
    });
    let third = accepted(&t.fire(4000));
    assert!(
        run::load_run(&t.kv, 1, first).unwrap().unwrap().cancel,
        "the running one is told to stop"
    );
    assert!(!run::load_run(&t.kv, 1, third).unwrap().unwrap().cancel);
}

#[test]
fn skipping_times_follows_the_firing_rules() {
    let mut t = T::new();
    let skip = |until_ms, count| Command::SkipTimes {
        name: "j".into(),
        incarnation: 1,
        until_ms,
        count,
        reason: "catch-up skip".into(),
        fence: FENCE,
    };
    assert_eq!(t.apply(skip(5000, 4)), Response::Done);
    assert_eq!((t.job().last_accepted_ms, t.job().skipped), (Some(5000), 4));
    assert!(matches!(t.apply(skip(5000, 1)), Response::Rejected { .. }));
    assert!(
        matches!(t.fire(4000), Response::Rejected { .. }),
        "skipped times do not fire later"
    );
    assert!(t
        .log()
        .contains("skipped 4 scheduled times (catch-up skip)"));
}

#[test]
fn a_runs_output_is_capped_once() {
    let mut t = T::new();
    let id = accepted(&t.fire(2000));
    t.apply(Command::RunStarted {
        name: "j".into(),
        incarnation: 1,
        run_id: id,
        at_ms: 2001,
        fence: None,
    });
    let line = "x".repeat(64 << 10);
    for seq in 0..20 {
        let lines = vec![line.clone(); 2];
        assert_eq!(
            t.apply(Command::Output {
                name: "j".into(),
                incarnation: 1,
                run_id: id,
                seq,
                lines,
                at_ms: 2100,
                fence: None
            }),
            Response::Done
        );
    }
    let log = t.log();
    assert_eq!(log.matches("the rest is dropped").count(), 1);
    // Whole lines until the cap is reached (the log's own retention may
    // have trimmed the oldest of them since).
    let run = run::load_run(&t.kv, 1, id).unwrap().unwrap();
    assert_eq!(run.output_bytes, 16 * ((64 << 10) + 1));
}

#[test]
fn the_started_and_active_indexes_follow_the_jobs_and_runs() {
    let mut t = T::new();
    assert!(
        t.kv.contains_key(&started_key("j")),
        "start indexes the job"
    );
    let id = accepted(&t.fire(2000));
    assert!(
        t.kv.contains_key(&run::active_key(1, id)),
        "an accepted run is active"
    );
    t.apply(Command::RunEnded {
        name: "j".into(),
        incarnation: 1,
        run_id: id,
        status: RunStatus::NotStarted(crate::command::NotStarted::Deadline),
        at_ms: 3000,
        fence: None,
    });
    assert!(
        !t.kv.contains_key(&run::active_key(1, id)),
        "an ended run is not"
    );
    t.apply(Command::StopJob {
        name: "j".into(),
        at_ms: 0,
    });
    assert!(
        !t.kv.contains_key(&started_key("j")),
        "stop unindexes the job"
    );
}

#[test]
fn limits_are_replicated_state_and_apply_at_the_next_change() {
    let mut t = T::new();
    let set = |t: &mut T, name: &str, value: u64| {
        t.apply(Command::SetLimit {
            name: name.into(),
            value,
        })
    };
    // A refused limit changes nothing.
    assert!(matches!(
        set(&mut t, "runs-kept", 0),
        Response::Rejected { .. }
    ));
    assert!(matches!(set(&mut t, "speed", 3), Response::Rejected { .. }));
    assert_eq!(limits::load(&t.kv).unwrap(), limits::Limits::default());
    // runs-kept: the third run pushes the oldest ended one out when two are kept.
    assert_eq!(set(&mut t, "runs-kept", 2), Response::Done);
    for s in 2..5 {
        let id = accepted(&t.fire(s * 1000));
        t.apply(Command::RunEnded {
            name: "j".into(),
            incarnation: 1,
            run_id: id,
            status: RunStatus::Exit(0),
            at_ms: s * 1000 + 1,
            fence: None,
        });
    }
    assert_eq!(t.job().recent_runs.len(), 2);
    // log-bytes: the log is trimmed at the next line.
    assert_eq!(set(&mut t, "log-bytes", 4096), Response::Done);
    let id = accepted(&t.fire(5000));
    t.apply(Command::RunStarted {
        name: "j".into(),
        incarnation: 1,
        run_id: id,
        at_ms: 5001,
        fence: None,
    });
    let lines: Vec<String> = (0..200)
        .map(|i| format!("line {i:03} {}", "x".repeat(40)))
        .collect();
    t.apply(Command::Output {
        name: "j".into(),
        incarnation: 1,
        run_id: id,
        seq: 0,
        lines,
        at_ms: 5002,
        fence: None,
    });
    let log = t.log();
    assert!(
        log.len() <= 4096 && log.ends_with("x\n") && log.contains("line 199 "),
        "{} bytes",
        log.len()
    );
    // max-jobs: one job exists, so a limit of one refuses the next create.
    assert_eq!(set(&mut t, "max-jobs", 1), Response::Done);
    let r = t.apply(Command::CreateJob {
        name: "k".into(),
        schedule: "* * * * *".into(),
        cmd: "true".into(),
        at_ms: 0,
    });
    assert!(
        matches!(r, Response::Rejected { ref reason } if reason.contains("max-jobs")),
        "{r:?}"
    );
}

#[test]
fn a_batch_answers_each_command_and_gives_each_new_thing_its_own_id() {
    let mut t = T::new();
    let create = |name: &str| Command::CreateJob {
        name: name.into(),
        schedule: "* * * * * *".into(),
        cmd: "true".into(),
        at_ms: 0,
    };
    let run_now = |force| Command::RunNow {
        name: "j".into(),
        incarnation: 1,
        fence: FENCE,
        at_ms: 5000,
        force,
        claims: false,
    };
    // Entry 3 holds five commands: two creates, a refused create, two forced runs.
    let r = t.apply(Command::Batch(vec![
        create("a"),
        create("b"),
        create("a"),
        run_now(true),
        run_now(true),
    ]));
    let Response::Batch(answers) = r else {
        panic!("a batch gets one answer per command, got {r:?}")
    };
    assert_eq!(
        answers,
        vec![
            Response::Created { incarnation: 3 },
            Response::Created { incarnation: 4 },
            Response::AlreadyExists,
            Response::Accepted { run_id: 5 },
            Response::Accepted { run_id: 6 },
        ]
    );
    // The next entries start above the ids the batch took.
    assert_eq!(accepted(&t.apply(run_now(true))), 7);
    assert_eq!(t.apply(create("c")), Response::Created { incarnation: 8 });
    // Later, ids are the log index again.
    t.index = 20;
    assert_eq!(accepted(&t.apply(run_now(true))), 21);
    let runs: Vec<u64> = t.job().recent_runs;
    assert_eq!(runs, vec![5, 6, 7, 21]);
}

#[test]
fn a_batch_inside_a_batch_is_refused_and_changes_nothing() {
    let mut t = T::new();
    let before = t.kv.clone();
    let r = t.apply(Command::Batch(vec![Command::Batch(vec![
        Command::StopJob {
            name: "j".into(),
            at_ms: 0,
        },
    ])]));
    assert!(
        matches!(&r, Response::Batch(a) if matches!(a[..], [Response::Rejected { .. }])),
        "{r:?}"
    );
    assert_eq!(t.kv, before);
}

#[test]
fn each_run_keeps_the_deadline_it_was_accepted_with() {
    use crate::command::Policy;
    let mut t = T::new();
    let run = |t: &T, id| run::load_run(&t.kv, 1, id).unwrap().unwrap();
    // The cluster's default, from the scheduled time.
    let a = accepted(&t.fire(2000));
    assert_eq!(
        run(&t, a).begin_by(),
        2000 + limits::DEFAULT_DEADLINE_MS as i64
    );
    // The job's own; a later change moves only later runs.
    t.apply(Command::SetPolicy {
        name: "j".into(),
        policy: Policy::Deadline(Some(5000)),
        at_ms: 0,
    });
    let b = accepted(&t.fire(3000));
    t.apply(Command::SetPolicy {
        name: "j".into(),
        policy: Policy::Deadline(None),
        at_ms: 0,
    });
    t.apply(Command::SetLimit {
        name: "deadline".into(),
        value: 9000,
    });
    assert_eq!(run(&t, b).begin_by(), 8000);
    assert_eq!(
        run(&t, a).begin_by(),
        2000 + limits::DEFAULT_DEADLINE_MS as i64
    );
    // A catch-up run counts from when it was fired, not from its old time.
    let c = t.apply(Command::Fire {
        name: "j".into(),
        incarnation: 1,
        scheduled_ms: 4000,
        trigger: Trigger::Catchup,
        skipped: 0,
        fence: FENCE,
        at_ms: 60_000,
        claims: false,
    });
    assert_eq!(run(&t, accepted(&c)).begin_by(), 69_000);
    // A manual run from its request.
    let m = t.apply(Command::RunNow {
        name: "j".into(),
        incarnation: 1,
        fence: FENCE,
        at_ms: 70_000,
        force: true,
        claims: false,
    });
    assert_eq!(run(&t, accepted(&m)).begin_by(), 79_000);
}

#[test]
fn runs_kept_never_drops_a_run_that_has_not_ended() {
    let mut t = T::new();
    t.apply(Command::SetLimit {
        name: "runs-kept".into(),
        value: 2,
    });
    let first = accepted(&t.fire(2000));
    let second = accepted(&t.fire(3000));
    let third = accepted(&t.fire(4000));
    assert_eq!(
        t.job().recent_runs,
        vec![first, second, third],
        "all three are unfinished: all kept"
    );
    t.apply(Command::RunEnded {
        name: "j".into(),
        incarnation: 1,
        run_id: second,
        status: RunStatus::Exit(0),
        at_ms: 4500,
        fence: None,
    });
    let fourth = accepted(&t.fire(5000));
    assert_eq!(
        t.job().recent_runs,
        vec![first, third, fourth],
        "the ended one goes first"
    );
    assert!(run::load_run(&t.kv, 1, second).unwrap().is_none());
}

#[test]
fn a_change_of_spread_rearms_a_started_job() {
    use crate::command::Policy;
    let mut t = T::new();
    let spread = Policy::Spread {
        spread_ms: Some(60_000),
        at_ms: 5000,
    };
    t.apply(Command::SetPolicy {
        name: "j".into(),
        policy: spread,
        at_ms: 0,
    });
    let job = t.job();
    assert_eq!((job.spread_ms, job.armed_at_ms), (Some(60_000), Some(5000)));
    assert!(
        matches!(t.fire(4000), Response::Rejected { .. }),
        "a time before the change is not missed"
    );
}

#[test]
fn stop_marks_the_accepted_runs_that_have_not_begun_and_spares_manual_ones() {
    let mut t = T::new();
    let scheduled = accepted(&t.fire(2000));
    let manual = accepted(&t.apply(Command::RunNow {
        name: "j".into(),
        incarnation: 1,
        fence: FENCE,
        at_ms: 2100,
        force: true,
        claims: false,
    }));
    let begun = accepted(&t.fire(3000));
    t.apply(Command::RunStarted {
        name: "j".into(),
        incarnation: 1,
        run_id: begun,
        at_ms: 3000,
        fence: None,
    });
    t.apply(Command::StopJob {
        name: "j".into(),
        at_ms: 0,
    });
    let run = |t: &T, id| run::load_run(&t.kv, 1, id).unwrap().unwrap();
    assert!(
        run(&t, scheduled).stopped,
        "a pending scheduled run will not begin"
    );
    assert!(
        !run(&t, manual).stopped,
        "a manual run may run on a stopped job"
    );
    assert!(!run(&t, begun).stopped, "stop does not touch a running run");
    // Started again, the old pending run stays stopped.
    t.apply(Command::StartJob {
        name: "j".into(),
        at_ms: 4000,
    });
    assert!(run(&t, scheduled).stopped);
}

/// The claim rule as a small model: one accepted run, and every sequence
/// of up to four claims (its node's `Begin`, a second leader's and a
/// third's `TakeOver`, each possibly repeated, in every order): exactly
/// one claim is accepted, the first; afterwards only the winner's start,
/// output and end are accepted, and a loser's never are.
#[test]
fn of_every_interleaving_of_claims_the_first_wins_and_only_its_records_count() {
    let owner = FENCE;
    let second = Fence {
        term: 3,
        node: 2,
        incarnation: 8,
    };
    let third = Fence {
        term: 4,
        node: 3,
        incarnation: 9,
    };
    let claims = [(owner, false), (second, true), (third, true)];
    let mut sequences: Vec<Vec<usize>> = vec![vec![]];
    for _ in 0..4 {
        let longer: Vec<Vec<usize>> = sequences
            .iter()
            .flat_map(|s| (0..3).map(move |c| [s.clone(), vec![c]].concat()))
            .collect();
        sequences.extend(longer);
    }
    sequences.retain(|s| !s.is_empty());
    sequences.sort();
    sequences.dedup();
    assert!(sequences.len() > 100);
    for seq in sequences {
        let mut t = T::new();
        let id = accepted(&t.fire_claiming(2000));
        let mut winner = None;
        for &c in &seq {
            let (fence, take) = claims[c];
            let cmd = if take {
                Command::TakeOver {
                    name: "j".into(),
                    incarnation: 1,
                    run_id: id,
                    fence,
                    at_ms: 2100,
                }
            } else {
                Command::Begin {
                    name: "j".into(),
                    incarnation: 1,
                    run_id: id,
                    fence,
                }
            };
            let r = t.apply(cmd);
            // A take-over from the run's current owner is refused too.
            let expect = winner.is_none() && (take || fence == owner);
            assert_eq!(
                r == Response::Done,
                expect,
                "{seq:?}: claim {c} answered {r:?}"
            );
            if r == Response::Done {
                winner = Some(fence);
            }
        }
        let winner = winner.expect("the first claim wins");
        assert_eq!(winner, claims[seq[0]].0, "{seq:?}");
        let run = run::load_run(&t.kv, 1, id).unwrap().unwrap();
        assert!(run.claimed && run.fence == winner && run.node == winner.node);
        for (loser, _) in claims.iter().filter(|(f, _)| *f != winner) {
            let start = Command::RunStarted {
                name: "j".into(),
                incarnation: 1,
                run_id: id,
                at_ms: 2200,
                fence: Some(*loser),
            };
            assert!(
                matches!(t.apply(start), Response::Rejected { .. }),
                "{seq:?}: a loser's start"
            );
            let end = Command::RunEnded {
                name: "j".into(),
                incarnation: 1,
                run_id: id,
                status: RunStatus::Exit(0),
                at_ms: 2300,
                fence: Some(*loser),
            };
            assert!(
                matches!(t.apply(end), Response::Rejected { .. }),
                "{seq:?}: a loser's end"
            );
        }
        let start = Command::RunStarted {
            name: "j".into(),
            incarnation: 1,
            run_id: id,
            at_ms: 2200,
            fence: Some(winner),
        };
        assert_eq!(t.apply(start), Response::Done, "{seq:?}");
        let out = Command::Output {
            name: "j".into(),
            incarnation: 1,
            run_id: id,
            seq: 0,
            lines: vec!["x".into()],
            at_ms: 2250,
            fence: Some(winner),
        };
        assert_eq!(t.apply(out), Response::Done);
        let end = Command::RunEnded {
            name: "j".into(),
            incarnation: 1,
            run_id: id,
            status: RunStatus::Exit(0),
            at_ms: 2300,
            fence: Some(winner),
        };
        assert_eq!(t.apply(end), Response::Done);
    }
}

/// With claims given back: for every sequence of up to five claims,
/// releases and starts from three fences (a fence that started never gives
/// its claim back, as a node that opened the gate never does), at most one
/// start is accepted, and a fence that gave its claim back never starts.
#[test]
fn of_every_interleaving_of_claims_releases_and_starts_at_most_one_start_counts() {
    let fences = [
        FENCE,
        Fence {
            term: 3,
            node: 2,
            incarnation: 8,
        },
        Fence {
            term: 4,
            node: 3,
            incarnation: 9,
        },
    ];
    // Event e: fence e % 3; kind e / 3: 0 claim (the owner's Begin, the
    // others' TakeOver), 1 release, 2 start.
    let mut sequences: Vec<Vec<usize>> = vec![vec![]];
    let mut all = vec![];
    for _ in 0..5 {
        sequences = sequences
            .iter()
            .flat_map(|s| (0..9).map(move |e| [s.clone(), vec![e]].concat()))
            .collect();
        all.extend(sequences.iter().cloned());
    }
    let why = crate::command::NotStarted::FenceLost;
    let mut released_then_claimed = 0;
    for seq in all {
        let mut t = T::new();
        let id = accepted(&t.fire_claiming(2000));
        let (mut started, mut gave_back): (Vec<usize>, Vec<usize>) = (vec![], vec![]);
        for &e in &seq {
            let (f, fence) = (e % 3, fences[e % 3]);
            let cmd = match e / 3 {
                0 if f == 0 => Command::Begin {
                    name: "j".into(),
                    incarnation: 1,
                    run_id: id,
                    fence,
                },
                0 => Command::TakeOver {
                    name: "j".into(),
                    incarnation: 1,
                    run_id: id,
                    fence,
                    at_ms: 2100,
                },
                1 if started.contains(&f) => continue,
                1 => Command::Release {
                    name: "j".into(),
                    incarnation: 1,
                    run_id: id,
                    fence,
                    why,
                    at_ms: 2150,
                },
                _ => Command::RunStarted {
                    name: "j".into(),
                    incarnation: 1,
                    run_id: id,
                    at_ms: 2200,
                    fence: Some(fence),
                },
            };
            let r = t.apply(cmd);
            match (e / 3, r == Response::Done) {
                (0, true) if !gave_back.is_empty() => released_then_claimed += 1,
                (1, true) => gave_back.push(f),
                (2, true) => {
                    assert!(
                        !gave_back.contains(&f),
                        "{seq:?}: fence {f} started after giving its claim back"
                    );
                    started.push(f);
                }
                _ => {}
            }
        }
        assert!(started.len() <= 1, "{seq:?}: {started:?} started");
    }
    assert!(
        released_then_claimed > 0,
        "some runs given back were taken over"
    );
}

#[test]
fn a_claim_is_refused_for_a_stopped_killed_or_ended_run_and_a_start_needs_one() {
    let mut t = T::new();
    let id = accepted(&t.fire_claiming(2000));
    let start = |fence| Command::RunStarted {
        name: "j".into(),
        incarnation: 1,
        run_id: id,
        at_ms: 2000,
        fence,
    };
    assert!(
        matches!(t.apply(start(Some(FENCE))), Response::Rejected { .. }),
        "a start before the claim"
    );
    t.apply(Command::StopJob {
        name: "j".into(),
        at_ms: 0,
    });
    let begin = Command::Begin {
        name: "j".into(),
        incarnation: 1,
        run_id: id,
        fence: FENCE,
    };
    assert!(
        matches!(t.apply(begin.clone()), Response::Rejected { .. }),
        "stopped"
    );
    t.apply(Command::StartJob {
        name: "j".into(),
        at_ms: 2500,
    });
    assert!(
        matches!(t.apply(begin.clone()), Response::Rejected { .. }),
        "stop marked it: a start does not revive it"
    );
    let id = accepted(&t.fire_claiming(3000));
    t.apply(Command::KillRuns {
        name: "j".into(),
        incarnation: 1,
        at_ms: 0,
    });
    let begin = Command::Begin {
        name: "j".into(),
        incarnation: 1,
        run_id: id,
        fence: FENCE,
    };
    assert!(
        matches!(t.apply(begin), Response::Rejected { .. }),
        "killed"
    );
    // A run from a version before claims: started without one, never
    // taken over.
    let id = accepted(&t.fire(4000));
    let take = Command::TakeOver {
        name: "j".into(),
        incarnation: 1,
        run_id: id,
        fence: Fence {
            term: 3,
            node: 2,
            incarnation: 8,
        },
        at_ms: 4000,
    };
    assert!(
        matches!(t.apply(take), Response::Rejected { .. }),
        "an old version's run"
    );
    let old = Command::RunStarted {
        name: "j".into(),
        incarnation: 1,
        run_id: id,
        at_ms: 4000,
        fence: None,
    };
    assert_eq!(t.apply(old), Response::Done);
    let begin = Command::Begin {
        name: "j".into(),
        incarnation: 1,
        run_id: id,
        fence: FENCE,
    };
    assert!(
        matches!(t.apply(begin), Response::Rejected { .. }),
        "running"
    );
    // A claiming version's run starts only claimed, even without a fence.
    let id = accepted(&t.fire_claiming(5000));
    let old = Command::RunStarted {
        name: "j".into(),
        incarnation: 1,
        run_id: id,
        at_ms: 5000,
        fence: None,
    };
    assert!(
        matches!(t.apply(old), Response::Rejected { .. }),
        "unclaimed"
    );
}

/// The sweep ends a run under the fence it judged gone: refused once the
/// run was taken over; `lost`, not `not-started`, once it was claimed.
#[test]
fn a_sweeps_end_is_refused_after_a_takeover_and_is_lost_after_a_claim() {
    let mut t = T::new();
    let id = accepted(&t.fire_claiming(2000));
    let new = Fence {
        term: 3,
        node: 2,
        incarnation: 8,
    };
    let take = Command::TakeOver {
        name: "j".into(),
        incarnation: 1,
        run_id: id,
        fence: new,
        at_ms: 2100,
    };
    assert_eq!(t.apply(take), Response::Done);
    let gone = RunStatus::NotStarted(crate::command::NotStarted::NodeGone);
    let swept = Command::RunEnded {
        name: "j".into(),
        incarnation: 1,
        run_id: id,
        status: gone.clone(),
        at_ms: 2200,
        fence: Some(FENCE),
    };
    assert!(
        matches!(t.apply(swept), Response::Rejected { .. }),
        "the run is the new leader's"
    );
    let id = accepted(&t.fire_claiming(3000));
    assert_eq!(
        t.apply(Command::Begin {
            name: "j".into(),
            incarnation: 1,
            run_id: id,
            fence: FENCE
        }),
        Response::Done
    );
    let swept = Command::RunEnded {
        name: "j".into(),
        incarnation: 1,
        run_id: id,
        status: gone,
        at_ms: 3200,
        fence: Some(FENCE),
    };
    assert_eq!(t.apply(swept), Response::Done);
    assert_eq!(
        run::load_run(&t.kv, 1, id).unwrap().unwrap().status,
        RunStatus::Lost,
        "claimed, so it may have begun"
    );
}

mod retries;
