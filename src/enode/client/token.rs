//! The OAuth access token of the client-credentials grant, cached for every caller.
//!
//! Enode gives no refresh token, so "renewing" is asking for a new one. Renewal is serialised by
//! an async mutex and callers re-check after taking it: however many calls find the token stale
//! at once, one request goes to the token endpoint and the rest use its answer (or its error).

/// Bounds on a token's believed lifetime, in seconds (Enode's are 3599).
const MIN_LIFETIME_SECS: u64 = 1;
const MAX_LIFETIME_SECS: u64 = 24 * 3600;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::error::EnodeError;
use crate::enode::model::TokenResponse;

/// Renew this long before the token expires (a tenth of its life if that is shorter), so that a
/// call never sets out with a token that expires on the way.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(60);

/// An access token. `Debug` never shows the value.
#[derive(Clone)]
pub(crate) struct Token {
    value: Arc<str>,
    renew_at: Instant,
    /// Which renewal produced it: a 401 invalidates only the token it was sent with.
    pub generation: u64,
}

impl Token {
    pub fn bearer(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token").field("value", &"[redacted]").field("generation", &self.generation).finish()
    }
}

#[derive(Default)]
pub(crate) struct TokenCache {
    current: RwLock<Option<Token>>,
    /// Held while a renewal is out; the error of the last renewal is handed to those who waited
    /// for it, so a failing token endpoint is asked once, not once per waiting caller.
    renewal: tokio::sync::Mutex<Option<EnodeError>>,
    /// Renewals that came back (with a token or an error), so a waiter can tell whether one
    /// ended while it waited.
    renewals_done: AtomicU64,
    generations: AtomicU64,
}

impl TokenCache {
    /// A usable token: the cached one, or one `fetch` gets (at most one fetch at a time).
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<Token, EnodeError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<TokenResponse, EnodeError>>,
    {
        if let Some(token) = self.fresh(Instant::now()) {
            return Ok(token);
        }
        let seen = self.renewals_done.load(Ordering::Acquire);
        let mut last_error = self.renewal.lock().await;
        if let Some(token) = self.fresh(Instant::now()) {
            return Ok(token);
        }
        if self.renewals_done.load(Ordering::Acquire) != seen
            && let Some(error) = last_error.as_ref()
        {
            return Err(error.clone());
        }
        // Cleared first: if this renewal is cancelled, the next caller must try, not fail.
        *last_error = None;
        let result = fetch().await;
        self.renewals_done.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok(answer) => Ok(self.store(answer, Instant::now())),
            Err(error) => {
                *last_error = Some(error.clone());
                Err(error)
            }
        }
    }

    /// Enode answered 401 to a request sent with the token of `generation`: drop it, unless a
    /// newer one already replaced it.
    pub fn invalidate(&self, generation: u64) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_some_and(|t| t.generation == generation) {
            *current = None;
        }
    }

    fn fresh(&self, now: Instant) -> Option<Token> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current.as_ref().filter(|t| now < t.renew_at).cloned()
    }

    fn store(&self, answer: TokenResponse, now: Instant) -> Token {
        // Believed within sane bounds: `expires_in: 0` would mint a token per request, a huge
        // value would overflow the clock (and keep a revoked token forever).
        let lifetime = Duration::from_secs(answer.expires_in.clamp(MIN_LIFETIME_SECS, MAX_LIFETIME_SECS));
        let token = Token {
            value: Arc::from(answer.access_token),
            renew_at: now + lifetime - RENEW_BEFORE_EXPIRY.min(lifetime / 10),
            generation: self.generations.fetch_add(1, Ordering::AcqRel) + 1,
        };
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
        token
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn answer(value: &str, expires_in: u64) -> TokenResponse {
        TokenResponse {
            access_token: value.to_owned(),
            expires_in,
            scope: String::new(),
            token_type: "bearer".to_owned(),
        }
    }

    /// A token endpoint that takes 50 ms and counts its calls.
    async fn slow_fetch(
        calls: &AtomicUsize,
        result: Result<TokenResponse, EnodeError>,
    ) -> Result<TokenResponse, EnodeError> {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        result
    }

    #[tokio::test(start_paused = true)]
    async fn many_callers_one_renewal() {
        let cache = Arc::new(TokenCache::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let (cache, calls) = (Arc::clone(&cache), Arc::clone(&calls));
                tokio::spawn(async move {
                    cache.get(|| slow_fetch(&calls, Ok(answer("t1", 3599)))).await.map(|t| t.bearer().to_owned())
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), "t1");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_renewal_is_shared_by_those_who_waited() {
        let cache = Arc::new(TokenCache::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (cache, calls) = (Arc::clone(&cache), Arc::clone(&calls));
                tokio::spawn(async move { cache.get(|| slow_fetch(&calls, Err(EnodeError::Unauthorized))).await })
            })
            .collect();
        for task in tasks {
            assert!(matches!(task.await.unwrap(), Err(EnodeError::Unauthorized)));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // A later caller tries again.
        let token = cache.get(|| async { Ok(answer("t2", 3599)) }).await.unwrap();
        assert_eq!(token.bearer(), "t2");
    }

    #[tokio::test(start_paused = true)]
    async fn renews_shortly_before_expiry() {
        let cache = TokenCache::default();
        let first = cache.get(|| async { Ok(answer("t1", 3599)) }).await.unwrap();
        tokio::time::advance(Duration::from_secs(3599 - 61)).await;
        let same = cache.get(|| async { Ok(answer("t2", 3599)) }).await.unwrap();
        assert_eq!(same.bearer(), "t1");
        tokio::time::advance(Duration::from_secs(2)).await;
        let renewed = cache.get(|| async { Ok(answer("t2", 3599)) }).await.unwrap();
        assert_eq!(renewed.bearer(), "t2");
        assert!(renewed.generation > first.generation);

        // A short-lived token is renewed at nine tenths of its life, not "60 s before".
        let short = TokenCache::default();
        short.get(|| async { Ok(answer("s1", 10)) }).await.unwrap();
        tokio::time::advance(Duration::from_millis(8900)).await;
        let t = short.get(|| async { Ok(answer("s2", 10)) }).await.unwrap();
        assert_eq!(t.bearer(), "s1");
        tokio::time::advance(Duration::from_millis(200)).await;
        let t = short.get(|| async { Ok(answer("s2", 10)) }).await.unwrap();
        assert_eq!(t.bearer(), "s2");
    }

    #[tokio::test(start_paused = true)]
    async fn a_401_drops_only_the_token_it_was_sent_with() {
        let cache = TokenCache::default();
        let old = cache.get(|| async { Ok(answer("t1", 3599)) }).await.unwrap();
        cache.invalidate(old.generation);
        let new = cache.get(|| async { Ok(answer("t2", 3599)) }).await.unwrap();
        assert_eq!(new.bearer(), "t2");
        // A late 401 for the old token leaves the new one alone.
        cache.invalidate(old.generation);
        let still = cache.get(|| async { Ok(answer("t3", 3599)) }).await.unwrap();
        assert_eq!(still.bearer(), "t2");
        assert!(!format!("{still:?}").contains("t2"));
    }
}
