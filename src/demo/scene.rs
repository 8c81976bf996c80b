//! Picks the demo user among the simulator's users and sets the scene for the printed commands:
//! one of the user's cars charging (so its state visibly changes within seconds) and, when the
//! user has another car, one plugged in and not charging (so the printed charging START works).
//! The seeded fleet often has both already; the simulator's controls make sure of it, the way a
//! test stages a scenario instead of waiting for the dice.

use anyhow::Context;
use uuid::Uuid;

use crate::enode::model::Vehicle;
use crate::enode::sim::{Command, SetValues, SimHandle, UserView};

/// A charge this low leaves the charging car hours (simulated) of visible progress.
const CHARGING_CAR_MAX_BATTERY: f64 = 40.0;
/// Room below any charge limit, so a START is never refused as "already full".
const STARTABLE_CAR_MAX_BATTERY: f64 = 50.0;

pub struct Scene {
    pub user: Uuid,
    /// Every simulated user (the demo user among them), by id.
    pub all_users: Vec<Uuid>,
    /// A car of the demo user that is charging.
    pub charging: String,
    /// Another car of the demo user, plugged in and not charging; None when it has only one.
    pub startable: Option<String>,
}

pub fn set(sim: &SimHandle) -> anyhow::Result<Scene> {
    let users = sim.users();
    let all_users: Vec<Uuid> = users.iter().filter_map(|u| Uuid::parse_str(&u.id).ok()).collect();
    let chosen = pick_user(sim, &users).context("the simulator has no vehicles (try --vehicles 10)")?;
    let user = Uuid::parse_str(&chosen.id).context("simulated user ids are UUIDs")?;
    let cars: Vec<Vehicle> = chosen.vehicle_ids.iter().filter_map(|id| sim.vehicle(id)).collect();

    let charging = match cars.iter().find(|v| is_charging(v)) {
        Some(car) => car.id.clone(),
        None => {
            let car = cars.first().context("the demo user has no vehicle")?;
            stage(sim, car, CHARGING_CAR_MAX_BATTERY, &[Command::Charge])?;
            car.id.clone()
        }
    };
    let startable = match cars.iter().filter(|v| v.id != charging).find(|v| is_startable(v)) {
        Some(car) => Some(car.id.clone()),
        None => match cars.iter().find(|v| v.id != charging) {
            Some(car) => {
                // Plugged in and charging, then stopped by hand: what Enode shows as
                // PLUGGED_IN:STOPPED, the state a person would press START in.
                let steps = [Command::SmartChargingOff, Command::Charge, Command::Stop];
                stage(sim, car, STARTABLE_CAR_MAX_BATTERY, &steps)?;
                Some(car.id.clone())
            }
            None => None,
        },
    };
    Ok(Scene { user, all_users, charging, startable })
}

/// The user that shows the most: cars of several vendors first, then one already charging, then
/// the most cars. Ties go to the earliest user, so a seed always picks the same one.
fn pick_user<'a>(sim: &SimHandle, users: &'a [UserView]) -> Option<&'a UserView> {
    let score = |u: &UserView| {
        let charging = u.vehicle_ids.iter().filter_map(|id| sim.vehicle(id)).any(|v| is_charging(&v));
        (u.vendors.len() > 1, charging, u.vehicle_ids.len())
    };
    let mut best: Option<(&UserView, (bool, bool, usize))> = None;
    for user in users.iter().filter(|u| !u.vehicle_ids.is_empty() && Uuid::parse_str(&u.id).is_ok()) {
        let s = score(user);
        if best.is_none_or(|(_, top)| s > top) {
            best = Some((user, s));
        }
    }
    best.map(|(user, _)| user)
}

fn is_charging(v: &Vehicle) -> bool {
    v.charge_state.is_charging == Some(true)
}

fn is_startable(v: &Vehicle) -> bool {
    let cs = &v.charge_state;
    cs.is_plugged_in == Some(true)
        && cs.is_charging != Some(true)
        && cs.is_fully_charged != Some(true)
        && v.smart_charging_policy.is_enabled != Some(true)
}

/// Lowers the battery to at most `max_battery` (room to charge), then runs `steps`.
fn stage(sim: &SimHandle, car: &Vehicle, max_battery: f64, steps: &[Command]) -> anyhow::Result<()> {
    let level = car.charge_state.battery_level.unwrap_or(max_battery).min(max_battery);
    let set = SetValues { battery_level: Some(level), ..SetValues::default() };
    for step in std::iter::once(Command::Set(set)).chain(steps.iter().cloned()) {
        sim.command(&car.id, step).map_err(|e| {
            let why = e.problem.detail.unwrap_or(e.problem.title);
            anyhow::anyhow!("staging the demo car {}: {why}", car.id)
        })?;
    }
    Ok(())
}
