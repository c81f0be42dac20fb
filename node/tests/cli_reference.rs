//! The README's configuration table names every flag `jobd --help` shows.

use std::process::Command;

#[test]
fn every_flag_is_in_the_readme() {
    let help = Command::new(env!("CARGO_BIN_EXE_jobd")).arg("--help").output().expect("jobd --help");
    let help = String::from_utf8(help.stdout).unwrap();
    // The checkout's README, found at run time (the binary may have been
    // built from another checkout sharing the target directory).
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test");
    let readme = std::fs::read_to_string(std::path::Path::new(&dir).join("../README.md")).unwrap();
    let flags: Vec<&str> = help
        .split_whitespace()
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-'))
        .filter(|w| !["--help", "--version"].contains(w))
        .collect();
    assert!(flags.len() >= 15, "read the flags from --help: {flags:?}");
    for f in flags {
        assert!(readme.contains(&format!("`{f}`")), "README's configuration table lacks {f}");
    }
}
