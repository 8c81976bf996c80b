//! What one run of the harness does: sizes, durations, backend, where the report goes.
//!
//! Every option is a flag (`cargo bench --bench load -- --vehicles 100000`) or an environment
//! variable (`EVCONDUIT_LOAD_VEHICLES=100000 cargo bench --bench load`); a flag wins. `cargo bench`
//! itself passes `--bench`, which is accepted and ignored.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Options {
    /// Vehicles in the simulator and in the service's store.
    pub vehicles: usize,
    pub backend: Backend,
    /// Keep-alive connections of the read load (ceiling and service alike).
    pub connections: usize,
    /// Length of each measured read phase.
    #[serde(with = "secs")]
    pub read_secs: Duration,
    /// Ceiling/service pairs of closed-loop read phases; the ratio is taken per pair.
    pub rounds: usize,
    /// Length of the webhook phase.
    #[serde(with = "secs")]
    pub webhook_secs: Duration,
    /// Deliveries in flight at once during the webhook phase (Enode's own concurrency is small).
    pub webhook_connections: usize,
    /// Before the webhook phase, one event for every vehicle and the store left to catch up:
    /// the phase then finds every actor awake, as in a service that has been running, instead
    /// of a fresh start's sleeping fleet (the default, the harder case).
    pub webhook_warm: bool,
    /// Events per delivery (Enode sends up to 100).
    pub batch: usize,
    /// Actors spawned by the ractor cost probe (0: skip it).
    pub ractor_probe: usize,
    /// Pin the server to one core and the harness to the other(s) when the machine has >= 2.
    pub pin: bool,
    /// Where the JSON report is written.
    pub json: PathBuf,
    /// A quick run that only proves the harness works (CI): tiny sizes, one-second phases.
    pub smoke: bool,
}

impl Options {
    /// Defaults sized for a CI-class machine; `--vehicles 100000` is the full run.
    fn defaults(smoke: bool) -> Self {
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
        Self {
            vehicles: if smoke { 200 } else { 10_000 },
            backend: Backend::Sqlite,
            connections: if smoke { 8 } else { 64 },
            read_secs: Duration::from_secs(if smoke { 1 } else { 5 }),
            rounds: if smoke { 1 } else { 3 },
            webhook_secs: Duration::from_secs(if smoke { 1 } else { 10 }),
            webhook_connections: 4,
            webhook_warm: false,
            batch: 100,
            ractor_probe: if smoke { 0 } else { 100_000 },
            pin: true,
            json: target.join("load-report.json"),
            smoke,
        }
    }

    /// Parses flags over environment variables over defaults. Errors name the bad option.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let smoke = args.iter().any(|a| a == "--smoke") || env("SMOKE").is_some_and(|v| v == "1" || v == "true");
        let mut o = Self::defaults(smoke);
        let mut set = |name: &str, value: &str| -> Result<(), String> {
            let bad = |e: &dyn std::fmt::Display| format!("--{name} {value}: {e}");
            match name {
                "vehicles" => o.vehicles = value.parse().map_err(|e| bad(&e))?,
                "backend" => {
                    o.backend = match value {
                        "sqlite" => Backend::Sqlite,
                        "postgres" => Backend::Postgres,
                        _ => return Err(bad(&"expected sqlite or postgres")),
                    }
                }
                "connections" => o.connections = value.parse().map_err(|e| bad(&e))?,
                "read-secs" => o.read_secs = Duration::from_secs_f64(value.parse().map_err(|e| bad(&e))?),
                "rounds" => o.rounds = value.parse().map_err(|e| bad(&e))?,
                "webhook-secs" => o.webhook_secs = Duration::from_secs_f64(value.parse().map_err(|e| bad(&e))?),
                "webhook-connections" => o.webhook_connections = value.parse().map_err(|e| bad(&e))?,
                "webhook-warm" => o.webhook_warm = value.parse().map_err(|e| bad(&e))?,
                "batch" => o.batch = value.parse().map_err(|e| bad(&e))?,
                "ractor-probe" => o.ractor_probe = value.parse().map_err(|e| bad(&e))?,
                "pin" => o.pin = value.parse().map_err(|e| bad(&e))?,
                "json" => o.json = PathBuf::from(value),
                _ => return Err(format!("unknown option --{name}")),
            }
            Ok(())
        };
        for name in NAMES {
            if let Some(value) = env(&name.replace('-', "_").to_uppercase()) {
                set(name, &value)?;
            }
        }
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            match arg.as_str() {
                "--bench" | "--smoke" => {}
                flag if flag.starts_with("--") => {
                    let name = &flag[2..];
                    let value = match name.split_once('=') {
                        Some((name, value)) => {
                            set(name, value)?;
                            continue;
                        }
                        None => iter.next().ok_or_else(|| format!("{flag} needs a value"))?,
                    };
                    set(name, value)?;
                }
                // cargo bench passes a filter when one is given; this harness has nothing to filter.
                _ => {}
            }
        }
        if o.vehicles == 0 || o.connections == 0 || o.rounds == 0 || o.batch == 0 || o.webhook_connections == 0 {
            return Err("vehicles, connections, rounds, batch and webhook-connections must be at least 1".into());
        }
        Ok(o)
    }
}

const NAMES: [&str; 12] = [
    "vehicles",
    "backend",
    "connections",
    "read-secs",
    "rounds",
    "webhook-secs",
    "webhook-connections",
    "webhook-warm",
    "batch",
    "ractor-probe",
    "pin",
    "json",
];

fn env(name: &str) -> Option<String> {
    std::env::var(format!("EVCONDUIT_LOAD_{name}")).ok()
}

mod secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}
