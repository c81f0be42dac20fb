//! The README's two commands work on a fresh machine: its set-up
//! (`deploy/dev-setup.sh`) installs every outside program a test runs, and
//! CI runs the same set-up and the same test command a newcomer types.

use std::path::{Path, PathBuf};

use cluster_tests::tools;

fn repo() -> PathBuf {
    cluster_tests::crate_dir().join("..").canonicalize().expect("the repository")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Programs every POSIX system has, which tests may run by name.
const BASE: &[&str] = &["sh", "/bin/sh", "kill", "id"];

#[test]
fn everything_the_set_up_lists_is_installed() {
    let list = tools::listed().expect("deploy/dev-tools.txt parses");
    assert!(list.iter().any(|t| t.source.starts_with("pip:")), "the list holds the pip tool too: {list:?}");
    let out = std::process::Command::new(repo().join("deploy/dev-setup.sh")).arg("--check").output().expect("run dev-setup.sh");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_readme_and_ci_run_the_same_set_up_and_test_command() {
    let readme = read("README.md");
    let ci = read(".ci/run");
    let test = "cargo test --release --workspace";
    let set_up = "deploy/dev-setup.sh";
    // Exactly as .ci/run runs it: no `sudo` in front, which a fresh
    // machine logged in as root may not have (the script calls sudo
    // itself when it is not root).
    assert!(readme.contains(&format!("\n    {set_up}\n")), "the README's set-up is {set_up}, on a line of its own");
    assert!(readme.contains(&format!("    {test}\n")), "the README's test command is {test}");
    let ci_lines: Vec<&str> = ci.lines().map(str::trim).collect();
    let setup_at = ci_lines.iter().position(|l| *l == set_up).expect(".ci/run runs the set-up");
    let test_at = ci_lines.iter().position(|l| *l == test).expect(".ci/run runs the test command");
    assert!(setup_at < test_at, ".ci/run sets up before it tests");
}

/// Every `Command::new("...")` in the tests, the harness and the benchmarks
/// names a base program; anything else goes through `tools`, which only
/// finds what the set-up installs.
#[test]
fn tests_run_outside_programs_only_through_the_list() {
    let mut files = vec![];
    for dir in ["ninep/tests", "node/tests", "node/core/tests", "cluster-tests/src", "cluster-tests/tests"] {
        collect_rs(&repo().join(dir), &mut files);
    }
    assert!(files.len() > 20, "found the sources: {}", files.len());
    let mut strays = vec![];
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            for pat in ["Command::new(\"", "Process::new(\""] {
                if let Some(at) = line.find(pat) {
                    let name = line[at + pat.len()..].split('"').next().unwrap_or("");
                    if !BASE.contains(&name) && f.file_name() != Some("setup.rs".as_ref()) {
                        strays.push(format!("{}:{}: {name}", f.display(), i + 1));
                    }
                }
            }
        }
    }
    assert!(strays.is_empty(), "run these through cluster_tests::tools (and list them in deploy/dev-tools.txt): {strays:?}");
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            // A third-party client's own workspace, not ours.
            if !p.ends_with("sminez") {
                collect_rs(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}
