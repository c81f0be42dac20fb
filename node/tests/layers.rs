//! The layers the README draws, checked on the source: each module of the
//! `node` crate imports only modules of lower layers (so no import cycle
//! can form again), only `net` names `proto`'s generated types, wall-clock
//! time is read only in `clock`, and the pure core (`node/core`) depends on
//! nothing that does I/O and reads no clock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The `node` crate's modules, lowest layer first. A module may import a
/// module of a lower layer, never one of its own layer or above. The core's
/// modules (re-exported at the crate root) are below all of them.
const LAYERS: &[&[&str]] = &[
    // The pure core, re-exported: the vocabulary and the state machine's logic.
    &["command", "cron", "state", "time", "times"],
    // openraft's type configuration over the vocabulary; taking a lock;
    // the write stages' timings.
    &["types", "lock", "stages"],
    // Where wall-clock time and peers' clocks enter.
    &["clock"],
    // Adapters: RocksDB and openraft's storage; the leader's group commit;
    // the one place that decides fences.
    &["store", "propose", "leadership"],
    // gRPC between nodes; the metrics endpoint.
    &["net", "metrics"],
    // The write path: propose or forward, answer once applied here.
    &["write"],
    // The scheduler and the executor; the leader's webhook deliveries.
    &["sched", "notify"],
    // The 9P tree; the HTTP front, which serves any 9P `Filesystem`.
    &["fs", "http"],
    // A node started and stopped; the `jobd 9p` client.
    &["node", "client_cli"],
    // The command line.
    &["cli"],
];

/// The core's own modules, the same way.
const CORE_LAYERS: &[&[&str]] = &[&["command", "time"], &["cron"], &["state"], &["input", "times"]];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`fs/mod.rs` → `fs`).
fn module_of(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).expect("under src");
    let first = rel.components().next().expect("a component").as_os_str().to_string_lossy().into_owned();
    first.strip_suffix(".rs").unwrap_or(&first).to_string()
}

/// The first path segment of each top-level item of a `{...}` group
/// (`{a::{b, c}, d}` gives `a` and `d`).
fn group_heads(group: &str) -> Vec<String> {
    let (mut heads, mut depth, mut at_item) = (vec![], 0, true);
    let mut chars = group.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_item = true,
            c if at_item && (c.is_alphanumeric() || c == '_') => {
                let mut name = c.to_string();
                while let Some(&n) = chars.peek().filter(|n| n.is_alphanumeric() || **n == '_') {
                    name.push(n);
                    chars.next();
                }
                heads.push(name);
                at_item = false;
            }
            _ => {}
        }
    }
    heads
}

/// Every top-level module a source text names through `crate::` (as
/// `crate::name` and in `use crate::{a, b::{c}}`), or through a `super::`
/// chain that climbs out of the file's own top-level module (`depth`: how
/// deep the file sits inside it, 0 for `x.rs` or `x/mod.rs`).
fn imports(text: &str, depth: usize) -> Vec<String> {
    let mut found = vec![];
    let code: String = text
        .lines()
        .map(|l| l.find("//").map_or(l, |at| &l[..at]))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |rest: &str| -> String { rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => found.extend(group_heads(group)),
            None => found.push(ident(rest)),
        }
    }
    let mut rest = code.as_str();
    while let Some(at) = rest.find("super::") {
        let mut chain = &rest[at..];
        let mut ups = 0;
        while let Some(r) = chain.strip_prefix("super::") {
            ups += 1;
            chain = r;
        }
        rest = chain;
        if ups > depth {
            match chain.strip_prefix('{') {
                Some(group) => found.extend(group_heads(group)),
                None => found.push(ident(chain)),
            }
        }
    }
    found.retain(|n| !n.is_empty());
    found
}

/// How deep `file` sits inside its top-level module.
fn depth_of(root: &Path, file: &Path) -> usize {
    let parts = file.strip_prefix(root).expect("under src").components().count();
    let is_mod = file.file_name().is_some_and(|n| n == "mod.rs");
    (parts - 1).saturating_sub(usize::from(is_mod))
}

fn layer_of(layers: &[&[&'static str]]) -> BTreeMap<&'static str, usize> {
    layers.iter().enumerate().flat_map(|(i, mods)| mods.iter().map(move |m| (*m, i))).collect()
}

/// What in the crate at `root` imports a module not below its own.
fn misplaced(root: &Path, layers: &[&[&'static str]]) -> Vec<String> {
    let layer = layer_of(layers);
    let mut files = vec![];
    rust_files(root, &mut files);
    let mut wrong = vec![];
    for file in &files {
        let module = module_of(root, file);
        // The binary and the crate root name modules, they are not one.
        if module == "main" || module == "lib" {
            continue;
        }
        let Some(&mine) = layer.get(module.as_str()) else {
            wrong.push(format!("{module} (in {}) has no layer: place it in this test's layers", file.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("readable source");
        for used in imports(&text, depth_of(root, file)) {
            if used == module {
                continue;
            }
            match layer.get(used.as_str()) {
                Some(&theirs) if theirs < mine => {}
                Some(_) => wrong.push(format!("{} imports {used}, which is not below {module}", file.display())),
                None => wrong.push(format!("{} imports crate::{used}, which has no layer", file.display())),
            }
        }
    }
    wrong
}

#[test]
fn every_module_imports_only_lower_layers() {
    let wrong = misplaced(&src(), LAYERS);
    assert!(wrong.is_empty(), "the layering is broken:\n{}", wrong.join("\n"));
}

#[test]
fn every_core_module_imports_only_lower_layers() {
    let wrong = misplaced(&src().join("../core/src"), CORE_LAYERS);
    assert!(wrong.is_empty(), "the core's layering is broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_import_reader_sees_groups_and_climbing_super_paths() {
    assert_eq!(imports("use crate::{a::{b, c}, d};\nuse crate::e::f;", 0), ["a", "d", "e"]);
    // In x.rs or x/mod.rs, super:: is the crate root; in x/y.rs, it is x.
    assert_eq!(imports("use super::fs::Thing;", 0), ["fs"]);
    assert!(imports("use super::Thing;", 1).is_empty());
    assert_eq!(imports("use super::super::{net, sched::X};", 1), ["net", "sched"]);
    assert!(imports("let x = 1; // crate::node", 0).is_empty());
}

#[test]
fn the_layers_name_exactly_the_crates_modules() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    let mut declared: Vec<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod ").and_then(|m| m.strip_suffix(';')))
        .map(String::from)
        .collect();
    for line in lib.lines().filter_map(|l| l.strip_prefix("pub use jobd_core::{")) {
        declared.extend(line.trim_end_matches("};").split(',').map(|m| m.trim().to_string()));
    }
    declared.sort();
    let mut layered: Vec<String> = layer_of(LAYERS).keys().map(|m| m.to_string()).collect();
    layered.sort();
    assert_eq!(declared, layered, "lib.rs's modules and LAYERS differ");
}

#[test]
fn only_net_names_the_generated_protobuf_types() {
    let root = src();
    let mut files = vec![];
    rust_files(&root, &mut files);
    let outside: Vec<String> = files
        .iter()
        .filter(|f| module_of(&root, f) != "net")
        .filter(|f| std::fs::read_to_string(f).expect("readable source").contains("proto::"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(outside.is_empty(), "proto's types used outside net/: {outside:?}");
}

#[test]
fn wall_clock_time_is_read_only_in_clock() {
    let root = src();
    let mut files = vec![];
    rust_files(&root, &mut files);
    rust_files(&src().join("../core/src"), &mut files);
    let mut reads = vec![];
    for file in &files {
        if file.ends_with("clock.rs") {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("readable source");
        for needle in ["Utc::now", "Local::now", "SystemTime::now"] {
            if text.contains(needle) {
                reads.push(format!("{} reads {needle}", file.display()));
            }
        }
    }
    assert!(reads.is_empty(), "wall-clock reads past the clock seam:\n{}", reads.join("\n"));
}

#[test]
fn the_core_depends_on_nothing_that_does_io() {
    let manifest = std::fs::read_to_string(src().join("../core/Cargo.toml")).expect("core/Cargo.toml");
    let deps = manifest.split("[dependencies]").nth(1).expect("a [dependencies] table");
    let deps = deps.split("\n[").next().unwrap_or(deps);
    let names: Vec<&str> = deps.lines().filter_map(|l| l.split(['.', '=', ' ']).next()).filter(|n| !n.is_empty() && !n.starts_with('#')).collect();
    let pure = ["chrono", "chrono-tz", "serde", "serde_json", "thiserror"];
    let other: Vec<&&str> = names.iter().filter(|n| !pure.contains(n)).collect();
    assert!(!names.is_empty(), "no dependencies read from {deps:?}");
    assert!(other.is_empty(), "the core may depend only on {pure:?}; it has {other:?}");
    let mut files = vec![];
    rust_files(&src().join("../core/src"), &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable source");
        for needle in ["std::fs", "std::net", "std::process", "std::thread", "std::env"] {
            assert!(!text.contains(needle), "{} uses {needle}: the core does no I/O", file.display());
        }
    }
}
