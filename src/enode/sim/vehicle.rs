//! One simulated vehicle: compact physical state (about 150 bytes, so 100 000 of them fit easily)
//! and what Enode would report about it. The JSON shape is built only when someone asks.

use std::sync::Arc;

use uuid::Uuid;

use super::clock::{SimMillis, to_datetime};
use super::rng::SimRng;
use super::vendors::{self, ModelSpec, VendorSpec};
use crate::enode::model::{
    Capabilities, Capability, ChargeState, Extra, Information, Interned, Location, Odometer, PowerDeliveryState,
    SmartChargingPolicy, Vehicle,
};

/// What the car is physically doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    /// Unplugged, standing still.
    Parked,
    Driving,
    /// Plugged in and charging.
    Charging,
    /// Plugged in, not charging, below its limit (stopped, or waiting for smart charging).
    Stopped,
    /// Plugged in, at its charge limit.
    Complete,
}

impl Activity {
    pub fn is_plugged(self) -> bool {
        matches!(self, Activity::Charging | Activity::Stopped | Activity::Complete)
    }
}

#[derive(Clone, Debug)]
pub struct SimVehicle {
    pub id: Uuid,
    pub user: Arc<str>,
    /// Creation order, the key of "newest first" listings and pagination cursors.
    pub seq: u64,
    pub vendor: u8,
    pub model: u8,
    pub year: u16,
    pub vin_serial: u64,
    /// Battery, percent (kept precise; reported rounded).
    pub battery: f64,
    pub charge_limit: u8,
    pub max_current: u8,
    /// Power of the charger it is plugged into, kW.
    pub charger_kw: f32,
    pub odometer_km: f64,
    pub lat: f64,
    pub lon: f64,
    pub heading: f32,
    pub activity: Activity,
    pub smart_charging: bool,
    /// Asleep: unreachable, no reports until it wakes.
    pub asleep: bool,
    /// The user's credentials for this vendor were invalidated: no reports until relinked.
    pub credentials_invalid: bool,
    /// Time the physics was last brought up to.
    pub last_step: SimMillis,
    pub last_seen: SimMillis,
    pub charge_updated: SimMillis,
    pub odometer_updated: SimMillis,
    pub location_updated: SimMillis,
    /// When Enode next refreshes this vehicle (or, asleep, when it wakes).
    pub next_report: SimMillis,
    /// When the current activity ends (a trip, a parking spell, a complete charge).
    pub activity_until: SimMillis,
    pub rng: SimRng,
}

/// Every value Enode reports that can change, as it is rendered. Comparing two of these gives a
/// report's `updatedFields`, so rendering and change detection cannot disagree.
#[derive(Clone, Debug, PartialEq)]
pub struct Reported {
    pub is_reachable: bool,
    pub battery_level: f64,
    pub range: f64,
    pub is_plugged_in: bool,
    pub is_charging: bool,
    pub is_fully_charged: bool,
    pub charge_limit: f64,
    pub charge_rate: Option<f64>,
    pub charge_time_remaining: Option<f64>,
    pub max_current: f64,
    pub power_delivery_state: &'static str,
    pub smart_charging: bool,
    pub odometer: f64,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

impl Reported {
    /// Dotted paths of the fields that differ, in Enode's `updatedFields` style.
    pub fn changed_fields(&self, newer: &Reported) -> Vec<&'static str> {
        let mut fields = Vec::new();
        let mut check = |changed: bool, name: &'static str| {
            if changed {
                fields.push(name);
            }
        };
        check(self.is_reachable != newer.is_reachable, "isReachable");
        check(self.battery_level != newer.battery_level, "chargeState.batteryLevel");
        check(self.range != newer.range, "chargeState.range");
        check(self.is_plugged_in != newer.is_plugged_in, "chargeState.isPluggedIn");
        check(self.is_charging != newer.is_charging, "chargeState.isCharging");
        check(self.is_fully_charged != newer.is_fully_charged, "chargeState.isFullyCharged");
        check(self.charge_limit != newer.charge_limit, "chargeState.chargeLimit");
        check(self.charge_rate != newer.charge_rate, "chargeState.chargeRate");
        check(self.charge_time_remaining != newer.charge_time_remaining, "chargeState.chargeTimeRemaining");
        check(self.max_current != newer.max_current, "chargeState.maxCurrent");
        check(self.power_delivery_state != newer.power_delivery_state, "chargeState.powerDeliveryState");
        check(self.smart_charging != newer.smart_charging, "smartChargingPolicy.isEnabled");
        check(self.odometer != newer.odometer, "odometer.distance");
        check(self.latitude != newer.latitude, "location.latitude");
        check(self.longitude != newer.longitude, "location.longitude");
        fields
    }

    pub fn charge_changed(fields: &[&str]) -> bool {
        fields.iter().any(|f| f.starts_with("chargeState."))
    }
}

impl SimVehicle {
    pub fn vendor_spec(&self) -> &'static VendorSpec {
        vendors::spec(self.vendor)
    }

    pub fn model_spec(&self) -> &'static ModelSpec {
        let models = self.vendor_spec().models;
        &models[self.model as usize % models.len()]
    }

    pub fn vin(&self) -> String {
        format!("{}SIM{:011}", self.vendor_spec().wmi, self.vin_serial)
    }

    /// Charging power right now, kW: the charger, the car and the current limit all cap it.
    pub fn charge_kw(&self) -> f64 {
        let by_current = 3.0 * 230.0 * f64::from(self.max_current) / 1000.0;
        f64::from(self.charger_kw).min(self.model_spec().max_ac_kw).min(by_current)
    }

    pub fn reported(&self) -> Reported {
        let spec = self.model_spec();
        let quirks = self.vendor_spec().quirks;
        let battery_level = self.battery.round().clamp(0.0, 100.0);
        let charging = self.activity == Activity::Charging;
        let complete = self.activity == Activity::Complete;
        let hides_plug = complete && quirks.unplugged_when_complete;
        let plugged = self.activity.is_plugged() && !hides_plug;
        let power_delivery_state = match self.activity {
            Activity::Parked | Activity::Driving => PowerDeliveryState::UNPLUGGED,
            Activity::Charging => PowerDeliveryState::CHARGING,
            Activity::Stopped => PowerDeliveryState::STOPPED,
            Activity::Complete if hides_plug => PowerDeliveryState::UNPLUGGED,
            Activity::Complete => PowerDeliveryState::COMPLETE,
        };
        let rate = charging.then(|| round1(self.charge_kw()));
        let remaining = (charging && !quirks.no_charge_time_remaining).then(|| {
            let missing_kwh = (f64::from(self.charge_limit) - self.battery).max(0.0) / 100.0 * spec.capacity_kwh;
            (missing_kwh / self.charge_kw().max(0.1) * 60.0).round()
        });
        let (latitude, longitude) =
            if quirks.no_location { (None, None) } else { (Some(round5(self.lat)), Some(round5(self.lon))) };
        Reported {
            is_reachable: !self.asleep,
            battery_level,
            range: (self.battery / 100.0 * spec.capacity_kwh / spec.kwh_per_km).round(),
            is_plugged_in: plugged,
            is_charging: charging,
            is_fully_charged: self.battery >= f64::from(self.charge_limit) - 0.5,
            charge_limit: f64::from(self.charge_limit),
            charge_rate: rate,
            charge_time_remaining: remaining,
            max_current: f64::from(self.max_current),
            power_delivery_state,
            smart_charging: self.smart_charging,
            odometer: round1(self.odometer_km),
            latitude,
            longitude,
        }
    }

    pub fn information(&self) -> Information {
        Information {
            vin: Some(self.vin()),
            brand: Some(self.vendor_spec().brand.into()),
            model: Some(self.model_spec().name.into()),
            year: Some(i32::from(self.year)),
            display_name: None,
            extra: Extra::new(),
        }
    }

    pub fn capabilities(&self) -> Capabilities {
        let quirks = self.vendor_spec().quirks;
        let able = |is_capable: bool| Capability { is_capable, intervention_ids: Vec::new(), extra: Extra::new() };
        Capabilities {
            information: able(true),
            charge_state: able(true),
            location: able(!quirks.no_location),
            odometer: able(true),
            set_max_current: able(quirks.set_max_current),
            start_charging: able(true),
            stop_charging: able(true),
            smart_charging: able(true),
            extra: Extra::new(),
        }
    }

    pub fn scopes(&self) -> Vec<Interned> {
        let mut scopes = vec![Interned::new("vehicle:read:data")];
        if !self.vendor_spec().quirks.no_location {
            scopes.push(Interned::new("vehicle:read:location"));
        }
        scopes.push(Interned::new("vehicle:control:charging"));
        scopes
    }

    /// The full vehicle object, as `GET /vehicles/{id}` and `user:vehicle:updated` carry it.
    pub fn render(&self) -> Vehicle {
        let r = self.reported();
        let no_location = self.vendor_spec().quirks.no_location;
        Vehicle {
            id: self.id.to_string(),
            user_id: Some(self.user.to_string()),
            vendor: Some(self.vendor_spec().vendor.into()),
            last_seen: Some(to_datetime(self.last_seen)),
            is_reachable: Some(r.is_reachable),
            information: self.information(),
            charge_state: ChargeState {
                battery_level: Some(r.battery_level),
                range: Some(r.range),
                is_plugged_in: Some(r.is_plugged_in),
                is_charging: Some(r.is_charging),
                is_fully_charged: Some(r.is_fully_charged),
                battery_capacity: Some(self.model_spec().capacity_kwh),
                charge_limit: Some(r.charge_limit),
                charge_rate: r.charge_rate,
                charge_time_remaining: r.charge_time_remaining,
                last_updated: Some(to_datetime(self.charge_updated)),
                max_current: Some(r.max_current),
                power_delivery_state: PowerDeliveryState::new(r.power_delivery_state),
                plugged_in_charger_id: None,
                extra: Extra::new(),
            },
            smart_charging_policy: SmartChargingPolicy {
                is_enabled: Some(r.smart_charging),
                deadline: None,
                minimum_charge_limit: Some(0.0),
                extra: Extra::new(),
            },
            odometer: Odometer {
                distance: Some(r.odometer),
                last_updated: Some(to_datetime(self.odometer_updated)),
                extra: Extra::new(),
            },
            location: Location {
                id: None,
                longitude: r.longitude,
                latitude: r.latitude,
                last_updated: (!no_location).then(|| to_datetime(self.location_updated)),
                extra: Extra::new(),
            },
            capabilities: self.capabilities(),
            scopes: self.scopes(),
            extra: Extra::new(),
        }
    }

    /// The vehicle as `user:vehicle:discovered` carries it: only `information` (with identity,
    /// capabilities and scopes) filled, every state null.
    pub fn render_discovered(&self, at: SimMillis) -> Vehicle {
        Vehicle {
            id: self.id.to_string(),
            user_id: Some(self.user.to_string()),
            vendor: Some(self.vendor_spec().vendor.into()),
            last_seen: Some(to_datetime(at)),
            is_reachable: None,
            information: self.information(),
            capabilities: self.capabilities(),
            scopes: self.scopes(),
            ..Vehicle::default()
        }
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round5(x: f64) -> f64 {
    (x * 100_000.0).round() / 100_000.0
}
