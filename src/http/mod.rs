//! The HTTP API, one module per audience: `ha` (what Home Assistant polls), `account` (the
//! caller's keys), `webhooks` (Enode), `health` (orchestrators), `admin` (operators). Every
//! response is JSON, errors included (`error::ApiError`), except the admin HTML page.
//!
//! # Adding a route (the pattern every module follows)
//!
//! Every public route is described in `GET /openapi.json`, and a test fails if one is not. So a
//! module's `router()` returns a utoipa-axum `OpenApiRouter` and registers handlers only with
//! `routes!`, which compiles only for handlers that carry their description:
//!
//! ```ignore
//! /// One-line summary (the doc comment becomes the operation's summary and description).
//! #[utoipa::path(get, path = "/api/things/{id}", tag = "account",
//!     params(("id" = String, Path, description = "...")),
//!     security(("api_key" = [])),
//!     responses((status = 200, body = Thing), (status = 404, body = openapi::ErrorBody)))]
//! async fn thing(...) -> Result<Json<Thing>, ApiError> { ... }
//!
//! pub fn router() -> OpenApiRouter<AppState> {
//!     OpenApiRouter::new().routes(routes!(thing))
//! }
//! ```
//! Response bodies derive `utoipa::ToSchema` (or point at a schema in `openapi.rs`); an old URL
//! form of an existing route goes through `openapi::alias`. A plain `.route(` in this folder
//! fails `openapi::tests::no_route_bypasses_the_spec`. Merge the module's router in `api()` below.

pub mod account;
pub mod admin;
pub mod auth;
pub mod charging;
pub mod command_limit;
pub mod error;
pub mod ha;
pub mod health;
pub mod json;
pub mod json_errors;
pub mod link;
pub mod observe;
pub mod openapi;
pub mod push;
pub mod refresh;
pub mod sessions;
pub mod webhooks;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use evconduit_actors::fleet::Fleet;
use evconduit_actors::ports::Clock;
use evconduit_actors::push::PushOutbox;
use evconduit_actors::refresh::RefreshScheduler;
use evconduit_actors::sessions::SessionDetector;
use evconduit_actors::write_behind::WriteBehind;
use utoipa_axum::router::OpenApiRouter;

use crate::accounts::Accounts;
use crate::config::Config;
use crate::enode::client::Client;
use crate::ingest::WebhookIngest;
use crate::metrics::HttpMetrics;
use crate::runtime_lag::RuntimeLag;
use crate::store::Store;
use crate::subscription::SubscriptionKeeper;
use admin::rates::WebhookRates;
use error::ApiError;

/// What every handler may use: one `Arc`, because axum clones the state for every extractor of
/// every request, and cloning (then dropping) twenty handles cost about 7% of the CPU of an HA
/// poll under load (perf, 100 000 vehicles). Fields are reached through `Deref`.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl From<AppParts> for AppState {
    fn from(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The handles inside `AppState`.
pub struct AppParts {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub accounts: Arc<Accounts>,
    pub fleet: Fleet,
    pub ingest: Arc<WebhookIngest>,
    pub clock: Arc<dyn Clock>,
    /// The Enode client; None when no credentials are configured (reads still work).
    pub enode: Option<Client>,
    pub refresh: RefreshScheduler,
    pub hints: Arc<refresh::HintCooldowns>,
    /// Per-user limit on commands that spend the shared Enode budget.
    pub commands: Arc<command_limit::CommandLimit>,
    /// Keeps Enode's webhook pointed here; None when no public URL or credentials are configured.
    pub subscription: Option<Arc<SubscriptionKeeper>>,
    /// Charging sessions in progress and every user's electricity rate.
    pub sessions: Arc<SessionDetector>,
    pub write_behind: WriteBehind,
    pub http_metrics: HttpMetrics,
    pub webhook_rates: Arc<WebhookRates>,
    /// How late the runtime runs ready work (see `runtime_lag`).
    pub runtime_lag: Arc<RuntimeLag>,
    /// Set when shutdown begins: `/readyz` answers 503 so load balancers stop sending traffic
    /// while open requests finish.
    pub draining: Arc<AtomicBool>,
    /// Push to Home Assistant: registrations and their deliveries.
    pub push: PushOutbox,
}

/// Every public route with its description.
pub fn api() -> OpenApiRouter<AppState> {
    openapi::documented()
        .merge(ha::router())
        .merge(account::router())
        .merge(charging::router())
        .merge(link::router())
        .merge(refresh::router())
        .merge(sessions::router())
        .merge(push::router())
        .merge(webhooks::router())
        .merge(health::router())
        .merge(admin::router())
}

/// The OpenAPI description of `api()`: what `/openapi.json` serves, less that route itself.
pub fn spec() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

pub fn router(state: AppState) -> Router {
    let (router, spec) = api().split_for_parts();
    openapi::with_spec_route(router, openapi::finish(spec))
        .fallback(|| async { ApiError::NotFound("no such route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // One `layer` call for all three: axum boxes every route once more per call, and each
        // box is paid on every request. Outermost first: observe sees every answer as sent.
        .layer(
            tower::ServiceBuilder::new()
                .layer(observe::ObserveLayer::new(state.http_metrics.clone()))
                .layer_fn(json_errors::JsonErrors::new)
                // Bodies here are a few hundred bytes; the webhook route reads its own (larger) limit.
                .layer_fn(json::BodyLimit::new),
        )
        .with_state(state)
}
