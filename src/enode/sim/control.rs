//! Forcing a vehicle into a state now (`POST /_sim/vehicles/{id}/{command}`), so a test can stage
//! a scenario instead of waiting for the dice, and adding vehicles without a link.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::clock::SimMillis;
use super::dynamics;
use super::links::announce;
use super::outbox::Outbox;
use super::problem::SimError;
use super::vehicle::Activity;
use super::vendors::{self, VENDORS};
use super::world::World;
use crate::enode::model::Vehicle;

const MINUTE_MS: i64 = 60_000;
/// A car put to sleep by hand stays asleep this long unless woken.
const FORCED_SLEEP_MS: i64 = 12 * 60 * MINUTE_MS;

/// What `set` may change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SetValues {
    pub battery_level: Option<f64>,
    pub charge_limit: Option<u8>,
    pub max_current: Option<u8>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Cable in (charging starts unless smart charging holds it).
    Plug,
    Unplug,
    /// Plug in if needed and charge now, smart charging or not.
    Charge,
    /// Stop charging, stay plugged in.
    Stop,
    /// Start a trip (unplugging first).
    Drive,
    /// End a trip.
    Park,
    /// Unreachable, no reports until woken.
    Sleep,
    Wake,
    SmartChargingOn,
    SmartChargingOff,
    Set(SetValues),
    /// Report now (as if Enode polled it).
    Report,
}

impl Command {
    /// The path segment names; `set` takes its values from the body.
    pub const NAMES: &'static [&'static str] = &[
        "plug",
        "unplug",
        "charge",
        "stop",
        "drive",
        "park",
        "sleep",
        "wake",
        "smart-charging-on",
        "smart-charging-off",
        "set",
        "report",
    ];

    pub fn parse(name: &str, set: SetValues) -> Option<Self> {
        Some(match name {
            "plug" => Self::Plug,
            "unplug" => Self::Unplug,
            "charge" => Self::Charge,
            "stop" => Self::Stop,
            "drive" => Self::Drive,
            "park" => Self::Park,
            "sleep" => Self::Sleep,
            "wake" => Self::Wake,
            "smart-charging-on" => Self::SmartChargingOn,
            "smart-charging-off" => Self::SmartChargingOff,
            "set" => Self::Set(set),
            "report" => Self::Report,
            _ => return None,
        })
    }
}

/// `POST /_sim/users/{userId}/vehicles`: vehicles appear as if linked (discovered, then updated).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AddVehicles {
    pub vendor: Option<String>,
    /// Default 1.
    pub count: Option<usize>,
}

impl World {
    pub fn command(
        &mut self,
        id: &str,
        command: Command,
        now: SimMillis,
        out: &mut Outbox,
    ) -> Result<Vehicle, SimError> {
        let seq = self.seq_of(id).ok_or_else(|| SimError::not_found("vehicle", id))?;
        self.change_vehicle(seq, now, out, |v| {
            if command != Command::Sleep {
                // Anything done to a car wakes it.
                v.asleep = false;
            }
            match command {
                Command::Plug => {
                    if !v.activity.is_plugged() {
                        dynamics::plug_in(v, now);
                    }
                }
                Command::Unplug => {
                    if v.activity.is_plugged() {
                        dynamics::unplug(v, now);
                    }
                }
                Command::Charge => {
                    if !v.activity.is_plugged() {
                        dynamics::plug_in(v, now);
                    }
                    if v.battery < f64::from(v.charge_limit) - 0.5 {
                        dynamics::start_charging(v, now);
                    }
                }
                Command::Stop => {
                    if v.activity == Activity::Charging {
                        dynamics::stop_charging(v, now);
                    }
                }
                Command::Drive => dynamics::drive(v, now),
                Command::Park => {
                    if v.activity == Activity::Driving {
                        dynamics::park(v, now);
                    }
                }
                Command::Sleep => {
                    if matches!(v.activity, Activity::Driving | Activity::Charging) {
                        return Err(SimError::conflict("a driving or charging vehicle does not fall asleep"));
                    }
                    v.asleep = true;
                    v.activity_until = now + FORCED_SLEEP_MS;
                }
                Command::Wake => v.activity_until = v.activity_until.min(now),
                Command::SmartChargingOn => v.smart_charging = true,
                Command::SmartChargingOff => v.smart_charging = false,
                Command::Set(values) => apply(v, &values)?,
                Command::Report => {}
            }
            Ok(())
        })?;
        self.vehicles.get(&seq).map(|v| v.render()).ok_or_else(|| SimError::not_found("vehicle", id))
    }

    pub fn add_vehicles(
        &mut self,
        user: &str,
        request: &AddVehicles,
        now: SimMillis,
        out: &mut Outbox,
    ) -> Result<Vec<Vehicle>, SimError> {
        let vendor = match request.vendor.as_deref() {
            Some(name) => {
                vendors::find(name).ok_or_else(|| SimError::bad_request(format!("unknown vendor {name:?}")))?
            }
            None => self.rng.below(VENDORS.len()) as u8,
        };
        let user = self.ensure_user(user);
        let mut rng = self.rng;
        let mut added = Vec::new();
        for _ in 0..request.count.unwrap_or(1).clamp(1, 1000) {
            let seq = self.insert_vehicle(&user, vendor, &mut rng, now, false);
            if let Some(v) = self.vehicles.get(&seq) {
                announce(v, now, out);
                added.push(v.render());
            }
        }
        self.rng = rng;
        Ok(added)
    }
}

fn apply(v: &mut super::vehicle::SimVehicle, values: &SetValues) -> Result<(), SimError> {
    if let Some(level) = values.battery_level {
        if !(0.0..=100.0).contains(&level) {
            return Err(SimError::new(
                StatusCode::BAD_REQUEST,
                "bad-request",
                "Bad Request",
                "batteryLevel must be within 0..=100",
            ));
        }
        v.battery = level;
    }
    if let Some(limit) = values.charge_limit {
        v.charge_limit = limit.clamp(50, 100);
    }
    if let Some(current) = values.max_current {
        v.max_current = current.clamp(6, 32);
    }
    // A new level or limit may change what the plug is doing.
    if v.activity == Activity::Charging && v.battery >= f64::from(v.charge_limit) - 0.5 {
        v.activity = Activity::Complete;
    } else if v.activity == Activity::Complete && v.battery < f64::from(v.charge_limit) - 0.5 {
        // Room in the battery again: a plugged-in car resumes, unless smart charging holds it.
        v.activity = if v.smart_charging { Activity::Stopped } else { Activity::Charging };
    }
    Ok(())
}
