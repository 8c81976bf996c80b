//! Waiting in tests for work that happens on other tasks (actors, the write-behind, push
//! deliveries, the simulator's webhooks): poll a condition until it holds, and fail naming it.

use std::future::Future;
use std::time::Duration;

/// How often a condition is checked.
const EVERY: Duration = Duration::from_millis(10);
/// How long `eventually_here` waits: generous, since a loaded 2-core machine is slow.
const PATIENCE: Duration = Duration::from_secs(5);

/// Polls `check` until it gives `Some`, for up to `timeout`; panics naming `what` otherwise.
pub async fn eventually_some<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(EVERY).await;
    }
}

/// Polls `check` until it holds, for up to `timeout`; panics naming `what` otherwise.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_some(what, timeout, || {
        let holds = check();
        async { holds.await.then_some(()) }
    })
    .await;
}

/// `eventually` for a condition on this process's own state, checked without awaiting.
pub async fn eventually_here(what: &str, mut check: impl FnMut() -> bool) {
    eventually(what, PATIENCE, || std::future::ready(check())).await;
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn gives_what_the_check_found_once_it_finds_it() {
        let checks = Cell::new(0);
        let found = eventually_some("the third check", Duration::from_secs(1), || {
            checks.set(checks.get() + 1);
            std::future::ready((checks.get() == 3).then_some("found"))
        })
        .await;
        assert_eq!((found, checks.get()), ("found", 3));
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "waiting for: never")]
    async fn fails_naming_the_condition() {
        eventually_here("never", || false).await;
    }
}
