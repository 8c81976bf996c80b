//! What a charging session is, as stored and as listed, and the rate its cost comes from.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One charging session of one vehicle, from the first observation that showed it charging to the
/// one that showed it had stopped. Open while `end_time` is None.
#[derive(Clone, Debug, PartialEq)]
pub struct ChargingSession {
    pub id: Uuid,
    pub user_id: Uuid,
    /// The vehicle's internal id.
    pub vehicle_id: Uuid,
    pub enode_vehicle_id: String,
    pub start_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    /// Percent.
    pub battery_level_start: f64,
    /// Percent: the highest level seen so far (the level at the end once closed).
    pub battery_level_end: f64,
    /// kWh, as the vehicle last reported it.
    pub battery_capacity_kwh: Option<f64>,
    /// capacity x (end - start); None while the capacity is unknown.
    pub energy_added_kwh: Option<f64>,
    /// kW, from the vehicle's reported charge rate.
    pub max_rate_kw: Option<f64>,
    pub avg_rate_kw: Option<f64>,
    /// How many rate reports `avg_rate_kw` averages (kept so a restart continues the average).
    pub rate_samples: u32,
    pub location_lat: Option<f64>,
    pub location_lon: Option<f64>,
    /// The vehicle's odometer at the start; the user may correct it through the API.
    pub odometer_km: Option<f64>,
    /// The user's rate when the session ended, and what the energy cost at it.
    pub cost_per_kwh: Option<f64>,
    pub currency: Option<String>,
    pub total_cost: Option<f64>,
    /// When the service first recorded the session.
    pub created_at: DateTime<Utc>,
}

impl ChargingSession {
    pub fn is_open(&self) -> bool {
        self.end_time.is_none()
    }
}

/// A user's price of electricity. Sessions that end after it is set carry their cost.
#[derive(Clone, Debug, PartialEq)]
pub struct ElectricityRate {
    pub cost_per_kwh: f64,
    /// ISO 4217, upper case.
    pub currency: String,
    pub updated_at: DateTime<Utc>,
}

/// One change to persist. The writer keeps only the latest per session.
#[derive(Clone, Debug, PartialEq)]
pub enum SessionWrite {
    Upsert(Box<ChargingSession>),
    /// A session that turned out empty (a flicker): it never happened.
    Delete(Uuid),
}

impl SessionWrite {
    pub fn session_id(&self) -> Uuid {
        match self {
            SessionWrite::Upsert(session) => session.id,
            SessionWrite::Delete(id) => *id,
        }
    }
}
