//! Charge actions (`POST /vehicles/{id}/charging`): PENDING until the vehicle confirms after the
//! configured delay, then CONFIRMED (charging flips) or FAILED; a client may cancel before that.

use axum::http::StatusCode;
use uuid::Uuid;

use super::clock::{SimMillis, to_datetime};
use super::dynamics;
use super::outbox::Outbox;
use super::problem::SimError;
use super::vehicle::{Activity, SimVehicle};
use super::world::World;
use crate::enode::model::{ActionState, ChargeAction, ChargeKind, Extra, FailureReason};

#[derive(Clone, Debug)]
pub struct ActionRecord {
    pub action: ChargeAction,
    pub vehicle_seq: u64,
    /// When the vehicle answers.
    pub due: SimMillis,
}

const RESOLVED_FIELDS: &[&str] = &["state", "updatedAt", "completedAt"];
const FAILED_FIELDS: &[&str] = &["state", "updatedAt", "completedAt", "failureReason"];

impl World {
    pub fn start_action(
        &mut self,
        vehicle_id: &str,
        kind: ChargeKind,
        now: SimMillis,
        out: &mut Outbox,
    ) -> Result<ChargeAction, SimError> {
        let seq = self.seq_of(vehicle_id).ok_or_else(|| SimError::not_found("vehicle", vehicle_id))?;
        let v = self.vehicles.get(&seq).ok_or_else(|| SimError::not_found("vehicle", vehicle_id))?;
        if v.smart_charging {
            return Err(SimError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "smart-charging-enabled",
                "Smart charging is enabled",
                "disable smart charging before controlling charging directly",
            ));
        }
        // Enode judges by what it last saw of the car, which is why XPENG's "UNPLUGGED after
        // complete" quirk refuses a START although the cable is in.
        let seen = v.reported();
        if !seen.is_plugged_in {
            return Err(precondition("the vehicle is not plugged in"));
        }
        match kind {
            ChargeKind::Start if seen.is_charging => {
                return Err(precondition("the vehicle is already charging"));
            }
            ChargeKind::Start if seen.is_fully_charged => {
                return Err(precondition("the vehicle is already at its charge limit"));
            }
            ChargeKind::Stop if !seen.is_charging => {
                return Err(precondition("the vehicle is not charging"));
            }
            _ => {}
        }
        let user = v.user.to_string();
        let open = self
            .pending_actions
            .iter()
            .filter_map(|id| self.actions.get(id))
            .find(|r| r.vehicle_seq == seq)
            .map(|r| (r.action.id.clone(), r.action.kind));
        if let Some((open_id, open_kind)) = open {
            if open_kind == kind {
                return self.action(&open_id);
            }
            self.finish(&open_id, ActionState::Cancelled, None, now, out);
        }
        let id = self.rng.uuid();
        let at = to_datetime(now);
        let action = ChargeAction {
            id: id.to_string(),
            user_id: user,
            created_at: at,
            updated_at: at,
            completed_at: None,
            state: ActionState::Pending,
            target_id: vehicle_id.to_owned(),
            target_type: "vehicle".to_owned(),
            kind,
            failure_reason: None,
            extra: Extra::new(),
        };
        self.actions
            .insert(id, ActionRecord { action: action.clone(), vehicle_seq: seq, due: now + self.action_delay_ms });
        self.pending_actions.insert(id);
        Ok(action)
    }

    pub fn action(&self, id: &str) -> Result<ChargeAction, SimError> {
        Uuid::parse_str(id)
            .ok()
            .and_then(|uuid| self.actions.get(&uuid))
            .map(|r| r.action.clone())
            .ok_or_else(|| SimError::not_found("action", id))
    }

    pub fn cancel_action(&mut self, id: &str, now: SimMillis, out: &mut Outbox) -> Result<ChargeAction, SimError> {
        let action = self.action(id)?;
        if action.state.is_final() {
            let state = serde_json::to_value(action.state).unwrap_or_default();
            return Err(SimError::conflict(format!("action {id} is already resolved ({state})")));
        }
        self.finish(id, ActionState::Cancelled, None, now, out);
        self.action(id)
    }

    /// The vehicles answer the actions whose delay has passed, oldest first.
    pub(super) fn resolve_due_actions(&mut self, now: SimMillis, out: &mut Outbox) {
        let mut due: Vec<(SimMillis, Uuid)> = self
            .pending_actions
            .iter()
            .filter_map(|id| self.actions.get(id).map(|r| (r.due, *id)))
            .filter(|(at, _)| *at <= now)
            .collect();
        due.sort();
        for (at, id) in due {
            self.resolve(id, at, out);
        }
    }

    fn resolve(&mut self, id: Uuid, at: SimMillis, out: &mut Outbox) {
        let Some(record) = self.actions.get(&id) else {
            return;
        };
        let (seq, kind) = (record.vehicle_seq, record.action.kind);
        // The outer error is a vehicle deleted meanwhile; the inner one the car's refusal.
        let outcome = self
            .change_vehicle(seq, at, out, |v| {
                // A command wakes a sleeping car.
                v.asleep = false;
                Ok(carry_out(v, kind, at))
            })
            .unwrap_or_else(|_| Err(reason("VEHICLE_GONE", "the vehicle was removed")));
        let state = match outcome {
            Ok(()) => (ActionState::Confirmed, None),
            Err(why) => (ActionState::Failed, Some(why)),
        };
        self.finish(&id.to_string(), state.0, state.1, at, out);
    }

    fn finish(
        &mut self,
        id: &str,
        state: ActionState,
        failure_reason: Option<FailureReason>,
        at: SimMillis,
        out: &mut Outbox,
    ) {
        let Some(uuid) = Uuid::parse_str(id).ok() else {
            return;
        };
        self.pending_actions.remove(&uuid);
        let Some(record) = self.actions.get_mut(&uuid) else {
            return;
        };
        let failed = failure_reason.is_some();
        let action = &mut record.action;
        action.state = state;
        action.updated_at = to_datetime(at);
        action.completed_at = Some(to_datetime(at));
        action.failure_reason = failure_reason;
        let fields = if failed { FAILED_FIELDS } else { RESOLVED_FIELDS };
        out.action_updated(at, action, fields);
    }
}

fn precondition(detail: &str) -> SimError {
    SimError::new(StatusCode::BAD_REQUEST, "precondition-failed", "Precondition Failed", detail)
}

/// What the car does when the action reaches it.
fn carry_out(v: &mut SimVehicle, kind: ChargeKind, at: SimMillis) -> Result<(), FailureReason> {
    match kind {
        ChargeKind::Start => match v.activity {
            Activity::Charging => Ok(()),
            Activity::Stopped => {
                dynamics::start_charging(v, at);
                Ok(())
            }
            Activity::Complete => Err(reason("ALREADY_FULL", "the battery is at its charge limit")),
            Activity::Parked | Activity::Driving => Err(reason("NOT_PLUGGED_IN", "the vehicle was unplugged")),
        },
        ChargeKind::Stop => {
            if v.activity == Activity::Charging {
                dynamics::stop_charging(v, at);
            }
            Ok(())
        }
    }
}

fn reason(kind: &str, detail: &str) -> FailureReason {
    FailureReason { kind: kind.to_owned(), detail: detail.to_owned() }
}
