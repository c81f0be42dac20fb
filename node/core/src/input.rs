//! What clients write, parsed and checked before anything is proposed:
//! clone strings, job names, ctl verbs, and /ctl membership commands. Pure
//! functions; each error is one line saying what is wrong.

/// Longest job name, in bytes.
pub const MAX_NAME: usize = 64;

/// Text of a write: UTF-8, with one trailing newline (or CRLF) ignored.
pub fn text(data: &[u8]) -> Result<&str, String> {
    let s = std::str::from_utf8(data).map_err(|_| "the text is not UTF-8".to_string())?;
    Ok(s.strip_suffix('\n').map(|s| s.strip_suffix('\r').unwrap_or(s)).unwrap_or(s))
}

pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty job name".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!("job name is {} bytes; at most {MAX_NAME}", name.len()));
    }
    if name == "." || name == ".." {
        return Err(format!("{name:?} is not a job name"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("job name {name:?} has {c:?}; use letters, digits, '.', '_' and '-'"));
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
pub struct CloneRequest {
    pub name: String,
    pub schedule: String,
    pub cmd: String,
}

/// `name:cronexpr:cmd`, split at the first two colons (the command may
/// hold more).
pub fn parse_clone(data: &[u8]) -> Result<CloneRequest, String> {
    let s = text(data)?;
    let mut parts = s.splitn(3, ':');
    let (Some(name), Some(schedule), Some(cmd)) = (parts.next(), parts.next(), parts.next()) else {
        let colons = s.matches(':').count();
        return Err(format!("want name:cronexpr:cmd (split at the first two colons); this has {colons} colon(s)"));
    };
    check_name(name)?;
    if cmd.trim().is_empty() {
        return Err("empty command".into());
    }
    // No expression (`name::cmd`): a job that runs only after others
    // (`after` on its ctl) or by hand.
    if !schedule.trim().is_empty() {
        crate::cron::Schedule::parse_new(schedule)?;
    }
    Ok(CloneRequest { name: name.into(), schedule: schedule.trim().into(), cmd: cmd.into() })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    Start,
    Stop,
    Run { force: bool },
    Kill,
    Delete,
    Tz(String),
    Policy(crate::command::Policy),
    /// `spread DURATION|off`: checked against the job's expression by the
    /// proposer, which also stamps the time it re-arms at.
    Spread(Option<i64>),
    /// `after JOB [success|failure|always]` (`Some`), `after off` (`None`).
    After(Option<crate::command::After>),
    /// `notify URL [success|failure|always]`, `notify off`, `notify default`.
    Notify(crate::command::NotifyRule),
}

pub const VERBS: &str = "start, stop, run, run force, kill, delete, tz ZONE, overlap allow|skip|replace, \
catchup once|skip|all [WINDOW], timeout DURATION|off, deadline DURATION|default, spread DURATION|off, \
retry N [BACKOFF]|off, onlost skip|rerun, after JOB [success|failure|always]|off, \
notify URL [success|failure|always]|off|default";

/// One or more newline-separated verbs; all are checked before any runs.
pub fn parse_ctl(data: &[u8]) -> Result<Vec<Verb>, String> {
    let s = text(data)?;
    let mut verbs = vec![];
    for line in s.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        verbs.push(match words.as_slice() {
            ["start"] => Verb::Start,
            ["stop"] => Verb::Stop,
            ["run"] => Verb::Run { force: false },
            ["run", "force"] => Verb::Run { force: true },
            ["delete"] => Verb::Delete,
            ["kill"] => Verb::Kill,
            ["tz", zone] => {
                zone.parse::<chrono_tz::Tz>()
                    .map_err(|_| format!("unknown time zone {zone:?}; use an IANA name such as UTC or Europe/Paris"))?;
                Verb::Tz(zone.to_string())
            }
            ["overlap", mode] => {
                let o = mode.parse().map_err(|()| format!("overlap {mode:?}: use allow, skip or replace"))?;
                Verb::Policy(crate::command::Policy::Overlap(o))
            }
            ["catchup", mode, rest @ ..] if rest.len() <= 1 => {
                let mode = mode.parse().map_err(|()| format!("catchup {mode:?}: use once, skip or all, and optionally a window"))?;
                let window_ms =
                    rest.first().map(|w| crate::cron::parse_duration_ms(w)).transpose().map_err(|e| format!("catchup window: {e}"))?;
                Verb::Policy(crate::command::Policy::Catchup { mode, window_ms })
            }
            ["timeout", "off"] => Verb::Policy(crate::command::Policy::Timeout(None)),
            ["timeout", d] => {
                let ms = crate::cron::parse_duration_ms(d).map_err(|e| format!("timeout: {e}, or off"))?;
                Verb::Policy(crate::command::Policy::Timeout(Some(ms)))
            }
            ["spread", "off"] => Verb::Spread(None),
            ["spread", d] => Verb::Spread(Some(crate::cron::parse_duration_ms(d).map_err(|e| format!("spread: {e}, or off"))?)),
            ["deadline", "default"] => Verb::Policy(crate::command::Policy::Deadline(None)),
            ["deadline", d] => {
                let ms = crate::cron::parse_duration_ms(d).map_err(|e| format!("deadline: {e}, or default"))?;
                Verb::Policy(crate::command::Policy::Deadline(Some(ms)))
            }
            ["retry", "off"] => Verb::Policy(crate::command::Policy::Retry(None)),
            ["retry", n, rest @ ..] if rest.len() <= 1 => Verb::Policy(crate::command::Policy::Retry(Some(parse_retry(n, rest.first())?))),
            ["after", "off"] => Verb::After(None),
            ["after", job, rest @ ..] if rest.len() <= 1 => {
                check_name(job).map_err(|e| format!("after: {e}"))?;
                let on = match rest.first() {
                    Some(on) => on.parse().map_err(|()| format!("after {job} {on:?}: use success, failure or always"))?,
                    None => crate::command::On::Success,
                };
                Verb::After(Some(crate::command::After { job: job.to_string(), on }))
            }
            ["notify", "off"] => Verb::Notify(crate::command::NotifyRule::Off),
            ["notify", "default"] => Verb::Notify(crate::command::NotifyRule::Default),
            ["notify", url, rest @ ..] if rest.len() <= 1 => Verb::Notify(crate::command::NotifyRule::To(parse_notify(url, rest.first())?)),
            ["onlost", mode] => {
                let o = mode.parse().map_err(|()| format!("onlost {mode:?}: use skip or rerun"))?;
                Verb::Policy(crate::command::Policy::OnLost(o))
            }
            _ => return Err(format!("unknown command {line:?}; the verbs are: {VERBS}")),
        });
    }
    if verbs.is_empty() {
        return Err(format!("empty command; the verbs are: {VERBS}"));
    }
    Ok(verbs)
}

/// `--labels key=value,...` (rules: `state::labels`), sorted by key.
/// Empty: none.
pub fn parse_labels(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut labels: Vec<(String, String)> = vec![];
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(format!("label {item:?}: write key=value"));
        };
        labels.push((k.to_string(), v.to_string()));
    }
    crate::state::labels::check(&labels)?;
    labels.sort();
    Ok(labels)
}

/// A write of a job's `env`: `KEY=VALUE` lines (blank lines are skipped;
/// a line's first `=` ends its key; a trailing `\r` is dropped). Nothing
/// (or only blank lines) clears it.
pub fn parse_env(data: &[u8]) -> Result<Vec<(String, String)>, String> {
    let s = text(data)?;
    let mut pairs = vec![];
    for (n, line) in s.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("env line {}: {line:?} has no '='; write KEY=VALUE", n + 1));
        };
        pairs.push((key.to_string(), value.to_string()));
    }
    crate::state::env::check(&pairs)?;
    Ok(pairs)
}

/// `notify URL [ON]`: an http(s) URL, and which ends (default `failure`).
fn parse_notify(url: &str, on: Option<&&str>) -> Result<crate::command::Notify, String> {
    crate::state::notify::check_url(url)?;
    let on = match on {
        Some(on) => on.parse().map_err(|()| format!("notify {url} {on:?}: use success, failure or always"))?,
        None => crate::command::On::Failure,
    };
    Ok(crate::command::Notify { url: url.to_string(), on })
}

/// `retry N [BACKOFF]`: N from 1 to 100, BACKOFF a duration up to an hour.
fn parse_retry(n: &str, backoff: Option<&&str>) -> Result<crate::command::Retry, String> {
    use crate::command::Retry;
    let max = Retry::MAX_RETRIES;
    let retries: u32 = n.parse().ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| format!("retry {n:?}: want a number of retries from 1 to {max}, or off"))?;
    let backoff_ms = match backoff {
        None => Retry::DEFAULT_BACKOFF_MS,
        Some(b) => crate::cron::parse_duration_ms(b).map_err(|e| format!("retry backoff: {e}"))?,
    };
    if backoff_ms > Retry::MAX_BACKOFF_MS {
        return Err(format!("retry backoff {}: at most 1h", backoff.map_or("", |b| b)));
    }
    Ok(Retry { retries, backoff_ms })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterVerb {
    Add { id: u64, raft_addr: String },
    Promote { id: u64 },
    Remove { id: u64 },
    /// Checkpoint this node's database under `DBDIR/backups/`.
    Backup,
    /// Set one of the cluster's limits (replicated).
    Limit { name: String, value: u64 },
    /// The jobs' default webhook (`None`: `notify off`).
    Notify(Option<crate::command::Notify>),
}

pub const CLUSTER_VERBS: &str =
    "add ID RAFTADDR, promote ID, remove ID, backup, limit NAME VALUE, notify URL [success|failure|always]|off";

pub fn parse_cluster_ctl(data: &[u8]) -> Result<Vec<ClusterVerb>, String> {
    let s = text(data)?;
    let id = |w: &str| w.parse::<u64>().map_err(|_| format!("node id {w:?} is not a number"));
    let mut verbs = vec![];
    for line in s.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        verbs.push(match words.as_slice() {
            ["add", n, addr] if addr.contains(':') => ClusterVerb::Add { id: id(n)?, raft_addr: addr.to_string() },
            ["add", _, addr] => return Err(format!("add ID RAFTADDR: {addr:?} has no port; write HOST:PORT")),
            ["promote", n] => ClusterVerb::Promote { id: id(n)? },
            ["remove", n] => ClusterVerb::Remove { id: id(n)? },
            ["backup"] => ClusterVerb::Backup,
            ["notify", "off"] => ClusterVerb::Notify(None),
            ["notify", url, rest @ ..] if rest.len() <= 1 => ClusterVerb::Notify(Some(parse_notify(url, rest.first())?)),
            ["limit", name, v] if crate::state::limits::is_duration(name) => ClusterVerb::Limit {
                name: name.to_string(),
                value: crate::cron::parse_duration_ms(v).map_err(|e| format!("limit {name}: {e}"))? as u64,
            },
            ["limit", name, v] => ClusterVerb::Limit {
                name: name.to_string(),
                value: v.parse().map_err(|_| format!("limit value {v:?} is not a whole number"))?,
            },
            _ => return Err(format!("unknown command {line:?}; the commands are: {CLUSTER_VERBS}")),
        });
    }
    if verbs.is_empty() {
        return Err(format!("empty command; the commands are: {CLUSTER_VERBS}"));
    }
    Ok(verbs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_splits_at_the_first_two_colons() {
        let r = parse_clone(b"hello:0 0/5 * * * ? *:echo a:b:c\n").unwrap();
        assert_eq!(r, CloneRequest { name: "hello".into(), schedule: "0 0/5 * * * ? *".into(), cmd: "echo a:b:c".into() });
    }

    #[test]
    fn bad_clone_strings_are_refused_with_a_reason() {
        let long = format!("{}:* * * * *:true", "x".repeat(65));
        for (input, want) in [
            ("nocolon", "want name:cronexpr:cmd"),
            ("one:colon", "this has 1 colon(s)"),
            (":* * * * *:true", "empty job name"),
            (".:* * * * *:true", "not a job name"),
            ("..:* * * * *:true", "not a job name"),
            ("a/b:* * * * *:true", "has '/'"),
            ("a b:* * * * *:true", "has ' '"),
            (long.as_str(), "at most 64"),
            ("ok:* * * * *:", "empty command"),
            ("ok:* * * * *:   ", "empty command"),
            ("ok:not cron:true", "fields"),
            ("ok:0 0 0 30 2 ?:true", "never fires"),
        ] {
            let err = parse_clone(input.as_bytes()).expect_err(input);
            assert!(err.contains(want), "{input:?}: {err:?} should mention {want:?}");
        }
        assert!(parse_clone(&[0xff, b':']).unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn ctl_verbs() {
        assert_eq!(parse_ctl(b"start").unwrap(), vec![Verb::Start]);
        assert_eq!(parse_ctl(b"stop\nstart\n").unwrap(), vec![Verb::Stop, Verb::Start]);
        assert_eq!(parse_ctl(b"tz Europe/Paris").unwrap(), vec![Verb::Tz("Europe/Paris".into())]);
        assert_eq!(parse_ctl(b"run force").unwrap(), vec![Verb::Run { force: true }]);
        let err = parse_ctl(b"start\nfrobnicate").unwrap_err();
        assert!(err.contains("frobnicate") && err.contains("start, stop, run"), "{err}");
        assert!(parse_ctl(b"tz Mars/Olympus").unwrap_err().contains("unknown time zone"));
        assert!(parse_ctl(b"\n").is_err());
        use crate::command::{Catchup, Overlap, Policy};
        assert_eq!(parse_ctl(b"overlap skip").unwrap(), vec![Verb::Policy(Policy::Overlap(Overlap::Skip))]);
        assert_eq!(
            parse_ctl(b"catchup all 1h").unwrap(),
            vec![Verb::Policy(Policy::Catchup { mode: Catchup::All, window_ms: Some(3_600_000) })]
        );
        assert_eq!(parse_ctl(b"timeout 30s").unwrap(), vec![Verb::Policy(Policy::Timeout(Some(30_000)))]);
        assert!(parse_ctl(b"overlap maybe").unwrap_err().contains("allow, skip or replace"));
        assert!(parse_ctl(b"timeout 10x").unwrap_err().starts_with("timeout: cannot read duration"));
        assert!(parse_ctl(b"catchup all soon").unwrap_err().starts_with("catchup window: "));
        assert_eq!(parse_ctl(b"deadline 90s").unwrap(), vec![Verb::Policy(Policy::Deadline(Some(90_000)))]);
        assert_eq!(parse_ctl(b"deadline default").unwrap(), vec![Verb::Policy(Policy::Deadline(None))]);
        assert_eq!(parse_ctl(b"spread 1h").unwrap(), vec![Verb::Spread(Some(3_600_000))]);
        assert_eq!(parse_ctl(b"spread off").unwrap(), vec![Verb::Spread(None)]);
        assert!(parse_ctl(b"spread 0s").unwrap_err().starts_with("spread: duration 0s is shorter than 1s"));
        use crate::command::{OnLost, Retry};
        assert_eq!(parse_ctl(b"retry 3").unwrap(), vec![Verb::Policy(Policy::Retry(Some(Retry { retries: 3, backoff_ms: 10_000 })))]);
        assert_eq!(parse_ctl(b"retry 100 1h").unwrap(), vec![Verb::Policy(Policy::Retry(Some(Retry { retries: 100, backoff_ms: 3_600_000 })))]);
        assert_eq!(parse_ctl(b"retry off").unwrap(), vec![Verb::Policy(Policy::Retry(None))]);
        assert_eq!(parse_ctl(b"onlost rerun").unwrap(), vec![Verb::Policy(Policy::OnLost(OnLost::Rerun))]);
        for (bad, want) in [
            ("retry 0", "from 1 to 100"),
            ("retry 101", "from 1 to 100"),
            ("retry three", "from 1 to 100"),
            ("retry -1", "from 1 to 100"),
            ("retry 3 soon", "retry backoff: cannot read duration"),
            ("retry 3 0s", "retry backoff: "),
            ("retry 3 2h", "at most 1h"),
            ("retry 3 10s extra", "unknown command"),
            ("retry", "unknown command"),
            ("onlost maybe", "use skip or rerun"),
            ("onlost", "unknown command"),
        ] {
            let err = parse_ctl(bad.as_bytes()).unwrap_err();
            assert!(err.contains(want), "{bad}: {err}");
            assert!(!err.contains('\n'), "{bad}: one line");
        }
        for bad in ["deadline 0s", "deadline -5s", "deadline soon", "deadline 500ms", "deadline"] {
            let err = parse_ctl(bad.as_bytes()).unwrap_err();
            assert!(err.starts_with("deadline: ") || err.starts_with("unknown command"), "{bad}: {err}");
            assert!(!err.contains('\n'), "{bad}: one line");
        }
    }

    #[test]
    fn cluster_verbs() {
        assert_eq!(
            parse_cluster_ctl(b"add 4 127.0.0.1:9000\npromote 4").unwrap(),
            vec![ClusterVerb::Add { id: 4, raft_addr: "127.0.0.1:9000".into() }, ClusterVerb::Promote { id: 4 }]
        );
        assert!(parse_cluster_ctl(b"add x 1:2").unwrap_err().contains("not a number"));
        assert!(parse_cluster_ctl(b"evict 3").unwrap_err().contains("add ID RAFTADDR"));
        assert!(parse_cluster_ctl(b"add 4 somehost").unwrap_err().contains("has no port; write HOST:PORT"));
        assert_eq!(parse_cluster_ctl(b"limit deadline 2m").unwrap(), vec![ClusterVerb::Limit { name: "deadline".into(), value: 120_000 }]);
        assert!(parse_cluster_ctl(b"limit deadline 60").unwrap_err().starts_with("limit deadline: cannot read duration"));
        assert!(parse_cluster_ctl(b"limit runs-kept 5s").unwrap_err().contains("not a whole number"));
        use crate::command::{Notify, On};
        assert_eq!(
            parse_cluster_ctl(b"notify http://h/x always\nnotify off").unwrap(),
            vec![ClusterVerb::Notify(Some(Notify { url: "http://h/x".into(), on: On::Always })), ClusterVerb::Notify(None)]
        );
        assert!(parse_cluster_ctl(b"notify mailto:x").unwrap_err().contains("want an http:// or https:// URL"));
    }

    #[test]
    fn labels() {
        let want = [("gpu", "1"), ("zone", "eu-west.1")].map(|(k, v)| (k.to_string(), v.to_string()));
        assert_eq!(parse_labels("zone=eu-west.1, gpu=1").unwrap(), want, "sorted by key");
        assert_eq!(parse_labels("").unwrap(), vec![]);
        for (bad, want) in [
            ("zone", "write key=value"),
            ("zone=", "1-63 bytes"),
            ("zo ne=a", "1-63 bytes"),
            ("zone=a/b", "1-63 bytes"),
            ("a=1,a=2", "given twice"),
        ] {
            let err = parse_labels(bad).unwrap_err();
            assert!(err.contains(want), "{bad:?}: {err}");
        }
        let many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert!(parse_labels(&many.join(",")).unwrap_err().contains("at most 32"));
    }

    #[test]
    fn env_lines() {
        let pairs = parse_env(b"PATH=/opt/bin:/usr/bin\r\n\nEMPTY=\nURL=http://h/?a=b\n").unwrap();
        let want = [("PATH", "/opt/bin:/usr/bin"), ("EMPTY", ""), ("URL", "http://h/?a=b")];
        assert_eq!(pairs, want.map(|(k, v)| (k.to_string(), v.to_string())));
        assert_eq!(parse_env(b"\n").unwrap(), vec![], "a blank write clears it");
        for (bad, want) in [
            ("A=1\nnoequals", "env line 2: \"noequals\" has no '='"),
            ("JOBD_NODE=3", "jobd's own"),
            ("A=1\nA=2", "given twice"),
            ("9LIVES=x", "want [A-Za-z_]"),
        ] {
            let err = parse_env(bad.as_bytes()).unwrap_err();
            assert!(err.contains(want), "{bad:?}: {err}");
            assert!(!err.contains('\n'), "one line");
        }
        assert!(parse_env(&[0xff]).unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn notify_verbs() {
        use crate::command::{Notify, NotifyRule, On};
        let url = |on| NotifyRule::To(Notify { url: "https://h/x".into(), on });
        assert_eq!(
            parse_ctl(b"notify https://h/x\nnotify https://h/x success\nnotify off\nnotify default").unwrap(),
            vec![Verb::Notify(url(On::Failure)), Verb::Notify(url(On::Success)), Verb::Notify(NotifyRule::Off), Verb::Notify(NotifyRule::Default)]
        );
        for (bad, want) in [
            ("notify https://h/x sometimes", "use success, failure or always"),
            ("notify ftp://h/", "want an http:// or https:// URL"),
            ("notify", "unknown command"),
            ("notify https://h/x failure extra", "unknown command"),
        ] {
            let err = parse_ctl(bad.as_bytes()).unwrap_err();
            assert!(err.contains(want), "{bad}: {err}");
            assert!(!err.contains('\n'), "{bad}: one line");
        }
    }
}
