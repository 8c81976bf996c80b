//! How a vehicle's life goes on between reports: physics (charging fills the battery, driving
//! drains it and moves the car) and the decisions taken at each scheduled report (start a trip,
//! plug in, fall asleep). Every random choice comes from the vehicle's own generator, and a
//! scheduled report happens at its scheduled time whatever the tick timing, so a seed replays the
//! same fleet history.

use super::clock::SimMillis;
use super::vehicle::{Activity, SimVehicle};

const HOUR_MS: f64 = 3_600_000.0;
const MINUTE_MS: i64 = 60_000;
/// Charging losses between the wall and the battery.
const CHARGE_EFFICIENCY: f64 = 0.92;
/// A trip ends when the battery gets this low.
const RESERVE_PERCENT: f64 = 5.0;

/// How often Enode refreshes vehicles (simulated milliseconds).
#[derive(Clone, Copy, Debug)]
pub struct Rhythm {
    pub charging_ms: i64,
    pub idle_ms: i64,
}

/// Brings the physics from `last_step` up to `to`, without deciding anything new, except what
/// physics forces: a full battery completes the charge, an empty one ends the trip.
pub fn integrate(v: &mut SimVehicle, to: SimMillis) {
    let dt_ms = (to - v.last_step).max(0);
    v.last_step = v.last_step.max(to);
    if dt_ms == 0 {
        return;
    }
    let hours = dt_ms as f64 / HOUR_MS;
    let capacity = v.model_spec().capacity_kwh;
    match v.activity {
        Activity::Charging => {
            let limit = f64::from(v.charge_limit);
            let gained = v.charge_kw() * hours * CHARGE_EFFICIENCY / capacity * 100.0;
            if v.battery + gained >= limit {
                let needed_h = ((limit - v.battery).max(0.0) / gained.max(1e-9)) * hours;
                v.battery = v.battery.max(limit);
                v.activity = Activity::Complete;
                let reached = to - dt_ms + (needed_h * HOUR_MS) as i64;
                v.activity_until = reached + v.rng.between(60.0, 480.0) as i64 * MINUTE_MS;
            } else {
                v.battery += gained;
            }
        }
        Activity::Driving => {
            let speed = v.rng.between(25.0, 85.0);
            let per_km = v.model_spec().kwh_per_km / capacity * 100.0;
            let affordable_km = ((v.battery - RESERVE_PERCENT).max(0.0) / per_km).max(0.0);
            let km = (speed * hours).min(affordable_km);
            v.battery -= km * per_km;
            v.odometer_km += km;
            v.heading += v.rng.between(-0.6, 0.6) as f32;
            let heading = f64::from(v.heading);
            v.lat = (v.lat + km * heading.cos() / 111.0).clamp(-85.0, 85.0);
            v.lon += km * heading.sin() / (111.0 * v.lat.to_radians().cos().max(0.1));
            if v.battery <= RESERVE_PERCENT + 0.01 {
                v.activity = Activity::Parked;
                v.activity_until = to + v.rng.between(30.0, 180.0) as i64 * MINUTE_MS;
            }
        }
        Activity::Parked | Activity::Stopped | Activity::Complete => {}
    }
}

/// A scheduled report at `v.next_report`: physics up to then, the decision of what comes next,
/// and the time of the following report.
pub fn scheduled_step(v: &mut SimVehicle, rhythm: Rhythm) {
    let at = v.next_report;
    if v.asleep {
        // A sleeping car is only looked at again when it wakes (its report time is its wake-up).
        v.asleep = false;
        v.activity_until = v.activity_until.max(at);
    }
    integrate(v, at);
    if at >= v.activity_until {
        decide(v, at);
    }
    schedule(v, at, rhythm);
}

/// Picks the next activity once the current one has run its course.
fn decide(v: &mut SimVehicle, at: SimMillis) {
    match v.activity {
        Activity::Driving => {
            if v.battery < 35.0 && v.rng.chance(0.6) {
                plug_in(v, at);
            } else {
                park(v, at);
            }
        }
        // Physics ends charging; nothing to decide until then.
        Activity::Charging => {}
        Activity::Complete => {
            if v.rng.chance(0.5) {
                drive(v, at);
            } else {
                park(v, at);
            }
        }
        Activity::Stopped => {
            if v.smart_charging {
                // The smart-charging window opened.
                v.activity = Activity::Charging;
                v.activity_until = at;
            } else {
                park(v, at);
            }
        }
        Activity::Parked => {
            let roll = v.rng.unit();
            if v.battery < 30.0 && roll < 0.7 {
                plug_in(v, at);
            } else if roll < 0.45 {
                drive(v, at);
            } else if roll < 0.60 {
                plug_in(v, at);
            } else if roll < 0.85 {
                fall_asleep(v, at);
            } else {
                park(v, at);
            }
        }
    }
}

pub fn schedule(v: &mut SimVehicle, at: SimMillis, rhythm: Rhythm) {
    if v.asleep {
        v.next_report = v.activity_until.max(at + 1);
        return;
    }
    let base = if v.activity == Activity::Charging { rhythm.charging_ms } else { rhythm.idle_ms };
    v.next_report = at + ((base as f64) * v.rng.between(0.85, 1.15)).max(1.0) as i64;
}

pub fn park(v: &mut SimVehicle, at: SimMillis) {
    v.activity = Activity::Parked;
    v.activity_until = at + v.rng.between(30.0, 240.0) as i64 * MINUTE_MS;
}

pub fn drive(v: &mut SimVehicle, at: SimMillis) {
    if v.battery <= RESERVE_PERCENT + 1.0 {
        return plug_in(v, at);
    }
    v.activity = Activity::Driving;
    v.heading = v.rng.between(0.0, std::f64::consts::TAU) as f32;
    v.activity_until = at + v.rng.between(10.0, 90.0) as i64 * MINUTE_MS;
}

/// Cable in. A smart-charging car waits for its window; any other car starts at once.
pub fn plug_in(v: &mut SimVehicle, at: SimMillis) {
    v.charger_kw = [7.4_f32, 11.0, 11.0, 22.0][v.rng.below(4)];
    if v.battery >= f64::from(v.charge_limit) - 0.5 {
        v.activity = Activity::Complete;
        v.activity_until = at + v.rng.between(60.0, 480.0) as i64 * MINUTE_MS;
    } else if v.smart_charging {
        v.activity = Activity::Stopped;
        v.activity_until = at + v.rng.between(30.0, 180.0) as i64 * MINUTE_MS;
    } else {
        start_charging(v, at);
    }
}

pub fn start_charging(v: &mut SimVehicle, at: SimMillis) {
    v.activity = Activity::Charging;
    v.activity_until = at;
}

/// Charging stopped by command: stays plugged in, stays stopped for a good while.
pub fn stop_charging(v: &mut SimVehicle, at: SimMillis) {
    v.activity = Activity::Stopped;
    v.activity_until = at + v.rng.between(120.0, 600.0) as i64 * MINUTE_MS;
}

pub fn unplug(v: &mut SimVehicle, at: SimMillis) {
    park(v, at);
}

pub fn fall_asleep(v: &mut SimVehicle, at: SimMillis) {
    v.asleep = true;
    v.activity_until = at + v.rng.between(60.0, 480.0) as i64 * MINUTE_MS;
}
