//! What admins see of a vehicle: one `ActorRow` built from the snapshot board, the fleet's
//! supervision facts and the vehicle's history. Shared by the JSON API and the HTML page.
//!
//! Fields a deployment cannot know (no Enode client: no breaker) are `null`, so clients can rely
//! on the shape.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use evconduit_actors::history::{EventKind, HistoryEvent};
use evconduit_actors::snapshot::{ActorStatus, BoardEntry};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::enode::client::BreakerState;
use crate::http::AppState;

/// One vehicle, as admins see it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ActorRow {
    pub internal_id: Uuid,
    pub enode_id: String,
    pub user_id: Uuid,
    /// running, restarting, degraded or stopped.
    #[schema(value_type = String, example = "running")]
    pub status: ActorStatus,
    /// Failures within the supervisor's restart window (the budget before `degraded`).
    pub restarts_in_window: usize,
    pub total_restarts: u64,
    pub last_error: Option<String>,
    /// Messages waiting in the actor's mailbox (those routed by the fleet).
    pub mailbox_backlog: Option<u64>,
    /// Seconds since the data was last known current (received, refreshed or vouched for).
    pub data_age_secs: u64,
    /// Older than the owner's tier allows (the refresh scheduler's judgement).
    pub stale: bool,
    /// Read by HA recently enough to be worth refreshing.
    pub wanted: bool,
    /// webhook, refresh or restored.
    pub data_source: &'static str,
    pub received_at: DateTime<Utc>,
    /// When the car itself last reported (Enode's `lastSeen`).
    pub last_seen: Option<DateTime<Utc>>,
    pub last_webhook_at: Option<DateTime<Utc>>,
    /// The last successful refresh from Enode.
    pub last_refresh_at: Option<DateTime<Utc>>,
    /// When a failed refresh is retried; null when none is pending (or none is needed).
    pub next_refresh_at: Option<DateTime<Utc>>,
    /// A refresh will be made as soon as the budget allows (stale, wanted, eligible).
    pub refresh_scheduled: bool,
    pub refresh_failures: u32,
    pub last_refresh_error: Option<String>,
    /// Last HA read.
    pub last_read_at: Option<DateTime<Utc>>,
    /// The Enode client's circuit breaker (closed, open, half_open); null without a client.
    pub breaker: Option<String>,
    /// The vehicle's push target, if it has one: its circuit and recent failures, e.g.
    /// `closed, 0 failures` or `open, 8 failures: timeout`.
    pub push: Option<String>,
    pub relink_required: bool,
}

/// A vehicle with its recent events.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ActorDetail {
    #[serde(flatten)]
    pub row: ActorRow,
    /// Newest first, at most `history::CAPACITY`.
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<HistoryEvent>,
}

impl ActorRow {
    pub fn build(app: &AppState, entry: &Arc<BoardEntry>, now: DateTime<Utc>) -> Self {
        let snapshot = entry.snapshot();
        let state = &snapshot.state;
        let id = state.internal_id;
        let health = app.fleet.health(&id.hyphenated().to_string());
        let history = app.fleet.history();
        let last = |kind| history.last(id, kind).map(|e: HistoryEvent| e.at);
        let freshness = app.refresh.freshness(entry, now);
        let refresh = app.refresh.info(id).unwrap_or_default();
        let breaker = app.enode.as_ref().map(|client| breaker_name(client.breaker().state).to_owned());
        Self {
            internal_id: id,
            enode_id: state.vehicle.id.clone(),
            user_id: state.user_id,
            status: entry.status(),
            restarts_in_window: health.as_ref().map_or(0, |h| h.restarts_in_window),
            total_restarts: health.as_ref().map_or(0, |h| h.total_restarts),
            last_error: health.and_then(|h| h.last_error),
            mailbox_backlog: Some(u64::from(entry.queued())),
            data_age_secs: freshness.age_secs,
            stale: freshness.stale,
            wanted: freshness.wanted,
            data_source: state.source.as_str(),
            received_at: state.received_at,
            last_seen: state.vehicle.last_seen,
            last_webhook_at: last(EventKind::Webhook),
            last_refresh_at: refresh.last_success.or_else(|| last(EventKind::Refresh)),
            next_refresh_at: refresh.retry_at,
            refresh_scheduled: freshness.refresh_scheduled,
            refresh_failures: refresh.consecutive_failures,
            last_refresh_error: refresh.last_error,
            last_read_at: entry.last_read(),
            breaker,
            push: app.push.target(id).map(|t| {
                let failures = t.health.consecutive_failures;
                let circuit = serde_json::to_value(t.circuit).ok().and_then(|v| v.as_str().map(str::to_owned));
                let circuit = circuit.unwrap_or_default();
                match (&t.health.last_failure_reason, failures) {
                    (Some(reason), n) if n > 0 => format!("{circuit}, {n} failures: {reason}"),
                    _ => format!("{circuit}, {failures} failures"),
                }
            }),
            relink_required: state.relink_required,
        }
    }

    /// Sort key: the vehicles that need a look first (degraded, restarting, stopped, stale),
    /// then the rest; the id makes the order total, so a cursor can resume after any row.
    pub fn rank(&self) -> u8 {
        match self.status {
            ActorStatus::Degraded => 0,
            ActorStatus::Restarting => 1,
            ActorStatus::Stopped => 2,
            ActorStatus::Running | ActorStatus::Idle if self.stale || self.relink_required => 3,
            ActorStatus::Running | ActorStatus::Idle => 4,
        }
    }

    pub fn healthy(&self) -> bool {
        self.rank() == 4
    }
}

pub fn breaker_name(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "closed",
        BreakerState::Open => "open",
        BreakerState::HalfOpen => "half_open",
    }
}
