//! The demo's database: its users, and where the simulated clock resumes.
//!
//! Users: one per simulated Enode user, with the same id (a user's id IS their Enode user id,
//! which is how webhooks find their owner). Users from an earlier run are reused; the demo user
//! gets a new API key every run (a key is shown once and never stored readable).

use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::accounts::{self, UserSpec};
use crate::store::{self, Role, Store};

/// The demo user and the key to print.
pub struct DemoLogin {
    pub email: String,
    pub key: String,
}

pub struct DemoDatabase {
    store: Arc<dyn Store>,
}

impl DemoDatabase {
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let store = store::connect(url).await.context("opening the demo database")?;
        store.migrate().await.context("applying migrations to the demo database")?;
        Ok(Self { store })
    }

    /// The newest Enode timestamp among the vehicles an earlier run stored. The simulated clock
    /// runs ahead of the real one, so a rerun must resume after it: state stamped later than
    /// anything the new run reports would win every merge (newer wins) and freeze the demo.
    pub async fn latest_observation(&self) -> anyhow::Result<Option<DateTime<Utc>>> {
        let vehicles = self.store.load_vehicles().await.context("reading the demo's vehicles")?;
        Ok(vehicles
            .iter()
            .flat_map(|state| {
                let (seen, charge) = state.vehicle.observed_at();
                [seen, charge]
            })
            .flatten()
            .max())
    }

    /// Creates the users that do not exist yet and a key for `demo_user`. Runs before the
    /// service starts, so the service loads them with every other account and the first webhook
    /// for any of them already finds its owner.
    pub async fn prepare_users(&self, users: &[Uuid], demo_user: Uuid) -> anyhow::Result<DemoLogin> {
        let mut email = None;
        for (n, &id) in users.iter().enumerate() {
            let user = self.ensure_user(id, id == demo_user, n + 1).await?;
            if id == demo_user {
                email = Some(user);
            }
        }
        let email = email.context("the demo user is not among the simulator's users")?;
        let (_, key) = accounts::create_api_key(self.store.as_ref(), demo_user, Some("demo".to_owned()), Utc::now())
            .await
            .context("creating the demo API key")?;
        Ok(DemoLogin { email, key })
    }

    /// The user with this id, created if missing; returns its email. Emails are made from the
    /// id, so a later run with another seed (other ids) never collides with this run's users.
    async fn ensure_user(&self, id: Uuid, is_demo: bool, n: usize) -> anyhow::Result<String> {
        if let Some(user) = self.store.user_by_id(id).await? {
            return Ok(user.email);
        }
        let short = id.simple().to_string();
        let short = short.get(..8).unwrap_or(&short);
        let (email, name) = if is_demo {
            (format!("demo-{short}@demo.evconduit.invalid"), "Demo user".to_owned())
        } else {
            (format!("driver-{short}@demo.evconduit.invalid"), format!("Demo driver {n}"))
        };
        // No tier: a Pro trial, so the demo user may start and stop charging.
        let spec = UserSpec { id: Some(id), email, name: Some(name), role: Role::User, tier: None };
        let user =
            accounts::create_user(self.store.as_ref(), spec, Utc::now()).await.context("creating a demo user")?;
        Ok(user.email)
    }
}
