//! Brings vehicles that already exist at Enode into the fleet.
//!
//! Enode sends a webhook only when something changes, so vehicles linked before this service
//! subscribed (the demo's simulated fleet, users moved from the predecessor, a subscription that
//! was lost) stay unknown until each happens to change. One listing per user, handed to the
//! fleet as a refresh, fixes that; the actors' newer-wins merge makes it safe to run while
//! webhooks arrive, and to run again.

use evconduit_actors::fleet::{Fleet, Routed};
use evconduit_actors::state::DataSource;
use evconduit_actors::vehicle::ObservationKind;
use futures::StreamExt;
use uuid::Uuid;

use crate::enode::client::{Client, EnodeError, Priority};
use crate::enode::model::Vehicle;

/// Listings in flight at once. The client's budget decides the pace anyway; this only keeps a
/// large user list from queueing thousands of calls at once.
const CONCURRENT_USERS: usize = 4;

/// What a sync found.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// Per user, the vehicles Enode listed and the fleet was given (in the order given).
    pub users: Vec<(Uuid, Vec<Vehicle>)>,
    /// Users whose listing failed; their vehicles keep whatever state they had.
    pub failed: Vec<(Uuid, EnodeError)>,
    /// Vehicles listed for a user while the fleet holds them for another (ignored).
    pub wrong_owner: usize,
}

impl SyncReport {
    pub fn vehicle_count(&self) -> usize {
        self.users.iter().map(|(_, vehicles)| vehicles.len()).sum()
    }
}

/// Lists each user's vehicles at Enode at background priority (user calls keep going first) and
/// gives each to the fleet as a refresh observation. A failed listing is reported, not fatal.
pub async fn sync_users(client: &Client, fleet: &Fleet, users: &[Uuid]) -> SyncReport {
    let listings = futures::stream::iter(users.iter().copied())
        .map(|user| async move { (user, client.list_user_vehicles(&user.to_string(), Priority::Background).await) })
        .buffered(CONCURRENT_USERS)
        .collect::<Vec<_>>()
        .await;
    let mut report = SyncReport::default();
    for (user, listing) in listings {
        match listing {
            Ok(vehicles) => {
                for vehicle in &vehicles {
                    let routed = fleet.observe(user, vehicle.clone(), DataSource::Refresh, ObservationKind::Updated);
                    if routed == Routed::WrongOwner {
                        report.wrong_owner += 1;
                    }
                }
                report.users.push((user, vehicles));
            }
            Err(err) => {
                tracing::warn!(%user, error = %err, "could not list the user's vehicles at Enode");
                report.failed.push((user, err));
            }
        }
    }
    report
}
