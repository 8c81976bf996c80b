//! The rows the store keeps for accounts and webhook deliveries. Vehicle rows are the actors'
//! `VehicleState` (see `evconduit_actors::state`).

use chrono::{DateTime, Utc};
use evconduit_actors::tier::Tier;
use serde::Serialize;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct User {
    /// Also the user's Enode user id: Enode webhooks name the user by it.
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    /// The tier paid for (or granted). See `effective_tier` for what applies now.
    pub tier: Tier,
    /// Set while the user is on a Pro trial; when it passes, the user is Free.
    pub trial_ends_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl User {
    /// The tier that applies at `now`: a trial that has ended falls back to Free.
    pub fn effective_tier(&self, now: DateTime<Utc>) -> Tier {
        match self.trial_ends_at {
            Some(ends) if ends <= now => Tier::Free,
            _ => self.tier,
        }
    }
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub tier: Tier,
    pub trial_ends_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// SHA-256 of an API key. Only the hash is stored; the key is shown once, at creation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = hex::decode(s).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }
}

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A prefix is enough to tell keys apart in a log; the hash is not a secret, but short is kind.
        write!(f, "KeyHash({}..)", &self.to_hex()[..12])
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApiKey {
    pub id: Uuid,
    #[serde(skip)]
    pub hash: KeyHash,
    pub user_id: Uuid,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub id: Uuid,
    pub hash: KeyHash,
    pub user_id: Uuid,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One Enode webhook delivery (`x-enode-delivery`), recorded before it is acknowledged.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub id: String,
    pub received_at: DateTime<Utc>,
    pub event_count: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// First time this delivery id was seen: apply it.
    Recorded,
    /// Seen and applied before (Enode retries with the same id): acknowledge, do not apply again.
    Duplicate,
    /// Seen before, but its events were never applied (the request was cut off, or a lookup
    /// failed): apply it now. Applying twice is harmless: newer state wins.
    Unapplied,
}
