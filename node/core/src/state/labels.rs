//! A node's labels (`--labels key=value,...`): what it offers, for placing
//! runs. The rules, checked by `input::parse_labels` at start and again by
//! apply (`Command::NodeLabels`), so `/ctl`'s `labels` line never holds
//! what a flag could not: each key and value 1–63 bytes of
//! `[A-Za-z0-9._-]`, no key twice, 32 at most.

/// The most labels a node may have.
pub const MAX: usize = 32;
/// The longest label key or value.
pub const MAX_BYTES: usize = 63;

/// Whether `w` may be a label key or value.
pub fn word(w: &str) -> bool {
    !w.is_empty() && w.len() <= MAX_BYTES && w.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Whether `labels` may be a node's; if not, why, in one line.
pub fn check(labels: &[(String, String)]) -> Result<(), String> {
    for (i, (k, v)) in labels.iter().enumerate() {
        if !word(k) || !word(v) {
            return Err(format!("label {k}={v}: a key and a value are 1-{MAX_BYTES} bytes of [A-Za-z0-9._-]"));
        }
        if labels[..i].iter().any(|(have, _)| have == k) {
            return Err(format!("label key {k} is given twice"));
        }
    }
    if labels.len() > MAX {
        return Err(format!("{} labels; at most {MAX}", labels.len()));
    }
    Ok(())
}
