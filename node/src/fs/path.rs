//! The shape of the tree: which file a fid stands for, the qid of each
//! (derived from replicated state, so every node serves the same qid), and
//! the permissions a Linux mount checks locally.

use ninep::Qid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobFile {
    Ctl,
    Cmd,
    Schedule,
    Log,
    Runs,
    /// A read blocks until a run of the job ends, and answers its `runs` line.
    Wait,
    /// `KEY=VALUE` lines added to each run's environment.
    Env,
}

impl JobFile {
    pub const ALL: [JobFile; 7] = [JobFile::Ctl, JobFile::Cmd, JobFile::Schedule, JobFile::Log, JobFile::Runs, JobFile::Wait, JobFile::Env];

    pub fn name(self) -> &'static str {
        match self {
            JobFile::Ctl => "ctl",
            JobFile::Cmd => "cmd",
            JobFile::Schedule => "schedule",
            JobFile::Log => "log",
            JobFile::Runs => "runs",
            JobFile::Wait => "wait",
            JobFile::Env => "env",
        }
    }

    pub fn from_name(name: &str) -> Option<JobFile> {
        JobFile::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn writable(self) -> bool {
        matches!(self, JobFile::Ctl | JobFile::Cmd | JobFile::Schedule | JobFile::Env)
    }
}

/// An entry of the tree: what a fid points at (a cluster member is
/// `node::Node`, never this). Job paths carry the job's incarnation, so a fid
/// of a deleted job never reaches a new job of the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Root,
    Clone,
    Ctl,
    Jobs,
    Events,
    Job { name: String, incarnation: u64 },
    File { name: String, incarnation: u64, file: JobFile },
}

impl Entry {
    /// Qid paths: 1–5 for the fixed files; `incarnation << 4 | 8..15` for
    /// a job's directory and files (incarnations are log indexes ≥ 1).
    pub fn qid(&self) -> Qid {
        match self {
            Entry::Root => Qid::dir(1),
            Entry::Clone => Qid::file(2),
            Entry::Ctl => Qid::file(3),
            Entry::Jobs => Qid::dir(4),
            Entry::Events => Qid::file(5),
            Entry::Job { incarnation, .. } => Qid::dir(incarnation << 4 | 8),
            Entry::File { incarnation, file, .. } => Qid::file(incarnation << 4 | (9 + *file as u64)),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Entry::Root => "/",
            Entry::Clone => "clone",
            Entry::Ctl => "ctl",
            Entry::Jobs => "jobs",
            Entry::Events => "events",
            Entry::Job { name, .. } => name,
            Entry::File { file, .. } => file.name(),
        }
    }

    /// Unix permission bits: writable control files 0666, read-only files
    /// 0444, directories others create in 0777, the root 0755.
    pub fn perm(&self) -> u32 {
        match self {
            Entry::Root => 0o755,
            Entry::Jobs | Entry::Job { .. } => 0o777,
            Entry::Clone | Entry::Ctl => 0o666,
            Entry::File { file, .. } if file.writable() => 0o666,
            Entry::Events | Entry::File { .. } => 0o444,
        }
    }

    pub fn parent(&self) -> Entry {
        match self {
            Entry::Root | Entry::Clone | Entry::Ctl | Entry::Jobs | Entry::Events => Entry::Root,
            Entry::Job { .. } => Entry::Jobs,
            Entry::File { name, incarnation, .. } => Entry::Job { name: name.clone(), incarnation: *incarnation },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qids_are_distinct_and_stable() {
        let mut seen = std::collections::HashSet::new();
        let mut all = vec![Entry::Root, Entry::Clone, Entry::Ctl, Entry::Jobs, Entry::Events];
        for inc in [1, 2, 77] {
            all.push(Entry::Job { name: "a".into(), incarnation: inc });
            for f in JobFile::ALL {
                all.push(Entry::File { name: "a".into(), incarnation: inc, file: f });
            }
        }
        for n in &all {
            assert!(seen.insert(n.qid().path), "{n:?} shares a qid path");
            assert_eq!(n.qid().version, 0, "generated content: version 0");
        }
    }
}
