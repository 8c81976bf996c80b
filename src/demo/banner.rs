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
        writeln!(out, "# Live state of the {} (run it twice: battery, range and lastSeen move):", name(car))?;
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

fn name(car: &Vehicle) -> String {
    car.display_name().unwrap_or_else(|| "car".to_owned())
}

/// "Tesla Model 3 (TESLA): PLUGGED_IN:CHARGING, 37 %".
fn describe(car: &Vehicle) -> String {
    let state = &car.charge_state;
    let battery = state.battery_level.map(|b| format!(", {b:.0} %")).unwrap_or_default();
    format!("{} ({}): {}{battery}", name(car), car.vendor.as_deref().unwrap_or("?"), state.power_delivery_state.0)
}
