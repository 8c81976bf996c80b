//! The HTTP API, one module per audience: `ha` (what Home Assistant polls), `account` (the
//! caller's keys), `webhooks` (Enode), `health` (orchestrators). Every response is JSON, errors
//! included (`error::ApiError`).

pub mod account;
pub mod auth;
pub mod charging;
pub mod error;
pub mod ha;
pub mod health;
pub mod json;
pub mod link;
pub mod refresh;
pub mod sessions;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use evconduit_actors::fleet::Fleet;
use evconduit_actors::ports::Clock;
use evconduit_actors::refresh::RefreshScheduler;
use evconduit_actors::sessions::SessionDetector;

use crate::accounts::Accounts;
use crate::config::Config;
use crate::enode::client::Client;
use crate::ingest::WebhookIngest;
use crate::store::Store;
use crate::subscription::SubscriptionKeeper;
use error::ApiError;

/// What every handler may use. Cheap to clone (handles only).
#[derive(Clone)]
pub struct AppState {
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
    /// Keeps Enode's webhook pointed here; None when no public URL or credentials are configured.
    pub subscription: Option<Arc<SubscriptionKeeper>>,
    /// Charging sessions in progress and every user's electricity rate.
    pub sessions: Arc<SessionDetector>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(ha::router())
        .merge(account::router())
        .merge(charging::router())
        .merge(link::router())
        .merge(refresh::router())
        .merge(sessions::router())
        .merge(webhooks::router())
        .merge(health::router())
        .fallback(|| async { ApiError::NotFound("no such route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}
