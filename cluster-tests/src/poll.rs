//! How tests wait: poll a condition with a deadline, never sleep a fixed
//! time and hope. One helper for the workspace: ninep's and node's tests
//! include this file by path (as they do `tools.rs`), and each keeps a
//! short wrapper with its own deadline and pace.

use std::time::Duration;

/// Calls `f` every `every` until it gives a value, and returns it; panics
/// naming `what` once `deadline` has passed.
pub async fn poll<T>(what: &str, deadline: Duration, every: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(every).await;
    }
}
