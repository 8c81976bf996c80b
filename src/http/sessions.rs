//! Charging history for Home Assistant (contract/home-assistant.md): the sessions the actors
//! detected, the odometer a user adds to the latest one, and the electricity rate costs come from.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDateTime, Utc};
use evconduit_actors::sessions::{ChargingSession, ElectricityRate};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::ha::owned_entry;
use super::json::JsonBody;
use super::openapi::{ErrorBody, alias};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Sessions per page when the client does not say, and the most it may ask for.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;
/// No car has driven this far; a larger odometer is a typo (metres, or an extra digit).
const MAX_ODOMETER_KM: f64 = 10_000_000.0;

pub fn router() -> OpenApiRouter<AppState> {
    let router =
        OpenApiRouter::new().routes(routes!(list)).routes(routes!(set_odometer)).routes(routes!(rate, set_rate));
    // Older clients use the `/api/v1/ha` prefix for the same calls.
    let router = alias(router, "/api/v1/ha/charging/sessions", "/api/ha/charging/sessions", get(list));
    let router = alias(
        router,
        "/api/v1/ha/charging/{vehicle_id}/odometer",
        "/api/ha/charging/{vehicle_id}/odometer",
        post(set_odometer),
    );
    alias(router, "/api/v1/ha/electricity-rate", "/api/ha/electricity-rate", get(rate).post(set_rate))
}

/// The caller's closed charging sessions, all vehicles, oldest first.
///
/// `?limit=` (default 50, at most 200) and `?since=` (sessions starting after it).
#[utoipa::path(
    get,
    path = "/api/ha/charging/sessions",
    tag = "home-assistant",
    params(
        ("limit" = Option<u32>, Query, description = "Sessions per page (default 50, at most 200)"),
        ("since" = Option<String>, Query, description = "Only sessions starting after this time"),
    ),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "`sessions` and `has_more`", body = Object),
        (status = 400, description = "A malformed limit or time", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
    )
)]
async fn list(
    State(app): State<AppState>,
    Caller(caller): Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = SessionsQuery::parse(query.as_deref().unwrap_or(""))?;
    // One more than asked tells whether more follow.
    let mut sessions = app.store.list_sessions(caller.user.id, query.since, query.limit + 1).await?;
    let has_more = sessions.len() > query.limit as usize;
    sessions.truncate(query.limit as usize);
    let sessions: Vec<SessionView> = sessions.iter().map(SessionView::from).collect();
    Ok(Json(json!({ "sessions": sessions, "has_more": has_more })))
}

#[derive(Debug, PartialEq)]
struct SessionsQuery {
    limit: u32,
    since: Option<DateTime<Utc>>,
}

impl SessionsQuery {
    fn parse(raw: &str) -> Result<Self, ApiError> {
        let mut query = Self { limit: DEFAULT_LIMIT, since: None };
        for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
            match key.as_ref() {
                "limit" => {
                    let n: i64 = value
                        .trim()
                        .parse()
                        .map_err(|_| ApiError::BadRequest(format!("limit must be a whole number, got {value:?}")))?;
                    // Clamped, not refused: a client asking for too many still gets a page.
                    query.limit = n.clamp(1, i64::from(MAX_LIMIT)) as u32;
                }
                "since" if value.trim().is_empty() => query.since = None,
                "since" => query.since = Some(parse_time(&value)?),
                _ => {}
            }
        }
        Ok(query)
    }
}

/// ISO-8601 with an offset or `Z`; without one, UTC. A `+` in an unencoded query string arrives
/// as a space (form encoding), so "2026-01-01T00:00:00 00:00" is read as "+00:00".
fn parse_time(raw: &str) -> Result<DateTime<Utc>, ApiError> {
    let raw = raw.trim();
    let candidates = [raw.to_owned(), raw.replace(' ', "+")];
    for text in &candidates {
        if let Ok(t) = DateTime::parse_from_rfc3339(text) {
            return Ok(t.with_timezone(&Utc));
        }
        if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
            return Ok(t.and_utc());
        }
    }
    Err(ApiError::BadRequest(format!("since must be an ISO-8601 time such as 2026-01-31T18:00:00Z, got {raw:?}")))
}

/// One session as the HA client reads it.
#[derive(Serialize)]
struct SessionView<'a> {
    session_id: uuid::Uuid,
    vehicle_id: &'a str,
    internal_vehicle_id: uuid::Uuid,
    start_time: DateTime<Utc>,
    end_time: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    duration_minutes: Option<i64>,
    #[serde(with = "evconduit_actors::model::number")]
    energy_added_kwh: Option<f64>,
    #[serde(with = "evconduit_actors::model::number")]
    total_cost: Option<f64>,
    #[serde(with = "evconduit_actors::model::number")]
    cost_per_kwh: Option<f64>,
    currency: Option<&'a str>,
    /// The service knows positions, not station names.
    station_name: Option<&'a str>,
    #[serde(with = "evconduit_actors::model::number")]
    battery_level_start: Option<f64>,
    #[serde(with = "evconduit_actors::model::number")]
    battery_level_end: Option<f64>,
    #[serde(with = "evconduit_actors::model::number")]
    battery_capacity_kwh: Option<f64>,
    #[serde(with = "evconduit_actors::model::number")]
    max_rate_kw: Option<f64>,
    #[serde(with = "evconduit_actors::model::number")]
    avg_rate_kw: Option<f64>,
    #[serde(with = "evconduit_actors::model::number")]
    location_lat: Option<f64>,
    #[serde(with = "evconduit_actors::model::number")]
    location_lon: Option<f64>,
    #[serde(with = "evconduit_actors::model::number")]
    odometer_km: Option<f64>,
}

impl<'a> From<&'a ChargingSession> for SessionView<'a> {
    fn from(s: &'a ChargingSession) -> Self {
        Self {
            session_id: s.id,
            vehicle_id: &s.enode_vehicle_id,
            internal_vehicle_id: s.vehicle_id,
            start_time: s.start_time,
            end_time: s.end_time,
            created_at: s.created_at,
            duration_minutes: s.end_time.map(|end| (end - s.start_time).num_minutes()),
            energy_added_kwh: s.energy_added_kwh,
            total_cost: s.total_cost,
            cost_per_kwh: s.cost_per_kwh,
            currency: s.currency.as_deref(),
            station_name: None,
            battery_level_start: Some(s.battery_level_start),
            battery_level_end: Some(s.battery_level_end),
            battery_capacity_kwh: s.battery_capacity_kwh,
            max_rate_kw: s.max_rate_kw,
            avg_rate_kw: s.avg_rate_kw,
            location_lat: s.location_lat,
            location_lon: s.location_lon,
            odometer_km: s.odometer_km,
        }
    }
}

#[derive(Deserialize)]
struct OdometerBody {
    odometer_km: f64,
}

/// Set the odometer of the vehicle's latest charging session.
#[utoipa::path(
    post,
    path = "/api/ha/charging/{vehicle_id}/odometer",
    tag = "home-assistant",
    params(("vehicle_id" = String, Path, description = "Enode vehicle id or internal id")),
    request_body(content = Object, description = r#"{"odometer_km": 12345.6}"#),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The updated session", body = Object),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 404, description = "No such vehicle, or no session yet", body = ErrorBody),
        (status = 422, description = "Not a plausible odometer", body = ErrorBody),
    )
)]
async fn set_odometer(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(vehicle_id): Path<String>,
    JsonBody(body): JsonBody<OdometerBody>,
) -> Result<Json<Value>, ApiError> {
    if !(body.odometer_km.is_finite() && body.odometer_km > 0.0 && body.odometer_km < MAX_ODOMETER_KM) {
        return Err(ApiError::Unprocessable(format!(
            "odometer_km must be a number of kilometres above 0 and below {MAX_ODOMETER_KM}"
        )));
    }
    let entry = owned_entry(&app, &caller.user.id, &vehicle_id)?;
    let internal_id = entry.internal_id();
    let session = app
        .store
        .set_latest_session_odometer(internal_id, body.odometer_km)
        .await?
        .ok_or(ApiError::NotFound("no charging session"))?;
    let view = serde_json::to_value(SessionView::from(&session)).map_err(ApiError::internal)?;
    Ok(Json(json!({ "status": "ok", "session_id": session.id, "odometer_km": view["odometer_km"], "session": view })))
}

#[derive(Deserialize)]
struct RateBody {
    cost_per_kwh: f64,
    currency: String,
}

/// Set the caller's electricity rate: sessions ending from now on carry it and their cost.
#[utoipa::path(
    post,
    path = "/api/ha/electricity-rate",
    tag = "home-assistant",
    request_body(content = Object, description = r#"{"cost_per_kwh": 0.25, "currency": "EUR"}"#),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The rate", body = Object),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 422, description = "Not a rate or not an ISO 4217 currency", body = ErrorBody),
    )
)]
async fn set_rate(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<RateBody>,
) -> Result<Json<Value>, ApiError> {
    if !(body.cost_per_kwh.is_finite() && body.cost_per_kwh >= 0.0) {
        return Err(ApiError::Unprocessable("cost_per_kwh must be a number, 0 or more".into()));
    }
    let currency = body.currency.trim();
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(ApiError::Unprocessable(format!(
            "currency must be a 3-letter ISO 4217 code such as EUR, got {:?}",
            body.currency
        )));
    }
    let rate = ElectricityRate {
        cost_per_kwh: body.cost_per_kwh,
        currency: currency.to_ascii_uppercase(),
        updated_at: app.clock.now(),
    };
    app.store.set_electricity_rate(caller.user.id, &rate).await?;
    app.sessions.set_rate(caller.user.id, rate.clone());
    Ok(Json(rate_json(&rate)))
}

/// The caller's electricity rate.
#[utoipa::path(
    get,
    path = "/api/ha/electricity-rate",
    tag = "home-assistant",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The rate", body = Object),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 404, description = "No rate set", body = ErrorBody),
    )
)]
async fn rate(State(app): State<AppState>, Caller(caller): Caller) -> Result<Json<Value>, ApiError> {
    let rate = app.sessions.rate(caller.user.id).ok_or(ApiError::NotFound("no electricity rate set"))?;
    Ok(Json(rate_json(&rate)))
}

fn rate_json(rate: &ElectricityRate) -> Value {
    json!({ "cost_per_kwh": rate.cost_per_kwh, "currency": rate.currency, "updated_at": rate.updated_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_clamped_and_since_read_in_every_form_clients_send() {
        let q = SessionsQuery::parse("limit=1000&since=2026-01-02T03:04:05Z").unwrap();
        assert_eq!(q.limit, MAX_LIMIT);
        assert_eq!(q.since.unwrap().to_rfc3339(), "2026-01-02T03:04:05+00:00");
        assert_eq!(SessionsQuery::parse("limit=0").unwrap().limit, 1);
        assert_eq!(SessionsQuery::parse("limit=-5").unwrap().limit, 1);
        assert_eq!(SessionsQuery::parse("").unwrap(), SessionsQuery { limit: DEFAULT_LIMIT, since: None });
        // "+" unencoded arrives as a space; encoded it is a plus.
        let plus = SessionsQuery::parse("since=2026-01-02T05:04:05+02:00").unwrap().since.unwrap();
        let encoded = SessionsQuery::parse("since=2026-01-02T05%3A04%3A05%2B02%3A00").unwrap().since.unwrap();
        assert_eq!(plus, encoded);
        assert_eq!(plus.to_rfc3339(), "2026-01-02T03:04:05+00:00");
        let naive = SessionsQuery::parse("since=2026-01-02T03:04:05.250").unwrap().since.unwrap();
        assert_eq!(naive.to_rfc3339(), "2026-01-02T03:04:05.250+00:00");
        assert!(SessionsQuery::parse("since=yesterday").is_err());
        assert!(SessionsQuery::parse("limit=ten").is_err());
    }
}
