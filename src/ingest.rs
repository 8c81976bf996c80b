//! What Enode webhook events do. The HTTP receiver (http/webhooks.rs) checks the signature, records
//! the delivery and hands the parsed events here; each is routed to the vehicle actors.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use evconduit_actors::fleet::{Fleet, Routed};
use evconduit_actors::freshness::WebhookStream;
use evconduit_actors::model::ChargeAction;
use evconduit_actors::state::DataSource;
use evconduit_actors::vehicle::ObservationKind;
use serde::Serialize;
use uuid::Uuid;

use crate::accounts::Accounts;
use crate::delivery_claims::{Claim, DeliveryClaims};
use crate::enode::events::{Event, Parsed};
use crate::store::StoreError;

pub struct WebhookIngest {
    fleet: Fleet,
    accounts: Arc<Accounts>,
    /// What the stream of deliveries vouches for (see `freshness`): fed here, read by the
    /// refresh scheduler and the webhook subscription keeper.
    stream: Arc<WebhookStream>,
    counters: Counters,
    closed: std::sync::atomic::AtomicBool,
    claims: Arc<DeliveryClaims>,
}

#[derive(Default)]
struct Counters {
    deliveries: AtomicU64,
    duplicate_deliveries: AtomicU64,
    rejected_signature: AtomicU64,
    rejected_body: AtomicU64,
    discovered: AtomicU64,
    updated: AtomicU64,
    deleted: AtomicU64,
    credentials_invalidated: AtomicU64,
    vendor_action_updated: AtomicU64,
    heartbeats: AtomicU64,
    tests: AtomicU64,
    unknown_event: AtomicU64,
    malformed_event: AtomicU64,
    unknown_user: AtomicU64,
    wrong_owner: AtomicU64,
    /// Unix milliseconds; 0 = never.
    last_delivery_ms: AtomicI64,
    last_heartbeat_ms: AtomicI64,
}

/// A point-in-time copy of the counters, for health pages and metrics.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IngestStats {
    pub deliveries: u64,
    pub duplicate_deliveries: u64,
    pub rejected_signature: u64,
    pub rejected_body: u64,
    pub discovered: u64,
    pub updated: u64,
    pub deleted: u64,
    pub credentials_invalidated: u64,
    pub vendor_action_updated: u64,
    pub heartbeats: u64,
    pub tests: u64,
    pub unknown_event: u64,
    pub malformed_event: u64,
    pub unknown_user: u64,
    pub wrong_owner: u64,
    pub last_delivery_at: Option<DateTime<Utc>>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
}

/// Why a delivery was refused, for counting.
#[derive(Clone, Copy, Debug)]
pub enum Rejection {
    Signature,
    Body,
}

impl WebhookIngest {
    pub fn new(fleet: Fleet, accounts: Arc<Accounts>, stream: Arc<WebhookStream>) -> Self {
        Self {
            fleet,
            accounts,
            stream,
            counters: Counters::default(),
            closed: std::sync::atomic::AtomicBool::new(false),
            claims: Arc::default(),
        }
    }

    /// Claims a recorded delivery for applying here; None when this process is applying it
    /// already or has applied it and not yet marked it so (see `delivery_claims`).
    pub fn claim(&self, delivery_id: &str) -> Option<Claim> {
        self.claims.claim(delivery_id)
    }

    pub fn rejected(&self, why: Rejection) {
        let counter = match why {
            Rejection::Signature => &self.counters.rejected_signature,
            Rejection::Body => &self.counters.rejected_body,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn duplicate(&self) {
        self.counters.duplicate_deliveries.fetch_add(1, Ordering::Relaxed);
    }

    /// Applies a recorded delivery's events in order. Stops at a store failure (a user lookup
    /// that could not be made): the delivery then stays unapplied and Enode's retry applies it
    /// again, from the start, harmlessly (newer state wins).
    pub async fn apply(&self, events: Vec<Parsed>, now: DateTime<Utc>) -> Result<(), StoreError> {
        let c = &self.counters;
        c.deliveries.fetch_add(1, Ordering::Relaxed);
        c.last_delivery_ms.store(now.timestamp_millis(), Ordering::Relaxed);
        self.stream.delivery(now);
        for parsed in events {
            match parsed {
                Parsed::Event(event) => self.apply_event(event, now).await?,
                Parsed::Unknown(name) => {
                    c.unknown_event.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(event = %name, "unhandled Enode event ignored");
                }
                Parsed::Malformed { event, error } => {
                    c.malformed_event.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%event, %error, "malformed Enode event ignored");
                }
            }
        }
        Ok(())
    }

    async fn apply_event(&self, event: Event, now: DateTime<Utc>) -> Result<(), StoreError> {
        let c = &self.counters;
        match event {
            Event::VehicleDiscovered(e) => {
                c.discovered.fetch_add(1, Ordering::Relaxed);
                self.observe(&e.user.id, e.vehicle, ObservationKind::Discovered).await?;
            }
            Event::VehicleUpdated(e) => {
                c.updated.fetch_add(1, Ordering::Relaxed);
                self.observe(&e.user.id, e.vehicle, ObservationKind::Updated).await?;
            }
            Event::VehicleDeleted(e) => {
                c.deleted.fetch_add(1, Ordering::Relaxed);
                let Some(user) = self.known_user(&e.user.id).await? else { return Ok(()) };
                let owned = self.fleet.board().get(&e.vehicle.id).is_some_and(|entry| entry.owner() == user);
                if owned && let Err(err) = self.fleet.remove(&e.vehicle.id).await {
                    tracing::error!(error = %err, "could not remove deleted vehicle");
                }
            }
            Event::CredentialsInvalidated(e) => {
                c.credentials_invalidated.fetch_add(1, Ordering::Relaxed);
                if let Some(user) = self.known_user(&e.user.id).await? {
                    let n = self.fleet.credentials_invalidated(user, e.vendor.as_deref());
                    tracing::info!(user = %user, vendor = ?e.vendor, vehicles = n, "vendor credentials invalidated");
                }
            }
            Event::VendorActionUpdated(e) => {
                c.vendor_action_updated.fetch_add(1, Ordering::Relaxed);
                let Some(user) = self.known_user(&e.user.id).await? else { return Ok(()) };
                match serde_json::from_value::<ChargeAction>(e.vendor_action) {
                    Ok(action) => {
                        if self.fleet.action_updated(user, action) == Routed::WrongOwner {
                            c.wrong_owner.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(error) => {
                        c.malformed_event.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%error, "vendor action event without a readable action ignored");
                    }
                }
            }
            Event::Heartbeat(e) => {
                c.heartbeats.fetch_add(1, Ordering::Relaxed);
                c.last_heartbeat_ms.store(now.timestamp_millis(), Ordering::Relaxed);
                self.stream.heartbeat(e.created_at, e.pending_events, now);
            }
            Event::WebhookTest(_) => {
                c.tests.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    async fn observe(
        &self,
        enode_user: &str,
        vehicle: Box<crate::enode::model::Vehicle>,
        kind: ObservationKind,
    ) -> Result<(), StoreError> {
        let source = DataSource::Webhook;
        // Most events are about a vehicle already on the board as this user's: routed at once,
        // the board vouching for the user (see `Fleet::observe_owned`).
        let vehicle = match Uuid::parse_str(enode_user) {
            Ok(user) => match self.fleet.observe_owned(user, vehicle, source, kind) {
                Ok(()) => return Ok(()),
                Err(vehicle) => vehicle,
            },
            Err(_) => vehicle,
        };
        let Some(user) = self.known_user(enode_user).await? else { return Ok(()) };
        // The fleet records the webhook in the vehicle's history.
        if self.fleet.observe(user, vehicle, source, kind) == Routed::WrongOwner {
            self.counters.wrong_owner.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The user an event names. A user's id is their Enode user id; events for users this
    /// service does not know (another deployment's, or deleted) are counted and ignored.
    async fn known_user(&self, enode_user: &str) -> Result<Option<Uuid>, StoreError> {
        let known = match Uuid::parse_str(enode_user) {
            Ok(id) => self.accounts.user_exists(id).await?.then_some(id),
            Err(_) => None,
        };
        if known.is_none() {
            self.counters.unknown_user.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("Enode event for an unknown user ignored");
        }
        Ok(known)
    }

    /// Webhooks are refused (503, so Enode keeps and retries them) from the moment shutdown
    /// starts stopping the actors: an event accepted then would be acknowledged and lost.
    pub fn stop_accepting(&self) {
        self.closed.store(true, Ordering::Release);
    }

    pub fn is_accepting(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }

    pub fn stats(&self) -> IngestStats {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let time = |a: &AtomicI64| match a.load(Ordering::Relaxed) {
            0 => None,
            ms => DateTime::from_timestamp_millis(ms),
        };
        IngestStats {
            deliveries: load(&c.deliveries),
            duplicate_deliveries: load(&c.duplicate_deliveries),
            rejected_signature: load(&c.rejected_signature),
            rejected_body: load(&c.rejected_body),
            discovered: load(&c.discovered),
            updated: load(&c.updated),
            deleted: load(&c.deleted),
            credentials_invalidated: load(&c.credentials_invalidated),
            vendor_action_updated: load(&c.vendor_action_updated),
            heartbeats: load(&c.heartbeats),
            tests: load(&c.tests),
            unknown_event: load(&c.unknown_event),
            malformed_event: load(&c.malformed_event),
            unknown_user: load(&c.unknown_user),
            wrong_owner: load(&c.wrong_owner),
            last_delivery_at: time(&c.last_delivery_ms),
            last_heartbeat_at: time(&c.last_heartbeat_ms),
        }
    }
}
