//! Waiting on a condition with a deadline. Tests never sleep for a fixed time and hope: they ask
//! again until the condition holds, and fail naming what they waited for once the deadline has
//! passed.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often the async waits ask again.
const ASYNC_POLL: Duration = Duration::from_millis(20);
/// How often [`wait_until_blocking`] asks again: often, because some tests use it to act at a
/// moment (kill a process part-way through its work).
const BLOCKING_POLL: Duration = Duration::from_millis(5);

/// Waits until `check` returns `Some`, asking again every 20 ms, and returns its value; panics
/// naming `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting until {what}"
        );
        tokio::time::sleep(ASYNC_POLL).await;
    }
}

/// Waits until `check` returns true, asking again every 20 ms; panics naming `what` after
/// `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(what, timeout, || {
        let ok = check();
        async move { ok.await.then_some(()) }
    })
    .await
}

/// [`wait_until`] for code outside an async runtime: asks again every 5 ms, blocking the
/// thread in between.
pub fn wait_until_blocking(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting until {what}"
        );
        std::thread::sleep(BLOCKING_POLL);
    }
}
