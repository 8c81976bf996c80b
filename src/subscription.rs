//! Keeps Enode's webhook pointed at this service.
//!
//! At start (with Enode credentials and a public URL): exactly one subscription for
//! `{public_url}/api/webhook/enode` with the configured secret: created if missing, updated
//! (secret, events) if present, tested if inactive (a successful test reactivates it), and
//! duplicates for the same URL deleted. While running: if no delivery (events or heartbeats)
//! arrives for `webhook_silence_secs`, the webhook is reported degraded and the subscription is
//! tested (which makes Enode deliver, and reactivates it); wanted vehicles meanwhile fall back to
//! refreshes (see `freshness`). Deliveries resuming clear it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use evconduit_actors::freshness::WebhookStream;
use evconduit_actors::ports::Clock;
use serde::Serialize;

use crate::config::Secret;
use crate::enode::client::{Client, EnodeError};
use crate::enode::model::{API_VERSION, WebhookRequest, WebhookSubscription};

/// What admins and `/readyz` are told about the webhook.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SubscriptionStatus {
    /// `ok`, `waiting` (no delivery yet since start), `degraded` (silent too long), or
    /// `unmanaged` (no public URL or credentials: someone else keeps the subscription).
    pub state: &'static str,
    pub subscription_id: Option<String>,
    pub url: Option<String>,
    pub last_delivery_at: Option<DateTime<Utc>>,
    pub last_check_at: Option<DateTime<Utc>>,
    pub last_test_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

pub struct SubscriptionKeeper {
    client: Client,
    url: String,
    secret: Secret,
    stream: Arc<WebhookStream>,
    clock: Arc<dyn Clock>,
    silence: Duration,
    started_at: DateTime<Utc>,
    status: Mutex<SubscriptionStatus>,
}

impl SubscriptionKeeper {
    pub fn new(
        client: Client,
        url: String,
        secret: Secret,
        stream: Arc<WebhookStream>,
        clock: Arc<dyn Clock>,
        silence: Duration,
    ) -> Self {
        let started_at = clock.now();
        let status = SubscriptionStatus { state: "waiting", url: Some(url.clone()), ..SubscriptionStatus::default() };
        Self { client, url, secret, stream, clock, silence, started_at, status: Mutex::new(status) }
    }

    pub fn status(&self) -> SubscriptionStatus {
        let mut status = self.lock().clone();
        status.last_delivery_at = self.stream.last_event();
        status.state = self.state();
        status
    }

    fn state(&self) -> &'static str {
        let now = self.clock.now();
        if !self.stream.is_silent(now) {
            "ok"
        } else if now - self.started_at < chrono::Duration::from_std(self.silence).unwrap_or_default() {
            "waiting"
        } else {
            "degraded"
        }
    }

    /// Makes Enode's subscriptions for our URL exactly one, active, with our secret.
    pub async fn ensure(&self) -> Result<WebhookSubscription, EnodeError> {
        let result = self.reconcile().await;
        let mut status = self.lock();
        status.last_check_at = Some(self.clock.now());
        match &result {
            Ok(subscription) => {
                status.subscription_id = Some(subscription.id.clone());
                status.last_error = None;
            }
            Err(err) => status.last_error = Some(err.to_string()),
        }
        result
    }

    async fn reconcile(&self) -> Result<WebhookSubscription, EnodeError> {
        let mut ours: Vec<WebhookSubscription> =
            self.client.list_webhooks().await?.into_iter().filter(|w| w.url == self.url).collect();
        // Keep an active one if there is one (the newest of those), drop the rest: two
        // subscriptions to one URL would deliver every event twice.
        ours.sort_by_key(|w| (w.is_active, w.created_at));
        let keep = ours.pop();
        for duplicate in ours {
            tracing::info!(webhook = %duplicate.id, "deleting a duplicate Enode webhook subscription");
            self.client.delete_webhook(&duplicate.id).await?;
        }
        let request = WebhookRequest {
            url: Some(self.url.clone()),
            secret: Some(self.secret.expose().to_owned()),
            events: Some(vec!["*".to_owned()]),
            api_version: Some(API_VERSION.to_owned()),
        };
        let subscription = match keep {
            None => {
                tracing::info!("creating the Enode webhook subscription");
                self.client.create_webhook(&request).await?
            }
            // Enode never shows the secret, so set it every time: after a rotation the first
            // configured secret is the one Enode signs with.
            Some(existing) => self.client.update_webhook(&existing.id, &request).await?,
        };
        if !subscription.is_active {
            self.test(&subscription.id).await?;
        }
        Ok(subscription)
    }

    async fn test(&self, id: &str) -> Result<(), EnodeError> {
        self.lock().last_test_at = Some(self.clock.now());
        let result = self.client.test_webhook(id).await?;
        tracing::info!(webhook = %id, status = ?result.status, "tested the Enode webhook subscription");
        Ok(())
    }

    /// Watches for silence until the task is dropped.
    pub async fn run(self: Arc<Self>, check_every: Duration) {
        if let Err(err) = self.ensure().await {
            tracing::error!(error = %err, "could not set up the Enode webhook subscription; will retry");
        }
        loop {
            tokio::time::sleep(check_every).await;
            let subscription_id = self.lock().subscription_id.clone();
            match (self.state(), subscription_id) {
                ("degraded", Some(id)) => {
                    let tested_recently = self
                        .lock()
                        .last_test_at
                        .is_some_and(|at| (self.clock.now() - at).to_std().is_ok_and(|since| since < self.silence));
                    if tested_recently {
                        continue;
                    }
                    tracing::warn!("no Enode webhook delivery for too long; testing the subscription");
                    if let Err(err) = self.test(&id).await {
                        self.lock().last_error = Some(err.to_string());
                        // The subscription may be gone: set it up again.
                        let _ = self.ensure().await;
                    }
                }
                (_, None) => {
                    let _ = self.ensure().await;
                }
                _ => {}
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SubscriptionStatus> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }
}
