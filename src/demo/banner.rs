//! What the demo prints once everything runs: the key, the two addresses (each on its own line, in
//! a fixed form scripts and the demo's test read), then commands ready to paste.

use std::io::{self, Write};
use std::net::SocketAddr;

use uuid::Uuid;

use crate::enode::model::Vehicle;

pub struct Banner<'a> {
    pub key: &'a str,
    pub service: SocketAddr,
    pub sim_url: &'a str,
    pub email: &'a str,
    pub user: Uuid,
    /// The demo user's cars, as the initial sync found them.
    pub cars: &'a [Vehicle],
    /// The car the START command is for (plugged in, not charging), if the user has one.
    pub startable: Option<&'a str>,
    pub subscription: Option<&'a str>,
    pub users: usize,
    pub vehicles: usize,
    pub time_factor: f64,
}

pub fn write(out: &mut impl Write, b: &Banner<'_>) -> io::Result<()> {
    let base = format!("http://{}", b.service);
    let auth = format!("-H 'authorization: Bearer {}'", b.key);
    writeln!(out, "API key: {}", b.key)?;
    writeln!(out, "Listening on {base}")?;
    writeln!(out, "Enode simulator: {}", b.sim_url)?;
    writeln!(out)?;
    writeln!(
        out,
        "{} users and {} cars at the simulated Enode, {} simulated seconds per second.",
        b.users, b.vehicles, b.time_factor
    )?;
    match b.subscription {
        Some(id) => writeln!(out, "Enode webhook {id} at the simulator delivers to {base}/api/webhook/enode.")?,
        None => writeln!(out, "The Enode webhook subscription is not set up yet (see the log); it is retried.")?,
    }
    writeln!(out, "The key belongs to {} (id {}), who has {} car(s):", b.email, b.user, b.cars.len())?;
    for car in b.cars {
        writeln!(out, "  {}  {}", car.id, describe(car))?;
    }
    writeln!(out)?;
    writeln!(out, "# Who the key belongs to, and their cars (what Home Assistant asks):")?;
    writeln!(out, "curl -s {base}/api/me {auth}")?;
    writeln!(out, "curl -s {base}/api/user/vehicles {auth}")?;
    for car in b.cars {
        writeln!(out, "# Live state of the {} ({}):", name(car), what_moves(car, b.startable))?;
        writeln!(out, "curl -s -i {base}/api/status/{} {auth}", car.id)?;
    }
    if let Some(id) = b.startable {
        let car = b.cars.iter().find(|c| c.id == id).map(name).unwrap_or_else(|| "car".to_owned());
        writeln!(out, "# Start charging the {car} (plugged in, not charging); watch its status change:")?;
        writeln!(
            out,
            "curl -s -X POST {base}/api/charging/{id} {auth} -H 'content-type: application/json' -d '{{\"action\":\"START\"}}'"
        )?;
    }
    writeln!(out, "# What the simulated Enode saw: requests by route and status, webhook deliveries:")?;
    writeln!(out, "curl -s {}/_sim/stats", b.sim_url)?;
    writeln!(out)?;
    writeln!(out, "Ctrl-C stops the demo (state is flushed to the demo database; a rerun reuses its users).")?;
    out.flush()
}

/// What a second status read shows: only a charging car changes by itself in the simulator; a
/// parked one reports again when something happens to it.
fn what_moves(car: &Vehicle, startable: Option<&str>) -> &'static str {
    if car.charge_state.is_charging == Some(true) {
        "charging: run it twice, battery, range and lastSeen move"
    } else if startable == Some(car.id.as_str()) {
        "not charging: it changes once the START below is sent"
    } else {
        "parked: it changes when the car reports something new"
    }
}

fn name(car: &Vehicle) -> String {
    car.display_name().unwrap_or_else(|| "car".to_owned())
}

/// "Tesla Model 3 (TESLA): PLUGGED_IN:CHARGING, 37 %".
fn describe(car: &Vehicle) -> String {
    let state = &car.charge_state;
    let battery = state.battery_level.map(|b| format!(", {b:.0} %")).unwrap_or_default();
    format!("{} ({}): {}{battery}", name(car), car.vendor.as_deref().unwrap_or("?"), state.power_delivery_state.0)
}

#[cfg(test)]
mod tests {
    use evconduit_actors::testing::sample_vehicle;

    use super::*;

    #[test]
    fn only_the_charging_car_is_said_to_move_by_itself() {
        let mut charging = sample_vehicle("charging");
        charging.charge_state.is_charging = Some(true);
        let mut startable = sample_vehicle("startable");
        startable.charge_state.is_charging = Some(false);
        let mut parked = sample_vehicle("parked");
        parked.charge_state.is_charging = Some(false);
        let cars = [charging, startable, parked];
        let banner = Banner {
            key: "evc_key",
            service: SocketAddr::from(([127, 0, 0, 1], 8080)),
            sim_url: "http://127.0.0.1:9",
            email: "demo@example.invalid",
            user: Uuid::nil(),
            cars: &cars,
            startable: Some("startable"),
            subscription: None,
            users: 1,
            vehicles: 3,
            time_factor: 60.0,
        };
        let mut out = Vec::new();
        write(&mut out, &banner).expect("written");
        let text = String::from_utf8(out).expect("utf-8");
        let hint = |id: &str| {
            let status =
                text.lines().position(|l| l.ends_with(&format!("/api/status/{id} -H 'authorization: Bearer evc_key'")));
            status.and_then(|at| text.lines().nth(at - 1)).map(str::to_owned).expect("a status command")
        };
        assert!(hint("charging").contains("run it twice"), "{text}");
        assert!(hint("startable").contains("once the START below is sent"), "{text}");
        assert!(hint("parked").contains("parked"), "{text}");
        assert_eq!(text.matches("run it twice").count(), 1, "{text}");
    }
}
