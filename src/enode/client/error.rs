//! The one error every Enode call returns. The HTTP layer maps it to its own answers (400 -> 409,
//! 422 -> 422, unavailable -> 503 with `Retry-After`), the actors' port maps it to "retry later or
//! not". No variant carries the client secret or an access token.

use std::time::Duration;

use crate::enode::model::Problem;

#[derive(Clone, Debug, thiserror::Error)]
pub enum EnodeError {
    /// 404: the vehicle, action, user or webhook does not exist at Enode.
    #[error("not found at Enode: {}", problem_text(.0))]
    NotFound(Problem),
    /// 400: Enode refused the request as it stands (unplugged, already charging, bad cursor).
    #[error("rejected by Enode: {}", problem_text(.0))]
    BadRequest(Problem),
    /// 409: the target changed state first (for example an action that already resolved).
    #[error("conflict at Enode: {}", problem_text(.0))]
    Conflict(Problem),
    /// 422: understood but not possible now (for example charging under smart charging).
    #[error("not possible at Enode now: {}", problem_text(.0))]
    Unprocessable(Problem),
    /// Any other 4xx (403 and friends), with Enode's explanation.
    #[error("Enode answered {status}: {}", problem_text(.problem))]
    Rejected { status: u16, problem: Problem },
    /// The credentials were refused: by the token endpoint, or by the API again right after the
    /// token was renewed once.
    #[error("Enode refused the client credentials")]
    Unauthorized,
    /// Enode asked us to slow down and the pause is longer than a caller should wait.
    #[error("rate limited by Enode, retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// The circuit breaker is open: Enode failed repeatedly, so calls fail fast until it may
    /// have recovered.
    #[error("Enode is unavailable, retry after {retry_after:?}")]
    Unavailable { retry_after: Duration },
    /// Enode answered 5xx (after the retries an idempotent call is allowed).
    #[error("Enode failed with {status}")]
    Upstream { status: u16 },
    /// No answer within the request timeout (after the retries an idempotent call is allowed).
    #[error("Enode did not answer in time")]
    Timeout,
    /// The connection could not be made or broke.
    #[error("cannot reach Enode: {0}")]
    Transport(String),
    /// Enode answered 2xx with a body that is not what the API promises.
    #[error("unexpected answer from Enode: {0}")]
    Decode(String),
}

impl EnodeError {
    /// When the same call may be tried again, if Enode or the breaker said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            EnodeError::RateLimited { retry_after } | EnodeError::Unavailable { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// True when the same call may succeed later without changing anything on our side.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            EnodeError::RateLimited { .. }
                | EnodeError::Unavailable { .. }
                | EnodeError::Upstream { .. }
                | EnodeError::Timeout
                | EnodeError::Transport(_)
        )
    }

    /// Enode's problem document, for the variants that have one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            EnodeError::NotFound(p)
            | EnodeError::BadRequest(p)
            | EnodeError::Conflict(p)
            | EnodeError::Unprocessable(p)
            | EnodeError::Rejected { problem: p, .. } => Some(p),
            _ => None,
        }
    }
}

fn problem_text(problem: &Problem) -> String {
    match &problem.detail {
        Some(detail) if !detail.is_empty() => format!("{}: {detail}", problem.title),
        _ => problem.title.clone(),
    }
}
