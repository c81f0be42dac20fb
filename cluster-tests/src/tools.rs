//! The outside programs tests and benchmarks run, found in one place.
//!
//! Every such program is listed in `deploy/dev-tools.txt`, which
//! `deploy/dev-setup.sh` (the README's set-up) installs. A test asks for a
//! tool here by name: a name missing from the list is a bug in the test
//! (list it, so the set-up installs it); a listed tool missing from PATH
//! means the set-up was not run, and the message says so.
//!
//! Plain `std`, so `ninep`'s and `node`'s tests include this file by path
//! (they cannot depend on this crate).

use std::path::{Path, PathBuf};

/// The repository's checkout, read at run time (a shared target directory
/// may hold test binaries built from another checkout).
fn repo() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest.join("..")
}

/// One line of `deploy/dev-tools.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    /// The command, or `None` for a library.
    pub name: Option<String>,
    /// A Debian package, or `pip:REQUIREMENT`.
    pub source: String,
}

/// The list, parsed; an unreadable or malformed list is an error naming the line.
pub fn listed() -> Result<Vec<Tool>, String> {
    let path = repo().join("deploy/dev-tools.txt");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut tools = vec![];
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(name), Some(source)) = (words.next(), words.next()) else {
            return Err(format!("deploy/dev-tools.txt line {}: want TOOL SOURCE [WHAT FOR]", i + 1));
        };
        tools.push(Tool { name: (name != "-").then(|| name.to_string()), source: source.to_string() });
    }
    Ok(tools)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The path of a listed tool, or why there is none (for benchmarks, which
/// report a missing peer instead of panicking).
pub fn find_tool(name: &str) -> Result<PathBuf, String> {
    let tools = listed()?;
    let Some(tool) = tools.iter().find(|t| t.name.as_deref() == Some(name)) else {
        return Err(format!("{name} is not in deploy/dev-tools.txt: list it there, so the set-up installs it"));
    };
    on_path(name).ok_or_else(|| {
        format!("{name} is not installed (from {}): run deploy/dev-setup.sh, the README's set-up", tool.source)
    })
}

/// The path of a listed tool; panics with what to do when it is missing.
pub fn require_tool(name: &str) -> PathBuf {
    find_tool(name).unwrap_or_else(|e| panic!("{e}"))
}
