//! The Enode client: the only code that calls Enode.
//!
//! Every call, from any user or any background task, goes through one `Client` (cheap to clone,
//! all clones share one state) and so under one set of rules: one cached OAuth token, one global
//! request budget with user calls first, one shared pause after a 429, retries with backoff for
//! calls that may be repeated, one circuit breaker, and one set of counters.
//!
//! - `calls`: the typed calls (start here)
//! - `exchange`: the rules around each request; `wire`: one request over HTTP
//! - `token`, `budget`, `breaker`, `retry`: one rule each
//! - `stats`: the counters; `error`: the one error type; `config`: what the client is told

mod breaker;
mod budget;
mod calls;
mod config;
mod endpoint;
mod error;
mod exchange;
mod retry;
mod stats;
mod token;
mod wire;

use std::sync::Arc;

use tokio::time::Instant;

pub use breaker::{BreakerSnapshot, BreakerState};
pub use budget::Priority;
pub use config::ClientConfig;
pub use error::EnodeError;
pub use stats::{ClientStats, Outcome, RequestCount, WaitStats};

use exchange::Exchange;

/// The Enode client. Clone it freely: clones share the token, budget, breaker and counters.
#[derive(Clone)]
pub struct Client {
    exchange: Arc<Exchange>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("the Enode client must be built inside a tokio runtime")]
    NoRuntime,
    #[error("cannot build the Enode HTTP client: {0}")]
    Http(String),
}

impl Client {
    /// Builds the client and starts its budget dispatcher on the current tokio runtime.
    pub fn new(config: ClientConfig) -> Result<Self, ClientBuildError> {
        tokio::runtime::Handle::try_current().map_err(|_| ClientBuildError::NoRuntime)?;
        let exchange = Exchange::new(config).map_err(|e| ClientBuildError::Http(e.to_string()))?;
        Ok(Self { exchange: Arc::new(exchange) })
    }

    /// A copy of the counters: requests by endpoint and outcome, budget and 429 waits, retries,
    /// token renewals and the breaker.
    pub fn stats(&self) -> ClientStats {
        self.exchange.stats.snapshot(self.breaker())
    }

    pub fn breaker(&self) -> BreakerSnapshot {
        self.exchange.breaker.snapshot(Instant::now())
    }
}

/// The actors call Enode through a port trait whose futures must be `Send`; this does not compile
/// if a call's future ever stops being `Send` (a lock guard or an `Rc` held across an await).
#[cfg(test)]
#[allow(dead_code, clippy::let_underscore_future)]
fn every_call_is_send(enode: &Client) {
    use crate::enode::model::{ChargeKind, LinkRequest, WebhookRequest};
    fn send<T: Send>(_: T) {}
    let hook = WebhookRequest::default();
    let link = LinkRequest {
        vendor_type: "vehicle".into(),
        vendor: None,
        scopes: Vec::new(),
        language: "en-US".into(),
        redirect_uri: String::new(),
        color_scheme: None,
    };
    send(enode.get_vehicle("v", Priority::User));
    send(enode.list_user_vehicles("u", Priority::User));
    send(enode.list_vehicles(Priority::Background));
    send(enode.create_link_session("u", &link));
    send(enode.charge("v", ChargeKind::Start));
    send(enode.get_action("a"));
    send(enode.cancel_action("a"));
    send(enode.refresh_hint("v", Priority::Background));
    send(enode.delete_user("u"));
    send(enode.unlink_vendor("u", "TESLA"));
    send(enode.create_webhook(&hook));
    send(enode.list_webhooks());
    send(enode.get_webhook("w"));
    send(enode.update_webhook("w", &hook));
    send(enode.delete_webhook("w"));
    send(enode.test_webhook("w"));
    send(enode.clone());
}
