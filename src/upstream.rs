//! The actors' `Upstream` port, implemented by the Enode client: refreshes go at background
//! priority (they may use only part of the budget and wait), commands at user priority.

use async_trait::async_trait;
use evconduit_actors::model::{ChargeAction, ChargeKind, Vehicle};
use evconduit_actors::ports::{Upstream, UpstreamError};

use crate::enode::client::{Client, EnodeError, Priority};

pub struct EnodeUpstream(pub Client);

#[async_trait]
impl Upstream for EnodeUpstream {
    async fn fetch_vehicle(&self, enode_id: &str) -> Result<Vehicle, UpstreamError> {
        self.0.get_vehicle(enode_id, Priority::Background).await.map_err(to_port)
    }

    async fn charge(&self, enode_id: &str, kind: ChargeKind) -> Result<ChargeAction, UpstreamError> {
        self.0.charge(enode_id, kind).await.map_err(to_port)
    }

    async fn charge_action(&self, action_id: &str) -> Result<ChargeAction, UpstreamError> {
        self.0.get_action(action_id).await.map_err(to_port)
    }
}

/// Enode's errors in the actors' terms: what Enode refused (and why, in its words), and what
/// may work later.
pub fn to_port(err: EnodeError) -> UpstreamError {
    let detail = |e: &EnodeError| {
        e.problem().map(|p| p.detail.clone().unwrap_or_else(|| p.title.clone())).unwrap_or_else(|| e.to_string())
    };
    match &err {
        EnodeError::NotFound(_) => UpstreamError::NotFound,
        EnodeError::BadRequest(_) | EnodeError::Conflict(_) => UpstreamError::Rejected { detail: detail(&err) },
        EnodeError::Unprocessable(_) => UpstreamError::Unprocessable { detail: detail(&err) },
        EnodeError::RateLimited { retry_after } | EnodeError::Unavailable { retry_after } => {
            UpstreamError::Unavailable { retry_after: Some(*retry_after), detail: err.to_string() }
        }
        EnodeError::Upstream { .. } | EnodeError::Timeout | EnodeError::Transport(_) | EnodeError::Unauthorized => {
            UpstreamError::Unavailable { retry_after: None, detail: err.to_string() }
        }
        EnodeError::Rejected { .. } | EnodeError::Decode(_) => UpstreamError::Failed { detail: err.to_string() },
    }
}
