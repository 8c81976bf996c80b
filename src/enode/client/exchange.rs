//! One call to Enode, with every rule the client keeps: fail fast while the breaker is open or a
//! long 429 pause is in force, a token, a budget permit for every request sent, the breaker told
//! how each request went, a 401 answered by one token renewal, 429s by a shared pause, 5xx and
//! timeouts of idempotent calls by retries with backoff, and every request counted.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use tokio::time::Instant;
use url::Url;

use super::breaker::Breaker;
use super::budget::{Budget, BudgetConfig, Priority};
use super::config::ClientConfig;
use super::endpoint;
use super::error::EnodeError;
use super::retry::{backoff, parse_retry_after};
use super::stats::{Outcome, Stats};
use super::token::{Token, TokenCache};
use super::wire::{Auth, Body, Call, Sent, Wire};
use crate::enode::model::{Problem, TokenResponse};

/// A 429 pause without `Retry-After` grows per consecutive 429 up to this; Enode's limits are
/// per minute, so waiting longer never helps.
const RATE_LIMIT_BACKOFF_CAP: Duration = Duration::from_secs(60);
/// How much of an unexpected error body is kept in a problem's detail.
const DETAIL_LIMIT: usize = 300;

/// A request-answer cycle, under the client's rules. Shared by every clone of the client.
pub(crate) struct Exchange {
    wire: Wire,
    config: ClientConfig,
    tokens: TokenCache,
    budget: Budget,
    pub breaker: Breaker,
    pub stats: Stats,
    /// Consecutive 429s, for the backoff when Enode does not say how long to wait.
    rate_limited_streak: AtomicU32,
}

pub(crate) type Decoder<T> = fn(&[u8]) -> Result<T, String>;

impl Exchange {
    /// Needs a tokio runtime: it starts the budget's dispatcher.
    pub fn new(config: ClientConfig) -> Result<Self, reqwest::Error> {
        let wire = Wire::new(&config)?;
        let budget = Budget::start(BudgetConfig {
            rate: config.rate,
            window: config.window,
            burst: config.burst,
            background_share: config.background_share,
        });
        Ok(Self {
            wire,
            tokens: TokenCache::default(),
            budget,
            breaker: Breaker::new(config.breaker_failures, config.breaker_open_for),
            stats: Stats::default(),
            rate_limited_streak: AtomicU32::new(0),
            config,
        })
    }

    pub fn api_url(&self) -> &Url {
        &self.config.api_url
    }

    /// Runs `call` until it succeeds or may not be repeated, and decodes the answer.
    pub async fn execute<T>(&self, call: &Call, decode: Decoder<T>) -> Result<T, EnodeError> {
        let route = call.endpoint.route;
        let mut retries = 0;
        let mut renewed_token = false;
        loop {
            let (sent, token) = self.attempt(call).await?;
            let may_retry = retries < self.config.retry_max;
            let (repeatable, error) = match sent {
                Sent::Answer { status, body, .. } if status.is_success() => {
                    return match decode(&body) {
                        Ok(value) => {
                            self.stats.record(route, Outcome::Ok);
                            Ok(value)
                        }
                        Err(message) => {
                            self.stats.record(route, Outcome::Decode);
                            Err(EnodeError::Decode(format!("{route}: {message}")))
                        }
                    };
                }
                Sent::Answer { status: StatusCode::UNAUTHORIZED, .. } => {
                    self.stats.record(route, Outcome::Unauthorized);
                    // Tokens can be revoked before they expire: renew once, then believe it.
                    match token {
                        Some(token) if !renewed_token => {
                            renewed_token = true;
                            self.tokens.invalidate(token.generation);
                            continue;
                        }
                        _ => return Err(EnodeError::Unauthorized),
                    }
                }
                Sent::Answer { status: StatusCode::TOO_MANY_REQUESTS, retry_after, .. } => {
                    self.stats.record(route, Outcome::RateLimited);
                    let pause = self.pause_for_429(retry_after.as_deref());
                    // A 429 means Enode did not act, so any call may go again once the pause
                    // ends; the budget holds every permit back until then.
                    if may_retry && pause <= self.config.max_rate_limit_wait {
                        retries += 1;
                        self.stats.retry();
                        continue;
                    }
                    return Err(EnodeError::RateLimited { retry_after: pause });
                }
                Sent::Answer { status, body, .. } if !status.is_server_error() => {
                    return Err(self.rejected(call, status, &body));
                }
                Sent::Answer { status, .. } => {
                    self.stats.record(route, Outcome::ServerError);
                    let error = EnodeError::Upstream { status: status.as_u16() };
                    (call.endpoint.idempotent, error)
                }
                Sent::Timeout => {
                    self.stats.record(route, Outcome::Timeout);
                    (call.endpoint.idempotent, EnodeError::Timeout)
                }
                // Nothing reached Enode, so even a charge command may go again.
                Sent::Unreachable(message) => {
                    self.stats.record(route, Outcome::Transport);
                    (true, EnodeError::Transport(message))
                }
                Sent::Broken(message) => {
                    self.stats.record(route, Outcome::Transport);
                    (call.endpoint.idempotent, EnodeError::Transport(message))
                }
            };
            if !(repeatable && may_retry) {
                return Err(error);
            }
            let pause = backoff(retries, self.config.retry_base, self.config.retry_max_backoff, &mut rand::rng());
            tracing::debug!(route, retry = retries + 1, ?pause, "retrying Enode call");
            retries += 1;
            self.stats.retry();
            tokio::time::sleep(pause).await;
        }
    }

    /// Sends `call` once, if the breaker and any 429 pause allow it, with a budget permit.
    /// `Err` means it was not sent.
    async fn attempt(&self, call: &Call) -> Result<(Sent, Option<Token>), EnodeError> {
        let route = call.endpoint.route;
        let now = Instant::now();
        if let Err(retry_after) = self.breaker.check(now) {
            self.stats.record(route, Outcome::BreakerOpen);
            return Err(EnodeError::Unavailable { retry_after });
        }
        if let Some(left) = self.budget.paused_for(now) {
            if left > self.config.max_rate_limit_wait {
                self.stats.record(route, Outcome::RateLimitPaused);
                return Err(EnodeError::RateLimited { retry_after: left });
            }
            self.stats.rate_limit_pause(left);
        }
        let token = match call.auth {
            Auth::Bearer => Some(self.token().await?),
            Auth::ClientCredentials => None,
        };
        let waited = self
            .budget
            .acquire(call.priority)
            .await
            .map_err(|_| EnodeError::Transport("the Enode client is shutting down".into()))?;
        self.stats.budget_wait(call.priority, waited);
        // Asked again: the breaker may have opened while this call waited for its permit.
        let ticket = match self.breaker.admit(Instant::now()) {
            Ok(ticket) => ticket,
            Err(retry_after) => {
                self.stats.record(route, Outcome::BreakerOpen);
                return Err(EnodeError::Unavailable { retry_after });
            }
        };
        let sent = self.wire.send(call, token.as_ref()).await;
        if sent.is_failure() {
            ticket.failure(Instant::now());
        } else {
            ticket.success();
        }
        if !matches!(&sent, Sent::Answer { status, .. } if *status == StatusCode::TOO_MANY_REQUESTS) {
            self.rate_limited_streak.store(0, Ordering::Relaxed);
        }
        Ok((sent, token))
    }

    /// Pauses every caller for as long as the 429 asks (or a growing backoff when it does not
    /// say) and returns the pause.
    fn pause_for_429(&self, retry_after: Option<&str>) -> Duration {
        let streak = self.rate_limited_streak.fetch_add(1, Ordering::Relaxed);
        let pause = retry_after.and_then(|value| parse_retry_after(value, SystemTime::now())).unwrap_or_else(|| {
            backoff(streak, self.config.rate_limited_backoff, RATE_LIMIT_BACKOFF_CAP, &mut rand::rng())
        });
        tracing::info!(?pause, "Enode answered 429: pausing every call");
        self.budget.pause_until(Instant::now() + pause);
        pause
    }

    /// A 4xx other than 401 and 429, as the error the caller sees.
    fn rejected(&self, call: &Call, status: StatusCode, body: &[u8]) -> EnodeError {
        let route = call.endpoint.route;
        let outcome = match status {
            StatusCode::BAD_REQUEST => Outcome::BadRequest,
            StatusCode::NOT_FOUND => Outcome::NotFound,
            StatusCode::CONFLICT => Outcome::Conflict,
            StatusCode::UNPROCESSABLE_ENTITY => Outcome::Unprocessable,
            _ => Outcome::OtherClientError,
        };
        self.stats.record(route, outcome);
        // The token endpoint refuses bad credentials with 400 or 401 and an OAuth error body.
        if call.auth == Auth::ClientCredentials && status.is_client_error() {
            return EnodeError::Unauthorized;
        }
        let problem = problem(status, body);
        match status {
            StatusCode::BAD_REQUEST => EnodeError::BadRequest(problem),
            StatusCode::NOT_FOUND => EnodeError::NotFound(problem),
            StatusCode::CONFLICT => EnodeError::Conflict(problem),
            StatusCode::UNPROCESSABLE_ENTITY => EnodeError::Unprocessable(problem),
            _ => EnodeError::Rejected { status: status.as_u16(), problem },
        }
    }

    async fn token(&self) -> Result<Token, EnodeError> {
        self.tokens.get(|| self.fetch_token()).await
    }

    /// Boxed because it is an `execute` inside an `execute` (the API call needs a token, the
    /// token request goes through the same rules): a recursive future needs a fixed size.
    fn fetch_token(&self) -> Pin<Box<dyn Future<Output = Result<TokenResponse, EnodeError>> + Send + '_>> {
        Box::pin(async move {
            let call = Call {
                endpoint: endpoint::TOKEN,
                url: self.config.token_url.clone(),
                // Every user call may be waiting for it.
                priority: Priority::User,
                query: Vec::new(),
                body: Body::Form("grant_type=client_credentials"),
                auth: Auth::ClientCredentials,
            };
            let answer = self.execute(&call, decode_token).await?;
            self.stats.token_renewal();
            Ok(answer)
        })
    }
}

/// Enode's problem document, or one made from the status when the body is not one.
fn problem(status: StatusCode, body: &[u8]) -> Problem {
    if let Ok(problem) = serde_json::from_slice::<Problem>(body) {
        return problem;
    }
    let text = String::from_utf8_lossy(body);
    let detail: String = text.chars().take(DETAIL_LIMIT).collect();
    Problem::new("unknown", status.canonical_reason().unwrap_or("Unexpected status"), detail)
}

/// The token answer's decode error must not quote the body: it holds the access token.
fn decode_token(body: &[u8]) -> Result<TokenResponse, String> {
    serde_json::from_slice(body).map_err(|_| "the token endpoint answered something that is not a token".to_owned())
}
