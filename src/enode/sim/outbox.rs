//! Webhook events as the world produces them: rendered to JSON once, at the moment they happen
//! (an event carries the vehicle as it was then), and only when some subscription is listening,
//! so a 100 000-vehicle fleet with nobody subscribed renders nothing.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::clock::{SimMillis, to_datetime};
use crate::enode::model::{API_VERSION, ChargeAction, Vehicle};

/// One rendered event.
#[derive(Clone, Debug)]
pub struct OutEvent {
    pub name: &'static str,
    pub json: Arc<str>,
}

pub const DISCOVERED: &str = "user:vehicle:discovered";
pub const UPDATED: &str = "user:vehicle:updated";
pub const DELETED: &str = "user:vehicle:deleted";
pub const CREDENTIALS_INVALIDATED: &str = "user:credentials:invalidated";
pub const VENDOR_ACTION_UPDATED: &str = "user:vendor-action:updated";
pub const HEARTBEAT: &str = "system:heartbeat";
pub const WEBHOOK_TEST: &str = "enode:webhook:test";

/// Collects the events of one change to the world; the caller hands them to the subscriptions
/// after letting go of the world's lock.
#[derive(Debug, Default)]
pub struct Outbox {
    /// False when no subscription is active: events are then not even rendered.
    pub enabled: bool,
    pub events: Vec<OutEvent>,
}

#[derive(Serialize)]
struct UserRef<'a> {
    id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Head<'a> {
    event: &'a str,
    created_at: DateTime<Utc>,
    version: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VehicleEvent<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    user: UserRef<'a>,
    vehicle: &'a Vehicle,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_fields: Option<&'a [&'a str]>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CredentialsEvent<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    user: UserRef<'a>,
    vendor: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ActionEvent<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    user: UserRef<'a>,
    vendor_action: &'a ChargeAction,
    updated_fields: &'a [&'a str],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HeartbeatEvent<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    pending_events: usize,
}

fn head(event: &'static str, at: SimMillis) -> Head<'static> {
    Head { event, created_at: to_datetime(at), version: API_VERSION }
}

fn render(name: &'static str, body: &impl Serialize) -> OutEvent {
    // These structs hold only strings, numbers and typed models: serialising cannot fail.
    let json = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    OutEvent { name, json: Arc::from(json) }
}

impl Outbox {
    pub fn new(enabled: bool) -> Self {
        Self { enabled, events: Vec::new() }
    }

    /// `render` is only called when someone listens.
    pub fn vehicle(
        &mut self,
        name: &'static str,
        at: SimMillis,
        user: &str,
        vehicle: impl FnOnce() -> Vehicle,
        updated_fields: Option<&[&str]>,
    ) {
        if !self.enabled {
            return;
        }
        let vehicle = vehicle();
        self.events.push(render(
            name,
            &VehicleEvent { head: head(name, at), user: UserRef { id: user }, vehicle: &vehicle, updated_fields },
        ));
    }

    pub fn credentials_invalidated(&mut self, at: SimMillis, user: &str, vendor: &str) {
        if self.enabled {
            self.events.push(render(
                CREDENTIALS_INVALIDATED,
                &CredentialsEvent { head: head(CREDENTIALS_INVALIDATED, at), user: UserRef { id: user }, vendor },
            ));
        }
    }

    pub fn action_updated(&mut self, at: SimMillis, action: &ChargeAction, fields: &[&str]) {
        if self.enabled {
            self.events.push(render(
                VENDOR_ACTION_UPDATED,
                &ActionEvent {
                    head: head(VENDOR_ACTION_UPDATED, at),
                    user: UserRef { id: &action.user_id },
                    vendor_action: action,
                    updated_fields: fields,
                },
            ));
        }
    }
}

pub fn heartbeat(at: SimMillis, pending_events: usize) -> OutEvent {
    render(HEARTBEAT, &HeartbeatEvent { head: head(HEARTBEAT, at), pending_events })
}

pub fn webhook_test(at: SimMillis) -> OutEvent {
    render(WEBHOOK_TEST, &head(WEBHOOK_TEST, at))
}
