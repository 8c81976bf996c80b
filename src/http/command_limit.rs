//! A per-user limit on commands that spend the shared Enode budget (charging, linking, unlinking,
//! "refresh now"). Enode's budget is one for all users: without this, one key in a loop (a broken
//! automation) could queue enough calls to make everyone else's charging commands time out.
//! Polls are never limited here; they cost Enode nothing.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use super::error::ApiError;

pub struct CommandLimit {
    limiter: DefaultKeyedRateLimiter<Uuid>,
}

impl CommandLimit {
    /// `per_minute` commands per user, with that many allowed back to back.
    pub fn new(per_minute: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Self { limiter: RateLimiter::keyed(Quota::per_minute(per_minute)) }
    }

    /// Takes one command from `user`'s allowance, or says when to try again.
    pub fn check(&self, user: Uuid) -> Result<(), ApiError> {
        self.limiter.check_key(&user).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
            ApiError::TooManyRequests {
                detail: "too many commands in a short time; try again shortly".into(),
                retry_after_secs: wait.as_secs().max(1),
            }
        })
    }

    /// Forgets users idle long enough to have their whole allowance back (bounded memory).
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_has_their_own_allowance() {
        let limit = CommandLimit::new(3);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for _ in 0..3 {
            assert!(limit.check(a).is_ok());
        }
        assert!(matches!(limit.check(a), Err(ApiError::TooManyRequests { .. })));
        assert!(limit.check(b).is_ok(), "another user is not affected");
    }
}
