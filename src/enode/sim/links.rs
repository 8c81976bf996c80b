//! Link sessions (`POST /users/{userId}/link`, then a GET of the link URL): the user "logs in to
//! their vendor" and Enode discovers their vehicles.

use axum::http::StatusCode;

use super::clock::SimMillis;
use super::outbox::{self, Outbox};
use super::problem::SimError;
use super::vehicle::SimVehicle;
use super::vendors::{self, VENDORS};
use super::world::{ALL_FIELDS, World};
use crate::enode::model::{LinkRequest, LinkSession};

/// Link sessions are valid for 24 h (simulated).
const LINK_TTL_MS: i64 = 24 * 3_600_000;
const DISCOVERY_LEAD_MS: i64 = 1_000;

#[derive(Clone, Debug)]
pub struct LinkRecord {
    pub user: String,
    pub vendor: Option<u8>,
    pub redirect_uri: String,
    pub expires: SimMillis,
    pub used: bool,
}

/// What opening a link did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkOutcome {
    pub user_id: String,
    pub vendor: String,
    pub vehicle_ids: Vec<String>,
    pub redirect_uri: String,
}

impl World {
    pub fn create_link(
        &mut self,
        user: &str,
        request: &LinkRequest,
        base_url: &str,
        now: SimMillis,
    ) -> Result<LinkSession, SimError> {
        if request.vendor_type != "vehicle" {
            return Err(SimError::bad_request(format!(
                "vendorType {:?} is not supported, only \"vehicle\"",
                request.vendor_type
            )));
        }
        let vendor = match request.vendor.as_deref() {
            None => None,
            Some(name) => Some(
                vendors::find(name).ok_or_else(|| SimError::bad_request(format!("unknown vehicle vendor {name:?}")))?,
            ),
        };
        self.ensure_user(user);
        let token = self.rng.uuid().simple().to_string();
        self.links.insert(
            token.clone(),
            LinkRecord {
                user: user.to_owned(),
                vendor,
                redirect_uri: request.redirect_uri.clone(),
                expires: now + LINK_TTL_MS,
                used: false,
            },
        );
        Ok(LinkSession { link_url: format!("{}/link/{token}", base_url.trim_end_matches('/')), link_token: token })
    }

    /// Opening the link URL: the token is spent; the user's vehicles of the vendor (chosen, or
    /// a random one) appear, each with `discovered` then `updated`. Vehicles of that vendor that
    /// had lost their credentials come back instead of new ones being made.
    pub fn complete_link(&mut self, token: &str, now: SimMillis, out: &mut Outbox) -> Result<LinkOutcome, SimError> {
        let record = self.links.get_mut(token).ok_or_else(|| SimError::not_found("link session", token))?;
        if record.used || record.expires <= now {
            return Err(SimError::new(
                StatusCode::GONE,
                "link-expired",
                "Link session expired",
                "this link has already been used or has expired",
            ));
        }
        record.used = true;
        let record = record.clone();
        let vendor = match record.vendor {
            Some(v) => v,
            None => self.rng.below(VENDORS.len()) as u8,
        };
        let user = self.ensure_user(&record.user);
        let invalid: Vec<u64> = self
            .users
            .get(&user)
            .map(|u| {
                u.vehicles
                    .iter()
                    .copied()
                    .filter(|seq| self.vehicles.get(seq).is_some_and(|v| v.vendor == vendor && v.credentials_invalid))
                    .collect()
            })
            .unwrap_or_default();
        let mut vehicle_ids = Vec::new();
        if invalid.is_empty() {
            let count = 1 + self.rng.below(2);
            let mut rng = self.rng;
            for _ in 0..count {
                let seq = self.insert_vehicle(&user, vendor, &mut rng, now, false);
                if let Some(v) = self.vehicles.get(&seq) {
                    announce(v, now, out);
                    vehicle_ids.push(v.id.to_string());
                }
            }
            self.rng = rng;
        } else {
            for seq in invalid {
                // Relinking brings the car back: it is looked at now, with what it did meanwhile.
                let _ = self.change_vehicle(seq, now, out, |v| {
                    v.credentials_invalid = false;
                    Ok(())
                });
                if let Some(v) = self.vehicles.get(&seq) {
                    vehicle_ids.push(v.id.to_string());
                }
            }
        }
        Ok(LinkOutcome {
            user_id: user.to_string(),
            vendor: vendors::spec(vendor).vendor.to_owned(),
            vehicle_ids,
            redirect_uri: record.redirect_uri,
        })
    }
}

/// A new vehicle: `discovered` (identity only) then `updated` with everything.
///
/// The discovery is stamped a second before the first full report, so a receiver deciding
/// "newer wins" by `lastSeen` never lets the empty discovered shape win over the full one.
pub(super) fn announce(v: &SimVehicle, now: SimMillis, out: &mut Outbox) {
    let discovered_at = now - DISCOVERY_LEAD_MS;
    out.vehicle(outbox::DISCOVERED, discovered_at, &v.user, || v.render_discovered(discovered_at), None);
    out.vehicle(outbox::UPDATED, now, &v.user, || v.render(), Some(ALL_FIELDS));
}
