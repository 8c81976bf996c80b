//! When to try again: exponential backoff with jitter, and Enode's `Retry-After`.

use std::time::{Duration, SystemTime};

use rand::Rng;

/// The pause before retry number `attempt` (0 = the first retry): `base * 2^attempt`, at most
/// `max`, then drawn uniformly from its upper half. The jitter spreads callers that failed
/// together; keeping the lower half out means a retry never comes back almost at once.
pub(crate) fn backoff(attempt: u32, base: Duration, max: Duration, rng: &mut impl Rng) -> Duration {
    let ceiling = base.checked_mul(2u32.saturating_pow(attempt.min(31))).unwrap_or(max).min(max);
    let floor = ceiling / 2;
    let spread = u64::try_from((ceiling - floor).as_micros()).unwrap_or(u64::MAX);
    floor + Duration::from_micros(rng.random_range(0..=spread))
}

/// The longest pause a `Retry-After` is believed for. A wrong header (a year, or a value large
/// enough to overflow the clock) must not stop every Enode call for good; after this long the
/// client asks again and Enode can say so again.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A `Retry-After` value: delay-seconds or an HTTP date (RFC 9110 10.2.3), at most
/// `MAX_RETRY_AFTER`. A date in the past means "now". Anything else is not understood and the
/// caller falls back to its own backoff.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let pause = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value).ok()?.duration_since(now).unwrap_or(Duration::ZERO),
    };
    Some(pause.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn absurd_retry_after_is_capped() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("18446744073709551615", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("31536000", now), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn retry_after_seconds() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_http_date() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(Duration::from_secs(30)));
        // Already past: go now rather than never.
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_garbage_is_not_understood() {
        let now = SystemTime::now();
        for bad in ["", "soon", "-1", "1.5", "Wed, 99 Foo 2015"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn backoff_doubles_within_bounds_and_caps() {
        let mut rng = StdRng::seed_from_u64(7);
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for attempt in 0..40 {
            let ceiling = (base * 2u32.pow(attempt.min(20))).min(max);
            for _ in 0..200 {
                let d = backoff(attempt, base, max, &mut rng);
                assert!(d >= ceiling / 2 && d <= ceiling, "attempt {attempt}: {d:?}");
            }
        }
    }

    #[test]
    fn backoff_jitters() {
        let mut rng = StdRng::seed_from_u64(7);
        let base = Duration::from_millis(100);
        let draws: std::collections::HashSet<Duration> =
            (0..50).map(|_| backoff(3, base, Duration::from_secs(60), &mut rng)).collect();
        assert!(draws.len() > 10, "{draws:?}");
    }
}
