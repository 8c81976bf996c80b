//! What every Enode call goes through before its handler: added latency, the outage and error
//! knobs, the rate limit, the `Enode-Version` check and the bearer token; and, whatever the
//! answer, a line in the stats.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::enode::model::API_VERSION;
use crate::enode::sim::faults::Verdict;
use crate::enode::sim::lock;
use crate::enode::sim::problem::SimError;
use crate::enode::sim::state::SimState;
use crate::enode::sim::tokens::TokenError;

pub const VERSION_HEADER: &str = "enode-version";

/// The Enode API proper.
pub async fn api(State(state): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    let arrived = Instant::now();
    let route = route_key(&req);
    let path = req.uri().path().to_owned();
    let version = req.headers().get(VERSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::to_owned);
    let response = match admit_api(&state, bearer.as_deref(), version.as_deref(), arrived).await {
        Ok(()) => next.run(req).await,
        Err(error) => error.into_response(),
    };
    lock(&state.stats).record(&route, &path, response.status().as_u16(), version.as_deref(), arrived);
    response
}

/// The OAuth token endpoint: latency, outage and errors apply; the API rate limit does not.
pub async fn token(State(state): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    let arrived = Instant::now();
    let route = route_key(&req);
    let path = req.uri().path().to_owned();
    delay(&state).await;
    let verdict = lock(&state.faults).judge_token();
    let response = match refusal(verdict) {
        None => next.run(req).await,
        Some(error) => error.into_response(),
    };
    lock(&state.stats).record(&route, &path, response.status().as_u16(), None, arrived);
    response
}

async fn admit_api(
    state: &SimState,
    bearer: Option<&str>,
    version: Option<&str>,
    arrived: Instant,
) -> Result<(), SimError> {
    delay(state).await;
    let verdict = lock(&state.faults).judge_api(arrived);
    if let Some(error) = refusal(verdict) {
        return Err(error);
    }
    // The simulator speaks one version; a client asking for another would get other shapes
    // from Enode, so it is told rather than served silently. No header means the default.
    if let Some(version) = version.filter(|v| *v != API_VERSION) {
        return Err(SimError::new(
            StatusCode::BAD_REQUEST,
            "unsupported-version",
            "Unsupported API version",
            format!("Enode-Version {version:?} is not served here; use {API_VERSION}"),
        ));
    }
    lock(&state.tokens).check(bearer, Instant::now()).map_err(|e| {
        SimError::unauthorized(match e {
            TokenError::Missing => "no bearer token",
            TokenError::Unknown => "unknown access token",
            TokenError::Expired => "the access token has expired",
        })
    })
}

async fn delay(state: &SimState) {
    let ms = lock(&state.faults).knobs.faults.latency_ms;
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

fn refusal(verdict: Verdict) -> Option<SimError> {
    match verdict {
        Verdict::Serve => None,
        Verdict::Outage => Some(SimError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service-unavailable",
            "Service Unavailable",
            "Enode is unavailable (simulated outage)",
        )),
        Verdict::InjectedError => Some(SimError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-server-error",
            "Internal Server Error",
            "simulated server error",
        )),
        Verdict::RateLimited(seconds) => Some(
            SimError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limit-exceeded",
                "Too Many Requests",
                "the client's request budget is spent; retry after the indicated delay",
            )
            .with_retry_after(seconds),
        ),
    }
}

/// "GET /vehicles/{id}": the method and the route template, so all vehicles count as one route.
fn route_key(req: &Request) -> String {
    let path = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or("(unmatched)");
    format!("{} {path}", req.method())
}
