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
}

impl JobFile {
    pub const ALL: [JobFile; 5] = [JobFile::Ctl, JobFile::Cmd, JobFile::Schedule, JobFile::Log, JobFile::Runs];

    pub fn name(self) -> &'static str {
        match self {
            JobFile::Ctl => "ctl",
            JobFile::Cmd => "cmd",
            JobFile::Schedule => "schedule",
            JobFile::Log => "log",
            JobFile::Runs => "runs",
        }
    }

    pub fn from_name(name: &str) -> Option<JobFile> {
        JobFile::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn writable(self) -> bool {
        matches!(self, JobFile::Ctl | JobFile::Cmd | JobFile::Schedule)
    }
}

/// What a fid points at. Job paths carry the job's incarnation, so a fid
/// of a deleted job never reaches a new job of the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Root,
    Clone,
    Ctl,
    Jobs,
    Job { name: String, incarnation: u64 },
    File { name: String, incarnation: u64, file: JobFile },
}

impl Node {
    /// Qid paths: 1–4 for the fixed files; `incarnation << 4 | 8..13` for
    /// a job's directory and files (incarnations are log indexes ≥ 1).
    pub fn qid(&self) -> Qid {
        match self {
            Node::Root => Qid::dir(1),
            Node::Clone => Qid::file(2),
            Node::Ctl => Qid::file(3),
            Node::Jobs => Qid::dir(4),
            Node::Job { incarnation, .. } => Qid::dir(incarnation << 4 | 8),
            Node::File { incarnation, file, .. } => Qid::file(incarnation << 4 | (9 + *file as u64)),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Node::Root => "/",
            Node::Clone => "clone",
            Node::Ctl => "ctl",
            Node::Jobs => "jobs",
            Node::Job { name, .. } => name,
            Node::File { file, .. } => file.name(),
        }
    }

    /// Unix permission bits: writable control files 0666, read-only files
    /// 0444, directories others create in 0777, the root 0755.
    pub fn perm(&self) -> u32 {
        match self {
            Node::Root => 0o755,
            Node::Jobs | Node::Job { .. } => 0o777,
            Node::Clone | Node::Ctl => 0o666,
            Node::File { file, .. } if file.writable() => 0o666,
            Node::File { .. } => 0o444,
        }
    }

    pub fn parent(&self) -> Node {
        match self {
            Node::Root | Node::Clone | Node::Ctl | Node::Jobs => Node::Root,
            Node::Job { .. } => Node::Jobs,
            Node::File { name, incarnation, .. } => Node::Job { name: name.clone(), incarnation: *incarnation },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qids_are_distinct_and_stable() {
        let mut seen = std::collections::HashSet::new();
        let mut all = vec![Node::Root, Node::Clone, Node::Ctl, Node::Jobs];
        for inc in [1, 2, 77] {
            all.push(Node::Job { name: "a".into(), incarnation: inc });
            for f in JobFile::ALL {
                all.push(Node::File { name: "a".into(), incarnation: inc, file: f });
            }
        }
        for n in &all {
            assert!(seen.insert(n.qid().path), "{n:?} shares a qid path");
            assert_eq!(n.qid().version, 0, "generated content: version 0");
        }
    }
}
