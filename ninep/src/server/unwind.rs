//! A request whose file-system callback panics is still answered.
//!
//! Without this, a panic ends the request's task with its tag still in the
//! table: the client waits for a reply that never comes, and the tag stays
//! taken. [`catch_unwind_async`] turns the panic into a value at the poll where it
//! happens, so the connection answers EIO and frees the tag.

use std::any::Any;
use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::task::Poll;

/// Runs `fut`; a panic in one of its polls ends it with the panic's payload.
pub(crate) async fn catch_unwind_async<F: Future>(fut: F) -> Result<F::Output, Box<dyn Any + Send>> {
    let mut fut = pin!(fut);
    poll_fn(move |cx| {
        // AssertUnwindSafe: after a panic the future is never polled again
        // (it is dropped here), and the state it shares with the rest of the
        // server sits behind locks that recover from poisoning.
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    })
    .await
}

/// The text a panic was raised with, when it has one.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_becomes_a_value_and_a_result_passes_through() {
        assert_eq!(catch_unwind_async(async { 7 }).await.unwrap(), 7);
        let got = catch_unwind_async(async {
            tokio::task::yield_now().await;
            panic!("boom {}", 1);
        })
        .await;
        assert_eq!(panic_message(&*got.unwrap_err()), "boom 1");
    }
}
