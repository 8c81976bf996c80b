//! The actors reach the world only through these traits; `src/` implements them (SQL store,
//! Enode client, HTTP push), tests implement them in memory.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::snapshot::Snapshot;
use crate::state::VehicleState;

/// A failure at a port. The actors only need to know whether trying again later can help.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PortError {
    pub message: String,
    /// True when the same call may succeed later (database down, timeout).
    pub retryable: bool,
}

impl PortError {
    pub fn retryable(message: impl Into<String>) -> Self {
        Self { message: message.into(), retryable: true }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self { message: message.into(), retryable: false }
    }
}

/// One change to persist. The write-behind keeps only the latest per vehicle.
#[derive(Clone, Debug)]
pub enum VehicleWrite {
    Upsert(Arc<VehicleState>),
    Delete { internal_id: Uuid },
}

impl VehicleWrite {
    pub fn internal_id(&self) -> Uuid {
        match self {
            VehicleWrite::Upsert(state) => state.internal_id,
            VehicleWrite::Delete { internal_id } => *internal_id,
        }
    }
}

/// Durable vehicle state: restored at start, written behind while running.
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    async fn load_vehicles(&self) -> Result<Vec<VehicleState>, PortError>;
    /// Applies the batch atomically: all or nothing, so a retry never half-applies.
    async fn write_vehicles(&self, batch: &[VehicleWrite]) -> Result<(), PortError>;
}

/// Wall-clock time, injected so tests control it.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Told about every new snapshot of every vehicle, from inside that vehicle's actor: calls for one
/// vehicle never overlap and arrive in order, so a listener may keep per-vehicle state without
/// locks of its own beyond a map. Must not block: queue work, do not perform it here.
pub trait ChangeListener: Send + Sync + 'static {
    /// `previous` is None when the vehicle was just created (or restored); otherwise `current`
    /// is its successor (`Snapshot::next`).
    fn on_change(&self, previous: Option<&Arc<Snapshot>>, current: &Arc<Snapshot>);
}

/// Why a call to Enode failed, in the terms the actors act on.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum UpstreamError {
    /// The vehicle or action does not exist at Enode.
    #[error("not found at Enode")]
    NotFound,
    /// Enode refused the request as things stand (its 400: unplugged, already in that state).
    #[error("{detail}")]
    Rejected { detail: String },
    /// Enode will not act while something else is in control (its 422: smart charging).
    #[error("{detail}")]
    Unprocessable { detail: String },
    /// Enode is rate limiting or unavailable, or the circuit breaker is open.
    #[error("{detail}")]
    Unavailable { retry_after: Option<std::time::Duration>, detail: String },
    /// Anything else (credentials, undecodable answers).
    #[error("{detail}")]
    Failed { detail: String },
}

/// Enode, as the actors need it. Every call passes the one global budget; these are the calls a
/// person is waiting for (commands) or that keep data fresh (refreshes, at background priority).
#[async_trait]
pub trait Upstream: Send + Sync + 'static {
    /// The vehicle as Enode has it now (a background refresh).
    async fn fetch_vehicle(&self, enode_id: &str) -> Result<crate::model::Vehicle, UpstreamError>;
    /// Starts or stops charging (a user command).
    async fn charge(
        &self,
        enode_id: &str,
        kind: crate::model::ChargeKind,
    ) -> Result<crate::model::ChargeAction, UpstreamError>;
    /// An action's current state (the fallback when its webhook does not come).
    async fn charge_action(&self, action_id: &str) -> Result<crate::model::ChargeAction, UpstreamError>;
}

/// Who cares about a vehicle, for deciding what to refresh.
pub trait Audience: Send + Sync + 'static {
    /// The user's tier now (trials that ended count as Free).
    fn tier(&self, user_id: Uuid) -> crate::tier::Tier;
    /// Whether the vehicle has a push registration (pushing keeps HA from polling, so a pushed
    /// vehicle is watched even if it is never read).
    fn has_push_target(&self, internal_id: Uuid) -> bool;
}

/// The `Upstream` of a service with no Enode credentials configured: every call is unavailable.
pub struct NoUpstream;

#[async_trait]
impl Upstream for NoUpstream {
    async fn fetch_vehicle(&self, _enode_id: &str) -> Result<crate::model::Vehicle, UpstreamError> {
        Err(not_configured())
    }
    async fn charge(
        &self,
        _enode_id: &str,
        _kind: crate::model::ChargeKind,
    ) -> Result<crate::model::ChargeAction, UpstreamError> {
        Err(not_configured())
    }
    async fn charge_action(&self, _action_id: &str) -> Result<crate::model::ChargeAction, UpstreamError> {
        Err(not_configured())
    }
}

fn not_configured() -> UpstreamError {
    UpstreamError::Unavailable { retry_after: None, detail: "Enode is not configured on this server".into() }
}

/// Durable charging sessions and the electricity rates their costs come from (see `sessions`).
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Sessions still open (no end time): restored at start, so a restart mid-charge continues
    /// the same session instead of starting a new one.
    async fn load_open_sessions(&self) -> Result<Vec<crate::sessions::ChargingSession>, PortError>;
    /// Every user's electricity rate, restored at start.
    async fn load_electricity_rates(&self) -> Result<Vec<(Uuid, crate::sessions::ElectricityRate)>, PortError>;
    /// Applies the batch atomically. An upsert never overwrites a session's odometer (the user
    /// sets that through the API).
    async fn write_sessions(&self, batch: &[crate::sessions::SessionWrite]) -> Result<(), PortError>;
}

/// What one push delivery to Home Assistant came to. Each failure keeps its own reason: the
/// predecessor recorded every failure as an id mismatch, and its users could not tell why pushes
/// stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    Delivered,
    /// HA answered 200 "OK (ignored - different vehicle)": its entry holds the other id.
    IdMismatch,
    Timeout,
    ConnectRefused,
    /// The target's address is one the service does not push to (loopback, private, link-local,
    /// metadata), checked on the address actually connected to.
    Refused(String),
    Http4xx(u16),
    Http5xx(u16),
    /// Anything else: name resolution, TLS, a redirect, a dropped connection.
    Failed(String),
}

impl PushOutcome {
    /// A short, stable reason for health pages and logs.
    pub fn reason(&self) -> String {
        match self {
            PushOutcome::Delivered => "delivered".into(),
            PushOutcome::IdMismatch => "id_mismatch".into(),
            PushOutcome::Timeout => "timeout".into(),
            PushOutcome::ConnectRefused => "connect_refused".into(),
            PushOutcome::Refused(why) => format!("refused: {why}"),
            PushOutcome::Http4xx(code) | PushOutcome::Http5xx(code) => format!("http_{code}"),
            PushOutcome::Failed(detail) => format!("error: {detail}"),
        }
    }

    /// Whether trying the same push again later may succeed. HA answers 404 while it starts and
    /// has not registered its webhooks yet, so 404 (and 408, 429) are worth retrying; other 4xx
    /// answers, a mismatch and a refused address will say the same next time.
    pub fn retryable(&self) -> bool {
        match self {
            PushOutcome::Delivered | PushOutcome::IdMismatch | PushOutcome::Refused(_) => false,
            PushOutcome::Http4xx(code) => matches!(code, 404 | 408 | 429),
            PushOutcome::Timeout | PushOutcome::ConnectRefused | PushOutcome::Http5xx(_) | PushOutcome::Failed(_) => {
                true
            }
        }
    }
}

/// One push delivery over the network. Implementations send once and never retry: the outbox
/// decides about retries, order and coalescing.
#[async_trait]
pub trait PushTransport: Send + Sync + 'static {
    /// POSTs `body` (JSON) to `url`. The URL is a secret (it holds HA's webhook id): an
    /// implementation may log its host, never the whole of it.
    async fn deliver(&self, url: &str, body: bytes::Bytes) -> PushOutcome;
}

/// Durable push registrations and their delivery state (see `push`).
#[async_trait]
pub trait PushStore: Send + Sync + 'static {
    /// Every registration with its delivery state, at start.
    async fn load_push_targets(&self) -> Result<Vec<crate::push::PushTargetRecord>, PortError>;
    /// Inserts or replaces the vehicle's registration, keeping its delivery state (versions and
    /// pending push), and removes the same user's registration of the same webhook id for another
    /// vehicle. A new URL starts with a clean health record.
    async fn save_push_registration(&self, registration: &crate::push::PushRegistration) -> Result<(), PortError>;
    /// Records the newest state waiting to be pushed (an older version never replaces a newer one).
    async fn save_push_pending(&self, vehicle_id: Uuid, pending: &crate::push::PendingPush) -> Result<(), PortError>;
    /// Records an attempt's outcome: the health, and when `settled` is given, that every version up
    /// to it needs no more attempts (its pending push is cleared if it is not newer).
    async fn record_push_attempt(
        &self,
        vehicle_id: Uuid,
        settled: Option<u64>,
        health: &crate::push::PushHealth,
    ) -> Result<(), PortError>;
}
