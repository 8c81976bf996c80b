//! The last write of a queue that is written behind (vehicle states, charging sessions), at
//! shutdown: everything queued goes to the store, and a store that is down for a moment is waited
//! for, up to a deadline, rather than losing what it could take a second later.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::ports::PortError;

/// The wait after the first failed attempt; it doubles after each further one.
const FIRST_WAIT: Duration = Duration::from_millis(50);

/// Calls `write` until `is_empty` says nothing is left queued. After a retryable failure it
/// waits (50 ms, doubling up to `max_wait`) and tries again, unless the wait would end after
/// `deadline` (counted from now); a permanent failure, or the deadline, returns the last error.
pub(crate) async fn until_empty<W, Fut>(
    deadline: Duration,
    max_wait: Duration,
    mut write: W,
    is_empty: impl Fn() -> bool,
) -> Result<(), PortError>
where
    W: FnMut() -> Fut,
    Fut: Future<Output = Result<(), PortError>>,
{
    let started = Instant::now();
    let mut wait = FIRST_WAIT;
    loop {
        match write().await {
            Ok(()) if is_empty() => return Ok(()),
            // Queued while that write ran (an actor still finishing): written on the next round.
            Ok(()) => {}
            Err(err) if !err.retryable || started.elapsed() + wait > deadline => return Err(err),
            Err(_) => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(max_wait);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_out_an_outage_then_writes_what_came_meanwhile() {
        let attempts = Cell::new(0);
        let queued = Cell::new(2);
        let write = || {
            attempts.set(attempts.get() + 1);
            let result = match attempts.get() {
                1 | 2 => Err(PortError::retryable("down")),
                // Back up: writes one of the two queued each time.
                _ => {
                    queued.set(queued.get() - 1);
                    Ok(())
                }
            };
            std::future::ready(result)
        };
        until_empty(Duration::from_secs(1), Duration::from_secs(1), write, || queued.get() == 0).await.unwrap();
        assert_eq!(attempts.get(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_a_permanent_failure_or_the_deadline() {
        let attempts = Cell::new(0);
        let refused = || {
            attempts.set(attempts.get() + 1);
            std::future::ready(Err(PortError::permanent("refused")))
        };
        let err = until_empty(Duration::from_secs(1), Duration::from_secs(1), refused, || false).await.unwrap_err();
        assert!(!err.retryable);
        assert_eq!(attempts.get(), 1);

        // 50 + 100 + 200 + 400 ms waited; the next wait (800 ms) would end after the deadline.
        attempts.set(0);
        let started = tokio::time::Instant::now();
        let down = || {
            attempts.set(attempts.get() + 1);
            std::future::ready(Err(PortError::retryable("down")))
        };
        let err = until_empty(Duration::from_secs(1), Duration::from_secs(10), down, || false).await.unwrap_err();
        assert!(err.retryable);
        assert_eq!(attempts.get(), 5);
        assert_eq!(started.elapsed(), Duration::from_millis(750));
    }
}
