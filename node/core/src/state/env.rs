//! A job's environment (`/jobs/NAME/env`): `KEY=VALUE` pairs added to the
//! clean environment each of its runs gets. The rules, checked by the
//! proposer when it parses a write (`input::parse_env`) and again by apply,
//! so a command from anywhere cannot store what a write could not:
//!
//! - a key is `[A-Za-z_][A-Za-z0-9_]*` and does not start with `JOBD_`
//!   (jobd's own variables say what a run is; a job cannot forge them);
//! - no key twice;
//! - a value is text without control characters but tab (a process's
//!   environment cannot hold a NUL, a line ends the value, and the rest
//!   only hide what a reader of the file sees); empty is allowed;
//! - at most `MAX_BYTES` in all, written as lines.

/// The most bytes a job's environment may take, written as `KEY=VALUE\n` lines.
pub const MAX_BYTES: usize = 64 << 10;

/// Whether `pairs` may be a job's environment; if not, why, in one line.
pub fn check(pairs: &[(String, String)]) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut bytes = 0usize;
    for (key, value) in pairs {
        let mut chars = key.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("env key {key:?}: want [A-Za-z_][A-Za-z0-9_]*"));
        }
        if key.starts_with("JOBD_") {
            return Err(format!("env key {key}: JOBD_ variables are jobd's own"));
        }
        if !seen.insert(key.as_str()) {
            return Err(format!("env key {key} is given twice"));
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(format!("env {key}: a value holds no control characters but tab"));
        }
        bytes = bytes.saturating_add(key.len() + value.len() + 2);
    }
    if bytes > MAX_BYTES {
        return Err(format!("env is {bytes} bytes; at most {MAX_BYTES}"));
    }
    Ok(())
}

/// The file's text: one `KEY=VALUE` line per pair, in the order written.
pub fn text(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn keys_values_and_size_are_checked() {
        assert_eq!(check(&pairs(&[("PATH", "/opt/bin:/usr/bin"), ("_x1", ""), ("GREETING", "a=b c\td é")])), Ok(()));
        for (bad, want) in [
            (pairs(&[("1X", "v")]), "want [A-Za-z_]"),
            (pairs(&[("A-B", "v")]), "want [A-Za-z_]"),
            (pairs(&[("", "v")]), "want [A-Za-z_]"),
            (pairs(&[("JOBD_RUN_ID", "7")]), "jobd's own"),
            (pairs(&[("A", "1"), ("A", "2")]), "given twice"),
            (pairs(&[("A", "x\0y")]), "no control characters"),
            (pairs(&[("A", "x\ry")]), "no control characters"),
            (pairs(&[("A", &"x".repeat(MAX_BYTES))]), "at most 65536"),
        ] {
            let err = check(&bad).unwrap_err();
            assert!(err.contains(want), "{bad:?}: {err}");
        }
        assert_eq!(text(&pairs(&[("A", "1"), ("B", "")])), "A=1\nB=\n");
    }
}
