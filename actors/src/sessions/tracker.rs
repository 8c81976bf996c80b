//! One vehicle's charging-session state machine: pure (no I/O, no clock), fed one observation at
//! a time, answering what to persist. `SessionDetector` runs one per vehicle.
//!
//! The rules, and why:
//! - A session opens at the first observation that shows the vehicle charging (with a known
//!   battery level: without one there is nothing to measure from).
//! - It closes at once when the vehicle reports COMPLETE or UNPLUGGED. XPENG reports UNPLUGGED
//!   (with `isPluggedIn: false`) right after completing, cable still in: that is simply the end of
//!   the session, and a later COMPLETE or UNPLUGGED while nothing is open does nothing.
//! - A plugged-in vehicle that is not charging (STOPPED, INITIALIZING, `isCharging: false`) only
//!   pauses the session: vendors toggle `isCharging` for a single update mid-charge, and that
//!   must not split one session into two. A second, later observation still not charging closes
//!   it, dated back to when charging stopped (the pause), since that is when it really ended.
//! - A session that added nothing (the battery never rose above its start) was a flicker, not a
//!   charge: it is discarded rather than recorded empty.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::record::{ChargingSession, ElectricityRate};
use crate::model::{ChargeState, PowerDeliveryState};
use crate::state::VehicleState;

/// What a vehicle's charge port is doing, as far as sessions care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plug {
    Charging,
    /// Plugged in, not charging, not complete (stopped, waiting, initialising).
    PluggedIdle,
    Complete,
    Unplugged,
    /// Nothing usable reported: changes nothing.
    Unknown,
}

impl Plug {
    pub fn of(charge: &ChargeState) -> Self {
        let pds = &charge.power_delivery_state;
        // Either signal saying "charging" is enough: vendors disagree about which one they keep current.
        if pds.is_charging() || charge.is_charging == Some(true) {
            return Plug::Charging;
        }
        match pds.as_str() {
            PowerDeliveryState::COMPLETE => Plug::Complete,
            PowerDeliveryState::UNPLUGGED => Plug::Unplugged,
            _ if pds.is_plugged_in() && charge.is_fully_charged == Some(true) => Plug::Complete,
            _ if pds.is_plugged_in() => Plug::PluggedIdle,
            _ => match charge.is_plugged_in {
                Some(false) => Plug::Unplugged,
                Some(true) if charge.is_charging == Some(false) => Plug::PluggedIdle,
                _ => Plug::Unknown,
            },
        }
    }
}

/// The facts of one vehicle state that sessions are made of.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// The vehicle's own time for this state (charge state update, else last seen).
    pub at: DateTime<Utc>,
    pub plug: Plug,
    pub battery: Option<f64>,
    pub capacity_kwh: Option<f64>,
    pub rate_kw: Option<f64>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub odometer_km: Option<f64>,
}

impl Observation {
    pub fn of(state: &VehicleState) -> Self {
        let v = &state.vehicle;
        let cs = &v.charge_state;
        let known = v.location.is_known();
        Self {
            at: cs.last_updated.or(v.last_seen).unwrap_or(state.received_at),
            plug: Plug::of(cs),
            battery: cs.battery_level,
            capacity_kwh: cs.battery_capacity.filter(|c| *c > 0.0),
            rate_kw: cs.charge_rate.filter(|r| *r >= 0.0),
            lat: v.location.latitude.filter(|_| known),
            lon: v.location.longitude.filter(|_| known),
            odometer_km: v.odometer.distance,
        }
    }
}

/// Who a tracker's sessions belong to. Borrowed from the state: every state change is observed,
/// and the Enode id is copied only into a session that starts.
#[derive(Clone, Copy, Debug)]
pub struct Owner<'a> {
    pub user_id: Uuid,
    pub vehicle_id: Uuid,
    pub enode_vehicle_id: &'a str,
}

impl<'a> Owner<'a> {
    pub fn of(state: &'a VehicleState) -> Self {
        Self { user_id: state.user_id, vehicle_id: state.internal_id, enode_vehicle_id: &state.vehicle.id }
    }
}

/// What an observation means for the store.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Nothing,
    /// A session opened or progressed: persist it (still open).
    Progress(ChargingSession),
    /// A session ended: persist it, closed.
    Closed(ChargingSession),
    /// An open session turned out empty: forget it.
    Discard(Uuid),
}

#[derive(Debug, Default)]
pub struct Tracker {
    open: Option<Open>,
}

#[derive(Debug)]
struct Open {
    session: ChargingSession,
    /// Sum of the rate samples, for the running average.
    rate_sum: f64,
    /// Time of the last observation taken into the session (a repeated observation is not a new sample).
    last_at: DateTime<Utc>,
    /// The first observation that showed it not charging, while waiting to see if that lasts.
    paused: Option<Pause>,
}

#[derive(Debug)]
struct Pause {
    at: DateTime<Utc>,
    battery: Option<f64>,
}

impl Tracker {
    /// Continues a session that was open when the service stopped.
    pub fn resume(session: ChargingSession) -> Self {
        let rate_sum = session.avg_rate_kw.unwrap_or(0.0) * f64::from(session.rate_samples);
        let last_at = session.start_time;
        Self { open: Some(Open { session, rate_sum, last_at, paused: None }) }
    }

    pub fn open_session(&self) -> Option<&ChargingSession> {
        self.open.as_ref().map(|o| &o.session)
    }

    /// The vehicle's state as restored at start: the last state seen before the restart, already
    /// taken into account then. Only a charging vehicle without an open session means something
    /// (the session's opening was not stored before the service stopped).
    pub fn restored(&mut self, obs: &Observation, owner: &Owner<'_>, now: DateTime<Utc>) -> Step {
        match (&self.open, obs.plug) {
            (None, Plug::Charging) => self.start(obs, owner, now),
            _ => Step::Nothing,
        }
    }

    /// Takes one new observation. `rate` is asked only when a session closes.
    pub fn observe(
        &mut self,
        obs: &Observation,
        owner: &Owner<'_>,
        now: DateTime<Utc>,
        rate: impl FnOnce() -> Option<ElectricityRate>,
    ) -> Step {
        let Some(open) = self.open.as_mut() else {
            return match obs.plug {
                Plug::Charging => self.start(obs, owner, now),
                _ => Step::Nothing,
            };
        };
        match obs.plug {
            Plug::Unknown => Step::Nothing,
            Plug::Charging => {
                open.paused = None;
                open.take(obs);
                Step::Progress(open.session.clone())
            }
            Plug::PluggedIdle => match &open.paused {
                None => {
                    open.paused = Some(Pause { at: obs.at, battery: obs.battery });
                    Step::Nothing
                }
                // The same observation delivered twice is not "still stopped later".
                Some(pause) if obs.at <= pause.at => Step::Nothing,
                Some(pause) => {
                    let (at, battery) = (pause.at, pause.battery);
                    self.close(at, battery, obs.capacity_kwh, rate)
                }
            },
            Plug::Unplugged => {
                // Unplugged after a pause: charging ended when it paused.
                let (at, battery) = match &open.paused {
                    Some(pause) => (pause.at, higher(pause.battery, obs.battery)),
                    None => (obs.at, obs.battery),
                };
                self.close(at, battery, obs.capacity_kwh, rate)
            }
            // The vendor knows when it completed: that observation is the end.
            Plug::Complete => self.close(obs.at, obs.battery, obs.capacity_kwh, rate),
        }
    }

    fn start(&mut self, obs: &Observation, owner: &Owner<'_>, now: DateTime<Utc>) -> Step {
        let Some(battery) = obs.battery else {
            return Step::Nothing;
        };
        let session = ChargingSession {
            id: Uuid::new_v4(),
            user_id: owner.user_id,
            vehicle_id: owner.vehicle_id,
            enode_vehicle_id: owner.enode_vehicle_id.to_owned(),
            start_time: obs.at,
            end_time: None,
            battery_level_start: battery,
            battery_level_end: battery,
            battery_capacity_kwh: obs.capacity_kwh,
            energy_added_kwh: Some(0.0).filter(|_| obs.capacity_kwh.is_some()),
            max_rate_kw: None,
            avg_rate_kw: None,
            rate_samples: 0,
            location_lat: obs.lat,
            location_lon: obs.lon,
            odometer_km: obs.odometer_km,
            cost_per_kwh: None,
            currency: None,
            total_cost: None,
            created_at: now,
        };
        let mut open = Open { session, rate_sum: 0.0, last_at: obs.at, paused: None };
        open.sample_rate(obs.rate_kw);
        let step = Step::Progress(open.session.clone());
        self.open = Some(open);
        step
    }

    fn close(
        &mut self,
        end_at: DateTime<Utc>,
        end_battery: Option<f64>,
        capacity_kwh: Option<f64>,
        rate: impl FnOnce() -> Option<ElectricityRate>,
    ) -> Step {
        let Some(open) = self.open.take() else {
            return Step::Nothing;
        };
        let mut session = open.session;
        if let Some(battery) = end_battery {
            session.battery_level_end = session.battery_level_end.max(battery);
        }
        if session.battery_level_end <= session.battery_level_start {
            return Step::Discard(session.id);
        }
        session.battery_capacity_kwh = capacity_kwh.or(session.battery_capacity_kwh);
        session.end_time = Some(end_at.max(session.start_time));
        session.energy_added_kwh = energy(&session);
        if session.rate_samples == 0 {
            // No rate reported: the average is what the energy took over the time it took.
            let hours = (end_at - session.start_time).num_milliseconds() as f64 / 3_600_000.0;
            session.avg_rate_kw = session.energy_added_kwh.filter(|_| hours > 0.0).map(|kwh| round(kwh / hours, 3));
        }
        if let (Some(rate), Some(kwh)) = (rate(), session.energy_added_kwh) {
            session.total_cost = Some(round(kwh * rate.cost_per_kwh, 4));
            session.cost_per_kwh = Some(rate.cost_per_kwh);
            session.currency = Some(rate.currency);
        }
        Step::Closed(session)
    }
}

impl Open {
    /// A charging observation: the level so far, the capacity, the rate.
    fn take(&mut self, obs: &Observation) {
        if let Some(battery) = obs.battery {
            self.session.battery_level_end = self.session.battery_level_end.max(battery);
        }
        self.session.battery_capacity_kwh = obs.capacity_kwh.or(self.session.battery_capacity_kwh);
        self.session.energy_added_kwh = energy(&self.session);
        if obs.at > self.last_at {
            self.last_at = obs.at;
            self.sample_rate(obs.rate_kw);
        }
    }

    fn sample_rate(&mut self, rate_kw: Option<f64>) {
        let Some(rate) = rate_kw else { return };
        self.rate_sum += rate;
        self.session.rate_samples += 1;
        self.session.max_rate_kw = Some(self.session.max_rate_kw.map_or(rate, |max| max.max(rate)));
        self.session.avg_rate_kw = Some(round(self.rate_sum / f64::from(self.session.rate_samples), 3));
    }
}

fn higher(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// capacity x the rise in battery level.
fn energy(session: &ChargingSession) -> Option<f64> {
    let delta = (session.battery_level_end - session.battery_level_start).max(0.0);
    session.battery_capacity_kwh.map(|capacity| round(capacity * delta / 100.0, 3))
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tests;
