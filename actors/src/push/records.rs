//! What the outbox keeps per push target, durably and for health pages.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A Home Assistant webhook a vehicle's changes are pushed to. One per vehicle.
#[derive(Clone, Debug, PartialEq)]
pub struct PushRegistration {
    /// The vehicle's internal id.
    pub vehicle_id: Uuid,
    pub enode_vehicle_id: String,
    pub user_id: Uuid,
    /// HA's webhook id, also the last path segment of `url`.
    pub webhook_id: String,
    /// `{external_url}/api/webhook/{webhook_id}`. A secret: whoever knows it can post to HA.
    pub url: String,
    /// The vehicle id exactly as the registration gave it (Enode or internal form): what HA's
    /// entry holds, so what a push names the vehicle by.
    pub vehicle_ref: String,
    pub registered_at: DateTime<Utc>,
}

/// How deliveries to a target have been going.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PushHealth {
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub last_failure_reason: Option<String>,
    pub consecutive_failures: u32,
}

/// The newest state waiting to be pushed to a target.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingPush {
    /// Counts the target's states; a push is for exactly one version, and a version once
    /// settled (delivered, or refused for good) is never sent again.
    pub version: u64,
    /// The vehicle's status body (the snapshot's bytes); the push wraps it.
    pub status: Bytes,
    /// When the service received the state: the push's `createdAt`.
    pub created_at: DateTime<Utc>,
}

/// A registration with its durable delivery state, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct PushTargetRecord {
    pub registration: PushRegistration,
    pub health: PushHealth,
    pub pending: Option<PendingPush>,
    /// Every version up to this one needs no more attempts.
    pub settled_version: u64,
}

/// A target as its owner sees it (`GET /api/ha/webhook/status`).
#[derive(Clone, Debug, PartialEq)]
pub struct PushTargetView {
    pub registration: PushRegistration,
    pub health: PushHealth,
    /// A newer state is waiting to be delivered.
    pub pending: bool,
    pub circuit: Circuit,
}

/// A target's circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Circuit {
    /// Deliveries go out as states change.
    Closed,
    /// Too many failures in a row: nothing is tried until the breaker's wait has passed.
    Open,
    /// The wait has passed: the next delivery is a trial.
    HalfOpen,
}
