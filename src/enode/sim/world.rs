//! The simulated Enode account: users, their vehicles, charge actions and link sessions. One
//! `World` behind one mutex: every change is a few microseconds of arithmetic, never an await,
//! so a single lock is simpler than finer ones and does not become the bottleneck.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::actions::ActionRecord;
use super::clock::SimMillis;
use super::config::SimConfig;
use super::dynamics::{self, Rhythm};
use super::links::LinkRecord;
use super::outbox::{self, Outbox};
use super::pagination::{self, PageRequest};
use super::problem::SimError;
use super::rng::SimRng;
use super::vehicle::{Activity, Reported, SimVehicle};
use super::vendors::{self, HOMES, VENDORS};
use crate::enode::model::{Page, Vehicle};

const MINUTE_MS: i64 = 60_000;
/// A single tick never replays more reports than this per vehicle (after a huge `advance`): the
/// rest follow on the next ticks instead of stalling the world.
const MAX_STEPS_PER_TICK: usize = 1_000;

#[derive(Debug, Default)]
pub struct SimUser {
    /// Creation numbers of the user's vehicles.
    pub vehicles: BTreeSet<u64>,
}

/// `GET /_sim/users`: a user and what it has, so a harness can create matching service users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: String,
    pub vehicle_ids: Vec<String>,
    pub vendors: Vec<String>,
}

pub struct World {
    pub(super) seed: u64,
    pub(super) rhythm: Rhythm,
    pub(super) action_delay_ms: i64,
    /// Vehicles by creation number (iteration order = oldest first).
    pub(super) vehicles: BTreeMap<u64, SimVehicle>,
    pub(super) by_id: HashMap<Uuid, u64>,
    /// `(next_report, creation number)` of every vehicle that reports (valid credentials), soonest
    /// first, and nothing else: a tick visits only the vehicles that are due instead of walking
    /// the whole fleet, which mattered for a large fleet on a running clock. Kept in step by
    /// `insert_vehicle`, `remove_vehicle` and `with_vehicle`, the only ways a report time changes.
    pub(super) due: BTreeSet<(SimMillis, u64)>,
    pub(super) users: BTreeMap<Arc<str>, SimUser>,
    pub(super) next_seq: u64,
    /// Ids and choices for things created after start (links, actions).
    pub(super) rng: SimRng,
    pub(super) actions: HashMap<Uuid, ActionRecord>,
    pub(super) pending_actions: HashSet<Uuid>,
    pub(super) links: HashMap<String, LinkRecord>,
}

impl World {
    /// The initial fleet: `config.vehicles` vehicles over users holding one to three each.
    pub fn new(config: &SimConfig, now: SimMillis) -> Self {
        let mut world = Self {
            seed: config.seed,
            rhythm: Rhythm {
                charging_ms: config.charging_report_interval.as_millis().max(1) as i64,
                idle_ms: config.idle_report_interval.as_millis().max(1) as i64,
            },
            action_delay_ms: config.action_delay.as_millis() as i64,
            vehicles: BTreeMap::new(),
            by_id: HashMap::new(),
            due: BTreeSet::new(),
            users: BTreeMap::new(),
            next_seq: 1,
            rng: SimRng::derive(config.seed, 0xA11CE),
            actions: HashMap::new(),
            pending_actions: HashSet::new(),
            links: HashMap::new(),
        };
        let mut fleet_rng = SimRng::derive(config.seed, 0x5EED);
        let mut remaining = config.vehicles;
        while remaining > 0 {
            let user: Arc<str> = Arc::from(fleet_rng.uuid().to_string());
            let count = remaining.min(1 + fleet_rng.below(3));
            for _ in 0..count {
                let vendor = fleet_rng.below(VENDORS.len()) as u8;
                world.insert_vehicle(&user, vendor, &mut fleet_rng, now, true);
            }
            remaining -= count;
        }
        world
    }

    pub fn ensure_user(&mut self, user: &str) -> Arc<str> {
        if let Some((key, _)) = self.users.get_key_value(user) {
            return key.clone();
        }
        let key: Arc<str> = Arc::from(user);
        self.users.insert(key.clone(), SimUser::default());
        key
    }

    /// Adds a vehicle. `settled` vehicles (the initial fleet) start mid-life: some charging, some
    /// driving, last seen a little while ago. New links start parked and seen just now.
    pub(super) fn insert_vehicle(
        &mut self,
        user: &Arc<str>,
        vendor: u8,
        rng: &mut SimRng,
        now: SimMillis,
        settled: bool,
    ) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let spec = vendors::spec(vendor);
        let home = HOMES[rng.below(HOMES.len())];
        let mut v = SimVehicle {
            id: rng.uuid(),
            user: user.clone(),
            seq,
            vendor,
            model: rng.below(spec.models.len()) as u8,
            year: 0,
            vin_serial: rng.next_u64_below(100_000_000_000),
            battery: rng.between(20.0, 95.0),
            charge_limit: [80, 80, 90, 100][rng.below(4)],
            max_current: [16, 16, 32][rng.below(3)],
            charger_kw: 11.0,
            odometer_km: rng.between(1_000.0, 90_000.0),
            lat: home.0 + rng.between(-0.1, 0.1),
            lon: home.1 + rng.between(-0.1, 0.1),
            heading: 0.0,
            activity: Activity::Parked,
            smart_charging: rng.chance(0.1),
            asleep: false,
            credentials_invalid: false,
            last_step: now,
            last_seen: now,
            charge_updated: now,
            odometer_updated: now,
            location_updated: now,
            next_report: now,
            activity_until: now,
            rng: SimRng::derive(self.seed, seq),
        };
        let first_year = v.model_spec().first_year;
        v.year = (first_year + rng.below(4) as i32).min(2025) as u16;
        if settled {
            let seen = now - rng.between(0.0, self.rhythm.idle_ms as f64) as i64;
            v.last_step = seen;
            v.last_seen = seen;
            v.charge_updated = seen - rng.between(0.0, 10.0) as i64 * MINUTE_MS;
            v.odometer_updated = seen;
            v.location_updated = seen;
            let roll = rng.unit();
            if roll < 0.25 {
                dynamics::plug_in(&mut v, seen);
            } else if roll < 0.35 {
                dynamics::drive(&mut v, seen);
            } else {
                dynamics::park(&mut v, seen);
                if rng.chance(0.2) {
                    dynamics::fall_asleep(&mut v, seen);
                }
            }
        } else {
            dynamics::park(&mut v, now);
        }
        let seen = v.last_seen;
        dynamics::schedule(&mut v, seen, self.rhythm);
        self.by_id.insert(v.id, seq);
        self.due.insert((v.next_report, seq));
        self.ensure_user(user);
        if let Some(u) = self.users.get_mut(user) {
            u.vehicles.insert(seq);
        }
        self.vehicles.insert(seq, v);
        seq
    }

    pub fn seq_of(&self, id: &str) -> Option<u64> {
        let id = Uuid::parse_str(id).ok()?;
        self.by_id.get(&id).copied()
    }

    pub fn vehicle(&self, id: &str) -> Option<&SimVehicle> {
        self.vehicles.get(&self.seq_of(id)?)
    }

    /// Runs `change` on a vehicle and keeps `due` in step with what it did to the vehicle's
    /// report time and credentials. None when there is no such vehicle.
    pub(super) fn with_vehicle<T>(&mut self, seq: u64, change: impl FnOnce(&mut SimVehicle) -> T) -> Option<T> {
        let v = self.vehicles.get_mut(&seq)?;
        let was = (v.next_report, seq);
        let result = change(v);
        self.due.remove(&was);
        if !v.credentials_invalid {
            self.due.insert((v.next_report, seq));
        }
        Some(result)
    }

    pub fn len(&self) -> usize {
        self.vehicles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vehicles.is_empty()
    }

    /// `GET /vehicles` (user `None`) or `GET /users/{userId}/vehicles`. An unknown user has no
    /// vehicles (Enode answers an empty page, not 404).
    pub fn list(&self, user: Option<&str>, request: PageRequest) -> Page<Vehicle> {
        let (seqs, pagination) = match user {
            None => pagination::select(request, |range| self.vehicles.range(range).map(|(k, _)| *k)),
            Some(user) => match self.users.get(user) {
                Some(u) => pagination::select(request, |range| u.vehicles.range(range).copied()),
                None => (Vec::new(), Default::default()),
            },
        };
        Page {
            data: seqs.iter().filter_map(|seq| self.vehicles.get(seq)).map(SimVehicle::render).collect(),
            pagination,
        }
    }

    pub fn users(&self) -> Vec<UserView> {
        self.users
            .iter()
            .map(|(id, u)| {
                let mut vendors = BTreeSet::new();
                let vehicle_ids = u
                    .vehicles
                    .iter()
                    .filter_map(|seq| self.vehicles.get(seq))
                    .map(|v| {
                        vendors.insert(v.vendor_spec().vendor);
                        v.id.to_string()
                    })
                    .collect();
                UserView { id: id.to_string(), vehicle_ids, vendors: vendors.into_iter().map(str::to_owned).collect() }
            })
            .collect()
    }

    /// Moves the world to `now`: due charge actions resolve, due vehicles report.
    pub fn tick(&mut self, now: SimMillis, out: &mut Outbox) {
        self.resolve_due_actions(now, out);
        let rhythm = self.rhythm;
        // Taken out first: a vehicle still due after its steps (a huge `advance`) waits for the
        // next tick instead of coming round again in this one.
        let later = self.due.split_off(&(now + 1, 0));
        let due = std::mem::replace(&mut self.due, later);
        for (_, seq) in due {
            self.with_vehicle(seq, |v| {
                let mut steps = 0;
                while v.next_report <= now && steps < MAX_STEPS_PER_TICK {
                    let at = v.next_report;
                    let before = v.reported();
                    dynamics::scheduled_step(v, rhythm);
                    report(v, before, at, out);
                    steps += 1;
                }
            });
        }
    }

    /// Applies `change` to a vehicle at `now` (physics first brought up to `now`), then reports.
    pub(super) fn change_vehicle<T>(
        &mut self,
        seq: u64,
        now: SimMillis,
        out: &mut Outbox,
        change: impl FnOnce(&mut SimVehicle) -> Result<T, SimError>,
    ) -> Result<T, SimError> {
        let rhythm = self.rhythm;
        let outcome = self.with_vehicle(seq, |v| {
            let before = v.reported();
            dynamics::integrate(v, now);
            // Even a refused change reports: the physics moved on and the car was looked at.
            let result = change(v);
            dynamics::schedule(v, now, rhythm);
            report(v, before, now, out);
            result
        });
        outcome.unwrap_or_else(|| Err(SimError::not_found("vehicle", &seq.to_string())))
    }

    /// `POST /vehicles/{id}/refresh-hint`: Enode polls the vehicle soon (unless it sleeps).
    pub fn refresh_hint(&mut self, id: &str, now: SimMillis) -> Result<(), SimError> {
        let seq = self.seq_of(id).ok_or_else(|| SimError::not_found("vehicle", id))?;
        self.with_vehicle(seq, |v| {
            if !v.asleep {
                v.next_report = v.next_report.min(now + 1_000);
            }
        });
        Ok(())
    }

    /// `DELETE /users/{userId}`: the user and every vehicle go; each vehicle fires `deleted`.
    pub fn delete_user(&mut self, user: &str, now: SimMillis, out: &mut Outbox) {
        if let Some(u) = self.users.remove(user) {
            for seq in u.vehicles {
                self.remove_vehicle(seq, now, out);
            }
        }
    }

    /// `DELETE /users/{userId}/vendors/{vendor}`: that vendor's vehicles go.
    pub fn delete_user_vendor(&mut self, user: &str, vendor: &str, now: SimMillis, out: &mut Outbox) {
        let Some(u) = self.users.get(user) else {
            return;
        };
        let doomed: Vec<u64> = u
            .vehicles
            .iter()
            .copied()
            .filter(|seq| self.vehicles.get(seq).is_some_and(|v| v.vendor_spec().vendor.eq_ignore_ascii_case(vendor)))
            .collect();
        for seq in doomed {
            if let Some(u) = self.users.get_mut(user) {
                u.vehicles.remove(&seq);
            }
            self.remove_vehicle(seq, now, out);
        }
    }

    fn remove_vehicle(&mut self, seq: u64, now: SimMillis, out: &mut Outbox) {
        if let Some(v) = self.vehicles.remove(&seq) {
            self.by_id.remove(&v.id);
            self.due.remove(&(v.next_report, seq));
            out.vehicle(outbox::DELETED, now, &v.user, || v.render(), None);
        }
    }

    /// The fault knob `user:credentials:invalidated`: the user's vehicles of `vendor` (or of
    /// every vendor) stop updating until the user links that vendor again. Returns the vendors hit.
    pub fn invalidate_credentials(
        &mut self,
        user: &str,
        vendor: Option<&str>,
        now: SimMillis,
        out: &mut Outbox,
    ) -> Result<Vec<String>, SimError> {
        let u = self.users.get(user).ok_or_else(|| SimError::not_found("user", user))?;
        let mut hit = BTreeSet::new();
        let seqs: Vec<u64> = u.vehicles.iter().copied().collect();
        for seq in seqs {
            self.with_vehicle(seq, |v| {
                let name = v.vendor_spec().vendor;
                if vendor.is_none_or(|want| want.eq_ignore_ascii_case(name)) {
                    v.credentials_invalid = true;
                    hit.insert(name);
                }
            });
        }
        for name in &hit {
            out.credentials_invalidated(now, user, name);
        }
        Ok(hit.into_iter().map(str::to_owned).collect())
    }
}

/// Every field a first full report lists in `updatedFields`.
pub const ALL_FIELDS: &[&str] = &[
    "lastSeen",
    "isReachable",
    "chargeState.batteryLevel",
    "chargeState.range",
    "chargeState.isPluggedIn",
    "chargeState.isCharging",
    "chargeState.isFullyCharged",
    "chargeState.batteryCapacity",
    "chargeState.chargeLimit",
    "chargeState.chargeRate",
    "chargeState.chargeTimeRemaining",
    "chargeState.lastUpdated",
    "chargeState.maxCurrent",
    "chargeState.powerDeliveryState",
    "smartChargingPolicy.isEnabled",
    "odometer.distance",
    "odometer.lastUpdated",
    "location.latitude",
    "location.longitude",
    "location.lastUpdated",
];

/// Finishes one report at `at`: a reachable vehicle was seen; fields that changed get their
/// `lastUpdated` and an `updated` event. Nothing but `lastSeen` changing fires no event, as at
/// Enode: a poll that finds nothing new is not news.
pub(super) fn report(v: &mut SimVehicle, before: Reported, at: SimMillis, out: &mut Outbox) {
    let after = v.reported();
    let mut fields = before.changed_fields(&after);
    if after.is_reachable {
        v.last_seen = v.last_seen.max(at);
    }
    if fields.is_empty() {
        return;
    }
    if Reported::charge_changed(&fields) {
        v.charge_updated = at;
        fields.push("chargeState.lastUpdated");
    }
    if fields.contains(&"odometer.distance") {
        v.odometer_updated = at;
        fields.push("odometer.lastUpdated");
    }
    if fields.contains(&"location.latitude") || fields.contains(&"location.longitude") {
        v.location_updated = at;
        fields.push("location.lastUpdated");
    }
    if after.is_reachable {
        fields.insert(0, "lastSeen");
    }
    out.vehicle(outbox::UPDATED, at, &v.user, || v.render(), Some(&fields));
}

#[cfg(test)]
#[path = "world_tests.rs"]
mod tests;
